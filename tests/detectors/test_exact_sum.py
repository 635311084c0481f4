from fractions import Fraction

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from detectors.exact_sum import ExactSum
from tests.detectors.strategies import finite_arrays


def exact(values: np.ndarray) -> float:
    return float(sum((Fraction(float(v)) for v in values), Fraction(0)))


@given(finite_arrays(min_size=0), st.data())
def test_sum_is_correctly_rounded_and_splits_merge_exactly(values, data):
    cut = data.draw(st.integers(0, values.size))
    whole = ExactSum.of(values)
    assert float(whole) == exact(values)
    assert ExactSum.of(values[:cut]) + ExactSum.of(values[cut:]) == whole


def test_known_values():
    assert float(ExactSum.of(np.array([0.1, 0.2, 0.3]))) == 0.6  # naive left-to-right gives 0.6000000000000001
    assert float(ExactSum.of(np.array([1e308, 1e308, -1e308]))) == 1e308  # no intermediate overflow
    assert float(ExactSum.of(np.array([5e-324, 5e-324]))) == 1e-323  # subnormals
    assert float(ExactSum()) == 0.0


def test_infinities_are_counted_and_merge():
    s = ExactSum.of(np.array([1.0, np.inf]))
    assert float(s) == np.inf
    assert np.isnan(float(s + ExactSum.of(np.array([-np.inf]))))


def test_text_round_trip_and_mean():
    s = ExactSum.of(np.array([1.5, -2.25, 1e-300]))
    assert ExactSum.from_text(s.to_text()) == s
    assert ExactSum.of(np.array([1.0, 2.0])).divided_by(2) == 1.5
    assert np.isnan(ExactSum().divided_by(0))


def test_nan_is_rejected():
    import pytest

    with pytest.raises(ValueError, match="NaN"):
        ExactSum.of(np.array([np.nan]))
