"""The offline drift comparison behind ``model-health drift``.

Reference is either raw data (binned here, KS and Wasserstein exact) or a saved
profile (the streaming path: KS from the fine histograms, with its error bound).
``--binning evidently`` reproduces Evidently 0.7's PSI and needs raw reference data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
import pyarrow as pa

from detectors.columns import category_counts, numeric_values, require_columns
from detectors.compare import (
    ColumnDrift,
    compare,
    compare_evidently,
    compare_evidently_categorical,
    compare_numeric_exact,
)
from detectors.decision import DriftRule
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
from exporter.offline.tables import column_errors, read_batches, read_table
from exporter.pipeline.column_fold import fold_table
from exporter.profiles import is_profile, load_profile

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
            "features": {name: result.as_dict() for name, result in self.features.items()},
        }


def _split(values: list[str] | None) -> list[str]:
    return [v for v in (values or []) if v]


def drift_against_profile(
    profile: ReferenceProfile,
    current: pa.Table | tuple[pa.Schema, Iterable[pa.RecordBatch]],
    source: str,
    features: list[str] | None,
    track: Track,
) -> dict[str, ColumnDrift]:
    """Each feature of ``current`` (a table, or a schema and its batches read lazily) folded
    into the profile's bins (numeric columns on several cores: :func:`~exporter.pipeline.column_fold.fold_table`)
    and compared."""
    names = features or list(profile.metadata.features)
    unknown = [n for n in names if n not in profile.features]
    if unknown:
        raise UserError(f"profile has no feature {', '.join(map(repr, unknown))}")
    schema, batches = (current.schema, [current]) if isinstance(current, pa.Table) else current
    rule = DriftRule()
    results: dict[str, ColumnDrift] = {}
    with column_errors(source):
        require_columns(schema.empty_table(), names)
        _, folded = fold_table(batches, {name: profile.features[name] for name in names})
        for name in track(names, len(names), "comparing"):
            results[name] = compare(profile.features[name], folded[name], rule, profile.metadata.settings.epsilon)
    return results


def drift_against_data(
    reference: pa.Table,
    current: pa.Table,
    sources: tuple[str, str],
    features: list[str] | None,
    categorical: list[str],
    binning: Binning,
    track: Track,
) -> dict[str, ColumnDrift]:
    ref_source, cur_source = sources
    names = features or [c for c in reference.column_names if c in current.column_names]
    if not names:
        raise UserError(f"{ref_source} and {cur_source} share no column")
    settings = ProfileSettings()
    rule = DriftRule()
    results: dict[str, ColumnDrift] = {}
    with column_errors(ref_source):
        require_columns(reference, names)
        kinds: dict[str, Kind] = {n: column_kind(reference, n, frozenset(categorical)) for n in names}
    with column_errors(cur_source):
        require_columns(current, names)
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
            return column.to_numpy(), 0
        values = numeric_values(table, name)
    finite = np.isfinite(values)
    return values[finite], int(values.size - finite.sum())


def run_drift(
    reference: str | Path,
    current: str | Path,
    binning: Binning = "reference",
    features: list[str] | None = None,
    categorical: list[str] | None = None,
    track: Track = no_progress,
) -> DriftReport:
    features = _split(features) or None
    categorical = _split(categorical)
    if is_profile(reference):
        if binning == "evidently":
            raise UserError(
                f"{reference}: --binning evidently needs the raw reference data, not a profile "
                "(Evidently bins reference and current together)"
            )
        if categorical:
            raise UserError("--categorical applies to raw reference data; a profile already fixes column kinds")
        profile = load_profile(reference)
        names = features or list(profile.metadata.features)
        # Read batch by batch and folded as it is read: the file is never in memory whole.
        schema, rows, batches = read_batches(current, [n for n in names if n in profile.features])
        results = drift_against_profile(profile, (schema, batches), str(current), features, track)
        return DriftReport(profile.metadata.rows, rows, binning, "profile", results)
    current_table = read_table(current)
    reference_table = read_table(reference)
    results = drift_against_data(
        reference_table, current_table, (str(reference), str(current)), features, categorical, binning, track
    )
    return DriftReport(reference_table.num_rows, current_table.num_rows, binning, "data", results)


def run_drift_with_inputs(
    reference: str | Path,
    current: str | Path,
    binning: Binning = "reference",
    features: list[str] | None = None,
    categorical: list[str] | None = None,
    track: Track = no_progress,
) -> tuple[DriftReport, ReferenceProfile | pa.Table, pa.Table]:
    """:func:`run_drift`, also handing back what it compared: the profile (or the reference
    table) and the current table, read once, for the drift report page
    (:mod:`exporter.report.offline` folds its charts from them)."""
    features = _split(features) or None
    categorical = _split(categorical)
    current_table = read_table(current)
    if is_profile(reference):
        if binning == "evidently":
            raise UserError(
                f"{reference}: --binning evidently needs the raw reference data, not a profile "
                "(Evidently bins reference and current together)"
            )
        if categorical:
            raise UserError("--categorical applies to raw reference data; a profile already fixes column kinds")
        profile = load_profile(reference)
        results = drift_against_profile(profile, current_table, str(current), features, track)
        return (
            DriftReport(profile.metadata.rows, current_table.num_rows, binning, "profile", results),
            profile,
            current_table,
        )
    reference_table = read_table(reference)
    results = drift_against_data(
        reference_table, current_table, (str(reference), str(current)), features, categorical, binning, track
    )
    report = DriftReport(reference_table.num_rows, current_table.num_rows, binning, "data", results)
    return report, reference_table, current_table
