"""Prediction and label traffic for the scale-out tests: three model versions, mixed in
unkeyed NDJSON messages, with refusals of every kind the pipeline counts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from detectors.profile import build_profile
from exporter.demo.synthetic import synthetic_table
from exporter.profiles import save_profile

SHAPE = {"numeric": 4, "categorical": 2, "drifted": 2}
MODELS = (("fraud", "7"), ("fraud", "8"), ("churn", "1"))
WINDOWS = [{"name": "1h", "bucket_seconds": 60, "buckets": 60}, {"name": "5m", "bucket_seconds": 30, "buckets": 10}]


def write_profiles(directory: Path) -> dict[tuple[str, str], Path]:
    paths = {}
    for i, (model, version) in enumerate(MODELS):
        profile = build_profile(
            synthetic_table(4_000, seed=10 + i, **SHAPE),
            model=model,
            model_version=version,
            created_at=1.7e9 + i,
            prediction="prediction",
            label="label",
        )
        paths[(model, version)] = save_profile(profile, directory / f"{model}-{version}.parquet")
    return paths


def models_config(paths: dict[tuple[str, str], Path]) -> list[dict[str, str]]:
    return [{"name": m, "version": v, "reference": str(p)} for (m, v), p in paths.items()]


@dataclass(frozen=True)
class Traffic:
    predictions: list[bytes]  # NDJSON messages, models mixed
    labels: list[bytes]
    rows: dict[tuple[str, str], int]  # accepted prediction records per model version
    labelled: dict[str, int]  # labels whose prediction exists, per model
    refused: dict[tuple[str, str], int]  # (topic kind, reason) → records


def make_traffic(rows: int, base_time: float, seed: int = 2, per_message: int = 25, spacing: float = 1.0) -> Traffic:
    """``rows`` predictions per model version, ``spacing`` seconds apart from ``base_time``, every
    other one labelled, plus refusals: invalid JSON, unknown models, a non-numeric feature."""
    lines: list[tuple[float, str]] = []
    label_lines: list[str] = []
    counts: dict[tuple[str, str], int] = {}
    labelled: dict[str, int] = {}
    for index, (model, version) in enumerate(MODELS):
        table = synthetic_table(rows, seed=seed + index, drift=index != 1, **SHAPE).to_pylist()
        for i, row in enumerate(table):
            features = {k: v for k, v in row.items() if k not in ("prediction", "label") and v == v}
            record = {
                "model": model,
                "request_id": f"{model}-{version}-{i}",
                "timestamp": base_time + i * spacing + index / 10,
                "features": features,
                "prediction": row["prediction"],
                "latency_ms": 5.0 + i % 40,
                "status": "error" if i % 97 == 0 else "ok",
            }
            if not (model == "churn" and i % 2):  # churn has one version: records may leave it out
                record["model_version"] = version
            lines.append((record["timestamp"], json.dumps(record)))
            if i % 2 == 0:
                label_lines.append(
                    json.dumps(
                        {
                            "model": model,
                            "request_id": record["request_id"],
                            "label": row["label"],
                            "timestamp": base_time + rows * spacing + i * spacing,
                        }
                    )
                )
                labelled[model] = labelled.get(model, 0) + 1
        counts[(model, version)] = rows
    bad_feature = json.dumps(
        {
            "model": "churn",
            "model_version": "1",
            "request_id": "bad-1",
            "timestamp": base_time,
            "features": {"num_00": "twelve"},
            "prediction": 0.5,
        }
    )
    ghost = json.dumps({"model": "ghost", "request_id": "g-1", "timestamp": base_time, "features": {}, "prediction": 1})
    lines.sort()
    texts = [text for _, text in lines]
    predictions = ["\n".join(texts[i : i + per_message]).encode() for i in range(0, len(texts), per_message)]
    predictions[3:3] = [b"{broken", ghost.encode(), bad_feature.encode()]
    predictions.append(b"\x00\x01 not a record")
    stray = json.dumps({"model": "ghost", "request_id": "g-1", "label": 1, "timestamp": base_time})
    labels = ["\n".join(label_lines[i : i + per_message]).encode() for i in range(0, len(label_lines), per_message)]
    labels.insert(1, stray.encode())
    refused = {
        ("predictions", "invalid_json"): 1,
        ("predictions", "unknown_model"): 1,
        ("predictions", "bad_feature_value"): 1,
        ("predictions", "unknown_format"): 1,
        ("labels", "unknown_model"): 1,
    }
    return Traffic(predictions, labels, counts, labelled, refused)
