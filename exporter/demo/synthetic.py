"""Synthetic prediction logs with known drift, for the demo, tests and benchmarks.

The generator is a small credit-scoring-like model: mixed numeric distributions (normal,
log-normal, uniform, exponential, a low-cardinality count), Zipf-like categorical
columns, a logistic score and a Bernoulli label. ``drift=True`` shifts exactly the
columns :func:`drifted_columns` names, and weakens the score–label link so that
performance drops too.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

_NUMERIC_SHAPES = ("normal", "lognormal", "uniform", "exponential", "count")
MISSING_RATE = 0.01


def numeric_name(i: int) -> str:
    return f"num_{i:02d}"


def categorical_name(i: int) -> str:
    return f"cat_{i}"


def drifted_columns(numeric: int, categorical: int, drifted: int) -> list[str]:
    """Which columns drift: two numeric for each categorical, as the counts allow."""
    wanted_cat = min(categorical, drifted // 3)
    wanted_num = min(numeric, drifted - wanted_cat)
    wanted_cat = min(categorical, drifted - wanted_num)
    return [numeric_name(i) for i in range(wanted_num)] + [categorical_name(i) for i in range(wanted_cat)]


def _numeric(rng: np.random.Generator, shape: str, rows: int, shift: bool) -> np.ndarray:
    # A drifted column moves by half a standard deviation, the size users care about.
    if shape == "normal":
        return rng.normal(0.5 if shift else 0.0, 1.0, rows)
    if shape == "lognormal":
        return rng.lognormal(3.0 + (0.5 if shift else 0.0), 1.0, rows)
    if shape == "uniform":
        return rng.uniform(0.15 if shift else 0.0, 1.15 if shift else 1.0, rows)
    if shape == "exponential":
        return rng.exponential(1.6 if shift else 1.0, rows)
    return rng.poisson(4.0 if shift else 3.0, rows).astype(np.float64)


def _categorical(rng: np.random.Generator, index: int, rows: int, shift: bool) -> np.ndarray:
    levels = (4, 12, 30, 60, 7)[index % 5]
    weights = 1.0 / np.arange(1, levels + 1) ** 1.1
    if shift:
        weights = weights[::-1].copy()  # rare levels become common
    weights /= weights.sum()
    names = np.array([f"c{index}_{k:02d}" for k in range(levels)])
    return names[rng.choice(levels, size=rows, p=weights)]


def synthetic_table(
    rows: int,
    *,
    numeric: int = 20,
    categorical: int = 5,
    drifted: int = 6,
    drift: bool = False,
    seed: int = 0,
    with_missing: bool = True,
) -> pa.Table:
    """A table of ``numeric`` + ``categorical`` features, ``prediction`` and ``label``."""
    rng = np.random.default_rng(seed)
    moved = set(drifted_columns(numeric, categorical, drifted)) if drift else set()
    columns: dict[str, pa.Array] = {}
    logit = np.full(rows, -0.5)
    for i in range(numeric):
        name = numeric_name(i)
        values = _numeric(rng, _NUMERIC_SHAPES[i % len(_NUMERIC_SHAPES)], rows, name in moved)
        standardised = (values - values.mean()) / (values.std() or 1.0)
        logit += standardised * (0.8 / (1 + i))
        if with_missing and i % 7 == 3:
            values = values.copy()
            values[rng.random(rows) < MISSING_RATE] = np.nan
        columns[name] = pa.array(values, pa.float64())
    for i in range(categorical):
        name = categorical_name(i)
        values = _categorical(rng, i, rows, name in moved)
        mask = rng.random(rows) < MISSING_RATE if with_missing and i == 1 else None
        columns[name] = pa.array(values, pa.string(), mask=mask)
        logit += np.where(values == f"c{i}_00", 0.3, 0.0)
    score = 1.0 / (1.0 + np.exp(-logit))
    # After drift the model's score explains the label less well: concept drift.
    truth = 1.0 / (1.0 + np.exp(-(0.3 * logit))) if drift else score
    columns["prediction"] = pa.array(score, pa.float64())
    columns["label"] = pa.array((rng.random(rows) < truth).astype(np.int64))
    return pa.table(columns)


def prediction_log(
    table: pa.Table, model: str, model_version: str, timestamps: np.ndarray, id_prefix: str = "r"
) -> pa.Table:
    """A synthetic table as decoded prediction records (the ``exporter.records`` shape)."""
    from exporter.records import FEATURE_PREFIX, PREDICTION_FIELDS

    rows = table.num_rows
    columns: dict[str, pa.Array] = {
        "model": pa.array([model] * rows, pa.string()),
        "model_version": pa.array([model_version] * rows, pa.string()),
        "deployment_slot": pa.nulls(rows, pa.string()),
        "model_namespace": pa.nulls(rows, pa.string()),
        "request_id": pa.array([f"{id_prefix}-{i}" for i in range(rows)], pa.string()),
        "timestamp": pa.array(np.asarray(timestamps, dtype=np.float64)),
        "prediction_score": table.column("prediction").combine_chunks(),
        "prediction_class": pa.nulls(rows, pa.string()),
        "latency_ms": pa.nulls(rows, pa.float64()),
        "status": pa.array(["ok"] * rows, pa.string()),
    }
    assert tuple(columns) == tuple(f.name for f in PREDICTION_FIELDS)
    for name in table.column_names:
        if name not in ("prediction", "label"):
            columns[FEATURE_PREFIX + name] = table.column(name).combine_chunks()
    return pa.table(columns)


def label_log(table: pa.Table, model: str, timestamps: np.ndarray, id_prefix: str = "r") -> pa.Table:
    """The synthetic table's labels as decoded label records."""
    labels = table.column("label").to_numpy(zero_copy_only=False)
    return pa.table(
        {
            "model": pa.array([model] * table.num_rows, pa.string()),
            "request_id": pa.array([f"{id_prefix}-{i}" for i in range(table.num_rows)], pa.string()),
            "label_value": pa.array(labels.astype(np.float64)),
            "label_class": pa.array([str(int(v)) for v in labels], pa.string()),
            "timestamp": pa.array(np.asarray(timestamps, dtype=np.float64)),
        }
    )
