import dataclasses
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from detectors.exact_sum import ExactSum
from detectors.profile import build_profile
from exporter.aggregator.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from exporter.demo.synthetic import label_log, prediction_log, synthetic_table
from exporter.pipeline.label_join import LabelJoiner
from exporter.pipeline.partial import label_rows
from exporter.pipeline.request_keys import request_keys
from exporter.pipeline.windows import ModelWindows, WindowSpec

SHAPE = {"numeric": 3, "categorical": 2, "drifted": 1}
WINDOWS = [WindowSpec("5m", 60, 5), WindowSpec("1h", 600, 6)]


@pytest.fixture(scope="module")
def profile():
    return build_profile(
        synthetic_table(5_000, seed=1, **SHAPE),
        model="m",
        model_version="1",
        created_at=42.0,
        prediction="prediction",
        label="label",
    )


def filled(profile) -> ModelWindows:
    store = ModelWindows(profile, WINDOWS, allowed_lateness=600)
    table = synthetic_table(2_000, seed=2, **SHAPE)
    times = np.linspace(1000, 1500, 2_000)
    log = prediction_log(table, "m", "1", times)
    store.fold_predictions(log)
    joiner = LabelJoiner(600, 10_000)
    joiner.add_predictions(
        "m",
        "1",
        request_keys("m", log.column("request_id")),
        times.tolist(),
        log.column("prediction_score").to_pylist(),
        [None] * 2_000,
        now=1500,
    )
    labels = label_log(table, "m", times + 10)
    store.fold_labels(labels)
    for joined in joiner.add_labels(label_rows("m", labels), now=1510).values():
        store.fold_joined([joined])
    return store


def test_checkpoint_round_trips_every_bucket(tmp_path, profile):
    store = filled(profile)
    save_checkpoint(
        tmp_path / "state.parquet",
        {("m", "1"): store},
        Checkpoint({("preds", 0): 1234, ("preds", 1): 7}, {"k": [1, 2]}),
    )
    fresh = ModelWindows(profile, WINDOWS, allowed_lateness=600)
    restored = load_checkpoint(tmp_path / "state.parquet", {("m", "1"): fresh})
    assert restored.offsets == {("preds", 0): 1234, ("preds", 1): 7} and restored.extra == {"k": [1, 2]}
    assert fresh.newest_event == store.newest_event and fresh.last_label_at == store.last_label_at
    for window in ("5m", "1h"):
        assert fresh.buckets[window].keys() == store.buckets[window].keys()
        for start, bucket in store.buckets[window].items():
            again = fresh.buckets[window][start]
            assert again.records == bucket.records and again.labels == bucket.labels
            assert all(again.features[n] == bucket.features[n] for n in bucket.features)
            assert again.prediction == bucket.prediction and again.label == bucket.label
            assert again.performance == bucket.performance and again.loss == bucket.loss


def test_missing_checkpoint_and_changed_profile(tmp_path, profile):
    assert load_checkpoint(tmp_path / "none.parquet", {}) is None
    save_checkpoint(tmp_path / "state.parquet", {("m", "1"): filled(profile)}, Checkpoint())
    other = build_profile(
        synthetic_table(5_000, seed=9, **SHAPE),
        model="m",
        model_version="1",
        created_at=43.0,
        prediction="prediction",
        label="label",
    )
    fresh = ModelWindows(other, WINDOWS, allowed_lateness=600)
    load_checkpoint(tmp_path / "state.parquet", {("m", "1"): fresh})
    assert fresh.buckets == {"5m": {}, "1h": {}}


def test_a_failed_write_leaves_the_old_checkpoint(tmp_path, profile, monkeypatch):
    path = tmp_path / "state.parquet"
    save_checkpoint(path, {("m", "1"): filled(profile)}, Checkpoint({("t", 0): 1}))
    import exporter.aggregator.checkpoint as module

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(module.os, "replace", boom)
    with pytest.raises(OSError):
        save_checkpoint(path, {("m", "1"): filled(profile)}, Checkpoint({("t", 0): 99}))
    assert load_checkpoint(path, {("m", "1"): ModelWindows(profile, WINDOWS, 600)}).offsets == {("t", 0): 1}
    assert [p.name for p in tmp_path.iterdir()] == ["state.parquet"]  # no temporary left behind


FORMAT_1 = Path(__file__).parent / "fixtures" / "checkpoint-format-1.parquet"


def test_a_format_1_checkpoint_still_loads(profile):
    """Written by the aggregator before buckets were packed (one row per summary), of filled(profile)."""
    assert pq.read_schema(FORMAT_1).metadata[b"model_health.checkpoint"].startswith(b'{"format_version": 1')
    fresh = ModelWindows(profile, WINDOWS, allowed_lateness=600)
    restored = load_checkpoint(FORMAT_1, {("m", "1"): fresh})
    assert restored.offsets == {("preds", 0): 1234} and restored.documents == {"kserve": ['{"a": 1}']}
    store = filled(profile)
    for window in ("5m", "1h"):
        assert fresh.buckets[window].keys() == store.buckets[window].keys()
        for start, bucket in fresh.buckets[window].items():
            _assert_same(bucket, store.buckets[window][start], f"{window}[{start}]")
    assert fresh.newest_event == store.newest_event


def _assert_same(loaded: object, built: object, where: str) -> None:
    """Equal, counts and bins exactly; sums, minima and maxima to 1e-12. The fixture's scores and
    losses came from ``np.exp`` and ``np.log`` on the machine that wrote it, whose SIMD kernels
    (AVX-512 or AVX2) may round an ulp apart from this machine's: its exact sums of them differ
    in their last digits, not in what they add up to."""
    if isinstance(loaded, ExactSum):
        assert isinstance(built, ExactSum) and float(loaded) == pytest.approx(float(built), rel=1e-12), where
    elif isinstance(loaded, float):
        assert loaded == pytest.approx(built, rel=1e-12, nan_ok=True), where
    elif isinstance(loaded, np.ndarray) and loaded.dtype.kind == "f":
        assert isinstance(built, np.ndarray) and np.allclose(loaded, built, rtol=1e-12, atol=0, equal_nan=True), where
    elif isinstance(loaded, np.ndarray):
        assert isinstance(built, np.ndarray) and np.array_equal(loaded, built), where
    elif isinstance(loaded, dict):
        assert isinstance(built, dict) and loaded.keys() == built.keys(), where
        for key in loaded:
            _assert_same(loaded[key], built[key], f"{where}[{key!r}]")
    elif dataclasses.is_dataclass(loaded) and not isinstance(loaded, type):
        assert type(loaded) is type(built), where
        for item in dataclasses.fields(loaded):
            _assert_same(getattr(loaded, item.name), getattr(built, item.name), f"{where}.{item.name}")
    elif isinstance(loaded, (tuple, list)):
        assert isinstance(built, type(loaded)) and len(loaded) == len(built), where
        for n, (a, b) in enumerate(zip(loaded, built)):
            _assert_same(a, b, f"{where}[{n}]")
    else:
        assert loaded == built, where


def test_format_2_is_smaller_and_refuses_a_damaged_bucket(tmp_path, profile):
    path = tmp_path / "state.parquet"
    save_checkpoint(path, {("m", "1"): filled(profile)}, Checkpoint({("preds", 0): 1234}, {"k": [1, 2]}))
    assert path.stat().st_size < FORMAT_1.stat().st_size
    table = pq.read_table(path)
    rows = table.to_pylist()
    rows[0]["counts_values"] = rows[0]["counts_values"][:-1]  # one byte short
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), path)
    with pytest.raises(ValueError, match=r"bucket 5m@\d+ of m v1: .*counts"):
        load_checkpoint(path, {("m", "1"): ModelWindows(profile, WINDOWS, allowed_lateness=600)})


FORMAT_2 = Path(__file__).parent / "fixtures" / "checkpoint-format-2.parquet"


def test_a_format_2_checkpoint_joins_by_the_keys_of_its_request_ids():
    """Written by the build before request keys (2e85dc0): its join buffers hold request ids
    (``r-1``…``r-3`` waiting for labels, a label for ``r-9`` waiting for its prediction)."""
    assert pq.read_schema(FORMAT_2).metadata[b"model_health.checkpoint"].startswith(b'{"format_version": 2')
    restored = load_checkpoint(FORMAT_2, {})
    assert restored.offsets == {("preds", 0): 42}
    joiner = LabelJoiner(600, 10_000)
    joiner.import_state(restored.extra["joiner"])
    assert joiner.pending_counts() == {"m": 3}
    labels = pa.table(
        {"model": ["m"], "request_id": ["r-2"], "label_value": [0.0], "label_class": ["0"], "timestamp": [130.0]}
    )
    joined = joiner.add_labels(label_rows("m", labels), now=130.0)
    assert joined[("m", "1")].timestamps.tolist() == [101.0]
    late = joiner.add_predictions("m", "1", request_keys("m", ["r-9"]), [103.0], [0.7], [None], now=130.0)
    assert late[("m", "1")].labels.tolist() == ["1"] and joiner.pending_counts() == {"m": 2}
