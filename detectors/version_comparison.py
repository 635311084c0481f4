"""One model version's predictions against another's, over the same window.

A canary and its stable version serve the same traffic at the same time; whether the canary
predicts differently is a two-sample question about their two windows' prediction summaries,
not about either version's reference. :func:`compare_versions` answers it with the drift
statistics and the decision rule of :mod:`detectors.compare`, the baseline version's window
taking the reference's place (the rule's null quantiles already treat both sides as samples).

The two summaries are over each version's own profile bins. Three cases:

* **Same bins** (both versions share a profile, or profiles built from the same predictions):
  :func:`detectors.compare.compare` as for any window, exact to the streaming bounds.
* **Numeric scores over different bins** (the usual canary: a retrained model, a new profile,
  new quantile edges): the candidate's fine histogram is re-binned onto the baseline's fine
  edges, its mass spread evenly inside each of its own fine bins (the open tails between the
  window's minimum or maximum and the outer edge). PSI is then taken over the baseline's coarse
  bins and KS D over the union of both edge sets, where each side's CDF is exact at its own
  edges and linear in between. The even-spread assumption moves either CDF by at most the
  share of one of its own fine bins, so the reported ``ks_error_bound`` is the largest fine-bin
  share of the baseline window plus that of the candidate window (≈ 0.002 with 1,000 bins).
  Wasserstein is not computed here (None).
* **Categorical predictions over different categories**: the candidate's counts are mapped by
  category name onto the baseline's categories (an unknown name to the baseline's
  ``__other__``). That is exact unless the candidate's own ``__other__`` holds records while
  the baseline tracks a category the candidate does not: those records could belong to it, so
  the comparison is refused (:class:`IncomparableVersions`) rather than guessed.

A numeric summary and a categorical one (a score against a class) are never comparable.

>>> from detectors.binning import NumericBins
>>> from detectors.summary import NumericSummary
>>> rng = np.random.default_rng(1)
>>> stable_bins = NumericBins.from_reference(rng.beta(2, 5, 20_000))
>>> canary_bins = NumericBins.from_reference(rng.beta(2, 5, 20_000))  # its own profile
>>> stable = NumericSummary.fold(stable_bins, rng.beta(2, 5, 5_000))
>>> same = compare_versions(stable, NumericSummary.fold(canary_bins, rng.beta(2, 5, 1_000)))
>>> same.rebinned, same.drift.drift, same.drift.psi < 0.05
(True, False, True)
>>> shifted = compare_versions(stable, NumericSummary.fold(canary_bins, rng.beta(3, 4, 1_000)))
>>> shifted.drift.drift, shifted.drift.fired
(True, ('psi', 'ks'))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from detectors.binning import NumericBins
from detectors.compare import ColumnDrift, compare
from detectors.decision import DriftRule, fired_methods
from detectors.drift_statistics import decision_inputs
from detectors.ks import ks_pvalue_asymptotic
from detectors.psi import DEFAULT_EPSILON, psi
from detectors.summary import CategoricalSummary, ColumnSummary, NumericSummary


class IncomparableVersions(ValueError):
    """The two versions' prediction summaries cannot be put on one axis without guessing."""


@dataclass(frozen=True)
class VersionComparison:
    """The candidate version's window against the baseline version's.

    ``drift`` carries the statistics and the verdict (``reference_count`` is the baseline
    window's size, ``current_count`` the candidate's); ``rebinned`` says the candidate was
    re-binned onto the baseline's bins (numeric) or categories (categorical).
    """

    drift: ColumnDrift
    rebinned: bool


def compare_versions(
    baseline: ColumnSummary,
    candidate: ColumnSummary,
    rule: DriftRule = DriftRule(),
    epsilon: float = DEFAULT_EPSILON,
) -> VersionComparison:
    """Drift of ``candidate``'s predictions against ``baseline``'s (see the module docstring).

    Raises :class:`IncomparableVersions` for summaries of different kinds, or categorical
    ones whose categories cannot be aligned exactly, and ValueError when either is empty.
    """
    if baseline.count == 0 or candidate.count == 0:
        raise ValueError("both versions need predictions in the window")
    if isinstance(baseline, NumericSummary) and isinstance(candidate, NumericSummary):
        if baseline.bins == candidate.bins:
            return VersionComparison(compare(baseline, candidate, rule, epsilon), rebinned=False)
        return VersionComparison(_compare_rebinned(baseline, candidate, rule, epsilon), rebinned=True)
    if isinstance(baseline, CategoricalSummary) and isinstance(candidate, CategoricalSummary):
        if baseline.bins == candidate.bins:
            return VersionComparison(compare(baseline, candidate, rule, epsilon), rebinned=False)
        aligned = align_categories(baseline, candidate)
        return VersionComparison(compare(baseline, aligned, rule, epsilon), rebinned=True)
    raise IncomparableVersions("one version predicts scores and the other classes")


# --------------------------------------------------------------------------- numeric


def _knots(summary: NumericSummary) -> tuple[np.ndarray, np.ndarray]:
    """Points and the window's CDF (a share) at them: exact at the fine edges, and at the
    window's minimum and maximum where its values fall in the open tails."""
    edges = summary.bins.edges
    counts = summary.counts.astype(np.float64)
    n = counts.sum()
    below = np.cumsum(counts)[:-1] / n  # share below each edge: the counts of bins 0..i
    points, shares = [edges], [below]
    if counts[0] > 0 and np.isfinite(summary.minimum) and summary.minimum < edges[0]:
        points.insert(0, np.array([summary.minimum]))
        shares.insert(0, np.array([0.0]))
    if counts[-1] > 0 and np.isfinite(summary.maximum) and summary.maximum >= edges[-1]:
        points.append(np.array([np.nextafter(summary.maximum, np.inf)]))
        shares.append(np.array([1.0]))
    x, y = np.concatenate(points), np.concatenate(shares)
    return x, y


def _cdf(summary: NumericSummary, at: np.ndarray) -> np.ndarray:
    """The window's CDF at ``at``, its mass spread evenly inside each fine bin."""
    x, y = _knots(summary)
    # Beyond the outermost knots the CDF is 0 below and 1 above; an empty tail ends at its edge.
    return np.interp(at, x, y, left=0.0, right=1.0)


def rebin(summary: NumericSummary, bins: NumericBins) -> np.ndarray:
    """``summary``'s counts re-binned onto ``bins``'s fine bins (floats: shares times the count).

    >>> source = NumericBins(np.array([0.0, 10.0, 20.0]), np.zeros(4, dtype=np.int64), 2, 1)
    >>> target = NumericBins(np.array([0.0, 5.0, 15.0, 20.0]), np.zeros(5, dtype=np.int64), 3, 1)
    >>> s = NumericSummary.fold(source, np.arange(0.5, 20.0, 1.0))  # 10 in [0, 10), 10 in [10, 20)
    >>> rebin(s, target).tolist()
    [0.0, 5.0, 10.0, 5.0, 0.0]
    """
    inner = _cdf(summary, bins.edges)
    shares = np.diff(np.concatenate(([0.0], inner, [1.0])))
    return np.clip(shares, 0.0, None) * summary.count


def _compare_rebinned(
    baseline: NumericSummary, candidate: NumericSummary, rule: DriftRule, epsilon: float
) -> ColumnDrift:
    bins = baseline.bins
    moved = rebin(candidate, bins)
    base_coarse = bins.coarse_counts(baseline.counts)
    cand_coarse = np.bincount(bins.coarse_of_fine, weights=moved, minlength=bins.n_coarse)
    grid = np.union1d(bins.edges, candidate.bins.edges)
    statistic = float(np.max(np.abs(_cdf(baseline, grid) - _cdf(candidate, grid))))
    n, m = baseline.count, candidate.count
    error_bound = float(baseline.counts.max() / n + candidate.counts.max() / m)
    statistics: dict[str, Any] = {
        "reference_missing_ratio": baseline.missing_ratio,
        "current_missing_ratio": candidate.missing_ratio,
        "psi": psi(base_coarse, cand_coarse, epsilon),
        "ks_statistic": statistic,
        "ks_pvalue": ks_pvalue_asymptotic(statistic, n, m),
        "ks_error_bound": error_bound,
        "wasserstein_normed": None,
    }
    fired = fired_methods(
        decision_inputs("numeric", statistics),
        rule.numeric_methods,
        n,
        m,
        rule,
        (base_coarse, cand_coarse),
        epsilon,
    )
    return ColumnDrift(kind="numeric", reference_count=n, current_count=m, drift=bool(fired), fired=fired, **statistics)


# --------------------------------------------------------------------------- categorical


def align_categories(baseline: CategoricalSummary, candidate: CategoricalSummary) -> CategoricalSummary:
    """``candidate``'s counts over ``baseline``'s categories, matched by name.

    >>> from detectors.binning import CategoricalBins
    >>> a = CategoricalSummary.fold(CategoricalBins(("x", "y")), np.array(["x", "y", "z"]))
    >>> b = CategoricalSummary.fold(CategoricalBins(("y", "z", "x")), np.array(["x", "x", "z", "q"]))
    >>> align_categories(a, b).counts.tolist()  # x, y, __other__ (z and b's q)
    [2, 0, 2]
    """
    known = set(candidate.bins.categories)
    candidate_other = int(candidate.counts[-1])
    unknown_to_candidate = [c for c in baseline.bins.categories if c not in known]
    if candidate_other and unknown_to_candidate:
        raise IncomparableVersions(
            f"the candidate's __other__ holds {candidate_other} predictions that may be "
            f"{', '.join(map(repr, unknown_to_candidate[:3]))}: its categories cannot be aligned"
        )
    index = {name: i for i, name in enumerate(baseline.bins.categories)}
    other = len(baseline.bins.categories)
    counts = np.zeros(baseline.bins.n_bins, dtype=np.int64)
    for name, count in zip(candidate.bins.labels, candidate.counts.tolist()):
        counts[index.get(name, other)] += count
    return CategoricalSummary(baseline.bins, counts, candidate.missing)
