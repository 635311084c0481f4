"""The aggregator killed with SIGKILL at random moments under each producer's own traffic.

As ``test_aggregator_kill.py``, but the records are what KServe's agent (through a KafkaSink)
and Seldon Core 2's gateways write (the conformance corpus, :mod:`tests.exporter.decoders.corpus`):
request and response halves that pair across partitions and across restarts (the join buffers
come back with the checkpoint), requests only, and Seldon's inputs/outputs topics in the
schema-registry framing. A writer thread sends them at a steady pace while ``model-health
aggregator`` is started, killed (``kill -9``) after a random time and started again; at the end
one more aggregator must count exactly the inferences written, with nothing refused and no
serving error.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field

import pytest

from exporter.kafka import KafkaIOError, open_producer
from exporter.kafka.embedded import EmbeddedBroker
from tests.exporter.decoders.corpus import kserve, seldon, traffic
from tests.reliability.harness import SESSION_EXPIRY_S, AggregatorProcess, poll_until, write_config
from tests.support.broker import producer_settings

RATE = 250.0  # inferences/s
MODEL_KEY = f'model="{traffic.MODEL}",model_version="1"'
PREDICTIONS_TOTAL = f"model_health_predictions_total{{{MODEL_KEY}}}"
ERRORS_TOTAL = f"model_health_prediction_errors_total{{{MODEL_KEY}}}"
SAMPLES = f'model_health_window_samples{{{MODEL_KEY},window="1d"}}'


@dataclass
class Writer:
    """Sends one inference's messages at a time, ``per_second`` inferences a second, each
    group flushed before the next: ``acknowledged`` inferences are in the log for sure."""

    broker: EmbeddedBroker
    inferences: list[list[tuple[str, bytes, bytes | None, tuple, int | None]]]
    per_second: float
    acknowledged: int = 0
    errors: list[str] = field(default_factory=list)
    _thread: threading.Thread | None = None

    def start(self) -> Writer:
        self._thread = threading.Thread(target=self._run, name="producer-traffic", daemon=True)
        self._thread.start()
        return self

    @property
    def done(self) -> bool:
        return self._thread is not None and not self._thread.is_alive()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        producer = open_producer(producer_settings(self.broker, delivery_timeout_ms=120_000, bootstrap_timeout_s=30.0))
        started = time.monotonic()
        try:
            for n, messages in enumerate(self.inferences):
                if (wait := started + n / self.per_second - time.monotonic()) > 0:
                    time.sleep(wait)
                try:
                    for topic, value, key, headers, partition in messages:
                        producer.send(topic, value, key=key, headers=headers, partition=partition)
                    if n % 10 == 9 or n == len(self.inferences) - 1:
                        producer.flush(timeout_s=120)
                        self.acknowledged = n + 1
                except KafkaIOError as error:
                    self.errors.append(str(error)[:200])
                    return
        finally:
            producer.close()


def inferences(producer: str, count: int, topic: str, namespace: str) -> list[list[tuple]]:
    """Each inference's messages as (topic, value, key, headers, partition)."""
    base = time.time() - 6 * 3600
    if producer.startswith("kserve"):
        mode = "request" if producer == "kserve-request" else "all"
        agent = kserve.Agent(service=traffic.MODEL, namespace=namespace, log_mode=mode)
        events = traffic.kserve_events(agent, count, base)
        per = 1 if mode == "request" else 2
        return [
            [(topic, e.value, e.key, e.headers, None) for e in events[i : i + per]] for i in range(0, len(events), per)
        ]
    gateway = seldon.Gateway(namespace=namespace, schema_ids=(7, 8))
    messages = traffic.seldon_messages(gateway, count, partitions=2)
    return [
        [(m.topic, m.value, m.key, m.headers, m.partition) for m in messages[i : i + 2]]
        for i in range(0, len(messages), 2)
    ]


@pytest.mark.parametrize("producer", ["kserve", "kserve-request", "seldon-framed"])
def test_kill_9_under_each_producers_traffic_counts_every_inference_once(
    scale, producer, broker, make_topic, tmp_path_factory, figures, cleanup
):
    tmp_path = tmp_path_factory.mktemp(producer)
    rng = scale.rng(f"producer-kill-{producer}")
    profile = traffic.save_reference_profile(tmp_path)
    namespace = f"ns-{uuid.uuid4().hex[:8]}"
    topics = {"predictions": make_topic(3), "labels": make_topic(1), "deadletter": make_topic(1)}
    model = {"name": traffic.MODEL, "version": "1", "reference": str(profile), "namespace": namespace}
    kafka: dict = {}
    if producer == "kserve-request":
        model["logger_mode"] = "request"
    if producer.startswith("seldon"):
        kafka = {"format": "seldon"}
        broker.create_topics(
            [f"seldon.{namespace}.model.{traffic.MODEL}.{side}" for side in ("inputs", "outputs")], partitions=2
        )
    deployment = write_config(
        tmp_path,
        broker.bootstrap_servers,
        topics,
        model,
        kafka=kafka,
        state={"dir": str(tmp_path / "state"), "checkpoint_interval_seconds": 3.0},
    )
    run_seconds = scale.pick(12.0, scale.seconds)
    total = int(RATE * run_seconds)
    writer = Writer(broker, inferences(producer, total, topics["predictions"], namespace), RATE).start()
    aggregator = AggregatorProcess(deployment)
    cleanup.append(aggregator.stop)
    moments: list[float] = []
    started = time.monotonic()
    while not writer.done or not moments:
        aggregator.start()
        moment = rng.uniform(0.5, 6.0)
        time.sleep(moment)
        aggregator.kill()
        moments.append(round(moment, 2))
        time.sleep(SESSION_EXPIRY_S + rng.uniform(0.0, 1.0))
    writer.join()
    aggregator.start()
    port = deployment["port"]
    try:
        poll_until(
            lambda: aggregator.metrics().get(SAMPLES) == total and aggregator.metrics().get(PREDICTIONS_TOTAL) == total,
            timeout=120,
            what=f"{total} inferences counted after {aggregator.kills} kills",
        )
        time.sleep(2.0)  # nothing more arrives: nothing was counted twice
        final = aggregator.metrics()
    finally:
        counted = aggregator.metrics().get(PREDICTIONS_TOTAL)
        figures.record(
            sent=total,
            counted=counted,
            faults=aggregator.kills,
            lost=max(total - (counted or 0), 0),
            duplicated=max((counted or 0) - total, 0),
            producer=producer,
            kill_after_s=" ".join(map(str, moments)),
            seconds=round(time.monotonic() - started, 1),
        )
    assert writer.errors == [] and writer.acknowledged == total
    assert final[PREDICTIONS_TOTAL] == total and final[SAMPLES] == total
    assert final.get(ERRORS_TOTAL, 0) == 0
    assert not any(k.startswith("model_health_records_rejected_total{") and v for k, v in final.items()), port
