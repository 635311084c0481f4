"""The two-sided one-sample Kolmogorov distribution ``D_n``, without importing scipy.stats.

KS p-values and null quantiles need ``P(D_n ≥ x)`` (scipy's ``kstwo.sf``) and its inverse
(``kstwo.isf``). Importing scipy.stats costs about 0.7 CPU seconds — on a one-shot
``model-health drift`` against a profile, as much as reading and folding a million rows —
so for ``n > 140`` (every window the drift rule tests at its default minimum sizes) the
distribution is evaluated here from numpy and :mod:`math` alone, following the method
choice of Simard and L'Ecuyer, "Computing the Two-Sided Kolmogorov-Smirnov Distribution",
*Journal of Statistical Software* 39(11), 2011, the same published recipe scipy follows:

* ``n·x ≤ 1`` or ``n·x ≥ n − 1``: the closed forms of Ruben and Gambino;
* upper tail, ``n·x² ≥ 2.2`` (and ``x ≥ 0.5``): twice the one-sided Smirnov tail
  (Miller's approximation, exact for ``x ≥ 0.5``), from the Birnbaum–Tingey sum;
  0 from ``n·x² ≥ 370``;
* otherwise ``1 − P(D_n ≤ x)``, with the CDF from Durbin's matrix as Marsaglia, Tsang and
  Wang evaluate it where ``n ≤ 100,000`` and ``n·x^1.5 < 1.4``, else from Pelz and Good's
  asymptotic series.

For ``n ≤ 140`` (exact algorithms that only pay off there) scipy.stats is imported and used.
Against scipy the two agree to about 1e-12 relative in the tail and 1e-15 absolute
elsewhere (``tests/detectors/test_kolmogorov.py`` checks a grid of ``n`` and ``x``).

The Birnbaum–Tingey terms are summed in logarithms rearranged so that nothing of size
``n`` cancels: with ``S(k) = ln k! − k ln k + k`` (Stirling's remainder, ``½ ln 2πk + …``),
the log of the ``j``-th term of ``P(D_n⁺ ≥ x) = x Σ_j C(n,j) (1−x−j/n)^{n−j} (x+j/n)^{j−1}`` is
``(n−j)·ln(1 − nx/(n−j)) + j·ln(1 + nx/j) − ln(x + j/n) + S(n) − S(j) − S(n−j)``, whose
largest parts are of size ``n·x``, not ``n``.
"""

from __future__ import annotations

import functools
import math
from typing import TypeVar

import numpy as np

FloatOrArray = TypeVar("FloatOrArray", float, np.ndarray)

# Below this size the exact algorithms (Durbin's matrix, Pomeranz's recursion) are scipy's.
SMALL_N = 140
# Above this size the one-sided tail comes from its asymptotic form, as scipy's does.
LARGE_N = 1_000_000
# exp(x) underflows a double below this.
_MIN_LOG = -708.0
# Stirling's remainder is evaluated from its series from here on, exactly below.
_STIRLING_FROM = 10


def sf(x: float, n: int) -> float:
    """``P(D_n ≥ x)``: scipy's ``kstwo.sf(x, n)``.

    >>> round(sf(0.05, 1000), 6), sf(0.5, 1000) < 1e-200, sf(0.0, 1000)
    (0.013012, True, 1.0)
    """
    n = int(n)
    if n <= SMALL_N:
        return float(_scipy_kstwo().sf(x, n))
    if math.isnan(x):
        return math.nan
    if x >= 1.0:
        return 0.0
    if x <= 0.0:
        return 1.0
    t = n * x
    if t <= 1.0:  # Ruben–Gambino: P(D_n ≤ x) = n!/nⁿ (2t − 1)ⁿ
        return 1.0 if t <= 0.5 else _clip(1.0 - math.exp(_log_factorial_over_power(n) + n * math.log(2 * t - 1)))
    if t >= n - 1:  # Ruben–Gambino
        return _clip(2 * (1.0 - x) ** n)
    nx2 = t * x
    if nx2 >= 370.0 and x < 0.5:
        return 0.0
    if x >= 0.5 or nx2 >= 2.2:  # Miller's approximation, exact from x = 1/2
        return _clip(2 * smirnov(n, x))
    if n <= 100_000 and n * x**1.5 < 1.4:
        return _clip(1.0 - _durbin_cdf(n, x))
    return _clip(1.0 - _pelz_good_cdf(n, x))


def isf(q: float, n: int) -> float:
    """The ``x`` with ``P(D_n ≥ x) = q``: scipy's ``kstwo.isf(q, n)``.

    >>> round(isf(0.01, 500), 4), round(isf(1e-6, 90_909), 5)
    (0.0724, 0.00893)
    """
    n = int(n)
    if n <= SMALL_N:
        return float(_scipy_kstwo().isf(q, n))
    if math.isnan(q):
        return math.nan
    if q >= 1.0:
        return 1.0 / n
    if q <= 0.0:
        return 1.0
    p = 1.0 - q
    if p > 0.0:
        # Lower edge: the CDF is n!/nⁿ (2nx − 1)ⁿ below x = 1/n.
        delta = math.exp((math.log(p) - math.lgamma(n + 1.0)) / n)
        if delta <= 1.0 / n:
            return (delta + 1.0 / n) / 2
    # Upper edge: the tail is 2(1 − x)ⁿ above x = 1 − 1/n.
    x = -math.expm1(math.log(q / 2.0) / n)
    if x >= 1 - 1.0 / n:
        return x
    return _solve(q, n)


def smirnov(n: int, x: float) -> float:
    """The one-sided tail ``P(D_n⁺ ≥ x)`` for ``n > 1`` and ``0 < x < 1`` (Birnbaum–Tingey).

    >>> round(smirnov(1000, 0.05), 8)
    0.00650604
    """
    if n > LARGE_N:
        # The tail's asymptotic form, e^{−(6nx+1)²/18n}, where the sum has too many terms.
        return math.exp(-((6.0 * n * x + 1) ** 2) / 18.0 / n)
    if -2.0 * n * x * x < _MIN_LOG:
        return 0.0
    nx = n * x
    last = math.floor(n - nx)
    if last == n - nx:  # 1 − x − j/n = 0: that term is 0
        last -= 1
    j = np.arange(1, last + 1, dtype=np.float64)
    rest = n - j
    logs = (
        rest * np.log1p(-nx / rest)
        + j * np.log1p(nx / j)
        - np.log(x + j / n)
        + (_stirling_remainder(float(n)) - _stirling_remainders(j) - _stirling_remainders(rest))
    )
    first = n * math.log1p(-x) - math.log(x)  # j = 0: (1 − x)ⁿ / x
    top = max(first, float(logs.max())) if logs.size else first
    total = math.exp(first - top) + float(np.exp(logs - top).sum())
    return min(math.exp(top + math.log(x) + math.log(total)), 1.0)


def _solve(q: float, n: int) -> float:
    """Root of ``ln sf(x) = ln q`` between ``1/n`` and ``1 − 1/n``: secant steps on the log
    tail (close to a parabola in ``x``) from Kolmogorov's asymptotic guess, inside a bracket
    that every evaluation narrows, bisecting where a step would leave it."""
    target = math.log(q)
    low, high = 1.0 / n, 1.0 - 1.0 / n
    x0 = min(max(math.sqrt(-math.log(q / 2.0) / (2.0 * n)), low), high)
    x1 = min(x0 * (1 + 1e-3), high)
    g0 = _log_sf(x0, n) - target
    for _ in range(200):
        if g0 > 0:
            low = x0
        elif g0 < 0:
            high = x0
        else:
            return x0
        g1 = _log_sf(x1, n) - target
        if g1 > 0:
            low = max(low, x1)
        elif g1 < 0:
            high = min(high, x1)
        else:
            return x1
        x2 = x1 - g1 * (x1 - x0) / (g1 - g0) if math.isfinite(g0 - g1) and g1 != g0 else math.nan
        if not low < x2 < high:
            x2 = (low + high) / 2
        if abs(x2 - x1) <= 4e-16 * x1 or high - low <= 4e-16 * high:
            return x2
        x0, g0, x1 = x1, g1, x2
    return x1


def _log_sf(x: float, n: int) -> float:
    value = sf(x, n)
    return math.log(value) if value > 0 else -math.inf


def _pelz_good_cdf(n: int, x: float) -> float:
    """``P(D_n ≤ x)`` from Pelz and Good's series ``K0(z) + K1(z)/√n + K2(z)/n + K3(z)/n^1.5``
    in ``z = x√n``, each ``K`` in its theta-function form for small ``z``."""
    z = math.sqrt(n) * x
    z2 = z * z
    log_q = -(math.pi**2) / 8 / z2
    if log_q < _MIN_LOG:
        return 0.0
    pi2, pi4, pi6 = math.pi**2, math.pi**4, math.pi**6
    terms = math.ceil(16 * z / math.pi)
    odd = 2.0 * np.arange(1, terms + 1) - 1  # m = 1, 3, 5, …
    m2 = odd * odd
    weight = np.exp(log_q * m2)  # q^{m²}
    k0 = weight.sum()
    k1 = ((pi2 * m2 / 4 - z2) * weight).sum()
    k2 = (((6 * z**6 + 2 * z**4) + (2 * z**4 - 5 * z2) * pi2 / 4 * m2 + pi4 * (1 - 2 * z2) / 16 * m2**2) * weight).sum()
    k3 = (
        (
            (-30 * z**6 - 90 * z**8)
            + pi2 * (135 * z**4 - 96 * z**6) / 4 * m2
            + pi4 * (212 * z**4 - 60 * z2) / 16 * m2**2
            + pi6 * (5 - 30 * z2) / 64 * m2**3
        )
        * weight
    ).sum()
    root = math.sqrt(2 * math.pi)
    k0 *= root / z
    k1 *= root / (6 * z**4)
    k2 *= root / (72 * z**7)
    k3 *= root / (6480 * z**10)
    # The series' other sums run over all integers k: q'^{k²} with q' = e^{−π²/2z²}.
    k = np.arange(1, terms + 1, dtype=np.float64)
    k2s = k * k
    weight = np.exp(-pi2 / 2 / z2 * k2s)
    k2 += -pi2 * root / (36 * z**3) * (k2s * weight).sum()
    k3 += pi2 * root / (216 * z**6) * ((3 * z2 - pi2 * k2s) * k2s * weight).sum()
    return float(k0 + k1 / math.sqrt(n) + k2 / n + k3 / n**1.5)


def _durbin_cdf(n: int, x: float) -> float:
    """``P(D_n ≤ x)`` as the central element of ``(n!/nⁿ)·Hⁿ``, Durbin's ``(2k−1)``-square
    matrix for ``x = (k − h)/n``, raised by squaring with the exponent kept apart
    (Marsaglia, Tsang and Wang, *Journal of Statistical Software* 8(18), 2003)."""
    nd = n * x
    k = math.ceil(nd)
    h = k - nd
    size = 2 * k - 1
    powers = np.arange(1, size + 1, dtype=np.float64)
    inverse_factorials = np.exp(-np.array([math.lgamma(i + 1.0) for i in range(size + 1)]))
    first_column = (1.0 - h**powers) * inverse_factorials[1:]
    first_column[-1] = (1.0 + max(2 * h - 1.0, 0.0) ** size - 2 * h**size) * inverse_factorials[size]
    matrix = np.zeros((size, size))
    for i in range(1, size):
        matrix[i - 1 :, i] = inverse_factorials[: size - i + 1]
    matrix[:, 0] = first_column
    matrix[-1, :] = first_column[::-1]
    result, result_exponent = np.eye(size), 0
    power, power_exponent = matrix, 0
    remaining = n
    while remaining:
        if remaining & 1:
            result = result @ power
            result_exponent += power_exponent
            result, result_exponent = _rescaled(result, result_exponent, k)
        remaining >>= 1
        if remaining:
            power = power @ power
            power_exponent *= 2
            power, power_exponent = _rescaled(power, power_exponent, k)
    centre = float(result[k - 1, k - 1])
    if centre <= 0.0:
        return 0.0
    log_value = math.log(centre) + result_exponent * math.log(2.0) + _log_factorial_over_power(n)
    return math.exp(log_value) if log_value > _MIN_LOG else 0.0


def _rescaled(matrix: np.ndarray, exponent: int, k: int) -> tuple[np.ndarray, int]:
    """The matrix scaled by a power of two so that its central element stays near 1."""
    centre = abs(float(matrix[k - 1, k - 1]))
    if centre == 0.0 or 2.0**-128 < centre < 2.0**128:
        return matrix, exponent
    shift = math.frexp(centre)[1]
    return np.ldexp(matrix, -shift), exponent + shift


def _log_factorial_over_power(n: int) -> float:
    """``ln(n!/nⁿ) = ½ ln 2πn − n + S``, without the ``n ln n`` that would cancel."""
    return 0.5 * math.log(2 * math.pi * n) - n + _stirling_series(float(n))


def _stirling_remainder(k: float) -> float:
    """``S(k) = ln k! − k ln k + k``, with ``S(0) = 0``."""
    if k < _STIRLING_FROM:
        return math.lgamma(k + 1.0) - (k * math.log(k) if k > 0 else 0.0) + k
    return 0.5 * math.log(2 * math.pi * k) + _stirling_series(k)


def _stirling_remainders(k: np.ndarray) -> np.ndarray:
    """:func:`_stirling_remainder` over an array of counts ``≥ 1``."""
    small = k < _STIRLING_FROM
    safe = np.where(small, _STIRLING_FROM, k)
    out = 0.5 * np.log(2 * math.pi * safe) + _stirling_series(safe)
    if small.any():
        out[small] = [_stirling_remainder(float(v)) for v in k[small]]
    return out


def _stirling_series(k: FloatOrArray) -> FloatOrArray:
    """``ln k! − (k ln k − k + ½ ln 2πk)``: 1/12k − 1/360k³ + …, to 1e-17 from k = 10."""
    r = 1.0 / k
    r2 = r * r
    return r * (1 / 12 - r2 * (1 / 360 - r2 * (1 / 1260 - r2 * (1 / 1680 - r2 / 1188))))


def _clip(p: float) -> float:
    return min(max(float(p), 0.0), 1.0)


@functools.cache
def _scipy_kstwo():  # type: ignore[no-untyped-def]
    from scipy import stats  # only for n ≤ SMALL_N

    return stats.kstwo
