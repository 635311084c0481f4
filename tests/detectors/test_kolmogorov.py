"""detectors.kolmogorov against scipy.stats.kstwo, its oracle, and as a distribution."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from detectors import kolmogorov

ROOT = Path(__file__).resolve().parents[2]
# Sizes on both sides of every switch: 140 (scipy's exact algorithms), 100,000 (Durbin's
# matrix), 1,000,000 (the one-sided tail's asymptotic form); 4,762 and 90,909 are the
# effective sizes of a 100,000-row reference against 5,000 and 1,000,000 rows.
SIZES = [141, 1_000, 4_762, 90_909, 100_001, 1_000_001]
# z = x·√n across the regimes: Durbin or Pelz–Good (n·x² < 2.2), the Smirnov tail, 0.
ZS = [0.05, 0.3, 0.6, 0.9, 1.2, 1.45, 1.6, 2.5, 4.0, 8.0, 19.0, 21.0]


@pytest.mark.parametrize("n", SIZES)
def test_tail_agrees_with_scipy(n: int) -> None:
    for z in ZS:
        x = z / math.sqrt(n)
        ours, scipys = kolmogorov.sf(x, n), float(stats.kstwo.sf(x, n))
        assert ours == pytest.approx(scipys, rel=1e-12, abs=1e-15), (n, z)


@pytest.mark.parametrize("n", [1, 2, 7, 60, 140])
def test_small_sizes_are_scipys_own(n: int) -> None:
    for x in (0.01, 0.1, 0.3, 0.7, 0.99):
        assert kolmogorov.sf(x, n) == float(stats.kstwo.sf(x, n))
    assert kolmogorov.isf(0.01, n) == float(stats.kstwo.isf(0.01, n))


def test_edges_and_closed_forms() -> None:
    n = 1_000
    assert kolmogorov.sf(0.0, n) == 1.0 and kolmogorov.sf(-1.0, n) == 1.0
    assert kolmogorov.sf(1.0, n) == 0.0 and kolmogorov.sf(0.65, n) == 0.0  # n·x² ≥ 370
    assert math.isnan(kolmogorov.sf(math.nan, n))
    assert kolmogorov.sf(0.4 / n, n) == 1.0  # n·x ≤ 1/2: D_n ≥ 1/2n always
    # Ruben–Gambino below x = 1/n: P(D_n ≤ x) = n!/nⁿ (2nx − 1)ⁿ.
    x = 0.9 / n
    expected = 1.0 - math.exp(math.lgamma(n + 1) - n * math.log(n) + n * math.log(2 * n * x - 1))
    assert kolmogorov.sf(x, n) == pytest.approx(expected, rel=1e-12)
    # x ≥ 1/2: exactly twice the one-sided tail.
    assert kolmogorov.sf(0.5, 141) == pytest.approx(2 * float(stats.ksone.sf(0.5, 141)), rel=1e-12)
    assert kolmogorov.isf(1.0, n) == 1.0 / n and kolmogorov.isf(0.0, n) == 1.0


@pytest.mark.parametrize("n", [141, 4_762, 90_909, 2_000_000])
def test_quantile_inverts_the_tail(n: int) -> None:
    for q in (0.5, 0.05, 0.0025, 1e-6, 1e-10):
        x = kolmogorov.isf(q, n)
        assert kolmogorov.sf(x, n) == pytest.approx(q, rel=1e-12), (n, q)


def test_quantile_agrees_with_scipy_where_scipys_inverts_its_tail() -> None:
    # scipy inverts an asymptotic CDF (1 − tail, near 1) rather than its own tail, so its
    # quantile drifts from its tail as the level shrinks: at n = 141 and q = 1e-10, its tail
    # at its own quantile is 7.7% off q. Where its inversion holds, the two agree.
    for n in (4_762, 90_909):
        for q in (0.05, 0.01, 0.0025):
            scipys = float(stats.kstwo.isf(q, n))
            assert float(stats.kstwo.sf(scipys, n)) == pytest.approx(q, rel=1e-6)
            assert kolmogorov.isf(q, n) == pytest.approx(scipys, rel=1e-7)
    scipys = float(stats.kstwo.isf(1e-10, 141))
    assert float(stats.kstwo.sf(scipys, 141)) / 1e-10 - 1 > 0.05
    assert kolmogorov.sf(kolmogorov.isf(1e-10, 141), 141) == pytest.approx(1e-10, rel=1e-12)


def test_one_sided_tail_is_scipys_smirnov() -> None:
    for n, x in [(200, 0.01), (200, 0.2), (5_000, 0.03), (90_909, 0.006), (90_909, 0.02)]:
        assert kolmogorov.smirnov(n, x) == pytest.approx(float(stats.ksone.sf(x, n)), rel=1e-12, abs=1e-300)


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=141, max_value=200_000), st.floats(0.05, 10.0), st.floats(0.05, 10.0))
def test_tail_is_a_survival_function(n: int, z1: float, z2: float) -> None:
    low, high = sorted((z1 / math.sqrt(n), z2 / math.sqrt(n)))
    a, b = kolmogorov.sf(low, n), kolmogorov.sf(high, n)
    assert 0.0 <= b <= a <= 1.0


def test_null_simulation_matches_the_tail() -> None:
    # D_n of uniform samples: the share beyond the 5% quantile is 5% (binomial error).
    rng = np.random.default_rng(11)
    n, trials = 400, 4_000
    samples = np.sort(rng.uniform(size=(trials, n)), axis=1)
    i = np.arange(1, n + 1)
    d = np.maximum((i / n - samples).max(axis=1), (samples - (i - 1) / n).max(axis=1))
    share = float((d >= kolmogorov.isf(0.05, n)).mean())
    assert abs(share - 0.05) < 4 * math.sqrt(0.05 * 0.95 / trials)


def test_judging_drift_imports_no_scipy() -> None:
    code = (
        "import sys, detectors.decision, detectors.ks, detectors.tail_bound, detectors.compare;"
        "from detectors.decision import DriftRule, method_pvalue;"
        "method_pvalue('ks', 0.02, 100_000, 50_000, DriftRule(), 2);"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'scipy'))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
