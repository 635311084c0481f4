"""The configuration of every long-running command: one YAML file, one pydantic-settings model.

``load_config(path, AggregatorConfig)`` reads the YAML file, lets ``MODEL_HEALTH_…``
environment variables override it (nested keys joined by ``__``: ``MODEL_HEALTH_HTTP__PORT=9999``
sets ``http.port``; lists and sections also take JSON, e.g. ``MODEL_HEALTH_WINDOWS='[…]'``), and
validates the result. Precedence: environment > YAML file > defaults. Environment variables win
even over keyword arguments given to the classes directly, because the file arrives that way.

Every mistake surfaces as one ``UserError`` line naming the file, the dotted path of each bad
field and what is wrong with it, e.g. ``config.yaml: http.port: Input should be less than or
equal to 65535``. Unknown keys are errors, so a typo never silently falls back to a default.
Relative paths in the file (``models[].reference``, ``state.dir``) resolve against the
directory of the config file, so a config and its profiles can move together.

The allowed lateness of records is the top-level ``allowed_lateness_seconds``: it applies to
event-time bucketing as a whole, not to one window. ``config_reference`` renders the Markdown
table the README's configuration reference is made of.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import types
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import annotated_types
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError

from detectors.decision import DriftRule
from exporter.decoders.formats import CONFIGURABLE as CONFIGURABLE_WIRE_FORMATS
from exporter.errors import UserError

ENV_PREFIX = "MODEL_HEALTH_"
ENV_NESTED_DELIMITER = "__"
# Single source of the drift thresholds' defaults: the decision rule itself.
_RULE_DEFAULTS = DriftRule()
# Prometheus client's default buckets, in seconds: a familiar starting point for latency.
DEFAULT_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
MAX_ERRORS_SHOWN = 10

C = TypeVar("C", bound=BaseSettings)


# ---------------------------------------------------------------------------------------------
# Field types shared by several sections.


def _version_text(value: object) -> object:
    """Accept ``version: 7`` but refuse ``version: 1.10``, which YAML has already turned into 1.1."""
    if isinstance(value, bool):
        return value  # left for str validation to refuse
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        raise ValueError(f"write the version as a quoted string, YAML read it as the number {value!r}")
    return value


def _join_servers(value: object) -> object:
    """A YAML list of brokers is as natural as kafka's comma-separated string; take both."""
    if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        return ",".join(value)
    return value


def split_servers(text: str) -> tuple[str, ...]:
    """``"a:9092, b:9092"`` → ``("a:9092", "b:9092")``."""
    return tuple(part.strip() for part in text.split(","))


def _check_servers(text: str) -> str:
    for server in split_servers(text):
        if not server:
            raise ValueError("empty entry in the comma-separated broker list")
        host, sep, port = server.rpartition(":")
        if sep and (not host or not port.isdigit() or not 1 <= int(port) <= 65535):
            raise ValueError(f"{server!r} is not host:port with a port in 1-65535")
    return text


NonEmpty = Annotated[str, Field(min_length=1)]
Version = Annotated[str, BeforeValidator(_version_text), Field(min_length=1)]
BootstrapServers = Annotated[str, BeforeValidator(_join_servers), AfterValidator(_check_servers)]
# Kafka's own rule for topic names.
Topic = Annotated[str, Field(min_length=1, max_length=249, pattern=r"^[A-Za-z0-9._-]+$")]
# Window names end up as a label value and in dashboard variables: keep them plain.
WindowName = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")]
Port = Annotated[int, Field(ge=1, le=65535)]


def _require_items(items: tuple[Any, ...]) -> None:
    # Checked after item validation, not as min_length: pydantic's tuple length check would
    # also fire, confusingly, whenever an item fails.
    if not items:
        raise ValueError("List should have at least 1 item")


class _Section(BaseModel):
    """A config section: typos are errors and a loaded config never changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------------------------------------
# Aggregator sections.


class AggregatorKafkaConfig(_Section):
    bootstrap_servers: BootstrapServers = Field(
        "127.0.0.1:9092", description="Kafka brokers as a comma-separated `host:port` list (a YAML list also works)."
    )
    group_id: NonEmpty = Field("model-health", description="Consumer group shared by all aggregator replicas.")
    predictions_topic: Topic = Field("model-predictions", description="Topic carrying prediction records.")
    labels_topic: Topic = Field("model-labels", description="Topic carrying ground-truth labels.")
    summaries_topic: Topic = Field(
        "model-health-summaries",
        description=(
            "Topic carrying mergeable summaries keyed by model: sidecars' per-interval summaries, and in "
            "`mode: scale_out` the replicas' partial summaries. Give it at least as many partitions as replicas."
        ),
    )
    deadletter_topic: Topic = Field(
        "model-health-deadletter", description="Topic that receives undecodable records, with the reason in a header."
    )
    mode: Literal["single", "scale_out"] = Field(
        "single",
        description=(
            "`single`: one replica consumes every partition and exports every model. `scale_out`: any number of "
            "replicas in `group_id`; partial summaries go by model onto `summaries_topic` and each model's one "
            "owner (group `<group_id>-merge`) merges and exports it, exactly once (see the README's Scale-out)."
        ),
    )
    partial_flush_seconds: float = Field(
        2.0, gt=0, description="Scale-out: longest a partial summary is held before it is published."
    )
    partial_flush_records: int = Field(
        20_000, ge=1, description="Scale-out: records in one partition's partial summary that publish it early."
    )
    format: Literal[("auto", *CONFIGURABLE_WIRE_FORMATS)] = Field(  # the wire-format table's configurable rows
        "auto",
        description=(
            "Wire format of the predictions topic; `auto` detects it per message, any other value refuses "
            "messages in another format. `seldon` consumes each model's `seldon.<namespace>.model.<name>."
            "inputs|outputs` topics instead of `predictions_topic`."
        ),
    )
    client: Literal["kafka-python", "confluent"] = Field(
        "kafka-python", description="Kafka client library; `confluent` needs the `confluent` extra and is faster."
    )
    session_timeout_ms: int = Field(
        10_000, ge=1, description="Consumer group session timeout; a replica silent this long loses its partitions."
    )
    heartbeat_interval_ms: int = Field(
        3_000, ge=1, description="Consumer heartbeat interval; must be below `session_timeout_ms`."
    )
    poll_timeout_seconds: float = Field(
        1.0,
        ge=1,
        le=3,
        description="Longest wait in one poll; 1-3 s keeps the consumer inside poll() so group joins are not lost.",
    )
    max_poll_records: int = Field(500, ge=1, description="Most records one poll returns.")
    max_poll_interval_ms: int = Field(
        60_000,
        ge=1_000,
        description=(
            "Longest gap between polls before a replica is dropped; also how long a rebalance waits for a "
            "replica that died without leaving (kill -9) before reassigning its partitions."
        ),
    )

    @field_validator("heartbeat_interval_ms")
    @classmethod
    def _heartbeat_below_session(cls, value: int, info: ValidationInfo) -> int:
        session = info.data.get("session_timeout_ms")
        if session is not None and value >= session:
            raise ValueError(f"must be below session_timeout_ms ({session})")
        return value

    @property
    def servers(self) -> tuple[str, ...]:
        return split_servers(self.bootstrap_servers)


class FeatureThresholds(_Section):
    """Per-feature overrides: an unset value inherits the model's."""

    psi: float | None = Field(None, gt=0, description="PSI effect-size threshold for this feature.")
    ks: float | None = Field(None, gt=0, le=1, description="KS D effect-size threshold for this feature.")
    js: float | None = Field(None, gt=0, le=1, description="Jensen-Shannon distance threshold for this feature.")
    alpha: float | None = Field(None, gt=0, lt=1, description="False-alarm rate of the null-quantile test.")
    min_samples: int | None = Field(None, ge=0, description="Fewest window samples before the feature can drift.")


class Thresholds(_Section):
    psi: float = Field(_RULE_DEFAULTS.psi_threshold, gt=0, description="PSI effect-size threshold.")
    ks: float = Field(_RULE_DEFAULTS.ks_threshold, gt=0, le=1, description="KS D effect-size threshold.")
    js: float = Field(_RULE_DEFAULTS.js_threshold, gt=0, le=1, description="Jensen-Shannon distance threshold.")
    alpha: float = Field(
        _RULE_DEFAULTS.alpha, gt=0, lt=1, description="False-alarm rate per feature of the null-quantile test."
    )
    min_samples: int = Field(
        _RULE_DEFAULTS.min_samples, ge=0, description="Fewest window samples before any feature can drift."
    )
    features: dict[str, FeatureThresholds] = Field(
        default_factory=dict, description="Per-feature overrides, keyed by feature name."
    )

    def rule(self, feature: str | None = None) -> DriftRule:
        """The decision rule for ``feature``: its overrides over the model's thresholds."""
        override = self.features.get(feature) if feature is not None else None

        def pick(name: str) -> Any:
            value = getattr(override, name) if override is not None else None
            return getattr(self, name) if value is None else value

        return DriftRule(
            psi_threshold=pick("psi"),
            ks_threshold=pick("ks"),
            js_threshold=pick("js"),
            alpha=pick("alpha"),
            min_samples=pick("min_samples"),
        )


class ModelConfig(_Section):
    name: NonEmpty = Field(description="Model name, as records carry it in `model`.")
    version: Version = Field(description="Model version, as records carry it in `model_version` (quote it in YAML).")
    reference: Path = Field(description="Reference profile (`model-health reference build --out`).")
    namespace: str | None = Field(
        None, min_length=1, description="Kubernetes namespace of the model; names Seldon topics and `model_info`."
    )
    thresholds: Thresholds = Field(default_factory=Thresholds, description="Drift decision thresholds.")


class WindowConfig(_Section):
    name: WindowName = Field(description="Window name, the `window` label value (e.g. `1h`).")
    bucket_seconds: int = Field(gt=0, description="Width of one time bucket.")
    buckets: int = Field(gt=0, description="Buckets in the window; the window spans `bucket_seconds × buckets`.")

    @property
    def seconds(self) -> int:
        return self.bucket_seconds * self.buckets


class EvaluationConfig(_Section):
    interval_seconds: float = Field(15.0, gt=0, description="Time between evaluations of all windows.")


class LabelsConfig(_Section):
    join_ttl_seconds: float = Field(
        3600.0, gt=0, description="How long a prediction waits for its label before it counts as unlabelled."
    )
    max_pending: int = Field(
        100_000, ge=1, description="Most predictions buffered for the label join; the oldest go first."
    )


class HttpConfig(_Section):
    host: NonEmpty = Field("0.0.0.0", description="Address the HTTP server (`/metrics`, `/healthz`, `/readyz`) binds.")
    port: Port = Field(9877, description="Port of the HTTP server.")


class StateConfig(_Section):
    dir: Path = Field(Path("/var/lib/model-health"), description="Directory for state checkpoints.")
    checkpoint_interval_seconds: float = Field(10.0, gt=0, description="Time between state checkpoints.")


class MlflowConfig(_Section):
    tracking_uri: NonEmpty = Field(
        description="MLflow tracking server URL (http or https); trained times come from its model registry."
    )
    model_name_map: dict[str, str] = Field(
        default_factory=dict, description="Model name → MLflow registered model name, where they differ."
    )
    refresh_interval_seconds: float = Field(
        300.0, gt=0, description="Time between registry lookups of every model version's trained time."
    )
    timeout_seconds: float = Field(10.0, gt=0, description="Longest wait for one registry request.")

    @field_validator("tracking_uri")
    @classmethod
    def _http_tracking_uri(cls, uri: str) -> str:
        from urllib.parse import urlsplit

        # Lookups are plain REST calls; file:, sqlite: or databricks URIs need the mlflow client.
        parts = urlsplit(uri)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be the http:// or https:// URL of an MLflow tracking server")
        return uri


def _settings_config() -> SettingsConfigDict:
    return SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        # Templated manifests often render unset values as "": treat them as not set.
        env_ignore_empty=True,
        extra="forbid",
        frozen=True,
    )


class _Settings(BaseSettings):
    model_config = _settings_config()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The YAML file arrives as init kwargs; putting env first makes it win over the file.
        # No .env or secrets dir: a config should not change with the working directory.
        return env_settings, init_settings


class AggregatorConfig(_Settings):
    """``model-health aggregator --config FILE``."""

    kafka: AggregatorKafkaConfig = Field(default_factory=AggregatorKafkaConfig, description="Kafka consumer.")
    models: tuple[ModelConfig, ...] = Field(description="Models to monitor, one entry per version; at least one.")
    windows: tuple[WindowConfig, ...] = Field(
        (WindowConfig(name="1h", bucket_seconds=60, buckets=60),),
        description="Sliding windows evaluated against the reference; at least one.",
    )
    allowed_lateness_seconds: int = Field(
        300, ge=0, description="How far behind the newest event time a record may arrive and still count."
    )
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig, description="Evaluation loop.")
    labels: LabelsConfig = Field(default_factory=LabelsConfig, description="Joining labels to predictions.")
    http: HttpConfig = Field(default_factory=HttpConfig, description="HTTP server.")
    state: StateConfig = Field(default_factory=StateConfig, description="State checkpoints.")
    mlflow: MlflowConfig | None = Field(None, description="MLflow registry for trained times; unset: profile metadata.")

    @field_validator("models")
    @classmethod
    def _models_unique(cls, models: tuple[ModelConfig, ...]) -> tuple[ModelConfig, ...]:
        _require_items(models)
        seen: set[tuple[str, str]] = set()
        for model in models:
            key = (model.name, model.version)
            if key in seen:
                raise ValueError(f"model {model.name!r} version {model.version!r} is listed twice")
            seen.add(key)
        return models

    @field_validator("windows")
    @classmethod
    def _windows_unique(cls, windows: tuple[WindowConfig, ...]) -> tuple[WindowConfig, ...]:
        _require_items(windows)
        duplicates = _duplicates(window.name for window in windows)
        if duplicates:
            raise ValueError(f"window names must be unique, repeated: {', '.join(duplicates)}")
        return windows

    @model_validator(mode="after")
    def _seldon_needs_namespaces(self) -> AggregatorConfig:
        if self.kafka.format == "seldon":
            for index, model in enumerate(self.models):
                if model.namespace is None:
                    raise ValueError(
                        f"models[{index}].namespace: required when kafka.format is seldon "
                        "(it names the topics seldon.<namespace>.model.<name>.inputs|outputs)"
                    )
        return self

    @field_validator("mlflow")
    @classmethod
    def _mlflow_names_known(cls, mlflow: MlflowConfig | None, info: ValidationInfo) -> MlflowConfig | None:
        models = info.data.get("models")
        if mlflow is None or models is None:  # models failed on their own; don't pile on
            return mlflow
        unknown = sorted(set(mlflow.model_name_map) - {model.name for model in models})
        if unknown:
            raise ValueError(f"model_name_map names models not in models: {', '.join(unknown)}")
        return mlflow


# ---------------------------------------------------------------------------------------------
# Sidecar sections.


class SidecarModelConfig(_Section):
    name: NonEmpty = Field(description="Name of the model this sidecar serves beside.")
    version: Version = Field(description="Version of the model (quote it in YAML).")
    namespace: str | None = Field(None, min_length=1, description="Kubernetes namespace of the model.")
    reference: Path | None = Field(
        None, description="Reference profile of the model; required in `kafka.mode: summaries` (its bins)."
    )


class SidecarKafkaConfig(_Section):
    bootstrap_servers: BootstrapServers = Field(
        "127.0.0.1:9092", description="Kafka brokers as a comma-separated `host:port` list (a YAML list also works)."
    )
    predictions_topic: Topic = Field("model-predictions", description="Topic the sidecar writes records to.")
    summaries_topic: Topic = Field(
        "model-health-summaries", description="Topic the sidecar writes interval summaries to in `summaries` mode."
    )
    batch_max_records: int = Field(500, ge=1, description="Most records in one Kafka message.")
    batch_max_seconds: float = Field(1.0, gt=0, description="Longest a record waits before its batch is sent.")
    format: Literal["ndjson", "arrow"] = Field("ndjson", description="Encoding of batched records.")
    mode: Literal["records", "summaries"] = Field(
        "records", description="Forward every record, or one mergeable summary per interval."
    )
    summary_bucket_seconds: int = Field(
        60,
        gt=0,
        description="Event-time width of one summary in `summaries` mode; must divide the aggregator's `bucket_seconds`.",
    )
    deadletter_topic: Topic = Field(
        "model-health-deadletter", description="Topic that receives refused records, with the reason in a header."
    )
    client: Literal["kafka-python", "confluent"] = Field(
        "kafka-python", description="Kafka client library; `confluent` needs the `confluent` extra."
    )

    @property
    def servers(self) -> tuple[str, ...]:
        return split_servers(self.bootstrap_servers)


class KServeJoinConfig(_Section):
    join_ttl_seconds: float = Field(
        60.0, gt=0, description="How long a logged request waits for its response (and a response for its request)."
    )
    join_max_pending: int = Field(
        10_000, ge=1, description="Most unpaired request/response events held; the oldest leave first, counted."
    )


class GpuConfig(_Section):
    mode: Literal["sidecar", "node", "off"] = Field(
        "sidecar", description="`sidecar`: the GPUs visible to this pod; `node`: every GPU on the node; `off`."
    )
    interval_seconds: float = Field(1.0, gt=0, description="Time between NVML samples of utilization and memory.")
    slow_interval_seconds: float = Field(
        15.0,
        gt=0,
        description="Time between costly NVML queries (energy counter ~3 ms, PCIe throughput ~21 ms) and MIG layout reads.",
    )
    slow_queries: bool = Field(
        True, description="Read the energy counter and PCIe throughput; `false` leaves those series out."
    )

    @field_validator("slow_interval_seconds")
    @classmethod
    def _slow_not_faster(cls, value: float, info: ValidationInfo) -> float:
        fast = info.data.get("interval_seconds")
        if fast is not None and value < fast:
            raise ValueError(f"must be at least interval_seconds ({fast})")
        return value


class NodeHttpConfig(HttpConfig):
    port: Port = Field(9879, description="Port of the node agent's HTTP server (`/metrics`, `/healthz`, `/readyz`).")


class NodeGpuConfig(GpuConfig):
    mode: Literal["node", "off"] = Field(  # type: ignore[assignment]
        "node", description="`node`: every GPU on the node, processes attributed to pods; `off`."
    )


class NodeConfig(_Settings):
    """``model-health node --config FILE``: the GPU node agent (a DaemonSet with ``hostPID``)."""

    gpu: NodeGpuConfig = Field(default_factory=NodeGpuConfig, description="NVML GPU sampling.")
    http: NodeHttpConfig = Field(default_factory=NodeHttpConfig, description="HTTP server.")
    proc_root: Path = Field(
        Path("/proc"),
        description="Where host processes' `<pid>/cgroup` files are read for pod attribution (`/proc` with hostPID).",
    )


class SidecarHttpConfig(HttpConfig):
    port: Port = Field(9878, description="Port of the HTTP server (ingest and `/metrics`).")
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1, description="Largest request body accepted; larger gets 413.")


class QueueConfig(_Section):
    max_records: int = Field(
        10_000, ge=1, description="Most records held for Kafka; beyond it ingest answers 503 and counts the refusal."
    )
    acknowledge: Literal["delivered", "queued"] = Field(
        "delivered",
        description=(
            "When ingest answers 2xx in `records` mode: once Kafka has the records (`delivered`: a `kill -9` loses "
            "nothing answered for), or once they are in this in-memory queue (`queued`: no wait, but a `kill -9` "
            "loses what it holds). `summaries` mode answers once records are folded into a summary."
        ),
    )
    acknowledge_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description=(
            "With `acknowledge: delivered`, how long a request waits for Kafka; records not yet sent by then are "
            "withdrawn and the request gets 503 `delivery_timeout`."
        ),
    )


class LatencyConfig(_Section):
    sla_seconds: float = Field(0.25, gt=0, description="Latency objective; added to `buckets` if missing.")
    buckets: tuple[float, ...] = Field(
        DEFAULT_LATENCY_BUCKETS,
        validate_default=True,
        description="Upper bounds of the request-duration histogram buckets, increasing; at least one.",
    )

    @field_validator("buckets")
    @classmethod
    def _buckets_sorted_with_sla(cls, buckets: tuple[float, ...], info: ValidationInfo) -> tuple[float, ...]:
        _require_items(buckets)
        if any(bound <= 0 for bound in buckets):
            raise ValueError("bucket bounds must be positive")
        if any(a >= b for a, b in zip(buckets, buckets[1:])):
            raise ValueError("bucket bounds must be strictly increasing")
        # The SLA must be a bucket bound, or "share of requests within SLA" can't be read off.
        sla = info.data.get("sla_seconds")
        if sla is not None and sla not in buckets:
            buckets = tuple(sorted((*buckets, sla)))
        return buckets


class SidecarConfig(_Settings):
    """``model-health sidecar --config FILE``."""

    model: SidecarModelConfig = Field(description="The model served beside this sidecar.")
    kafka: SidecarKafkaConfig = Field(default_factory=SidecarKafkaConfig, description="Kafka producer.")
    gpu: GpuConfig = Field(default_factory=GpuConfig, description="NVML GPU sampling.")
    http: SidecarHttpConfig = Field(default_factory=SidecarHttpConfig, description="HTTP server.")
    queue: QueueConfig = Field(default_factory=QueueConfig, description="Buffer between ingest and Kafka.")
    latency: LatencyConfig = Field(default_factory=LatencyConfig, description="Request-duration histogram.")
    kserve: KServeJoinConfig = Field(
        default_factory=KServeJoinConfig, description="Pairing KServe payload-logger requests with their responses."
    )

    @model_validator(mode="after")
    def _summaries_need_a_profile(self) -> SidecarConfig:
        if self.kafka.mode == "summaries" and self.model.reference is None:
            raise ValueError("model.reference: required when kafka.mode is summaries (summaries use its bins)")
        return self


# ---------------------------------------------------------------------------------------------
# Relay sections.


def _check_http_url(text: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when asked
    except ValueError as exc:
        raise ValueError(f"bad port in URL: {exc}") from None
    return text


HttpUrl = Annotated[str, AfterValidator(_check_http_url)]
RelayTargetKind = Literal["generic", "argo", "kubeflow", "github"]


class RelayHttpConfig(HttpConfig):
    port: Port = Field(9880, description="Port of the HTTP server (`POST /v1/alertmanager` and `/metrics`).")
    max_body_bytes: int = Field(
        4 * 1024 * 1024, ge=1, description="Largest Alertmanager notification accepted; larger gets 413."
    )


class RelayAuthConfig(_Section):
    token_file: Path = Field(
        description="File holding the bearer token Alertmanager must send (`http_config.authorization`)."
    )


class RelayStateConfig(_Section):
    dir: Path = Field(
        Path("/var/lib/model-health/relay"),
        description="Directory of the relay's SQLite state: pending deliveries, seen alerts, cooldowns.",
    )
    dedup_retention_seconds: float = Field(
        7 * 24 * 3600.0, gt=0, description="How long an alert (fingerprint + startsAt) is remembered as handled."
    )
    history_retention_seconds: float = Field(
        7 * 24 * 3600.0, gt=0, description="How long finished deliveries stay in the state for inspection."
    )


class RelayRetrainConfig(_Section):
    alert_name: NonEmpty = Field(
        "ModelHealthRetrainRecommended", description="`alertname` the relay acts on; other alerts are ignored."
    )
    cooldown_seconds: float = Field(
        6 * 3600.0, ge=0, description="Least time between two retraining requests for one model (and version)."
    )
    model_label: NonEmpty = Field("model", description="Alert label naming the model.")
    version_label: NonEmpty = Field(
        "model_version", description="Alert label naming the model version; part of the cooldown key when present."
    )


class RelayRetryConfig(_Section):
    max_attempts: int = Field(8, ge=1, description="Attempts per delivery, the first included, before it fails.")
    base_backoff_seconds: float = Field(1.0, gt=0, description="Backoff before the first retry; doubles per retry.")
    max_backoff_seconds: float = Field(300.0, gt=0, description="Longest backoff between two attempts.")
    jitter: Literal["full", "none"] = Field(
        "full", description="`full`: wait a uniform random time up to the backoff; `none`: the backoff itself."
    )
    max_retry_after_seconds: float = Field(
        3600.0, ge=0, description="Longest `Retry-After` (from 429/503 answers) honoured."
    )

    @field_validator("max_backoff_seconds")
    @classmethod
    def _max_not_below_base(cls, value: float, info: ValidationInfo) -> float:
        base = info.data.get("base_backoff_seconds")
        if base is not None and value < base:
            raise ValueError(f"must be at least base_backoff_seconds ({base})")
        return value


class RelayTimeoutsConfig(_Section):
    connect_seconds: float = Field(5.0, gt=0, description="Longest wait to connect to the target.")
    read_seconds: float = Field(30.0, gt=0, description="Longest wait for the target's answer.")


class GithubTargetConfig(_Section):
    repository: str = Field(
        pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", description="`owner/repo` receiving `repository_dispatch`."
    )
    token_file: Path = Field(description="File holding a GitHub token allowed to dispatch to the repository.")
    event_type: str = Field(
        "model-health-retrain", min_length=1, max_length=100, description="`event_type` workflows filter on."
    )
    api_version: NonEmpty = Field("2022-11-28", description="`X-GitHub-Api-Version` header.")


class KubeflowTargetConfig(_Section):
    pipeline_id: NonEmpty = Field(description="Pipeline to run.")
    pipeline_version_id: str | None = Field(
        None, min_length=1, description="Pipeline version to run; unset: the pipeline's latest version."
    )
    experiment_id: str | None = Field(None, min_length=1, description="Experiment the run belongs to.")
    token_file: Path | None = Field(None, description="File holding a bearer token for the Pipelines API.")


class ArgoTargetConfig(_Section):
    endpoint: str = Field(
        "/model-health",
        pattern=r"^/",
        description="Path of the Argo Events webhook event source, appended to `target.url`.",
    )
    token_file: Path | None = Field(
        None, description="File holding the event source's `authSecret` bearer token, if it has one."
    )


class RelayTargetConfig(_Section):
    kind: RelayTargetKind = Field("generic", description="What receives retraining requests.")
    url: HttpUrl | None = Field(
        None,
        description=(
            "`generic`: the webhook URL; `argo`: the event source service; `kubeflow`: the Pipelines API "
            "base URL; `github`: the API base URL (unset: https://api.github.com)."
        ),
    )
    secret_file: Path | None = Field(
        None,
        description="File holding the Standard Webhooks secret (`whsec_…`); required for `generic` and `argo`.",
    )
    ca_file: Path | None = Field(None, description="CA bundle for an https target with a private CA.")
    github: GithubTargetConfig | None = Field(None, description="`repository_dispatch` options (kind `github`).")
    kubeflow: KubeflowTargetConfig | None = Field(None, description="Pipelines run options (kind `kubeflow`).")
    argo: ArgoTargetConfig | None = Field(None, description="Argo Events options (kind `argo`; defaults apply).")
    retry: RelayRetryConfig = Field(default_factory=RelayRetryConfig, description="Retries of a failed delivery.")
    timeouts: RelayTimeoutsConfig = Field(default_factory=RelayTimeoutsConfig, description="HTTP timeouts.")
    concurrency: int = Field(4, ge=1, le=64, description="Deliveries in flight at once.")

    @model_validator(mode="after")
    def _kind_options(self) -> RelayTargetConfig:
        sections = {"github": self.github, "kubeflow": self.kubeflow, "argo": self.argo}
        for name, section in sections.items():
            if section is not None and name != self.kind:
                raise ValueError(f"{name}: options for kind {name!r}, but kind is {self.kind!r}")
        if self.kind in ("github", "kubeflow") and sections[self.kind] is None:
            raise ValueError(f"{self.kind}: required when kind is {self.kind!r}")
        if self.kind != "github" and self.url is None:
            raise ValueError(f"url: required when kind is {self.kind!r}")
        if self.kind in ("generic", "argo") and self.secret_file is None:
            raise ValueError(f"secret_file: required when kind is {self.kind!r} (receivers verify the signature)")
        return self


class RelayConfig(_Settings):
    """``model-health relay --config FILE``."""

    target: RelayTargetConfig = Field(description="Where retraining requests go.")
    auth: RelayAuthConfig = Field(description="Authentication of Alertmanager's requests.")
    retrain: RelayRetrainConfig = Field(default_factory=RelayRetrainConfig, description="Which alerts act, how often.")
    http: RelayHttpConfig = Field(default_factory=RelayHttpConfig, description="HTTP server.")
    state: RelayStateConfig = Field(default_factory=RelayStateConfig, description="Durable relay state.")


# ---------------------------------------------------------------------------------------------
# Injector sections.

# A Kubernetes resource quantity as manifests write it (``50m``, ``64Mi``, ``1``, ``0.5``).
Quantity = Annotated[str, Field(pattern=r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")]
ResourceName = Literal["cpu", "memory", "ephemeral-storage"]


class InjectorTlsConfig(_Section):
    cert_file: Path = Field(
        Path("/etc/model-health/tls/tls.crt"), description="PEM certificate (chain) served; re-read when it changes."
    )
    key_file: Path = Field(
        Path("/etc/model-health/tls/tls.key"), description="PEM private key of `cert_file`; re-read when it changes."
    )


class InjectorHttpConfig(HttpConfig):
    port: Port = Field(8443, description="HTTPS port of `POST /mutate`, `/metrics`, `/healthz` and `/readyz`.")
    max_body_bytes: int = Field(8 * 1024 * 1024, ge=1, description="Largest AdmissionReview accepted; larger gets 413.")
    connection_timeout_seconds: float = Field(
        10.0, gt=0, description="Longest a client may take for the TLS handshake or one request."
    )


class SidecarResourcesConfig(_Section):
    requests: dict[ResourceName, Quantity] = Field(
        {"cpu": "50m", "memory": "64Mi"}, description="Resource requests of the injected sidecar."
    )
    limits: dict[ResourceName, Quantity] = Field(
        {"memory": "256Mi"}, description="Resource limits of the injected sidecar (no CPU limit: no throttling)."
    )


class InjectedGpuConfig(GpuConfig):
    mode: Literal["sidecar", "node", "off"] = Field(
        "off",
        description=(
            "`off`: the node agent covers GPUs, and a sidecar sees no GPU it was not allocated; `sidecar`; "
            "`node`. Pods may override it with the `model-health.io/gpu` annotation."
        ),
    )


class InjectedSidecarConfig(_Section):
    image: NonEmpty = Field(
        "ghcr.io/model-health/model-health-exporter:0.1.0", description="Image of the injected sidecar."
    )
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field(
        "IfNotPresent", description="Pull policy of the sidecar image."
    )
    native_sidecar: bool = Field(
        True,
        description=(
            "Inject as a native sidecar (init container with `restartPolicy: Always`, Kubernetes ≥ 1.29); "
            "false: a plain container, for older clusters."
        ),
    )
    port: Port = Field(9878, description="Port the sidecar listens on in the pod (`POST /`, `/v1/predictions`).")
    run_as_user: int = Field(10001, ge=1, description="Non-root UID (and GID) the sidecar runs as.")
    resources: SidecarResourcesConfig = Field(
        default_factory=SidecarResourcesConfig, description="Resources of the injected sidecar."
    )
    kafka: SidecarKafkaConfig = Field(
        default_factory=SidecarKafkaConfig, description="The `kafka` section of every injected sidecar's config."
    )
    gpu: InjectedGpuConfig = Field(
        default_factory=InjectedGpuConfig, description="The `gpu` section of every injected sidecar's config."
    )
    env: dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")], str] = Field(
        default_factory=dict, description="Extra environment of the sidecar, e.g. `MODEL_HEALTH_…` overrides."
    )


class InjectorConfig(_Settings):
    """``model-health injector --config FILE``."""

    http: InjectorHttpConfig = Field(default_factory=InjectorHttpConfig, description="HTTPS server.")
    tls: InjectorTlsConfig = Field(default_factory=InjectorTlsConfig, description="Serving certificate.")
    sidecar: InjectedSidecarConfig = Field(default_factory=InjectedSidecarConfig, description="The injected sidecar.")


# ---------------------------------------------------------------------------------------------
# Generated alerts and dashboards (``model-health alerts`` / ``model-health dashboards``).

# Prometheus's duration syntax: units in descending order, each at most once.
_DURATION = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
_DURATION_SECONDS = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)


def duration_seconds(text: str) -> float:
    """Seconds in a Prometheus duration such as ``1h30m``, ``30d`` or ``500ms``.

    >>> duration_seconds("1h30m"), duration_seconds("30d")
    (5400.0, 2592000.0)
    """
    match = _DURATION.match(text)
    if not text or match is None:
        raise ValueError(f"{text!r} is not a Prometheus duration such as 30s, 5m, 1h30m or 30d")
    total = sum(int(count) * unit for count, unit in zip(match.groups(), _DURATION_SECONDS) if count)
    if total <= 0:
        raise ValueError(f"{text!r} must be longer than 0")
    return float(total)


def _check_duration(text: str) -> str:
    duration_seconds(text)
    return text


PromDuration = Annotated[str, AfterValidator(_check_duration)]
LabelName = Annotated[str, Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$")]
# Values that go into PromQL regex matchers and alert labels unquoted: no regex metacharacters.
PlainValue = Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.:/-]+$")]
Severity = Literal["critical", "warning", "info"]


class ScrapeJobsConfig(_Section):
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


class FeatureDriftAlertConfig(_Section):
    for_duration: PromDuration = Field("30m", description="How long features must drift before the alert fires.")
    min_samples: int = Field(
        _RULE_DEFAULTS.min_samples, ge=0, description="Fewest predictions in the window for the alert to count it."
    )
    min_drifted_features: int = Field(1, ge=1, description="Fewest drifting features of one model that alert.")
    severity: Severity = Field("warning", description="`severity` label of `ModelHealthFeatureDrift`.")


_METRIC_NAMES = Annotated[tuple[Annotated[str, Field(pattern=r"^[a-z0-9_]+$")], ...], Field()]


class ConceptDriftAlertConfig(_Section):
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
    prediction_psi: float = Field(_RULE_DEFAULTS.psi_threshold, gt=0, description="Prediction PSI that is drift.")
    prediction_ks: float = Field(_RULE_DEFAULTS.ks_threshold, gt=0, le=1, description="Prediction KS D that is drift.")
    min_samples: int = Field(
        _RULE_DEFAULTS.min_samples, ge=0, description="Fewest predictions in the window for prediction drift to count."
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


class GpuLatencyAlertConfig(_Section):
    gpu_utilization: float = Field(0.85, gt=0, le=1, description="GPU busy share above which a GPU is saturated.")
    latency_quantile: float = Field(0.99, gt=0, lt=1, description="Latency quantile held to the SLA.")
    latency_sla_seconds: float = Field(0.25, gt=0, description="Latency objective of that quantile.")
    for_duration: PromDuration = Field("10m", description="How long both must hold before the alert fires.")
    severity: Severity = Field("critical", description="`severity` label of `ModelHealthGpuSaturatedLatencySla`.")


class StaleModelAlertConfig(_Section):
    max_model_age: PromDuration = Field("30d", description="Oldest a model may be (since training) before it is stale.")
    for_duration: PromDuration = Field("1h", description="How long before the alert fires.")
    severity: Severity = Field("warning", description="`severity` label of `ModelHealthModelStale`.")


class AbsenceAlertConfig(_Section):
    for_duration: PromDuration = Field("15m", description="How long without predictions before the alert fires.")
    severity: Severity = Field("warning", description="`severity` label of `ModelHealthPredictionsAbsent`.")


class ExporterDownAlertConfig(_Section):
    for_duration: PromDuration = Field("5m", description="How long a target is down before the alert fires.")
    severity: Severity = Field("critical", description="`severity` label of `ModelHealthExporterDown`.")


class ConsumerLagAlertConfig(_Section):
    min_lag_records: int = Field(1000, ge=0, description="Lag of a topic (all partitions) below which nothing alerts.")
    growth_range: PromDuration = Field("15m", description="Range over which the lag's growth is measured.")
    for_duration: PromDuration = Field("15m", description="How long the lag must grow before the alert fires.")
    severity: Severity = Field("warning", description="`severity` label of `ModelHealthConsumerLagGrowing`.")


class DeadLetterAlertConfig(_Section):
    min_rate_per_second: float = Field(1.0, ge=0, description="Rejected records per second of a topic that alert.")
    min_ratio: float = Field(0.01, ge=0, le=1, description="Share of a topic's records rejected that alerts.")
    for_duration: PromDuration = Field("5m", description="How long both must hold before the alert fires.")
    severity: Severity = Field("warning", description="`severity` label of `ModelHealthDeadLetterSpike`.")


class EvaluationStalledAlertConfig(_Section):
    max_age: PromDuration = Field("5m", description="Longest time since the last successful evaluation pass.")
    for_duration: PromDuration = Field("5m", description="How long before the alert fires.")
    severity: Severity = Field("warning", description="`severity` label of `ModelHealthEvaluationStalled`.")


class GpuCollectorAlertConfig(_Section):
    for_duration: PromDuration = Field("10m", description="How long NVML sampling must fail before the alert fires.")
    severity: Severity = Field("warning", description="`severity` label of `ModelHealthGpuCollectorDown`.")


RetrainReason = Literal["feature_drift", "performance_drop", "stale"]


class RetrainAlertConfig(_Section):
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
        _require_items(reasons)
        return tuple(dict.fromkeys(reasons))


class PrometheusRuleConfig(_Section):
    name: Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=253)] = Field(
        "model-health-exporter", description="`metadata.name` of the PrometheusRule."
    )
    namespace: str | None = Field(None, min_length=1, description="`metadata.namespace`; unset: left to `kubectl -n`.")
    labels: dict[str, str] = Field(
        default_factory=dict, description="Extra `metadata.labels`, e.g. `release: prometheus` for ruleSelector."
    )


class PagerDutyReceiverConfig(_Section):
    routing_key_file: NonEmpty = Field(
        "/etc/alertmanager/secrets/model-health-pagerduty/routing-key",
        description="Events API v2 routing key file, as Alertmanager sees it.",
    )
    url: HttpUrl | None = Field(None, description="Events API URL; unset: PagerDuty's own.")
    severities: tuple[Severity, ...] = Field(("critical",), description="Severities paged.")


class RelayReceiverConfig(_Section):
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


class AlertmanagerConfig(_Section):
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


class AlertsConfig(_Settings):
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
    prometheus_rule: PrometheusRuleConfig = Field(
        default_factory=PrometheusRuleConfig, description="The `PrometheusRule` manifest."
    )
    alertmanager: AlertmanagerConfig = Field(default_factory=AlertmanagerConfig, description="Alertmanager routing.")


class DashboardsConfig(_Settings):
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
    psi_threshold: float = Field(_RULE_DEFAULTS.psi_threshold, gt=0, description="PSI drawn as the drift threshold.")
    ks_threshold: float = Field(_RULE_DEFAULTS.ks_threshold, gt=0, description="KS D drawn as the drift threshold.")
    latency_sla_seconds: float = Field(0.25, gt=0, description="Latency objective drawn on latency panels.")
    gpu_utilization: float = Field(0.85, gt=0, le=1, description="GPU busy share drawn as saturation.")
    max_model_age: PromDuration = Field("30d", description="Model age drawn as stale.")
    top_features: int = Field(20, ge=1, le=200, description="Rows of the most-drifted-features table.")


# ---------------------------------------------------------------------------------------------
# Loading.


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys, which plain YAML loading resolves silently."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            duplicate = key in seen
        except TypeError:  # unhashable: construct_mapping reports it with its own message
            continue
        if duplicate:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: no such config file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, not a config file") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: {_yaml_problem(exc)}") from None
    if data is None:  # an empty file: every value from the environment or defaults
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of sections at the top level, got {_yaml_kind(data)}")
    return data


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return " ".join(f"{where}invalid YAML: {problem}".split())


def _yaml_kind(value: object) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return f"a {type(value).__name__}"


def load_config(path: str | Path, model_cls: type[C]) -> C:
    """Read ``path`` (YAML), apply ``MODEL_HEALTH_…`` overrides, validate as ``model_cls``.

    Raises ``UserError`` with one line naming the file and every bad field.
    """
    path = Path(path)
    data = _read_yaml(path)
    unknown = [key for key in data if not isinstance(key, str) or key.startswith("_")]
    if unknown:
        # Keys like ``_env_file`` would otherwise reach pydantic-settings as its own options.
        raise UserError(f"{path}: {unknown[0]}: unknown key")
    try:
        config = model_cls(**data)
    except ValidationError as exc:
        raise UserError(f"{path}: {_describe_errors(exc.errors(), model_cls)}") from None
    except SettingsError as exc:  # e.g. an environment variable that should hold JSON doesn't
        raise UserError(f"{path}: {_settings_problem(exc)}") from None
    return _rebase(config, path.absolute().parent)


def _settings_problem(exc: SettingsError) -> str:
    """pydantic-settings names the field but not the variable; users set the variable."""
    found = re.search(r'field "([^"]+)"', str(exc))
    if found is None:
        return " ".join(str(exc).split())
    field = found.group(1)
    variable = ENV_PREFIX + field.upper()
    cause = exc.__cause__
    problem = "is not valid JSON" if isinstance(cause, json.JSONDecodeError) else "cannot be parsed"
    detail = f": {cause}" if cause is not None else ""
    return " ".join(f"{field}: environment variable {variable} {problem}{detail}".split())


def _rebase(value: Any, base: Path) -> Any:
    """``value`` with relative paths made relative to ``base``; untouched objects stay shared."""
    if isinstance(value, Path):
        return value if value.is_absolute() else base / value
    if isinstance(value, BaseModel):
        updates = {}
        for name in type(value).model_fields:
            old = getattr(value, name)
            new = _rebase(old, base)
            if new is not old:
                updates[name] = new
        return value.model_copy(update=updates) if updates else value
    if isinstance(value, tuple):
        items = tuple(_rebase(item, base) for item in value)
        return items if any(a is not b for a, b in zip(items, value)) else value
    if isinstance(value, dict):
        rebased = {key: _rebase(item, base) for key, item in value.items()}
        return rebased if any(rebased[k] is not value[k] for k in value) else value
    return value


def _describe_errors(errors: Sequence[Mapping[str, Any]], model_cls: type[BaseModel]) -> str:
    parts = [_describe_error(error, model_cls) for error in errors[:MAX_ERRORS_SHOWN]]
    if len(errors) > MAX_ERRORS_SHOWN:
        parts.append(f"and {len(errors) - MAX_ERRORS_SHOWN} more")
    return "; ".join(parts)


def _describe_error(error: Mapping[str, Any], model_cls: type[BaseModel]) -> str:
    loc = tuple(error["loc"])
    kind = error["type"]
    message = str(error["msg"])
    if kind == "value_error":
        message = message.removeprefix("Value error, ")
    elif kind == "extra_forbidden":
        message = _unknown_key_message(str(loc[-1]), _field_names_at(model_cls, loc[:-1]))
    # Sequences are tuples inside (immutability); to someone writing YAML they are lists.
    message = message.replace("a valid tuple", "a list").replace("Tuple should", "List should")
    source = _env_source(loc)
    if source:
        message += f" (from environment variable {source})"
    where = ".".join(str(part) for part in loc)
    return " ".join(f"{where}: {message}".split()) if where else " ".join(message.split())


def _unknown_key_message(key: str, allowed: list[str] | None) -> str:
    if not allowed:
        return "unknown key"
    close = difflib.get_close_matches(key, allowed, n=1)
    if close:
        return f"unknown key (did you mean {close[0]!r}?)"
    return f"unknown key (expected one of: {', '.join(allowed)})"


def _env_source(loc: tuple[Any, ...]) -> str | None:
    """The environment variable that supplied the value at ``loc``, if one did."""
    environ = {key.upper() for key in os.environ}
    for end in range(len(loc), 0, -1):
        name = ENV_PREFIX + ENV_NESTED_DELIMITER.join(str(part) for part in loc[:end]).upper()
        if name in environ:
            return name
    return None


def _unwrap(annotation: Any) -> Any:
    """Strip ``Annotated`` and ``X | None`` down to the type that holds fields or items."""
    while True:
        if get_origin(annotation) is Annotated:
            annotation = get_args(annotation)[0]
            continue
        if _is_union(annotation):
            args = [arg for arg in get_args(annotation) if arg is not type(None)]
            if len(args) == 1:
                annotation = args[0]
                continue
        return annotation


def _is_union(annotation: Any) -> bool:
    return get_origin(annotation) in (Union, types.UnionType)


def _field_names_at(model_cls: type[BaseModel], loc: tuple[Any, ...]) -> list[str] | None:
    """Field names of the section at ``loc``, walking through lists and mappings."""
    current: Any = model_cls
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = field.annotation
        elif get_origin(current) in (tuple, list):
            current = get_args(current)[0]
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        else:
            return None
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return None


def _duplicates(items: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    repeated: list[str] = []
    for item in items:
        if item in seen and item not in repeated:
            repeated.append(item)
        seen.add(item)
    return repeated


# ---------------------------------------------------------------------------------------------
# Reference documentation.


def config_reference(model_cls: type[BaseModel]) -> str:
    """A Markdown table of every key of ``model_cls``: path, type, default, description.

    Items of lists appear as ``models[].name``, entries of mappings as ``features.<key>.psi``.
    """
    lines = ["| key | type | default | description |", "| --- | --- | --- | --- |"]
    for path, field in _walk_fields(model_cls, ""):
        cells = (f"`{path}`", _type_text(field), _default_text(field), field.description or "")
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def field_paths(model_cls: type[BaseModel]) -> list[str]:
    """Every key path ``config_reference`` documents, in its order."""
    return [path for path, _ in _walk_fields(model_cls, "")]


def _walk_fields(model_cls: type[BaseModel], prefix: str) -> Iterable[tuple[str, FieldInfo]]:
    for name, field in model_cls.model_fields.items():
        path = f"{prefix}{name}"
        yield path, field
        nested, suffix = _nested_model(field.annotation)
        if nested is not None:
            yield from _walk_fields(nested, f"{path}{suffix}.")


def _nested_model(annotation: Any) -> tuple[type[BaseModel] | None, str]:
    """The section type under ``annotation`` and how its path continues (``[]``, ``.<key>``)."""
    annotation = _unwrap(annotation)
    suffix = ""
    if get_origin(annotation) in (tuple, list):
        annotation, suffix = _unwrap(get_args(annotation)[0]), "[]"
    elif get_origin(annotation) is dict:
        annotation, suffix = _unwrap(get_args(annotation)[1]), ".<key>"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, suffix
    return None, ""


_SCALAR_NAMES = {str: "string", int: "integer", float: "number", bool: "boolean", Path: "path"}


def _type_text(field: FieldInfo) -> str:
    text = _annotation_text(field.annotation)
    bounds = _bounds_text([*field.metadata, *_annotated_metadata(field.annotation)])
    return f"{text} ({bounds})" if bounds else text


def _annotation_text(annotation: Any) -> str:
    annotation = _unwrap(annotation)
    origin = get_origin(annotation)
    if origin is Literal:
        return "one of " + ", ".join(f"`{value}`" for value in get_args(annotation))
    if origin in (tuple, list):
        return f"list of {_plural(_annotation_text(get_args(annotation)[0]))}"
    if origin is dict:
        key, value = get_args(annotation)
        return f"mapping of {_annotation_text(key)} → {_annotation_text(value)}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section"
    return _SCALAR_NAMES.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _plural(text: str) -> str:
    return {"section": "sections", "number": "numbers", "string": "strings", "integer": "integers"}.get(text, text)


def _annotated_metadata(annotation: Any) -> list[Any]:
    """Constraints carried by ``Annotated`` aliases such as ``Port``, also inside ``X | None``."""
    found: list[Any] = []
    stack = [annotation]
    while stack:
        current = stack.pop()
        if get_origin(current) is Annotated:
            base, *metadata = get_args(current)
            for item in metadata:
                found.extend(item.metadata if isinstance(item, FieldInfo) else [item])
            stack.append(base)
        elif _is_union(current):
            stack.extend(get_args(current))
    return found


def _bounds_text(metadata: Iterable[Any]) -> str:
    parts = []
    for item in metadata:
        if isinstance(item, annotated_types.Gt):
            parts.append(f"> {item.gt}")
        elif isinstance(item, annotated_types.Ge):
            parts.append(f"≥ {item.ge}")
        elif isinstance(item, annotated_types.Lt):
            parts.append(f"< {item.lt}")
        elif isinstance(item, annotated_types.Le):
            parts.append(f"≤ {item.le}")
        elif isinstance(item, annotated_types.MinLen) and item.min_length > 0:
            parts.append(f"at least {item.min_length}")
    return ", ".join(parts)


def _default_text(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if isinstance(value, BaseModel):
        return ""  # a section: its keys carry the defaults
    if value is None:
        return "unset"
    if isinstance(value, dict) and not value:
        return "`{}`"
    return f"`{_plain(value)}`"


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, Path)):
        return str(value)
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_plain(item) for item in value) + "]"
    if isinstance(value, BaseModel):
        return _plain(value.model_dump(mode="json"))
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {_plain(item)}" for key, item in value.items()) + "}"
    return json.dumps(value)
