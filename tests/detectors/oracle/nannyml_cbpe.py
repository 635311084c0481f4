"""NannyML 0.13's CBPE on NannyML's own synthetic data: the oracle for label-free estimation.

Runs inside the oracle environment (``.venv-nannyml``, see ``nannyml_env.py``), never in the
project's own, which cannot hold NannyML; NannyML is imported inside ``main`` so that the
project's doctest collection can import this file. It writes into OUT_DIR:

* ``<dataset>.reference.parquet`` / ``<dataset>.analysis.parquet``: one feature, the scores,
  the model's predicted class and the label (analysis labels joined from NannyML's targets
  table);
* ``cbpe.json``: per dataset and per chunk of CHUNK_SIZE analysis rows, NannyML's estimate and
  sampling error of each metric and the realised value (NannyML's PerformanceCalculator),
  and whether NannyML chose to calibrate the scores.

    .venv-nannyml/bin/python tests/detectors/oracle/nannyml_cbpe.py OUT_DIR
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any

CHUNK_SIZE = 5000
METRICS = ["roc_auc", "accuracy", "precision", "recall", "f1"]
# (loader, label column, one feature) of the binary datasets the wheel ships.
BINARY = {
    "synthetic_binary": ("load_synthetic_binary_classification_dataset", "work_home_actual", "distance_from_office"),
    "car_loan": ("load_synthetic_car_loan_dataset", "repaid", "car_value"),
}
MULTICLASS_FEATURE = "credit_bureau_score"


def _estimate(nml: Any, reference: Any, analysis: Any, **columns: Any) -> tuple[Any, Any, Any]:
    """NannyML's CBPE estimate and realised performance per analysis chunk, and the estimator."""
    kwargs = dict(metrics=METRICS, chunk_size=CHUNK_SIZE, **columns)
    estimator = nml.CBPE(**kwargs)
    estimator.fit(reference)
    estimated = estimator.estimate(analysis).filter(period="analysis").to_df()
    calculator = nml.PerformanceCalculator(**kwargs)
    calculator.fit(reference)
    realised = calculator.calculate(analysis).filter(period="analysis").to_df()
    return estimated, realised, estimator


def _chunks(estimated: Any, realised: Any) -> list[dict]:
    out = []
    for i in range(len(estimated)):
        row: dict[str, Any] = {
            "key": str(estimated[("chunk", "key")].iloc[i]),
            "start": int(estimated[("chunk", "start_index")].iloc[i]),
            "end": int(estimated[("chunk", "end_index")].iloc[i]) + 1,  # NannyML's end is inclusive
        }
        for metric in METRICS:
            row[metric] = {
                "estimated": float(estimated[(metric, "value")].iloc[i]),
                "sampling_error": float(estimated[(metric, "sampling_error")].iloc[i]),
                "realised": float(realised[(metric, "value")].iloc[i]),
            }
        out.append(row)
    return out


def main(out_dir: Path) -> None:
    warnings.simplefilter("ignore")
    import nannyml as nml

    out_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"nannyml": nml.__version__, "chunk_size": CHUNK_SIZE, "datasets": {}}

    for name, (loader, label, feature) in BINARY.items():
        reference, analysis, targets = getattr(nml, loader)()
        analysis = analysis.merge(targets, on="id")
        estimated, realised, estimator = _estimate(
            nml,
            reference,
            analysis,
            problem_type="classification_binary",
            y_pred_proba="y_pred_proba",
            y_pred="y_pred",
            y_true=label,
        )
        results["datasets"][name] = {
            "calibrated": bool(estimator.needs_calibration),
            "chunks": _chunks(estimated, realised),
        }
        for period, frame in (("reference", reference), ("analysis", analysis)):
            frame[[feature, "y_pred_proba", "y_pred", label]].rename(columns={label: "label"}).to_parquet(
                out_dir / f"{name}.{period}.parquet", index=False
            )

    reference, analysis, targets = nml.load_synthetic_multiclass_classification_dataset()
    analysis = analysis.merge(targets, on="id")
    scores = {c.removeprefix("y_pred_proba_"): c for c in reference.columns if c.startswith("y_pred_proba_")}
    estimated, realised, estimator = _estimate(
        nml,
        reference,
        analysis,
        problem_type="classification_multiclass",
        y_pred_proba=scores,
        y_pred="y_pred",
        y_true="y_true",
    )
    calibrated = {k: type(c).__name__ != "NoopCalibrator" for k, c in estimator._calibrators.items()}
    results["datasets"]["synthetic_multiclass"] = {"calibrated": calibrated, "chunks": _chunks(estimated, realised)}
    for period, frame in (("reference", reference), ("analysis", analysis)):
        frame[[MULTICLASS_FEATURE, *scores.values(), "y_pred", "y_true"]].rename(
            columns={"y_true": "label"}
        ).to_parquet(out_dir / f"synthetic_multiclass.{period}.parquet", index=False)

    (out_dir / "cbpe.json").write_text(json.dumps(results, indent=1, sort_keys=True))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
