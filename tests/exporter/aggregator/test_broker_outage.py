"""The aggregator process against a broker that goes away, and a kill -9 with KServe halves waiting.

Real parts: tansu (persisting to moto's S3 server, so a restart keeps records and group
offsets), the ``model-health aggregator`` command, its /readyz and /metrics.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest

from detectors.profile import build_profile
from exporter.demo.synthetic import synthetic_table
from exporter.kafka import open_producer
from exporter.kafka.embedded import free_port
from exporter.profiles import save_profile
from tests.exporter.aggregator.test_broker import SCRIPT, SHAPE, metrics, ndjson_batches, samples, stop, wait_for
from tests.exporter.decoders.messages import REQUEST_TYPE, RESPONSE_TYPE, kafka_headers, kserve_headers
from tests.support.broker import broker, make_topic, producer_settings, unique_group  # noqa: F401
from tests.support.durable_broker import durable_broker, s3_bucket  # noqa: F401


def write_config(
    tmp_path, bootstrap: str, topics: dict[str, str], model: dict, client: str = "kafka-python", **extra
) -> dict:
    port = free_port()
    kafka = {
        "bootstrap_servers": bootstrap,
        "group_id": unique_group("agg"),
        "predictions_topic": topics["predictions"],
        "labels_topic": topics["labels"],
        "deadletter_topic": topics["deadletter"],
        "client": client,
        "session_timeout_ms": 2000,
        "heartbeat_interval_ms": 500,
        "max_poll_interval_ms": 4000,
        **extra.pop("kafka", {}),
    }
    (tmp_path / "aggregator.yaml").write_text(
        json.dumps(
            {
                "kafka": kafka,
                "models": [model],
                "windows": [{"name": "1d", "bucket_seconds": 3600, "buckets": 24}],
                "allowed_lateness_seconds": 100_000,
                "evaluation": {"interval_seconds": 0.5},
                "http": {"host": "127.0.0.1", "port": port},
                "state": {"dir": str(tmp_path / "state")},
                **extra,
            }
        )
    )
    return {"config": tmp_path / "aggregator.yaml", "port": port, "dir": tmp_path, "topics": topics}


def start(deployment) -> subprocess.Popen:
    log = open(deployment["dir"] / "aggregator.log", "ab")  # noqa: SIM115 - the child holds it
    return subprocess.Popen(
        [str(SCRIPT), "aggregator", "--config", str(deployment["config"])],
        stdout=subprocess.DEVNULL,
        stderr=log,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def ready(port: int) -> bool | None:
    """/readyz: True (200), False (503), None (not answering)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
            return response.status == 200
    except urllib.error.HTTPError as error:
        return False if error.code == 503 else None
    except OSError:
        return None


@pytest.fixture(scope="module")
def fraud_profile(tmp_path_factory):
    profile = build_profile(
        synthetic_table(5_000, seed=1, **SHAPE),
        model="fraud",
        model_version="7",
        created_at=1.7e9,
        prediction="prediction",
        label="label",
    )
    return save_profile(profile, tmp_path_factory.mktemp("profiles") / "fraud-7.parquet")


@pytest.mark.parametrize("client", ["kafka-python", "confluent"])
def test_a_broker_restart_is_ridden_out_with_exact_counts(client, durable_broker, fraud_profile, tmp_path):  # noqa: F811
    topics = {"predictions": "predictions", "labels": "labels", "deadletter": "deadletter"}
    durable_broker.create_topics(["predictions"], partitions=3)
    durable_broker.create_topics(["labels", "deadletter"], partitions=1)
    deployment = write_config(
        tmp_path,
        durable_broker.bootstrap_servers,
        topics,
        {"name": "fraud", "version": "7", "reference": str(fraud_profile)},
        client,
        state={"dir": str(tmp_path / "state"), "checkpoint_interval_seconds": 3.0},
    )
    batches = ndjson_batches(3_000, seed=3, start=0, per_message=20)

    def produce(chunk: list[bytes]) -> None:
        producer = open_producer(producer_settings(durable_broker))
        try:
            for i, value in enumerate(chunk):
                producer.send("predictions", value, key=str(i).encode())
            producer.flush()
        finally:
            producer.close()

    produce(batches[:75])
    process = start(deployment)
    try:
        port = deployment["port"]
        wait_for(lambda: samples(port) == 1_500, what="the first 1,500 records")
        assert ready(port) is True
        durable_broker.stop()
        wait_for(lambda: ready(port) is False, timeout=30, what="/readyz to turn false with the broker away")
        assert metrics(port)  # /metrics still answers, from the last snapshot
        # An outage longer than the group session (2 s) and max poll interval (4 s): the
        # member is gone when the broker returns, so the group rebalances and the
        # partitions are sought back to the checkpoint.
        time.sleep(6)
        durable_broker.start()  # same port, same bucket
        wait_for(lambda: ready(port) is True, timeout=60, what="/readyz to turn true with the broker back")
        produce(batches[75:])
        final = wait_for(lambda: samples(port) == 3_000 and metrics(port), timeout=90, what="all 3,000 records")
        assert final['model_health_predictions_total{model="fraud",model_version="7"}'] == 3_000
        time.sleep(2)  # nothing arrives twice
        assert samples(port) == 3_000
    finally:
        stop(process)
    # Once each way per outage (exactly, in test_broker_watch.py; here a probe starved of CPU
    # on a loaded machine could add one).
    log = (tmp_path / "aggregator.log").read_text()
    assert "stopped answering" in log and "not ready until it is back, state is kept" in log
    assert "is back after" in log


def test_kill_9_with_kserve_requests_waiting_pairs_them_after_the_restart(broker, make_topic, tmp_path):  # noqa: F811
    rng = np.random.default_rng(1)
    columns = {f"instances_{j}": rng.normal(5, 1, 3_000) for j in range(4)}
    columns["prediction"] = rng.integers(0, 3, 3_000).astype(float)
    profile = save_profile(
        build_profile(
            pa.table(columns), model="sklearn-iris", model_version="default", created_at=1.7e9, prediction="prediction"
        ),
        tmp_path / "iris.parquet",
    )
    topics = {"predictions": make_topic(2), "labels": make_topic(1), "deadletter": make_topic(1)}
    deployment = write_config(
        tmp_path,
        broker.bootstrap_servers,
        topics,
        {"name": "sklearn-iris", "version": "default", "reference": str(profile)},
        # confluent: kafka-python's rejoin after a kill -9 can stall on tansu
        # with checkpoints this frequent (the README's known issue).
        "confluent",
        kafka={"format": "kserve"},
        state={"dir": str(tmp_path / "state"), "checkpoint_interval_seconds": 1.0},
    )
    started = datetime.now(UTC)
    producer = open_producer(producer_settings(broker))

    def send(kind: str, i: int) -> None:
        at = started.timestamp() - 600 + i + (0.25 if kind == RESPONSE_TYPE else 0.0)
        stamp = datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")
        headers = kafka_headers(kserve_headers(f"inference-{i}", kind, prefix="ce_", time=stamp))
        body = (
            {"instances": [rng.normal(5, 1, 4).round(3).tolist()]} if kind == REQUEST_TYPE else {"predictions": [i % 3]}
        )
        producer.send(topics["predictions"], json.dumps(body).encode(), key=f"inference-{i}".encode(), headers=headers)

    for i in range(200):
        send(REQUEST_TYPE, i)
    producer.flush()
    port = deployment["port"]
    process = start(deployment)
    consumed = 'model_health_records_consumed_total{format="kserve",topic="%s"}' % topics["predictions"]
    checkpointed = "model_health_checkpoint_last_success_timestamp_seconds"
    wait_for(lambda: metrics(port).get(consumed) == 200, what="the 200 requests consumed")
    seen = time.time()
    wait_for(lambda: metrics(port).get(checkpointed, 0) > seen + 0.5, what="a checkpoint holding the waiting requests")
    process.send_signal(signal.SIGKILL)
    process.wait()
    for i in range(200):
        send(RESPONSE_TYPE, i)
    producer.flush()
    time.sleep(2.5)  # the dead member's session ends, as with a pod restart
    process = start(deployment)
    try:
        key = 'model="sklearn-iris",model_version="default"'
        final = wait_for(
            lambda: (m := metrics(port)).get(f"model_health_predictions_total{{{key}}}") == 200 and m,
            timeout=90,
            what="200 paired predictions",
        )
        assert final.get(f"model_health_prediction_errors_total{{{key}}}", 0) == 0  # none emitted as no_response
        assert not any(k.startswith("model_health_records_rejected_total{") and v for k, v in final.items())
        assert final[consumed] == 400
        assert final[f"model_health_request_duration_seconds_count{{{key}}}"] == 200  # latency from both halves
    finally:
        stop(process)
        producer.close()
