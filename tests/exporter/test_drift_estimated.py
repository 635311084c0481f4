"""``model-health drift --format json`` against a calibrated profile: ``performance_estimated``
when the current data has scores but no labels, and not otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from detectors.performance_estimation import estimate_performance
from detectors.summary import NumericSummary
from exporter.cli import main
from exporter.profiles import load_profile
from tests.exporter.test_cli import run

METRICS = ["roc_auc", "accuracy", "precision", "recall", "f1"]


@pytest.fixture(scope="module")
def profile(datasets, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("calibrated") / "fraud-7.parquet"
    with pytest.raises(SystemExit) as exited:
        main(
            ["reference", "build", str(datasets["reference"]), "--model", "fraud", "--model-version", "7"]
            + ["--prediction", "prediction", "--label", "label", "--out", str(out)]
        )
        raise SystemExit(0)
    assert exited.value.code == 0
    return out


def _current(datasets, tmp_path: Path, labels: str) -> Path:
    table = pq.read_table(datasets["current"])
    if labels == "absent":
        table = table.drop_columns(["label"])
    elif labels == "null":
        table = table.set_column(table.column_names.index("label"), "label", pa.nulls(table.num_rows, pa.int64()))
    path = tmp_path / f"current-{labels}.parquet"
    pq.write_table(table, path)
    return path


@pytest.mark.parametrize("labels", ["absent", "null"])
def test_scores_without_labels_carry_the_estimate(profile, datasets, tmp_path, capsys, labels):
    current = _current(datasets, tmp_path, labels)
    code, out, _ = run(["drift", "--reference", str(profile), "--current", str(current), "--format", "json"], capsys)
    assert code == 0
    report = json.loads(out)
    assert list(report["performance_estimated"]) == METRICS
    loaded = load_profile(profile)
    scores = pq.read_table(current).column("prediction").to_numpy()
    expected = estimate_performance(loaded, NumericSummary.fold(loaded.prediction.bins, scores))
    for metric in METRICS:
        assert report["performance_estimated"][metric] == pytest.approx(expected.metrics[metric], rel=1e-12)
        assert report["performance_estimated_stderr"][metric] == pytest.approx(expected.stderr[metric], rel=1e-12)
        assert 0.0 <= report["performance_estimated"][metric] <= 1.0
    assert report["performance_estimated_rows"] == int(np.isfinite(scores).sum())


def test_labelled_current_data_gets_no_estimate(profile, datasets, capsys):
    code, out, _ = run(
        ["drift", "--reference", str(profile), "--current", str(datasets["current"]), "--format", "json"], capsys
    )
    assert code == 0 and "performance_estimated" not in json.loads(out)


def test_raw_reference_data_or_no_scores_gets_no_estimate(datasets, tmp_path, capsys):
    current = _current(datasets, tmp_path, "absent")
    code, out, _ = run(
        ["drift", "--reference", str(datasets["reference"]), "--current", str(current), "--format", "json"], capsys
    )
    assert code == 0 and "performance_estimated" not in json.loads(out)


def test_the_table_format_shows_the_estimate(profile, datasets, tmp_path, capsys):
    current = _current(datasets, tmp_path, "absent")
    code, out, _ = run(["drift", "--reference", str(profile), "--current", str(current)], capsys)
    assert code == 0
    assert "Estimated performance" in out and "roc_auc" in out
