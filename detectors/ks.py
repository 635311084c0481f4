"""Two-sample Kolmogorov–Smirnov test, exact and from fine histograms.

    D = sup_x |F_ref(x) − F_cur(x)|

Offline, D and its p-value come from ``scipy.stats.ks_2samp`` (method ``auto``). From
two summaries over the same fine bins, D is evaluated at every fine edge, where both
empirical CDFs are known exactly. Inside a bin holding shares ``r_i`` and ``c_i`` the
difference of the CDFs can move past its edge values by at most ``min(r_i, c_i)``, so

    D_binned ≤ D_exact ≤ D_binned + max_i min(r_i, c_i) ≤ D_binned + max_i r_i

and ``max_i r_i`` is about 1/fine_bins (0.001 by default) for a continuous reference.
The tails hold no reference mass and add no error. The streaming p-value is scipy's
asymptotic one, ``kstwo.sf(D, round(n·m / (n + m)))``, evaluated by
:mod:`detectors.kolmogorov` (scipy.stats is imported only for the exact test).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detectors import kolmogorov
from detectors.ecdf import merged_ecdf


@dataclass(frozen=True)
class KSResult:
    statistic: float
    pvalue: float
    error_bound: float = 0.0  # 0 for the exact test


def ks_pvalue_asymptotic(statistic: float, n: int, m: int) -> float:
    """Asymptotic two-sided p-value of D for sample sizes ``n`` and ``m``.

    >>> round(ks_pvalue_asymptotic(0.1, 1000, 1000), 6)
    8.3e-05
    """
    if n <= 0 or m <= 0:
        return float("nan")
    effective = np.round(float(n) * float(m) / (n + m))  # scipy's arithmetic, to the bit
    return kolmogorov.sf(statistic, int(max(effective, 1.0)))


# scipy's ks_2samp(method="auto") is exact up to this many values per side, asymptotic above.
SCIPY_EXACT_MAX_N = 10_000


def ks_exact(reference: np.ndarray, current: np.ndarray, presorted: bool = False) -> KSResult:
    """KS on raw values (NaN/±inf already removed), equal to ``scipy.stats.ks_2samp``.

    Up to 10,000 values per side this is scipy itself (its exact p-value). Above, scipy
    takes the asymptotic p-value, and D is computed here from one merge of the sorted
    samples, with scipy's float arithmetic, instead of two ``searchsorted`` passes.

    >>> r = ks_exact(np.array([1.0, 2.0, 3.0, 4.0]), np.array([3.0, 4.0, 5.0, 6.0]))
    >>> r.statistic, round(r.pvalue, 6)
    (0.5, 0.771429)
    """
    n, m = reference.size, current.size
    if max(n, m) <= SCIPY_EXACT_MAX_N:
        from scipy import stats  # the exact p-value is scipy's own

        result = stats.ks_2samp(reference, current, method="auto")
        return KSResult(float(result.statistic), float(result.pvalue))
    a = reference if presorted else np.sort(reference)
    b = current if presorted else np.sort(current)
    _, count_a, count_b = merged_ecdf(a, b)
    return ks_from_merged(count_a, count_b)


def ks_from_merged(count_a: np.ndarray, count_b: np.ndarray) -> KSResult:
    """KS from :func:`detectors.ecdf.merged_ecdf` counts, with scipy's asymptotic p-value.

    D is formed as scipy forms it (``count/n − count/m`` in floats), so it is the same
    float as ``ks_2samp``'s.
    """
    n, m = int(count_a[-1]), int(count_b[-1])
    gaps = count_a / n - count_b / m
    statistic = float(max(np.clip(-gaps.min(), 0, 1), gaps.max()))
    return KSResult(statistic, ks_pvalue_asymptotic(statistic, n, m))


def ks_binned(reference_counts: np.ndarray, current_counts: np.ndarray) -> KSResult:
    """KS from two histograms over the same frozen bins, with its error bound.

    >>> r = ks_binned(np.array([0, 50, 50, 0]), np.array([0, 0, 50, 50]))
    >>> r.statistic, r.error_bound
    (0.5, 0.5)
    """
    ref = np.asarray(reference_counts, dtype=np.int64)
    cur = np.asarray(current_counts, dtype=np.int64)
    n, m = int(ref.sum()), int(cur.sum())
    if n == 0 or m == 0:
        return KSResult(float("nan"), float("nan"), float("nan"))
    # Integer cross-products keep the edge comparison exact; n·m stays far below 2**63
    # for any window a process can hold.
    gap = np.abs(np.cumsum(ref) * m - np.cumsum(cur) * n)
    statistic = float(gap.max()) / (n * m)
    error_bound = float(np.minimum(ref / n, cur / m).max())
    return KSResult(statistic, ks_pvalue_asymptotic(statistic, n, m), error_bound)
