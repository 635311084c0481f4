from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from detectors.exact_sum import ExactSum, group_numerators
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


@st.composite
def grouped(draw, sort: bool):  # type: ignore[no-untyped-def]
    values = draw(finite_arrays(min_size=0, max_size=300))
    cuts = sorted(draw(st.lists(st.integers(0, values.size), max_size=5)))
    bounds = np.array([0, *cuts, values.size], dtype=np.int64)
    if sort:
        for start, end in zip(bounds[:-1], bounds[1:]):
            values[start:end].sort()
    return values, bounds


@given(st.booleans().flatmap(grouped))
def test_group_numerators_are_each_groups_exact_sum(case):
    values, bounds = case
    got = group_numerators(values, bounds)
    assert got == [ExactSum.of(values[a:b]).numerator for a, b in zip(bounds[:-1], bounds[1:])]


def test_group_numerators_long_runs_subnormals_and_extremes():
    # Runs longer than a uint64 significand sum can hold, both signs, subnormals, the largest doubles.
    values = np.sort(
        np.concatenate(
            [
                np.full(5_000, 1.5),
                np.full(4_097, -1.999999999),
                np.full(3, 5e-324),
                np.full(2, -2.2250738585072014e-308),
                np.array([1.7976931348623157e308, -1.7976931348623157e308, 0.0, -0.0]),
            ]
        )
    )
    bounds = np.array([0, 3, 4_100, values.size])
    assert group_numerators(values, bounds) == [
        ExactSum.of(values[a:b]).numerator for a, b in zip(bounds[:-1], bounds[1:])
    ]
    assert float(ExactSum(group_numerators(values, np.array([0, values.size]))[0])) == exact(values)


def test_sum_of_many_is_their_merge():
    parts = [ExactSum.of(np.array(v)) for v in ([1e16, 1.0], [-1e16], [np.inf], [0.1])]
    merged = parts[0]
    for part in parts[1:]:
        merged = merged + part
    assert ExactSum.sum(parts) == merged


def test_group_numerators_with_many_exponent_runs():
    # Values across the whole double range: hundreds of runs, summed 16 exponents at a time.
    rng = np.random.default_rng(3)
    values = rng.normal(size=20_000) * 10.0 ** rng.integers(-300, 300, size=20_000)
    bounds = np.array([0, 7_000, 7_000, 15_000, 20_000])
    for start, end in zip(bounds[:-1], bounds[1:]):
        values[start:end].sort()
    assert group_numerators(values, bounds) == [
        ExactSum.of(values[a:b]).numerator for a, b in zip(bounds[:-1], bounds[1:])
    ]


@pytest.mark.parametrize("scale", ["spread", "tiny beside large", "largest", "subnormal"])
def test_group_numerators_of_unsorted_values_split_in_levels(scale):
    # Unsorted: the levels of piece_numerators, their early exit to the integer way, and σ's overflow.
    rng = np.random.default_rng(5)
    n = 100_000
    values = {
        "spread": rng.normal(size=n) * 10.0 ** rng.integers(-300, 300, size=n),
        "tiny beside large": np.where(rng.random(n) < 0.001, 1e-200, 1.0) * rng.normal(size=n) * 1e6,
        "largest": rng.choice([1.7976931348623157e308, -1.7976931348623157e308, 1.0], size=n),
        "subnormal": rng.integers(-(2**52), 2**52, size=n) * 5e-324,
    }[scale]
    bounds = np.array([0, 1, 40_000, 40_000, 70_000, n])
    assert group_numerators(values, bounds) == [
        ExactSum.of(values[a:b]).numerator for a, b in zip(bounds[:-1], bounds[1:])
    ]
