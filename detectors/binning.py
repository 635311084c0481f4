"""Bins frozen from a reference sample.

Numeric columns get a *fine* histogram whose edges are reference quantiles (default
1,000 bins) plus two open tails; the *coarse* PSI bins (default 10 reference deciles)
are unions of fine bins, so one fine histogram serves PSI, KS and Wasserstein.

Fine bin layout for edges ``e[0] < e[1] < … < e[E-1]``::

    index 0        (-inf, e[0])           lower tail, empty in the reference
    index i        [e[i-1], e[i])         1 <= i <= E-1
    index E        [e[E-1], +inf)         upper tail, empty in the reference

``e[E-1]`` is the float just above the reference maximum, so the upper tail holds
exactly the values above anything the reference saw. Categorical columns keep the
reference's top-K categories plus ``__other__``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from detectors.bin_lookup import FineLookup

OTHER = "__other__"
DEFAULT_FINE_BINS = 1000
DEFAULT_PSI_BINS = 10
DEFAULT_TOP_K = 50


@dataclass(frozen=True, eq=False)
class NumericBins:
    """Frozen fine edges and the coarse (PSI) grouping of fine bins.

    >>> bins = NumericBins.from_reference(np.arange(100.0), fine_bins=10, psi_bins=2)
    >>> bins.n_fine, bins.n_coarse
    (12, 2)
    >>> bins.fine_index(np.array([-1.0, 0.0, 50.0, 99.0, 99.5])).tolist()
    [0, 1, 6, 10, 11]
    """

    edges: np.ndarray  # strictly increasing, finite
    coarse_of_fine: np.ndarray  # coarse bin index of each fine bin
    fine_bins: int = DEFAULT_FINE_BINS
    psi_bins: int = DEFAULT_PSI_BINS

    @classmethod
    def from_reference(
        cls,
        values: np.ndarray,
        fine_bins: int = DEFAULT_FINE_BINS,
        psi_bins: int = DEFAULT_PSI_BINS,
    ) -> NumericBins:
        """Freeze edges at the ``k/fine_bins`` quantiles of the finite ``values``."""
        if fine_bins < 1 or psi_bins < 1 or fine_bins % psi_bins:
            raise ValueError(f"fine_bins ({fine_bins}) must be a positive multiple of psi_bins ({psi_bins})")
        v = np.asarray(values, dtype=np.float64)
        v = v[np.isfinite(v)]
        if v.size == 0:
            raise ValueError("cannot bin a reference with no finite values")
        quantiles = np.quantile(v, np.arange(fine_bins) / fine_bins)
        top = np.nextafter(v.max(), np.inf)
        edges = np.unique(np.append(quantiles, top))
        # Coarse boundaries are a subset of the fine quantiles, so coarse bins are
        # exact unions of fine bins.
        coarse_edges = np.unique(quantiles[:: fine_bins // psi_bins][1:])
        left = np.concatenate(([-np.inf], edges))  # left edge of each fine bin
        coarse_of_fine = np.searchsorted(coarse_edges, left, side="right")
        return cls(edges, coarse_of_fine.astype(np.int64), fine_bins, psi_bins)

    @property
    def n_fine(self) -> int:
        return self.edges.size + 1

    @property
    def n_coarse(self) -> int:
        return int(self.coarse_of_fine[-1]) + 1

    def fine_index(self, values: np.ndarray) -> np.ndarray:
        """Fine bin index of each finite value (``searchsorted(edges, values, "right")``,
        through a grid lookup where the edges allow one: see :mod:`detectors.bin_lookup`)."""
        lookup = self._lookup
        if lookup is None:
            return np.searchsorted(self.edges, values, side="right")
        return lookup.index(values)

    @cached_property
    def _lookup(self) -> FineLookup | None:
        # Built on first use: a profile that is only compared never pays for it.
        return FineLookup.build(self.edges)

    def coarse_counts(self, fine_counts: np.ndarray) -> np.ndarray:
        return np.bincount(self.coarse_of_fine, weights=fine_counts, minlength=self.n_coarse).astype(np.int64)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, NumericBins)
            and self.fine_bins == other.fine_bins
            and self.psi_bins == other.psi_bins
            and np.array_equal(self.edges, other.edges)
            and np.array_equal(self.coarse_of_fine, other.coarse_of_fine)
        )

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True)
class CategoricalBins:
    """The reference's top-K categories; anything else counts as ``__other__``.

    >>> bins = CategoricalBins.from_reference(np.array(["a", "b", "a", "c", None]), top_k=2)
    >>> bins.categories
    ('a', 'b')
    >>> bins.labels
    ('a', 'b', '__other__')
    """

    categories: tuple[str, ...]
    top_k: int = DEFAULT_TOP_K

    @classmethod
    def from_reference(cls, values: np.ndarray, top_k: int = DEFAULT_TOP_K) -> CategoricalBins:
        names, counts = category_counts(values)
        return cls.from_counts(names, counts, top_k)

    @classmethod
    def from_counts(cls, names: list[str], counts: list[int], top_k: int = DEFAULT_TOP_K) -> CategoricalBins:
        """Keep the ``top_k`` most frequent of already-counted distinct values."""
        if top_k < 1:
            raise ValueError(f"top_k must be positive, got {top_k}")
        # Most frequent first; ties broken by name so that a profile is reproducible.
        order = sorted(range(len(names)), key=lambda i: (-counts[i], names[i]))
        kept = tuple(names[i] for i in order[:top_k] if names[i] != OTHER)
        return cls(kept, top_k)

    @property
    def labels(self) -> tuple[str, ...]:
        return (*self.categories, OTHER)

    @property
    def n_bins(self) -> int:
        return len(self.categories) + 1

    def index_of(self, names: list[str]) -> np.ndarray:
        lookup = {name: i for i, name in enumerate(self.categories)}
        other = len(self.categories)
        return np.fromiter((lookup.get(n, other) for n in names), dtype=np.int64, count=len(names))


def is_missing_category(value: object) -> bool:
    return value is None or (isinstance(value, float) and not np.isfinite(value))


def category_counts(values: np.ndarray) -> tuple[list[str], list[int]]:
    """Distinct present values (as strings) and their counts; None/NaN are skipped."""
    arr = np.asarray(values, dtype=object).ravel()
    present = [v for v in arr if not is_missing_category(v)]
    if not present:
        return [], []
    names, counts = np.unique(np.array([str(v) for v in present], dtype=str), return_counts=True)
    return [str(n) for n in names], [int(c) for c in counts]
