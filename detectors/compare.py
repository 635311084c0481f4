"""``compare(reference, current)``: every drift statistic of one column, and the verdict.

Three ways in, one result type:

* :func:`compare` — two summaries over the same frozen bins (the streaming path).
* :func:`compare_numeric_exact` — offline, with the raw values at hand: streaming PSI
  from the summaries, KS and Wasserstein exact on the values.
* :func:`compare_evidently` — offline, Evidently 0.7's PSI binning on the raw values.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from detectors.categorical import chi2_pvalue, js_distance
from detectors.decision import DriftRule, column_pvalue, fired_at, method_pvalues
from detectors.drift_statistics import BY_ATTRIBUTE, DRIFT_STATISTICS, Kind, decision_inputs
from detectors.ecdf import merged_ecdf
from detectors.ks import SCIPY_EXACT_MAX_N, KSResult, ks_binned, ks_exact, ks_from_merged
from detectors.psi import DEFAULT_EPSILON, evidently_counts, psi, psi_from_evidently_counts
from detectors.summary import CategoricalSummary, ColumnSummary, NumericSummary
from detectors.wasserstein import std_norm, wasserstein_from_merged, wasserstein_normed_binned


@dataclass(frozen=True)
class ColumnDrift:
    """All statistics for one column; fields that do not apply to its kind are None.

    Each statistic field is a row of :data:`~detectors.drift_statistics.DRIFT_STATISTICS`
    (checked below), which says which kinds it applies to and what its JSON key is.

    ``drift`` and ``fired`` are the column's verdict tested on its own (level
    ``rule.alpha_single``); :func:`detectors.familywise.apply_family` re-reads them from
    ``method_pvalues`` at the model's family-wise level.
    """

    kind: Kind
    reference_count: int
    current_count: int
    reference_missing_ratio: float
    current_missing_ratio: float
    psi: float
    drift: bool
    fired: tuple[str, ...]
    ks_statistic: float | None = None
    ks_pvalue: float | None = None
    ks_error_bound: float | None = None
    wasserstein_normed: float | None = None
    js_distance: float | None = None
    chi2_pvalue: float | None = None
    drift_pvalue: float | None = None
    # Each decision method's gated p-value: it fires at per-method level ``a`` iff this is ≤ ``a``.
    method_pvalues: dict[str, float] = field(default_factory=dict, hash=False)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: NaN becomes None, fields that don't apply are left out."""
        out: dict[str, Any] = {}
        for key, value in asdict(self).items():
            statistic = BY_ATTRIBUTE.get(key)
            if statistic is not None:
                if not statistic.applies_to(self.kind):
                    continue
                key = statistic.json_key
            if isinstance(value, float) and math.isnan(value):
                value = None
            out[key] = list(value) if isinstance(value, tuple) else value
        return out


# The verdict's own fields; every other field is a statistic of the table, and every statistic a field.
_VERDICT_FIELDS = {"kind", "reference_count", "current_count", "drift", "fired", "method_pvalues"}
_field_names = {f.name for f in fields(ColumnDrift)}
if _field_names - _VERDICT_FIELDS != {s.attribute for s in DRIFT_STATISTICS}:
    raise ImportError("detectors.compare: ColumnDrift's statistic fields and DRIFT_STATISTICS disagree")


def _numeric_result(
    sizes: tuple[int, int],
    missing_ratios: tuple[float, float],
    psi_value: float,
    psi_histograms: tuple[np.ndarray, np.ndarray],
    ks: KSResult,
    wasserstein: float,
    rule: DriftRule,
    epsilon: float | None,
) -> ColumnDrift:
    n, m = sizes
    statistics = {
        "reference_missing_ratio": missing_ratios[0],
        "current_missing_ratio": missing_ratios[1],
        "psi": psi_value,
        "ks_statistic": ks.statistic,
        "ks_pvalue": ks.pvalue,
        "ks_error_bound": ks.error_bound,
        "wasserstein_normed": wasserstein,
    }
    pvalues = method_pvalues(
        decision_inputs("numeric", statistics), rule.numeric_methods, n, m, rule, psi_histograms, epsilon
    )
    return _verdict("numeric", n, m, statistics, pvalues, rule)


def _verdict(
    kind: Kind, n: int, m: int, statistics: dict[str, Any], pvalues: dict[str, float], rule: DriftRule
) -> ColumnDrift:
    """The column's verdict tested on its own; the family-wise one re-reads ``pvalues``."""
    fired = fired_at(pvalues, rule.alpha_single)
    return ColumnDrift(
        kind=kind,
        reference_count=n,
        current_count=m,
        drift=bool(fired),
        fired=fired,
        drift_pvalue=column_pvalue(pvalues),
        method_pvalues=pvalues,
        **statistics,
    )


def _categorical_result(
    ref_counts: np.ndarray,
    cur_counts: np.ndarray,
    psi_value: float,
    reference_missing_ratio: float,
    current_missing_ratio: float,
    rule: DriftRule,
    epsilon: float | None,
) -> ColumnDrift:
    n, m = int(ref_counts.sum()), int(cur_counts.sum())
    statistics = {
        "reference_missing_ratio": reference_missing_ratio,
        "current_missing_ratio": current_missing_ratio,
        "psi": psi_value,
        "js_distance": js_distance(ref_counts, cur_counts),
        "chi2_pvalue": chi2_pvalue(ref_counts, cur_counts),
    }
    pvalues = method_pvalues(
        decision_inputs("categorical", statistics),
        rule.categorical_methods,
        n,
        m,
        rule,
        (ref_counts, cur_counts),
        epsilon,
    )
    return _verdict("categorical", n, m, statistics, pvalues, rule)


def compare(
    reference: ColumnSummary,
    current: ColumnSummary,
    rule: DriftRule = DriftRule(),
    epsilon: float = DEFAULT_EPSILON,
) -> ColumnDrift:
    """Drift between two summaries of one column over the same frozen bins."""
    if isinstance(reference, NumericSummary) and isinstance(current, NumericSummary):
        if reference.bins != current.bins:
            raise ValueError("summaries were folded over different bins")
        bins = reference.bins
        ref_coarse, cur_coarse = bins.coarse_counts(reference.counts), bins.coarse_counts(current.counts)
        return _numeric_result(
            (reference.count, current.count),
            (reference.missing_ratio, current.missing_ratio),
            psi(ref_coarse, cur_coarse, epsilon),
            (ref_coarse, cur_coarse),
            ks_binned(reference.counts, current.counts),
            wasserstein_normed_binned(reference, current),
            rule,
            epsilon,
        )
    if isinstance(reference, CategoricalSummary) and isinstance(current, CategoricalSummary):
        if reference.bins != current.bins:
            raise ValueError("summaries were folded over different categories")
        return _categorical_result(
            reference.counts,
            current.counts,
            psi(reference.counts, current.counts, epsilon),
            reference.missing_ratio,
            current.missing_ratio,
            rule,
            epsilon,
        )
    raise TypeError("reference and current summaries must be of the same kind")


def exact_ks_and_wasserstein(
    reference: np.ndarray, current: np.ndarray, presorted: bool = False
) -> tuple[KSResult, float]:
    """KS (as scipy's ks_2samp) and normalised W1 on finite values, sharing one merge."""
    if reference.size == 0 or current.size == 0:
        return KSResult(math.nan, math.nan), math.nan
    a, b = (reference, current) if presorted else (np.sort(reference), np.sort(current))
    merged = merged_ecdf(a, b)
    if max(a.size, b.size) <= SCIPY_EXACT_MAX_N:
        ks = ks_exact(a, b)
    else:
        ks = ks_from_merged(merged[1], merged[2])
    return ks, wasserstein_from_merged(*merged) / std_norm(reference)


def compare_numeric_exact(
    reference: NumericSummary,
    current: NumericSummary,
    reference_values: np.ndarray,
    current_values: np.ndarray,
    rule: DriftRule = DriftRule(),
    epsilon: float = DEFAULT_EPSILON,
) -> ColumnDrift:
    """Offline numeric drift: streaming PSI, exact KS and Wasserstein on finite values."""
    bins = reference.bins
    ref_coarse, cur_coarse = bins.coarse_counts(reference.counts), bins.coarse_counts(current.counts)
    ks, wasserstein = exact_ks_and_wasserstein(
        reference_values[np.isfinite(reference_values)], current_values[np.isfinite(current_values)]
    )
    return _numeric_result(
        (reference.count, current.count),
        (reference.missing_ratio, current.missing_ratio),
        psi(ref_coarse, cur_coarse, epsilon),
        (ref_coarse, cur_coarse),
        ks,
        wasserstein,
        rule,
        epsilon,
    )


def compare_evidently(
    reference_values: np.ndarray,
    current_values: np.ndarray,
    kind: Kind,
    reference_missing: int,
    current_missing: int,
    rule: DriftRule = DriftRule(),
) -> ColumnDrift:
    """Offline drift with Evidently 0.7's PSI binning; inputs hold present values only.

    >>> r = compare_evidently(np.array(["a", "a", "b", "b"]), np.array(["a", "b", "b", "b"]), "categorical", 0, 0)
    >>> round(r.psi, 6), r.drift  # far below min_samples: never a verdict
    (0.274653, False)
    """
    n, m = reference_values.size, current_values.size
    ref_missing_ratio = _ratio(reference_missing, n + reference_missing)
    cur_missing_ratio = _ratio(current_missing, m + current_missing)
    if kind == "categorical":
        keys, inverse = np.unique(np.concatenate([reference_values, current_values]), return_inverse=True)
        inverse = inverse.ravel()
        return compare_evidently_categorical(
            np.bincount(inverse[:n], minlength=keys.size),
            np.bincount(inverse[n:], minlength=keys.size),
            reference_missing,
            current_missing,
            rule,
        )
    ref_sorted, cur_sorted = np.sort(reference_values), np.sort(current_values)
    if n == 0 or m == 0:
        psi_value = math.nan
        ref_counts = cur_counts = np.zeros(0, dtype=np.int64)
    else:
        ref_counts, cur_counts = evidently_counts(ref_sorted, cur_sorted, numeric=True, presorted=True)
        psi_value = psi_from_evidently_counts(ref_counts, cur_counts)
    ks, wasserstein = exact_ks_and_wasserstein(ref_sorted, cur_sorted, presorted=True)
    return _numeric_result(
        (n, m), (ref_missing_ratio, cur_missing_ratio), psi_value, (ref_counts, cur_counts), ks, wasserstein, rule, None
    )


def compare_evidently_categorical(
    reference_counts: np.ndarray,
    current_counts: np.ndarray,
    reference_missing: int,
    current_missing: int,
    rule: DriftRule = DriftRule(),
) -> ColumnDrift:
    """Evidently-mode drift of a categorical column from counts over the union of values."""
    n, m = int(reference_counts.sum()), int(current_counts.sum())
    psi_value = psi_from_evidently_counts(reference_counts, current_counts) if n and m else math.nan
    return _categorical_result(
        reference_counts,
        current_counts,
        psi_value,
        _ratio(reference_missing, n + reference_missing),
        _ratio(current_missing, m + current_missing),
        rule,
        None,
    )


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0
