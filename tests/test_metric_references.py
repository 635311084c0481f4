"""Every series a dashboard panel, dashboard variable or rule expression names is in the metric
catalogue, is made by a generated recording rule, or is one Prometheus makes itself (up, ALERTS)."""

from __future__ import annotations

import pytest

import dashboards
from alerts import PROMETHEUS_SERIES, metric_names, recording_rule_names, render_rules
from exporter.catalogue import all_series_names
from exporter.config import AlertsConfig, DashboardsConfig

KNOWN = all_series_names() | recording_rule_names() | PROMETHEUS_SERIES


def rule_expressions(config: AlertsConfig) -> list[tuple[str, str]]:
    return [
        (rule.get("record") or rule["alert"], rule["expr"])
        for group in render_rules(config)["groups"]
        for rule in group["rules"]
    ]


def dashboard_expressions(config: DashboardsConfig) -> list[tuple[str, str]]:
    out = []
    for key, board in dashboards.render_all(config).items():
        out += [(f"{key} panel", expr) for expr in dashboards.panel_queries(board)]
        out += [(f"{key} variable", expr) for expr in dashboards.variable_queries(board)]
    return out


@pytest.mark.parametrize(
    "config",
    [AlertsConfig(), AlertsConfig(windows=("1h",), concept_drift={"lower_is_better": ()})],
    ids=["default", "changed"],
)
def test_rule_expressions_name_only_known_series(config):
    expressions = rule_expressions(config)
    assert len(expressions) > 20
    for where, expr in expressions:
        names = metric_names(expr)
        assert names, f"{where}: no series found in {expr!r} (the extractor missed them)"
        assert names <= KNOWN, f"{where}: unknown series {sorted(names - KNOWN)}"


def test_dashboard_expressions_name_only_known_series():
    expressions = dashboard_expressions(DashboardsConfig())
    assert len(expressions) > 60
    for where, expr in expressions:
        names = metric_names(expr)
        assert names, f"{where}: no series found in {expr!r}"
        assert names <= KNOWN, f"{where}: unknown series {sorted(names - KNOWN)} in {expr!r}"


def test_the_check_catches_an_unknown_series():
    assert metric_names("rate(model_health_predictions_totl[5m])") - KNOWN == {"model_health_predictions_totl"}


def test_dashboards_cover_the_catalogue_they_promise():
    named = set().union(*(metric_names(expr) for _, expr in dashboard_expressions(DashboardsConfig())))
    for metric in (
        "model_health_request_duration_seconds_bucket",
        "model_health_feature_psi",
        "model_health_feature_ks_statistic",
        "model_health_prediction_psi",
        "model_health_label_psi",
        "model_health_performance",
        "model_health_performance_reference",
        "model_health_labels_joined_total",
        "model_health_model_trained_timestamp_seconds",
        "model_health_gpu_utilization_ratio",
        "model_health_gpu_memory_used_bytes",
        "model_health_gpu_power_watts",
        "model_health_gpu_process_memory_used_bytes",
        "model_health_records_consumed_total",
        "model_health_consumer_lag_records",
        "model_health_records_rejected_total",
        "model_health_evaluation_duration_seconds_bucket",
        "model_health_checkpoint_last_success_timestamp_seconds",
    ):
        assert metric in named, metric
