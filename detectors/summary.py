"""Mergeable summaries: the one data type that carries the whole flow.

A summary holds counts over bins frozen from the reference, plus the missing count and
exact moments. Summaries over the same bins add: ``fold(a) + fold(b) == fold(a ∪ b)``
exactly, which is what lets time buckets sum into windows, partitions merge in the
aggregator, and a sidecar ship interval summaries instead of raw records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

import numpy as np

from detectors.binning import CategoricalBins, NumericBins, category_counts, is_missing_category
from detectors.exact_sum import ExactSum


class _Counted:
    """Row accounting shared by both summary kinds: present values and missing ones."""

    counts: np.ndarray
    missing: int

    @property
    def count(self) -> int:
        """Number of present (binned) values."""
        return int(self.counts.sum())

    @property
    def rows(self) -> int:
        return self.count + self.missing

    @property
    def missing_ratio(self) -> float:
        return self.missing / self.rows if self.rows else 0.0


@dataclass(frozen=True, eq=False)
class NumericSummary(_Counted):
    """Fine-bin counts of the finite values of a numeric column, and its moments.

    NaN and ±inf count as missing: they carry no position on the axis.

    >>> bins = NumericBins.from_reference(np.arange(10.0), fine_bins=5, psi_bins=5)
    >>> s = NumericSummary.fold(bins, np.array([1.0, 2.0, np.nan, np.inf]))
    >>> s.count, s.missing, s.mean
    (2, 2, 1.5)
    >>> s == NumericSummary.fold(bins, np.array([1.0, np.nan])) + NumericSummary.fold(bins, np.array([2.0, np.inf]))
    True
    """

    bins: NumericBins
    counts: np.ndarray  # int64, one per fine bin
    missing: int = 0
    total: ExactSum = field(default_factory=ExactSum)
    total_squares: ExactSum = field(default_factory=ExactSum)
    minimum: float = float("inf")
    maximum: float = float("-inf")
    # Sums of the values in the open tails: they make Wasserstein exact out there.
    lower_tail_total: ExactSum = field(default_factory=ExactSum)
    upper_tail_total: ExactSum = field(default_factory=ExactSum)

    @classmethod
    def empty(cls, bins: NumericBins) -> NumericSummary:
        return cls(bins, np.zeros(bins.n_fine, dtype=np.int64))

    @classmethod
    def fold(cls, bins: NumericBins, values: np.ndarray) -> NumericSummary:
        """Summarise one batch of values (float64; NaN/±inf are missing)."""
        v = np.asarray(values, dtype=np.float64).ravel()
        finite = np.isfinite(v)
        # One sort serves everything: bin counts are differences of edge positions,
        # the tails are slices, and exact sums over sorted values group by exponent.
        x = np.sort(v if finite.all() else v[finite])
        below = np.searchsorted(x, bins.edges, side="left")  # values < each edge
        counts = np.diff(below, prepend=0, append=x.size).astype(np.int64)
        return cls(
            bins,
            counts,
            int(v.size - x.size),
            ExactSum.of(x),
            ExactSum.of_squares(x),
            float(x[0]) if x.size else float("inf"),
            float(x[-1]) if x.size else float("-inf"),
            ExactSum.of(x[: below[0]]),
            ExactSum.of(x[below[-1] :]),
        )

    @property
    def mean(self) -> float:
        return self.total.divided_by(self.count)

    @property
    def std(self) -> float:
        """Population standard deviation (ddof=0) from the exact moments."""
        n = self.count
        if n == 0:
            return float("nan")
        mean = self.mean
        variance = self.total_squares.divided_by(n) - mean * mean
        return float(np.sqrt(max(variance, 0.0)))

    def __add__(self, other: NumericSummary) -> NumericSummary:
        if self.bins != other.bins:
            raise ValueError("cannot merge numeric summaries over different bins")
        return NumericSummary(
            self.bins,
            self.counts + other.counts,
            self.missing + other.missing,
            self.total + other.total,
            self.total_squares + other.total_squares,
            min(self.minimum, other.minimum),
            max(self.maximum, other.maximum),
            self.lower_tail_total + other.lower_tail_total,
            self.upper_tail_total + other.upper_tail_total,
        )

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, NumericSummary)
            and self.bins == other.bins
            and np.array_equal(self.counts, other.counts)
            and self.missing == other.missing
            and self.total == other.total
            and self.total_squares == other.total_squares
            and self.minimum == other.minimum
            and self.maximum == other.maximum
            and self.lower_tail_total == other.lower_tail_total
            and self.upper_tail_total == other.upper_tail_total
        )

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, eq=False)
class CategoricalSummary(_Counted):
    """Counts of the reference's top-K categories and ``__other__``, plus missing.

    >>> bins = CategoricalBins(("DE", "FR"))
    >>> s = CategoricalSummary.fold(bins, np.array(["DE", "US", None, "DE"], dtype=object))
    >>> s.counts.tolist(), s.missing
    ([2, 0, 1], 1)
    """

    bins: CategoricalBins
    counts: np.ndarray  # int64, one per label in bins.labels
    missing: int = 0

    @classmethod
    def empty(cls, bins: CategoricalBins) -> CategoricalSummary:
        return cls(bins, np.zeros(bins.n_bins, dtype=np.int64))

    @classmethod
    def fold(cls, bins: CategoricalBins, values: np.ndarray) -> CategoricalSummary:
        arr = np.asarray(values, dtype=object).ravel()
        names, counts = category_counts(arr)
        missing = sum(1 for v in arr if is_missing_category(v))
        return cls.from_counts(bins, names, counts, missing)

    @classmethod
    def from_counts(
        cls, bins: CategoricalBins, names: list[str], counts: list[int], missing: int = 0
    ) -> CategoricalSummary:
        """Build from already-counted distinct values (e.g. Arrow ``value_counts``)."""
        binned = np.bincount(
            bins.index_of(list(names)), weights=np.asarray(counts, dtype=np.float64), minlength=bins.n_bins
        )
        return cls(bins, binned.astype(np.int64), int(missing))

    def __add__(self, other: CategoricalSummary) -> CategoricalSummary:
        if self.bins != other.bins:
            raise ValueError("cannot merge categorical summaries over different categories")
        return CategoricalSummary(self.bins, self.counts + other.counts, self.missing + other.missing)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, CategoricalSummary)
            and self.bins == other.bins
            and np.array_equal(self.counts, other.counts)
            and self.missing == other.missing
        )

    __hash__ = None  # type: ignore[assignment]


ColumnSummary = Union[NumericSummary, CategoricalSummary]
