"""The report's data model: bars regrouped from summaries keep every value's share."""

from __future__ import annotations

import json

import numpy as np
import pytest

from detectors.binning import OTHER, CategoricalBins, NumericBins
from detectors.compare import compare
from detectors.decision import DriftRule
from detectors.summary import CategoricalSummary, NumericSummary
from exporter.report.data import (
    MAX_CATEGORY_BARS,
    ReportData,
    feature_from_category_counts,
    feature_from_summaries,
    feature_from_values,
    numeric_chart,
    statistics_of,
)


def _summaries(reference: np.ndarray, current: np.ndarray) -> tuple[NumericSummary, NumericSummary]:
    bins = NumericBins.from_reference(reference)
    return NumericSummary.fold(bins, reference), NumericSummary.fold(bins, current)


def test_numeric_bars_hold_every_share_and_the_tails_hold_what_lies_outside_the_reference():
    rng = np.random.default_rng(0)
    reference = rng.normal(0, 1, 20_000)
    current = np.concatenate([rng.normal(0.5, 1, 9_000), np.full(600, 50.0), np.full(400, -50.0), [np.nan] * 10])
    ref, cur = _summaries(reference, current)
    chart = numeric_chart(ref, cur)
    assert sum(chart.reference) == pytest.approx(1.0, abs=1e-5)
    assert sum(chart.current) == pytest.approx(1.0, abs=1e-5)
    assert chart.roles[0] == "lower_tail" and chart.roles[-1] == "upper_tail"
    assert chart.reference[0] == chart.reference[-1] == 0.0  # the reference never lies in its own tails
    assert chart.current[0] == pytest.approx(400 / 10_000, abs=0.001)  # a few normal draws lie out there too
    assert chart.current[-1] == pytest.approx(600 / 10_000, abs=0.001)
    assert chart.lower[0] is None and chart.upper[-1] is None
    bars = [r for r in chart.roles if r == "bin"]
    assert 12 <= len(bars) <= 45  # readable, regrouped from 1,000 fine bins
    widths = {round(u - lo, 9) for u, lo, r in zip(chart.upper, chart.lower, chart.roles) if r == "bin"}
    assert len(widths) == 1  # equal width
    # The shift shows: the current's mean of bar centres is about 0.5 above the reference's.
    centres = np.array([(u + lo) / 2 if r == "bin" else 0 for u, lo, r in zip(chart.upper, chart.lower, chart.roles)])
    inside = np.array([r == "bin" for r in chart.roles])
    shift = np.average(centres[inside], weights=np.array(chart.current)[inside]) - np.average(
        centres[inside], weights=np.array(chart.reference)[inside]
    )
    assert shift == pytest.approx(0.5, abs=0.05)
    ticks = [p for p, _ in chart.ticks]
    assert ticks[0] == 0 and ticks[-1] == len(chart.labels) - 1 and len(ticks) <= 12


def test_discrete_values_get_one_exact_bar_each():
    reference = np.repeat([0.0, 1.0, 2.0, 3.0], [400, 300, 200, 100])
    current = np.repeat([0.0, 1.0, 2.0, 3.0, 7.0], [100, 200, 300, 350, 50])
    ref, cur = _summaries(reference, current)
    chart = numeric_chart(ref, cur)
    assert chart.roles == ("lower_tail", "bin", "bin", "bin", "bin", "upper_tail")
    assert chart.reference == (0.0, 0.4, 0.3, 0.2, 0.1, 0.0)
    assert chart.current == (0.0, 0.1, 0.2, 0.3, 0.35, 0.05)
    assert [t for _, t in chart.ticks][1:5] == ["0", "1", "2", "3"]


def test_a_long_tail_is_clipped_into_bars_of_its_own_and_no_share_is_lost():
    rng = np.random.default_rng(1)
    reference = np.concatenate([rng.normal(10, 1, 50_000), [1e6]])
    ref, cur = _summaries(reference, rng.normal(10.5, 1, 5_000))
    chart = numeric_chart(ref, cur)
    assert "clipped_high" in chart.roles
    assert sum(chart.reference) == pytest.approx(1.0, abs=1e-5)
    bins = [(lo, u) for lo, u, r in zip(chart.lower, chart.upper, chart.roles) if r == "bin"]
    assert bins[-1][1] < 100  # the bars cover the bulk, not the empty stretch up to a million


def test_categorical_bars_split_values_unseen_in_the_reference_out_of_other():
    bins = CategoricalBins(("a", "b"))
    ref = CategoricalSummary.fold(bins, np.array(["a"] * 600 + ["b"] * 400, dtype=object))
    cur = CategoricalSummary.fold(bins, np.array(["a"] * 300 + ["b"] * 300 + ["new"] * 300 + ["z"] * 100, dtype=object))
    drift = compare(ref, cur)
    feature = feature_from_summaries("f", ref, cur, drift, unseen={"new": 300, "z": 100})
    chart = feature.chart
    assert chart.labels == ("a", "b", "new", "z", OTHER)
    assert chart.roles == ("category", "category", "unseen", "unseen", "other")
    assert chart.reference == (0.6, 0.4, 0.0, 0.0, 0.0)
    assert chart.current == (0.3, 0.3, 0.3, 0.1, 0.0)


def test_many_categories_fold_into_other_beyond_the_limit():
    names = [f"v{i:03d}" for i in range(120)]
    counts = list(range(120, 0, -1))
    drift = compare(
        CategoricalSummary.from_counts(CategoricalBins(tuple(names[:50])), names, counts),
        CategoricalSummary.from_counts(CategoricalBins(tuple(names[:50])), names, counts),
    )
    feature = feature_from_category_counts("f", names, counts, names, counts, drift)
    assert len(feature.chart.labels) == MAX_CATEGORY_BARS + 1
    assert feature.chart.labels[-1] == OTHER
    assert sum(feature.chart.reference) == pytest.approx(1.0, abs=1e-5)


def test_statistics_mark_what_crossed_its_threshold_and_what_fired():
    rng = np.random.default_rng(2)
    ref, cur = _summaries(rng.normal(0, 1, 5_000), rng.normal(0.6, 1, 5_000))
    drift = compare(ref, cur)
    stats = {s.key: s for s in statistics_of(drift, DriftRule())}
    assert stats["psi"].threshold == 0.2 and stats["ks_statistic"].threshold == 0.1
    assert stats["psi"].crossed and stats["psi"].fired
    assert stats["ks_statistic"].crossed and stats["ks_statistic"].fired
    assert stats["ks_pvalue"].threshold is None and not stats["ks_pvalue"].crossed

    # Crossed but too few samples to fire: the page shows the difference.
    small_ref, small_cur = _summaries(rng.normal(0, 1, 5_000), rng.normal(1.0, 1, 100))
    small = {s.key: s for s in statistics_of(compare(small_ref, small_cur), DriftRule())}
    assert small["psi"].crossed and not small["psi"].fired


def test_evidently_numeric_bars_are_the_bins_psi_was_computed_on():
    from detectors.compare import compare_evidently
    from detectors.psi import psi_from_evidently_counts

    rng = np.random.default_rng(3)
    reference, current = rng.normal(0, 1, 3_000), rng.normal(0.3, 1.2, 2_000)
    drift = compare_evidently(reference, current, "numeric", 0, 0)
    chart = feature_from_values("x", reference, current, drift).chart
    again = psi_from_evidently_counts(np.array(chart.reference) * 3_000, np.array(chart.current) * 2_000)
    assert again == pytest.approx(drift.psi, rel=1e-4)


def test_report_json_is_the_drift_contract_plus_extra_keys():
    rng = np.random.default_rng(4)
    ref, cur = _summaries(rng.normal(0, 1, 2_000), rng.normal(0, 1, 2_000))
    drift = compare(ref, cur)
    report = ReportData(
        reference_rows=2_000,
        current_rows=2_000,
        features={"x": feature_from_summaries("x", ref, cur, drift)},
        extra={"performance_estimated": {"roc_auc": 0.71}},
    )
    out = report.as_dict()
    json.dumps(out, allow_nan=False)
    assert out["rows"] == {"reference": 2_000, "current": 2_000}
    feature = out["features"]["x"]
    for key, value in drift.as_dict().items():
        assert feature[key] == value
    assert {"chart", "thresholds", "crossed"} <= set(feature)
    assert out["performance_estimated"] == {"roc_auc": 0.71}
    assert out["rule"]["psi_threshold"] == 0.2
