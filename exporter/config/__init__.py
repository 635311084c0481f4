"""The configuration of every long-running command: one YAML file, one pydantic-settings model.

The modules, in the order a config file meets them:

``loading``
    Reading it. ``load_config(path, AggregatorConfig)`` parses strict YAML (duplicate keys are
    errors), lets ``MODEL_HEALTH_…`` environment variables override it (environment > YAML file >
    defaults), validates, reports every mistake as one ``UserError`` line naming the file and the
    dotted path of each bad field, and resolves relative paths against the file's directory.
    ``Settings``, the base of every command's root model, holds that precedence.
``fields``
    What every role's sections are built from: the ``Section`` base (unknown keys refused, frozen),
    the annotated field types (``Topic``, ``Port``, ``Version``, ``BootstrapServers``,
    ``PromDuration`` …), ``split_servers``, ``duration_seconds`` and the ``http`` section.
``aggregator``, ``sidecar``, ``relay``, ``injector``, ``generators``, ``gates``
    Validating it, one module per role: ``AggregatorConfig``; ``SidecarConfig`` and the GPU node
    agent's ``NodeConfig``; ``RelayConfig`` and its target kinds; ``InjectorConfig`` and the
    injected sidecar's settings; ``AlertsConfig`` and ``DashboardsConfig`` for the generated
    alerts and dashboards; ``GatesConfig`` for the generated rollout gates and autoscalers.
``reference``
    Documenting it: ``config_reference`` renders the Markdown table of every key (the README's
    configuration references), ``field_paths`` lists the same keys.

Callers import from ``exporter.config`` itself, which re-exports the public names of all of them.
"""

from __future__ import annotations

from exporter.config.aggregator import (
    AggregatorConfig,
    AggregatorHttpConfig,
    AggregatorKafkaConfig,
    DedupConfig,
    EvaluationConfig,
    FeatureThresholds,
    JoinConfig,
    LabelsConfig,
    MlflowConfig,
    ModelConfig,
    PerformanceEstimationConfig,
    StateConfig,
    Thresholds,
    WindowConfig,
)
from exporter.config.fields import (
    BootstrapServers,
    HttpConfig,
    HttpUrl,
    NonEmpty,
    Port,
    PromDuration,
    Topic,
    Version,
    WindowName,
    duration_seconds,
    split_servers,
)
from exporter.config.gates import (
    AnalysisConfig,
    AutoscalingConfig,
    CanaryConfig,
    GateConditions,
    GatesConfig,
    ScaledModelConfig,
)
from exporter.config.generators import (
    AbsenceAlertConfig,
    AlertmanagerConfig,
    AlertsConfig,
    ConceptDriftAlertConfig,
    ConsumerLagAlertConfig,
    DashboardsConfig,
    DeadLetterAlertConfig,
    EvaluationStalledAlertConfig,
    ExporterDownAlertConfig,
    FeatureDriftAlertConfig,
    GpuCollectorAlertConfig,
    GpuCostConfig,
    GpuLatencyAlertConfig,
    LabelName,
    PagerDutyReceiverConfig,
    PlainValue,
    PrometheusRuleConfig,
    RelayReceiverConfig,
    RetrainAlertConfig,
    RetrainReason,
    ScrapeJobsConfig,
    Severity,
    StaleModelAlertConfig,
)
from exporter.config.injector import (
    InjectedGpuConfig,
    InjectedSidecarConfig,
    InjectorConfig,
    InjectorHttpConfig,
    InjectorTlsConfig,
    Quantity,
    ResourceName,
    SidecarResourcesConfig,
)
from exporter.config.loading import (
    ENV_NESTED_DELIMITER,
    ENV_PREFIX,
    MAX_ERRORS_SHOWN,
    load_config,
)
from exporter.config.reference import (
    config_reference,
    field_paths,
)
from exporter.config.relay import (
    ArgoTargetConfig,
    GithubTargetConfig,
    KubeflowTargetConfig,
    RelayAuthConfig,
    RelayConfig,
    RelayHttpConfig,
    RelayRetrainConfig,
    RelayRetryConfig,
    RelayStateConfig,
    RelayTargetConfig,
    RelayTargetKind,
    RelayTimeoutsConfig,
)
from exporter.config.sidecar import (
    DEFAULT_LATENCY_BUCKETS,
    GpuConfig,
    KServeJoinConfig,
    LatencyConfig,
    NodeConfig,
    NodeGpuConfig,
    NodeHttpConfig,
    QueueConfig,
    SidecarConfig,
    SidecarHttpConfig,
    SidecarKafkaConfig,
    SidecarModelConfig,
)

__all__ = [
    # loading
    "ENV_PREFIX",
    "ENV_NESTED_DELIMITER",
    "MAX_ERRORS_SHOWN",
    "load_config",
    # fields
    "split_servers",
    "NonEmpty",
    "Version",
    "BootstrapServers",
    "Topic",
    "WindowName",
    "Port",
    "HttpUrl",
    "duration_seconds",
    "PromDuration",
    "HttpConfig",
    # aggregator
    "AggregatorKafkaConfig",
    "DedupConfig",
    "JoinConfig",
    "AggregatorHttpConfig",
    "FeatureThresholds",
    "Thresholds",
    "PerformanceEstimationConfig",
    "ModelConfig",
    "WindowConfig",
    "EvaluationConfig",
    "LabelsConfig",
    "StateConfig",
    "MlflowConfig",
    "AggregatorConfig",
    # sidecar
    "DEFAULT_LATENCY_BUCKETS",
    "SidecarModelConfig",
    "SidecarKafkaConfig",
    "KServeJoinConfig",
    "GpuConfig",
    "SidecarHttpConfig",
    "QueueConfig",
    "LatencyConfig",
    "SidecarConfig",
    "NodeHttpConfig",
    "NodeGpuConfig",
    "NodeConfig",
    # relay
    "RelayTargetKind",
    "RelayHttpConfig",
    "RelayAuthConfig",
    "RelayStateConfig",
    "RelayRetrainConfig",
    "RelayRetryConfig",
    "RelayTimeoutsConfig",
    "GithubTargetConfig",
    "KubeflowTargetConfig",
    "ArgoTargetConfig",
    "RelayTargetConfig",
    "RelayConfig",
    # injector
    "Quantity",
    "ResourceName",
    "InjectorTlsConfig",
    "InjectorHttpConfig",
    "SidecarResourcesConfig",
    "InjectedGpuConfig",
    "InjectedSidecarConfig",
    "InjectorConfig",
    # generators
    "LabelName",
    "PlainValue",
    "Severity",
    "ScrapeJobsConfig",
    "FeatureDriftAlertConfig",
    "ConceptDriftAlertConfig",
    "GpuLatencyAlertConfig",
    "StaleModelAlertConfig",
    "AbsenceAlertConfig",
    "ExporterDownAlertConfig",
    "ConsumerLagAlertConfig",
    "DeadLetterAlertConfig",
    "EvaluationStalledAlertConfig",
    "GpuCollectorAlertConfig",
    "GpuCostConfig",
    "RetrainReason",
    "RetrainAlertConfig",
    "PrometheusRuleConfig",
    "PagerDutyReceiverConfig",
    "RelayReceiverConfig",
    "AlertmanagerConfig",
    "AlertsConfig",
    "DashboardsConfig",
    # gates
    "GateConditions",
    "AnalysisConfig",
    "CanaryConfig",
    "ScaledModelConfig",
    "AutoscalingConfig",
    "GatesConfig",
    # reference
    "config_reference",
    "field_paths",
]
