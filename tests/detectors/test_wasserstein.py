import numpy as np
import pytest
from scipy import stats

from detectors.binning import NumericBins
from detectors.summary import NumericSummary
from detectors.wasserstein import wasserstein_normed_binned, wasserstein_normed_exact


def test_known_value():
    assert wasserstein_normed_exact(np.array([0.0, 2.0]), np.array([1.0, 3.0])) == 1.0


def test_constant_reference_uses_the_std_floor():
    assert wasserstein_normed_exact(np.array([1.0, 1.0]), np.array([1.5, 1.5])) == pytest.approx(500.0)


@pytest.mark.parametrize("shift", [0.0, 0.1, 0.5, 2.0, 5.0])
def test_binned_matches_exact_on_continuous_data(shift):
    rng = np.random.default_rng(7)
    reference, current = rng.normal(size=50_000), rng.normal(shift, 1.3, 20_000)
    bins = NumericBins.from_reference(reference)
    binned = wasserstein_normed_binned(NumericSummary.fold(bins, reference), NumericSummary.fold(bins, current))
    exact = stats.wasserstein_distance(reference, current) / reference.std()
    assert binned == pytest.approx(exact, rel=0.01, abs=0.01)
