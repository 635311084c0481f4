"""Our label-free estimates beside NannyML's, chunk by chunk, on the oracle run's data.

Shared by the test (test_performance_estimation_nannyml.py) and the table in
docs/performance-estimation.md (``benchmarks/performance_estimation.py --nannyml``). Each
analysis chunk of the oracle run is folded into the profile's frozen bins, as the
aggregator folds a window, and estimated with :func:`estimate_performance`; the profile is
built from NannyML's reference with :func:`build_profile`, as ``model-health reference
build --prediction y_pred_proba --label label`` builds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from detectors.performance_estimation import (
    METRICS,
    ClassScores,
    EstimatedPerformance,
    estimate_performance,
    performance_dropped,
    reference_estimate,
)
from detectors.profile import ReferenceProfile, build_profile
from detectors.summary import NumericSummary

# The decision threshold of each binary dataset's model, as its profile states it. NannyML's
# synthetic binary model predicts positive from a score of 0.48 up, the car-loan one from 0.65
# (read off their y_pred columns); the first is left at the default 0.5 on purpose, to show
# the estimate with the contract's default, the second says what its model does.
BINARY_THRESHOLDS = {"synthetic_binary": 0.5, "car_loan": 0.65}
MULTICLASS = "synthetic_multiclass"


@dataclass(frozen=True)
class Chunk:
    key: str
    rows: int
    ours: EstimatedPerformance
    nannyml: dict[str, float]
    nannyml_sampling_error: dict[str, float]
    realised: dict[str, float]
    dropped: dict[str, bool]
    labels: np.ndarray
    predicted: np.ndarray


def _tables(out: Path, name: str) -> tuple[pa.Table, pa.Table]:
    return pq.read_table(out / f"{name}.reference.parquet"), pq.read_table(out / f"{name}.analysis.parquet")


def _profile(reference: pa.Table, **kwargs: Any) -> ReferenceProfile:
    # The first column is the dataset's one feature; car-loan labels are floats (0.0/1.0),
    # which a profile would read as a regression target unless told.
    return build_profile(
        reference,
        model="nannyml",
        model_version="0.13",
        created_at=0.0,
        features=[reference.column_names[0]],
        label="label",
        task="classification",
        **kwargs,
    )


def binary_profile(out: Path, name: str) -> ReferenceProfile:
    reference, _ = _tables(out, name)
    return _profile(reference, prediction="y_pred_proba", threshold=BINARY_THRESHOLDS[name])


def _score_columns(table: pa.Table) -> dict[str, str]:
    prefix = "y_pred_proba_"
    return {c.removeprefix(prefix): c for c in table.column_names if c.startswith(prefix)}


def multiclass_profile(out: Path) -> ReferenceProfile:
    reference, _ = _tables(out, MULTICLASS)
    return _profile(reference, prediction="y_pred", class_scores=_score_columns(reference))


def compare(out: Path, results: dict[str, Any], name: str) -> tuple[ReferenceProfile, list[Chunk]]:
    """The profile and, per oracle chunk, our estimate beside NannyML's and the realised values."""
    profile = multiclass_profile(out) if name == MULTICLASS else binary_profile(out, name)
    reference = reference_estimate(profile)
    _, analysis = _tables(out, name)
    chunks = []
    for chunk in results["datasets"][name]["chunks"]:
        part = analysis.slice(chunk["start"], chunk["end"] - chunk["start"])
        if name == MULTICLASS:
            bins = {k: s.bins for k, s in profile.class_scores.items()}
            scores = {k: part[c].to_numpy() for k, c in _score_columns(part).items()}
            window: NumericSummary | ClassScores = ClassScores.fold(bins, scores, part["y_pred"].to_numpy())
        else:
            window = NumericSummary.fold(profile.prediction.bins, part["y_pred_proba"].to_numpy())
        ours = estimate_performance(profile, window)
        chunks.append(
            Chunk(
                key=chunk["key"],
                rows=part.num_rows,
                ours=ours,
                nannyml={m: chunk[m]["estimated"] for m in METRICS},
                nannyml_sampling_error={m: chunk[m]["sampling_error"] for m in METRICS},
                realised={m: chunk[m]["realised"] for m in METRICS},
                dropped=performance_dropped(ours, reference),
                labels=np.asarray(part["label"].to_pylist()),
                predicted=np.asarray(part["y_pred"].to_pylist()),
            )
        )
    return profile, chunks


def markdown_table(profile: ReferenceProfile, chunks: list[Chunk], metrics: tuple[str, ...] = METRICS) -> str:
    """One row per chunk: ours / NannyML's / realised for each metric, then the largest gaps."""
    head = "| chunk | " + " | ".join(f"{m}: ours / NannyML / realised" for m in metrics) + " | dropped (k=3) |"
    lines = [head, "|" + " --- |" * (len(metrics) + 2)]
    reference = reference_estimate(profile)
    lines.append("| reference (ours) | " + " | ".join(f"{reference.metrics[m]:.4f}" for m in metrics) + " | |")
    for c in chunks:
        cells = [f"{c.ours.metrics[m]:.4f} / {c.nannyml[m]:.4f} / {c.realised[m]:.4f}" for m in metrics]
        fired = ", ".join(m for m in metrics if c.dropped[m]) or "—"
        lines.append(f"| {c.key} | " + " | ".join(cells) + f" | {fired} |")
    gap = {m: max(abs(c.ours.metrics[m] - c.nannyml[m]) for c in chunks) for m in metrics}
    realised_gap = {m: max(abs(c.ours.metrics[m] - c.realised[m]) for c in chunks) for m in metrics}
    lines.append("| max \\|ours − NannyML\\| | " + " | ".join(f"{gap[m]:.4f}" for m in metrics) + " | |")
    lines.append("| max \\|ours − realised\\| | " + " | ".join(f"{realised_gap[m]:.4f}" for m in metrics) + " | |")
    return "\n".join(lines)
