"""Config files: the contract's examples load, every mistake is one line naming the field, env wins.

Loads pass their environment to ``load_config`` explicitly (``environ=``), so a ``MODEL_HEALTH_``
variable in the developer's shell cannot change the results; only the tests of the process
environment itself set variables, through the ``process_env`` fixture.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
import textwrap
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, get_args, get_origin

import pytest
from pydantic import BaseModel, ValidationError

from detectors.decision import DriftRule
from exporter.config import (
    DEFAULT_LATENCY_BUCKETS,
    AggregatorConfig,
    SidecarConfig,
    config_reference,
    field_paths,
    load_config,
)
from exporter.errors import UserError

CONTRACT = Path(__file__).resolve().parents[2] / "docs" / "contract.md"

# The contract's two examples (docs/contract.md, "Configuration"), spelled out so a test below
# can use them directly; test_embedded_examples_match_contract keeps them equal to the page.
AGGREGATOR_EXAMPLE = """\
kafka: {bootstrap_servers: "127.0.0.1:9092", group_id: model-health,
        predictions_topic: model-predictions, labels_topic: model-labels, format: auto}
models:
  - {name: fraud, version: "7", reference: profiles/fraud-7.parquet}
windows: [{name: 1h, bucket_seconds: 60, buckets: 60}]
http: {host: 0.0.0.0, port: 9877}
state: {dir: /var/lib/model-health}
"""
SIDECAR_EXAMPLE = """\
model: {name: fraud, version: "7", namespace: prod}
kafka: {bootstrap_servers: "127.0.0.1:9092", predictions_topic: model-predictions}
gpu: {mode: sidecar, interval_seconds: 1}      # sidecar | node | off
http: {host: 0.0.0.0, port: 9878}
"""
MINIMAL_AGGREGATOR = "models: [{name: fraud, version: '7', reference: /p/fraud.parquet}]\n"
MINIMAL_SIDECAR = "model: {name: fraud, version: '7'}\n"
# The environment of every load that is not about the environment: none at all.
NO_ENV: Mapping[str, str] = MappingProxyType({})


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load_error(path: Path, model_cls: type = AggregatorConfig, environ: Mapping[str, str] = NO_ENV) -> str:
    with pytest.raises(UserError) as info:
        load_config(path, model_cls, environ=environ)
    message = str(info.value)
    assert "\n" not in message, message
    assert message.startswith(f"{path}: "), message
    return message[len(f"{path}: ") :]


# --- the examples --------------------------------------------------------------------------


def contract_examples() -> list[str]:
    """The YAML examples of the contract's "Configuration" section; missing ones fail, never skip."""
    assert CONTRACT.is_file(), f"{CONTRACT} is missing: the config examples live there"
    text = CONTRACT.read_text(encoding="utf-8")
    assert "\n## Configuration\n" in text, f"{CONTRACT} has no '## Configuration' section"
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    examples = re.findall(r"```yaml\n(.*?)```", section, flags=re.S)
    assert len(examples) >= 2, f"{CONTRACT}: expected the aggregator and sidecar YAML examples under Configuration"
    return examples


def test_contract_examples_load(tmp_path: Path) -> None:
    aggregator_text, sidecar_text = contract_examples()[:2]
    aggregator = load_config(write(tmp_path, aggregator_text, "aggregator.yaml"), AggregatorConfig, environ=NO_ENV)
    sidecar = load_config(write(tmp_path, sidecar_text, "sidecar.yaml"), SidecarConfig, environ=NO_ENV)
    assert aggregator.models[0].name == "fraud" and aggregator.models[0].version == "7"
    assert sidecar.model.namespace == "prod" and sidecar.gpu.mode == "sidecar"


def test_embedded_examples_match_contract() -> None:
    examples = contract_examples()
    assert examples[:2] == [AGGREGATOR_EXAMPLE, SIDECAR_EXAMPLE]


def test_aggregator_example(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, AGGREGATOR_EXAMPLE), AggregatorConfig, environ=NO_ENV)
    assert config.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert config.kafka.servers == ("127.0.0.1:9092",)
    assert config.kafka.format == "auto"
    (model,) = config.models
    # Relative paths follow the config file, not the working directory.
    assert model.reference == tmp_path / "profiles" / "fraud-7.parquet"
    assert model.namespace is None
    assert [(w.name, w.bucket_seconds, w.buckets, w.seconds) for w in config.windows] == [("1h", 60, 60, 3600)]
    assert (config.http.host, config.http.port) == ("0.0.0.0", 9877)
    assert config.state.dir == Path("/var/lib/model-health")


def test_sidecar_example(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, SIDECAR_EXAMPLE), SidecarConfig, environ=NO_ENV)
    assert (config.model.name, config.model.version, config.model.namespace) == ("fraud", "7", "prod")
    assert config.kafka.predictions_topic == "model-predictions"
    assert (config.gpu.mode, config.gpu.interval_seconds) == ("sidecar", 1.0)
    assert config.http.port == 9878


# --- defaults ------------------------------------------------------------------------------


def test_aggregator_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL_AGGREGATOR), AggregatorConfig, environ=NO_ENV)
    kafka = config.kafka
    assert kafka.group_id == "model-health"
    assert (kafka.predictions_topic, kafka.labels_topic) == ("model-predictions", "model-labels")
    assert (kafka.summaries_topic, kafka.deadletter_topic) == ("model-health-summaries", "model-health-deadletter")
    assert (kafka.format, kafka.client) == ("auto", "kafka-python")
    assert kafka.poll_timeout_seconds == 1.0
    assert kafka.heartbeat_interval_ms < kafka.session_timeout_ms
    assert [(w.name, w.bucket_seconds, w.buckets) for w in config.windows] == [("1h", 60, 60)]
    assert config.allowed_lateness_seconds == 300
    assert config.evaluation.interval_seconds == 15
    assert (config.labels.join_ttl_seconds, config.labels.max_pending) == (3600, 100_000)
    assert (config.http.host, config.http.port) == ("0.0.0.0", 9877)
    assert config.state.checkpoint_interval_seconds == 10
    assert config.mlflow is None
    thresholds = config.models[0].thresholds
    assert (thresholds.psi, thresholds.ks, thresholds.js, thresholds.min_samples) == (0.2, 0.1, 0.1, 500)
    assert thresholds.rule() == DriftRule()


def test_sidecar_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL_SIDECAR), SidecarConfig, environ=NO_ENV)
    assert config.model.namespace is None
    assert (config.kafka.format, config.kafka.mode) == ("ndjson", "records")
    assert config.kafka.batch_max_records >= 1 and config.kafka.batch_max_seconds > 0
    assert config.gpu.mode == "sidecar" and config.gpu.slow_interval_seconds >= config.gpu.interval_seconds
    assert config.http.port == 9878 and config.http.max_body_bytes > 0
    assert config.queue.max_records >= 1
    assert config.latency.buckets == DEFAULT_LATENCY_BUCKETS
    assert config.latency.sla_seconds in config.latency.buckets


# --- what valid files can say --------------------------------------------------------------


def test_full_aggregator_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        kafka:
          bootstrap_servers: [broker-0:9092, broker-1:9092]
          client: confluent
          format: kserve
          session_timeout_ms: 2000
          heartbeat_interval_ms: 500
          poll_timeout_seconds: 3
          max_poll_records: 50
        models:
          - name: fraud
            version: 7
            reference: /profiles/fraud-7.parquet
            namespace: prod
            thresholds:
              psi: 0.25
              min_samples: 1000
              features:
                amount: {psi: 0.5, alpha: 0.001}
          - {name: fraud, version: "8", reference: fraud-8.parquet}
        windows:
          - {name: 5m, bucket_seconds: 10, buckets: 30}
          - {name: 24h, bucket_seconds: 900, buckets: 96}
        allowed_lateness_seconds: 0
        evaluation: {interval_seconds: 2.5}
        labels: {join_ttl_seconds: 60, max_pending: 10}
        state: {dir: state, checkpoint_interval_seconds: 1}
        mlflow:
          tracking_uri: http://mlflow:5000
          model_name_map: {fraud: fraud-detector}
        """,
    )
    config = load_config(path, AggregatorConfig, environ=NO_ENV)
    assert config.kafka.servers == ("broker-0:9092", "broker-1:9092")
    assert config.kafka.bootstrap_servers == "broker-0:9092,broker-1:9092"
    assert config.models[0].version == "7"  # an unquoted integer becomes the string it was
    assert config.models[1].reference == tmp_path / "fraud-8.parquet"
    assert config.state.dir == tmp_path / "state"
    thresholds = config.models[0].thresholds
    assert thresholds.rule("amount") == DriftRule(psi_threshold=0.5, alpha=0.001, min_samples=1000)
    assert thresholds.rule("other") == DriftRule(psi_threshold=0.25, min_samples=1000)
    assert config.models[1].thresholds.rule("amount") == DriftRule()
    assert [w.seconds for w in config.windows] == [300, 86_400]
    assert config.mlflow is not None and config.mlflow.model_name_map == {"fraud": "fraud-detector"}


def test_sla_is_inserted_into_buckets(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL_SIDECAR + "latency: {buckets: [0.1, 0.5, 1], sla_seconds: 0.3}\n")
    assert load_config(path, SidecarConfig, environ=NO_ENV).latency.buckets == (0.1, 0.3, 0.5, 1.0)
    path = write(tmp_path, MINIMAL_SIDECAR + "latency: {buckets: [0.1, 0.5, 1], sla_seconds: 0.5}\n")
    assert load_config(path, SidecarConfig, environ=NO_ENV).latency.buckets == (0.1, 0.5, 1.0)
    path = write(tmp_path, MINIMAL_SIDECAR + "latency: {sla_seconds: 0.3}\n")
    assert 0.3 in load_config(path, SidecarConfig, environ=NO_ENV).latency.buckets


def test_empty_file_takes_everything_from_the_environment(tmp_path: Path) -> None:
    environ = {"MODEL_HEALTH_MODEL__NAME": "fraud", "MODEL_HEALTH_MODEL__VERSION": "7"}
    config = load_config(write(tmp_path, ""), SidecarConfig, environ=environ)
    assert (config.model.name, config.model.version) == ("fraud", "7")


def test_config_is_immutable(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, AGGREGATOR_EXAMPLE), AggregatorConfig, environ=NO_ENV)
    with pytest.raises(ValidationError):
        config.http.port = 1  # type: ignore[misc]
    with pytest.raises(ValidationError):
        config.allowed_lateness_seconds = 1  # type: ignore[misc]


# --- every kind of invalid file ------------------------------------------------------------

AGGREGATOR_ERRORS = [
    (
        "models: [{name: m, version: '1', reference: p}]\nhttp: {port: 70000}\n",
        "http.port: Input should be less than or equal to 65535",
    ),
    (
        "models: [{name: m, version: '1', reference: p}]\nhttp: {port: 0}\n",
        "http.port: Input should be greater than or equal to 1",
    ),
    (
        "models: [{name: m, version: '1', reference: p}]\nhttp: {port: web}\n",
        "http.port: Input should be a valid integer, unable to parse string as an integer",
    ),
    ("models: [{name: m, reference: p}]\n", "models.0.version: Field required"),
    ("models: [{name: m, version: '1'}]\n", "models.0.reference: Field required"),
    (
        "models: [{name: m, version: 1.10, reference: p}]\n",
        "models.0.version: write the version as a quoted string, YAML read it as the number 1.1",
    ),
    ("models: [{name: m, version: true, reference: p}]\n", "models.0.version: Input should be a valid string"),
    ("models: [{name: '', version: '1', reference: p}]\n", "models.0.name: String should have at least 1 character"),
    ("kafka: {}\n", "models: Field required"),
    ("models: []\n", "models: List should have at least 1 item"),
    ("models: fraud\n", "models: Input should be a list"),
    (
        "models: [{name: m, version: '1', reference: p}, {name: m, version: '1', reference: q}]\n",
        "models: model 'm' version '1' is listed twice",
    ),
    (
        "models: [{name: m, version: '1', reference: p, slots: [canary]},"
        " {name: m, version: '2', reference: q, slots: [canary]}]\n",
        "models: entry 1: slot 'canary' of model 'm' is in the slots of versions '1' and '2'; a slot names one version",
    ),
    (
        "models: [{name: m, version: '1', reference: p}, {name: m, version: '2', reference: q, logger_mode: request}]\n",
        "models: entry 1 (model 'm' version '2') sets logger_mode 'request' but version '1' sets 'auto'; it is one "
        "per model",
    ),
    (
        "models: [{name: m, version: '1', reference: p, logger_mode: requests}]\n",
        "models.0.logger_mode: Input should be 'auto', 'all', 'request' or 'response'",
    ),
    (
        "models: [{name: m, version: '1', reference: p, refrence: q}]\n",
        "models.0.refrence: unknown key (did you mean 'reference'?)",
    ),
    ("modles: []\n", "models: Field required; modles: unknown key (did you mean 'models'?)"),
    (
        "models: [{name: m, version: '1', reference: p}]\nkafka: {bootstrap: x}\n",
        "kafka.bootstrap: unknown key (did you mean 'bootstrap_servers'?)",
    ),
    (
        "models: [{name: m, version: '1', reference: p}]\nhttp: {xyz: 1}\n",
        "http.xyz: unknown key (expected one of: host, port, token_file, peers)",
    ),
    (
        "models: [{name: m, version: '1', reference: p}]\nkafka: {format: avro}\n",
        "kafka.format: Input should be 'auto', 'json', 'ndjson', 'arrow', 'kserve' or 'seldon'",
    ),
    (
        "models: [{name: m, version: '1', reference: p}]\nkafka: {client: librdkafka}\n",
        "kafka.client: Input should be 'kafka-python' or 'confluent'",
    ),
    (
        "models: [{name: m, version: '1', reference: p}]\nkafka: {poll_timeout_seconds: 10}\n",
        "kafka.poll_timeout_seconds: Input should be less than or equal to 3",
    ),
    (
        "models: [{name: m, version: '1', reference: p}]\nkafka: {session_timeout_ms: 2000, heartbeat_interval_ms: 2000}\n",
        "kafka.heartbeat_interval_ms: must be below session_timeout_ms (2000)",
    ),
    (
        "models: [{name: m, version: '1', reference: p}]\nkafka: {bootstrap_servers: 'a:9092,,b:9092'}\n",
        "kafka.bootstrap_servers: empty entry in the comma-separated broker list",
    ),
    (
        "models: [{name: m, version: '1', reference: p}]\nkafka: {bootstrap_servers: 'a:99999'}\n",
        "kafka.bootstrap_servers: 'a:99999' is not host:port with a port in 1-65535",
    ),
    (
        "models: [{name: m, version: '1', reference: p}]\nkafka: {labels_topic: 'my labels'}\n",
        "kafka.labels_topic: String should match pattern '^[A-Za-z0-9._-]+$'",
    ),
    (
        "models: [{name: m, version: '1', reference: p, thresholds: {psi: -1}}]\n",
        "models.0.thresholds.psi: Input should be greater than 0",
    ),
    (
        "models: [{name: m, version: '1', reference: p, thresholds: {features: {amount: {ks: 2}}}}]\n",
        "models.0.thresholds.features.amount.ks: Input should be less than or equal to 1",
    ),
    (
        "models: [{name: m, version: '1', reference: p, thresholds: {features: {amount: {kss: 2}}}}]\n",
        "models.0.thresholds.features.amount.kss: unknown key (did you mean 'ks'?)",
    ),
    (
        "models: [{name: m, version: '1', reference: p, thresholds: {alpha: 1}}]\n",
        "models.0.thresholds.alpha: Input should be less than 1",
    ),
    (
        "models: [{name: m, version: '1', reference: p}]\nwindows: [{name: 1h, bucket_seconds: 0, buckets: 60}]\n",
        "windows.0.bucket_seconds: Input should be greater than 0",
    ),
    (
        "models: [{name: m, version: '1', reference: p}]\nwindows: [{name: 1h, bucket_seconds: 60}]\n",
        "windows.0.buckets: Field required",
    ),
    (
        "models: [{name: m, version: '1', reference: p}]\nwindows: [{name: 1h, bucket_seconds: 60, buckets: 60},"
        " {name: 1h, bucket_seconds: 10, buckets: 6}]\n",
        "windows: window names must be unique, repeated: 1h",
    ),
    ("models: [{name: m, version: '1', reference: p}]\nwindows: []\n", "windows: List should have at least 1 item"),
    (
        "models: [{name: m, version: '1', reference: p}]\nallowed_lateness_seconds: -5\n",
        "allowed_lateness_seconds: Input should be greater than or equal to 0",
    ),
    (
        "models: [{name: m, version: '1', reference: p}]\nevaluation: {interval_seconds: 0}\n",
        "evaluation.interval_seconds: Input should be greater than 0",
    ),
    (
        "models: [{name: m, version: '1', reference: p}]\nlabels: {max_pending: 0}\n",
        "labels.max_pending: Input should be greater than or equal to 1",
    ),
    (
        "models: [{name: m, version: '1', reference: p}]\nstate: {checkpoint_interval_seconds: -1}\n",
        "state.checkpoint_interval_seconds: Input should be greater than 0",
    ),
    (
        "models: [{name: m, version: '1', reference: p}]\nmlflow: {model_name_map: {}}\n",
        "mlflow.tracking_uri: Field required",
    ),
    (
        "models: [{name: m, version: '1', reference: p}]\nmlflow: {tracking_uri: 'http://x', model_name_map: {z: y}}\n",
        "mlflow: model_name_map names models not in models: z",
    ),
    (
        "models: [{name: m, version: '1', reference: p}]\nhttp: 9877\n",
        "http: Input should be a valid dictionary or instance of AggregatorHttpConfig",
    ),
    # Several mistakes: all of them, in one line.
    (
        "models: [{name: m}]\nhttp: {port: 70000}\n",
        "models.0.version: Field required; models.0.reference: Field required; "
        "http.port: Input should be less than or equal to 65535",
    ),
]

SIDECAR_ERRORS = [
    ("kafka: {}\n", "model: Field required"),
    ("model: {name: m}\n", "model.version: Field required"),
    (MINIMAL_SIDECAR + "gpu: {mode: on}\n", "gpu.mode: Input should be 'sidecar', 'node' or 'off'"),
    (
        MINIMAL_SIDECAR + "gpu: {interval_seconds: 5, slow_interval_seconds: 1}\n",
        "gpu.slow_interval_seconds: must be at least interval_seconds (5.0)",
    ),
    (MINIMAL_SIDECAR + "kafka: {format: json}\n", "kafka.format: Input should be 'ndjson' or 'arrow'"),
    (MINIMAL_SIDECAR + "kafka: {mode: all}\n", "kafka.mode: Input should be 'records' or 'summaries'"),
    (
        MINIMAL_SIDECAR + "kafka: {group_id: x}\n",
        "kafka.group_id: unknown key (expected one of: bootstrap_servers, predictions_topic, summaries_topic, "
        "batch_max_records, batch_max_seconds, format, mode, summary_bucket_seconds, summary_format, deadletter_topic, "
        "client)",
    ),
    (
        MINIMAL_SIDECAR + "kafka: {batch_max_records: 0}\n",
        "kafka.batch_max_records: Input should be greater than or equal to 1",
    ),
    (MINIMAL_SIDECAR + "http: {port: 65536}\n", "http.port: Input should be less than or equal to 65535"),
    (
        MINIMAL_SIDECAR + "http: {max_body_bytes: 0}\n",
        "http.max_body_bytes: Input should be greater than or equal to 1",
    ),
    (MINIMAL_SIDECAR + "queue: {max_records: 0}\n", "queue.max_records: Input should be greater than or equal to 1"),
    (
        MINIMAL_SIDECAR + "latency: {buckets: [0.5, 0.1]}\n",
        "latency.buckets: bucket bounds must be strictly increasing",
    ),
    (
        MINIMAL_SIDECAR + "latency: {buckets: [0.1, 0.1]}\n",
        "latency.buckets: bucket bounds must be strictly increasing",
    ),
    (MINIMAL_SIDECAR + "latency: {buckets: [0, 0.1]}\n", "latency.buckets: bucket bounds must be positive"),
    (MINIMAL_SIDECAR + "latency: {buckets: []}\n", "latency.buckets: List should have at least 1 item"),
    (
        MINIMAL_SIDECAR + "latency: {buckets: [0.1, fast]}\n",
        "latency.buckets.1: Input should be a valid number, unable to parse string as a number",
    ),
    (MINIMAL_SIDECAR + "latency: {sla_seconds: 0}\n", "latency.sla_seconds: Input should be greater than 0"),
    (
        MINIMAL_SIDECAR + "state: {dir: /x}\n",
        "state: unknown key (expected one of: model, kafka, gpu, http, queue, latency, kserve)",
    ),
]


@pytest.mark.parametrize(("text", "expected"), AGGREGATOR_ERRORS, ids=[e for _, e in AGGREGATOR_ERRORS])
def test_invalid_aggregator_file(tmp_path: Path, text: str, expected: str) -> None:
    assert load_error(write(tmp_path, text)) == expected


@pytest.mark.parametrize(("text", "expected"), SIDECAR_ERRORS, ids=[e for _, e in SIDECAR_ERRORS])
def test_invalid_sidecar_file(tmp_path: Path, text: str, expected: str) -> None:
    assert load_error(write(tmp_path, text), SidecarConfig) == expected


def test_message_names_the_file_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "models: [{name: m, version: '1', reference: p}]\nhttp: {port: 70000}\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError) as info:
        load_config("config.yaml", AggregatorConfig, environ=NO_ENV)
    assert str(info.value) == "config.yaml: http.port: Input should be less than or equal to 65535"
    write(tmp_path, "models: [{name: fraud}]\n")
    with pytest.raises(UserError, match=r"^config\.yaml: models\.0\.version: Field required;"):
        load_config("config.yaml", AggregatorConfig, environ=NO_ENV)


def test_missing_file(tmp_path: Path) -> None:
    assert load_error(tmp_path / "nope.yaml") == "no such config file"


def test_directory(tmp_path: Path) -> None:
    assert load_error(tmp_path) == "is a directory, not a config file"


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(b"models: [\xff\xfe]\n")
    assert load_error(path) == "not UTF-8 text"


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Simulated: chmod 0 does not stop root, and tests often run as root in containers.
    path = write(tmp_path, MINIMAL_AGGREGATOR)

    def refuse(self: Path, *args: object, **kwargs: object) -> str:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_text", refuse)
    assert load_error(path) == "cannot read: Permission denied"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "models:\n  - name: m\n   version: 1\n",
            "line 3, column 4: invalid YAML: expected <block end>, but found '<block mapping start>'",
        ),
        ("kafka:\n  group_id: a: b\n", "line 2, column 14: invalid YAML: mapping values are not allowed here"),
        ("http: {port: 1\n", "invalid YAML: expected ',' or '}', but got '<stream end>'"),
        ("models: [\n", "line 2, column 1: invalid YAML: expected the node content, but found '<stream end>'"),
        ("http: {port: 1}\nhttp: {port: 2}\n", "line 2, column 1: invalid YAML: duplicate key 'http'"),
        ("http:\n  port: 1\n  port: 2\n", "line 3, column 3: invalid YAML: duplicate key 'port'"),
    ],
)
def test_unreadable_yaml_names_the_line(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in load_error(write(tmp_path, text))


@pytest.mark.parametrize(("text", "kind"), [("- a\n- b\n", "a list"), ("just text\n", "a string"), ("42\n", "a int")])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str, kind: str) -> None:
    assert load_error(write(tmp_path, text)) == f"expected a mapping of sections at the top level, got {kind}"


def test_empty_file_reports_required_fields(tmp_path: Path) -> None:
    assert load_error(write(tmp_path, "")) == "models: Field required"
    assert load_error(write(tmp_path, "# only a comment\n"), SidecarConfig) == "model: Field required"


def test_settings_options_are_not_config_keys(tmp_path: Path) -> None:
    # pydantic-settings reads init kwargs like _env_file as its own options; a file must not.
    assert load_error(write(tmp_path, MINIMAL_AGGREGATOR + "_env_file: /etc/passwd\n")) == "_env_file: unknown key"
    assert load_error(write(tmp_path, MINIMAL_AGGREGATOR + "1: x\n")) == "1: unknown key"


# --- the environment -----------------------------------------------------------------------


def test_env_beats_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, AGGREGATOR_EXAMPLE)
    environ = {
        "MODEL_HEALTH_HTTP__PORT": "9999",
        "MODEL_HEALTH_KAFKA__BOOTSTRAP_SERVERS": "kafka-0:9092,kafka-1:9092",
        "MODEL_HEALTH_ALLOWED_LATENESS_SECONDS": "60",
    }
    config = load_config(path, AggregatorConfig, environ=environ)
    assert config.http.port == 9999
    assert config.http.host == "0.0.0.0"  # the rest of the section still comes from the file
    assert config.kafka.servers == ("kafka-0:9092", "kafka-1:9092")
    assert config.kafka.group_id == "model-health"
    assert config.allowed_lateness_seconds == 60


def test_env_fills_sections_the_file_lacks(tmp_path: Path) -> None:
    environ = {
        "MODEL_HEALTH_EVALUATION__INTERVAL_SECONDS": "5",
        "MODEL_HEALTH_MLFLOW__TRACKING_URI": "http://mlflow:5000",
        "MODEL_HEALTH_WINDOWS": '[{"name": "5m", "bucket_seconds": 10, "buckets": 30}]',
    }
    config = load_config(write(tmp_path, MINIMAL_AGGREGATOR), AggregatorConfig, environ=environ)
    assert config.evaluation.interval_seconds == 5
    assert config.mlflow is not None and config.mlflow.tracking_uri == "http://mlflow:5000"
    assert [w.name for w in config.windows] == ["5m"]


def test_env_for_sidecar(tmp_path: Path) -> None:
    # The injector passes pod facts through the environment.
    environ = {"MODEL_HEALTH_MODEL__NAMESPACE": "staging", "MODEL_HEALTH_GPU__MODE": "off"}
    config = load_config(write(tmp_path, SIDECAR_EXAMPLE), SidecarConfig, environ=environ)
    assert (config.model.namespace, config.gpu.mode) == ("staging", "off")


def test_env_is_case_insensitive_and_ignores_empty(tmp_path: Path) -> None:
    environ = {"model_health_http__port": "9100", "MODEL_HEALTH_STATE__CHECKPOINT_INTERVAL_SECONDS": ""}
    config = load_config(write(tmp_path, AGGREGATOR_EXAMPLE), AggregatorConfig, environ=environ)
    assert config.http.port == 9100
    assert config.state.checkpoint_interval_seconds == 10


@pytest.fixture
def process_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """For the tests of the process environment itself: without the developer's ``MODEL_HEALTH_`` variables."""
    for key in list(os.environ):
        if key.upper().startswith("MODEL_HEALTH_"):
            monkeypatch.delenv(key)
    return monkeypatch


def test_env_beats_keyword_arguments(process_env: pytest.MonkeyPatch) -> None:
    # Constructed directly, not through load_config, a model reads the process environment.
    process_env.setenv("MODEL_HEALTH_HTTP__PORT", "9999")
    config = SidecarConfig(model={"name": "m", "version": "1"}, http={"port": 1234})
    assert config.http.port == 9999


def test_bad_env_value_names_the_variable(tmp_path: Path) -> None:
    assert load_error(write(tmp_path, AGGREGATOR_EXAMPLE), environ={"MODEL_HEALTH_HTTP__PORT": "70000"}) == (
        "http.port: Input should be less than or equal to 65535 (from environment variable MODEL_HEALTH_HTTP__PORT)"
    )


def test_bad_env_json_names_the_variable(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, AGGREGATOR_EXAMPLE), environ={"MODEL_HEALTH_WINDOWS": "[{name: 5m}"})
    assert message.startswith("windows: environment variable MODEL_HEALTH_WINDOWS is not valid JSON: ")


def test_unrelated_env_is_ignored(tmp_path: Path) -> None:
    # Both commands share the prefix, so a sidecar-only variable must not break the aggregator.
    environ = {"MODEL_HEALTH_QUEUE__MAX_RECORDS": "5", "MODEL_HEALTH_SOMETHING_ELSE": "x"}
    assert load_config(write(tmp_path, AGGREGATOR_EXAMPLE), AggregatorConfig, environ=environ).http.port == 9877


def test_environment_defaults_to_the_process_environment(tmp_path: Path, process_env: pytest.MonkeyPatch) -> None:
    # What the commands do: no environ given, os.environ it is.
    process_env.setenv("MODEL_HEALTH_HTTP__PORT", "9999")
    assert load_config(write(tmp_path, AGGREGATOR_EXAMPLE), AggregatorConfig).http.port == 9999


def test_given_environment_replaces_the_process_environment(tmp_path: Path, process_env: pytest.MonkeyPatch) -> None:
    process_env.setenv("MODEL_HEALTH_HTTP__HOST", "127.0.0.1")
    process_env.setenv("MODEL_HEALTH_HTTP__PORT", "9999")
    config = load_config(
        write(tmp_path, AGGREGATOR_EXAMPLE), AggregatorConfig, environ={"MODEL_HEALTH_HTTP__PORT": "9100"}
    )
    assert (config.http.host, config.http.port) == ("0.0.0.0", 9100)
    # A bad value from the file is not blamed on a variable that only the process environment has.
    bad = write(tmp_path, MINIMAL_AGGREGATOR + "http: {port: 70000}\n", "bad.yaml")
    assert load_error(bad) == "http.port: Input should be less than or equal to 65535"
    # Outside load_config, a model constructed directly still reads the process environment.
    assert SidecarConfig(model={"name": "m", "version": "1"}).http.host == "127.0.0.1"


# --- the reference table -------------------------------------------------------------------


def all_fields(model_cls: type[BaseModel], prefix: str = "") -> list[tuple[str, Any]]:
    """(path, FieldInfo) for every field, written independently of the module's own walker."""
    found = []
    for name, field in model_cls.model_fields.items():
        path = prefix + name
        found.append((path, field))
        annotation = field.annotation
        args = [a for a in get_args(annotation) if a is not type(None)] if get_origin(annotation) else []
        suffix = ""
        if get_origin(annotation) is tuple:
            annotation, suffix = args[0], "[]"
        elif get_origin(annotation) is dict:
            annotation, suffix = args[1], ".<key>"
        elif len(args) == 1:
            annotation = args[0]
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found.extend(all_fields(annotation, f"{path}{suffix}."))
    return found


@pytest.mark.parametrize("model_cls", [AggregatorConfig, SidecarConfig])
def test_config_reference_mentions_every_field(model_cls: type[BaseModel]) -> None:
    table = config_reference(model_cls)
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    documented = [row.split("`")[1] for row in rows]
    expected = [path for path, _ in all_fields(model_cls)]
    assert documented == expected == field_paths(model_cls)
    for row in rows:
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", row)[1:-1]]
        assert len(cells) == 4 and all(cells[i] for i in (0, 1, 3)), row


@pytest.mark.parametrize("model_cls", [AggregatorConfig, SidecarConfig])
def test_every_field_has_a_description(model_cls: type[BaseModel]) -> None:
    missing = [path for path, field in all_fields(model_cls) if not field.description]
    assert not missing


def test_config_reference_content() -> None:
    table = config_reference(AggregatorConfig)
    assert table.startswith("| key | type | default | description |\n| --- | --- | --- | --- |\n")
    assert "| `http.port` | integer (≥ 1, ≤ 65535) | `9877` |" in table
    assert "| `models[].version` | string (at least 1) | required |" in table
    assert "| `kafka.format` | one of `auto`, `json`, `ndjson`, `arrow`, `kserve`, `seldon` | `auto` |" in table
    assert "`[{name: 1h, bucket_seconds: 60, buckets: 60}]`" in table
    assert "| `models[].thresholds.features.<key>.psi` | number (> 0) | unset |" in table
    assert "| `mlflow` | section | unset |" in table
    assert "| `http.port` | integer (≥ 1, ≤ 65535) | `9878` |" in config_reference(SidecarConfig)


# --- the package ---------------------------------------------------------------------------


def test_package_reexports_every_model() -> None:
    """Callers import from ``exporter.config`` itself, whichever module a model lives in."""
    import exporter.config as package
    from exporter.config.fields import Section
    from exporter.config.loading import Settings

    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for name, value in vars(module).items():
            if isinstance(value, type) and issubclass(value, BaseModel) and value.__module__ == module.__name__:
                if value not in (Section, Settings):
                    assert name in package.__all__ and getattr(package, name) is value, (module.__name__, name)
