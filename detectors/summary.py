"""Mergeable summaries: the one data type that carries the whole flow.

A summary holds counts over bins frozen from the reference, plus the missing count and
exact moments. Summaries over the same bins add: ``fold(a) + fold(b) == fold(a ∪ b)``
exactly, which is what lets time buckets sum into windows, partitions merge in the
aggregator, and a sidecar ship interval summaries instead of raw records.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from detectors.binning import CategoricalBins, NumericBins, category_counts, is_missing_category
from detectors.exact_sum import CHUNK, ExactSum, group_numerators, piece_numerators, sorted_union


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
        return cls.fold_groups(bins, v, np.array([0, v.size]))[0]

    @classmethod
    def fold_groups(cls, bins: NumericBins, values: np.ndarray, bounds: np.ndarray) -> list[NumericSummary]:
        """One summary per group ``values[bounds[i]:bounds[i + 1]]``, in one pass over all groups.

        Each summary equals ``fold`` of its group; folding a batch's time buckets together
        costs one set of array operations instead of one per bucket. Small batches sort each
        group (few array calls); from :data:`UNSORTED_FROM` values on, :func:`_fold_unsorted`
        folds without sorting (a sort is most of the cost at that size).
        """
        v = np.asarray(values, dtype=np.float64).ravel()
        bounds = np.asarray(bounds, dtype=np.int64)
        if v.size >= UNSORTED_FROM:
            return _fold_unsorted(cls, bins, v, bounds)
        return cls._fold_groups_sorted(bins, v, bounds)

    @classmethod
    def _fold_groups_sorted(cls, bins: NumericBins, v: np.ndarray, bounds: np.ndarray) -> list[NumericSummary]:
        """:meth:`fold_groups` by sorting each group: bin counts from the edges' positions."""
        groups = bounds.size - 1
        finite = np.isfinite(v)
        if finite.all():
            x = v.copy()
            xb = bounds
            missing = np.zeros(groups, dtype=np.int64)
        else:
            kept = np.concatenate(([0], np.cumsum(finite)))
            xb = kept[bounds]
            missing = np.diff(bounds) - np.diff(xb)
            x = v[finite]
        sizes = np.diff(xb)
        edges = bins.edges
        # One sort per group serves everything: bin counts are differences of edge
        # positions, the tails are slices, and exact sums over sorted values go by runs.
        below = np.zeros((groups, edges.size), dtype=np.int64)  # values < each edge, per group
        for g, (start, end) in enumerate(zip(xb[:-1].tolist(), xb[1:].tolist())):
            if end > start:
                part = x[start:end]
                part.sort()
                below[g] = np.searchsorted(part, edges, side="left")
        counts = np.empty((groups, edges.size + 1), dtype=np.int64)
        counts[:, 0] = below[:, 0]
        counts[:, 1:-1] = np.diff(below, axis=1)
        counts[:, -1] = sizes - below[:, -1]
        totals, squares, square_infinities, lower, upper = _exact_sums(x, xb, counts[:, 0], counts[:, -1])
        minimum, maximum = [float("inf")] * groups, [float("-inf")] * groups
        if x.size:
            present = sizes > 0
            minimum = np.where(present, x[np.minimum(xb[:-1], x.size - 1)], np.inf).tolist()
            maximum = np.where(present, x[np.maximum(xb[1:] - 1, 0)], -np.inf).tolist()
        missing_list = missing.tolist()
        return [
            cls(
                bins,
                counts[g].copy(),
                missing_list[g],
                ExactSum(totals[g]),
                ExactSum(squares[g], square_infinities[g], 0),
                minimum[g],
                maximum[g],
                ExactSum(lower[g]),
                ExactSum(upper[g]),
            )
            for g in range(groups)
        ]

    @classmethod
    def fold_columns(
        cls, bins: Sequence[NumericBins], values: np.ndarray, bounds: np.ndarray
    ) -> list[list[NumericSummary]]:
        """``fold_groups(bins[f], values[f], bounds)`` for every row ``f`` of a 2-D array, at once.

        ``values`` is (columns × rows) float64 and may be sorted in place group by group (pass
        a copy you own). The result equals ``fold_groups`` column by column (a zero's sign in
        ``minimum``/``maximum`` aside, which the sort decides); the per-group and per-column
        Python work of that loop becomes one sort per group for all columns, one search per
        column, one ``bincount`` and one exact-sum pass for everything.

        >>> b = NumericBins.from_reference(np.arange(10.0), fine_bins=5, psi_bins=5)
        >>> [[s.count for s in col] for col in NumericSummary.fold_columns([b, b], np.array([[1.0, np.nan, 3.0], [4.0, 5.0, np.inf]]), np.array([0, 1, 3]))]
        [[1, 1], [1, 1]]
        """
        v = np.asarray(values, dtype=np.float64)
        columns, rows = v.shape
        bounds = np.asarray(bounds, dtype=np.int64)
        groups = bounds.size - 1
        if columns == 0:
            return []
        if rows >= UNSORTED_FROM:  # large batches: column by column without sorting
            return [_fold_unsorted(cls, b, v[f], bounds) for f, b in enumerate(bins)]
        if groups <= 0 or rows == 0 or bool((np.diff(bounds) <= 0).any()):
            return [cls.fold_groups(b, v[f], bounds) for f, b in enumerate(bins)]  # empty groups: the plain way
        # Sorted, a group's row reads -inf…, finite…, +inf…, NaN…: its finite values are one
        # contiguous run, so dropping the others keeps each (column, group) segment sorted.
        for start, end in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
            v[:, start:end].sort(axis=1)
        finite = np.isfinite(v)
        sizes = np.add.reduceat(finite, bounds[:-1], axis=1, dtype=np.int64)  # (columns, groups)
        missing = (np.diff(bounds)[None, :] - sizes).ravel().tolist()
        x = v[finite]  # row-major: segments in (column, group) order, each sorted
        segments = columns * groups
        xb = np.concatenate(([0], np.cumsum(sizes.ravel())))
        # Fine bin of each value: the number of edges at or below it (values < edges[0]
        # are bin 0, values ≥ edges[-1] the last), counted for all segments in one bincount.
        widths = np.array([b.edges.size + 1 for b in bins], dtype=np.int64)
        segment_widths = np.repeat(widths, groups)
        segment_offsets = np.concatenate(([0], np.cumsum(segment_widths)))
        column_bounds = xb[::groups].tolist()
        cell = np.empty(x.size, dtype=np.int64)
        for f, b in enumerate(bins):
            a, z = column_bounds[f], column_bounds[f + 1]
            cell[a:z] = b.fine_index(x[a:z])
        cell += np.repeat(segment_offsets[:-1], np.diff(xb))
        flat_counts = np.bincount(cell, minlength=int(segment_offsets[-1]))
        offsets = segment_offsets.tolist()
        counts = [flat_counts[offsets[s] : offsets[s + 1]].copy() for s in range(segments)]
        lower_sizes = flat_counts[segment_offsets[:-1]]
        upper_sizes = flat_counts[segment_offsets[1:] - 1]
        totals, squares, square_infinities, lower, upper = _exact_sums(x, xb, lower_sizes, upper_sizes)
        present = np.diff(xb) > 0
        last = max(x.size - 1, 0)
        if x.size:
            minimum = np.where(present, x[np.minimum(xb[:-1], last)], np.inf).tolist()
            maximum = np.where(present, x[np.maximum(xb[1:] - 1, 0)], -np.inf).tolist()
        else:
            minimum, maximum = [float("inf")] * segments, [float("-inf")] * segments
        out: list[list[NumericSummary]] = []
        for f, b in enumerate(bins):
            column = []
            for s in range(f * groups, (f + 1) * groups):
                column.append(
                    cls(
                        b,
                        counts[s],
                        missing[s],
                        ExactSum(totals[s]),
                        ExactSum(squares[s], square_infinities[s], 0),
                        minimum[s],
                        maximum[s],
                        ExactSum(lower[s]),
                        ExactSum(upper[s]),
                    )
                )
            out.append(column)
        return out

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
        if self.bins is not other.bins and self.bins != other.bins:
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

    @classmethod
    def sum(cls, parts: Sequence[NumericSummary]) -> NumericSummary:
        """``parts[0] + parts[1] + …`` in one step (a window over many buckets)."""
        first = parts[0]
        if len(parts) == 1:
            return first
        counts = first.counts.copy()
        missing, minimum, maximum = first.missing, first.minimum, first.maximum
        for part in parts[1:]:  # one pass for the scalars, as min()/max() would keep the first extreme
            if part.bins is not first.bins and part.bins != first.bins:
                raise ValueError("cannot merge numeric summaries over different bins")
            counts += part.counts
            missing += part.missing
            if part.minimum < minimum:
                minimum = part.minimum
            if part.maximum > maximum:
                maximum = part.maximum
        return cls(
            first.bins,
            counts,
            missing,
            ExactSum.sum([p.total for p in parts]),
            ExactSum.sum([p.total_squares for p in parts]),
            minimum,
            maximum,
            ExactSum.sum([p.lower_tail_total for p in parts]),
            ExactSum.sum([p.upper_tail_total for p in parts]),
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


# From this many values of one column on, folds skip the sort (see :func:`_fold_unsorted`).
UNSORTED_FROM = 4096


def _fold_unsorted(
    cls: type[NumericSummary], bins: NumericBins, v: np.ndarray, bounds: np.ndarray
) -> list[NumericSummary]:
    """:meth:`NumericSummary.fold_groups` without sorting, chunk by chunk.

    Each chunk of :data:`~detectors.exact_sum.CHUNK` values (its temporaries stay in the
    cache) is cut where groups change; per piece, the fine bins come from the grid lookup
    and one ``bincount``, the exact sums from :func:`~detectors.exact_sum.piece_numerators`,
    the extremes from ``reduceat``. Non-finite values are counted as missing: they sum as 0
    and count in a discarded bin. Pieces of one group add up as summaries do.
    """
    groups = bounds.size - 1
    n = v.size
    width = bins.edges.size + 1
    counts = np.zeros((groups, width), dtype=np.int64)
    present = np.zeros(groups, dtype=np.int64)
    minimum = np.full(groups, np.inf)
    maximum = np.full(groups, -np.inf)
    totals, squares, square_infinities, lower, upper = ([0] * groups for _ in range(5))
    cuts = sorted_union(bounds, np.arange(0, n, CHUNK)) if n else np.zeros(1, dtype=np.int64)
    group_of_piece = np.searchsorted(bounds, cuts[:-1], side="right") - 1
    chunk_of_piece = cuts[:-1] // CHUNK
    # One pass per chunk: the pieces [first, last) of the chunk that starts at cuts[first].
    firsts = np.flatnonzero(np.diff(chunk_of_piece, prepend=-1)).tolist() + [cuts.size - 1]
    for first, last in zip(firsts[:-1], firsts[1:]):
        start, stop = int(cuts[first]), int(cuts[last])
        owners = group_of_piece[first:last]
        starts = cuts[first:last] - start
        sizes = np.diff(cuts[first : last + 1])
        x = v[start:stop]
        finite = np.isfinite(x)
        if finite.all():
            index = bins.fine_index(x)
            low, high = x, x
            present[owners] += sizes
        else:
            x = np.where(finite, x, 0.0)
            index = bins.fine_index(x)
            index[~finite] = width  # the discarded bin
            low, high = np.where(finite, x, np.inf), np.where(finite, x, -np.inf)
            present[owners] += np.add.reduceat(finite, starts, dtype=np.int64)
        piece_min, piece_max = np.minimum.reduceat(low, starts), np.maximum.reduceat(high, starts)
        minimum[owners] = np.minimum(minimum[owners], piece_min)
        maximum[owners] = np.maximum(maximum[owners], piece_max)
        # max |x| of the chunk's finite values (0 when it has none): spares the sums a pass.
        largest = max(0.0, -float(piece_min.min()), float(piece_max.max()))
        offsets = np.repeat(np.arange(starts.size, dtype=np.int64) * (width + 1), sizes) if starts.size > 1 else 0
        index += offsets
        piece_counts = np.bincount(index, minlength=starts.size * (width + 1)).reshape(starts.size, width + 1)
        counts[owners] += piece_counts[:, :width]
        with np.errstate(over="ignore"):
            squared = x * x
            largest_square = largest * largest
        owner_list = owners.tolist()
        if largest_square == np.inf:  # some square may overflow: count those as +inf
            overflow = np.isinf(squared)
            squared[overflow] = 0.0
            for g, k in zip(owner_list, np.add.reduceat(overflow, starts, dtype=np.int64).tolist()):
                square_infinities[g] += k
            largest_square = float(squared.max())
        for target, parts in (
            (totals, piece_numerators(x, starts, largest)),
            (squares, piece_numerators(squared, starts, largest_square)),
        ):
            for g, numerator in zip(owner_list, parts):
                target[g] += numerator
        for target, tail, column in ((lower, 0, 0), (upper, width - 1, width - 1)):
            sizes_in_tail = piece_counts[:, column]
            if not sizes_in_tail.any():
                continue
            in_tail = (index - offsets) == tail
            tail_bounds = np.concatenate(([0], np.cumsum(sizes_in_tail)))
            for g, numerator in zip(owner_list, group_numerators(x[in_tail], tail_bounds)):
                target[g] += numerator
    missing = (np.diff(bounds) - present).tolist()
    minima, maxima = minimum.tolist(), maximum.tolist()
    return [
        cls(
            bins,
            counts[g],
            missing[g],
            ExactSum(totals[g]),
            ExactSum(squares[g], square_infinities[g], 0),
            minima[g],
            maxima[g],
            ExactSum(lower[g]),
            ExactSum(upper[g]),
        )
        for g in range(groups)
    ]


def _exact_sums(
    x: np.ndarray, bounds: np.ndarray, lower_sizes: np.ndarray, upper_sizes: np.ndarray
) -> tuple[list[int], list[int], list[int], list[int], list[int]]:
    """Per group of sorted ``x``: the exact sums of the values, of their squares (each
    rounded once, as numpy rounds it; squares past the largest double are counted as
    +inf instead), of the lower tail (its first ``lower_sizes``) and of the upper tail
    (its last ``upper_sizes``) — all in one :func:`group_numerators` call."""
    groups = bounds.size - 1
    with np.errstate(over="ignore"):
        squares = x * x
    overflow = np.isinf(squares)
    square_infinities = [0] * groups
    if overflow.any():
        squares[overflow] = 0.0
        seen = np.concatenate(([0], np.cumsum(overflow)))
        square_infinities = np.diff(seen[bounds]).tolist()
    parts = [x, squares]
    part_bounds = [bounds, bounds + x.size]
    offset = 2 * x.size
    for starts, sizes in ((bounds[:-1], lower_sizes), (bounds[1:] - upper_sizes, upper_sizes)):
        parts.extend(x[a : a + n] for a, n in zip(starts.tolist(), sizes.tolist()) if n)
        part_bounds.append(offset + np.concatenate(([0], np.cumsum(sizes))))
        offset += int(sizes.sum())
    numerators = group_numerators(
        np.concatenate(parts), np.concatenate([part_bounds[0], *(b[1:] for b in part_bounds[1:])])
    )
    return (
        numerators[:groups],
        numerators[groups : 2 * groups],
        square_infinities,
        numerators[2 * groups : 3 * groups],
        numerators[3 * groups :],
    )


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
        if self.bins is not other.bins and self.bins != other.bins:
            raise ValueError("cannot merge categorical summaries over different categories")
        return CategoricalSummary(self.bins, self.counts + other.counts, self.missing + other.missing)

    @classmethod
    def sum(cls, parts: Sequence[CategoricalSummary]) -> CategoricalSummary:
        """``parts[0] + parts[1] + …`` in one step."""
        first = parts[0]
        if len(parts) == 1:
            return first
        counts = first.counts.copy()
        for part in parts[1:]:
            if part.bins is not first.bins and part.bins != first.bins:
                raise ValueError("cannot merge categorical summaries over different categories")
            counts += part.counts
        return cls(first.bins, counts, sum(p.missing for p in parts))

    @classmethod
    def fold_groups(
        cls, bins: CategoricalBins, names: list[str], codes: np.ndarray, bounds: np.ndarray
    ) -> list[CategoricalSummary]:
        """One summary per group of dictionary-encoded values: ``codes[i]`` indexes ``names``
        (−1 is missing), groups are ``codes[bounds[g]:bounds[g + 1]]``."""
        bounds = np.asarray(bounds, dtype=np.int64)
        groups = bounds.size - 1
        width = bins.n_bins + 1  # the last column counts missing values
        bin_of_code = np.append(bins.index_of(list(names)), bins.n_bins)  # code −1 → missing
        group_of_row = np.repeat(np.arange(groups, dtype=np.int64), np.diff(bounds))
        table = np.bincount(group_of_row * width + bin_of_code[codes], minlength=groups * width).reshape(groups, width)
        missing = table[:, -1].tolist()
        return [cls(bins, table[g, :-1].copy(), missing[g]) for g in range(groups)]

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, CategoricalSummary)
            and self.bins == other.bins
            and np.array_equal(self.counts, other.counts)
            and self.missing == other.missing
        )

    __hash__ = None  # type: ignore[assignment]


ColumnSummary = NumericSummary | CategoricalSummary
