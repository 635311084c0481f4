"""Whole scenarios of producer traffic for one model, for the broker tests and the benchmark.

The model ``hidden`` has four numeric and two categorical features, two of them drifted in the
current traffic (:func:`exporter.demo.synthetic.synthetic_table`); missing values are filled
(the same way in the reference and the traffic), since a KServe body is JSON written by Go,
which has no NaN, and a Seldon BYTES tensor has no null.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pyarrow as pa

from detectors.profile import build_profile
from exporter.demo.synthetic import drifted_columns, synthetic_table
from exporter.profiles import save_profile
from tests.exporter.decoders.corpus import kserve, seldon

MODEL = "hidden"
SHAPE = {"numeric": 4, "categorical": 2, "drifted": 2}
DRIFTED = frozenset(drifted_columns(**SHAPE))
FEATURES = ("num_00", "num_01", "num_02", "num_03", "cat_0", "cat_1")


def _filled(row: dict[str, Any]) -> dict[str, Any]:
    return {
        name: (
            ("missing" if name.startswith("cat") else 0.0)
            if value is None or (isinstance(value, float) and math.isnan(value))
            else value
        )
        for name, value in row.items()
    }


def reference_table(rows: int = 5_000) -> pa.Table:
    """The reference data (no drift), filled: build the profile from it."""
    return pa.Table.from_pylist([_filled(row) for row in synthetic_table(rows, seed=1, **SHAPE).to_pylist()])


def save_reference_profile(directory: Path) -> Path:
    """The scenario's profile (``hidden`` version ``1``, scores and labels) saved in ``directory``."""
    profile = build_profile(
        reference_table(),
        model=MODEL,
        model_version="1",
        created_at=1.7e9,
        prediction="prediction",
        label="label",
    )
    return save_profile(profile, directory / "hidden-1.parquet")


def current_rows(count: int, seed: int = 2) -> list[dict[str, Any]]:
    """``count`` rows of drifted traffic: features, ``prediction`` and ``label``."""
    return [_filled(row) for row in synthetic_table(count, seed=seed, drift=True, **SHAPE).to_pylist()]


def kserve_events(
    agent: kserve.Agent, count: int, base_time: float, *, prefix: str = "k", seed: int = 2
) -> list[kserve.Logged]:
    """``count`` inferences, one V1 instance each, one per 0.1 s from ``base_time``, as the agent
    logs them (``agent.log_mode`` says which events)."""
    events: list[kserve.Logged] = []
    for i, row in enumerate(current_rows(count, seed)):
        features = {name: row[name] for name in FEATURES}
        events += kserve.inference(
            agent,
            kserve.v1_request([features]),
            kserve.v1_response([row["prediction"]]),
            at=base_time + i * 0.1,
            ce_id=f"{prefix}-{i}",
        )
    return events


def seldon_messages(
    gateway: seldon.Gateway, count: int, *, partitions: int = 2, prefix: str = "s", seed: int = 2
) -> list[seldon.Written]:
    """``count`` inferences of model ``hidden`` on its Seldon topics, in the pandas-codec layout."""
    messages: list[seldon.Written] = []
    for i, row in enumerate(current_rows(count, seed)):
        columns = {name: [row[name]] for name in FEATURES}
        messages += gateway.model_inference(
            MODEL, f"{prefix}-{i}", columns, [row["prediction"]], partition=i % partitions
        )
    return messages
