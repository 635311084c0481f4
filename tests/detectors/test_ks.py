import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from detectors.binning import NumericBins
from detectors.ks import ks_binned, ks_exact, ks_pvalue_asymptotic
from detectors.summary import NumericSummary
from tests.detectors.strategies import finite_arrays


def test_known_values():
    r = ks_exact(np.array([1.0, 2.0, 3.0, 4.0]), np.array([3.0, 4.0, 5.0, 6.0]))
    assert r.statistic == 0.5
    assert r.pvalue == pytest.approx(0.7714285714285716, rel=1e-12)  # exact method for small samples
    assert ks_binned(np.array([0, 50, 50, 0]), np.array([0, 0, 50, 50])).statistic == 0.5


@given(
    finite_arrays(min_size=1, max_size=400), finite_arrays(min_size=1, max_size=400), st.sampled_from([10, 50, 1000])
)
def test_binned_d_is_within_its_bound_of_scipy(reference, current, fine_bins):
    bins = NumericBins.from_reference(reference, fine_bins=fine_bins, psi_bins=fine_bins)
    ref = NumericSummary.fold(bins, reference)
    cur = NumericSummary.fold(bins, current)
    binned = ks_binned(ref.counts, cur.counts)
    exact = stats.ks_2samp(reference, current).statistic
    assert binned.statistic <= exact + 1e-12
    assert exact <= binned.statistic + binned.error_bound + 1e-12
    # The bound never exceeds the largest reference mass in one fine bin.
    assert binned.error_bound <= ref.counts.max() / ref.count + 1e-15


def test_default_bound_is_one_thousandth_for_continuous_data():
    rng = np.random.default_rng(3)
    reference, current = rng.normal(size=200_000), rng.normal(0.1, 1.0, 50_000)
    bins = NumericBins.from_reference(reference)
    binned = ks_binned(NumericSummary.fold(bins, reference).counts, NumericSummary.fold(bins, current).counts)
    assert binned.error_bound <= 0.001 + 1e-9
    assert abs(binned.statistic - stats.ks_2samp(reference, current).statistic) <= binned.error_bound


def test_pvalue_is_scipys_asymptotic_formula():
    n, m, d = 5000, 1200, 0.05
    expected = stats.kstwo.sf(d, round(n * m / (n + m)))
    assert ks_pvalue_asymptotic(d, n, m) == expected
    reference = np.linspace(0, 1, 3000)
    current = np.linspace(0.05, 1.05, 4000)
    exact = stats.ks_2samp(reference, current, method="asymp")
    assert ks_pvalue_asymptotic(exact.statistic, 3000, 4000) == pytest.approx(exact.pvalue, rel=1e-12)


def test_empty_sides_give_nan():
    assert np.isnan(ks_binned(np.array([0, 0]), np.array([1, 2])).statistic)
