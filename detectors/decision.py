"""The drift decision rule.

A statistic *fires* when, for a window of at least ``min_samples`` present values,

1. its effect size passes the threshold (PSI ≥ 0.2, KS D ≥ 0.1, JS ≥ 0.1 by default; the
   gated statistics, their thresholds and null quantiles are rows of
   :data:`~detectors.drift_statistics.DRIFT_STATISTICS`), and
2. it lies beyond its null quantile at level ``a = alpha / len(methods)`` for the actual
   sample sizes ``n`` (reference) and ``m`` (window).

A column drifts when any of its methods fires; splitting ``alpha`` over the methods
(Bonferroni) keeps the column's false-alarm rate at most ``alpha``. The effect-size
gate stops huge windows from flagging trivia; the null quantile stops small windows
from flapping on noise.

That is the rule for one column on its own, at ``alpha``. A model tests all its features at
once, at a smaller level (:mod:`detectors.familywise`): each method therefore reports a
*gated p-value* (:func:`method_pvalue`), the smallest per-method level at which it fires,
and fires at level ``a`` exactly when that p-value is at most ``a``. At the one-column level
``a₁ = min(alpha, alpha_model) / len(methods)`` this is the quantile comparison above, bit
for bit; below ``a₁`` a method must also pass a deeper test:

* KS: ``kstwo.sf(D, round(n·m/(n+m))) ≤ a`` — the same distribution, read at ``a``.
* PSI and JS: the Chernoff bound of :mod:`detectors.tail_bound` at ``a`` — exact moment
  generating functions, no sampling; a bootstrap would need millions of draws per column to
  resolve 1e-5, and extrapolating a small one misses the far bumps rare categories make.

Null quantiles:

* KS: ``kstwo.isf(a, round(n·m/(n+m)))``.
* PSI and JS: the ``1 − a`` quantile of the statistic over pairs of multinomial samples
  of sizes ``n`` and ``m`` from the reference's bin shares (a parametric bootstrap,
  seeded, so the verdict is reproducible). The chi-square approximations
  (PSI ≈ h·χ²(k−1), JS² ≈ h·χ²(k−1)/(8 ln 2), h = 1/n + 1/m) hold only when every bin
  expects plenty of counts; with rare categories, epsilon-filled empty bins push PSI
  and JS far past them. The bootstrap runs only for a statistic that has already
  passed its effect-size threshold, so a quiet column costs nothing.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from detectors import kolmogorov
from detectors.drift_statistics import DECISION_METHODS, DECISIONS, Kind, methods_for
from detectors.elementwise import rel_entr
from detectors.psi import DEFAULT_EPSILON
from detectors.tail_bound import tail_bound

NUMERIC_METHODS = methods_for("numeric")
CATEGORICAL_METHODS = methods_for("categorical")
KNOWN_METHODS = frozenset(DECISION_METHODS)


@dataclass(frozen=True)
class DriftRule:
    """Thresholds of the decision rule; configurable per model and column.

    One ``<method>_threshold`` field per decision method of the table (checked below), so
    callers and the config name them as keywords; their defaults are the table's.
    """

    psi_threshold: float = DECISIONS["psi"].default_threshold
    ks_threshold: float = DECISIONS["ks"].default_threshold
    js_threshold: float = DECISIONS["js"].default_threshold
    alpha: float = 0.01
    min_samples: int = 500
    numeric_methods: tuple[str, ...] = NUMERIC_METHODS
    categorical_methods: tuple[str, ...] = CATEGORICAL_METHODS
    alpha_model: float = 0.01

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must lie in (0, 1), got {self.alpha}")
        if not 0 < self.alpha_model < 1:
            raise ValueError(f"alpha_model must lie in (0, 1), got {self.alpha_model}")
        if self.min_samples < 0:
            raise ValueError(f"min_samples must be >= 0, got {self.min_samples}")
        for methods in (self.numeric_methods, self.categorical_methods):
            unknown = set(methods) - KNOWN_METHODS
            if unknown or not methods:
                raise ValueError(f"methods must be a non-empty subset of {sorted(KNOWN_METHODS)}")
        kinds: tuple[tuple[Kind, tuple[str, ...]], ...] = (
            ("numeric", self.numeric_methods),
            ("categorical", self.categorical_methods),
        )
        for kind, methods in kinds:
            for method in methods:
                if not DECISION_METHODS[method].applies_to(kind):
                    raise ValueError(f"{_WHY_NOT.get(method, method)}; it is not a {kind} method")

    def threshold(self, method: str) -> float:
        return float(getattr(self, f"{method}_threshold"))

    @property
    def alpha_single(self) -> float:
        """The column's level when it is its model's only feature tested."""
        return min(self.alpha, self.alpha_model)


# Why a method does not apply to a kind, where there is more to say than that it does not.
_WHY_NOT = {"ks": "KS needs an ordered axis"}

_missing_fields = {f"{m}_threshold" for m in DECISION_METHODS} - set(DriftRule.__dataclass_fields__)
if _missing_fields:
    raise ImportError(f"detectors.decision: DriftRule lacks {sorted(_missing_fields)} for the table's decision methods")


def ks_null_quantile(n: int, m: int, alpha: float) -> float:
    """KS D that a same-distribution window exceeds with probability ``alpha``.

    >>> round(ks_null_quantile(1000, 1000, 0.01), 4)
    0.0724
    """
    if n <= 0 or m <= 0:
        return math.inf
    effective = max(int(round(n * m / (n + m))), 1)
    return kolmogorov.isf(alpha, effective)


def _fill_zero_shares(shares: np.ndarray, epsilon: float | None) -> np.ndarray:
    """Row-wise zero fill: ``epsilon``, or Evidently's rule when ``epsilon`` is None."""
    if epsilon is not None:
        fill = np.full((shares.shape[0], 1), epsilon)
    else:
        smallest = np.where(shares > 0, shares, np.inf).min(axis=1, keepdims=True)
        fill = np.where(smallest <= 1e-4, smallest / 1e6, 1e-4)
    return np.where(shares == 0, fill, shares)


def psi_rows(reference: np.ndarray, current: np.ndarray, epsilon: float | None = DEFAULT_EPSILON) -> np.ndarray:
    """Row-wise PSI of two count matrices; ``epsilon=None`` fills zeros as Evidently does."""
    p = _fill_zero_shares(reference / reference.sum(axis=1, keepdims=True), epsilon)
    q = _fill_zero_shares(current / current.sum(axis=1, keepdims=True), epsilon)
    return np.sum((p - q) * np.log(p / q), axis=1)


def js_rows(reference: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Row-wise base-2 Jensen–Shannon distance of two count matrices."""
    p = reference / reference.sum(axis=1, keepdims=True)
    q = current / current.sum(axis=1, keepdims=True)
    mix = (p + q) / 2
    divergence = (rel_entr(p, mix).sum(axis=1) + rel_entr(q, mix).sum(axis=1)) / 2
    return np.sqrt(np.maximum(divergence, 0.0) / math.log(2))


def bootstrap_draws(alpha: float) -> int:
    """Enough draws to put about 25 of them beyond the ``1 − alpha`` quantile."""
    return int(min(max(math.ceil(25 / alpha), 2_000), 50_000))


def window_size_grid(m: int) -> int:
    """The largest point ≤ ``m`` of a 5% geometric grid.

    Null quantiles shrink as the window grows, so using the quantile of a slightly
    smaller window is conservative, and it lets nearby window sizes share one bootstrap.

    >>> [window_size_grid(m) for m in (1, 20, 500, 1_000, 100_000)]
    [1, 20, 490, 972, 95386]
    """
    if m <= 20:
        return m
    return int(1.05 ** math.floor(math.log(m) / math.log(1.05) + 1e-12))


def bootstrap_null_quantile(
    method: str,
    reference_counts: np.ndarray,
    m: int,
    alpha: float,
    epsilon: float | None = DEFAULT_EPSILON,
    seed: int = 0,
) -> float:
    """The ``1 − alpha`` quantile of PSI or JS between a reference and an ``m``-row window
    of the same distribution.

    Both samples are drawn as multinomials from the reference's bin shares: ``n`` rows
    for the reference, ``window_size_grid(m)`` for the window. ``epsilon`` is PSI's zero
    fill (None: Evidently's rule), as for the statistic under test. With well-filled bins
    it agrees with the chi-square approximation:

    >>> q = bootstrap_null_quantile("psi", np.full(10, 1000), 1000, 0.01)
    >>> from scipy import stats
    >>> approx = (1 / 10_000 + 1 / 1_000) * stats.chi2.ppf(0.99, 9)
    >>> bool(abs(q / approx - 1) < 0.1)
    True
    """
    draws = _null_draws(method, reference_counts, m, alpha, epsilon, seed)
    return math.inf if draws is None else float(np.quantile(draws, 1 - alpha))


def bootstrap_tail_share(
    method: str,
    reference_counts: np.ndarray,
    m: int,
    alpha: float,
    value: float,
    epsilon: float | None = DEFAULT_EPSILON,
    seed: int = 0,
) -> float:
    """The level at which ``value`` meets the bootstrap's quantile: the inverse of
    :func:`bootstrap_null_quantile` over the same draws (the ones level ``alpha`` makes).

    ``value > bootstrap_null_quantile(…, a)`` holds for exactly the ``a`` above it (between
    draws, the quantile interpolates linearly, and so does this).

    >>> ref = np.full(10, 1000)
    >>> q = bootstrap_null_quantile("psi", ref, 1000, 0.01)
    >>> round(bootstrap_tail_share("psi", ref, 1000, 0.01, q), 6)
    0.01
    """
    draws = _null_draws(method, reference_counts, m, alpha, epsilon, seed)
    if draws is None:
        return 1.0
    last = draws.size - 1
    above = int(np.searchsorted(draws, value, side="left"))  # draws[above - 1] < value <= draws[above]
    if above == 0:
        return 1.0
    if above > last:
        return 0.0
    low, high = float(draws[above - 1]), float(draws[above])
    position = above - 1 + (value - low) / (high - low)
    return min(max(1.0 - position / last, 0.0), 1.0)


def _null_draws(
    method: str, reference_counts: np.ndarray, m: int, alpha: float, epsilon: float | None, seed: int
) -> np.ndarray | None:
    ref = np.ascontiguousarray(reference_counts, dtype=np.int64)
    if ref.sum() == 0 or m <= 0 or np.count_nonzero(ref) < 2:
        return None
    return _bootstrap_draws(method, ref.tobytes(), window_size_grid(m), bootstrap_draws(alpha), epsilon, seed)


@functools.lru_cache(maxsize=256)  # 40 KB an entry at the default level (5,000 draws), 400 KB at most
def _bootstrap_draws(method: str, reference: bytes, m: int, draws: int, epsilon: float | None, seed: int) -> np.ndarray:
    # Memoised: a profile's reference counts are fixed, and window sizes snap to a grid,
    # so a steady stream of evaluations reuses a handful of bootstraps. Sorted and frozen:
    # quantiles and their inverse read the same array.
    counts = np.frombuffer(reference, dtype=np.int64)
    occupied = counts[counts > 0]
    n = int(occupied.sum())
    shares = occupied / n
    rng = np.random.default_rng(seed)
    ref_draws = rng.multinomial(n, shares, size=draws).astype(np.float64)
    cur_draws = rng.multinomial(m, shares, size=draws).astype(np.float64)
    values = psi_rows(ref_draws, cur_draws, epsilon) if method == "psi" else js_rows(ref_draws, cur_draws)
    values.sort()
    values.flags.writeable = False
    return values


def method_pvalue(
    method: str,
    value: float,
    n: int,
    m: int,
    rule: DriftRule,
    methods: int,
    histograms: tuple[np.ndarray, np.ndarray] | None = None,
    epsilon: float | None = DEFAULT_EPSILON,
) -> float:
    """The gated p-value of one method: it fires at per-method level ``a`` iff this is ≤ ``a``.

    1 below ``min_samples`` or the effect-size threshold (it fires at no level). Otherwise,
    with ``a₁ = rule.alpha_single / methods`` (the one-column level): if the value is beyond
    its null quantile at ``a₁``, the deeper test's p-value capped at ``a₁``; if not, a number
    above ``a₁`` (the bootstrap's tail share at the value, or KS's p-value).

    >>> rule = DriftRule()
    >>> method_pvalue("ks", 0.05, 100_000, 5_000, rule, 2)  # under the 0.1 threshold
    1.0
    >>> p = method_pvalue("ks", 0.12, 100_000, 5_000, rule, 2)
    >>> bool(p == kolmogorov.sf(0.12, 4762) < 1e-59)
    True
    """
    if m < rule.min_samples or math.isnan(value) or value < rule.threshold(method):
        return 1.0
    single = rule.alpha_single / methods
    if DECISIONS[method].null_quantile == "kolmogorov":
        # Beyond kstwo's quantile at a₁ exactly when kstwo's tail at the value is below a₁:
        # one evaluation of the tail instead of a root search for the quantile.
        deeper = kolmogorov.sf(value, max(int(round(n * m / (n + m))), 1))
        beyond = deeper < single
    elif histograms is None:
        return 1.0
    else:
        beyond = value > bootstrap_null_quantile(method, histograms[0], m, single, epsilon)
        if beyond:
            bound = tail_bound(method, histograms[0], window_size_grid(m), epsilon)
            deeper = 1.0 if bound is None else bound.tail(value)
        else:
            deeper = bootstrap_tail_share(method, histograms[0], m, single, value, epsilon)
    if beyond:
        return min(deeper, single)
    return min(max(deeper, math.nextafter(single, 1.0)), 1.0)


def method_pvalues(
    statistics: dict[str, float],
    methods: tuple[str, ...],
    n: int,
    m: int,
    rule: DriftRule,
    histograms: tuple[np.ndarray, np.ndarray] | None = None,
    epsilon: float | None = DEFAULT_EPSILON,
) -> dict[str, float]:
    """Every method's gated p-value (:func:`method_pvalue`), in ``methods`` order."""
    return {
        method: method_pvalue(method, statistics.get(method, math.nan), n, m, rule, len(methods), histograms, epsilon)
        for method in methods
    }


def fired_at(pvalues: dict[str, float], level: float) -> tuple[str, ...]:
    """The methods that fire when their column is tested at ``level``, split over its methods.

    >>> fired_at({"psi": 1.0, "ks": 0.004}, 0.01), fired_at({"psi": 1.0, "ks": 0.004}, 0.001)
    (('ks',), ())
    """
    per_method = level / len(pvalues) if pvalues else level
    return tuple(method for method, p in pvalues.items() if p <= per_method)


def column_pvalue(pvalues: dict[str, float]) -> float:
    """The column's gated p-value: the smallest column level at which one of its methods fires.

    >>> column_pvalue({"psi": 1.0, "ks": 0.004})
    0.008
    """
    return min(1.0, *(len(pvalues) * p for p in pvalues.values()))


def fired_methods(
    statistics: dict[str, float],
    methods: tuple[str, ...],
    n: int,
    m: int,
    rule: DriftRule,
    histograms: tuple[np.ndarray, np.ndarray] | None = None,
    epsilon: float | None = DEFAULT_EPSILON,
    level: float | None = None,
) -> tuple[str, ...]:
    """The methods whose statistic passes both its threshold and its null quantile, the
    column tested at ``level`` (default: on its own, ``rule.alpha_single``).

    ``statistics`` maps method → value; ``histograms`` are the reference and current
    counts over the bins PSI and JS were computed on, ``epsilon`` PSI's zero fill.

    >>> ref, cur = np.full(10, 1000), np.array([300, 50, 50, 50, 50, 50, 50, 50, 50, 300])
    >>> fired_methods({"psi": 0.5, "ks": 0.05}, ("psi", "ks"), 10_000, 1_000, DriftRule(), (ref, cur))
    ('psi',)
    >>> fired_methods({"psi": 0.5, "ks": 0.5}, ("psi", "ks"), 10_000, 100, DriftRule(), (ref, cur[:1] // 10))
    ()
    """
    pvalues = method_pvalues(statistics, methods, n, m, rule, histograms, epsilon)
    return fired_at(pvalues, rule.alpha_single if level is None else level)
