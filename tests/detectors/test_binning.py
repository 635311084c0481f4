import numpy as np
import pytest
from hypothesis import given

from detectors.binning import OTHER, CategoricalBins, NumericBins
from tests.detectors.strategies import finite_arrays


def test_default_bins_are_reference_quantiles_with_open_tails():
    values = np.arange(100_000, dtype=np.float64)
    bins = NumericBins.from_reference(values)
    assert bins.n_fine == 1002  # 1,000 quantile bins + two tails
    assert bins.n_coarse == 10
    counts = np.bincount(bins.fine_index(values), minlength=bins.n_fine)
    assert counts[0] == 0 and counts[-1] == 0  # the tails hold nothing of the reference
    assert counts[1:-1].max() <= 101  # ~100 per fine bin
    coarse = bins.coarse_counts(counts)
    assert coarse.tolist() == [10_000] * 10


def test_tails_catch_values_outside_the_reference():
    bins = NumericBins.from_reference(np.array([1.0, 2.0, 3.0]))
    index = bins.fine_index(np.array([0.5, 1.0, 3.0, 3.0000001]))
    assert index[0] == 0
    assert index[-1] == bins.n_fine - 1
    assert 0 < index[1] <= index[2] < bins.n_fine - 1


def test_constant_reference_still_separates_above_and_below():
    bins = NumericBins.from_reference(np.full(50, 7.0))
    assert bins.fine_index(np.array([6.0, 7.0, 8.0])).tolist() == [0, 1, 2]


@given(finite_arrays(min_size=1))
def test_coarse_bins_are_unions_of_fine_bins(values):
    bins = NumericBins.from_reference(values)
    assert np.all(np.diff(bins.edges) > 0)
    assert np.all(np.diff(bins.coarse_of_fine) >= 0)  # monotone: each coarse bin is contiguous
    assert bins.coarse_of_fine[0] == 0
    assert bins.n_coarse <= bins.psi_bins


def test_missing_reference_and_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="no finite"):
        NumericBins.from_reference(np.array([np.nan, np.inf]))
    with pytest.raises(ValueError, match="multiple"):
        NumericBins.from_reference(np.arange(10.0), fine_bins=1000, psi_bins=7)


def test_categorical_top_k_orders_by_count_then_name():
    values = np.array(["b", "a", "b", "c", "a", "d", None, OTHER], dtype=object)
    bins = CategoricalBins.from_reference(values, top_k=2)
    assert bins.categories == ("a", "b")
    assert bins.index_of(["a", "b", "c", OTHER]).tolist() == [0, 1, 2, 2]
