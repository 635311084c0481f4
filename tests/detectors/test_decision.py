import math

import numpy as np
import pytest
from scipy import stats
from scipy.spatial import distance

from detectors.decision import (
    DriftRule,
    bootstrap_null_quantile,
    fired_methods,
    js_rows,
    ks_null_quantile,
    psi_rows,
)
from detectors.psi import psi, psi_from_evidently_counts


def test_ks_null_quantile_known_value():
    assert ks_null_quantile(1000, 1000, 0.01) == pytest.approx(stats.kstwo.isf(0.01, 500))


def test_row_statistics_match_the_scalar_ones():
    rng = np.random.default_rng(0)
    ref = rng.integers(0, 50, size=(20, 7)).astype(float)
    cur = rng.integers(0, 50, size=(20, 7)).astype(float)
    ref[:, 2] = 0  # empty bins exercise the zero fill
    for a, b, p, j, e in zip(ref, cur, psi_rows(ref, cur), js_rows(ref, cur), psi_rows(ref, cur, None)):
        assert p == pytest.approx(psi(a, b), rel=1e-12)
        assert e == pytest.approx(psi_from_evidently_counts(a, b), rel=1e-12)
        assert j == pytest.approx(distance.jensenshannon(a / a.sum(), b / b.sum(), base=2), abs=1e-12)


@pytest.mark.parametrize("n,m", [(100_000, 1_000), (10_000, 10_000)])
def test_bootstrap_agrees_with_chi_square_when_bins_are_full(n, m):
    shares = np.full(10, 0.1)
    ref = (shares * n).astype(int)
    h, chi = 1 / n + 1 / m, stats.chi2.ppf(0.995, 9)
    assert bootstrap_null_quantile("psi", ref, m, 0.005) == pytest.approx(h * chi, rel=0.1)
    assert bootstrap_null_quantile("js", ref, m, 0.005) == pytest.approx(
        math.sqrt(h * chi / (8 * math.log(2))), rel=0.1
    )


def test_bootstrap_sees_what_chi_square_misses_with_rare_bins():
    # 40 rare categories, ~2 expected per window bin: epsilon-filled empty bins inflate
    # PSI well past h·χ², and JS past its approximation too.
    ref = np.array([50_000] + [1_250] * 40)
    m = 180
    chi_square = (1 / ref.sum() + 1 / m) * stats.chi2.ppf(0.995, 40)
    assert bootstrap_null_quantile("psi", ref, m, 0.005) > 1.5 * chi_square
    assert bootstrap_null_quantile("js", ref, m, 0.005) > 1.05 * math.sqrt(chi_square / (8 * math.log(2)))


def test_bootstrap_is_reproducible_and_shrinks_with_window_size():
    ref = np.array([5000, 3000, 2000])
    quantiles = [bootstrap_null_quantile("js", ref, m, 0.005) for m in (500, 5_000, 50_000)]
    assert quantiles == [bootstrap_null_quantile("js", ref, m, 0.005, seed=0) for m in (500, 5_000, 50_000)]
    assert quantiles[0] > quantiles[1] > quantiles[2]
    # Window sizes on one grid step share the (conservative) quantile of the step.
    assert bootstrap_null_quantile("js", ref, 1_000, 0.005) == bootstrap_null_quantile("js", ref, 1_010, 0.005)


def test_all_three_gates():
    rule = DriftRule()
    ref = np.full(10, 10_000)
    moved = np.array([1500, 800, 300, 300, 300, 300, 300, 300, 400, 700])  # 5,000 rows, PSI ≈ 0.5
    stats_ = {"psi": psi(ref, moved), "ks": 0.3}
    assert stats_["psi"] > 0.2
    assert fired_methods(stats_, ("psi", "ks"), 100_000, 5_000, rule, (ref, moved)) == ("psi", "ks")
    # Below min_samples nothing fires, however large the effect.
    assert fired_methods(stats_, ("psi", "ks"), 100_000, 499, rule, (ref, moved // 10)) == ()
    # Past the null quantile but under the effect threshold: trivia in a huge window.
    assert fired_methods({"psi": 0.05, "ks": 0.05}, ("psi", "ks"), 10**6, 10**6, rule, (ref, ref)) == ()
    # Over the thresholds but within the noise of a tiny window (min_samples lifted to show it).
    small = DriftRule(min_samples=0)
    tiny = np.array([5, 2, 3, 3, 2, 4, 3, 2, 3, 3])
    assert fired_methods({"psi": 0.21, "ks": 0.11}, ("psi", "ks"), 30, 30, small, (tiny, tiny[::-1])) == ()


def test_rule_validates_its_fields():
    with pytest.raises(ValueError, match="alpha"):
        DriftRule(alpha=0)
    with pytest.raises(ValueError, match="methods"):
        DriftRule(numeric_methods=("wasserstein",))
    with pytest.raises(ValueError, match="categorical"):
        DriftRule(categorical_methods=("ks",))
    assert DriftRule(psi_threshold=0.1).threshold("psi") == 0.1
