"""Exact float sums that merge without rounding error.

Summaries must add exactly: ``summary(a) + summary(b) == summary(a ∪ b)``. Float
addition is not associative, so a running ``float`` sum would break that law. Every
finite double is an integer multiple of 2**-1126 once its mantissa is shifted by its
exponent, so the exact sum of any set of doubles is one Python integer times 2**-1126.
Adding two such integers is exact and order-free; the float value is produced once,
correctly rounded, when asked for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

_SHIFT = 1126  # 1074 (smallest subnormal exponent) + 52 (mantissa bits after the point)
_DENOMINATOR = 1 << _SHIFT
_MANTISSA_MASK = (1 << 52) - 1
_LOW_BITS = 26
# Sorted data has a few runs of equal exponent; beyond this many, regroup first.
_MAX_RUNS = 256
_CHUNK = 8192


def _exact_numerator(values: np.ndarray) -> int:
    """Sum of finite float64 ``values`` as an integer multiple of 2**-1126.

    A double with biased exponent ``E`` and integer significand ``M`` is
    ``M · 2**(E − 1075)`` (subnormals: ``E`` read as 1). Within a run of equal ``E`` the
    significands add exactly in int64 once split into 27 + 26 bits; each run then
    shifts into one Python integer. Sorted input (and its squares) has few runs.
    """
    flat = np.ascontiguousarray(values, dtype=np.float64).ravel()
    total = 0
    # Small chunks keep every temporary under malloc's mmap threshold, so they reuse
    # warm heap pages instead of faulting in fresh ones (that was most of the cost).
    for start in range(0, flat.size, _CHUNK):
        total += _chunk_numerator(flat[start : start + _CHUNK].view(np.int64))
    return total


def _chunk_numerator(bits: np.ndarray) -> int:
    if bits.size == 0:
        return 0
    # Zeros need no filtering: their significand is 0.
    exponent = (bits >> 52) & 0x7FF
    significand = (bits & _MANTISSA_MASK) | ((exponent > 0).astype(np.int64) << 52)
    sign = bits >> 63  # -1 for negatives, 0 otherwise
    significand = (significand ^ sign) - sign  # two's-complement negation where sign is -1
    np.maximum(exponent, 1, out=exponent)
    high = significand >> _LOW_BITS  # floor shift, so high·2**26 + low == significand
    low = significand & ((1 << _LOW_BITS) - 1)
    starts = np.flatnonzero(exponent[1:] != exponent[:-1]) + 1
    if starts.size >= _MAX_RUNS:
        order = np.argsort(exponent.astype(np.int16), kind="stable")
        exponent, high, low = exponent[order], high[order], low[order]
        starts = np.flatnonzero(exponent[1:] != exponent[:-1]) + 1
    starts = np.concatenate(([0], starts))
    total = 0
    for h, lo, e in zip(
        np.add.reduceat(high, starts).tolist(), np.add.reduceat(low, starts).tolist(), exponent[starts].tolist()
    ):
        total += ((h << _LOW_BITS) + lo) << (e + _SHIFT - 1075)
    return total


# Values per chunk of :func:`group_numerators` and the unsorted fold: each level of
# :func:`piece_numerators` then keeps 53 − 19 bits, and a chunk's float64 temporaries (1 MiB)
# stay in the cache and are reused from the heap (see exporter.pipeline.allocator). Measured
# (docs/benchmarks.md): 2**15–2**18 within 10 %, 2**17 the best; smaller chunks pay Python's
# per-call cost more often, larger ones leave the cache.
CHUNK = 1 << 17


def sorted_union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The distinct values of two sorted integer arrays, sorted: ``np.union1d`` without
    ``np.unique``, whose first call imports numpy.ma (~8 ms of a one-shot command).

    >>> sorted_union(np.array([0, 5, 5, 9]), np.array([0, 4, 8])).tolist()
    [0, 4, 5, 8, 9]
    """
    merged = np.concatenate((np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)))
    merged.sort(kind="stable")
    if merged.size < 2:
        return merged
    return merged[np.concatenate(([True], merged[1:] != merged[:-1]))]


# Levels of extraction before the few values left over take the exact integer path.
_LEVELS = 3


def group_numerators(values: np.ndarray, bounds: np.ndarray) -> list[int]:
    """Exact numerators (× 2**-1126) of each group ``values[bounds[i]:bounds[i + 1]]``.

    ``values`` must be finite float64, in any order. No sort and no per-value integer work:
    the groups are cut into pieces of at most :data:`CHUNK` values, and each piece's values
    are split exactly into a few "levels" (:func:`piece_numerators`) whose float sums carry
    no rounding error, so a group's exact sum is a handful of float sums turned into integers.
    """
    flat = np.ascontiguousarray(values, dtype=np.float64).ravel()
    bounds = np.asarray(bounds, dtype=np.int64)
    groups = bounds.size - 1
    totals = [0] * groups
    n = flat.size
    if n == 0 or groups <= 0:
        return totals
    cuts = sorted_union(bounds, np.arange(0, n, CHUNK))
    group_of_piece = (np.searchsorted(bounds, cuts[:-1], side="right") - 1).tolist()
    chunk_of_piece = (cuts[:-1] // CHUNK).tolist()
    cut_list = cuts.tolist()
    first = 0
    while first < len(group_of_piece):
        last = first
        while last + 1 < len(group_of_piece) and chunk_of_piece[last + 1] == chunk_of_piece[first]:
            last += 1
        start, stop = cut_list[first], cut_list[last + 1]
        starts = np.array(cut_list[first : last + 1], dtype=np.int64) - start
        for piece, numerator in enumerate(piece_numerators(flat[start:stop], starts)):
            totals[group_of_piece[first + piece]] += numerator
        first = last + 1
    return totals


def piece_numerators(x: np.ndarray, starts: np.ndarray, largest: float | None = None) -> list[int]:
    """Exact numerators of the pieces ``x[starts[i]:starts[i + 1]]`` (the last runs to the end).

    ``x`` is finite float64, at most 2**51 values; ``starts`` begins with 0 and increases
    strictly (no empty piece). With ``σ = 2**L`` at least ``2 · len(x)`` times every ``|p|``,
    ``q = (σ + p) − σ`` is exact, a multiple of ``2**(L − 53)``, and ``p − q`` is exact with
    ``|p − q| ≤ 2**(L − 53)`` (the rounding error of an addition is a double): so ``p`` splits
    into ``q + r`` without error, and every partial sum of the ``q`` is a multiple of
    ``2**(L − 53)`` below ``2**L`` in magnitude — exactly representable, so a float sum of them
    (``np.add.reduceat``, in whatever order) is exact. The remainders ``r`` go through the same
    split at the next, smaller ``σ``; after a few levels the few values that still hold
    bits (tiny ones next to large ones) are summed the exact integer way.
    """
    pieces = starts.size
    totals = [0] * pieces
    if x.size == 0:
        return totals
    if largest is None:  # callers that know the extremes pass max |x| and save two passes
        largest = max(float(x.max()), -float(x.min()))
    if largest == 0.0:
        return totals
    headroom = (x.size).bit_length() + 1  # 2**(headroom − 1) > len(x)
    level = math.frexp(largest)[1] + headroom  # σ = 2**level ≥ 2**headroom · max|p|
    if level > 1023:  # σ would overflow: the exact integer way for this piece
        bounds = [*starts.tolist(), x.size]
        return [_exact_numerator(x[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
    rest = x
    for done in range(1, _LEVELS + 1):
        sigma = math.ldexp(1.0, level)
        q = rest + sigma
        q -= sigma
        if done == 1:
            rest = x - q  # x itself stays as it is
        else:
            rest -= q
        for i, total in enumerate(np.add.reduceat(q, starts).tolist()):
            if total:
                totals[i] += _float_numerator(total)
        level += headroom - 53
        # Two levels keep 72 bits below the largest value: all of most data. Only then look
        # for what is left (one pass): a few tiny values take the exact integer way.
        if done >= 2:
            where = np.flatnonzero(rest)
            if where.size <= x.size >> 6:
                break
    if not where.size:
        return totals
    piece = np.searchsorted(starts, where, side="right") - 1
    bounds = np.searchsorted(piece, np.arange(pieces + 1), side="left").tolist()
    for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        if b > a:
            totals[i] += _exact_numerator(rest[where[a:b]])
    return totals


def _float_numerator(value: float) -> int:
    """The numerator (× 2**-1126) of one finite double, exactly."""
    mantissa, exponent = math.frexp(value)
    return int(mantissa * 9007199254740992.0) << (exponent - 53 + _SHIFT)  # mantissa · 2**53 is an integer


@dataclass(frozen=True)
class ExactSum:
    """The exact sum of a multiset of doubles; ``+`` merges two sums without error.

    ``numerator / 2**1126`` is the sum of the finite terms; infinite terms are counted
    apart so that an overflowing square still merges exactly.

    >>> a = ExactSum.of(np.array([1e16, 1.0]))
    >>> b = ExactSum.of(np.array([-1e16, 1.0]))
    >>> float(a + b)  # naive float arithmetic gives 2.0 only by luck of ordering
    2.0
    >>> float(ExactSum.of(np.array([0.1, 0.2, 0.3])))
    0.6
    """

    numerator: int = 0
    positive_infinities: int = 0
    negative_infinities: int = 0

    @classmethod
    def of_squares(cls, values: np.ndarray) -> ExactSum:
        """Exact sum of ``x*x`` (each square rounded once, as numpy rounds it).

        Squares are formed chunk by chunk, never as one whole temporary array; a square
        past 1.8e308 is counted as +inf.
        """
        flat = np.ascontiguousarray(values, dtype=np.float64).ravel()
        numerator = infinities = 0
        with np.errstate(over="ignore"):
            for start in range(0, flat.size, _CHUNK):
                chunk = flat[start : start + _CHUNK]
                squares = chunk * chunk
                finite = np.isfinite(squares)
                if not finite.all():
                    if np.isnan(squares).any():
                        raise ValueError("ExactSum.of_squares: NaN has no sum; drop missing values first")
                    infinities += int(squares.size - np.count_nonzero(finite))
                    squares = squares[finite]
                numerator += _chunk_numerator(squares.view(np.int64))
        return cls(numerator, infinities, 0)

    @classmethod
    def of(cls, values: np.ndarray) -> ExactSum:
        """Exact sum of ``values`` (float64); NaN is rejected, ±inf are counted."""
        v = np.asarray(values, dtype=np.float64).ravel()
        finite = np.isfinite(v)
        if finite.all():
            return cls(_exact_numerator(v))
        if np.isnan(v).any():
            raise ValueError("ExactSum.of: NaN has no sum; drop missing values first")
        rest = v[~finite]
        return cls(
            _exact_numerator(v[finite]),
            int(np.count_nonzero(rest > 0)),
            int(np.count_nonzero(rest < 0)),
        )

    @classmethod
    def sum(cls, parts: list[ExactSum]) -> ExactSum:
        """The merge of many sums at once."""
        numerator = positive = negative = 0
        for part in parts:  # one pass: windows merge thousands of these per poll
            numerator += part.numerator
            positive += part.positive_infinities
            negative += part.negative_infinities
        return cls(numerator, positive, negative)

    def __add__(self, other: ExactSum) -> ExactSum:
        return ExactSum(
            self.numerator + other.numerator,
            self.positive_infinities + other.positive_infinities,
            self.negative_infinities + other.negative_infinities,
        )

    def __float__(self) -> float:
        if self.positive_infinities and self.negative_infinities:
            return float("nan")
        if self.positive_infinities:
            return float("inf")
        if self.negative_infinities:
            return float("-inf")
        try:
            return self.numerator / _DENOMINATOR  # int true division rounds correctly
        except OverflowError:
            return float("inf") if self.numerator > 0 else float("-inf")

    def divided_by(self, count: int) -> float:
        """``sum / count`` rounded once (a mean from an exact sum)."""
        if count <= 0:
            return float("nan")
        if self.positive_infinities or self.negative_infinities:
            return float(self)
        try:
            return self.numerator / (_DENOMINATOR * count)
        except OverflowError:
            return float("inf") if self.numerator > 0 else float("-inf")

    def to_text(self) -> str:
        """Lossless text form, ``numerator[:+inf:-inf]``, for profiles and checkpoints."""
        return f"{self.numerator}:{self.positive_infinities}:{self.negative_infinities}"

    @classmethod
    def from_text(cls, text: str) -> ExactSum:
        numerator, pos, neg = text.split(":")
        return cls(int(numerator), int(pos), int(neg))
