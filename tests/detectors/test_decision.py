import numpy as np
import pytest
from scipy import stats

from detectors.decision import (
    DriftRule,
    fired_methods,
    js_null_quantile,
    ks_null_quantile,
    psi_null_quantile,
)


def test_null_quantiles_known_values():
    assert psi_null_quantile(1000, 1000, 10, 0.01) == pytest.approx(0.002 * stats.chi2.ppf(0.99, 9))
    assert ks_null_quantile(1000, 1000, 0.01) == pytest.approx(stats.kstwo.isf(0.01, 500))
    # JS ≈ sqrt(h·χ²/(8 ln 2)); for 2 bins and h = 0.002: sqrt(0.002·6.635/5.545)
    assert js_null_quantile(1000, 1000, 2, 0.01) == pytest.approx(np.sqrt(0.002 * stats.chi2.ppf(0.99, 1) / (8 * np.log(2))))


def test_null_quantiles_shrink_with_sample_size():
    sizes = [200, 1_000, 10_000, 100_000]
    for quantile in (
        [psi_null_quantile(100_000, m, 10, 0.005) for m in sizes],
        [ks_null_quantile(100_000, m, 0.005) for m in sizes],
        [js_null_quantile(100_000, m, 10, 0.005) for m in sizes],
    ):
        assert all(a > b for a, b in zip(quantile, quantile[1:]))


def test_js_null_quantile_matches_simulation():
    # Same-distribution samples: the 99th percentile of JS should sit near the formula.
    rng = np.random.default_rng(5)
    p = np.array([0.4, 0.3, 0.2, 0.1])
    n, m = 20_000, 2_000
    ref = rng.multinomial(n, p)
    values = []
    for _ in range(2000):
        cur = rng.multinomial(m, p)
        a, b = ref / n, cur / m
        mix = (a + b) / 2
        kl = lambda x: np.sum(np.where(x > 0, x * np.log2(np.where(x > 0, x, 1) / mix), 0))  # noqa: E731
        values.append(np.sqrt((kl(a) + kl(b)) / 2))
    simulated = np.quantile(values, 0.99)
    assert simulated == pytest.approx(js_null_quantile(n, m, 4, 0.01), rel=0.15)


def test_all_three_gates():
    rule = DriftRule()
    stats_ = {"psi": 0.5, "ks": 0.3}
    assert fired_methods(stats_, ("psi", "ks"), 100_000, 5_000, {"psi": 10}, rule) == ("psi", "ks")
    # Below min_samples nothing fires, however large the effect.
    assert fired_methods(stats_, ("psi", "ks"), 100_000, 499, {"psi": 10}, rule) == ()
    # Past the null quantile but under the effect threshold: trivia in a huge window.
    assert fired_methods({"psi": 0.05, "ks": 0.05}, ("psi", "ks"), 10**6, 10**6, {"psi": 10}, rule) == ()
    # Over the threshold but within noise for a tiny window (min_samples lifted to show it).
    small = DriftRule(min_samples=0)
    assert fired_methods({"psi": 0.21, "ks": 0.11}, ("psi", "ks"), 30, 30, {"psi": 10}, small) == ()


def test_rule_validates_its_fields():
    with pytest.raises(ValueError, match="alpha"):
        DriftRule(alpha=0)
    with pytest.raises(ValueError, match="methods"):
        DriftRule(numeric_methods=("wasserstein",))
    with pytest.raises(ValueError, match="categorical"):
        DriftRule(categorical_methods=("ks",))
    assert DriftRule(psi_threshold=0.1).threshold("psi") == 0.1
