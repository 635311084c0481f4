"""The sidecar against the real broker (tansu), and the aggregator reading what it wrote."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from detectors.profile import build_profile
from exporter.aggregator.inputs import load_models
from exporter.aggregator.single import Aggregator
from exporter.config import AggregatorConfig
from exporter.demo.synthetic import synthetic_table
from exporter.kafka import open_consumer, open_producer
from exporter.kafka.embedded import free_port
from exporter.pipeline.decode import BatchDecoder
from exporter.profiles import save_profile
from exporter.sidecar.service import kafka_producer
from tests.exporter.decoders.messages import REQUEST_TYPE, RESPONSE_TYPE, kserve_headers
from tests.exporter.sidecar.helpers import post, running, sample, sidecar_config, wait_for
from tests.support.broker import broker, group_settings, make_topic, poll_count, producer_settings  # noqa: F401

SHAPE = {"numeric": 3, "categorical": 1, "drifted": 1}
SCRIPT = Path(sys.executable).with_name("model-health")


def native_bodies(bodies: int, per_body: int) -> list[bytes]:
    now = time.time()
    table = synthetic_table(bodies * per_body, seed=4, **SHAPE).to_pylist()
    lines = []
    for i, row in enumerate(table):
        features = {k: v for k, v in row.items() if k not in ("prediction", "label") and v == v}
        lines.append(
            json.dumps(
                {
                    "model": "fraud",
                    "request_id": f"n{i}",
                    "timestamp": now - 60 + i * 0.01,
                    "features": features,
                    "prediction": row["prediction"],
                    "latency_ms": 8.0,
                }
            )
        )
    return ["\n".join(lines[i : i + per_body]).encode() for i in range(0, len(lines), per_body)]


def kserve_pairs(count: int) -> list[tuple[bytes, dict[str, str]]]:
    posts = []
    for i in range(count):
        moment = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        request = json.dumps({"instances": [[1.0 + i, 2.0], [3.0, 4.0]]}).encode()
        posts.append((request, kserve_headers(f"k{i}", REQUEST_TYPE, time=moment, service="fraud")))
        posts.append(
            (
                json.dumps({"predictions": [0, 1]}).encode(),
                kserve_headers(f"k{i}", RESPONSE_TYPE, time=moment, service="fraud"),
            )
        )
    return posts


@pytest.fixture(scope="module")
def profile_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("profiles") / "fraud-7.parquet"
    save_profile(
        build_profile(
            synthetic_table(3_000, seed=1, **SHAPE),
            model="fraud",
            model_version="7",
            created_at=1.7e9,
            prediction="prediction",
            label="label",
        ),
        path,
    )
    return path


def aggregator_for(broker, topic: str, profile_path: Path, state: Path) -> Aggregator:  # noqa: F811
    config = AggregatorConfig(
        kafka={
            "bootstrap_servers": broker.bootstrap_servers,
            "predictions_topic": topic,
            "labels_topic": topic + "-labels",
            "deadletter_topic": topic + "-dead",
            "session_timeout_ms": 2000,
            "heartbeat_interval_ms": 500,
        },
        models=[{"name": "fraud", "version": "7", "reference": str(profile_path)}],
        windows=[{"name": "1d", "bucket_seconds": 3600, "buckets": 24}],
        allowed_lateness_seconds=100_000,
        state={"dir": str(state)},
    )
    broker.create_topics([topic + "-labels", topic + "-dead"], partitions=1, exist_ok=True)
    consumer = open_consumer(group_settings(broker))
    return Aggregator(
        config, load_models(config), consumer, open_producer(producer_settings(broker)), BatchDecoder(topic + "-labels")
    )


@pytest.mark.parametrize("fmt", ["ndjson", "arrow"])
def test_the_aggregator_counts_exactly_what_was_posted(broker, make_topic, profile_path, tmp_path, fmt):  # noqa: F811
    topic = make_topic(2)
    config = sidecar_config(
        model={"name": "fraud", "version": "7"},
        kafka={
            "bootstrap_servers": broker.bootstrap_servers,
            "predictions_topic": topic,
            "format": fmt,
            "batch_max_records": 50,
            "batch_max_seconds": 0.1,
        },
    )
    bodies, pairs = native_bodies(4, 40), kserve_pairs(30)
    with running(config, producer=kafka_producer) as (sidecar, _):
        for body in bodies:
            assert post(sidecar, "/v1/predictions", body, {"Content-Type": "application/x-ndjson"}).status_code == 200
        for body, headers in pairs:
            assert post(sidecar, "/", body, headers).status_code == 200
        expected = 4 * 40 + 30 * 2
        # KServe pairs are gathered into batches: counted once queued, within a tick.
        wait_for(
            lambda: sample(sidecar, "model_health_predictions_total", model="fraud", model_version="7") == expected,
            what=f"{expected} predictions counted",
        )
        wait_for(lambda: sample(sidecar, "model_health_ingest_queue_records") == 0, what="everything forwarded")
    aggregator = aggregator_for(broker, topic, profile_path, tmp_path)
    try:
        aggregator.subscribe()
        counters = aggregator.counters
        deadline = time.monotonic() + 60
        while counters.predictions[("fraud", "7")] < expected and time.monotonic() < deadline:
            aggregator.poll_once()
        assert counters.predictions[("fraud", "7")] == expected, (
            counters.predictions,
            counters.consumed,
            counters.rejected,
        )
        assert not counters.rejected
        formats = {wire for _, wire in counters.consumed}
        assert formats <= {"ndjson", "json"} if fmt == "ndjson" else formats == {"arrow"}
        # No message holds more than batch_max_records records.
        assert sum(counters.consumed.values()) >= expected / 50
    finally:
        aggregator.consumer.close()
        aggregator.producer.close()


def test_the_command_forwards_and_stops_cleanly_on_sigterm(broker, make_topic, tmp_path):  # noqa: F811
    topic = make_topic(1)
    port = free_port()
    (tmp_path / "sidecar.yaml").write_text(
        json.dumps(
            {
                "model": {"name": "fraud", "version": "7"},
                "kafka": {
                    "bootstrap_servers": broker.bootstrap_servers,
                    "predictions_topic": topic,
                    "batch_max_seconds": 5,
                },
                "gpu": {"mode": "off"},
                "http": {"host": "127.0.0.1", "port": port},
            }
        )
    )
    log_path = tmp_path / "sidecar.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(SCRIPT), "sidecar", "--config", str(tmp_path / "sidecar.yaml")],
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:

        def healthy():
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, timeout=30, what="the sidecar to serve")
        for body in native_bodies(3, 10):
            reply = httpx.post(
                f"http://127.0.0.1:{port}/v1/predictions",
                content=body,
                headers={"Content-Type": "application/x-ndjson"},
                timeout=10,
            )
            assert reply.status_code == 200
        # batch_max_seconds is 5: the records are still buffered when SIGTERM comes.
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    consumer = open_consumer(group_settings(broker))
    try:
        consumer.subscribe([topic])
        messages = poll_count(consumer, 1, timeout_s=30)
        time.sleep(0.5)
        messages += consumer.poll(1.0)
        assert sum(len(m.value.splitlines()) for m in messages) == 30, log_path.read_text()
    finally:
        consumer.close()
