"""``model-health aggregator``: ``AggregatorConfig`` and its sections.

Kafka consumption (and ``mode: scale_out``), the monitored models with their drift thresholds,
the sliding windows, the label join, state checkpoints and the optional MLflow registry. The
allowed lateness of records is the top-level ``allowed_lateness_seconds``: it applies to
event-time bucketing as a whole, not to one window.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from detectors.decision import DriftRule
from detectors.drift_statistics import DECISIONS
from detectors.performance_estimation import DropRule
from exporter.config.fields import (
    RULE_DEFAULTS,
    BootstrapServers,
    HttpConfig,
    NonEmpty,
    Section,
    Topic,
    Version,
    WindowName,
    repeated,
    require_items,
    split_servers,
)
from exporter.config.loading import Settings
from exporter.decoders.formats import CONFIGURABLE as CONFIGURABLE_WIRE_FORMATS
from exporter.decoders.inference_pairs import LOGGER_MODES
from exporter.pipeline.dedup import DEFAULT_MAX_IDS, DEFAULT_TTL_SECONDS


class AggregatorKafkaConfig(Section):
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
            "owner (group `<group_id>-merge`) merges and exports it, exactly once (see the docs' Scale-out page)."
        ),
    )
    partial_flush_seconds: float = Field(
        2.0, gt=0, description="Scale-out: longest a partial summary is held before it is published."
    )
    partial_flush_records: int = Field(
        20_000,
        ge=1,
        description=(
            "Scale-out: records in one partition's partial summary that publish it early. With `join_shards` on "
            "a hot model, raise it (e.g. 100000) for Arrow or NDJSON traffic: each range sends every shard a "
            "message, and the owner merges a report per message."
        ),
    )
    summaries_format: Literal[1, 2, 3] = Field(
        3,
        description=(
            "Scale-out: the wire format this replica writes on `summaries_topic` (every replica reads every "
            "format its build knows). During a rolling upgrade, keep the newest format the oldest replica "
            "reads until no such replica is left: 1, then 2 (packed counts, state snapshots), then 3 "
            "(buckets as packed rows, request keys in the join rows; state snapshots are published again "
            "from 3 on)."
        ),
    )
    join_shards: int = Field(
        0,
        ge=0,
        le=1024,
        description=(
            "Scale-out: spread each model's label join over this many shards, each on the summaries partition "
            "its key routes to, which sends the model's owner only what the shard made (performance slots and "
            "counts). 0: the owner joins its models' labels itself. Needs `summaries_format` 3, and every "
            "replica of a build that knows join shards (an older one refuses their messages): set it after a "
            "rolling upgrade, and changing it later re-routes the rows of labels not yet joined (they wait in "
            "their old shard until their TTL)."
        ),
    )
    snapshot_interval_seconds: float = Field(
        300.0,
        ge=0,
        description=(
            "Scale-out: how often the owner of a summaries partition publishes its merged state into that "
            "partition, so the next owner restores it and replays only what came after (0: at every checkpoint)."
        ),
    )
    # The choices are the wire-format table's configurable rows (built at import: mypy cannot read them).
    format: Literal[("auto", *CONFIGURABLE_WIRE_FORMATS)] = Field(  # type: ignore[valid-type]
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

    @field_validator("join_shards")
    @classmethod
    def _join_shards_need_keys(cls, value: int, info: ValidationInfo) -> int:
        written = info.data.get("summaries_format")
        if value and written is not None and written < 3:
            raise ValueError(f"join shards route request keys, which summaries_format {written} does not carry (use 3)")
        return value

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


class FeatureThresholds(Section):
    """Per-feature overrides: an unset value inherits the model's."""

    psi: float | None = Field(None, gt=0, description="PSI effect-size threshold for this feature.")
    ks: float | None = Field(None, gt=0, le=1, description="KS D effect-size threshold for this feature.")
    js: float | None = Field(None, gt=0, le=1, description="Jensen-Shannon distance threshold for this feature.")
    alpha: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="False-alarm rate of this feature's test on its own; it is tested at the smaller of this and "
        "the model's family-wise level.",
    )
    min_samples: int | None = Field(None, ge=0, description="Fewest window samples before the feature can drift.")


class Thresholds(Section):
    psi: float = Field(RULE_DEFAULTS.psi_threshold, gt=0, description="PSI effect-size threshold.")
    ks: float = Field(RULE_DEFAULTS.ks_threshold, gt=0, le=1, description="KS D effect-size threshold.")
    js: float = Field(RULE_DEFAULTS.js_threshold, gt=0, le=1, description="Jensen-Shannon distance threshold.")
    alpha: float = Field(
        RULE_DEFAULTS.alpha,
        gt=0,
        lt=1,
        description="False-alarm rate of one feature's test on its own (the model's only feature, or a cap).",
    )
    alpha_model: float = Field(
        RULE_DEFAULTS.alpha_model,
        gt=0,
        lt=1,
        description="Family-wise false-alarm rate: the chance that a stationary model flags any feature in one "
        "evaluation of a window. Each feature is tested at `min(alpha, alpha_model / N)`, N the features with at "
        "least `min_samples` values in the window.",
    )
    min_samples: int = Field(
        RULE_DEFAULTS.min_samples, ge=0, description="Fewest window samples before any feature can drift."
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

        # One ``<method>_threshold`` per gated statistic of the drift-statistics table (a test
        # keeps the fields above equal to the table's decision methods).
        thresholds = {f"{method}_threshold": pick(method) for method in DECISIONS}
        return DriftRule(
            **thresholds, alpha=pick("alpha"), min_samples=pick("min_samples"), alpha_model=self.alpha_model
        )


_DROP_DEFAULTS = DropRule()


class PerformanceEstimationConfig(Section):
    """When a label-free estimate counts as a drop below the reference (``detectors.performance_estimation.DropRule``)."""

    k: float = Field(
        _DROP_DEFAULTS.k,
        gt=0,
        description="Standard errors the estimate must fall below the reference's (3: ~0.13 % false alarms a metric).",
    )
    min_drop: float = Field(
        _DROP_DEFAULTS.min_drop, ge=0, lt=1, description="Smallest drop that counts, however large the window."
    )
    min_samples: int = Field(
        _DROP_DEFAULTS.min_samples, ge=0, description="Fewest scored predictions in the window before a drop counts."
    )

    def rule(self) -> DropRule:
        return DropRule(k=self.k, min_drop=self.min_drop, min_samples=self.min_samples)


class ModelConfig(Section):
    name: NonEmpty = Field(description="Model name, as records carry it in `model`.")
    version: Version = Field(description="Model version, as records carry it in `model_version` (quote it in YAML).")
    reference: Path = Field(description="Reference profile (`model-health reference build --out`).")
    namespace: str | None = Field(
        None, min_length=1, description="Kubernetes namespace of the model; names Seldon topics and `model_info`."
    )
    thresholds: Thresholds = Field(default_factory=Thresholds, description="Drift decision thresholds.")
    baseline_version: Version | None = Field(
        None,
        description=(
            "Another configured version of this model whose predictions this version's are compared with, window by "
            "window (a canary's stable version). Unset on every entry of a model with exactly two versions: the one "
            "listed second is compared with the one listed first."
        ),
    )
    performance_estimation: PerformanceEstimationConfig = Field(
        default_factory=PerformanceEstimationConfig,
        description="The drop rule of the label-free performance estimate (profiles with a calibration).",
    )
    slots: tuple[NonEmpty, ...] = Field(
        (),
        description=(
            "Deployment slots this version is served under, as the producer names them: KServe's endpoint "
            "(`default`, or `canary` during a canary rollout). A record that names no version belongs to the "
            "version whose slots hold its slot; once any version of a model lists slots, a slot no version lists "
            "is refused. Unset: a record without a version belongs to the model's only version."
        ),
    )
    logger_mode: Literal[LOGGER_MODES] = Field(  # type: ignore[valid-type]
        "auto",
        description=(
            "KServe payload logger `logger.mode` of this model. `all`: requests pair with their responses; "
            "`request` / `response`: every event is folded at once, with no partner to wait for and no serving "
            "error counted for the missing half; `auto`: pair, and learn `request` (or `response`) when a "
            "model's event leaves the join buffer unpaired without the other side ever having been seen."
        ),
    )
    seldon_topics: Literal["model", "pipeline"] = Field(
        "model",
        description=(
            "With `kafka.format: seldon`: read this model's `seldon.<namespace>.model.<name>.inputs|outputs` "
            "topics, or a Seldon Core 2 pipeline's `seldon.<namespace>.pipeline.<name>.inputs|outputs`."
        ),
    )


class DedupConfig(Section):
    max_ids: int = Field(
        DEFAULT_MAX_IDS,
        ge=0,
        description=(
            "Request ids remembered per model so that the same inference written twice (a client retrying after "
            "a 5xx, a producer retrying without idempotence) is counted once; `0` turns it off. About 80 bytes "
            "each."
        ),
    )
    ttl_seconds: float = Field(
        DEFAULT_TTL_SECONDS,
        gt=0,
        description="Request ids older than this behind the model's newest event time are forgotten.",
    )


class JoinConfig(Section):
    ttl_seconds: float = Field(
        60.0,
        gt=0,
        description=(
            "How long a logged request (KServe event, Seldon inputs message) waits for its response, and a "
            "response for its request."
        ),
    )
    max_pending: int = Field(
        50_000,
        ge=1,
        description=(
            "Most unpaired halves held; the oldest leave first, counted (a request as `no_response`, a response "
            "refused). It must hold what one side is read ahead of the other while catching up: a fetch of up to "
            "1 MB per partition, so about partitions × 1 MB / message size. About 2 KB each with a few features."
        ),
    )


class WindowConfig(Section):
    name: WindowName = Field(description="Window name, the `window` label value (e.g. `1h`).")
    bucket_seconds: int = Field(gt=0, description="Width of one time bucket.")
    buckets: int = Field(gt=0, description="Buckets in the window; the window spans `bucket_seconds × buckets`.")

    @property
    def seconds(self) -> int:
        return self.bucket_seconds * self.buckets


class EvaluationConfig(Section):
    interval_seconds: float = Field(15.0, gt=0, description="Time between evaluations of all windows.")


class LabelsConfig(Section):
    join_ttl_seconds: float = Field(
        3600.0, gt=0, description="How long a prediction waits for its label before it counts as unlabelled."
    )
    max_pending: int = Field(
        100_000, ge=1, description="Most predictions buffered for the label join; the oldest go first."
    )


class StateConfig(Section):
    dir: Path = Field(Path("/var/lib/model-health"), description="Directory for state checkpoints.")
    checkpoint_interval_seconds: float = Field(10.0, gt=0, description="Time between state checkpoints.")


class MlflowConfig(Section):
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


class AggregatorHttpConfig(HttpConfig):
    token_file: Path | None = Field(
        None,
        description=(
            "File holding a bearer token that `/metrics`, the drift report (`/report`, `/report/<model>`) and "
            "`/api/v1/drift` require (`Authorization: Bearer …`); `/healthz` and `/readyz` stay open. "
            "Unset: no token asked."
        ),
    )
    peers: str | None = Field(
        None,
        min_length=1,
        description=(
            "Scale-out: `host:port` of the other replicas (comma-separated; a name resolving to every replica, "
            "such as a headless Service, counts for all of them). A report of a model another replica owns is "
            "fetched from it, so any replica answers a `report_url`. Unset: such a request is a 404."
        ),
    )

    @field_validator("peers")
    @classmethod
    def _peers_are_host_port(cls, value: str | None) -> str | None:
        if value is None:
            return None
        for entry in value.split(","):
            host, _, port = entry.strip().rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{entry.strip()!r} is not host:port")
        return value


class AggregatorConfig(Settings):
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
    join: JoinConfig = Field(
        default_factory=JoinConfig, description="Pairing logged requests with their responses (KServe, Seldon)."
    )
    dedup: DedupConfig = Field(
        default_factory=DedupConfig, description="Dropping the same inference written twice, by request id."
    )
    http: AggregatorHttpConfig = Field(
        default_factory=AggregatorHttpConfig, description="HTTP server: `/metrics`, the drift report, health."
    )
    state: StateConfig = Field(default_factory=StateConfig, description="State checkpoints.")
    mlflow: MlflowConfig | None = Field(None, description="MLflow registry for trained times; unset: profile metadata.")

    @field_validator("models")
    @classmethod
    def _models_unique(cls, models: tuple[ModelConfig, ...]) -> tuple[ModelConfig, ...]:
        require_items(models)
        seen: set[tuple[str, str]] = set()
        for model in models:
            key = (model.name, model.version)
            if key in seen:
                raise ValueError(f"model {model.name!r} version {model.version!r} is listed twice")
            seen.add(key)
        per_model: dict[str, ModelConfig] = {}
        for index, model in enumerate(models):
            first = per_model.setdefault(model.name, model)
            for name in ("logger_mode", "seldon_topics"):
                if getattr(model, name) != getattr(first, name):
                    raise ValueError(
                        f"entry {index} (model {model.name!r} version {model.version!r}) sets {name} "
                        f"{getattr(model, name)!r} but version {first.version!r} sets {getattr(first, name)!r}; "
                        "it is one per model"
                    )
        slots: dict[tuple[str, str], str] = {}
        for index, model in enumerate(models):
            for slot in model.slots:
                other = slots.setdefault((model.name, slot), model.version)
                if other != model.version:
                    raise ValueError(
                        f"entry {index}: slot {slot!r} of model {model.name!r} is in the slots of versions "
                        f"{other!r} and {model.version!r}; a slot names one version"
                    )
        return models

    @field_validator("windows")
    @classmethod
    def _windows_unique(cls, windows: tuple[WindowConfig, ...]) -> tuple[WindowConfig, ...]:
        require_items(windows)
        duplicates = repeated(window.name for window in windows)
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

    @model_validator(mode="after")
    def _baselines_are_other_configured_versions(self) -> AggregatorConfig:
        versions: dict[str, set[str]] = {}
        for model in self.models:
            versions.setdefault(model.name, set()).add(model.version)
        for index, model in enumerate(self.models):
            baseline = model.baseline_version
            if baseline is None:
                continue
            if baseline == model.version:
                raise ValueError(f"models[{index}].baseline_version: a version cannot be its own baseline")
            if baseline not in versions[model.name]:
                known = ", ".join(sorted(versions[model.name] - {model.version})) or "none"
                raise ValueError(
                    f"models[{index}].baseline_version: {model.name!r} has no configured version {baseline!r} "
                    f"(other configured versions: {known})"
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
