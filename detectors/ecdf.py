"""Two empirical CDFs over their merged support, from sorted samples.

Exact KS and Wasserstein both walk the union of two samples in order. Merging two
sorted arrays with a stable sort is one linear pass (timsort finds the two runs),
where ``searchsorted`` of one sample into the other would cost a binary search per
value.
"""

from __future__ import annotations

import numpy as np


def merged_ecdf(a_sorted: np.ndarray, b_sorted: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct values of ``a ∪ b`` in order, with how many of ``a`` and of ``b`` are ≤ each.

        F_a(z_k) = count_a[k] / len(a),  F_b(z_k) = count_b[k] / len(b)

    (right-continuous, so a run of ties is counted at its end).

    >>> z, ca, cb = merged_ecdf(np.array([1.0, 2.0, 2.0]), np.array([2.0, 3.0]))
    >>> z.tolist(), ca.tolist(), cb.tolist()
    ([1.0, 2.0, 3.0], [1, 3, 3], [0, 1, 2])
    """
    values = np.concatenate([a_sorted, b_sorted])
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    count_a = np.cumsum(order < a_sorted.size)
    count_b = np.arange(1, ordered.size + 1) - count_a
    ends = np.append(np.flatnonzero(ordered[1:] != ordered[:-1]), ordered.size - 1)
    return ordered[ends], count_a[ends], count_b[ends]
