"""Simulations of the drift decision rule through the streaming path.

Everything goes the way production data does: bins frozen from a reference sample,
the reference and each window folded into summaries over those bins, then
:func:`detectors.compare.compare` and its ``.drift`` verdict.

* False alarms: the reference and every window are *independent* samples of one
  stationary distribution; the share of windows flagged must stay ≤ 1% at every window
  size, with the default rule and with ``min_samples=0`` (the null-quantile gate alone
  at n = 200).
* Power: a 0.5σ mean shift is flagged in ≥ 95% of windows.
* Trivia: a 0.02σ shift in 100,000-row windows is statistically significant but far
  below the effect-size thresholds, and is not flagged.

Rates are printed (visible with ``-s``) and repeated in assertion messages. Every
simulation is seeded, so the observed rates are reproducible.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytest

from detectors.binning import CategoricalBins, NumericBins
from detectors.compare import compare
from detectors.decision import DriftRule, ks_null_quantile
from detectors.summary import CategoricalSummary, NumericSummary

REFERENCE_ROWS = 100_000
MAX_FALSE_ALARM_RATE = 0.01
# Window size → number of windows. Many small windows: that is where false alarms live
# (and a ≤ 1% bound needs enough windows to mean something); few of the huge ones.
NULL_WINDOWS = {200: 4_000, 500: 2_000, 1_000: 1_000, 10_000: 400, 100_000: 100}
RULES = {"default": DriftRule(), "min_samples=0": DriftRule(min_samples=0)}
_CHUNK_VALUES = 2_000_000  # values drawn per batch of windows

Draw = Callable[[np.random.Generator, int], np.ndarray]

NUMERIC: dict[str, tuple[int, Draw]] = {
    "normal": (101, lambda rng, size: rng.normal(0.0, 1.0, size)),
    "lognormal": (102, lambda rng, size: rng.lognormal(0.0, 1.0, size)),  # skewed, long right tail
    "discrete_0_5": (  # low cardinality: six integer values, heavy ties
        103,
        lambda rng, size: rng.choice(6, size=size, p=[0.4, 0.25, 0.15, 0.1, 0.07, 0.03]).astype(np.float64),
    ),
}


def windows(rng: np.random.Generator, draw: Draw, size: int, count: int) -> Iterator[np.ndarray]:
    """``count`` independent windows of ``size`` values, drawn in vectorised batches."""
    per_batch = max(1, _CHUNK_VALUES // size)
    left = count
    while left:
        batch = min(per_batch, left)
        yield from draw(rng, batch * size).reshape(batch, size)
        left -= batch


def _table(name: str, rates: dict[tuple[str, int], float]) -> str:
    lines = [f"false-alarm rate, {name}:"]
    for rule in RULES:
        cells = ", ".join(f"n={m:,}: {rates[(rule, m)]:.4f}" for m in NULL_WINDOWS if (rule, m) in rates)
        lines.append(f"  {rule:>14}  {cells}")
    return "\n".join(lines)


def _check_rates(name: str, rates: dict[tuple[str, int], float], flagged_by: dict[str, int]) -> None:
    table = _table(name, rates)
    print("\n" + table + f"\n  methods that fired (all sizes, min_samples=0): {flagged_by}")
    too_high = {f"{rule} n={m}": rate for (rule, m), rate in rates.items() if rate > MAX_FALSE_ALARM_RATE}
    assert not too_high, f"false-alarm rate above {MAX_FALSE_ALARM_RATE:.0%}: {too_high}\n{table}"
    # Below min_samples the default rule never gives a verdict.
    assert rates[("default", 200)] == 0.0, table


def _rates_for(
    reference: NumericSummary | CategoricalSummary,
    summaries_by_size: Callable[[int, int], Iterator[NumericSummary | CategoricalSummary]],
) -> tuple[dict[tuple[str, int], float], dict[str, int]]:
    rates: dict[tuple[str, int], float] = {}
    fired: dict[str, int] = {}
    for size, count in NULL_WINDOWS.items():
        flagged = dict.fromkeys(RULES, 0)
        for current in summaries_by_size(size, count):
            assert current.count == size
            for rule_name, rule in RULES.items():
                result = compare(reference, current, rule)
                flagged[rule_name] += result.drift
                if rule_name == "min_samples=0":
                    for method in result.fired:
                        fired[method] = fired.get(method, 0) + 1
        for rule_name in RULES:
            rates[(rule_name, size)] = flagged[rule_name] / count
    return rates, fired


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(NUMERIC))
def test_numeric_false_alarm_rate(name: str) -> None:
    seed, draw = NUMERIC[name]
    rng = np.random.default_rng(seed)
    reference_values = draw(rng, REFERENCE_ROWS)
    bins = NumericBins.from_reference(reference_values)
    reference = NumericSummary.fold(bins, reference_values)

    def summaries(size: int, count: int) -> Iterator[NumericSummary]:
        for window in windows(rng, draw, size, count):
            yield NumericSummary.fold(bins, window)

    rates, fired = _rates_for(reference, summaries)
    _check_rates(name, rates, fired)


# Categorical windows are drawn as multinomial counts (exactly the distribution of the
# category counts of `size` i.i.d. draws) and enter through CategoricalSummary.from_counts,
# the path Arrow's value_counts takes in production.
CATEGORICAL: dict[str, tuple[int, np.ndarray]] = {
    "five_categories": (201, np.array([0.35, 0.25, 0.2, 0.12, 0.08])),
}

_zipf = 1.0 / np.arange(1, 81) ** 1.1
LONG_TAIL = _zipf / _zipf.sum()  # 80 categories, Zipf(1.1): the top 50 + __other__ are kept


def _categorical_setup(
    seed: int, probabilities: np.ndarray
) -> tuple[np.random.Generator, list[str], CategoricalBins, CategoricalSummary]:
    rng = np.random.default_rng(seed)
    labels = [f"cat_{i:02d}" for i in range(probabilities.size)]
    reference_values = rng.choice(np.array(labels, dtype=object), size=REFERENCE_ROWS, p=probabilities)
    bins = CategoricalBins.from_reference(reference_values)
    return rng, labels, bins, CategoricalSummary.fold(bins, reference_values)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CATEGORICAL))
def test_categorical_false_alarm_rate(name: str) -> None:
    seed, probabilities = CATEGORICAL[name]
    rng, labels, bins, reference = _categorical_setup(seed, probabilities)

    # The counted path and the raw-value path agree on a window.
    raw = rng.choice(np.array(labels, dtype=object), size=1_000, p=probabilities)
    names, counts = np.unique(raw.astype(str), return_counts=True)
    assert CategoricalSummary.fold(bins, raw) == CategoricalSummary.from_counts(bins, list(names), list(counts))

    def summaries(size: int, count: int) -> Iterator[CategoricalSummary]:
        for row in rng.multinomial(size, probabilities, size=count):
            yield CategoricalSummary.from_counts(bins, labels, row.tolist())

    rates, fired = _rates_for(reference, summaries)
    _check_rates(name, rates, fired)


@pytest.mark.slow
def test_long_tail_categorical_false_alarm_rate() -> None:
    rng, labels, bins, reference = _categorical_setup(202, LONG_TAIL)
    assert bins.n_bins == 51
    rule = DriftRule()
    rates: dict[int, float] = {}
    fired: dict[str, int] = {}
    for size in (500, 1_000):
        flagged = 0
        for row in rng.multinomial(size, LONG_TAIL, size=2_000):
            result = compare(reference, CategoricalSummary.from_counts(bins, labels, row.tolist()), rule)
            flagged += result.drift
            for method in result.fired:
                fired[method] = fired.get(method, 0) + 1
        rates[size] = flagged / 2_000
    print(f"\nfalse-alarm rate, long-tail categorical, default rule: {rates}; methods fired: {fired}")
    assert max(rates.values()) <= MAX_FALSE_ALARM_RATE, (
        f"long-tail categorical false-alarm rates {rates}, fired {fired}"
    )


POWER_WINDOWS = {1_000: 400, 5_000: 200, 100_000: 40}


@pytest.mark.slow
def test_half_sigma_mean_shift_is_detected() -> None:
    rng = np.random.default_rng(301)
    reference_values = rng.normal(0.0, 1.0, REFERENCE_ROWS)
    bins = NumericBins.from_reference(reference_values)
    reference = NumericSummary.fold(bins, reference_values)
    shifted: Draw = lambda g, size: g.normal(0.5, 1.0, size)  # noqa: E731
    rates: dict[int, float] = {}
    for size, count in POWER_WINDOWS.items():
        detected = sum(
            compare(reference, NumericSummary.fold(bins, w)).drift for w in windows(rng, shifted, size, count)
        )
        rates[size] = detected / count
    print(f"\ndetection rate, 0.5σ mean shift, default rule: {rates}")
    assert all(rate >= 0.95 for rate in rates.values()), f"0.5σ shift detection rates {rates}"


@pytest.mark.slow
def test_tiny_shift_in_huge_window_is_not_flagged() -> None:
    """0.02σ at 100,000 rows: significant (p ≪ alpha) yet trivial, so not drift.

    The reference holds 1,000,000 rows so that the KS p-value of every window is small
    beyond doubt; only the effect-size thresholds keep the verdict at "no drift".
    """
    rng = np.random.default_rng(401)
    reference_values = rng.normal(0.0, 1.0, 1_000_000)
    bins = NumericBins.from_reference(reference_values)
    reference = NumericSummary.fold(bins, reference_values)
    rule = DriftRule()
    without_effect_size = DriftRule(psi_threshold=0.0, ks_threshold=0.0, js_threshold=0.0)
    tiny: Draw = lambda g, size: g.normal(0.02, 1.0, size)  # noqa: E731
    results = []
    gate_only = 0
    for window in windows(rng, tiny, 100_000, 20):
        current = NumericSummary.fold(bins, window)
        results.append(compare(reference, current, rule))
        gate_only += compare(reference, current, without_effect_size).drift
    pvalues = np.array([r.ks_pvalue for r in results])
    statistics = np.array([r.ks_statistic for r in results])
    summary = (
        f"KS p-values: median {np.median(pvalues):.2e}, max {pvalues.max():.2e}; "
        f"KS D in [{statistics.min():.4f}, {statistics.max():.4f}] "
        f"(null quantile {ks_null_quantile(1_000_000, 100_000, rule.alpha / 2):.4f}); "
        f"max PSI {max(r.psi for r in results):.5f}; "
        f"flagged without effect-size gate: {gate_only}/20"
    )
    print("\n0.02σ shift, 100,000-row windows: " + summary)
    assert not any(r.drift for r in results), summary
    assert (pvalues < rule.alpha).all() and np.median(pvalues) < 1e-5, summary
    assert (statistics < rule.ks_threshold).all() and max(r.psi for r in results) < rule.psi_threshold, summary
    # The effect-size gate is what holds these back: without it they would be flagged.
    assert gate_only >= 18, summary
