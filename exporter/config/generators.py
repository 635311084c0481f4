"""``model-health alerts`` and ``model-health dashboards``: ``AlertsConfig`` and ``DashboardsConfig``.

Thresholds, windows, SLAs and routing of the generated Prometheus rules and Alertmanager
configuration, and the look of the generated Grafana dashboards. Both read the scrape jobs of
the components from the same ``ScrapeJobsConfig``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator

from exporter.config.fields import (
    RULE_DEFAULTS,
    HttpUrl,
    NonEmpty,
    PromDuration,
    Section,
    WindowName,
    require_items,
)
from exporter.config.loading import Settings

LabelName = Annotated[str, Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$")]
# Values that go into PromQL regex matchers and alert labels unquoted: no regex metacharacters.
PlainValue = Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.:/-]+$")]
Severity = Literal["critical", "warning", "info"]


class ScrapeJobsConfig(Section):
    """Prometheus ``job`` label of each component; unset: that component is not scraped."""

    aggregator: PlainValue | None = Field("model-health-aggregator", description="`job` of the aggregator.")
    sidecar: PlainValue | None = Field("model-health-sidecar", description="`job` of the injected sidecars.")
    node: PlainValue | None = Field("model-health-node", description="`job` of the node GPU agent.")
    relay: PlainValue | None = Field("model-health-relay", description="`job` of the retraining relay.")
    injector: PlainValue | None = Field("model-health-injector", description="`job` of the admission injector.")

    def names(self) -> tuple[str, ...]:
        """The configured job names, in a fixed order."""
        jobs = (self.aggregator, self.sidecar, self.node, self.relay, self.injector)
        return tuple(job for job in jobs if job is not None)


class FeatureDriftAlertConfig(Section):
    for_duration: PromDuration = Field(
        "90m",
        description=(
            "How long features must drift before the alert fires. Keep it longer than the longest window the alert "
            "reads (the default window is 1h): then a page needs flags in two windows that share no record, and a "
            "stationary model pages at most `(30d / (for_duration - window)) * alpha_model**2` times in 30 days per "
            "window (0.14 with the defaults; docs/statistics.md#alert-persistence-and-false-pages)."
        ),
    )
    min_samples: int = Field(
        RULE_DEFAULTS.min_samples, ge=0, description="Fewest predictions in the window for the alert to count it."
    )
    min_drifted_features: int = Field(1, ge=1, description="Fewest drifting features of one model that alert.")
    severity: Severity = Field("warning", description="`severity` label of `ModelHealthFeatureDrift`.")


_METRIC_NAMES = Annotated[tuple[Annotated[str, Field(pattern=r"^[a-z0-9_]+$")], ...], Field()]


class ConceptDriftAlertConfig(Section):
    for_duration: PromDuration = Field("30m", description="How long concept drift must last before the alert fires.")
    max_performance_drop: float = Field(
        0.05,
        gt=0,
        lt=1,
        description="Largest relative drop of a performance metric from its reference that is tolerated.",
    )
    higher_is_better: _METRIC_NAMES = Field(
        ("accuracy", "f1", "roc_auc"), description="`metric` values where a fall is a drop."
    )
    lower_is_better: _METRIC_NAMES = Field(
        ("log_loss", "mae", "rmse"), description="`metric` values where a rise is a drop."
    )
    min_joined_labels: int = Field(
        200, ge=1, description="Fewest labels joined within `labels_range` before performance counts."
    )
    labels_range: PromDuration = Field("1h", description="Range over which joined labels are counted.")
    prediction_psi: float = Field(RULE_DEFAULTS.psi_threshold, gt=0, description="Prediction PSI that is drift.")
    prediction_ks: float = Field(RULE_DEFAULTS.ks_threshold, gt=0, le=1, description="Prediction KS D that is drift.")
    min_samples: int = Field(
        RULE_DEFAULTS.min_samples, ge=0, description="Fewest predictions in the window for prediction drift to count."
    )
    severity: Severity = Field("warning", description="`severity` label of `ModelHealthConceptDrift`.")

    @field_validator("lower_is_better")
    @classmethod
    def _disjoint(cls, lower: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        both = sorted(set(lower) & set(info.data.get("higher_is_better") or ()))
        if both:
            raise ValueError(f"listed in both higher_is_better and lower_is_better: {', '.join(both)}")
        if not lower and not info.data.get("higher_is_better", True):
            raise ValueError("at least one performance metric is needed")
        return lower


class GpuLatencyAlertConfig(Section):
    gpu_utilization: float = Field(0.85, gt=0, le=1, description="GPU busy share above which a GPU is saturated.")
    latency_quantile: float = Field(0.99, gt=0, lt=1, description="Latency quantile held to the SLA.")
    latency_sla_seconds: float = Field(0.25, gt=0, description="Latency objective of that quantile.")
    for_duration: PromDuration = Field("10m", description="How long both must hold before the alert fires.")
    severity: Severity = Field("critical", description="`severity` label of `ModelHealthGpuSaturatedLatencySla`.")


class StaleModelAlertConfig(Section):
    max_model_age: PromDuration = Field("30d", description="Oldest a model may be (since training) before it is stale.")
    for_duration: PromDuration = Field("1h", description="How long before the alert fires.")
    severity: Severity = Field("warning", description="`severity` label of `ModelHealthModelStale`.")


class AbsenceAlertConfig(Section):
    for_duration: PromDuration = Field("15m", description="How long without predictions before the alert fires.")
    severity: Severity = Field("warning", description="`severity` label of `ModelHealthPredictionsAbsent`.")


class ExporterDownAlertConfig(Section):
    for_duration: PromDuration = Field("5m", description="How long a target is down before the alert fires.")
    severity: Severity = Field("critical", description="`severity` label of `ModelHealthExporterDown`.")


class ConsumerLagAlertConfig(Section):
    min_lag_records: int = Field(1000, ge=0, description="Lag of a topic (all partitions) below which nothing alerts.")
    growth_range: PromDuration = Field("15m", description="Range over which the lag's growth is measured.")
    for_duration: PromDuration = Field("15m", description="How long the lag must grow before the alert fires.")
    severity: Severity = Field("warning", description="`severity` label of `ModelHealthConsumerLagGrowing`.")


class DeadLetterAlertConfig(Section):
    min_rate_per_second: float = Field(1.0, ge=0, description="Rejected records per second of a topic that alert.")
    min_ratio: float = Field(0.01, ge=0, le=1, description="Share of a topic's records rejected that alerts.")
    for_duration: PromDuration = Field("5m", description="How long both must hold before the alert fires.")
    severity: Severity = Field("warning", description="`severity` label of `ModelHealthDeadLetterSpike`.")


class EvaluationStalledAlertConfig(Section):
    max_age: PromDuration = Field("5m", description="Longest time since the last successful evaluation pass.")
    for_duration: PromDuration = Field("5m", description="How long before the alert fires.")
    severity: Severity = Field("warning", description="`severity` label of `ModelHealthEvaluationStalled`.")


class GpuCollectorAlertConfig(Section):
    for_duration: PromDuration = Field("10m", description="How long NVML sampling must fail before the alert fires.")
    severity: Severity = Field("warning", description="`severity` label of `ModelHealthGpuCollectorDown`.")


class GpuCostConfig(Section):
    """Prices that turn the GPU time and energy attributed to each model into a cost.

    Any currency: the cost rules and panels carry the number, not the unit. For a price per GPU
    that differs by node, join OpenCost's `node_gpu_hourly_cost` instead (docs/gpu.md).
    """

    price_per_gpu_hour: float | None = Field(
        None, ge=0, description="Price of one GPU for one hour; unset: no cost from GPU time."
    )
    price_per_kwh: float | None = Field(None, ge=0, description="Price of one kWh; unset: no cost from GPU energy.")


RetrainReason = Literal["feature_drift", "performance_drop", "stale"]


class RetrainAlertConfig(Section):
    reasons: tuple[RetrainReason, ...] = Field(
        ("feature_drift", "performance_drop", "stale"), description="Conditions that recommend retraining."
    )
    for_duration: PromDuration = Field(
        "2h", description="How long a reason must hold before retraining is recommended (longer than the drift alerts)."
    )
    severity: Severity = Field("info", description="`severity` label of `ModelHealthRetrainRecommended`.")

    @field_validator("reasons")
    @classmethod
    def _some_reason(cls, reasons: tuple[str, ...]) -> tuple[str, ...]:
        require_items(reasons)
        return tuple(dict.fromkeys(reasons))


class PrometheusRuleConfig(Section):
    name: Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=253)] = Field(
        "model-health-exporter", description="`metadata.name` of the PrometheusRule."
    )
    namespace: str | None = Field(None, min_length=1, description="`metadata.namespace`; unset: left to `kubectl -n`.")
    labels: dict[str, str] = Field(
        default_factory=dict, description="Extra `metadata.labels`, e.g. `release: prometheus` for ruleSelector."
    )


class PagerDutyReceiverConfig(Section):
    routing_key_file: NonEmpty = Field(
        "/etc/alertmanager/secrets/model-health-pagerduty/routing-key",
        description="Events API v2 routing key file, as Alertmanager sees it.",
    )
    url: HttpUrl | None = Field(None, description="Events API URL; unset: PagerDuty's own.")
    severities: tuple[Severity, ...] = Field(("critical",), description="Severities paged.")


class RelayReceiverConfig(Section):
    url: HttpUrl = Field(
        "http://model-health-relay:9880/v1/alertmanager", description="The relay's `POST /v1/alertmanager` URL."
    )
    credentials_file: NonEmpty = Field(
        "/etc/alertmanager/secrets/model-health-relay/token",
        description="Bearer token file (the relay's `auth.token_file` secret), as Alertmanager sees it.",
    )
    send_resolved: bool = Field(False, description="Also send resolved notifications to the relay.")
    repeat_interval: PromDuration = Field(
        "4h",
        description="How often a still-firing recommendation is sent again (the relay dedupes and keeps a cooldown).",
    )


class AlertmanagerConfig(Section):
    resolve_timeout: PromDuration = Field("5m", description="`global.resolve_timeout`.")
    group_by: tuple[LabelName, ...] = Field(
        ("alertname", "model", "model_version"), description="Labels that group alerts into one notification."
    )
    group_wait: PromDuration = Field("30s", description="Wait before the first notification of a group.")
    group_interval: PromDuration = Field("5m", description="Wait before notifying about new alerts of a group.")
    repeat_interval: PromDuration = Field("4h", description="Wait before repeating a notification.")
    default_webhook_url: HttpUrl | None = Field(
        None,
        description="Webhook of the default receiver (warnings, info); unset: they are only shown in Alertmanager.",
    )
    pagerduty: PagerDutyReceiverConfig = Field(default_factory=PagerDutyReceiverConfig, description="Paging.")
    relay: RelayReceiverConfig = Field(default_factory=RelayReceiverConfig, description="The retraining relay.")


class AlertsConfig(Settings):
    """``model-health alerts --out DIR [--config FILE]``: thresholds, windows, SLAs and routing."""

    jobs: ScrapeJobsConfig = Field(default_factory=ScrapeJobsConfig, description="Scrape jobs of the components.")
    windows: tuple[WindowName, ...] = Field(
        (), description="Windows the drift and performance alerts read; empty: every window."
    )
    labels: dict[LabelName, PlainValue] = Field(
        default_factory=dict, description="Extra labels on every alert (e.g. `team: ml-platform`)."
    )
    runbook_base_url: HttpUrl = Field(
        "https://github.com/model-health/model-health-exporter/blob/main/docs/runbooks",
        description="Where `docs/runbooks/` is published; `runbook_url` is this + `/<AlertName>.md`.",
    )
    aggregator_url: HttpUrl | None = Field(
        None,
        description=(
            "External URL of the aggregator as a browser reaches it (its Ingress, e.g. "
            "`https://model-health.example.com`). Set, the drift, concept-drift and retraining alerts carry a "
            "`report_url` annotation linking to the drift report of their model, version and window, and "
            "PagerDuty incidents a `Drift report` link. Unset: no link."
        ),
    )
    feature_drift: FeatureDriftAlertConfig = Field(
        default_factory=FeatureDriftAlertConfig, description="Feature drift."
    )
    concept_drift: ConceptDriftAlertConfig = Field(
        default_factory=ConceptDriftAlertConfig, description="Concept drift."
    )
    gpu_latency: GpuLatencyAlertConfig = Field(
        default_factory=GpuLatencyAlertConfig, description="GPU saturated while latency breaks its SLA."
    )
    stale_model: StaleModelAlertConfig = Field(default_factory=StaleModelAlertConfig, description="Model age.")
    predictions_absent: AbsenceAlertConfig = Field(default_factory=AbsenceAlertConfig, description="No predictions.")
    exporter_down: ExporterDownAlertConfig = Field(
        default_factory=ExporterDownAlertConfig, description="Scrape targets down."
    )
    consumer_lag: ConsumerLagAlertConfig = Field(default_factory=ConsumerLagAlertConfig, description="Kafka lag.")
    dead_letters: DeadLetterAlertConfig = Field(default_factory=DeadLetterAlertConfig, description="Rejected records.")
    evaluation_stalled: EvaluationStalledAlertConfig = Field(
        default_factory=EvaluationStalledAlertConfig, description="Evaluation loop."
    )
    gpu_collector: GpuCollectorAlertConfig = Field(
        default_factory=GpuCollectorAlertConfig, description="NVML sampling."
    )
    retrain: RetrainAlertConfig = Field(default_factory=RetrainAlertConfig, description="Retraining recommendation.")
    gpu_cost: GpuCostConfig = Field(
        default_factory=GpuCostConfig,
        description="Prices for the recording rules of GPU cost per 1,000 predictions (each rule only when its price is set).",
    )
    prometheus_rule: PrometheusRuleConfig = Field(
        default_factory=PrometheusRuleConfig, description="The `PrometheusRule` manifest."
    )
    alertmanager: AlertmanagerConfig = Field(default_factory=AlertmanagerConfig, description="Alertmanager routing.")


class DashboardsConfig(Settings):
    """``model-health dashboards --out DIR [--config FILE]``."""

    title_prefix: str = Field("Model Health / ", description="Prefix of every dashboard title.")
    uid_prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{0,24}$")] = Field(
        "model-health-", description="Prefix of every dashboard uid (uids stay stable across runs)."
    )
    tags: tuple[NonEmpty, ...] = Field(("model-health",), description="Tags on every dashboard; the first is common.")
    refresh: PromDuration = Field("1m", description="Auto-refresh interval.")
    time_from: PromDuration = Field("6h", description="Default time range, back from now.")
    datasource_regex: str = Field("", description="Regex limiting the Prometheus datasource variable's choices.")
    jobs: ScrapeJobsConfig = Field(default_factory=ScrapeJobsConfig, description="Scrape jobs of the components.")
    psi_threshold: float = Field(RULE_DEFAULTS.psi_threshold, gt=0, description="PSI drawn as the drift threshold.")
    ks_threshold: float = Field(RULE_DEFAULTS.ks_threshold, gt=0, description="KS D drawn as the drift threshold.")
    latency_sla_seconds: float = Field(0.25, gt=0, description="Latency objective drawn on latency panels.")
    gpu_utilization: float = Field(0.85, gt=0, le=1, description="GPU busy share drawn as saturation.")
    max_model_age: PromDuration = Field("30d", description="Model age drawn as stale.")
    top_features: int = Field(20, ge=1, le=200, description="Rows of the most-drifted-features table.")
    aggregator_url: HttpUrl | None = Field(
        None,
        description=(
            "External URL of the aggregator as a browser reaches it; set, the model dashboard links to the drift "
            "report of the selected model, version and window, and each feature of its drift table to that "
            "feature's chart. Unset: no links."
        ),
    )
    gpu_cost: GpuCostConfig = Field(
        default_factory=GpuCostConfig,
        description="Prices for the model dashboard's GPU cost panels (each panel only when its price is set).",
    )
