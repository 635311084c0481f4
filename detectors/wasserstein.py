"""Normalised Wasserstein-1 distance.

    W1 = ∫ |F_ref(x) − F_cur(x)| dx,   normed = W1 / max(std_ref, 0.001)

The floor on the reference's population standard deviation follows Evidently, so a
constant reference does not divide by zero. From summaries, mass is spread evenly
inside each fine bin (the tails run to the smallest and largest value seen), which
makes both CDFs piecewise linear and the integral exact for that model.
"""

from __future__ import annotations

import numpy as np

from detectors.ecdf import merged_ecdf
from detectors.summary import NumericSummary

STD_FLOOR = 0.001


def wasserstein_normed_exact(reference: np.ndarray, current: np.ndarray, presorted: bool = False) -> float:
    """W1 / max(std(reference), 0.001) on raw values (as ``scipy.stats.wasserstein_distance``).

    >>> wasserstein_normed_exact(np.array([0.0, 2.0]), np.array([1.0, 3.0]))  # W1 = 1, std = 1
    1.0
    """
    if reference.size == 0 or current.size == 0:
        return float("nan")
    a = reference if presorted else np.sort(reference)
    b = current if presorted else np.sort(current)
    return wasserstein_from_merged(*merged_ecdf(a, b)) / std_norm(reference)


def std_norm(reference: np.ndarray) -> float:
    """The normaliser: the reference's population std, floored at 0.001."""
    return max(float(np.std(reference)), STD_FLOOR)


def wasserstein_from_merged(values: np.ndarray, count_a: np.ndarray, count_b: np.ndarray) -> float:
    """W1 from :func:`detectors.ecdf.merged_ecdf` output: Σ |F_a − F_b| · Δz."""
    gaps = np.abs(count_a[:-1] / count_a[-1] - count_b[:-1] / count_b[-1])
    return float(np.sum(gaps * np.diff(values.astype(np.float64, copy=False))))


def _segment_integral(d0: np.ndarray, d1: np.ndarray, width: np.ndarray) -> np.ndarray:
    """∫ |d| over segments where d runs linearly from d0 to d1."""
    same_sign = d0 * d1 >= 0
    a0, a1 = np.abs(d0), np.abs(d1)
    spread = np.where(a0 + a1 > 0, a0 + a1, 1.0)
    crossing = (d0 * d0 + d1 * d1) / (2 * spread)
    return np.where(same_sign, (a0 + a1) / 2, crossing) * width


def wasserstein_normed_binned(reference: NumericSummary, current: NumericSummary) -> float:
    """Normalised W1 between two summaries over the same fine bins.

    Inside the frozen edges mass is spread evenly within each fine bin. In the open
    tails the integral is ``E[(e₀ − X)⁺]`` and ``E[(X − e_last)⁺]``, known exactly from
    the tail sums; when only one side has tail mass (always so against the reference
    the bins came from) the tail contribution is exact.

    >>> from detectors.binning import NumericBins
    >>> bins = NumericBins.from_reference(np.array([0.0, 2.0]), fine_bins=2, psi_bins=1)
    >>> ref = NumericSummary.fold(bins, np.array([0.0, 2.0]))
    >>> round(wasserstein_normed_binned(ref, ref), 12)
    0.0
    """
    n, m = reference.count, current.count
    if n == 0 or m == 0:
        return float("nan")
    edges = reference.bins.edges
    cdf_ref = np.cumsum(reference.counts[:-1]) / n  # CDF at each edge
    cdf_cur = np.cumsum(current.counts[:-1]) / m
    diff = cdf_ref - cdf_cur
    inner = _segment_integral(diff[:-1], diff[1:], np.diff(edges)).sum()
    low, high = float(edges[0]), float(edges[-1])
    lower = (reference.counts[0] * low - float(reference.lower_tail_total)) / n - (
        current.counts[0] * low - float(current.lower_tail_total)
    ) / m
    upper = (float(reference.upper_tail_total) - reference.counts[-1] * high) / n - (
        float(current.upper_tail_total) - current.counts[-1] * high
    ) / m
    return float(inner + abs(lower) + abs(upper)) / max(reference.std, STD_FLOOR)
