"""The evaluation's label-free estimate and version comparison, through to the scrape.

Windows are folded from decoded prediction tables (``exporter.demo.synthetic``, the shape the
decoders produce), evaluated by ``evaluate_model``, compared by ``with_version_comparisons``
and rendered by the aggregator's collector.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from detectors.decision import DriftRule
from detectors.performance_estimation import DropRule, estimate_performance, performance_dropped, reference_estimate
from detectors.profile import ReferenceProfile, build_profile
from detectors.summary import NumericSummary
from exporter.aggregator.collector import SnapshotCollector
from exporter.demo.synthetic import prediction_log, synthetic_table
from exporter.pipeline.evaluation import ModelIdentity, evaluate_model
from exporter.pipeline.snapshot import ModelSnapshot, Snapshot
from exporter.pipeline.versions import with_version_comparisons
from exporter.pipeline.windows import ModelWindows, WindowSpec

SHAPE = {"numeric": 3, "categorical": 2, "drifted": 2}
NOW = 1000.0


def _profile(version: str, seed: int, prediction: str = "prediction") -> ReferenceProfile:
    return build_profile(
        synthetic_table(8_000, seed=seed, **SHAPE),
        model="fraud",
        model_version=version,
        created_at=1.7e9,
        prediction=prediction,
        label="label",
    )


def _window(profile: ReferenceProfile, table: pa.Table) -> ModelWindows:
    store = ModelWindows(profile, [WindowSpec("1h", 60, 60)], allowed_lateness=60)
    version = profile.metadata.model_version
    store.fold_predictions(prediction_log(table, "fraud", version, np.full(table.num_rows, NOW)))
    return store


def _evaluate(store: ModelWindows, drop_rule: DropRule | None = None) -> ModelSnapshot:
    identity = ModelIdentity("fraud", store.profile.metadata.model_version)
    return evaluate_model(identity, store, lambda _: DriftRule(), NOW, drop_rule or DropRule())


def _with_scores(table: pa.Table, scores: np.ndarray) -> pa.Table:
    return table.set_column(table.column_names.index("prediction"), "prediction", pa.array(scores, pa.float64()))


def _samples(snapshot: Snapshot) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(lambda: snapshot))
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_the_window_estimate_is_the_estimate_of_its_score_summary():
    profile = _profile("7", seed=1)
    table = synthetic_table(3_000, seed=2, **SHAPE)
    result = _evaluate(_window(profile, table)).windows["1h"]
    scores = table.column("prediction").to_numpy()
    direct = estimate_performance(profile, NumericSummary.fold(profile.prediction.bins, scores))
    assert result.estimated == direct
    assert result.estimated_dropped == performance_dropped(direct, reference_estimate(profile))
    assert not any(result.estimated_dropped.values()), "a window from the reference's distribution"


def test_a_window_of_unsure_scores_is_estimated_worse_and_flagged():
    profile = _profile("7", seed=1)
    table = synthetic_table(3_000, seed=3, **SHAPE)
    unsure = np.random.default_rng(3).uniform(0.4, 0.6, table.num_rows)  # the calibration says: coin flips
    result = _evaluate(_window(profile, _with_scores(table, unsure))).windows["1h"]
    reference = reference_estimate(profile).metrics
    assert result.estimated.metrics["accuracy"] < reference["accuracy"] - 0.05
    assert result.estimated_dropped["accuracy"] and result.estimated_dropped["roc_auc"]
    # The model's drop rule is the config's: min_samples above the window's size silences it.
    quiet = _evaluate(_window(profile, _with_scores(table, unsure)), DropRule(min_samples=10_000)).windows["1h"]
    assert not any(quiet.estimated_dropped.values())


def test_profiles_without_a_calibration_export_no_estimate():
    profile = build_profile(
        synthetic_table(4_000, seed=1, **SHAPE), model="fraud", model_version="7", created_at=1.7e9
    )  # no prediction, no label: nothing to calibrate
    result = _evaluate(_window(profile, synthetic_table(1_000, seed=2, **SHAPE))).windows["1h"]
    assert result.estimated is None and result.estimated_dropped == {}
    samples = _samples(
        Snapshot(evaluated_at=NOW, models=(_evaluate(_window(profile, synthetic_table(10, seed=4, **SHAPE))),))
    )
    assert not any(name.startswith("model_health_performance_estimated") for name, _ in samples)


def _versions(canary_scores: np.ndarray | None) -> list[ModelSnapshot]:
    """Stable v7 and canary v8, each with its own profile (different reference draws and bins)."""
    stable_profile, canary_profile = _profile("7", seed=1), _profile("8", seed=5)
    stable = _window(stable_profile, synthetic_table(4_000, seed=6, **SHAPE))
    canary_table = synthetic_table(1_000, seed=7, **SHAPE)
    if canary_scores is not None:
        canary_table = _with_scores(canary_table, canary_scores)
    canary = _window(canary_profile, canary_table)
    return with_version_comparisons(
        [_evaluate(stable), _evaluate(canary)], {("fraud", "8"): "7"}, lambda _: DriftRule(), lambda _: 1e-4
    )


def test_an_unshifted_canary_is_not_flagged_against_the_stable_version():
    stable, canary = _versions(None)
    assert stable.baseline_version is None and stable.windows["1h"].versus_baseline is None
    comparison = canary.windows["1h"].versus_baseline
    assert canary.baseline_version == "7"
    assert comparison.rebinned, "two profiles, two sets of bins"
    assert comparison.drift.reference_count == 4_000 and comparison.drift.current_count == 1_000
    assert not comparison.drift.drift and comparison.drift.psi < 0.1


def test_a_shifted_canary_is_flagged_and_exported_with_its_baseline():
    scores = synthetic_table(1_000, seed=7, **SHAPE).column("prediction").to_numpy()
    stable, canary = _versions(np.sqrt(scores))  # every score pushed towards 1
    comparison = canary.windows["1h"].versus_baseline
    assert comparison.drift.drift and comparison.drift.psi > 0.2
    samples = _samples(Snapshot(evaluated_at=NOW, models=(stable, canary)))
    labels = (("baseline_version", "7"), ("model", "fraud"), ("model_version", "8"))
    window = tuple(sorted((*labels, ("window", "1h"))))
    assert samples[("model_health_version_prediction_psi", window)] == pytest.approx(comparison.drift.psi)
    assert samples[("model_health_version_prediction_ks_statistic", window)] == pytest.approx(
        comparison.drift.ks_statistic
    )
    assert samples[("model_health_version_prediction_drift_detected", window)] == 1
    assert samples[("model_health_version_baseline_info", labels)] == 1
    # The stable version has no baseline: none of its series carries one.
    assert not any(
        dict(key).get("model_version") == "7" for name, key in samples if name.startswith("model_health_version")
    )


def test_a_canary_without_predictions_in_the_window_has_no_comparison():
    stable_profile, canary_profile = _profile("7", seed=1), _profile("8", seed=5)
    stable = _evaluate(_window(stable_profile, synthetic_table(1_000, seed=6, **SHAPE)))
    empty = _evaluate(ModelWindows(canary_profile, [WindowSpec("1h", 60, 60)], allowed_lateness=60))
    _, canary = with_version_comparisons([stable, empty], {("fraud", "8"): "7"}, lambda _: DriftRule(), lambda _: 1e-4)
    assert canary.windows["1h"].versus_baseline is None
