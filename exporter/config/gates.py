"""``model-health gates``: ``GatesConfig``, the rollout gates' conditions and the autoscaled models.

The gates read the aggregator's series and the recording rules of ``model-health alerts``
(the version-against-baseline rules), so the window named here must be one the aggregator
evaluates and ``latency_quantile`` the alerts config's ``gpu_latency.latency_quantile``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from exporter.config.fields import RULE_DEFAULTS, HttpUrl, NonEmpty, PromDuration, Section, WindowName, repeated
from exporter.config.loading import Settings

# A Kubernetes object name (DNS-1123 subdomain, the rule Deployments and ScaledObjects follow).
ObjectName = Annotated[
    str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", max_length=253)
]
# A model name as it goes into a PromQL label matcher and a Flagger template variable, unquoted.
ModelName = Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.:/-]+$")]
EstimatedMetric = Literal["roc_auc", "accuracy", "precision", "recall", "f1"]


class GateConditions(Section):
    """What a canary must satisfy; each is one gate (docs/rollouts.md says what it means)."""

    max_drifting_features: int = Field(
        0, ge=0, description="Most features of the canary that may drift (its own decision rule) in the window."
    )
    max_latency_ratio: float = Field(
        1.2, gt=0, description="Largest canary / baseline latency quantile (`latency_quantile`, over 5m)."
    )
    max_error_ratio_increase: float = Field(
        0.01, ge=0, le=1, description="Largest canary error ratio minus the baseline's (over 5m)."
    )
    max_estimated_drop: float = Field(
        0.02,
        ge=0,
        le=1,
        description="Largest baseline − canary label-free estimate of `estimated_metric` in the window.",
    )
    estimated_metric: EstimatedMetric = Field("accuracy", description="The estimated metric that gate compares.")
    min_samples: int = Field(
        RULE_DEFAULTS.min_samples,
        ge=0,
        description="Fewest canary predictions in the window before the estimated-performance gate judges.",
    )


class AnalysisConfig(Section):
    """How often and how patiently the controllers measure."""

    interval: PromDuration = Field("1m", description="Flagger `analysis.interval` and Argo metric `interval`.")
    threshold: int = Field(5, ge=1, description="Flagger `analysis.threshold`: failed checks before rollback.")
    step_weight: int = Field(10, ge=1, le=100, description="Flagger `analysis.stepWeight` (percent).")
    max_weight: int = Field(50, ge=1, le=100, description="Flagger `analysis.maxWeight` (percent).")
    failure_limit: int = Field(2, ge=0, description="Argo metric `failureLimit`: failed measurements tolerated.")


class CanaryConfig(Section):
    """A Flagger Canary for one model's Deployment."""

    model: ModelName = Field(description="The model's name in the aggregator's config (`models[].name`).")
    deployment: ObjectName = Field(description="The Deployment Flagger canaries (`spec.targetRef.name`).")
    namespace: ObjectName | None = Field(None, description="Its namespace; unset: left to `kubectl -n`.")
    port: int = Field(8080, ge=1, le=65535, description="`spec.service.port` of the model server.")


class ScaledModelConfig(Section):
    """A model's Deployment scaled on its serving latency."""

    model: ModelName = Field(description="The model's name (`model` label of its serving metrics).")
    deployment: ObjectName = Field(description="The Deployment to scale.")
    namespace: ObjectName | None = Field(None, description="Its namespace; unset: left to `kubectl -n`.")
    target_seconds: float = Field(0.2, gt=0, description="Latency quantile to hold: above it, replicas are added.")
    min_replicas: int = Field(1, ge=1, description="Fewest replicas.")
    max_replicas: int = Field(10, ge=1, description="Most replicas.")

    @model_validator(mode="after")
    def _replica_range(self) -> ScaledModelConfig:
        if self.max_replicas < self.min_replicas:
            raise ValueError(f"max_replicas ({self.max_replicas}) is below min_replicas ({self.min_replicas})")
        return self


class AutoscalingConfig(Section):
    quantile: float = Field(0.95, gt=0, lt=1, description="Latency quantile the autoscalers hold to `target_seconds`.")
    range: PromDuration = Field("2m", description="Rate range of the latency histogram (short: scaling reacts fast).")
    models: tuple[ScaledModelConfig, ...] = Field(
        (), description="Models to scale: a KEDA ScaledObject and an HPA (prometheus-adapter) each."
    )

    @field_validator("models")
    @classmethod
    def _one_each(cls, models: tuple[ScaledModelConfig, ...]) -> tuple[ScaledModelConfig, ...]:
        duplicates = repeated(f"{m.namespace or ''}/{m.deployment}" for m in models)
        if duplicates:
            raise ValueError(f"a Deployment is scaled twice: {', '.join(duplicates)}")
        return models


class GatesConfig(Settings):
    """``model-health gates --out DIR [--config FILE]``: rollout gates and latency autoscaling as code."""

    prometheus_url: HttpUrl = Field(
        "http://prometheus-operated.monitoring.svc:9090",
        description="Prometheus as the controllers reach it (Flagger, Argo Rollouts, KEDA).",
    )
    namespace: ObjectName | None = Field(
        None, description="`metadata.namespace` of the MetricTemplates and the AnalysisTemplate; unset: `kubectl -n`."
    )
    window: WindowName = Field("1h", description="The aggregator window the drift and estimate gates read.")
    latency_quantile: float = Field(
        0.99, gt=0, lt=1, description="Must equal the alerts config's `gpu_latency.latency_quantile`: its rule is read."
    )
    conditions: GateConditions = Field(default_factory=GateConditions, description="The gates' conditions.")
    analysis: AnalysisConfig = Field(default_factory=AnalysisConfig, description="Measurement cadence.")
    canaries: tuple[CanaryConfig, ...] = Field((), description="Models to write a Flagger Canary for.")
    autoscaling: AutoscalingConfig = Field(default_factory=AutoscalingConfig, description="Latency autoscaling.")
    name_prefix: NonEmpty = Field("model-health", description="Prefix of every generated object's name.")
