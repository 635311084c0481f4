import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from detectors.decision import DriftRule
from detectors.profile import build_profile
from exporter.aggregator.collector import SnapshotCollector
from exporter.catalogue import by_name, for_owner
from exporter.demo.synthetic import prediction_log, synthetic_table
from exporter.exposition import BuildInfoCollector
from exporter.pipeline.evaluation import ModelIdentity, evaluate_model
from exporter.pipeline.snapshot import HistogramState, PipelineState, Snapshot
from exporter.pipeline.windows import ModelWindows, WindowSpec

SHAPE = {"numeric": 3, "categorical": 2, "drifted": 2}


@pytest.fixture(scope="module")
def snapshot() -> Snapshot:
    profile = build_profile(
        synthetic_table(5_000, seed=1, **SHAPE),
        model="fraud",
        model_version="7",
        created_at=1.7e9,
        prediction="prediction",
        label="label",
        trained_at=1.6e9,
    )
    store = ModelWindows(profile, [WindowSpec("1h", 60, 60)], allowed_lateness=60)
    store.fold_predictions(
        prediction_log(synthetic_table(2_000, seed=2, drift=True, **SHAPE), "fraud", "7", np.full(2_000, 1000.0))
    )
    model = evaluate_model(ModelIdentity("fraud", "7", "prod"), store, lambda f: DriftRule(), now=1000.0)
    pipeline = PipelineState(
        consumed={("model-predictions", "ndjson"): 2_000},
        rejected={("model-predictions", "invalid_json"): 3},
        predictions={("fraud", "7"): 2_000},
        consumer_lag={("model-predictions", 0): 5},
    )
    return Snapshot(
        evaluated_at=1000.0,
        models=(model,),
        pipeline=pipeline,
        evaluation_duration=HistogramState.empty((0.1, 1.0)).observe(0.05),
        checkpoint_last_success=999.0,
    )


def scrape(snapshot: Snapshot) -> dict[str, list]:
    registry = CollectorRegistry()
    registry.register(BuildInfoCollector("1.2.3"))
    registry.register(SnapshotCollector(lambda: snapshot))
    text = generate_latest(registry).decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_every_family_is_in_the_catalogue_with_its_labels(snapshot):
    families = scrape(snapshot)
    owned = {m.family for m in for_owner("aggregator")}
    for name, family in families.items():
        assert name in owned, name
        metric = by_name(name if family.type != "counter" else name + "_total")
        for sample in family.samples:
            assert set(sample.labels) - {"le"} == set(metric.labels), (name, sample.labels)


def test_values_follow_the_snapshot(snapshot):
    families = scrape(snapshot)
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    key = lambda name, **labels: (name, tuple(sorted(labels.items())))  # noqa: E731
    mv = {"model": "fraud", "model_version": "7"}
    assert samples[key("model_health_window_samples", window="1h", **mv)] == 2_000
    assert samples[key("model_health_feature_drift_detected", feature="num_00", window="1h", **mv)] == 1
    assert samples[key("model_health_feature_drift_detected", feature="num_02", window="1h", **mv)] == 0
    assert samples[key("model_health_drifted_features_ratio", window="1h", **mv)] == pytest.approx(2 / 5)
    assert samples[key("model_health_model_trained_timestamp_seconds", **mv)] == 1.6e9
    assert samples[key("model_health_predictions_total", **mv)] == 2_000
    assert samples[key("model_health_records_rejected_total", topic="model-predictions", reason="invalid_json")] == 3
    assert samples[key("model_health_consumer_lag_records", topic="model-predictions", partition="0")] == 5
    assert samples[key("model_health_evaluation_duration_seconds_count")] == 1
    assert samples[key("model_health_model_info", model_namespace="prod", task="classification", **mv)] == 1
    assert samples[key("model_health_build_info", version="1.2.3")] == 1
    # Categorical features carry no KS; numeric ones carry no JS.
    assert key("model_health_feature_ks_statistic", feature="cat_0", window="1h", **mv) not in samples
    assert key("model_health_feature_js_distance", feature="num_00", window="1h", **mv) not in samples


def test_an_empty_snapshot_still_renders():
    families = scrape(Snapshot(evaluated_at=0.0))
    assert "model_health_build_info" in families


def test_the_family_level_and_the_feature_p_values_are_exported(snapshot):
    families = scrape(snapshot)
    mvw = {"model": "fraud", "model_version": "7", "window": "1h"}
    (level,) = families["model_health_drift_alpha_effective"].samples
    assert level.labels == mvw and level.value == pytest.approx(0.01 / 5)  # five features tested
    pvalues = {s.labels["feature"]: s.value for s in families["model_health_feature_drift_pvalue"].samples}
    drifted = {s.labels["feature"] for s in families["model_health_feature_drift_detected"].samples if s.value == 1}
    assert len(pvalues) == 5 and all(0 <= p <= 1 for p in pvalues.values())
    # Flagged exactly where the p-value is within the level (both methods share it equally).
    assert drifted == {feature for feature, p in pvalues.items() if p <= level.value}
