"""Label-free performance estimation (detectors/performance_estimation.py) tested as statistics.

* the isotonic calibration against scikit-learn's and scipy's;
* known values: a calibrated model's expected accuracy is its mean max-probability, an
  uninformative model's ROC AUC is ½, a separating one scores 1, the expected ROC AUC is
  the mean realised ROC AUC over label draws;
* properties: windows merge before estimating, estimates are scale-free and lie between
  those of the windows merged, accuracy and recall move the way they must;
* the standard error against the spread of estimates over simulated stationary windows,
  and the false-alarm rate of the "estimated performance dropped" rule (seeded, bounded
  by binomial tolerances; ``benchmarks/performance_estimation.py`` has the full table);
* the profile: fitted at build time, stored, loaded, absent from old profiles.

The cross-check against NannyML's CBPE is in test_performance_estimation_nannyml.py.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from detectors.binning import NumericBins
from detectors.performance import roc_auc
from detectors.performance_estimation import (
    METRICS,
    BinaryCalibration,
    BinnedCalibration,
    CalibrationMap,
    ClassScores,
    DropRule,
    EstimatedPerformance,
    MulticlassCalibration,
    calibration_from_json,
    calibration_to_json,
    estimate_performance,
    fit_binary_calibration,
    fit_multiclass_calibration,
    performance_dropped,
    pool_adjacent_violators,
    reference_estimate,
)
from detectors.profile import CALIBRATION_KEY, ProfileFormatError, ReferenceProfile, build_profile
from detectors.summary import NumericSummary

# --------------------------------------------------------------------------- data


def miscalibrated(rng: np.random.Generator, n: int, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Scores from a two-component beta mixture, outcomes with P(y = 1 | s) = s^1.4.

    The model is miscalibrated (it overstates the positive class), so estimates are only
    right through the calibration. ``shift`` moves the negatives' component towards the
    positives' (covariate shift that makes the model's job harder).
    """
    positive_like = rng.uniform(size=n) < 0.4
    scores = np.where(positive_like, rng.beta(5, 2, size=n), rng.beta(2 + 3 * shift, 5 - 2 * shift, size=n))
    outcomes = rng.uniform(size=n) < scores**1.4
    return scores, outcomes


def calibrated_with(bins: NumericBins, scores: np.ndarray, calibration: CalibrationMap, threshold: float = 0.5):
    """A BinaryCalibration over ``bins`` that uses a given map instead of fitting one."""
    table = BinnedCalibration.from_reference(bins, scores, calibration, threshold)
    return BinaryCalibration(calibration, table, threshold, "1", scores.size, {}, {})


def same(*estimates: EstimatedPerformance) -> bool:
    """Equal estimates, NaN equal to NaN (an empty window's metrics)."""
    first = estimates[0]
    return all(
        e.count == first.count
        and all(
            np.array_equal([d[m] for m in sorted(d)], [f[m] for m in sorted(f)], equal_nan=True)
            for d, f in ((e.metrics, first.metrics), (e.stderr, first.stderr), (e.confusion, first.confusion))
        )
        for e in estimates[1:]
    )


@pytest.fixture(scope="module")
def reference() -> tuple[NumericBins, BinaryCalibration, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(20261207)
    scores, outcomes = miscalibrated(rng, 50_000)
    bins = NumericBins.from_reference(scores)
    return bins, fit_binary_calibration(bins, scores, outcomes), scores, outcomes


# --------------------------------------------------------------------------- calibration


score_samples = st.lists(
    st.tuples(st.integers(0, 40).map(lambda v: v / 40), st.booleans()),  # coarse scores: many ties
    min_size=1,
    max_size=200,
)


@given(score_samples)
def test_isotonic_map_equals_scikit_learn(sample: list[tuple[float, bool]]) -> None:
    sklearn_isotonic = pytest.importorskip("sklearn.isotonic")
    scores = np.array([s for s, _ in sample])
    outcomes = np.array([y for _, y in sample], dtype=np.float64)
    ours = CalibrationMap.fit_isotonic(scores, outcomes)
    theirs = sklearn_isotonic.IsotonicRegression(out_of_bounds="clip").fit(scores, outcomes)
    grid = np.linspace(-0.1, 1.1, 241)
    np.testing.assert_allclose(ours(grid), theirs.predict(grid), rtol=0, atol=1e-12)


@given(
    st.lists(
        st.tuples(st.floats(-5, 5, allow_nan=False), st.floats(0.01, 100, allow_nan=False)),
        min_size=1,
        max_size=100,
    )
)
def test_pool_adjacent_violators_equals_scipy(pairs: list[tuple[float, float]]) -> None:
    from scipy.optimize import isotonic_regression

    y = np.array([v for v, _ in pairs])
    w = np.array([w for _, w in pairs])
    ours = pool_adjacent_violators(y, w)
    assert np.all(np.diff(ours) >= -1e-12)
    np.testing.assert_allclose(ours, isotonic_regression(y, weights=w).x, rtol=1e-9, atol=1e-9)


def test_calibration_map_keeps_only_the_ends_of_flat_runs() -> None:
    m = CalibrationMap.fit_isotonic(np.arange(10.0), np.array([0, 0, 0, 1, 0, 1, 1, 1, 1, 1]))
    assert m.x.tolist() == [0.0, 2.0, 3.0, 4.0, 5.0, 9.0]
    assert m(np.array([-1.0, 3.5, 20.0])).tolist() == [0.0, 0.5, 1.0]


def test_calibration_map_rejects_unordered_knots() -> None:
    with pytest.raises(ValueError):
        CalibrationMap(np.array([0.0, 1.0]), np.array([0.7, 0.2]))


# --------------------------------------------------------------------------- known values


def test_a_calibrated_model_is_expected_to_score_its_mean_max_probability() -> None:
    rng = np.random.default_rng(1)
    scores = rng.uniform(size=10_000)
    bins = NumericBins.from_reference(scores)
    cal = calibrated_with(bins, scores, CalibrationMap.identity())
    est = cal.estimate(NumericSummary.fold(bins, scores).counts)
    above = scores >= 0.5
    assert est.metrics["accuracy"] == pytest.approx(np.mean(np.maximum(scores, 1 - scores)), abs=1e-12)
    assert est.metrics["precision"] == pytest.approx(scores[above].mean(), abs=1e-12)
    assert est.metrics["recall"] == pytest.approx(scores[above].sum() / scores.sum(), abs=1e-12)
    tp, pp, p = scores[above].sum(), above.sum(), scores.sum()
    assert est.metrics["f1"] == pytest.approx(2 * tp / (pp + p), abs=1e-12)
    assert est.confusion["tp"] + est.confusion["fp"] + est.confusion["fn"] + est.confusion["tn"] == pytest.approx(
        scores.size
    )


def test_an_uninformative_model_has_roc_auc_one_half() -> None:
    rng = np.random.default_rng(2)
    scores = rng.uniform(size=5_000)
    bins = NumericBins.from_reference(scores)
    base_rate = CalibrationMap(np.array([0.0]), np.array([0.3]))  # P(y = 1 | s) = 0.3 whatever s
    est = calibrated_with(bins, scores, base_rate).estimate(NumericSummary.fold(bins, scores).counts)
    above = np.mean(scores >= 0.5)
    assert est.metrics["roc_auc"] == pytest.approx(0.5, abs=1e-12)
    assert est.metrics["accuracy"] == pytest.approx(0.3 * above + 0.7 * (1 - above), abs=1e-12)
    assert est.metrics["precision"] == pytest.approx(0.3, abs=1e-12)


def test_a_separating_model_scores_one() -> None:
    rng = np.random.default_rng(3)
    scores = np.concatenate([rng.uniform(0.0, 0.3, 1000), rng.uniform(0.7, 1.0, 1000)])
    bins = NumericBins.from_reference(scores)
    cal = fit_binary_calibration(bins, scores, scores > 0.5)
    est = cal.estimate(NumericSummary.fold(bins, scores).counts)
    assert est.metrics == pytest.approx(dict.fromkeys(METRICS, 1.0), abs=1e-12)


def test_expected_roc_auc_is_the_mean_roc_auc_over_label_draws() -> None:
    rng = np.random.default_rng(4)
    scores = rng.beta(2, 2, size=2_000)
    bins = NumericBins.from_reference(scores, fine_bins=2_000)
    cal = calibrated_with(bins, scores, CalibrationMap.identity())
    est = cal.estimate(NumericSummary.fold(bins, scores).counts)
    draws = np.array([roc_auc(rng.uniform(size=scores.size) < scores, scores) for _ in range(400)])
    assert abs(draws.mean() - est.metrics["roc_auc"]) < 4 * draws.std() / math.sqrt(draws.size) + 1e-3
    accuracy = np.array(
        [np.mean((rng.uniform(size=scores.size) < scores) == (scores >= 0.5)) for _ in range(400)]
    ).mean()
    assert accuracy == pytest.approx(est.metrics["accuracy"], abs=2e-3)


def test_the_reference_estimate_equals_its_realised_confusion_metrics(reference) -> None:
    # Isotonic regression's blocks keep the outcome mean: over the reference the expected
    # confusion counts are the realised ones, up to the one block that straddles the threshold.
    bins, cal, scores, outcomes = reference
    predicted = scores >= 0.5
    tp = np.sum(predicted & outcomes)
    realised = {
        "accuracy": np.mean(predicted == outcomes),
        "precision": tp / predicted.sum(),
        "recall": tp / outcomes.sum(),
        "f1": 2 * tp / (predicted.sum() + outcomes.sum()),
        "roc_auc": roc_auc(outcomes, scores),
    }
    for metric, value in realised.items():
        assert cal.reference[metric] == pytest.approx(value, abs=2e-3), metric


def test_empty_and_degenerate_windows() -> None:
    scores = np.linspace(0, 1, 101)
    bins = NumericBins.from_reference(scores)
    cal = fit_binary_calibration(bins, scores, scores > 0.5)
    empty = cal.estimate(np.zeros(bins.n_fine, dtype=np.int64))
    assert empty.count == 0 and all(math.isnan(v) for v in empty.metrics.values())
    assert empty.as_dict() == dict.fromkeys(METRICS)
    only_negatives = cal.estimate(NumericSummary.fold(bins, np.full(50, 0.05)).counts)
    assert math.isnan(only_negatives.metrics["roc_auc"])
    assert only_negatives.metrics["precision"] == 0.0 and only_negatives.metrics["accuracy"] == 1.0
    with pytest.raises(ValueError):
        cal.estimate(np.zeros(3))


def test_band_is_clipped_to_the_unit_interval() -> None:
    est = EstimatedPerformance({"accuracy": 0.99}, {"accuracy": 0.01}, 100)
    assert est.band(3) == {"accuracy": (pytest.approx(0.96), 1.0)}


# --------------------------------------------------------------------------- properties


window_scores = st.lists(st.floats(-0.2, 1.2, allow_nan=False), min_size=0, max_size=300).map(np.array)


@settings(max_examples=60)
@given(window_scores, window_scores)
def test_merging_windows_then_estimating_is_estimating_the_merged_window(reference, a, b) -> None:
    bins, cal, _, _ = reference
    fa, fb = NumericSummary.fold(bins, a), NumericSummary.fold(bins, b)
    whole = NumericSummary.fold(bins, np.concatenate([a, b]))
    merged = cal.estimate((fa + fb).counts)
    assert same(merged, cal.estimate(whole.counts), cal.estimate(NumericSummary.sum([fa, fb]).counts))


@settings(max_examples=60)
@given(window_scores.filter(lambda v: v.size > 0), st.integers(2, 1000))
def test_estimates_do_not_depend_on_the_window_size_only_their_errors_do(reference, values, factor) -> None:
    bins, cal, _, _ = reference
    counts = NumericSummary.fold(bins, values).counts
    once, many = cal.estimate(counts), cal.estimate(counts * factor)
    for m in METRICS:
        assert many.metrics[m] == pytest.approx(once.metrics[m], abs=1e-9, nan_ok=True)
        assert many.stderr[m] == pytest.approx(once.stderr[m] / math.sqrt(factor), rel=1e-9)
        assert math.isnan(once.metrics[m]) or 0.0 <= once.metrics[m] <= 1.0


@settings(max_examples=60)
@given(window_scores.filter(lambda v: v.size > 0), window_scores.filter(lambda v: v.size > 0))
def test_merged_confusion_metrics_lie_between_the_windows_merged(reference, a, b) -> None:
    # Accuracy is a mean and precision, recall and F1 are ratios of sums: the merged
    # window's value is a weighted mean (a mediant) of the two windows' values.
    bins, cal, _, _ = reference
    ea = cal.estimate(NumericSummary.fold(bins, a).counts)
    eb = cal.estimate(NumericSummary.fold(bins, b).counts)
    both = cal.estimate(NumericSummary.fold(bins, np.concatenate([a, b])).counts)
    denominators = {
        "accuracy": lambda e: e.count,
        "precision": lambda e: e.confusion["tp"] + e.confusion["fp"],
        "recall": lambda e: e.confusion["tp"] + e.confusion["fn"],
        "f1": lambda e: 2 * e.confusion["tp"] + e.confusion["fp"] + e.confusion["fn"],
    }
    for metric, denominator in denominators.items():
        if denominator(ea) > 1e-9 and denominator(eb) > 1e-9:
            low, high = sorted((ea.metrics[metric], eb.metrics[metric]))
            assert low - 1e-12 <= both.metrics[metric] <= high + 1e-12, metric


@settings(max_examples=60)
@given(window_scores.filter(lambda v: v.size > 0), st.floats(0.0, 1.0), st.integers(1, 50))
def test_accuracy_and_recall_move_towards_what_is_added(reference, values, added, copies) -> None:
    bins, cal, _, _ = reference
    before = cal.estimate(NumericSummary.fold(bins, values).counts)
    after = cal.estimate(NumericSummary.fold(bins, np.concatenate([values, np.full(copies, added)])).counts)
    table = cal.table
    b = int(bins.fine_index(np.array([added]))[0])
    right = 1 - table.predicted[b] - table.positive[b] + 2 * table.true_positive[b]  # P(correct) in that bin
    if right >= before.metrics["accuracy"]:
        assert after.metrics["accuracy"] >= before.metrics["accuracy"] - 1e-12
    else:
        assert after.metrics["accuracy"] <= before.metrics["accuracy"] + 1e-12
    if table.predicted[b] == 1.0 and table.positive[b] > 0:  # every added record is predicted positive
        assert after.metrics["recall"] >= before.metrics["recall"] - 1e-12


# --------------------------------------------------------------------------- standard errors


def test_stderr_is_the_spread_of_estimates_over_stationary_windows(reference) -> None:
    bins, cal, scores, _ = reference
    shares = np.bincount(bins.fine_index(scores), minlength=bins.n_fine) / scores.size
    rng = np.random.default_rng(5)
    n = 2_000
    estimates = [cal.estimate(rng.multinomial(n, shares)) for _ in range(600)]
    for m in METRICS:
        spread = np.std([e.metrics[m] for e in estimates], ddof=1)
        # the sd of 600 normal draws is within ±10 % of σ with probability > 0.98
        assert spread == pytest.approx(estimates[0].stderr[m], rel=0.12), m


def test_false_alarm_rate_of_the_drop_rule_on_stationary_windows(reference) -> None:
    """Fresh windows from the reference's own process: how often does the rule fire?

    One-sided normal rates are 2.28 % at k = 2 and 0.135 % at k = 3; the counts must lie
    inside generous binomial bounds around them (and k = 3 must stay rare).
    """
    _, cal, _, _ = reference
    bins = reference[0]
    rng = np.random.default_rng(6)
    windows, n = 2_000, 2_000
    ref = EstimatedPerformance(dict(cal.reference), {m: cal.sigma[m] / math.sqrt(cal.rows) for m in METRICS}, cal.rows)
    fired2 = dict.fromkeys(METRICS, 0)
    fired3 = dict.fromkeys(METRICS, 0)
    for _ in range(windows):
        scores, _ = miscalibrated(rng, n)
        est = cal.estimate(NumericSummary.fold(bins, scores).counts)
        for m, hit in performance_dropped(est, ref, DropRule(k=2, min_drop=0)).items():
            fired2[m] += hit
        for m, hit in performance_dropped(est, ref, DropRule(k=3, min_drop=0)).items():
            fired3[m] += hit
    low, high = stats.binom.ppf([1e-4, 1 - 1e-4], windows, [0.0228 / 2, 0.0228 * 2])
    for m in METRICS:
        assert low <= fired2[m] <= high, (m, fired2[m])
        assert fired3[m] <= stats.binom.ppf(1 - 1e-4, windows, 0.00135 * 3), (m, fired3[m])


def test_the_drop_rule_fires_on_a_harder_window_and_respects_its_gates(reference) -> None:
    bins, cal, _, _ = reference
    rng = np.random.default_rng(7)
    ref = EstimatedPerformance(dict(cal.reference), {m: 0.0 for m in METRICS}, cal.rows)
    harder, _ = miscalibrated(rng, 5_000, shift=0.6)
    est = cal.estimate(NumericSummary.fold(bins, harder).counts)
    assert est.metrics["accuracy"] < cal.reference["accuracy"] - 0.02
    fired = performance_dropped(est, ref)
    assert fired["accuracy"] and fired["roc_auc"]  # F1 need not fall: more records now pass the threshold
    small = cal.estimate(NumericSummary.fold(bins, harder[:400]).counts)
    assert not any(performance_dropped(small, ref).values())  # under min_samples
    assert not any(performance_dropped(est, ref, DropRule(min_drop=0.5)).values())


# --------------------------------------------------------------------------- multiclass


def three_classes(rng: np.random.Generator, n: int) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Softmax scores of three classes, labels drawn from a tempered version of them."""
    logits = rng.normal(size=(n, 3)) * 1.5
    scores = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    truth = np.exp(logits * 0.8) / np.exp(logits * 0.8).sum(axis=1, keepdims=True)
    labels = (rng.uniform(size=(n, 1)) > truth.cumsum(axis=1)).sum(axis=1)
    names = np.array(["a", "b", "c"])
    return {k: scores[:, i] for i, k in enumerate(names)}, names[labels], names[scores.argmax(axis=1)]


def test_multiclass_estimates_follow_the_realised_metrics() -> None:
    rng = np.random.default_rng(8)
    scores, labels, predicted = three_classes(rng, 40_000)
    bins = {k: NumericBins.from_reference(v) for k, v in scores.items()}
    cal = fit_multiclass_calibration(bins, scores, labels, predicted)
    window_scores, window_labels, window_predicted = three_classes(rng, 20_000)
    est = cal.estimate(ClassScores.fold(bins, window_scores, window_predicted))
    assert est.metrics["accuracy"] == pytest.approx(np.mean(window_labels == window_predicted), abs=0.01)
    auc = np.mean([roc_auc(window_labels == k, window_scores[k]) for k in scores])
    assert est.metrics["roc_auc"] == pytest.approx(auc, abs=0.01)
    recalls = [np.mean(window_predicted[window_labels == k] == k) for k in scores]
    assert est.metrics["recall"] == pytest.approx(np.mean(recalls), abs=0.015)
    assert set(est.per_class) == {"a", "b", "c"}


def test_multiclass_windows_merge_and_their_stderr_matches_the_spread() -> None:
    rng = np.random.default_rng(9)
    scores, labels, predicted = three_classes(rng, 20_000)
    bins = {k: NumericBins.from_reference(v) for k, v in scores.items()}
    cal = fit_multiclass_calibration(bins, scores, labels, predicted)
    parts = [three_classes(rng, 1_000) for _ in range(300)]
    folded = [ClassScores.fold(bins, s, p) for s, _, p in parts]
    whole = ClassScores.fold(
        bins,
        {k: np.concatenate([s[k] for s, _, _ in parts[:2]]) for k in scores},
        np.concatenate([p for _, _, p in parts[:2]]),
    )
    assert cal.estimate(folded[0] + folded[1]) == cal.estimate(whole) == cal.estimate(ClassScores.sum(folded[:2]))
    estimates = [cal.estimate(f) for f in folded]
    for m in METRICS:
        spread = np.std([e.metrics[m] for e in estimates], ddof=1)
        assert spread == pytest.approx(estimates[0].stderr[m], rel=0.2), m


# --------------------------------------------------------------------------- profile


def _table(rng: np.random.Generator, n: int = 4_000) -> pa.Table:
    scores, outcomes = miscalibrated(rng, n)
    return pa.table({"x": rng.normal(size=n), "score": scores, "label": outcomes.astype(np.int64)})


def test_a_profile_built_from_scores_and_labels_carries_its_calibration() -> None:
    rng = np.random.default_rng(10)
    table = _table(rng)
    profile = build_profile(table, model="m", model_version="1", created_at=0.0, prediction="score", label="label")
    assert isinstance(profile.calibration, BinaryCalibration)
    assert profile.calibration.table.n_bins == profile.prediction.bins.n_fine
    again = ReferenceProfile.from_table(profile.to_table())
    assert again.calibration == profile.calibration and again == profile
    window = NumericSummary.fold(profile.prediction.bins, miscalibrated(rng, 1_000)[0])
    assert estimate_performance(again, window) == estimate_performance(profile, window)
    ref = reference_estimate(profile)
    assert ref.count == 4_000 and ref.metrics == profile.calibration.reference
    scores, labels = table["score"].to_numpy(), table["label"].to_numpy() == 1
    assert fit_binary_calibration(profile.prediction.bins, scores, labels) == profile.calibration


def test_profiles_without_a_calibration_still_load() -> None:
    rng = np.random.default_rng(11)
    profile = build_profile(
        _table(rng), model="m", model_version="1", created_at=0.0, prediction="score", label="label"
    )
    table = profile.to_table()
    old = table.replace_schema_metadata({k: v for k, v in table.schema.metadata.items() if k != CALIBRATION_KEY})
    loaded = ReferenceProfile.from_table(old)
    assert loaded.calibration is None and loaded.prediction == profile.prediction
    with pytest.raises(ValueError, match="no calibration"):
        estimate_performance(loaded, profile.prediction)
    unlabelled = build_profile(_table(rng), model="m", model_version="1", created_at=0.0, prediction="score")
    assert unlabelled.calibration is None


def test_a_calibration_that_does_not_fit_the_bins_is_refused() -> None:
    rng = np.random.default_rng(12)
    profile = build_profile(
        _table(rng), model="m", model_version="1", created_at=0.0, prediction="score", label="label"
    )
    small_bins = NumericBins.from_reference(np.arange(10.0), fine_bins=10, psi_bins=10)
    other = fit_binary_calibration(small_bins, np.arange(10.0), np.arange(10) > 4)
    table = profile.to_table()
    metadata = {**table.schema.metadata, CALIBRATION_KEY: calibration_to_json(other).encode()}
    with pytest.raises(ProfileFormatError, match="calibration"):
        ReferenceProfile.from_table(table.replace_schema_metadata(metadata))
    with pytest.raises(ValueError):
        calibration_from_json('{"format": 99}')


def test_the_profile_threshold_decides_predicted_classes() -> None:
    rng = np.random.default_rng(13)
    table = _table(rng)
    profile = build_profile(
        table, model="m", model_version="1", created_at=0.0, prediction="score", label="label", threshold=0.7
    )
    scores, labels = table["score"].to_numpy(), table["label"].to_numpy() == 1
    assert profile.calibration.threshold == 0.7
    assert profile.metadata.performance["accuracy"] == pytest.approx(np.mean((scores >= 0.7) == labels))
    assert profile.calibration.reference["accuracy"] == pytest.approx(np.mean((scores >= 0.7) == labels), abs=5e-3)


def test_a_multiclass_profile_keeps_its_class_score_bins() -> None:
    rng = np.random.default_rng(14)
    scores, labels, predicted = three_classes(rng, 6_000)
    table = pa.table(
        {**{f"p_{k}": v for k, v in scores.items()}, "x": rng.normal(size=6_000), "pred": predicted, "y": labels}
    )
    profile = build_profile(
        table,
        model="m",
        model_version="1",
        created_at=0.0,
        prediction="pred",
        label="y",
        class_scores={k: f"p_{k}" for k in scores},
    )
    assert profile.metadata.features == ("x",)
    assert isinstance(profile.calibration, MulticlassCalibration)
    assert profile.calibration.columns == {k: f"p_{k}" for k in scores}
    again = ReferenceProfile.from_table(profile.to_table())
    assert again.calibration == profile.calibration and again.class_scores == profile.class_scores
    assert set(again.class_scores) == {"a", "b", "c"}
    window = ClassScores.fold({k: s.bins for k, s in again.class_scores.items()}, scores, predicted)
    est = estimate_performance(again, window)
    assert est.metrics == pytest.approx(profile.calibration.reference, abs=1e-12)
    with pytest.raises(ValueError):
        estimate_performance(again, again.class_scores["a"])
