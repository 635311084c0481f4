"""Exact float sums that merge without rounding error.

Summaries must add exactly: ``summary(a) + summary(b) == summary(a ∪ b)``. Float
addition is not associative, so a running ``float`` sum would break that law. Every
finite double is an integer multiple of 2**-1126 once its mantissa is shifted by its
exponent, so the exact sum of any set of doubles is one Python integer times 2**-1126.
Adding two such integers is exact and order-free; the float value is produced once,
correctly rounded, when asked for.
"""

from __future__ import annotations

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


# Runs of at most this many equal-exponent values: their significands (< 2**53 each)
# then sum below 2**64, so a wrapping uint64 sum of the raw bits recovers them exactly.
_RUN_CAP = 2048
_LIMB_BITS = 16  # a run's significand sum is cut into four limbs for the block sums below
_BLOCK_BITS = 4  # exponents are combined 16 at a time: a limb shifted by < 16 stays < 2**32
_FEW_RUNS = 160


def group_numerators(values: np.ndarray, bounds: np.ndarray) -> list[int]:
    """Exact numerators (× 2**-1126) of each group ``values[bounds[i]:bounds[i + 1]]``.

    ``values`` must be finite float64. Built for sorted groups (a summary sorts its values
    anyway), where values of one sign and exponent form a few long runs: a run's
    significands are summed from the raw bits with one wrapping ``uint64`` reduction, and
    runs are combined 16 exponents at a time in ``int64`` before any Python integer is
    made, so the Python work per group is a handful of big-integer additions however
    many values there are. Unsorted groups fall back to :func:`_exact_numerator`.
    """
    flat = np.ascontiguousarray(values, dtype=np.float64).ravel()
    bounds = np.asarray(bounds, dtype=np.int64)
    groups = bounds.size - 1
    totals = [0] * groups
    n = flat.size
    if n == 0 or groups <= 0:
        return totals
    bits = flat.view(np.uint64)
    top = bits >> np.uint64(52)  # sign and biased exponent
    starts = _run_starts(top, bounds, n)
    if starts is None:
        # Unsorted groups have short runs: the per-value split is cheaper then.
        return [_exact_numerator(flat[a:b]) for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist())]
    sums = np.add.reduceat(bits, starts)  # wraps modulo 2**64
    counts = np.diff(starts, append=n).astype(np.uint64)
    head = top[starts]
    exponent = (head & np.uint64(0x7FF)).astype(np.int64)
    negative = (head >> np.uint64(11)).astype(np.int64)
    # Σ(bits) − count·(sign|exponent bits) ≡ Σ fractions (mod 2**64), and Σ fractions < 2**63.
    significands = sums - counts * (head << np.uint64(52))
    significands += np.where(exponent > 0, counts << np.uint64(52), np.uint64(0))  # implicit bits; < 2**64
    effective = np.maximum(exponent, 1)  # subnormals scale like exponent 1
    group = np.searchsorted(bounds, starts, side="right") - 1
    if starts.size <= _FEW_RUNS:
        # Few runs: one big-integer shift each is cheaper than the block sums below.
        for significand, scale, sign, g in zip(
            significands.tolist(), (effective + (_SHIFT - 1075)).tolist(), negative.tolist(), group.tolist()
        ):
            if sign:
                totals[g] -= significand << scale
            else:
                totals[g] += significand << scale
        return totals
    key = ((group * 2 + negative) << 7) | (effective >> _BLOCK_BITS)
    order = np.argsort(key, kind="stable")
    key = key[order]
    shift = (effective & ((1 << _BLOCK_BITS) - 1))[order]
    significands = significands[order]
    cells = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
    limbs = []
    for k in range(4):
        limb = ((significands >> np.uint64(_LIMB_BITS * k)) & np.uint64(0xFFFF)).astype(np.int64) << shift
        limbs.append(np.add.reduceat(limb, cells).tolist())
    for cell_key, l0, l1, l2, l3 in zip(key[cells].tolist(), *limbs):
        value = (((((l3 << _LIMB_BITS) + l2) << _LIMB_BITS) + l1) << _LIMB_BITS) + l0
        value <<= ((cell_key & 0x7F) << _BLOCK_BITS) + _SHIFT - 1075
        if (cell_key >> 7) & 1:
            totals[cell_key >> 8] -= value
        else:
            totals[cell_key >> 8] += value
    return totals


def _run_starts(top: np.ndarray, bounds: np.ndarray, n: int) -> np.ndarray | None:
    """Starts of the runs of equal sign and exponent, split at group bounds and every
    _RUN_CAP values; None when runs are too short to be worth it (unsorted data)."""
    changes = np.flatnonzero(top[1:] != top[:-1]) + 1
    if changes.size > n // 4 + 64:
        return None
    inner = bounds[(bounds > 0) & (bounds < n)]
    starts = np.concatenate(([0], changes, inner))
    if inner.size:
        starts.sort(kind="stable")  # two sorted runs: timsort merges them
        starts = starts[np.concatenate(([True], starts[1:] != starts[:-1]))]
    lengths = np.diff(starts, append=n)
    long = np.flatnonzero(lengths > _RUN_CAP)
    if long.size:
        pieces = [np.arange(starts[i] + _RUN_CAP, starts[i] + lengths[i], _RUN_CAP) for i in long.tolist()]
        starts = np.unique(np.concatenate([starts, *pieces]))
    return starts


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
