"""The pipeline itself: consumption, lag, rejects, evaluation, checkpoints and targets."""

from __future__ import annotations

from typing import Any

from dashboards.common import dashboard, layout, row, stat, table, timeseries
from dashboards.queries import age
from exporter.config import DashboardsConfig

KEY = "pipeline"


def build(config: DashboardsConfig) -> dict[str, Any]:
    jobs = "|".join(config.jobs.names())
    overview = [
        stat(
            "Records / s", "sum(rate(model_health_records_consumed_total[$__rate_interval]))", unit="reqps", decimals=1
        ),
        stat("Consumer lag", "sum(model_health_consumer_lag_records)", thresholds=(("green", 0), ("orange", 1000))),
        stat(
            "Rejected / s",
            "sum(rate(model_health_records_rejected_total[$__rate_interval])) or vector(0)",
            unit="reqps",
            thresholds=(("green", 0), ("orange", 0.001)),
        ),
        stat(
            "Since last evaluation",
            age("max(model_health_evaluation_last_success_timestamp_seconds)"),
            unit="s",
            thresholds=(("green", 0), ("orange", 60), ("red", 300)),
        ),
        stat(
            "Checkpoint age",
            age("max(model_health_checkpoint_last_success_timestamp_seconds)"),
            unit="s",
            thresholds=(("green", 0), ("orange", 60), ("red", 300)),
        ),
        stat(
            "Targets up",
            f'sum(up{{job=~"{jobs}"}}) / count(up{{job=~"{jobs}"}})',
            unit="percentunit",
            thresholds=(("red", 0), ("orange", 0.99), ("green", 1)),
        ),
    ]
    flow = [
        timeseries(
            "Records consumed / s",
            [
                (
                    "sum by (topic, format) (rate(model_health_records_consumed_total[$__rate_interval]))",
                    "{{topic}} ({{format}})",
                )
            ],
            unit="reqps",
            stacked=True,
        ),
        timeseries(
            "Consumer lag",
            [
                ("sum by (topic, partition) (model_health_consumer_lag_records)", "{{topic}}/{{partition}}"),
            ],
            description="Records between each partition's committed position and its log end.",
        ),
    ]
    problems = [
        timeseries(
            "Rejected (dead-lettered) / s by reason",
            [
                (
                    "sum by (topic, reason) (rate(model_health_records_rejected_total[$__rate_interval]))",
                    "{{topic}}: {{reason}}",
                )
            ],
            unit="reqps",
            stacked=True,
        ),
        timeseries(
            "Late records / s by model",
            [
                (
                    "sum by (model) (rate(model_health_records_late_total[$__rate_interval]))",
                    "{{model}}",
                )
            ],
            unit="reqps",
            description="Records older than the allowed lateness, left out of every window.",
        ),
    ]
    evaluation = [
        timeseries(
            "Evaluation time",
            [
                (
                    "histogram_quantile(0.5, sum by (le) (rate(model_health_evaluation_duration_seconds_bucket[$__rate_interval])))",
                    "p50",
                ),
                (
                    "histogram_quantile(0.99, sum by (le) (rate(model_health_evaluation_duration_seconds_bucket[$__rate_interval])))",
                    "p99",
                ),
                (
                    "sum(rate(model_health_evaluation_duration_seconds_sum[$__rate_interval])) / "
                    "sum(rate(model_health_evaluation_duration_seconds_count[$__rate_interval]))",
                    "mean",
                ),
            ],
            unit="s",
            width=8,
        ),
        timeseries(
            "Since last evaluation / checkpoint",
            [
                (f"{age('model_health_evaluation_last_success_timestamp_seconds')}", "evaluation {{instance}}"),
                (f"{age('model_health_checkpoint_last_success_timestamp_seconds')}", "checkpoint {{instance}}"),
            ],
            unit="s",
            width=8,
        ),
        timeseries("Targets up", [(f'sum by (job) (up{{job=~"{jobs}"}})', "{{job}}")], width=8),
    ]
    builds = table(
        "Builds",
        [("Targets", "count by (job, version) (model_health_build_info)")],
        join_on=("job", "version"),
        height=6,
    )
    panels = layout([[row("Pipeline")], overview, flow, problems, evaluation, [builds]])
    return dashboard(
        config,
        KEY,
        "Pipeline",
        "model-health itself: records consumed, consumer lag, dead letters, evaluation time, checkpoints.",
        panels,
    )
