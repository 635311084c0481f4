"""The Chernoff bound on the null tails of PSI and the JS divergence (detectors/tail_bound.py).

* Exact: its moment generating function equals brute-force enumeration of every multinomial
  outcome of a small window.
* A bound: against the two-sample bootstrap the decision rule uses, no more than the allowed
  share of null windows lies past the level-``a`` point of the bound — with rare categories,
  where the chi-square approximation and tail extrapolation fail, too.
* Not loose: in the chi-square regime its quantiles stay within a quarter (PSI) or an eighth
  (JS distance) of the exact ones.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import special, stats

from detectors.decision import js_rows, psi_rows
from detectors.tail_bound import MAX_ROWS, _log_mgf, _terms, effective_rows, tail_bound

# 15 skewed categories with rare ones (0.1%–1%): empty window bins are common at a few hundred rows.
SKEWED = np.array([0.30, 0.21, 0.14, 0.10, 0.07, 0.05, 0.04, 0.03, 0.02, 0.015, 0.01, 0.008, 0.004, 0.002, 0.001])
ZIPF = (lambda z: np.append(z[:50], z[50:].sum()) / z.sum())(1 / np.arange(1, 81) ** 1.1)  # top 50 + other


def quantile_of(bound, alpha: float, high: float) -> float:
    """The smallest value whose bounded tail is at most ``alpha`` (bisection)."""
    low = 0.0
    for _ in range(50):
        middle = (low + high) / 2
        low, high = (low, middle) if bound.tail(middle) <= alpha else (middle, high)
    return high


@pytest.mark.parametrize("method", ["psi", "js"])
@pytest.mark.parametrize("cap", [0.05, 10.0])
def test_moment_generating_function_is_exact(method, cap):
    shares, rows, fill = np.array([0.5, 0.3, 0.2]), 8, 1e-4
    lambdas, log_mgf = _log_mgf(method, shares, rows, fill, cap)
    terms = np.minimum(_terms(method, shares, rows, fill), cap)
    exponents = []  # ln P(outcome) + λ·S(outcome), one row per outcome
    for counts in itertools.product(range(rows + 1), repeat=2):
        last = rows - sum(counts)
        if last < 0:
            continue
        c = (*counts, last)
        exponents.append(stats.multinomial.logpmf(c, rows, shares) + lambdas * sum(terms[j, c[j]] for j in range(3)))
    expected = special.logsumexp(np.array(exponents), axis=0)
    usable = np.isfinite(log_mgf)
    assert usable.sum() > 20
    np.testing.assert_allclose(log_mgf[usable], expected[usable], rtol=1e-9, atol=1e-9)


def _two_sample_draws(method: str, shares: np.ndarray, n: int, m: int, draws: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    reference = rng.multinomial(n, shares, size=draws).astype(float)
    current = rng.multinomial(m, shares, size=draws).astype(float)
    return psi_rows(reference, current) if method == "psi" else js_rows(reference, current)


@pytest.mark.parametrize(
    "name,shares,n,m",
    [
        ("skewed 15 categories", SKEWED, 100_000, 600),
        ("skewed 15 categories, small reference", SKEWED, 2_000, 600),
        ("zipf, top 50 + other", ZIPF, 100_000, 500),
        ("two categories", np.array([0.7, 0.3]), 100_000, 500),
        ("deciles", np.full(10, 0.1), 100_000, 500),
    ],
)
@pytest.mark.parametrize("method", ["psi", "js"])
def test_bound_holds_against_the_two_sample_bootstrap(name, shares, n, m, method):
    # 100,000 null windows: 100 expected past the 1e-3 point and 10 past 1e-4 of the true
    # distribution; a bound leaves fewer past its own points (Poisson 99.9% upper limits: 133, 22).
    reference = np.round(shares * n).astype(np.int64)
    values = _two_sample_draws(method, shares, int(reference.sum()), m, 100_000, seed=11)
    bound = tail_bound(method, reference, m)
    high = 5.0 if method == "psi" else 1.0
    for alpha, limit in ((1e-3, 133), (1e-4, 22)):
        past = int((values > quantile_of(bound, alpha, high)).sum())
        assert past <= limit, f"{name} {method}: {past} of 100,000 null windows past the {alpha:g} bound"


@pytest.mark.parametrize("alpha", [1e-4, 1e-6])
def test_bound_is_close_in_the_chi_square_regime(alpha):
    reference = np.full(10, 1_000_000)
    rows = effective_rows(10_000_000, 2_000)
    psi_exact = stats.chi2.isf(alpha, 9) / rows
    psi_bound = quantile_of(tail_bound("psi", reference, 2_000), alpha, 1.0)
    assert psi_exact < psi_bound < 1.25 * psi_exact
    js_exact = math.sqrt(stats.chi2.isf(alpha, 9) / (8 * math.log(2) * rows))
    js_bound = quantile_of(tail_bound("js", reference, 2_000), alpha, 1.0)
    assert js_exact < js_bound < 1.125 * js_exact


def test_large_windows_are_bounded_at_the_cap_conservatively():
    reference = np.round(ZIPF * 100_000).astype(np.int64)
    capped = tail_bound("js", reference, 10**6)
    assert capped is not None and capped.rows == MAX_ROWS
    at_cap = tail_bound("js", reference, 5_263)  # effective size 5,000 against 100,000
    assert at_cap is not None and capped.tail(0.08) == at_cap.tail(0.08)
    # Far below the default JS threshold of 0.1 all the same.
    assert capped.tail(0.1) < 1e-12


def test_a_reference_with_one_occupied_bin_has_no_null():
    assert tail_bound("psi", np.array([0, 500, 0]), 100) is None
    assert tail_bound("js", np.array([10, 20]), 0) is None
