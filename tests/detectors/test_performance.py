"""Performance metrics: known values, sklearn as oracle, and the summary laws."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from detectors.exact_sum import ExactSum
from detectors.performance import (
    ClassificationSummary,
    RegressionSummary,
    accuracy,
    f1,
    log_loss,
    mae,
    per_record_loss,
    precision,
    recall,
    rmse,
    roc_auc,
)

TOL = 1e-12
FAST = settings(max_examples=60, deadline=None)


def close(a: float, b: float, tol: float = TOL) -> bool:
    """Equal within ``tol`` (relative above 1), both NaN, or the same infinity."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= tol * max(1.0, abs(b))


# --------------------------------------------------------------------- known values


def test_binary_known_values() -> None:
    t = np.array([1, 0, 1, 1])
    p = np.array([1, 1, 1, 0])
    # matches at records 0 and 2: 2/4; tp = 2 (records 0, 2), fp = 1 (record 1), fn = 1 (record 3)
    assert accuracy(t, p) == 0.5
    assert precision(t, p) == 2 / 3
    assert recall(t, p) == 2 / 3
    assert f1(t, p) == 2 / 3  # 2·2 / (2·2 + 1 + 1)
    # with 0 as the positive label: tp = 0, fp = 1 (record 3), fn = 1 (record 1)
    assert precision(t, p, positive=0) == 0.0
    assert f1(t, p, positive=0) == 0.0


def test_macro_known_values() -> None:
    t = np.array(["a", "a", "b", "c"])
    p = np.array(["a", "b", "b", "b"])
    # a: tp 1, predicted 1, true 2 -> P 1,   R 1/2, F1 2/3
    # b: tp 1, predicted 3, true 1 -> P 1/3, R 1,   F1 2/(2 + 2) = 1/2
    # c: tp 0, predicted 0, true 1 -> P 0 (0/0), R 0, F1 0
    assert precision(t, p, average="macro") == pytest.approx((1 + 1 / 3) / 3, abs=TOL)
    assert recall(t, p, average="macro") == pytest.approx(0.5, abs=TOL)
    assert f1(t, p, average="macro") == pytest.approx((2 / 3 + 1 / 2) / 3, abs=TOL)


def test_zero_division_is_zero_and_empty_is_nan() -> None:
    t = np.array([0, 0, 1])
    nothing_predicted = np.array([0, 0, 0])
    assert precision(t, nothing_predicted) == 0.0  # 0 / 0
    assert recall(np.array([0, 0]), np.array([1, 0])) == 0.0  # no true positive: 0 / 0
    assert f1(np.array([0, 0]), np.array([0, 0])) == 0.0  # tp + fp + fn = 0
    empty = np.array([])
    for fn in (accuracy, precision, recall, f1, roc_auc, log_loss, mae, rmse):
        assert math.isnan(fn(empty, empty))
    assert math.isnan(precision(empty, empty, average="macro"))
    with pytest.raises(ValueError):
        precision(t, t, average="micro")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        accuracy(t, t[:2])


def test_roc_auc_known_values() -> None:
    # pairs (pos, neg): (0.35, 0.1) 1, (0.35, 0.4) 0, (0.8, 0.1) 1, (0.8, 0.4) 1 -> 3/4
    assert roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == 0.75
    # pairs: (0.5, 0.5) tie ½, (0.5, 0.2) 1, (0.9, 0.5) 1, (0.9, 0.2) 1 -> 3.5/4
    assert roc_auc(np.array([0, 1, 0, 1]), np.array([0.5, 0.5, 0.2, 0.9])) == 0.875
    assert roc_auc(np.array([True, False]), np.array([0.2, 0.1])) == 1.0  # True == 1
    assert roc_auc(np.array(["n", "p"]), np.array([0.9, 0.1]), positive="p") == 0.0
    assert math.isnan(roc_auc(np.array([1, 1]), np.array([0.2, 0.3])))  # no negative
    with pytest.raises(ValueError):
        roc_auc(np.array([0, 1]), np.array([0.2, np.nan]))


def test_log_loss_known_values() -> None:
    # −(ln 0.8 + ln 0.6) / 2
    assert log_loss(np.array([1, 0]), np.array([0.8, 0.4])) == pytest.approx(
        -(math.log(0.8) + math.log(0.6)) / 2, abs=TOL
    )
    # clipped: p = 0 for a positive costs −ln(1e-15) = 15·ln 10
    assert log_loss(np.array([1]), np.array([0.0])) == pytest.approx(15 * math.log(10), abs=TOL)
    assert log_loss(np.array([1]), np.array([0.0]), eps=1e-3) == pytest.approx(3 * math.log(10), abs=TOL)


def test_regression_known_values() -> None:
    t = np.array([1.0, 2.0, 3.0, np.nan])
    p = np.array([2.0, 2.0, 5.0, 1.0])
    # errors 1, 0, 2 (the NaN pair is dropped): MAE 3/3, RMSE sqrt(5/3)
    assert mae(t, p) == 1.0
    assert rmse(t, p) == math.sqrt(5 / 3)
    assert math.isnan(mae(np.array([np.inf]), np.array([1.0])))  # nothing left


# --------------------------------------------------------------------- sklearn oracle


@pytest.mark.parametrize("seed", range(6))
def test_classification_matches_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 400
    t = rng.integers(0, 2, n)
    p = rng.integers(0, 2, n)
    assert close(accuracy(t, p), skm.accuracy_score(t, p))
    for pos in (0, 1):
        assert close(precision(t, p, pos), skm.precision_score(t, p, pos_label=pos, zero_division=0))
        assert close(recall(t, p, pos), skm.recall_score(t, p, pos_label=pos, zero_division=0))
        assert close(f1(t, p, pos), skm.f1_score(t, p, pos_label=pos, zero_division=0))
    # multiclass, with labels never predicted (5) and never true (6) to hit 0/0
    tm = rng.integers(0, 6, n)
    pm = np.where(rng.random(n) < 0.5, tm, rng.integers(0, 5, n))
    pm[:3] = 6
    labels = np.array(["ant", "bee", "cat", "dog", "eel", "fox", "gnu"])
    for a, b in ((tm, pm), (labels[tm], labels[pm])):
        assert close(accuracy(a, b), skm.accuracy_score(a, b))
        kw = {"average": "macro", "zero_division": 0}
        assert close(precision(a, b, average="macro"), skm.precision_score(a, b, **kw))
        assert close(recall(a, b, average="macro"), skm.recall_score(a, b, **kw))
        assert close(f1(a, b, average="macro"), skm.f1_score(a, b, **kw))


@pytest.mark.parametrize("seed", range(6))
def test_scores_match_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 500
    t = rng.integers(0, 2, n)
    s = np.clip(rng.normal(0.4 + 0.2 * t, 0.25), 0.001, 0.999)
    assert close(roc_auc(t, s), skm.roc_auc_score(t, s))
    tied = np.round(s, 1)  # many ties
    assert close(roc_auc(t, tied), skm.roc_auc_score(t, tied))
    assert close(log_loss(t, s), skm.log_loss(t, s, labels=[0, 1]))
    assert close(log_loss(1 - t, s, positive=0), skm.log_loss(t, s, labels=[0, 1]))


@pytest.mark.parametrize("seed", range(6))
def test_regression_matches_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    t = rng.normal(10, 5, 300) * 10.0 ** rng.integers(-3, 4)
    p = t + rng.standard_cauchy(300)
    assert close(mae(t, p), skm.mean_absolute_error(t, p))
    assert close(rmse(t, p), skm.root_mean_squared_error(t, p))


# --------------------------------------------------------------------- summaries


def test_classification_summary_binary() -> None:
    s = ClassificationSummary.fold(
        [0, 1], np.array([0, 0, 1, 1, 1]), np.array([0, 1, 1, 1, 0]), scores=np.array([0.1, 0.6, 0.7, 0.9, np.nan])
    )
    assert s.classes == ("0", "1") and s.positive == "1" and s.score_bins == 1000
    assert s.confusion.tolist() == [[1, 1, 0], [1, 2, 0], [0, 0, 0]]
    assert s.scored == 4  # the NaN score is not scored
    m = s.metrics()
    # tp 2, fp 1, fn 1; AUC over 2 positives × 2 negatives: (0.7, 0.9) beat 0.1 and 0.6 -> 1
    assert (m["accuracy"], m["precision"], m["recall"], m["f1"], m["roc_auc"]) == (0.6, 2 / 3, 2 / 3, 2 / 3, 1.0)
    assert m["log_loss"] == pytest.approx(-(math.log(0.9) + math.log(0.4) + math.log(0.7) + math.log(0.9)) / 4, abs=TOL)
    assert s.roc_auc_error_bound() == 0.0
    flipped = ClassificationSummary.fold([0, 1], [0, 1], [0, 1], scores=[0.1, 0.9], positive=0)
    assert flipped.metrics()["roc_auc"] == 0.0


def test_score_bins_follow_the_rule() -> None:
    # bin = min(floor(clip(s, 0, 1)·4), 3); NaN is unscored
    s = np.array([-np.inf, -1.0, 0.0, 0.2499, 0.25, 0.5, 0.75, 0.999, 1.0, 1.5, np.inf, np.nan])
    t = np.array(["p"] * 6 + ["n"] * 6)
    summary = ClassificationSummary.fold(BINARY, t, t, scores=s, score_bins=4)
    assert summary.positive_scores.tolist() == [4, 1, 1, 0]  # -inf, -1, 0, 0.2499 | 0.25 | 0.5
    assert summary.negative_scores.tolist() == [0, 0, 0, 5]  # 0.75, 0.999, 1, 1.5, inf
    assert summary.scored == 11


def test_classification_summary_other_labels() -> None:
    # "x" and "y" are outside the class set; the ("x", "x") record is still correct
    s = ClassificationSummary.fold(("a", "b", "c"), ["a", "x", "x", "b"], ["a", "x", "y", "z"])
    assert s.confusion[3].tolist() == [0, 0, 0, 2]
    assert s.other_correct == 1
    m = s.metrics()
    assert m["accuracy"] == 0.5
    # a: P 1, R 1, F1 1; b: tp 0, true 1 -> 0; c: unseen, left out of the macro average
    assert (m["precision"], m["recall"], m["f1"]) == (0.5, 0.5, 0.5)
    assert math.isnan(m["roc_auc"]) and math.isnan(m["log_loss"])
    assert s.positive is None and s.score_bins == 0


def test_classification_summary_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        ClassificationSummary.fold(["a", "b", "c"], ["a"], ["a"], scores=[0.5])  # multiclass scores
    with pytest.raises(ValueError):
        ClassificationSummary.empty(["a", "b"], positive="c")
    with pytest.raises(ValueError):
        ClassificationSummary.empty(["a", "a"])
    with pytest.raises(ValueError):
        ClassificationSummary.empty(["a", "__other__"])
    with pytest.raises(ValueError):
        ClassificationSummary.empty(["a", "b", "c"], positive="a")
    with pytest.raises(ValueError):
        ClassificationSummary.fold(["a", "b"], ["a"], ["a", "b"])
    base = ClassificationSummary.empty(["a", "b"])
    for other in (
        ClassificationSummary.empty(["a", "b"], positive="a"),
        ClassificationSummary.empty(["a", "b"], score_bins=10),
        ClassificationSummary.empty(["a", "c"]),
    ):
        with pytest.raises(ValueError):
            base + other


def test_empty_summaries() -> None:
    empty = ClassificationSummary.empty(["a", "b"])
    assert all(math.isnan(v) for v in empty.metrics().values())
    assert empty == ClassificationSummary.fold(["a", "b"], [], [], scores=[])
    assert all(math.isnan(v) for v in RegressionSummary.empty().metrics().values())
    assert RegressionSummary.empty() == RegressionSummary.fold([], [])


def test_histogram_auc_is_exact_in_integers_for_huge_windows() -> None:
    s = ClassificationSummary.empty(["n", "p"], score_bins=4)
    big = 1 << 40  # Σ neg·pos ≈ 2**80 would overflow int64
    s = ClassificationSummary(
        s.classes,
        s.confusion,
        s.positive,
        4,
        np.array([0, 0, 3 * big, big], dtype=np.int64),
        np.array([big, big, 2 * big, 0], dtype=np.int64),
    )
    # pos mass (0, 0, 3, 1)·big, neg mass (1, 1, 2, 0)·big; P·N = 16·big²
    # neg bin 0 and 1: all 4·big positives above -> 2·4; neg bin 2: 1 above + 3/2 tied -> 2·2.5
    assert s.roc_auc() == (8 + 5) / 16
    assert s.roc_auc_error_bound() == 6 / 32  # 3·2 tied pairs, halved


def test_regression_summary() -> None:
    s = RegressionSummary.fold([1.0, np.nan, 3.0, 4.0], [2.0, 1.0, np.inf, 2.0])
    assert (s.count, s.missing) == (2, 2)
    assert s.metrics() == {"mae": 1.5, "rmse": math.sqrt(2.5)}
    huge = RegressionSummary.fold([-1e200, 0.0], [1e200, 0.0])  # the square overflows
    assert huge.metrics() == {"mae": 1e200, "rmse": math.inf}
    over = RegressionSummary.fold([-1.5e308], [1.5e308])  # the difference overflows
    assert over.metrics() == {"mae": math.inf, "rmse": math.inf}
    with pytest.raises(ValueError):
        s + ClassificationSummary.empty(["a", "b"])  # type: ignore[operator]


def test_per_record_loss() -> None:
    reg = per_record_loss("regression", [1.0, 2.0, np.nan], [1.5, 0.0, 1.0])
    assert reg[:2].tolist() == [0.5, 2.0] and math.isnan(reg[2])
    assert per_record_loss("classification", ["a", "b", 3], ["a", "a", "3"]).tolist() == [0.0, 1.0, 0.0]
    loss = per_record_loss("classification", [1, 0, 1], [0.8, 0.4, np.nan], positive=1)
    assert loss[:2].tolist() == pytest.approx([-math.log(0.8), -math.log(0.6)], abs=TOL)
    assert math.isnan(loss[2])
    with pytest.raises(ValueError):
        per_record_loss("ranking", [1], [1])  # type: ignore[arg-type]


def test_per_record_loss_sums_to_the_summary() -> None:
    t = np.array(["n", "p", "p", "n"])
    s = np.array([0.2, 0.9, 0.3, 0.5])
    summary = ClassificationSummary.fold(["n", "p"], t, t, scores=s)
    assert ExactSum.of(per_record_loss("classification", t, s, positive="p")) == summary.log_loss_total


# --------------------------------------------------------------------- properties

BINARY = ("n", "p")
MULTI = ("a", "b", "c")
any_score = st.floats(allow_nan=True, allow_infinity=True)
unit_score = st.floats(0.0, 1.0)


@st.composite
def classified(draw: st.DrawFn, labels: tuple[str, ...], score: st.SearchStrategy[float] | None) -> tuple:
    rows = draw(
        st.lists(
            st.tuples(st.sampled_from(labels), st.sampled_from(labels), score if score is not None else st.just(0.0)),
            max_size=60,
        )
    )
    t = np.array([r[0] for r in rows], dtype=object)
    p = np.array([r[1] for r in rows], dtype=object)
    s = np.array([r[2] for r in rows], dtype=np.float64) if score is not None else None
    return t, p, s


def _fold(classes: tuple[str, ...], data: tuple, lo: int, hi: int, bins: int = 1000) -> ClassificationSummary:
    t, p, s = data
    return ClassificationSummary.fold(classes, t[lo:hi], p[lo:hi], None if s is None else s[lo:hi], score_bins=bins)


@FAST
@given(classified(("n", "p", "q"), any_score), st.integers(0, 60), st.integers(1, 30))
def test_binary_summary_merges_exactly(data: tuple, cut: int, bins: int) -> None:
    n = data[0].size
    cut = min(cut, n)
    whole = _fold(BINARY, data, 0, n, bins)
    assert _fold(BINARY, data, 0, cut, bins) + _fold(BINARY, data, cut, n, bins) == whole
    assert ClassificationSummary.empty(BINARY, score_bins=bins) + whole == whole


@FAST
@given(classified(("a", "b", "c", "x", "y"), None), st.integers(0, 60))
def test_multiclass_summary_merges_exactly(data: tuple, cut: int) -> None:
    n = data[0].size
    cut = min(cut, n)
    whole = _fold(MULTI, data, 0, n)
    assert _fold(MULTI, data, 0, cut) + _fold(MULTI, data, cut, n) == whole
    # accuracy stays exact with labels outside the class set
    assert close(whole.metrics()["accuracy"], accuracy(data[0], data[1]))


@FAST
@given(classified(BINARY, st.floats(-0.5, 1.5)), st.integers(1, 40))
def test_binary_summary_metrics_equal_offline(data: tuple, bins: int) -> None:
    t, p, s = data
    m = ClassificationSummary.fold(BINARY, t, p, s, score_bins=bins).metrics()
    assert close(m["accuracy"], accuracy(t, p))
    assert close(m["precision"], precision(t, p, positive="p"))
    assert close(m["recall"], recall(t, p, positive="p"))
    assert close(m["f1"], f1(t, p, positive="p"))
    assert close(m["log_loss"], log_loss(t, s, positive="p"))


@FAST
@given(classified(MULTI, None))
def test_multiclass_summary_metrics_equal_offline(data: tuple) -> None:
    t, p, _ = data
    m = ClassificationSummary.fold(MULTI, t, p).metrics()
    assert close(m["accuracy"], accuracy(t, p))
    for name, fn in (("precision", precision), ("recall", recall), ("f1", f1)):
        assert close(m[name], fn(t, p, average="macro"))


grid_score = st.one_of(unit_score, st.integers(0, 20).map(lambda k: k / 20), st.floats(-1.0, 2.0))


@settings(max_examples=150, deadline=None)
@given(classified(BINARY, grid_score), st.integers(1, 50))
def test_histogram_auc_within_its_bound(data: tuple, bins: int) -> None:
    t, p, s = data
    summary = ClassificationSummary.fold(BINARY, t, p, s, score_bins=bins)
    exact = roc_auc(t, s, positive="p")
    hist, bound = summary.roc_auc(), summary.roc_auc_error_bound()
    if math.isnan(exact):
        assert math.isnan(hist) and math.isnan(bound)
        return
    assert 0.0 <= bound <= 0.5
    assert abs(hist - exact) <= bound + TOL
    if bound == 0.0:  # no bin holds both a positive and a negative: no pair lost its order
        assert close(hist, exact)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=40, unique=True), st.data())
def test_histogram_auc_exact_on_distinct_bins(raw: list[float], data: st.DataObject) -> None:
    # Scores at bin centres, one per bin: every pair lies in two bins, the bound is 0.
    bins = 1000
    chosen = sorted({min(int(v * bins), bins - 1) for v in raw})
    s = (np.array(chosen) + 0.5) / bins
    t = np.array(data.draw(st.lists(st.sampled_from(BINARY), min_size=len(s), max_size=len(s))))
    summary = ClassificationSummary.fold(BINARY, t, t, s)
    exact = roc_auc(t, s, positive="p")
    assert summary.roc_auc_error_bound() == 0.0 or math.isnan(exact)
    assert close(summary.roc_auc(), exact)


pair_value = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-1e6, 1e6),
)


@FAST
@given(st.lists(st.tuples(pair_value, pair_value), max_size=60), st.integers(0, 60))
def test_regression_summary_merges_exactly(rows: list[tuple[float, float]], cut: int) -> None:
    t = np.array([r[0] for r in rows], dtype=np.float64)
    p = np.array([r[1] for r in rows], dtype=np.float64)
    cut = min(cut, t.size)
    whole = RegressionSummary.fold(t, p)
    assert RegressionSummary.fold(t[:cut], p[:cut]) + RegressionSummary.fold(t[cut:], p[cut:]) == whole
    assert whole.count + whole.missing == t.size
    m = whole.metrics()
    assert close(m["mae"], mae(t, p)) and close(m["rmse"], rmse(t, p))


@FAST
@given(classified(("n", "p", "q"), any_score), st.integers(1, 30))
def test_classification_round_trip(data: tuple, bins: int) -> None:
    for classes, d in ((BINARY, data), (MULTI + ("d",), (data[0], data[1], None))):
        s = _fold(classes, d, 0, d[0].size, bins)
        encoded = s.to_dict()
        assert ClassificationSummary.from_dict(json.loads(json.dumps(encoded))) == s
        assert ClassificationSummary.from_dict(encoded) == s


@FAST
@given(st.lists(st.tuples(pair_value, pair_value), max_size=40))
def test_regression_round_trip(rows: list[tuple[float, float]]) -> None:
    s = RegressionSummary.fold([r[0] for r in rows], [r[1] for r in rows])
    assert RegressionSummary.from_dict(json.loads(json.dumps(s.to_dict()))) == s


def test_from_dict_checks_the_type() -> None:
    with pytest.raises(ValueError):
        RegressionSummary.from_dict(ClassificationSummary.empty(["a", "b"]).to_dict())
    with pytest.raises(ValueError):
        ClassificationSummary.from_dict(RegressionSummary().to_dict())
