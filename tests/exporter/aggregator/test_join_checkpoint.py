"""KServe/Seldon halves waiting at a checkpoint survive a crash, over in-memory Kafka.

A request whose response has not come yet when the aggregator checkpoints came from a
message the checkpoint's offsets already cover: after a crash only the checkpoint can
bring it back, and its response (after the offsets) must still pair with it.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from detectors.profile import build_profile
from exporter.aggregator.checkpoint import load_checkpoint
from exporter.aggregator.inputs import input_topics, load_models
from exporter.aggregator.single import Aggregator
from exporter.config import AggregatorConfig
from exporter.pipeline.decode import BatchDecoder
from exporter.profiles import save_profile
from tests.exporter.decoders.messages import (
    REQUEST_TYPE,
    RESPONSE_TYPE,
    T0,
    kafka_headers,
    kserve_headers,
    seldon_request,
    seldon_response,
)
from tests.support.fake_kafka import FakeConsumer, FakeLog, FakeProducer

PREDICTIONS = "model-predictions"
INPUTS = "seldon.prod.model.iris.inputs"
OUTPUTS = "seldon.prod.model.iris.outputs"
NOW = T0 + 1.0  # the halves' TTL (60 s) never runs out in these tests


@pytest.fixture(scope="module")
def profiles(tmp_path_factory):
    root = tmp_path_factory.mktemp("profiles")
    rng = np.random.default_rng(1)
    out = {}
    for kind, model, version, prefix in (
        ("kserve", "sklearn-iris", "default", "instances"),
        ("seldon", "iris", "1", "predict"),
    ):
        columns = {f"{prefix}_{j}": rng.normal(5, 1, 3_000) for j in range(4)}
        columns["prediction"] = rng.integers(0, 3, 3_000).astype(float)
        profile = build_profile(
            pa.table(columns), model=model, model_version=version, created_at=1.7e9, prediction="prediction"
        )
        out[kind] = save_profile(profile, root / f"{kind}.parquet")
    return out


def config(kind: str, profiles, state) -> AggregatorConfig:
    if kind == "kserve":
        models = [{"name": "sklearn-iris", "version": "default", "reference": str(profiles["kserve"])}]
        return AggregatorConfig(models=models, state={"dir": str(state)}, allowed_lateness_seconds=3600)
    models = [{"name": "iris", "version": "1", "namespace": "prod", "reference": str(profiles["seldon"])}]
    return AggregatorConfig(
        models=models, kafka={"format": "seldon"}, state={"dir": str(state)}, allowed_lateness_seconds=3600
    )


def build(kind: str, profiles, state, log: FakeLog, batch: int = 3) -> Aggregator:
    cfg = config(kind, profiles, state)
    decoder = BatchDecoder(cfg.kafka.labels_topic, cfg.kafka.format)
    aggregator = Aggregator(
        cfg, load_models(cfg), FakeConsumer(log, batch=batch), FakeProducer(log), decoder, clock=lambda: NOW
    )
    aggregator.restore()
    aggregator.subscribe()
    return aggregator


def drain(aggregator: Aggregator) -> None:
    while aggregator.poll_once():
        pass


def half(log: FakeLog, kind: str, side: str, i: int, partition: int = 0) -> None:
    """Append the request or response half of inference ``i``."""
    rng = np.random.default_rng(i)
    if kind == "kserve":
        if side == "request":
            body = {"instances": [rng.normal(5, 1, 4).round(3).tolist()]}
            headers = kserve_headers(f"id-{i}", REQUEST_TYPE, prefix="ce_")
        else:
            body = {"predictions": [int(i % 3)]}
            headers = kserve_headers(f"id-{i}", RESPONSE_TYPE, prefix="ce_", time="2026-11-28T18:06:00.250Z")
        log.append(PREDICTIONS, json.dumps(body).encode(), headers=kafka_headers(headers), partition=partition)
    elif side == "request":
        log.append(
            INPUTS, seldon_request([rng.normal(5, 1, 4).round(3).tolist()]), key=f"id-{i}".encode(), partition=partition
        )
    else:
        log.append(OUTPUTS, seldon_response([i % 3]), key=f"id-{i}".encode(), partition=partition)


def totals(aggregator: Aggregator):
    snapshot = aggregator.evaluate()
    (model,) = snapshot.models
    latency = {k: h.count for k, h in aggregator.counters.latency.items()}
    return (
        snapshot.pipeline.predictions,
        snapshot.pipeline.prediction_errors,
        snapshot.pipeline.rejected,
        model.windows["1h"].samples,
        latency,
    )


@pytest.mark.parametrize("kind", ["kserve", "seldon"])
def test_a_half_waiting_at_the_checkpoint_pairs_after_a_crash(kind, profiles, tmp_path):
    log = FakeLog()
    for i in range(10):
        half(log, kind, "request", i)
    first = build(kind, profiles, tmp_path, log)
    drain(first)
    first.checkpoint()
    assert first.decode.joiners.kserve.pending + first.decode.joiners.seldon.pending == 10
    del first  # kill -9: nothing after the checkpoint survives

    for i in range(10):
        half(log, kind, "response", i)
    second = build(kind, profiles, tmp_path, log)
    drain(second)
    predictions, errors, rejected, samples, latency = totals(second)
    key = ("sklearn-iris", "default") if kind == "kserve" else ("iris", "1")
    assert predictions == {key: 10} and samples == 10
    assert errors.get(key, 0) == 0  # paired, not emitted as "no_response"
    assert rejected == {}  # no response refused as unmatched
    if kind == "kserve":  # the request's event time came back with it: latency from both halves
        assert latency == {key: 10}


@pytest.mark.parametrize("kind", ["kserve", "seldon"])
def test_crashes_at_random_points_count_every_inference_once(kind, profiles, tmp_path):
    def traffic() -> FakeLog:
        log = FakeLog()
        # Responses trail their requests by a few messages, on two partitions each.
        for i in range(240):
            half(log, kind, "request", i, partition=i % 2)
            if i >= 5:
                half(log, kind, "response", i - 5, partition=(i - 5) % 2)
        for i in range(235, 240):
            half(log, kind, "response", i, partition=i % 2)
        return log

    clean = build(kind, profiles, tmp_path / "clean", traffic())
    drain(clean)
    expected = totals(clean)
    assert sum(expected[0].values()) == 240 and expected[2] == {}

    log = traffic()
    state = tmp_path / "crashy"
    rng = np.random.default_rng(7)
    for _ in range(8):
        aggregator = build(kind, profiles, state, log)
        for _ in range(int(rng.integers(1, 25))):
            aggregator.poll_once()
        aggregator.checkpoint()
        for _ in range(int(rng.integers(0, 10))):
            aggregator.poll_once()  # lost with the process
    final = build(kind, profiles, state, log)
    drain(final)
    assert totals(final) == expected


def test_halves_travel_as_checkpoint_rows_not_metadata(profiles, tmp_path):
    log = FakeLog()
    half(log, "kserve", "request", 0)
    aggregator = build("kserve", profiles, tmp_path, log)
    drain(aggregator)
    aggregator.checkpoint()
    checkpoint = load_checkpoint(aggregator.checkpoint_path, {})
    assert len(checkpoint.documents["kserve"]) == 2  # the joiner's header and one waiting half
    assert checkpoint.documents["seldon"] == [checkpoint.documents["seldon"][0]]
    assert "id-0" not in json.dumps(checkpoint.extra) and "id-0" in checkpoint.documents["kserve"][1]


def test_seldon_format_consumes_each_models_topics(profiles, tmp_path):
    cfg = config("seldon", profiles, tmp_path)
    assert input_topics(cfg) == [INPUTS, OUTPUTS, "model-labels"]
    assert input_topics(config("kserve", profiles, tmp_path)) == ["model-predictions", "model-labels"]
