"""The drift-statistics table, and the places outside detectors/ that must stay in step with it."""

from __future__ import annotations

import dataclasses

from detectors.compare import ColumnDrift
from detectors.decision import CATEGORICAL_METHODS, NUMERIC_METHODS, DriftRule
from detectors.drift_statistics import DECISION_METHODS, DECISIONS, DRIFT_STATISTICS
from exporter.catalogue import CATALOGUE, by_name
from exporter.config import FeatureThresholds, Thresholds

FEATURE_LABELS = ("model", "model_version", "feature", "window")


def test_every_exported_statistic_is_a_per_feature_gauge_of_the_catalogue():
    for statistic in DRIFT_STATISTICS:
        if statistic.metric is not None:
            metric = by_name(statistic.metric)
            assert (metric.kind, metric.labels) == ("gauge", FEATURE_LABELS), statistic.attribute


def test_the_catalogue_per_feature_gauges_are_the_table_and_the_verdict():
    per_feature = {m.name for m in CATALOGUE if m.labels == FEATURE_LABELS}
    exported = {s.metric for s in DRIFT_STATISTICS if s.metric is not None}
    assert per_feature == exported | {"model_health_feature_drift_detected"}


def test_the_rule_and_the_config_default_to_the_table():
    rule, thresholds = DriftRule(), Thresholds()
    for method, decision in DECISIONS.items():
        assert rule.threshold(method) == getattr(thresholds, method) == decision.default_threshold
        assert method in FeatureThresholds.model_fields  # overridable per feature
    assert set(NUMERIC_METHODS) | set(CATEGORICAL_METHODS) == set(DECISION_METHODS)


def test_a_statistic_that_does_not_apply_to_a_kind_is_left_out_of_its_json():
    statistics = {s.attribute: 0.5 for s in DRIFT_STATISTICS}
    for kind in ("numeric", "categorical"):
        drift = ColumnDrift(kind, 10, 10, drift=False, fired=(), **statistics)  # type: ignore[arg-type]
        out = drift.as_dict()
        for statistic in DRIFT_STATISTICS:
            assert (statistic.json_key in out) == statistic.applies_to(kind)
        verdict = {f.name for f in dataclasses.fields(ColumnDrift)} - set(statistics)
        assert verdict <= set(out)
