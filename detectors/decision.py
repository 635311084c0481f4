"""The drift decision rule.

A statistic *fires* when, for a window of at least ``min_samples`` present values,

1. its effect size passes the threshold (PSI ≥ 0.2, KS D ≥ 0.1, JS ≥ 0.1 by default), and
2. it lies beyond its null quantile at level ``alpha / len(methods)`` for the actual
   sample sizes ``n`` (reference) and ``m`` (window).

A column drifts when any of its methods fires; splitting ``alpha`` over the methods
(Bonferroni) keeps the column's false-alarm rate at most ``alpha``. The effect-size
gate stops huge windows from flagging trivia; the null quantile stops small windows
from flapping on noise.

Null quantiles, with ``h = 1/n + 1/m`` and ``k`` the number of occupied bins:

* PSI ≈ Σ (p−q)²/π under the null, so PSI ≈ h · χ²(k−1):   q_PSI = h · χ²_{1−a}(k−1)
* KS:  q_D = kstwo.isf(a, round(n·m/(n+m)))
* JS (base 2): JSD ≈ h · χ²(k−1) / (8 ln 2), so  q_JS = sqrt(h · χ²_{1−a}(k−1) / (8 ln 2))
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats

NUMERIC_METHODS = ("psi", "ks")
CATEGORICAL_METHODS = ("psi", "js")
KNOWN_METHODS = frozenset({"psi", "ks", "js"})


@dataclass(frozen=True)
class DriftRule:
    """Thresholds of the decision rule; configurable per model and column."""

    psi_threshold: float = 0.2
    ks_threshold: float = 0.1
    js_threshold: float = 0.1
    alpha: float = 0.01
    min_samples: int = 500
    numeric_methods: tuple[str, ...] = NUMERIC_METHODS
    categorical_methods: tuple[str, ...] = CATEGORICAL_METHODS

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must lie in (0, 1), got {self.alpha}")
        if self.min_samples < 0:
            raise ValueError(f"min_samples must be >= 0, got {self.min_samples}")
        for methods in (self.numeric_methods, self.categorical_methods):
            unknown = set(methods) - KNOWN_METHODS
            if unknown or not methods:
                raise ValueError(f"methods must be a non-empty subset of {sorted(KNOWN_METHODS)}")
        if "ks" in self.categorical_methods:
            raise ValueError("KS needs an ordered axis; it is not a categorical method")

    def threshold(self, method: str) -> float:
        return {"psi": self.psi_threshold, "ks": self.ks_threshold, "js": self.js_threshold}[method]


def psi_null_quantile(n: int, m: int, bins: int, alpha: float) -> float:
    """PSI that a same-distribution window exceeds with probability ``alpha``.

    >>> round(psi_null_quantile(1000, 1000, 10, 0.01), 6)  # 0.002 · χ²_0.99(9)
    0.043332
    """
    if n <= 0 or m <= 0 or bins < 2:
        return math.inf
    return (1 / n + 1 / m) * float(stats.chi2.ppf(1 - alpha, bins - 1))


def ks_null_quantile(n: int, m: int, alpha: float) -> float:
    """KS D that a same-distribution window exceeds with probability ``alpha``.

    >>> round(ks_null_quantile(1000, 1000, 0.01), 4)
    0.0724
    """
    if n <= 0 or m <= 0:
        return math.inf
    effective = max(int(round(n * m / (n + m))), 1)
    return float(stats.kstwo.isf(alpha, effective))


def js_null_quantile(n: int, m: int, bins: int, alpha: float) -> float:
    """Base-2 JS distance that a same-distribution window exceeds with probability ``alpha``.

    >>> round(js_null_quantile(1000, 1000, 2, 0.01), 6)
    0.048919
    """
    if n <= 0 or m <= 0 or bins < 2:
        return math.inf
    quantile = (1 / n + 1 / m) * float(stats.chi2.ppf(1 - alpha, bins - 1))
    return math.sqrt(quantile / (8 * math.log(2)))


def null_quantile(method: str, n: int, m: int, bins: int, alpha: float) -> float:
    if method == "psi":
        return psi_null_quantile(n, m, bins, alpha)
    if method == "ks":
        return ks_null_quantile(n, m, alpha)
    return js_null_quantile(n, m, bins, alpha)


def fired_methods(
    statistics: dict[str, float],
    methods: tuple[str, ...],
    n: int,
    m: int,
    bins: dict[str, int],
    rule: DriftRule,
) -> tuple[str, ...]:
    """The methods whose statistic passes both its threshold and its null quantile.

    ``statistics`` maps method → value; ``bins`` maps method → occupied bins (PSI, JS).

    >>> fired_methods({"psi": 0.3, "ks": 0.05}, ("psi", "ks"), 10_000, 1_000, {"psi": 10}, DriftRule())
    ('psi',)
    >>> fired_methods({"psi": 0.3, "ks": 0.5}, ("psi", "ks"), 10_000, 100, {"psi": 10}, DriftRule())
    ()
    """
    if m < rule.min_samples:
        return ()
    level = rule.alpha / len(methods)
    fired = []
    for method in methods:
        value = statistics.get(method, math.nan)
        if math.isnan(value) or value < rule.threshold(method):
            continue
        if value > null_quantile(method, n, m, bins.get(method, 0), level):
            fired.append(method)
    return tuple(fired)
