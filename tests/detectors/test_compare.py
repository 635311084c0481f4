import math

import numpy as np
import pytest

from detectors.binning import CategoricalBins, NumericBins
from detectors.compare import compare, compare_evidently, compare_numeric_exact
from detectors.summary import CategoricalSummary, NumericSummary


@pytest.fixture(scope="module")
def numeric():
    rng = np.random.default_rng(11)
    reference = rng.normal(size=20_000)
    bins = NumericBins.from_reference(reference)
    return reference, bins, NumericSummary.fold(bins, reference)


def test_identical_window_has_no_drift(numeric):
    reference, bins, ref = numeric
    result = compare(ref, ref)
    assert (result.psi, result.ks_statistic, result.drift) == (0.0, 0.0, False)


def test_shifted_window_drifts_on_psi_and_ks(numeric):
    reference, bins, ref = numeric
    window = np.random.default_rng(12).normal(1.0, 1.0, 5_000)
    result = compare(ref, NumericSummary.fold(bins, window))
    assert result.drift and set(result.fired) == {"psi", "ks"}
    exact = compare_numeric_exact(ref, NumericSummary.fold(bins, window), reference, window)
    assert abs(exact.ks_statistic - result.ks_statistic) <= result.ks_error_bound
    assert exact.psi == result.psi  # PSI comes from the same frozen bins either way


def test_missing_ratio_is_reported(numeric):
    _, bins, ref = numeric
    window = np.concatenate([np.random.default_rng(1).normal(size=900), [np.nan] * 50, [np.inf] * 50])
    result = compare(ref, NumericSummary.fold(bins, window))
    assert result.current_missing_ratio == 0.1
    assert result.current_count == 900


def test_categorical_compare():
    bins = CategoricalBins(("a", "b", "c"))
    ref = CategoricalSummary.from_counts(bins, ["a", "b", "c"], [5000, 3000, 2000])
    cur = CategoricalSummary.from_counts(bins, ["a", "b", "c", "zz"], [1000, 1000, 1000, 2000])
    result = compare(ref, cur)
    assert result.kind == "categorical" and result.drift
    assert result.ks_statistic is None and result.js_distance > 0.3
    assert result.chi2_pvalue < 1e-12
    as_json = result.as_dict()
    assert "ks_statistic" not in as_json and "js_distance" in as_json


def test_kinds_and_bins_must_match(numeric):
    _, bins, ref = numeric
    other = NumericSummary.empty(NumericBins.from_reference(np.arange(5.0)))
    with pytest.raises(ValueError):
        compare(ref, other)
    with pytest.raises(TypeError):
        compare(ref, CategoricalSummary.empty(CategoricalBins(("a",))))


def test_empty_window_gives_nan_and_no_drift(numeric):
    _, bins, ref = numeric
    result = compare(ref, NumericSummary.fold(bins, np.array([np.nan])))
    assert math.isnan(result.psi) and not result.drift
    assert result.as_dict()["psi"] is None  # JSON has no NaN


def test_evidently_mode_categorical_known_value():
    r = compare_evidently(np.array(["a", "a", "b", "b"]), np.array(["a", "b", "b", "b"]), "categorical", 0, 0)
    assert r.psi == pytest.approx(math.log(3) / 4, rel=1e-12)
