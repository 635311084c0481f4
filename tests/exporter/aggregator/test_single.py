"""The aggregator pipeline end to end over in-memory Kafka (the broker tests use tansu)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from detectors.profile import build_profile
from exporter.aggregator.single import Aggregator
from exporter.config import AggregatorConfig
from exporter.demo.synthetic import drifted_columns, synthetic_table
from exporter.pipeline.decode import BatchDecoder
from exporter.profiles import save_profile
from tests.support.fake_kafka import FakeConsumer, FakeLog, FakeProducer

SHAPE = {"numeric": 4, "categorical": 2, "drifted": 2}
ROWS = 3_000


@pytest.fixture(scope="module")
def profile_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("profiles") / "fraud-7.parquet"
    profile = build_profile(
        synthetic_table(20_000, seed=1, **SHAPE),
        model="fraud",
        model_version="7",
        created_at=1.7e9,
        prediction="prediction",
        label="label",
    )
    save_profile(profile, path)
    return path


def config(profile_path, state_dir) -> AggregatorConfig:
    return AggregatorConfig(
        models=[{"name": "fraud", "version": "7", "reference": str(profile_path), "namespace": "prod"}],
        windows=[{"name": "1h", "bucket_seconds": 60, "buckets": 60}],
        state={"dir": str(state_dir)},
        allowed_lateness_seconds=3600,
    )


def traffic(log: FakeLog, rows: int = ROWS, bad: int = 7) -> None:
    table = synthetic_table(rows, seed=2, drift=True, **SHAPE).to_pylist()
    lines = []
    for i, row in enumerate(table):
        features = {k: v for k, v in row.items() if k not in ("prediction", "label") and v == v}
        lines.append(
            json.dumps(
                {
                    "model": "fraud",
                    "model_version": "7",
                    "request_id": f"r{i}",
                    "timestamp": 1000.0 + i * 0.1,
                    "features": features,
                    "prediction": row["prediction"],
                    "latency_ms": 12.0,
                    "status": "ok",
                }
            )
        )
    for start in range(0, rows, 100):
        log.append("model-predictions", "\n".join(lines[start : start + 100]).encode(), partition=(start // 100) % 2)
    for _ in range(bad):
        log.append("model-predictions", b"{not json", partition=0)
    log.append("model-predictions", json.dumps({"model": "ghost", "features": {}, "prediction": 1}).encode())
    labels = [
        json.dumps({"model": "fraud", "request_id": f"r{i}", "label": row["label"], "timestamp": 1400.0})
        for i, row in enumerate(table)
    ]
    for start in range(0, rows, 500):
        log.append("model-labels", "\n".join(labels[start : start + 500]).encode())


def drain(aggregator: Aggregator, limit: int = 10_000) -> None:
    for _ in range(limit):
        if aggregator.poll_once() == 0:
            return


def build(profile_path, state_dir, log, clock=lambda: 1500.0) -> Aggregator:
    from exporter.aggregator.inputs import load_models

    cfg = config(profile_path, state_dir)
    aggregator = Aggregator(
        cfg,
        load_models(cfg),
        FakeConsumer(log, batch=7),
        FakeProducer(log),
        BatchDecoder(cfg.kafka.labels_topic),
        clock=clock,
    )
    aggregator.restore()
    aggregator.subscribe()
    return aggregator


def test_drift_counts_labels_and_dead_letters(profile_path, tmp_path):
    log = FakeLog()
    traffic(log)
    aggregator = build(profile_path, tmp_path, log)
    drain(aggregator)
    snapshot = aggregator.evaluate()
    (model,) = snapshot.models
    window = model.windows["1h"]
    assert window.samples == ROWS
    assert {f for f, d in window.features.items() if d.drift} == set(drifted_columns(**SHAPE))
    assert window.labels_joined == ROWS and snapshot.pipeline.labels_joined == {"fraud": ROWS}
    assert snapshot.pipeline.predictions == {("fraud", "7"): ROWS}
    assert snapshot.pipeline.rejected == {
        ("model-predictions", "invalid_json"): 7,
        ("model-predictions", "unknown_model"): 1,
    }
    dead = log.messages("model-health-deadletter")
    assert len(dead) == 8
    assert {dict(m.headers)["model-health-reason"] for m in dead} == {b"invalid_json", b"unknown_model"}
    assert aggregator.counters.latency[("fraud", "7")].count == ROWS


def test_restart_after_a_crash_counts_every_record_once(profile_path, tmp_path):
    clean_log = FakeLog()
    traffic(clean_log)
    clean = build(profile_path, tmp_path / "clean", clean_log)
    drain(clean)
    expected = clean.evaluate()

    log = FakeLog()
    traffic(log)
    state = tmp_path / "crashy"
    rng = np.random.default_rng(0)
    for _ in range(6):  # checkpoint at a random point, then "kill -9": drop the process state
        aggregator = build(profile_path, state, log)
        for _ in range(int(rng.integers(1, 40))):
            aggregator.poll_once()
        aggregator.checkpoint()
        for _ in range(int(rng.integers(0, 20))):
            aggregator.poll_once()  # work after the last checkpoint is lost with the process
    final = build(profile_path, state, log)
    drain(final)
    got = final.evaluate()
    assert got.models[0].windows["1h"].samples == expected.models[0].windows["1h"].samples == ROWS
    assert got.pipeline.predictions == expected.pipeline.predictions
    assert got.pipeline.rejected == expected.pipeline.rejected
    assert got.pipeline.labels_joined == expected.pipeline.labels_joined
    for feature, drift in expected.models[0].windows["1h"].features.items():
        assert got.models[0].windows["1h"].features[feature] == drift


def test_copies_are_counted_once_across_partitions_and_crashes(profile_path, tmp_path):
    """A retry's copy of a batch, on either partition and after any crash, is dropped before it
    is counted; the copies are counted in records_duplicate_total."""
    log = FakeLog()
    traffic(log, bad=0)
    originals = [m for m in log.messages("model-predictions") if m.value.startswith(b'{"model": "fraud"')]
    for number, message in enumerate(originals[::4]):  # a quarter of the batches written again
        log.append("model-predictions", message.value, partition=number % 2)
    copies = sum(m.value.count(b"\n") + 1 for m in originals[::4])
    state = tmp_path / "state"
    rng = np.random.default_rng(3)
    for _ in range(4):  # crash at random points: the recent ids come back with the checkpoint
        aggregator = build(profile_path, state, log)
        for _ in range(int(rng.integers(1, 60))):
            aggregator.poll_once()
        aggregator.checkpoint()
        for _ in range(int(rng.integers(0, 20))):
            aggregator.poll_once()
    final = build(profile_path, state, log)
    drain(final)
    snapshot = final.evaluate()
    assert snapshot.pipeline.predictions == {("fraud", "7"): ROWS}
    assert snapshot.models[0].windows["1h"].samples == ROWS
    assert snapshot.pipeline.duplicates == {"model-predictions": copies}
