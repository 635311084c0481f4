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
_EXP_OFFSET = 1073  # frexp exponents of finite non-zero doubles lie in [-1073, 1024]
_CHUNK = 1 << 24  # keeps float64 bincount sums of 27-bit integers exact (< 2**53)


def _exact_numerator(values: np.ndarray) -> int:
    """Sum of finite float64 ``values`` as an integer multiple of 2**-1126."""
    total = 0
    for start in range(0, values.size, _CHUNK):
        chunk = values[start : start + _CHUNK]
        chunk = chunk[chunk != 0]
        if chunk.size == 0:
            continue
        fraction, exponent = np.frexp(chunk)
        mantissa = (fraction * 2.0**53).astype(np.int64)  # exact: |fraction| < 1
        slot = exponent + _EXP_OFFSET
        high = mantissa >> 26  # floor shift, also right for negatives
        low = mantissa - (high << 26)  # in [0, 2**26)
        size = 1024 + _EXP_OFFSET + 1
        high_sums = np.bincount(slot, weights=high.astype(np.float64), minlength=size)
        low_sums = np.bincount(slot, weights=low.astype(np.float64), minlength=size)
        for s in np.flatnonzero((high_sums != 0) | (low_sums != 0)):
            scaled = (int(high_sums[s]) << 26) + int(low_sums[s])
            total += scaled << (int(s) - _EXP_OFFSET - 53 + _SHIFT)
    return total


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
