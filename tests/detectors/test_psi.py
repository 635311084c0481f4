import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from detectors.binning import NumericBins
from detectors.compare import compare
from detectors.psi import evidently_shares, psi, psi_evidently
from detectors.summary import NumericSummary

counts = hnp.arrays(np.int64, st.integers(1, 30), elements=st.integers(0, 10_000))


def test_known_values():
    assert psi(np.array([50, 50]), np.array([25, 75])) == pytest.approx(math.log(3) / 4, abs=1e-15)
    assert psi(np.array([1, 1, 1]), np.array([7, 7, 7])) == 0.0
    # An empty reference bin becomes epsilon: 0.5·ln 2 + (0.5 − 1e-4)·ln(0.5 / 1e-4)
    expected = 0.5 * math.log(2) + (0.5 - 1e-4) * math.log(0.5 / 1e-4)
    assert psi(np.array([10, 0]), np.array([5, 5])) == pytest.approx(expected, rel=1e-12)


def test_epsilon_is_a_parameter():
    low, high = (
        psi(np.array([10, 0]), np.array([5, 5]), epsilon=1e-6),
        psi(np.array([10, 0]), np.array([5, 5]), epsilon=1e-2),
    )
    assert low > high > 0


@given(st.data())
def test_psi_is_non_negative_and_symmetric(data):
    a = data.draw(counts)
    b = data.draw(hnp.arrays(np.int64, a.size, elements=st.integers(0, 10_000)))
    if a.sum() == 0 or b.sum() == 0:
        assert math.isnan(psi(a, b))
        return
    forward, backward = psi(a, b), psi(b, a)
    assert forward >= 0
    assert forward == pytest.approx(backward, rel=1e-12, abs=1e-15)


def test_psi_of_identical_distributions_is_zero():
    assert psi(np.array([3, 0, 5]), np.array([6, 0, 10])) == 0.0


def test_streaming_psi_uses_decile_bins_frozen_from_reference():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=100_000)
    bins = NumericBins.from_reference(reference)
    ref = NumericSummary.fold(bins, reference)
    assert bins.coarse_counts(ref.counts).tolist() == [10_000] * 10
    shifted = NumericSummary.fold(bins, rng.normal(0.5, 1.0, 100_000))
    # Decile-binned PSI of a 0.5σ normal shift is close to (but below) δ² = 0.25.
    assert 0.2 < compare(ref, shifted).psi < 0.26


def test_evidently_rule_switches_on_distinct_count():
    twenty = np.arange(20.0).repeat(5)
    p, _ = evidently_shares(twenty, twenty, numeric=True)
    assert p.size == 20  # ≤ 20 distinct: one bin per value
    twenty_one = np.arange(21.0).repeat(5)
    p, _ = evidently_shares(twenty_one, twenty_one, numeric=True)
    assert p.size == len(np.histogram_bin_edges(np.concatenate([twenty_one, twenty_one]), "sturges")) - 1


def test_evidently_zero_fill_per_side():
    # Current lacks "c": its zero share becomes 1e-4 because its smallest share (0.5) is > 1e-4.
    p, q = evidently_shares(np.array(["a", "b", "c", "c"]), np.array(["a", "b"]), numeric=False)
    assert q.tolist() == [0.5, 0.5, 1e-4]
    assert psi_evidently(np.array(["a", "b", "c", "c"]), np.array(["a", "b"]), numeric=False) == pytest.approx(
        (0.25 - 0.5) * math.log(0.5) * 2 + (0.5 - 1e-4) * math.log(0.5 / 1e-4), rel=1e-12
    )
