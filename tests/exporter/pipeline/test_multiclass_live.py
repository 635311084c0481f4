"""Live label-free estimation of a multiclass model, as the aggregator runs it.

The producer logs each record's per-class scores beside its features (NDJSON, the native
record: ``features.score_a`` …, ``prediction`` the predicted class) and no labels — or, as a
``predict_proba`` model behind KServe's logger does, a probability vector per instance. Single
mode, a restart from the checkpoint and two scale-out replicas must each give the estimate
the offline command gives for the same rows: the class-score summaries are integer bin
counts, so the three agree exactly, however the records were batched.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from detectors.performance_estimation import ClassScores, estimate_performance
from detectors.profile import ReferenceProfile, build_profile
from exporter.aggregator.collector import SnapshotCollector
from exporter.aggregator.inputs import load_models
from exporter.aggregator.single import Aggregator
from exporter.config import AggregatorConfig
from exporter.pipeline.buckets import Bucket
from exporter.pipeline.class_scores import PREDICTED_KEY, SCORE_KEY
from exporter.pipeline.decode import BatchDecoder
from exporter.pipeline.packed import BucketLayout, pack, unpack
from exporter.pipeline.summary_wire import SummaryHeader, decode_summary, encode_summary
from exporter.profiles import save_profile
from tests.exporter.aggregator.scaleout.harness import Clock, Cluster, Feeder, make_config
from tests.exporter.aggregator.scaleout.traffic import Traffic
from tests.exporter.decoders.corpus.kserve import Agent, inference, v1_request, v1_response
from tests.exporter.offline.test_multiclass_estimate import _data
from tests.support.fake_kafka import FakeConsumer, FakeLog, FakeProducer

CLASSES = ("a", "b", "c")
ROWS = 6_000
BASE = 1_000.0


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, ReferenceProfile, pa.Table]:
    rng = np.random.default_rng(11)
    reference, _ = _data(rng, 30_000)
    # Covariate shift: features nearer the boundaries, scores less sure, a lower accuracy —
    # what the estimate can see (a changed P(label | score) it cannot; docs, *Limits*).
    current, _ = _data(rng, ROWS, spread=0.5)
    profile = build_profile(
        reference,
        model="tickets",
        model_version="3",
        created_at=1.7e9,
        features=["x0", "x1"],
        prediction="predicted",
        label="label",
        class_scores={k: f"score_{k}" for k in CLASSES},
    )
    path = save_profile(profile, tmp_path_factory.mktemp("profiles") / "tickets-3.parquet")
    return path, profile, current


def _messages(current: pa.Table, per_message: int = 100) -> list[bytes]:
    """NDJSON batches as a service logging its classifier writes them (no labels)."""
    lines = [
        json.dumps(
            {
                "model": "tickets",
                "model_version": "3",
                "request_id": f"r{i}",
                "timestamp": BASE + i * 0.1,
                "prediction": row["predicted"],
                "features": {"x0": row["x0"], "x1": row["x1"], **{f"score_{k}": row[f"score_{k}"] for k in CLASSES}},
            }
        )
        for i, row in enumerate(current.to_pylist())
    ]
    return ["\n".join(lines[i : i + per_message]).encode() for i in range(0, len(lines), per_message)]


def _offline(profile: ReferenceProfile, current: pa.Table) -> dict[str, float]:
    bins = {k: profile.class_scores[k].bins for k in CLASSES}
    scores = {k: current.column(f"score_{k}").to_numpy() for k in CLASSES}
    predicted = current.column("predicted").to_numpy(zero_copy_only=False)
    return estimate_performance(profile, ClassScores.fold(bins, scores, predicted)).metrics


def _config(path: Path, state: Path) -> AggregatorConfig:
    return AggregatorConfig(
        models=[{"name": "tickets", "version": "3", "reference": str(path)}],
        windows=[{"name": "1h", "bucket_seconds": 60, "buckets": 60}],
        state={"dir": str(state)},
        allowed_lateness_seconds=100_000,
    )


def _single(config: AggregatorConfig, log: FakeLog) -> Aggregator:
    aggregator = Aggregator(
        config,
        load_models(config),
        FakeConsumer(log, batch=7),
        FakeProducer(log),
        BatchDecoder(config.kafka.labels_topic),
        clock=lambda: BASE + ROWS * 0.1 + 5,
    )
    aggregator.restore()
    aggregator.subscribe()
    while aggregator.poll_once():
        pass
    return aggregator


def _estimated_samples(snapshot) -> dict[str, float]:  # noqa: ANN001
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(lambda: snapshot))
    return {
        s.labels["metric"]: s.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for s in family.samples
        if s.name == "model_health_performance_estimated" and s.labels["window"] == "1h"
    }


def test_single_mode_estimates_a_labelless_multiclass_window_as_the_offline_command(data, tmp_path):
    path, profile, current = data
    log = FakeLog()
    for i, message in enumerate(_messages(current)):
        log.append("model-predictions", message, partition=i % 2)
    aggregator = _single(_config(path, tmp_path), log)
    snapshot = aggregator.evaluate()
    window = snapshot.models[0].windows["1h"]
    assert window.samples == ROWS and window.labels_joined == 0
    expected = _offline(profile, current)
    assert window.estimated is not None and window.estimated.count == ROWS
    assert window.estimated.metrics == pytest.approx(expected, abs=1e-12)
    # The estimate is a real one: near the realised accuracy these rows would have.
    realised = float(np.mean(current.column("label").to_numpy(zero_copy_only=False) == current.column("predicted")))
    assert window.estimated.metrics["accuracy"] == pytest.approx(realised, abs=0.03)
    assert window.estimated_dropped["accuracy"], "the tempered truth makes this window worse than the reference"
    # Exported as the binary case is: one sample per metric, and no class score among the features.
    assert _estimated_samples(snapshot) == pytest.approx({m: v for m, v in expected.items() if not math.isnan(v)})
    assert set(window.features) == {"x0", "x1"}

    # A restart from the checkpoint brings the class scores back with the windows.
    aggregator.checkpoint()
    restarted = _single(_config(path, tmp_path), FakeLog())
    again = restarted.evaluate().models[0].windows["1h"]
    assert again.estimated is not None and again.estimated.metrics == window.estimated.metrics


def test_records_without_every_class_score_fold_no_estimate(data, tmp_path):
    path, _, current = data
    log = FakeLog()
    for message in _messages(current.slice(0, 500)):
        lines = [json.loads(line) for line in message.splitlines()]
        for line in lines:
            del line["features"]["score_c"]
        log.append("model-predictions", "\n".join(json.dumps(line) for line in lines).encode())
    window = _single(_config(path, tmp_path), log).evaluate().models[0].windows["1h"]
    assert window.samples == 500 and window.estimated is None and window.estimated_dropped == {}


def test_class_scores_survive_packing_and_summary_messages(data):
    _, profile, current = data
    log = FakeLog()
    for message in _messages(current.slice(0, 900)):
        log.append("model-predictions", message)
    from exporter.pipeline.windows import ModelWindows, WindowSpec

    decoded, _ = BatchDecoder("model-labels")(
        [m for m in log.messages("model-predictions")], now=BASE + 100
    )  # the decode every mode shares
    store = ModelWindows(profile, [WindowSpec("s", 600, 1)], allowed_lateness=math.inf)
    for table in decoded.predictions:
        store.fold_predictions(table)
    ((start, bucket),) = store.buckets["s"].items()
    keys = {SCORE_KEY + k for k in CLASSES} | {PREDICTED_KEY + k for k in CLASSES}
    assert keys <= set(bucket.features)
    layout = BucketLayout.of(profile)
    unpacked = unpack(pack(bucket, layout), layout)
    assert all(unpacked.features[k] == bucket.features[k] for k in keys)
    header = SummaryHeader(
        model="tickets",
        model_version="3",
        bucket_start=start,
        bucket_seconds=600,
        producer_id="pod-1",
        sequence=1,
        records=bucket.records,
        profile_created_at=profile.metadata.created_at,
    )
    _, received = decode_summary(
        encode_summary(header, Bucket(bucket.records, bucket.features, bucket.prediction)), profile
    )
    assert all(received.features[k] == bucket.features[k] for k in keys)


def test_two_scale_out_replicas_estimate_as_single_mode(data, tmp_path):
    path, profile, current = data
    messages = _messages(current, per_message=25)
    traffic = Traffic(messages, [], {("tickets", "3"): ROWS}, {}, {})
    config = make_config({("tickets", "3"): path}, tmp_path / "state")
    clock = Clock(BASE + ROWS * 0.1 + 5)
    log = FakeLog()
    cluster = Cluster(config, log, clock)
    Feeder(log, traffic).feed()
    cluster.start(tmp_path / "r1")
    cluster.start(tmp_path / "r2")
    cluster.drain()
    estimates = [
        model.windows["1h"].estimated
        for snapshot in cluster.evaluate()
        for model in snapshot.models
        if model.windows["1h"].samples
    ]
    assert len(estimates) == 1, "one owner of the model exports its windows"
    assert estimates[0].metrics == pytest.approx(_offline(profile, current), abs=1e-12)


def test_kserve_predict_proba_traffic_is_estimated_from_its_probability_vectors(tmp_path):
    """A scikit-learn ``predict_proba`` model behind KServe's logger: no score columns, only the
    V1 response's probability vector per instance; classes are named by position (0, 1, 2)."""
    rng = np.random.default_rng(12)
    by_position = {"a": "0", "b": "1", "c": "2"}

    def positional(table: pa.Table) -> pa.Table:
        renamed = table.rename_columns(
            [f"p{by_position[c[-1]]}" if c.startswith("score_") else c for c in table.column_names]
        )
        for column in ("predicted", "label"):
            values = [by_position[v] for v in renamed.column(column).to_pylist()]
            renamed = renamed.set_column(renamed.column_names.index(column), column, pa.array(values))
        return renamed

    reference, _ = _data(rng, 30_000)
    current, _ = _data(rng, 3_000, spread=0.5)
    reference, current = positional(reference), positional(current)
    profile = build_profile(
        reference,
        model="iris",
        model_version="2",
        created_at=1.7e9,
        features=["x0", "x1"],
        prediction="predicted",
        label="label",
        class_scores={k: f"p{k}" for k in ("0", "1", "2")},
    )
    path = save_profile(profile, tmp_path / "iris-2.parquet")
    agent = Agent("iris", "prod")
    log = FakeLog()
    for i, row in enumerate(current.to_pylist()):
        vector = [row["p0"], row["p1"], row["p2"]]
        for event in inference(
            agent, v1_request([{"x0": row["x0"], "x1": row["x1"]}]), v1_response([vector]), at=BASE + i * 0.1
        ):
            log.append("model-predictions", event.value, headers=list(event.headers), partition=i % 2)
    config = AggregatorConfig(
        models=[{"name": "iris", "version": "2", "reference": str(path)}],
        windows=[{"name": "1h", "bucket_seconds": 60, "buckets": 60}],
        state={"dir": str(tmp_path / "state")},
        allowed_lateness_seconds=100_000,
    )
    window = _single(config, log).evaluate().models[0].windows["1h"]
    assert window.samples == 3_000
    bins = {k: profile.class_scores[k].bins for k in ("0", "1", "2")}
    scores = {k: current.column(f"p{k}").to_numpy() for k in ("0", "1", "2")}
    expected = estimate_performance(
        profile, ClassScores.fold(bins, scores, current.column("predicted").to_numpy(zero_copy_only=False))
    )
    assert window.estimated is not None and window.estimated.count == 3_000
    assert window.estimated.metrics == pytest.approx(expected.metrics, abs=1e-12)
