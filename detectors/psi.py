"""Population Stability Index, streaming and Evidently-compatible.

    PSI = Σ_i (p_i − q_i) · ln(p_i / q_i)

where ``p`` and ``q`` are the reference and current shares per bin. Each term is
non-negative (both factors share a sign) and swapping ``p`` and ``q`` leaves it
unchanged, so PSI ≥ 0 and is symmetric.
"""

from __future__ import annotations

import numpy as np

DEFAULT_EPSILON = 1e-4
_EVIDENTLY_DISTINCT_LIMIT = 20


def psi_from_shares(p: np.ndarray, q: np.ndarray) -> float:
    """PSI of two share vectors that already have no zeros.

    >>> round(psi_from_shares(np.array([0.5, 0.5]), np.array([0.25, 0.75])), 6)  # = ln(3)/4
    0.274653
    """
    return float(np.sum((p - q) * np.log(p / q)))


def psi(reference_counts: np.ndarray, current_counts: np.ndarray, epsilon: float = DEFAULT_EPSILON) -> float:
    """Streaming PSI over frozen bins; an empty bin's share becomes ``epsilon``.

    Shares are not renormalised after the replacement, as in most PSI tools.

    >>> round(psi(np.array([50, 50]), np.array([25, 75])), 6)
    0.274653
    >>> round(psi(np.array([10, 0]), np.array([5, 5])), 6)  # (1-0.5)ln(2) + (1e-4-0.5)ln(2e-4)
    4.604318
    """
    ref = np.asarray(reference_counts, dtype=np.float64)
    cur = np.asarray(current_counts, dtype=np.float64)
    if ref.sum() <= 0 or cur.sum() <= 0:
        return float("nan")
    p = ref / ref.sum()
    q = cur / cur.sum()
    p[p == 0] = epsilon
    q[q == 0] = epsilon
    return psi_from_shares(p, q)


def _fill_zeros_evidently(shares: np.ndarray) -> np.ndarray:
    nonzero = shares[shares != 0]
    smallest = float(nonzero.min())
    fill = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    out = shares.copy()
    out[out == 0] = fill
    return out


def evidently_counts(
    reference: np.ndarray, current: np.ndarray, numeric: bool, presorted: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Per-bin counts by Evidently 0.7's binning (inputs already without NaN/±inf).

    Numeric columns with more than 20 distinct reference values: Sturges equal-width
    edges over reference and current together (``np.histogram`` bins: left-closed, the
    last one closed). Otherwise one bin per distinct value. Integer data stays integer:
    numpy floors the Sturges width at 1 for integer arrays, as it does for the int64
    Series Evidently bins. ``presorted`` numeric inputs are counted by bisection.
    """
    ref = np.asarray(reference)
    cur = np.asarray(current)
    if numeric:
        if not presorted:
            ref, cur = np.sort(ref), np.sort(cur)
        distinct = 1 + int(np.count_nonzero(ref[1:] != ref[:-1])) if ref.size else 0
        if distinct > _EVIDENTLY_DISTINCT_LIMIT:
            edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
            return _histogram_sorted(ref, edges), _histogram_sorted(cur, edges)
    keys, inverse = np.unique(np.concatenate([ref, cur]), return_inverse=True)
    inverse = inverse.ravel()
    return (
        np.bincount(inverse[: ref.size], minlength=keys.size),
        np.bincount(inverse[ref.size :], minlength=keys.size),
    )


def _histogram_sorted(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``np.histogram(values, edges)[0]`` for sorted ``values`` spanning the edges."""
    positions = np.searchsorted(values, edges, side="left")
    positions[-1] = np.searchsorted(values, edges[-1], side="right")  # last bin is closed
    return np.diff(positions)


def evidently_shares(reference: np.ndarray, current: np.ndarray, numeric: bool) -> tuple[np.ndarray, np.ndarray]:
    """Evidently 0.7's per-bin shares, zeros filled (see :func:`psi_from_evidently_counts`)."""
    ref_counts, cur_counts = evidently_counts(reference, current, numeric)
    return _fill_zeros_evidently(ref_counts / ref_counts.sum()), _fill_zeros_evidently(cur_counts / cur_counts.sum())


def psi_from_evidently_counts(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """PSI of Evidently-binned counts: a zero share becomes (smallest non-zero share)/1e6
    when that is ≤ 1e-4, else 1e-4, on each side separately; no renormalising.

    >>> round(psi_from_evidently_counts(np.array([2, 2]), np.array([1, 3])), 6)
    0.274653
    """
    p = _fill_zeros_evidently(reference_counts / reference_counts.sum())
    q = _fill_zeros_evidently(current_counts / current_counts.sum())
    return psi_from_shares(p, q)


def psi_evidently(reference: np.ndarray, current: np.ndarray, numeric: bool) -> float:
    """PSI exactly as Evidently 0.7 computes it, for offline comparison.

    >>> round(psi_evidently(np.array(["a", "a", "b", "b"]), np.array(["a", "b", "b", "b"]), numeric=False), 6)
    0.274653
    """
    return psi_from_evidently_counts(*evidently_counts(reference, current, numeric))
