"""The broker restarted mid-stream, with records still flowing in: the aggregator counts the log exactly.

Real parts: tansu storing in moto's S3 server (``tests/support/durable_broker.py``: records
and group offsets survive a restart), the ``model-health aggregator`` command. A producer
thread writes uniquely numbered records at a steady pace; at random moments (seeded) the
broker is stopped, kept down for a random while and started again on the same port, while
both the producer and the aggregator keep going. Afterwards the topic is read from the
start by a fresh consumer — what the broker holds is the truth — and the aggregator must
have counted exactly that: every acknowledged record, once — a record the producer's own
retry wrote twice is two records in the log but one inference, dropped the second time by
request id and counted in ``model_health_records_duplicate_total`` (the figures say how many).
"""

from __future__ import annotations

import time

import pytest

from tests.reliability.harness import (
    PREDICTIONS_TOTAL,
    AggregatorProcess,
    SteadyProducer,
    poll_until,
    ready,
    records_in_topic,
    samples,
    write_config,
)

RATE = 300.0  # records/s


@pytest.mark.parametrize("client", ["kafka-python"])
def test_a_broker_restart_mid_stream_loses_and_doubles_nothing(
    scale, client, durable_broker, fraud_profile, tmp_path, figures, cleanup
):
    rng = scale.rng("broker-restart")
    durable_broker.create_topics(["predictions"], partitions=3)
    durable_broker.create_topics(["labels", "deadletter"], partitions=1)
    topics = {"predictions": "predictions", "labels": "labels", "deadletter": "deadletter"}
    deployment = write_config(
        tmp_path,
        durable_broker.bootstrap_servers,
        topics,
        {"name": "fraud", "version": "7", "reference": str(fraud_profile)},
        client,
        state={"dir": str(tmp_path / "state"), "checkpoint_interval_seconds": 1.0},
    )
    aggregator = AggregatorProcess(deployment).start()
    cleanup.append(aggregator.stop)
    port = deployment["port"]
    poll_until(lambda: ready(port) is True, 90, "the aggregator to be ready")
    run_seconds = scale.pick(12.0, scale.seconds)
    producer = SteadyProducer(durable_broker, "predictions", int(RATE * run_seconds), RATE).start()
    cleanup.append(producer.stop)
    started = time.monotonic()
    outages: list[float] = []
    not_ready_seen = 0
    while not producer.done:
        time.sleep(rng.uniform(2.0, scale.pick(4.0, 30.0)))
        if producer.done:
            break
        down = rng.uniform(2.0, scale.pick(4.0, 20.0))
        durable_broker.stop()
        deadline = time.monotonic() + down
        # Down for ``down`` seconds and until /readyz has said so (its probe runs every 2 s
        # between polls, so on a loaded machine a 2–4 s outage can end before it looks), at
        # most 30 s: the assertion below is about the probe, not about winning that race.
        while time.monotonic() < deadline or (not_ready_seen == 0 and time.monotonic() < deadline + 30):
            not_ready_seen += ready(port) is False
            time.sleep(0.25)
        was_down = time.monotonic() - deadline + down
        durable_broker.start()  # same port, same bucket
        outages.append(round(was_down, 1))
        if not scale.soak:
            break
    producer.join()
    in_log, distinct = records_in_topic(durable_broker, "predictions", producer.acknowledged)
    try:
        poll_until(
            # A record the producer's retry wrote twice is one inference: counted once.
            lambda: ready(port) is True and aggregator.counted() == distinct and samples(port) == distinct,
            timeout=scale.pick(120, 600),
            what=f"the aggregator to count the {distinct} distinct records in the log",
        )
        time.sleep(2.0)  # nothing more arrives: none counted twice
        final = aggregator.metrics()
    finally:
        counted = aggregator.counted()
        figures.record(
            sent=producer.sent,
            counted=counted,
            faults=len(outages),
            lost=max(producer.acknowledged - distinct, 0),
            duplicated=max((counted or 0) - distinct, 0),
            acknowledged=producer.acknowledged,
            unacknowledged=producer.unacknowledged,
            in_log=in_log,
            written_twice_by_producer=in_log - distinct,
            down_s=" ".join(map(str, outages)),
            readyz_false_polls=not_ready_seen,
            seconds=round(time.monotonic() - started, 1),
        )
    assert distinct >= producer.acknowledged, "an acknowledged record is missing from the log"
    assert final[PREDICTIONS_TOTAL] == distinct
    assert samples(port) == distinct
    copies = sum(v for k, v in final.items() if k.startswith("model_health_records_duplicate_total{"))
    assert copies == in_log - distinct, "every copy the producer wrote is counted as a duplicate"
    assert not_ready_seen > 0, "/readyz never said the broker was away"
    assert not any(k.startswith("model_health_records_rejected_total{") and v for k, v in final.items())
    assert outages
