"""Version against version: known values, the re-binning's error bound against scipy on the
raw values, category alignment, and the verdict's false alarms and power on simulated canaries."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from detectors.binning import CategoricalBins, NumericBins
from detectors.compare import compare
from detectors.decision import DriftRule
from detectors.summary import CategoricalSummary, NumericSummary
from detectors.version_comparison import IncomparableVersions, align_categories, compare_versions, rebin


def _bins(rng: np.random.Generator, a: float, b: float, n: int = 20_000) -> NumericBins:
    return NumericBins.from_reference(rng.beta(a, b, n))


def test_same_bins_is_the_ordinary_comparison():
    rng = np.random.default_rng(0)
    bins = _bins(rng, 2, 5)
    stable = NumericSummary.fold(bins, rng.beta(2, 5, 4_000))
    canary = NumericSummary.fold(bins, rng.beta(2.5, 5, 1_000))
    result = compare_versions(stable, canary)
    assert not result.rebinned
    assert result.drift == compare(stable, canary)


def test_rebinning_keeps_the_count_and_is_exact_on_shared_edges():
    rng = np.random.default_rng(1)
    source, target = _bins(rng, 2, 5), _bins(rng, 2, 5)
    summary = NumericSummary.fold(source, rng.beta(2, 5, 3_000))
    moved = rebin(summary, target)
    assert moved.sum() == pytest.approx(summary.count)
    assert (moved >= 0).all()
    # Onto its own bins, re-binning changes nothing.
    assert np.allclose(rebin(summary, source), summary.counts)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    shift=st.floats(0.0, 1.5),
    stable_n=st.integers(300, 6_000),
    canary_n=st.integers(300, 6_000),
    heavy_tail=st.booleans(),
)
def test_rebinned_ks_is_within_its_error_bound_of_scipy(seed, shift, stable_n, canary_n, heavy_tail):
    rng = np.random.default_rng(seed)
    stable_bins, canary_bins = _bins(rng, 2, 5), _bins(rng, 2 + shift, 5)
    stable_values = rng.beta(2, 5, stable_n)
    canary_values = rng.beta(2 + shift, 5, canary_n)
    if heavy_tail:  # values beyond both profiles' ranges land in the open tails
        canary_values = np.concatenate([canary_values, rng.uniform(1.0, 3.0, 20), rng.uniform(-2.0, 0.0, 20)])
    stable = NumericSummary.fold(stable_bins, stable_values)
    canary = NumericSummary.fold(canary_bins, canary_values)
    result = compare_versions(stable, canary)
    exact = stats.ks_2samp(stable_values, canary_values).statistic
    assert result.rebinned
    assert abs(result.drift.ks_statistic - exact) <= result.drift.ks_error_bound + 1e-12
    # PSI over the stable's coarse bins, against the canary's raw values folded into them.
    direct = compare(stable, NumericSummary.fold(stable_bins, canary_values)).psi
    assert result.drift.psi == pytest.approx(direct, abs=0.02 + 0.05 * direct)


def test_rebinned_error_bound_is_a_few_fine_bins():
    # Each side's largest fine-bin share: about 2/1,000 for a window shaped like its reference.
    rng = np.random.default_rng(2)
    stable = NumericSummary.fold(_bins(rng, 2, 5), rng.beta(2, 5, 50_000))
    canary = NumericSummary.fold(_bins(rng, 2, 5), rng.beta(2, 5, 50_000))
    assert compare_versions(stable, canary).drift.ks_error_bound < 0.005


def _canary_trial(rng: np.random.Generator, shift: float, canary_n: int) -> bool:
    """One canary: its own profile (fresh bins), a window of ``canary_n`` against a stable window."""
    stable = NumericSummary.fold(_bins(rng, 2, 5, 10_000), rng.beta(2, 5, 10 * canary_n))
    canary = NumericSummary.fold(_bins(rng, 2 + shift, 5, 10_000), rng.beta(2 + shift, 5, canary_n))
    return compare_versions(stable, canary, DriftRule()).drift.drift


def test_false_alarms_and_power_on_simulated_canaries():
    """Unshifted canaries (each with its own profile) are flagged at most as often as the
    rule's alpha allows; a canary whose score distribution moves (Beta(2,5) → Beta(3,5), PSI
    ≈ 0.3) is flagged every time at 1,000 predictions."""
    rng = np.random.default_rng(20261207)
    trials = 300
    false_alarms = sum(_canary_trial(rng, 0.0, 1_000) for _ in range(trials))
    # alpha = 0.01 per column: 3 expected; 9 or more has probability < 0.4 % under the rule.
    assert false_alarms <= 8, f"{false_alarms}/{trials} unshifted canaries flagged"
    assert all(_canary_trial(rng, 1.0, 1_000) for _ in range(50))


def test_categorical_alignment_by_name():
    stable = CategoricalSummary.fold(CategoricalBins(("approve", "review", "deny")), np.array(["approve"] * 50))
    canary_bins = CategoricalBins(("deny", "approve", "review", "escalate"))
    canary = CategoricalSummary.fold(canary_bins, np.array(["approve"] * 30 + ["deny"] * 10 + ["escalate"] * 5))
    aligned = align_categories(stable, canary)
    assert aligned.bins == stable.bins
    assert aligned.counts.tolist() == [30, 0, 10, 5]  # approve, review, deny, __other__ (escalate)
    result = compare_versions(stable, canary, DriftRule(min_samples=0))
    assert result.rebinned and result.drift.current_count == 45


def test_categorical_alignment_refuses_to_guess():
    stable = CategoricalSummary.fold(CategoricalBins(("a", "b")), np.array(["a", "b"]))
    canary = CategoricalSummary.fold(CategoricalBins(("a",)), np.array(["a", "b", "b"]))  # b went to __other__
    with pytest.raises(IncomparableVersions, match="'b'"):
        compare_versions(stable, canary)


def test_scores_and_classes_are_incomparable_and_empty_windows_refused():
    rng = np.random.default_rng(3)
    bins = _bins(rng, 2, 5)
    scores = NumericSummary.fold(bins, rng.beta(2, 5, 100))
    classes = CategoricalSummary.fold(CategoricalBins(("a",)), np.array(["a"]))
    with pytest.raises(IncomparableVersions):
        compare_versions(scores, classes)
    with pytest.raises(ValueError, match="both versions"):
        compare_versions(scores, NumericSummary.empty(bins))
