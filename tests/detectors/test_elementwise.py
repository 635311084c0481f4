"""detectors.elementwise and the categorical tests built on it, against scipy, their oracle."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy import special, stats
from scipy.spatial import distance

from detectors.categorical import chi2_pvalue, js_distance
from detectors.elementwise import chi2_sf, gamma_q, log_factorials, next_fast_len, rel_entr


@pytest.mark.parametrize("dof", [1, 2, 3, 9, 19, 49, 99, 500])
def test_chi2_tail_agrees_with_scipy(dof: int) -> None:
    for x in [1e-8, 1e-3, *np.linspace(0.01, 5 * dof + 50, 40).tolist(), 2_000.0]:
        expected = float(stats.chi2.sf(x, dof))
        assert chi2_sf(x, dof) == pytest.approx(expected, rel=1e-12, abs=1e-300), (dof, x)


def test_gamma_q_edges() -> None:
    assert gamma_q(2.5, 0.0) == 1.0 and gamma_q(2.5, math.inf) == 0.0
    assert gamma_q(1.0, 3.0) == pytest.approx(math.exp(-3.0), rel=1e-15)  # Q(1, x) = e^−x
    assert math.isnan(chi2_sf(math.nan, 3)) and math.isnan(chi2_sf(1.0, 0))
    assert gamma_q(0.5, 2.0) == pytest.approx(float(special.gammaincc(0.5, 2.0)), rel=1e-14)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(0, 5_000), min_size=2, max_size=30), st.integers(0, 2**32 - 1))
def test_chi2_pvalue_is_scipys_contingency_test(reference: list[int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref = np.array(reference, dtype=np.int64)
    cur = rng.multinomial(int(rng.integers(50, 20_000)), rng.dirichlet(np.ones(ref.size)))
    ours = chi2_pvalue(ref, cur)
    table = np.vstack([ref, cur]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return
    assert ours == pytest.approx(float(stats.chi2_contingency(table, correction=False).pvalue), rel=1e-11, abs=1e-300)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(0, 1_000), min_size=1, max_size=25), st.integers(0, 2**32 - 1))
# Nearly equal shares ([½, ½] against [935, 934]): the divergence cancels terms 10³ times
# larger, and ln(x/y) taken naively was 3.9e-10 off here (scipy's log1p form is not).
@example(reference=[1, 1], seed=197)
def test_js_distance_is_scipys(reference: list[int], seed: int) -> None:
    p = np.array(reference, dtype=np.float64)
    q = np.random.default_rng(seed).integers(0, 1_000, p.size).astype(np.float64)
    if p.sum() <= 0 or q.sum() <= 0:
        assert math.isnan(js_distance(p, q))
        return
    expected = float(distance.jensenshannon(p / p.sum(), q / q.sum(), base=2))
    # numpy's logarithm is not libm's to the last bit, and the divergence sums terms of both signs.
    assert js_distance(p, q) == pytest.approx(expected, rel=1e-11, abs=1e-15)


def test_rel_entr_and_log_factorials_are_scipys() -> None:
    rng = np.random.default_rng(2)
    x = np.where(rng.uniform(size=200) < 0.2, 0.0, rng.dirichlet(np.ones(200)))
    y = rng.dirichlet(np.ones(200))
    assert np.allclose(rel_entr(x, y), special.rel_entr(x, y), rtol=1e-14, atol=0)
    assert np.array_equal(rel_entr(x, y) == 0, x == 0)
    assert np.allclose(log_factorials(5_000), special.gammaln(np.arange(5_001) + 1.0), rtol=1e-15, atol=0)


@given(st.integers(1, 200_000))
def test_fft_lengths_are_short_and_smooth(target: int) -> None:
    size = next_fast_len(target)
    assert target <= size < max(2 * target, 2)
    odd = size >> ((size & -size).bit_length() - 1)
    assert odd in {1, 3, 5, 9, 15}
