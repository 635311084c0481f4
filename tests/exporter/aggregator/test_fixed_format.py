"""``kafka.format: json`` through the aggregator: other formats are counted and dead-lettered."""

from __future__ import annotations

import json

import pytest

from detectors.profile import build_profile
from exporter.aggregator.inputs import load_models
from exporter.aggregator.single import Aggregator
from exporter.config import AggregatorConfig
from exporter.demo.synthetic import synthetic_table
from exporter.pipeline.decode import BatchDecoder
from exporter.profiles import save_profile
from tests.exporter.decoders.messages import (
    REQUEST_TYPE,
    arrow_batch,
    ipc_stream,
    kafka_headers,
    kserve_headers,
    ndjson,
)
from tests.support.fake_kafka import FakeConsumer, FakeLog, FakeProducer

SHAPE = {"numeric": 2, "categorical": 1, "drifted": 0}


@pytest.fixture(scope="module")
def profile_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("profiles") / "fraud-7.parquet"
    save_profile(
        build_profile(
            synthetic_table(2_000, seed=1, **SHAPE),
            model="fraud",
            model_version="7",
            created_at=1.7e9,
            prediction="prediction",
        ),
        path,
    )
    return path


def record(i: int) -> dict:
    return {
        "model": "fraud",
        "model_version": "7",
        "request_id": f"r{i}",
        "timestamp": 1000.0 + i,
        "features": {"num_0": 0.5, "num_1": 1.5, "cat_0": "a"},
        "prediction": 0.3,
    }


def test_messages_in_other_formats_are_refused_counted_and_dead_lettered(profile_path, tmp_path):
    config = AggregatorConfig(
        models=[{"name": "fraud", "version": "7", "reference": str(profile_path)}],
        kafka={"format": "json"},
        state={"dir": str(tmp_path)},
        allowed_lateness_seconds=3600,
    )
    log = FakeLog()
    for i in range(5):
        log.append("model-predictions", json.dumps(record(i)).encode())
    log.append("model-predictions", ndjson([record(5), record(6)]))
    log.append("model-predictions", ipc_stream(arrow_batch(rows=3)))
    log.append(
        "model-predictions",
        b'{"instances": [[1]]}',
        headers=kafka_headers(kserve_headers("k", REQUEST_TYPE, prefix="ce_")),
    )
    log.append("model-labels", json.dumps({"model": "fraud", "request_id": "r0", "label": 1}).encode())
    aggregator = Aggregator(
        config,
        load_models(config),
        FakeConsumer(log),
        FakeProducer(log),
        BatchDecoder(config.kafka.labels_topic, config.kafka.format),
        clock=lambda: 1500.0,
    )
    aggregator.subscribe()
    while aggregator.poll_once():
        pass
    snapshot = aggregator.evaluate()
    assert snapshot.pipeline.predictions == {("fraud", "7"): 5}
    assert snapshot.pipeline.rejected == {("model-predictions", "invalid_json"): 3}
    # What each message was, as detected: the operator sees which producer writes what.
    assert snapshot.pipeline.consumed == {
        ("model-predictions", "json"): 5,
        ("model-predictions", "ndjson"): 1,
        ("model-predictions", "arrow"): 1,
        ("model-predictions", "kserve"): 1,
        ("model-labels", "json"): 1,
    }
    details = sorted(dict(m.headers)["model-health-detail"].decode() for m in log.messages("model-health-deadletter"))
    assert details == [
        "kafka.format is json (one JSON document per message), but this message holds several lines of JSON "
        "documents: NDJSON needs kafka.format ndjson",
        "kafka.format is json, but this message is Arrow IPC",
        "kafka.format is json, but this message is a KServe CloudEvent",
    ]
