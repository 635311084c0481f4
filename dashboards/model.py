"""One model: traffic, latency, errors, feature drift, concept drift, performance, labels, staleness,
and what its predictions cost on the GPU.

Variables: the datasource, then ``model``, ``model_version`` and the drift ``window``, each
listing what the aggregators export.
"""

from __future__ import annotations

from typing import Any

from dashboards.common import (
    dashboard,
    heatmap,
    layout,
    query_variable,
    report_link,
    row,
    stat,
    table,
    timeseries,
)
from dashboards.queries import age, latency_quantile, once_per_model, per_gpu_rate
from detectors.drift_statistics import DRIFT_STATISTICS
from exporter.config import DashboardsConfig, duration_seconds

KEY = "model"
MV = 'model="$model", model_version="$model_version"'
MVW = f'{MV}, window="$window"'
# Label-join series carry only the model name.
M = 'model="$model"'


def _by_feature(metric: str) -> str:
    return f"max by (feature) ({metric}{{{MVW}}})"


def _statistic_columns(top: int) -> list[tuple[str, str]]:
    """The drift table's statistic columns: the titled rows of the drift-statistics table.
    The table ranks features by PSI, so only PSI's query keeps the top ``top``."""
    columns = []
    for statistic in DRIFT_STATISTICS:
        if statistic.title is None or statistic.metric is None:
            continue
        query = _by_feature(statistic.metric)
        columns.append((statistic.title, f"topk({top}, {query})" if statistic.attribute == "psi" else query))
    return columns


def _link_the_drift_report(config: DashboardsConfig, drift_table: Any) -> None:
    """With ``aggregator_url``: the drift table links to the drift report (a panel link) and
    each feature to its chart there (a data link on the ``feature`` column)."""
    page, feature = report_link(config), report_link(config, feature=True)
    if page is None or feature is None:
        return
    drift_table.links = [page]
    drift_table.overrides.insert(
        0, {"matcher": {"id": "byName", "options": "feature"}, "properties": [{"id": "links", "value": [feature]}]}
    )


# Joules in a kWh, seconds in an hour: prices are per kWh and per GPU-hour.
_JOULES_PER_KWH = 3.6e6
_SECONDS_PER_HOUR = 3600


def _gpu_cost(config: DashboardsConfig) -> list[list[Any]]:
    """Energy and GPU time per prediction, and their cost where the config sets a price."""
    predictions = once_per_model("model_health_predictions_total", MV, by="model")
    energy = per_gpu_rate("model_health_model_gpu_energy_joules_total", MV, "model")
    gpu_time = per_gpu_rate("model_health_model_gpu_seconds_total", MV, "model")
    per_prediction = f"/ ({predictions} > 0)"
    stats = [
        stat(
            "Energy per prediction",
            f"{energy} {per_prediction}",
            unit="joule",
            width=6,
            description="The model's share of its GPUs' energy per second, over its predictions per second.",
        ),
        stat(
            "GPU-seconds per 1k predictions",
            f"{gpu_time} {per_prediction} * 1000",
            unit="s",
            width=6,
            description="GPU time the model holds (a whole GPU for a second is 1 s) per 1,000 predictions.",
        ),
    ]
    prices = config.gpu_cost
    if prices.price_per_gpu_hour is not None:
        stats.append(
            stat(
                "Cost per 1k predictions (GPU-hours)",
                f"{gpu_time} {per_prediction} * 1000 / {_SECONDS_PER_HOUR} * {prices.price_per_gpu_hour!r}",
                decimals=4,
                width=6,
                description=f"GPU time per 1,000 predictions at {prices.price_per_gpu_hour!r} per GPU-hour.",
            )
        )
    if prices.price_per_kwh is not None:
        stats.append(
            stat(
                "Cost per 1k predictions (energy)",
                f"{energy} {per_prediction} * 1000 / {_JOULES_PER_KWH:g} * {prices.price_per_kwh!r}",
                decimals=6,
                width=6,
                description=f"GPU energy per 1,000 predictions at {prices.price_per_kwh!r} per kWh.",
            )
        )
    series = [
        timeseries(
            "GPU power of the model",
            [(per_gpu_rate("model_health_model_gpu_energy_joules_total", MV, "gpu_uuid"), "{{gpu_uuid}}")],
            unit="watt",
            stacked=True,
            description="The model's share of each GPU's energy per second.",
        ),
        timeseries(
            "Energy per prediction",
            [(f"{energy} {per_prediction}", "joules / prediction")],
            unit="joule",
            description="Falls as batching fills the GPU; rises when the GPU idles between requests.",
        ),
    ]
    return [stats, series]


def _estimated_performance() -> Any:
    """The label-free estimate with its band (± 3 standard errors, the drop rule's k)."""
    estimate = f"max by (metric) (model_health_performance_estimated{{{MVW}}})"
    stderr = f"max by (metric) (model_health_performance_estimated_stderr{{{MVW}}})"
    return timeseries(
        "Estimated performance (no labels)",
        [
            (estimate, "{{metric}}"),
            (f"{estimate} - 3 * {stderr}", "{{metric}} (band)"),
            (f"{estimate} + 3 * {stderr}", "{{metric}} (band)"),
        ],
        width=8,
        overrides=[
            {
                "matcher": {"id": "byRegexp", "options": ".*\\(band\\)"},
                "properties": [{"id": "custom.lineStyle", "value": {"fill": "dot"}}],
            }
        ],
        description=(
            "Estimated from the window's scores and the profile's calibration (docs/performance-estimation.md), "
            "dotted: ± 3 standard errors. Present for profiles built from a score and labels."
        ),
    )


def build(config: DashboardsConfig) -> dict[str, Any]:
    predictions = once_per_model("model_health_predictions_total", MV, by="model")
    errors = once_per_model("model_health_prediction_errors_total", MV, by="model")
    error_ratio = f"{errors} / {predictions}"
    p99 = latency_quantile(0.99, MV, by="")
    max_age = duration_seconds(config.max_model_age)
    variables = [
        query_variable("model", "Model", "model_health_model_info", "model"),
        query_variable("model_version", "Version", 'model_health_model_info{model="$model"}', "model_version"),
        query_variable("window", "Window", f"model_health_window_samples{{{MV}}}", "window"),
    ]
    overview = [
        stat("Predictions / s", predictions, unit="reqps", decimals=1),
        stat(
            "Error ratio", error_ratio, unit="percentunit", thresholds=(("green", 0), ("orange", 0.01), ("red", 0.05))
        ),
        stat("p99 latency", p99, unit="s", thresholds=(("green", 0), ("red", config.latency_sla_seconds))),
        stat(
            "Drifting features",
            f"sum(max by (feature) (model_health_feature_drift_detected{{{MVW}}}))",
            thresholds=(("green", 0), ("orange", 1)),
            description="Features that drift by the decision rule.",
        ),
        stat(
            "Window samples",
            f"max(model_health_window_samples{{{MVW}}})",
            description="Predictions in the selected window; drift needs enough of them.",
        ),
        stat(
            "Model age",
            age(f"max(model_health_model_trained_timestamp_seconds{{{MV}}})"),
            unit="s",
            thresholds=(("green", 0), ("orange", max_age)),
            description="Time since the model was trained.",
        ),
    ]
    serving = [
        timeseries(
            "Traffic",
            [
                (
                    f"sum by (job) (rate(model_health_predictions_total{{{MV}}}[$__rate_interval]))",
                    "predictions ({{job}})",
                ),
                (
                    f"sum by (job) (rate(model_health_prediction_errors_total{{{MV}}}[$__rate_interval]))",
                    "errors ({{job}})",
                ),
            ],
            unit="reqps",
            width=8,
            description="Per job: the sidecar and the aggregator may both count the same requests.",
        ),
        timeseries(
            "Latency",
            [
                (latency_quantile(0.5, MV, by=""), "p50"),
                (latency_quantile(0.95, MV, by=""), "p95"),
                (latency_quantile(0.99, MV, by=""), "p99"),
            ],
            unit="s",
            width=8,
            threshold=config.latency_sla_seconds,
            description="From model_health_request_duration_seconds; the red line is the SLA.",
        ),
        timeseries("Error ratio", [(error_ratio, "errors / predictions")], unit="percentunit", width=8),
    ]
    drift_table = table(
        f"Most drifted features (top {config.top_features} by PSI)",
        [
            *_statistic_columns(config.top_features),
            ("Drift", _by_feature("model_health_feature_drift_detected")),
        ],
        join_on=("feature",),
        width=12,
        height=10,
        sort_by="PSI",
        description="Numeric features carry KS and Wasserstein; categorical ones JS distance.",
        overrides=[
            {"matcher": {"id": "byName", "options": "Missing"}, "properties": [{"id": "unit", "value": "percentunit"}]},
            {
                "matcher": {"id": "byName", "options": "PSI"},
                "properties": [
                    {"id": "custom.displayMode", "value": "color-background"},
                    {
                        "id": "thresholds",
                        "value": {
                            "mode": "absolute",
                            "steps": [
                                {"color": "green", "value": None},
                                {"color": "red", "value": config.psi_threshold},
                            ],
                        },
                    },
                ],
            },
            {
                "matcher": {"id": "byName", "options": "Drift"},
                "properties": [
                    {
                        "id": "mappings",
                        "value": [
                            {
                                "type": "value",
                                "options": {
                                    "0": {"text": "no", "color": "green"},
                                    "1": {"text": "drift", "color": "red"},
                                },
                            }
                        ],
                    },
                    {"id": "custom.displayMode", "value": "color-text"},
                ],
            },
        ],
    )
    _link_the_drift_report(config, drift_table)
    ks = timeseries(
        "KS D by feature",
        [(_by_feature("model_health_feature_ks_statistic"), "{{feature}}")],
        width=12,
        height=10,
        threshold=config.ks_threshold,
        description="Kolmogorov-Smirnov D of each numeric feature against the reference.",
    )
    concept = [
        timeseries(
            "Prediction and label drift",
            [
                (f"max(model_health_prediction_psi{{{MVW}}})", "prediction PSI"),
                (f"max(model_health_prediction_ks_statistic{{{MVW}}})", "prediction KS D"),
                (f"max(model_health_label_psi{{{MVW}}})", "label PSI"),
                (f"max(model_health_loss_ks_statistic{{{MVW}}})", "loss KS D"),
            ],
            width=8,
            threshold=config.psi_threshold,
        ),
        timeseries(
            "Performance vs reference",
            [
                (f"max by (metric) (model_health_performance{{{MVW}}})", "{{metric}}"),
                (f"max by (metric) (model_health_performance_reference{{{MV}}})", "{{metric}} (reference)"),
            ],
            overrides=[
                {
                    "matcher": {"id": "byRegexp", "options": ".*\\(reference\\)"},
                    "properties": [{"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}}],
                }
            ],
            description="Windowed performance from joined labels; dashed: the reference set's.",
            width=8,
        ),
        _estimated_performance(),
    ]
    labels = [
        timeseries(
            "Label join rate",
            [
                (f"sum(rate(model_health_labels_joined_total{{{M}}}[$__rate_interval]))", "joined / s"),
                (f"sum(rate(model_health_labels_unmatched_total{{{M}}}[$__rate_interval]))", "unmatched / s"),
            ],
            unit="reqps",
            width=8,
        ),
        timeseries(
            "Share of predictions labelled",
            [
                (
                    f"sum by (model) (rate(model_health_labels_joined_total{{{M}}}[$__rate_interval])) / "
                    + once_per_model("model_health_predictions_total", 'model="$model"', by="model"),
                    "joined labels / predictions",
                )
            ],
            unit="percentunit",
            width=8,
        ),
        timeseries(
            "Predictions awaiting labels",
            [
                (f"max(model_health_labels_pending{{{M}}})", "pending"),
            ],
            width=8,
        ),
    ]
    staleness = [
        stat(
            "Since trained",
            age(f"max(model_health_model_trained_timestamp_seconds{{{MV}}})"),
            unit="s",
            width=6,
            thresholds=(("green", 0), ("orange", max_age)),
        ),
        stat(
            "Since reference built",
            age(f"max(model_health_reference_created_timestamp_seconds{{{MV}}})"),
            unit="s",
            width=6,
        ),
        stat(
            "Since last prediction",
            age(f"max(model_health_last_prediction_timestamp_seconds{{{MV}}})"),
            unit="s",
            width=6,
            thresholds=(("green", 0), ("orange", 300), ("red", 900)),
        ),
        stat("Since last label", age(f"max(model_health_last_label_timestamp_seconds{{{M}}})"), unit="s", width=6),
    ]
    panels = layout(
        [
            [row("Overview")],
            overview,
            [row("Serving")],
            serving,
            [row("Feature drift ($window window)")],
            [
                heatmap(
                    "PSI by feature",
                    _by_feature("model_health_feature_psi"),
                    "{{feature}}",
                    description="Population stability index of every feature over time; darker is more drift.",
                )
            ],
            [drift_table, ks],
            [row("Concept drift and performance")],
            concept,
            [row("Labels")],
            labels,
            [row("Staleness")],
            staleness,
            [row("GPU cost")],
            *_gpu_cost(config),
        ]
    )
    return dashboard(
        config,
        KEY,
        "Model",
        "One model version: serving, feature drift, concept drift, performance, labels and staleness.",
        panels,
        variables,
    )
