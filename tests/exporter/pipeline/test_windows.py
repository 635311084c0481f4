import numpy as np
import pyarrow as pa
import pytest

from detectors.decision import DriftRule
from detectors.profile import build_profile
from exporter.demo.synthetic import drifted_columns, label_log, prediction_log, synthetic_table
from exporter.pipeline.buckets import Bucket
from exporter.pipeline.evaluation import ModelIdentity, evaluate_model
from exporter.pipeline.label_join import LabelJoiner
from exporter.pipeline.partial import label_rows
from exporter.pipeline.request_keys import request_keys
from exporter.pipeline.windows import ModelWindows, WindowSpec
from exporter.records import Reason

SHAPE = {"numeric": 4, "categorical": 2, "drifted": 2}
WINDOWS = [WindowSpec("5m", 60, 5), WindowSpec("1h", 600, 6)]


@pytest.fixture(scope="module")
def profile():
    return build_profile(
        synthetic_table(20_000, seed=1, **SHAPE),
        model="m",
        model_version="1",
        created_at=0.0,
        prediction="prediction",
        label="label",
    )


def test_batches_fold_into_every_window_and_sum_exactly(profile):
    store = ModelWindows(profile, WINDOWS, allowed_lateness=60)
    table = synthetic_table(3_000, seed=2, **SHAPE)
    log = prediction_log(table, "m", "1", np.linspace(1000, 1299, 3_000))
    for start in range(0, 3_000, 500):  # six batches
        outcome = store.fold_predictions(log.slice(start, 500))
        assert outcome.accepted == 500 and outcome.late == 0
    whole = ModelWindows(profile, WINDOWS, allowed_lateness=60)
    whole.fold_predictions(log)
    for name in ("5m", "1h"):
        assert store.window(name, 1300).records == 3_000
        for feature in profile.metadata.features:
            assert store.window(name, 1300).features[feature] == whole.window(name, 1300).features[feature]
    assert sorted(store.buckets["5m"]) == [960, 1020, 1080, 1140, 1200, 1260] and sorted(store.buckets["1h"]) == [
        600,
        1200,
    ]


def test_window_only_sums_recent_buckets(profile):
    store = ModelWindows(profile, WINDOWS, allowed_lateness=1_000)
    table = synthetic_table(1_000, seed=3, **SHAPE)
    store.fold_predictions(prediction_log(table, "m", "1", np.full(1_000, 100.0)))
    store.fold_predictions(prediction_log(table, "m", "1", np.full(1_000, 1000.0)))
    assert store.window("5m", 1010).records == 1_000  # the bucket at 100 s is out of the 5-minute span
    assert store.window("1h", 1010).records == 2_000
    store.expire(10_000)
    assert store.buckets["5m"] == {} and store.buckets["1h"] == {}


def test_late_records_are_counted_not_folded(profile):
    store = ModelWindows(profile, WINDOWS, allowed_lateness=30)
    table = synthetic_table(100, seed=4, **SHAPE)
    store.fold_predictions(prediction_log(table, "m", "1", np.full(100, 1000.0)))
    outcome = store.fold_predictions(prediction_log(table, "m", "1", np.r_[np.full(60, 900.0), np.full(40, 990.0)]))
    assert (outcome.accepted, outcome.late) == (40, 60)


def test_text_in_a_numeric_feature_rejects_only_those_rows(profile):
    store = ModelWindows(profile, WINDOWS, allowed_lateness=30)
    log = prediction_log(synthetic_table(10, seed=5, **SHAPE), "m", "1", np.full(10, 1000.0))
    values = [str(v) for v in log.column("f.num_00").to_pylist()]
    values[3] = "abc"
    log = log.set_column(log.column_names.index("f.num_00"), "f.num_00", pa.array(values))
    outcome = store.fold_predictions(log)
    assert outcome.accepted == 9
    assert [p.reason for p in outcome.problems] == [Reason.BAD_FEATURE_VALUE]
    assert outcome.problems[0].rows.tolist() == [3]


def test_absent_feature_counts_as_missing(profile):
    store = ModelWindows(profile, WINDOWS, allowed_lateness=30)
    log = prediction_log(synthetic_table(50, seed=6, **SHAPE), "m", "1", np.full(50, 1000.0)).drop(["f.cat_0"])
    store.fold_predictions(log)
    assert store.window("5m", 1000).features["cat_0"].missing == 50


def test_drift_performance_and_staleness_are_evaluated(profile):
    store = ModelWindows(profile, WINDOWS, allowed_lateness=600)
    joiner = LabelJoiner(ttl_seconds=600, max_pending=100_000)
    drifted = synthetic_table(5_000, seed=7, drift=True, **SHAPE)
    times = np.linspace(1000, 1200, 5_000)
    log = prediction_log(drifted, "m", "1", times)
    store.fold_predictions(log)
    joiner.add_predictions(
        "m",
        "1",
        request_keys("m", log.column("request_id")),
        times.tolist(),
        log.column("prediction_score").to_pylist(),
        [None] * 5_000,
        now=1200,
    )
    labels = label_log(drifted, "m", times + 100)
    store.fold_labels(labels)
    for _model, joined in joiner.add_labels(label_rows("m", labels), now=1300).items():
        store.fold_joined([joined])
    result = evaluate_model(ModelIdentity("m", "1"), store, lambda feature: DriftRule(), now=1300)
    window = result.windows["1h"]
    assert window.samples == 5_000
    assert {f for f, d in window.features.items() if d.drift} == set(drifted_columns(**SHAPE))
    assert window.performance["roc_auc"] < result.reference_performance["roc_auc"] - 0.05  # concept drift
    assert window.labels_joined == 5_000 and joiner.counts["m"].joined == 5_000
    assert window.loss is not None and window.prediction is not None and window.label is not None
    assert result.last_prediction_at == 1200 and result.last_label_at == pytest.approx(1300)


def _state(store: ModelWindows) -> dict:
    return {
        name: {
            start: (b.records, {f: s for f, s in b.features.items()}, b.prediction) for start, b in sorted(ring.items())
        }
        for name, ring in store.buckets.items()
    }


def test_a_batch_is_judged_against_what_came_before_it(profile):
    """One batch (a poll, a partial, an edge summary) has one horizon: nothing in it is late
    behind another of its records, as the same tables folded one by one would be."""
    logs = [
        prediction_log(synthetic_table(100, seed=10 + i, **SHAPE), "m", "1", np.full(100, t))
        for i, t in enumerate((2000.0, 1000.0))
    ]
    together = ModelWindows(profile, WINDOWS, allowed_lateness=300)
    outcome = together.fold_predictions(pa.concat_tables(logs))
    assert (outcome.accepted, outcome.late) == (200, 0)
    one_by_one = ModelWindows(profile, WINDOWS, allowed_lateness=300)
    outcomes = [one_by_one.fold_predictions(log) for log in logs]
    assert [(o.accepted, o.late) for o in outcomes] == [(100, 0), (0, 100)]
    assert together.newest_event == one_by_one.newest_event == 2000.0


def test_a_slot_is_late_only_when_it_ends_before_the_horizon(profile):
    """Lateness is per slot (60 s here): newest 2000 s, 300 s allowed → horizon 1700 s. The slot
    [1620, 1680) is late; [1680, 1740) is kept whole, its record at 1690 s included."""
    store = ModelWindows(profile, WINDOWS, allowed_lateness=300)
    table = synthetic_table(3, seed=11, **SHAPE)
    store.fold_predictions(prediction_log(table.slice(0, 1), "m", "1", np.array([2000.0])))
    outcome = store.fold_predictions(prediction_log(table.slice(1, 2), "m", "1", np.array([1650.0, 1690.0])))
    assert (outcome.accepted, outcome.late) == (1, 1)
    assert store.window("1h", 2000).records == 2


def test_rows_in_any_time_order_fold_into_their_buckets(profile):
    times = np.random.default_rng(7).permutation(np.linspace(1000, 1299, 900))
    log = prediction_log(synthetic_table(900, seed=8, **SHAPE), "m", "1", times)
    shuffled = ModelWindows(profile, WINDOWS, allowed_lateness=600)
    shuffled.fold_predictions(log)
    order = np.argsort(times, kind="stable")
    ordered = ModelWindows(profile, WINDOWS, allowed_lateness=600)
    ordered.fold_predictions(log.take(pa.array(order)))
    assert _state(shuffled) == _state(ordered)


def test_buckets_sum_in_one_step_as_they_add(profile):
    store = ModelWindows(profile, WINDOWS, allowed_lateness=1_000)
    store.fold_predictions(
        prediction_log(synthetic_table(600, seed=9, **SHAPE), "m", "1", np.linspace(1000, 1299, 600))
    )
    parts = list(store.buckets["5m"].values())
    added = parts[0]
    for part in parts[1:]:
        added = added + part
    summed = Bucket.sum(parts)
    assert summed.records == added.records == 600
    assert summed.features == added.features and summed.prediction == added.prediction
    assert Bucket.sum([]).records == 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_numeric_columns_folded_together_equal_folding_each(profile, seed, monkeypatch):
    """The vectorised fold (all numeric columns at once) against the per-column fold, with
    NaN/±inf/out-of-range values, an absent feature, an integer column, text that is not a
    number, late rows and a batch of several chunks folded one by one."""
    import exporter.pipeline.buckets as buckets

    rng = np.random.default_rng(seed)
    rows = 600
    log = prediction_log(
        synthetic_table(rows, seed=10 + seed, drift=True, **SHAPE), "m", "1", 1_000 + rng.uniform(0, 900, rows)
    )
    numeric = [n for n in log.column_names if n.startswith("f.num")]
    first = log.column(numeric[0]).to_numpy(zero_copy_only=False).copy()
    first[rng.random(rows) < 0.1] = np.nan
    first[rng.random(rows) < 0.05] = np.inf
    first[rng.random(rows) < 0.05] = -1e300
    log = log.set_column(log.column_names.index(numeric[0]), numeric[0], pa.array(first))
    log = log.set_column(log.column_names.index(numeric[1]), numeric[1], pa.array(rng.integers(-3, 3, rows)))
    text = [str(v) if i % 37 else "not a number" for i, v in enumerate(log.column(numeric[2]).to_pylist())]
    log = log.set_column(log.column_names.index(numeric[2]), numeric[2], pa.array(text))
    log = log.drop_columns([numeric[3]])
    chunked = pa.concat_tables([log.slice(0, 200), log.slice(200, 200), log.slice(400)])

    def fold_all(store: ModelWindows) -> list:
        outcomes = [store.fold_predictions(log.slice(0, 300)), store.fold_predictions(chunked)]
        return [(o.accepted, o.late, [(p.reason, p.detail, p.rows.tolist()) for p in o.problems]) for o in outcomes]

    together = ModelWindows(profile, WINDOWS, allowed_lateness=300)
    together_outcomes = fold_all(together)
    monkeypatch.setattr(buckets, "_fold_numeric_columns", lambda *args: {})  # every column on its own
    each = ModelWindows(profile, WINDOWS, allowed_lateness=300)
    assert fold_all(each) == together_outcomes
    assert together_outcomes[1][1] > 0  # some rows were late
    for name in ("5m", "1h"):
        assert together.buckets[name].keys() == each.buckets[name].keys()
        for start, bucket in together.buckets[name].items():
            assert bucket == each.buckets[name][start]
