"""The offline drift comparison behind ``model-health drift``.

Reference is either raw data (binned here, KS and Wasserstein exact) or a saved
profile (the streaming path: KS from the fine histograms, with its error bound).
``--binning evidently`` reproduces Evidently 0.7's PSI and needs raw reference data.

Against a profile with a calibration (built from a prediction score and labels), current data
that has the score column but no labels also gets its label-free performance estimate
(:func:`estimate_current`), the ``"performance_estimated"`` object of ``--format json``.

Only the columns used are read. The statistics (``detectors.compare``; scipy.stats only
for the exact tests on raw data, :mod:`detectors.kolmogorov` and
:mod:`detectors.elementwise` otherwise) are imported where the comparing begins, so a
missing file or column is reported before that, in a fraction of the time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np
import pyarrow as pa

from detectors.columns import category_counts, is_numeric_type, numeric_values, primitive_values, require_columns
from detectors.performance_estimation import (
    BinaryCalibration,
    ClassScores,
    EstimatedPerformance,
    MulticlassCalibration,
    estimate_performance,
)
from detectors.profile import (
    Kind,
    ProfileSettings,
    ReferenceProfile,
    column_kind,
    numeric_reference_summary,
    summarise_current,
    summarise_reference,
)
from detectors.summary import NumericSummary
from exporter.errors import UserError
from exporter.offline.tables import DataFile, column_errors, open_table
from exporter.pipeline.column_fold import fold_table
from exporter.profiles import is_profile, load_profile

if TYPE_CHECKING:
    from detectors.compare import ColumnDrift
    from detectors.decision import DriftRule
    from detectors.familywise import FamilyLevel

Binning = Literal["reference", "evidently"]
T = TypeVar("T")
Track = Callable[[Iterable[T], int, str], Iterable[T]]


def no_progress(items: Iterable[T], total: int, description: str) -> Iterable[T]:
    return items


@dataclass(frozen=True)
class DriftReport:
    reference_rows: int
    current_rows: int
    binning: Binning
    reference_kind: Literal["data", "profile"]
    features: dict[str, ColumnDrift]
    performance_estimated: EstimatedPerformance | None = None
    family: FamilyLevel | None = None  # the family-wise level the features were judged at

    @property
    def drifted(self) -> list[str]:
        return [name for name, result in self.features.items() if result.drift]

    def as_dict(self) -> dict[str, Any]:
        """The documented JSON shape of ``model-health drift --format json``."""
        return {
            "rows": {"reference": self.reference_rows, "current": self.current_rows},
            "binning": self.binning,
            "reference_kind": self.reference_kind,
            "drifted_features": len(self.drifted),
            "drifted_features_ratio": len(self.drifted) / len(self.features) if self.features else 0.0,
            **_family_keys(self.family),
            "features": {name: result.as_dict() for name, result in self.features.items()},
            **(self.performance_estimated.json_fields() if self.performance_estimated is not None else {}),
        }


def estimate_current(profile: ReferenceProfile, current: pa.Table, source: str) -> EstimatedPerformance | None:
    """The label-free estimate of ``current``, when the profile can make one and nothing better exists.

    Needs a calibration in the profile and, in ``current``, the profile's prediction column (a
    binary classifier's score; a multiclass classifier's predicted class, with each class's score
    column); labels in ``current`` (any non-null value in the profile's label column) mean the
    realised performance can be measured instead, so no estimate is made.
    """
    meta = profile.metadata
    if meta.label is not None and meta.label in current.column_names:
        labels = current.column(meta.label)
        if labels.null_count < len(labels):
            return None
    if isinstance(profile.calibration, MulticlassCalibration):
        return _estimate_multiclass(profile, profile.calibration, current, source)
    if not isinstance(profile.calibration, BinaryCalibration) or meta.prediction is None:
        return None
    if meta.prediction not in current.column_names or not is_numeric_type(current.column(meta.prediction).type):
        return None
    with column_errors(source):
        scores = numeric_values(current, meta.prediction)
    if not isinstance(profile.prediction, NumericSummary):  # a binary calibration is fitted over scores
        return None
    summary = NumericSummary.fold(profile.prediction.bins, scores)
    return estimate_performance(profile, summary) if summary.count else None


def _estimate_multiclass(
    profile: ReferenceProfile, calibration: MulticlassCalibration, current: pa.Table, source: str
) -> EstimatedPerformance | None:
    """One-vs-rest estimate from the current data's per-class scores and predicted classes."""
    columns = calibration.columns
    prediction = profile.metadata.prediction
    if prediction is None or any(c not in current.column_names for c in [prediction, *columns.values()]):
        return None
    with column_errors(source):
        scores = {k: numeric_values(current, column) for k, column in columns.items()}
    predicted = np.asarray(current.column(prediction).cast(pa.string()).to_pylist(), dtype=object)
    bins = {k: profile.class_scores[k].bins for k in columns}
    window = ClassScores.fold(bins, scores, predicted)
    return estimate_performance(profile, window) if current.num_rows else None


def _family_keys(family: FamilyLevel | None) -> dict[str, Any]:
    """The family-wise test of the report, as the aggregator exports it for a window."""
    if family is None:
        return {}
    return {
        "alpha_model": family.alpha_model,
        "features_tested": family.tested,
        "alpha_effective": family.alpha_effective,
    }


def judge_together(results: dict[str, ColumnDrift], rule: DriftRule) -> tuple[dict[str, ColumnDrift], FamilyLevel]:
    """The features' verdicts at the family-wise level, as the aggregator judges a window."""
    from detectors.familywise import apply_family

    return apply_family(results, lambda _: rule, rule.alpha_model)


def _split(values: list[str] | None) -> list[str]:
    return [v for v in (values or []) if v]


def drift_against_profile(
    profile: ReferenceProfile,
    current: pa.Table,
    source: str,
    features: list[str] | None,
    track: Track,
    rule: DriftRule | None = None,
) -> dict[str, ColumnDrift]:
    names = _profile_columns(profile, features)
    with column_errors(source):
        require_columns(current, names)
        # Numeric columns without a sort, over the cores (exporter.pipeline.column_fold).
        _, summaries = fold_table([current], {name: profile.features[name] for name in names})
    from detectors.compare import compare
    from detectors.decision import DriftRule

    rule, epsilon = rule or DriftRule(), profile.metadata.settings.epsilon
    return {
        name: compare(profile.features[name], summaries[name], rule, epsilon)
        for name in track(names, len(names), "comparing")
    }


def drift_against_data(
    reference: pa.Table,
    current: pa.Table,
    sources: tuple[str, str],
    features: list[str] | None,
    categorical: list[str],
    binning: Binning,
    track: Track,
    rule: DriftRule | None = None,
) -> dict[str, ColumnDrift]:
    ref_source, cur_source = sources
    names = _shared_columns(reference.column_names, current.column_names, sources, features)
    with column_errors(ref_source):
        require_columns(reference, names)
        kinds: dict[str, Kind] = {n: column_kind(reference, n, frozenset(categorical)) for n in names}
    with column_errors(cur_source):
        require_columns(current, names)
    from detectors.compare import compare, compare_evidently, compare_numeric_exact
    from detectors.decision import DriftRule

    settings = ProfileSettings()
    rule = rule or DriftRule()
    results: dict[str, ColumnDrift] = {}
    for name in track(names, len(names), "comparing"):
        kind = kinds[name]
        if binning == "evidently" and kind == "categorical":
            results[name] = _evidently_categorical(reference, current, name, sources, rule)
            continue
        if binning == "evidently":
            (ref_values, ref_missing), (cur_values, cur_missing) = (
                _present_values(table, name, source)
                for table, source in ((reference, ref_source), (current, cur_source))
            )
            results[name] = compare_evidently(ref_values, cur_values, kind, ref_missing, cur_missing, rule)
            continue
        if kind == "categorical":
            with column_errors(ref_source):
                ref_summary = summarise_reference(reference, name, kind, settings)
            with column_errors(cur_source):
                cur_summary = summarise_current(current, name, ref_summary)
            results[name] = compare(ref_summary, cur_summary, rule, settings.epsilon)
            continue
        with column_errors(ref_source):
            ref_values = numeric_values(reference, name)
            ref_numeric = numeric_reference_summary(name, ref_values, settings)
        with column_errors(cur_source):
            cur_values = numeric_values(current, name)
        cur_numeric = NumericSummary.fold(ref_numeric.bins, cur_values)
        results[name] = compare_numeric_exact(ref_numeric, cur_numeric, ref_values, cur_values, rule, settings.epsilon)
    return results


def _evidently_categorical(
    reference: pa.Table, current: pa.Table, name: str, sources: tuple[str, str], rule: DriftRule
) -> ColumnDrift:
    """Evidently-mode categorical drift from Arrow value counts over the union of values."""
    from detectors.compare import compare_evidently_categorical

    with column_errors(sources[0]):
        ref_names, ref_counts, ref_missing = category_counts(reference, name)
    with column_errors(sources[1]):
        cur_names, cur_counts, cur_missing = category_counts(current, name)
    keys = sorted(set(ref_names) | set(cur_names))
    index = {key: i for i, key in enumerate(keys)}

    def spread(names: list[str], counts: list[int]) -> np.ndarray:
        out = np.zeros(len(keys), dtype=np.int64)
        out[[index[n] for n in names]] = counts
        return out

    return compare_evidently_categorical(
        spread(ref_names, ref_counts), spread(cur_names, cur_counts), ref_missing, cur_missing, rule
    )


def _present_values(table: pa.Table, name: str, source: str) -> tuple[np.ndarray, int]:
    """Finite values of a numeric column, and how many were missing."""
    with column_errors(source):
        column = table.column(name)
        if pa.types.is_integer(column.type) and column.null_count == 0:
            # Evidently bins integers as integers (numpy floors their Sturges width at 1).
            return primitive_values(column), 0
        values = numeric_values(table, name)
    finite = np.isfinite(values)
    return values[finite], int(values.size - finite.sum())


def _profile_columns(profile: ReferenceProfile, features: list[str] | None) -> list[str]:
    names = features or list(profile.metadata.features)
    unknown = [n for n in names if n not in profile.features]
    if unknown:
        raise UserError(f"profile has no feature {', '.join(map(repr, unknown))}")
    return names


def _shared_columns(
    reference: list[str], current: list[str], sources: tuple[str, str], features: list[str] | None
) -> list[str]:
    names = features or [c for c in reference if c in current]
    if not names:
        raise UserError(f"{sources[0]} and {sources[1]} share no column")
    return names


def _default_rule(alpha_model: float | None = None) -> DriftRule:
    from detectors.decision import DriftRule

    return DriftRule() if alpha_model is None else DriftRule(alpha_model=alpha_model)


def _require_columns(data: DataFile, names: list[str]) -> None:
    with column_errors(data.path):
        data.require(names)


def run_drift(
    reference: str | Path,
    current: str | Path,
    binning: Binning = "reference",
    features: list[str] | None = None,
    categorical: list[str] | None = None,
    track: Track = no_progress,
    rule: DriftRule | None = None,
    alpha_model: float | None = None,
) -> DriftReport:
    """Drift of every feature, judged together at ``rule.alpha_model`` as the aggregator judges
    a window: replaying a window's records gives the flags the aggregator showed for it. Without
    ``rule``, the default rule at ``alpha_model`` (built once the inputs are read, so a missing file
    is reported before the statistics load)."""
    return run_drift_with_inputs(reference, current, binning, features, categorical, track, rule, alpha_model)[0]


def run_drift_with_inputs(
    reference: str | Path,
    current: str | Path,
    binning: Binning = "reference",
    features: list[str] | None = None,
    categorical: list[str] | None = None,
    track: Track = no_progress,
    rule: DriftRule | None = None,
    alpha_model: float | None = None,
) -> tuple[DriftReport, ReferenceProfile | pa.Table, pa.Table]:
    """:func:`run_drift`, also handing back what it compared: the profile (or the reference
    table) and the current table, read once, for the drift report page
    (:mod:`exporter.report.offline` folds its charts from them)."""
    features = _split(features) or None
    categorical = _split(categorical)
    current_data = open_table(current)
    if is_profile(reference):
        if binning == "evidently":
            raise UserError(
                f"{reference}: --binning evidently needs the raw reference data, not a profile "
                "(Evidently bins reference and current together)"
            )
        if categorical:
            raise UserError("--categorical applies to raw reference data; a profile already fixes column kinds")
        profile = load_profile(reference)
        names = _profile_columns(profile, features)
        _require_columns(current_data, names)
        # The model's score and label too, where the file has them: the label-free estimate
        # and the report page's prediction and label charts read them.
        outputs = [profile.metadata.prediction, profile.metadata.label]
        if isinstance(profile.calibration, MulticlassCalibration):
            outputs += list(profile.calibration.columns.values())  # each class's score column
        extra = list(dict.fromkeys(c for c in outputs if c and c in current_data.column_names and c not in names))
        current_table = current_data.read([*names, *extra])
        rule = rule or _default_rule(alpha_model)
        results, family = judge_together(
            drift_against_profile(profile, current_table, str(current), features, track, rule), rule
        )
        estimate = estimate_current(profile, current_table, str(current))
        report = DriftReport(
            profile.metadata.rows, current_table.num_rows, binning, "profile", results, estimate, family
        )
        return report, profile, current_table
    reference_data = open_table(reference)
    sources = (str(reference), str(current))
    names = _shared_columns(reference_data.column_names, current_data.column_names, sources, features)
    _require_columns(reference_data, names)
    _require_columns(current_data, names)
    # Only the columns compared: the rest of a wide file is never decoded.
    reference_table, current_table = reference_data.read(names), current_data.read(names)
    rule = rule or _default_rule(alpha_model)
    results, family = judge_together(
        drift_against_data(reference_table, current_table, sources, features, categorical, binning, track, rule), rule
    )
    report = DriftReport(reference_table.num_rows, current_table.num_rows, binning, "data", results, family=family)
    return report, reference_table, current_table
