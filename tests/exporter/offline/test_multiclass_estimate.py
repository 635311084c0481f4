"""Label-free estimation of a multiclass classifier through the commands a user runs:
``reference build --class-scores`` fits the one-vs-rest calibration, ``drift --format json``
estimates a labelless window from its per-class scores and predicted classes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from detectors.performance import roc_auc
from exporter.cli import main


def _data(rng: np.random.Generator, n: int, temper: float = 0.8, spread: float = 1.0) -> tuple[pa.Table, np.ndarray]:
    """Two features (normal, ``spread`` their standard deviation), softmax scores of three
    classes, labels drawn from a tempered version of them."""
    x = rng.normal(scale=spread, size=(n, 2))
    logits = np.stack([x[:, 0], x[:, 1], -x[:, 0] - x[:, 1]], axis=1) * 1.5
    scores = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    truth = np.exp(logits * temper) / np.exp(logits * temper).sum(axis=1, keepdims=True)
    labels = np.array(["a", "b", "c"])[(rng.uniform(size=(n, 1)) > truth.cumsum(axis=1)).sum(axis=1)]
    table = pa.table(
        {
            "x0": x[:, 0],
            "x1": x[:, 1],
            "score_a": scores[:, 0],
            "score_b": scores[:, 1],
            "score_c": scores[:, 2],
            "predicted": np.array(["a", "b", "c"])[scores.argmax(axis=1)],
            "label": labels,
        }
    )
    return table, scores


def _run(args: list[str], capsys) -> str:  # noqa: ANN001
    with pytest.raises(SystemExit) as exited:
        main(args)
        raise SystemExit(0)
    assert (exited.value.code or 0) == 0
    return capsys.readouterr().out


def test_a_labelless_multiclass_window_gets_its_estimate(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    rng = np.random.default_rng(11)
    reference, _ = _data(rng, 30_000)
    current, scores = _data(rng, 10_000)
    pq.write_table(reference, tmp_path / "reference.parquet")
    pq.write_table(current.drop_columns(["label"]), tmp_path / "current.parquet")
    profile = tmp_path / "profile.parquet"
    _run(
        [
            "reference", "build", str(tmp_path / "reference.parquet"), "--model", "m", "--model-version", "1",
            "--features", "x0,x1", "--prediction", "predicted", "--label", "label",
            "--class-scores", "a=score_a,b=score_b,c=score_c", "--out", str(profile),
        ],
        capsys,
    )  # fmt: skip
    report = json.loads(
        _run(
            ["drift", "--reference", str(profile), "--current", str(tmp_path / "current.parquet"), "--format", "json"],
            capsys,
        )
    )
    estimated = report["performance_estimated"]
    labels = current.column("label").to_numpy(zero_copy_only=False)
    predicted = current.column("predicted").to_numpy(zero_copy_only=False)
    assert estimated["accuracy"] == pytest.approx(np.mean(labels == predicted), abs=0.02)
    auc = np.mean([roc_auc(labels == k, scores[:, i]) for i, k in enumerate("abc")])
    assert estimated["roc_auc"] == pytest.approx(auc, abs=0.02)
    assert report["performance_estimated_rows"] == 10_000
