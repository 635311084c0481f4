"""Fleet overview: every monitored model at a glance, with links into each model's dashboard."""

from __future__ import annotations

from typing import Any

from dashboards.common import dashboard, layout, model_link, row, stat, table, timeseries
from dashboards.queries import age, latency_quantile, once_per_model
from exporter.config import DashboardsConfig, duration_seconds

KEY = "fleet"
MODEL_LABELS = "model, model_version"


def build(config: DashboardsConfig) -> dict[str, Any]:
    predictions = once_per_model("model_health_predictions_total")
    errors = once_per_model("model_health_prediction_errors_total")
    drifted = f"max by ({MODEL_LABELS}) (model_health_drifted_features_ratio)"
    max_age_days = duration_seconds(config.max_model_age) / 86400
    days_since_trained = f"({age(f'max by ({MODEL_LABELS}) (model_health_model_trained_timestamp_seconds)')}) / 86400"
    summary = [
        stat(
            "Models monitored",
            f"count(max by ({MODEL_LABELS}) (model_health_model_info))",
            description="Model versions the aggregators monitor (model_health_model_info).",
        ),
        stat("Predictions / s", f"sum({predictions})", unit="reqps", decimals=1),
        stat(
            "Models with drifting features",
            f"count(max by ({MODEL_LABELS}) (model_health_feature_drift_detected) == 1) or vector(0)",
            thresholds=(("green", 0), ("orange", 1)),
        ),
        stat(
            "Stale models",
            f"count({days_since_trained} > {max_age_days:g}) or vector(0)",
            description=f"Models trained more than {config.max_model_age} ago.",
            thresholds=(("green", 0), ("orange", 1)),
        ),
        stat(
            "Model-health alerts firing",
            'count(ALERTS{alertname=~"ModelHealth.+", alertstate="firing"}) or vector(0)',
            thresholds=(("green", 0), ("red", 1)),
        ),
        stat(
            "Targets down",
            'count(up{job=~"%s"} == 0) or vector(0)' % "|".join(config.jobs.names()),
            thresholds=(("green", 0), ("red", 1)),
        ),
    ]
    models = table(
        "Models",
        [
            ("Predictions / s", predictions),
            ("Error ratio", f"{errors} / {predictions}"),
            ("p99 latency", latency_quantile(0.99)),
            ("Drifted features (worst window)", drifted),
            ("Days since trained", days_since_trained),
            (
                "Minutes since last prediction",
                f"{age(f'max by ({MODEL_LABELS}) (model_health_last_prediction_timestamp_seconds)')} / 60",
            ),
        ],
        join_on=("model", "model_version"),
        description="One row per model version; click a model to open its dashboard.",
        sort_by="Drifted features (worst window)",
        overrides=[
            {
                "matcher": {"id": "byName", "options": "model"},
                "properties": [{"id": "links", "value": [model_link(config)]}],
            },
            {
                "matcher": {"id": "byName", "options": "Error ratio"},
                "properties": [{"id": "unit", "value": "percentunit"}],
            },
            {
                "matcher": {"id": "byName", "options": "Drifted features (worst window)"},
                "properties": [{"id": "unit", "value": "percentunit"}],
            },
            {"matcher": {"id": "byName", "options": "p99 latency"}, "properties": [{"id": "unit", "value": "s"}]},
        ],
    )
    trends = [
        timeseries("Predictions / s by model", [(predictions, "{{model}} v{{model_version}}")], unit="reqps"),
        timeseries(
            "Error ratio by model", [(f"{errors} / {predictions}", "{{model}} v{{model_version}}")], unit="percentunit"
        ),
        timeseries(
            "Drifted features by model",
            [
                (
                    f"max by ({MODEL_LABELS}, window) (model_health_drifted_features_ratio)",
                    "{{model}} v{{model_version}} ({{window}})",
                )
            ],
            unit="percentunit",
            description="Share of each model's features that drift, per window.",
        ),
        timeseries(
            "p99 latency by model",
            [(latency_quantile(0.99), "{{model}} v{{model_version}}")],
            unit="s",
            threshold=config.latency_sla_seconds,
        ),
    ]
    panels = layout([[row("Fleet")], summary, [models], [row("Trends")], trends[:2], trends[2:]])
    return dashboard(
        config,
        KEY,
        "Fleet overview",
        "Every model monitored by model-health: traffic, errors, latency, drift and staleness.",
        panels,
    )
