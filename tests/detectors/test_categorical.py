import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats
from scipy.spatial import distance

from detectors.categorical import chi2_pvalue, js_distance


def test_known_values():
    # X² = 8.333… on 1 df for [[50, 50], [30, 70]]
    assert chi2_pvalue(np.array([50, 50]), np.array([30, 70])) == pytest.approx(stats.chi2.sf(25 / 3, 1), rel=1e-12)
    assert js_distance(np.array([1, 0]), np.array([0, 1])) == 1.0
    h = -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25))
    assert js_distance(np.array([1, 1]), np.array([1, 0])) == pytest.approx(math.sqrt(h - 0.5), rel=1e-12)
    assert js_distance(np.array([3, 1]), np.array([6, 2])) == 0.0


@given(st.data())
def test_js_is_symmetric_bounded_and_matches_scipy(data):
    a = data.draw(hnp.arrays(np.int64, st.integers(1, 20), elements=st.integers(0, 1000)))
    b = data.draw(hnp.arrays(np.int64, a.size, elements=st.integers(0, 1000)))
    if a.sum() == 0 or b.sum() == 0:
        return
    value = js_distance(a, b)
    assert 0.0 <= value <= 1.0 + 1e-12
    assert value == pytest.approx(js_distance(b, a), abs=1e-12)
    assert value == pytest.approx(distance.jensenshannon(a / a.sum(), b / b.sum(), base=2), abs=1e-12)


def test_chi2_matches_scipy_contingency_and_drops_empty_categories():
    ref, cur = np.array([120, 0, 40, 40]), np.array([50, 0, 30, 20])
    expected = stats.chi2_contingency(np.array([[120, 40, 40], [50, 30, 20]]), correction=False).pvalue
    assert chi2_pvalue(ref, cur) == pytest.approx(expected, rel=1e-12)
    assert chi2_pvalue(np.array([5, 0]), np.array([9, 0])) == 1.0
