"""``model-health drift --format html``: two files in, :class:`~exporter.report.data.ReportData` out.

The statistics are exactly those of ``--format json`` (one call of
:func:`exporter.offline.drift.run_drift_with_inputs`, the tables read once); the charts
fold the same columns into the same bins again, as the streaming path would:

* a profile reference: the profile's summaries, the current column folded into their bins;
* raw reference data, ``--binning reference``: both sides folded into bins frozen from
  the reference (the fine histograms behind PSI);
* ``--binning evidently``: Evidently's own PSI bins on the present values.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pyarrow as pa

from detectors.columns import ColumnError, category_counts, numeric_values, primitive_values
from detectors.compare import ColumnDrift, compare
from detectors.decision import DriftRule
from detectors.profile import (
    ProfileSettings,
    ReferenceProfile,
    build_profile,
    summarise_current,
    summarise_reference,
)
from detectors.summary import CategoricalSummary, ColumnSummary
from exporter.offline.drift import Binning, Track, no_progress, run_drift_with_inputs
from exporter.report.data import (
    FeatureReport,
    ReportData,
    feature_from_category_counts,
    feature_from_summaries,
    feature_from_values,
)

# Keys of the drift JSON that ReportData writes itself; any other key is carried through.
_OWN_KEYS = frozenset({"rows", "binning", "reference_kind", "drifted_features", "drifted_features_ratio", "features"})


def build_offline_report(
    reference: str | Path,
    current: str | Path,
    binning: Binning = "reference",
    features: list[str] | None = None,
    categorical: list[str] | None = None,
    track: Track = no_progress,
    rule: DriftRule = DriftRule(),
) -> ReportData:
    drift, reference_input, current_table = run_drift_with_inputs(
        reference, current, binning, features, categorical, track, rule
    )
    extra = {k: v for k, v in drift.as_dict().items() if k not in _OWN_KEYS}
    common: dict[str, Any] = {
        "reference_rows": drift.reference_rows,
        "current_rows": drift.current_rows,
        "rule": rule,
        "binning": drift.binning,
        "reference_kind": drift.reference_kind,
        "extra": extra,
    }
    if isinstance(reference_input, ReferenceProfile):
        return _from_profile(reference_input, current_table, drift.features, rule, common)
    if binning == "evidently":
        sections = {
            name: _evidently_feature(reference_input, current_table, name, result, rule)
            for name, result in drift.features.items()
        }
    else:
        settings = ProfileSettings()
        sections = {}
        for name, result in drift.features.items():
            ref_summary = summarise_reference(reference_input, name, result.kind, settings)
            cur_summary = summarise_current(current_table, name, ref_summary)
            unseen = None
            if isinstance(ref_summary, CategoricalSummary):
                known, _, _ = category_counts(reference_input, name)
                unseen = _unseen(current_table, name, known)
            sections[name] = feature_from_summaries(name, ref_summary, cur_summary, result, rule, unseen)
    return ReportData(features=sections, title="Drift report", **common)


def _unseen(current: pa.Table, name: str, known: Iterable[str]) -> dict[str, int]:
    """Current values of a column that the reference never had, with their counts."""
    names, counts, _ = category_counts(current, name)
    seen = set(known)
    return {n: c for n, c in zip(names, counts) if n not in seen}


def _from_profile(
    profile: ReferenceProfile,
    current: pa.Table,
    results: dict[str, ColumnDrift],
    rule: DriftRule,
    common: dict[str, Any],
) -> ReportData:
    meta = profile.metadata
    sections: dict[str, FeatureReport] = {}
    for name, result in results.items():
        ref_summary = profile.features[name]
        unseen = _profile_unseen(ref_summary, current, name)
        sections[name] = feature_from_summaries(
            name, ref_summary, summarise_current(current, name, ref_summary), result, rule, unseen
        )
    outputs: dict[str, FeatureReport | None] = {"prediction": None, "label": None}
    for role, column, summary in (
        ("prediction", meta.prediction, profile.prediction),
        ("label", meta.label, profile.label),
    ):
        if column and summary is not None and column in current.column_names:
            outputs[role] = _output_feature(column, summary, current, rule, meta.settings.epsilon)
    return ReportData(
        features=sections,
        model=meta.model,
        model_version=meta.model_version,
        title=f"Drift report: {meta.model} version {meta.model_version}",
        prediction=outputs["prediction"],
        label=outputs["label"],
        performance=_performance(profile, current),
        **common,
    )


def _profile_unseen(reference: ColumnSummary, current: pa.Table, name: str) -> dict[str, int] | None:
    """Values provably unseen in the reference: only when its ``__other__`` is empty (the
    top-K holds every reference value); otherwise a value outside the top-K may be one the
    reference had, and it stays in ``__other__``."""
    if not isinstance(reference, CategoricalSummary) or int(reference.counts[-1]) != 0:
        return None
    return _unseen(current, name, reference.bins.categories)


def _output_feature(
    column: str, reference: ColumnSummary, current: pa.Table, rule: DriftRule, epsilon: float
) -> FeatureReport | None:
    try:
        current_summary = summarise_current(current, column, reference)
    except ColumnError:
        return None  # a label column of another type than the profile's: nothing to chart
    result = compare(reference, current_summary, rule, epsilon)
    return feature_from_summaries(
        column, reference, current_summary, result, rule, _profile_unseen(reference, current, column)
    )


def _performance(profile: ReferenceProfile, current: pa.Table) -> dict[str, dict[str, float | None]]:
    """Reference performance from the profile; realised current performance where the
    current data has both the prediction and the label column."""
    meta = profile.metadata
    if not meta.performance:
        return {}
    realised: dict[str, float] = {}
    if meta.prediction and meta.label and meta.task and {meta.prediction, meta.label} <= set(current.column_names):
        try:
            realised = build_profile(
                current,
                model=meta.model,
                model_version=meta.model_version,
                created_at=0.0,
                features=[meta.prediction],
                prediction=meta.prediction,
                label=meta.label,
                task=meta.task,
            ).metadata.performance
        except ColumnError:
            realised = {}

    def clean(value: float | None) -> float | None:
        return None if value is None or not math.isfinite(value) else float(value)

    return {
        metric: {"reference": clean(value), "current": clean(realised.get(metric))}
        for metric, value in sorted(meta.performance.items())
    }


def _evidently_feature(
    reference: pa.Table, current: pa.Table, name: str, result: ColumnDrift, rule: DriftRule
) -> FeatureReport:
    if result.kind == "categorical":
        ref_names, ref_counts, _ = category_counts(reference, name)
        cur_names, cur_counts, _ = category_counts(current, name)
        return feature_from_category_counts(name, ref_names, ref_counts, cur_names, cur_counts, result, rule)
    return feature_from_values(name, _present(reference, name), _present(current, name), result, rule)


def _present(table: pa.Table, name: str) -> np.ndarray:
    """Present values as Evidently bins them: integer columns without nulls stay integer."""
    column = table.column(name)
    if pa.types.is_integer(column.type) and column.null_count == 0:
        return primitive_values(column)  # to_numpy() would import pandas
    values = numeric_values(table, name)
    return values[np.isfinite(values)]


def write_html_report(
    reference: str | Path,
    current: str | Path,
    binning: Binning = "reference",
    features: list[str] | None = None,
    categorical: list[str] | None = None,
    track: Track = no_progress,
    out: TextIO | None = None,
    rule: DriftRule = DriftRule(),
) -> list[str]:
    """Build the report, write its page to ``out`` (stdout), return the drifted features."""
    from exporter.report.html import render_html

    report = build_offline_report(reference, current, binning, features, categorical, track, rule)
    (out or sys.stdout).write(render_html(report))
    return report.drifted
