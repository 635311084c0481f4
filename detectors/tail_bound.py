"""A Chernoff bound on the null tail of PSI and of the Jensen–Shannon divergence.

The family-wise rule (:mod:`detectors.familywise`) tests each of a model's features at
``alpha_model / N``: for 500 features, per-method levels near 1e-5. A bootstrap resolves
such a level only with millions of draws per column and window size, and extrapolating
its tail is unsafe: with rare categories the null distribution of PSI has bumps far out
(two rare categories empty at once) that a 50,000-draw sample never sees. This module
bounds the tail instead, with no sampling and no extrapolation.

Model. Both statistics are sums over bins, ``S = Σ_j f_j(c_j)``, of the window's count
``c_j`` in bin ``j`` against the reference share ``p_j``. Under the null hypothesis a window
of ``M`` rows is ``Multinomial(M, p)``. The two-sample test (reference of ``n`` rows, window
of ``m``) is mapped to this one-sample model at the effective size
``M = round(n·m / (n + m))``, as the KS quantile does: in the chi-square regime both have
the scale ``1/n + 1/m``, and with rare bins the smaller ``M`` empties bins more often than
a window of ``m`` rows does, which only raises the tail.

Bound. For every ``λ ≥ 0``, ``P(S ≥ v) ≤ E[e^{λS}] · e^{−λv}`` (Markov on ``e^{λS}``). The
moment generating function is exact: a multinomial is independent Poisson counts
conditioned on their total, so ``E[e^{λS}] = [w^M] Π_j Σ_c Pois(c; M p_j) e^{λ f_j(c)} w^c
/ Pois(M; M)`` — one polynomial per bin, multiplied and read at degree ``M``. Every count
``0 … M`` of every bin is in it, so rare bins emptying or piling up are counted exactly.
The bound is evaluated on a fixed grid of ``λ``; the quantile at level ``a`` is then
``min_λ (ln E[e^{λS}] − ln a) / λ``, and the tail at ``v`` is ``min_λ E[e^{λS}] e^{−λv}``:
the two are exact inverses of each other, on the same grid.

How loose: for a chi-square with 9 to 50 degrees of freedom the bound's 1e-6 quantile is
10–25% above the true one (5–12% on the JS distance, a square root). Window sizes above
:data:`MAX_ROWS` are bounded at :data:`MAX_ROWS` rows: the tail shrinks as the window grows,
so this is conservative, and at 5,000 rows the bound sits well below the default effect
thresholds for up to 51 bins.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from detectors.elementwise import log_factorials, next_fast_len, rel_entr
from detectors.psi import DEFAULT_EPSILON
from detectors.row_map import row_map

MAX_ROWS = 5_000
# λ/M on a geometric grid: PSI's optimal λ sits below M/2, the JS divergence's (in bits)
# below about 2.8·M in the chi-square regime; heavier tails want smaller λ.
_LAMBDA_OVER_M = np.geomspace(0.01, 20.0, 36)
# Below this share of its largest coefficient, the degree-M coefficient of the product is
# within reach of FFT rounding; that λ is dropped (fewer λ only loosens the bound).
_MIN_RELATIVE_COEFFICIENT = 1e-9
# Caps on a 5% geometric grid: a query's cap is the grid point at or above its value.
_CAP_STEP = math.log(1.05)


def effective_rows(n: int, m: int) -> int:
    """The one-sample size equivalent to a reference of ``n`` and a window of ``m`` rows.

    >>> effective_rows(100_000, 600), effective_rows(1_000, 1_000)
    (596, 500)
    """
    return max(int(round(n * m / (n + m))), 1)


def zero_fill(epsilon: float | None, m: int) -> float:
    """The smallest share PSI can give an empty window bin.

    ``epsilon`` itself, or for Evidently's rule (``None``: the smallest non-zero share / 1e6 when
    that is ≤ 1e-4, else 1e-4) its least value for a window of ``m`` rows — the bound holds
    for every row at once, and a smaller fill only makes an empty bin's term larger.

    >>> zero_fill(1e-4, 10), zero_fill(None, 500), zero_fill(None, 20_000) == 1e-6 / 20_000
    (0.0001, 0.0001, True)
    """
    if epsilon is not None:
        return float(epsilon)
    return 1e-4 if m < 10_000 else 1e-6 / m


def _terms(method: str, shares: np.ndarray, rows: int, fill: float) -> np.ndarray:
    """``f_j(c)`` for every bin ``j`` (rows) and count ``c = 0 … rows`` (columns)."""
    p = shares[:, None]
    q = np.arange(rows + 1, dtype=np.float64)[None, :] / rows
    if method == "psi":
        q = np.where(q == 0, fill, q)
        return (p - q) * np.log(p / q)
    if method == "js":  # the divergence in bits: the JS distance is its square root
        mix = (p + q) / 2
        return (rel_entr(p, mix) + rel_entr(q, mix)) / (2 * math.log(2))
    raise ValueError(f"no tail bound for {method!r}")


def cap_for(value: float) -> int:
    """Index ``k`` of the smallest cap ``1.05**k`` at or above ``value`` (on the divergence scale).

    >>> cap_for(1.0), cap_for(1.05), cap_for(0.2)
    (0, 1, -32)
    """
    return math.ceil(math.log(value) / _CAP_STEP - 1e-12)


def _log_mgf(method: str, shares: np.ndarray, rows: int, fill: float, cap: float) -> tuple[np.ndarray, np.ndarray]:
    """``λ`` on the grid and ``ln E[e^{λ S_cap}]`` for ``Multinomial(rows, shares)``, where
    ``S_cap = Σ_j min(f_j, cap)``; +inf marks a dropped λ.

    Each ``λ`` is its own row of every array below (its own scale, its own FFTs), so the grid
    can be split into parts mapped by the installed row map (:mod:`detectors.row_map`: the
    runtime's threads, as the FFTs and exponentials release the GIL) and comes back bit for bit
    as in one part."""
    lambdas = _LAMBDA_OVER_M * rows
    mapper, count = row_map()
    parts = np.array_split(lambdas, count)
    if len(parts) == 1:
        return lambdas, _log_mgf_rows(method, shares, rows, fill, cap, lambdas)
    return lambdas, np.concatenate(
        list(mapper(lambda part: _log_mgf_rows(method, shares, rows, fill, cap, part), parts))
    )


def _log_mgf_rows(
    method: str, shares: np.ndarray, rows: int, fill: float, cap: float, lambdas: np.ndarray
) -> np.ndarray:
    """:func:`_log_mgf` for the given ``λ`` only.

    Bins of equal share have equal polynomials, and a reference's quantile bins usually all
    hold the same count: each run of equal shares is raised to its power by squaring (a
    square needs one forward transform, not two), 9 transforms for ten equal deciles instead
    of 28 one bin after another."""
    counts = np.arange(rows + 1, dtype=np.float64)
    log_factorial = log_factorials(rows)
    terms = np.minimum(_terms(method, shares, rows, fill), cap)
    size = next_fast_len(2 * rows + 1)
    product: _Scaled | None = None
    for share, (first, power) in _equal_shares(shares).items():
        mean = rows * share
        log_poisson = counts * math.log(mean) - mean - log_factorial
        log_weights = log_poisson[None, :] + lambdas[:, None] * terms[first][None, :]
        top = log_weights.max(axis=1, keepdims=True)
        factor = _Scaled(np.exp(log_weights - top), top[:, 0])
        raised = _power(factor, power, rows, size)
        product = raised if product is None else _times(product, raised, rows, size)
    assert product is not None
    at_rows = product.coefficients[:, rows]
    usable = at_rows > _MIN_RELATIVE_COEFFICIENT
    log_total = rows * math.log(rows) - rows - float(log_factorial[rows])  # ln Pois(M; M)
    with np.errstate(divide="ignore"):
        return np.where(usable, np.log(np.where(usable, at_rows, 1.0)) + product.log_scale - log_total, np.inf)


@dataclass(frozen=True)
class _Scaled:
    """Polynomials in ``w``, one per λ row: ``coefficients × e^{log_scale}``, peak 1."""

    coefficients: np.ndarray  # (λ rows × degrees 0 … rows), ≥ 0
    log_scale: np.ndarray  # one per λ row


def _equal_shares(shares: np.ndarray) -> dict[float, tuple[int, int]]:
    """Each distinct share: the first bin holding it and how many do, in order of first bin."""
    runs: dict[float, tuple[int, int]] = {}
    for j, share in enumerate(shares.tolist()):
        first, count = runs.get(share, (j, 0))
        runs[share] = (first, count + 1)
    return runs


def _power(base: _Scaled, power: int, rows: int, size: int) -> _Scaled:
    """``base`` to ``power ≥ 1``, by squaring."""
    result: _Scaled | None = None
    square = base
    while True:
        if power & 1:
            result = square if result is None else _times(result, square, rows, size)
        power >>= 1
        if not power:
            assert result is not None
            return result
        square = _times(square, square, rows, size)


def _times(a: _Scaled, b: _Scaled, rows: int, size: int) -> _Scaled:
    """The product, its degrees up to ``rows`` (higher ones cannot reach degree ``rows``: every
    coefficient is ≥ 0), rescaled to peak 1."""
    spectrum = np.fft.rfft(a.coefficients, size, axis=1)
    spectrum = spectrum * spectrum if a is b else spectrum * np.fft.rfft(b.coefficients, size, axis=1)
    product = np.maximum(np.fft.irfft(spectrum, size, axis=1)[:, : rows + 1], 0.0)
    peak = product.max(axis=1, keepdims=True)
    product /= peak
    return _Scaled(product, a.log_scale + b.log_scale + np.log(peak[:, 0]))


@dataclass(frozen=True)
class TailBound:
    """An upper bound on ``P(S ≥ v)`` for one column's null at one window size.

    ``S`` is PSI, or the JS divergence in bits (values passed in are JS *distances*).
    """

    method: str
    reference: bytes  # the reference's counts over its occupied bins, int64
    rows: int  # the one-sample window size of the bound
    fill: float  # PSI's least share for an empty window bin

    def tail(self, value: float) -> float:
        """``min_λ E[e^{λ S_u}] e^{−λ v}`` with ``u`` the smallest cap ≥ ``v``; at most 1."""
        if math.isnan(value):
            return 1.0
        scaled = value * value if self.method == "js" else value
        if scaled <= 0:
            return 1.0
        lambdas, log_mgf = _capped(self.method, self.reference, self.rows, self.fill, cap_for(scaled))
        if not np.isfinite(log_mgf).any():
            return 1.0
        return math.exp(min(float(np.min(log_mgf - lambdas * scaled)), 0.0))


def tail_bound(
    method: str, reference_counts: np.ndarray, window_rows: int, epsilon: float | None = DEFAULT_EPSILON
) -> TailBound | None:
    """The bound for ``method`` (``psi`` or ``js``) between ``reference_counts`` and a window
    of ``window_rows`` rows: the one-sample bound at :func:`effective_rows`, capped at
    :data:`MAX_ROWS`; None where the reference has fewer than two occupied bins (no null).

    ``epsilon`` is PSI's zero fill (None: Evidently's rule). Reference bins that are empty
    are left out: a window drawn from the reference's shares never lands in them.

    >>> bound = tail_bound("psi", np.full(10, 1_000_000), 1_000)
    >>> from scipy import stats
    >>> exact = stats.chi2.isf([1e-4, 1e-6], 9) / 999  # PSI ≈ χ²(k−1)/M in this regime
    >>> [f"{bound.tail(v):.1e}" for v in exact]  # bounds on tails of 1e-4 and 1e-6
    ['2.2e-03', '3.7e-05']
    >>> [f"{bound.tail(1.3 * v):.1e}" for v in exact]  # 30% further out, it is below them
    ['5.3e-05', '1.9e-07']
    """
    ref = np.ascontiguousarray(reference_counts, dtype=np.int64)
    occupied = ref[ref > 0]
    if window_rows <= 0 or occupied.size < 2:
        return None
    rows = min(effective_rows(int(occupied.sum()), int(window_rows)), MAX_ROWS)
    return TailBound(method, occupied.tobytes(), rows, zero_fill(epsilon, int(window_rows)))


@functools.lru_cache(maxsize=2048)
def _capped(method: str, reference: bytes, rows: int, fill: float, cap: int) -> tuple[np.ndarray, np.ndarray]:
    # Memoised: a profile's counts are fixed, window sizes snap to a grid and caps to 5% steps,
    # so a steady stream of evaluations reuses a handful of products.
    counts = np.frombuffer(reference, dtype=np.int64)
    shares = counts / counts.sum()
    return _log_mgf(method, shares, rows, fill, math.exp(cap * _CAP_STEP))
