"""Tests on category counts: chi-square homogeneity and Jensen–Shannon distance.

Categorical PSI is :func:`detectors.psi.psi` over the top-K + ``__other__`` counts. Both tests
are computed as scipy's ``chi2_contingency`` and ``jensenshannon`` compute them, on numpy
(:mod:`detectors.elementwise`): judging drift imports no scipy.
"""

from __future__ import annotations

import math

import numpy as np

from detectors.elementwise import chi2_sf, rel_entr


def chi2_pvalue(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """p-value of Pearson's chi-square test that both samples share one distribution.

        X² = Σ_{s,i} (O_si − E_si)² / E_si,  E_si = row_s · col_i / N,  df = k − 1

    over the 2 × k table of the categories seen in either sample.

    >>> round(chi2_pvalue(np.array([50, 50]), np.array([30, 70])), 6)  # X² = 8.333…, df 1
    0.003892
    >>> chi2_pvalue(np.array([10, 0]), np.array([7, 0]))
    1.0
    """
    table = np.vstack([reference_counts, current_counts]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 1.0
    if (table.sum(axis=1) == 0).any():
        return float("nan")
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    statistic = float(((table - expected) ** 2 / expected).sum())
    return chi2_sf(statistic, table.shape[1] - 1)


def js_distance(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Jensen–Shannon distance in base 2, in [0, 1].

        JS(p, q) = sqrt( ½ KL(p ‖ m) + ½ KL(q ‖ m) ),  m = (p + q) / 2,  logs base 2

    >>> js_distance(np.array([1, 0]), np.array([0, 1]))
    1.0
    >>> round(js_distance(np.array([1, 1]), np.array([1, 0])), 6)  # sqrt(H(¾,¼) − ½)
    0.557923
    """
    p = np.asarray(reference_counts, dtype=np.float64)
    q = np.asarray(current_counts, dtype=np.float64)
    if p.sum() <= 0 or q.sum() <= 0:
        return float("nan")
    # scipy's jensenshannon(p / Σp, q / Σq, base=2), step for step (it normalises again).
    p, q = p / p.sum(), q / q.sum()
    p, q = p / p.sum(), q / q.sum()
    mix = (p + q) / 2.0
    divergence = (float(np.sum(rel_entr(p, mix))) + float(np.sum(rel_entr(q, mix)))) / math.log(2)
    return math.sqrt(divergence / 2.0)
