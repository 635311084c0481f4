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
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError

from detectors.decision import DriftRule
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
        "model-health-summaries", description="Topic carrying per-interval summaries from sidecars in summaries mode."
    )
    deadletter_topic: Topic = Field(
        "model-health-deadletter", description="Topic that receives undecodable records, with the reason in a header."
    )
    format: Literal["auto", "json", "ndjson", "arrow", "kserve", "seldon"] = Field(
        "auto", description="Wire format of the predictions topic; `auto` detects it per message."
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
    tracking_uri: NonEmpty = Field(description="MLflow tracking server URI; trained times come from its registry.")
    model_name_map: dict[str, str] = Field(
        default_factory=dict, description="Model name → MLflow registered model name, where they differ."
    )


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

    @property
    def servers(self) -> tuple[str, ...]:
        return split_servers(self.bootstrap_servers)


class GpuConfig(_Section):
    mode: Literal["sidecar", "node", "off"] = Field(
        "sidecar", description="`sidecar`: the GPUs visible to this pod; `node`: every GPU on the node; `off`."
    )
    interval_seconds: float = Field(1.0, gt=0, description="Time between NVML samples of utilization and memory.")
    slow_interval_seconds: float = Field(
        15.0, gt=0, description="Time between costlier NVML queries (per-process memory, device info)."
    )

    @field_validator("slow_interval_seconds")
    @classmethod
    def _slow_not_faster(cls, value: float, info: ValidationInfo) -> float:
        fast = info.data.get("interval_seconds")
        if fast is not None and value < fast:
            raise ValueError(f"must be at least interval_seconds ({fast})")
        return value


class SidecarHttpConfig(HttpConfig):
    port: Port = Field(9878, description="Port of the HTTP server (ingest and `/metrics`).")
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1, description="Largest request body accepted; larger gets 413.")


class QueueConfig(_Section):
    max_records: int = Field(
        10_000, ge=1, description="Most records held for Kafka; beyond it new records are dropped and counted."
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
