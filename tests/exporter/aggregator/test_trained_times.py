"""Trained times from a real MLflow tracking server (``mlflow server`` on loopback)."""

from __future__ import annotations

import json
import logging
import threading
import urllib.request

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from detectors.profile import build_profile
from exporter.aggregator.collector import SnapshotCollector
from exporter.aggregator.inputs import load_models
from exporter.aggregator.service import serve
from exporter.aggregator.single import Aggregator
from exporter.aggregator.trained_times import MlflowRegistry, RegistryError, TrainedTimes
from exporter.config import AggregatorConfig
from exporter.demo.synthetic import synthetic_table
from exporter.kafka.embedded import free_port
from exporter.pipeline.decode import BatchDecoder
from exporter.profiles import save_profile
from tests.support.broker import broker, make_topic, unique_group  # noqa: F401
from tests.support.fake_kafka import FakeConsumer, FakeLog, FakeProducer
from tests.support.mlflow import mlflow_server, register, unique_name  # noqa: F401

SHAPE = {"numeric": 2, "categorical": 1, "drifted": 0}
PROFILE_TRAINED_AT = 1_600_000_000.0
RUN_END_MS = 1_700_000_123_000


@pytest.fixture(scope="module")
def profile_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("profiles") / "fraud-1.parquet"
    profile = build_profile(
        synthetic_table(2_000, seed=1, **SHAPE),
        model="fraud",
        model_version="1",
        created_at=1.7e9,
        trained_at=PROFILE_TRAINED_AT,
        prediction="prediction",
    )
    save_profile(profile, path)
    return path


def test_a_version_with_a_finished_run_was_trained_when_the_run_ended(mlflow_server):  # noqa: F811
    name = unique_name("fraud")
    version = register(mlflow_server, name, run="finished", end_ms=RUN_END_MS)
    found = MlflowRegistry(mlflow_server).trained_time(name, version["version"])
    assert found.seconds == RUN_END_MS / 1000
    assert found.source == f"end of run {version['run_id']}"


@pytest.mark.parametrize(
    ("run", "why"),
    [
        (None, "version registered"),
        ("running", "has not ended"),
        ("0123456789abcdef0123456789abcdef", "unknown to this server"),
    ],
)
def test_without_an_ended_run_the_registration_time_counts(mlflow_server, run, why):  # noqa: F811
    name = unique_name("churn")
    version = register(mlflow_server, name, run=run)
    found = MlflowRegistry(mlflow_server).trained_time(name, version["version"])
    assert found.seconds == int(version["creation_timestamp"]) / 1000
    assert why in found.source


def test_unknown_models_and_versions_say_why(mlflow_server):  # noqa: F811
    registry = MlflowRegistry(mlflow_server)
    with pytest.raises(RegistryError) as unknown:
        registry.trained_time(unique_name("ghost"), "1")
    assert unknown.value.not_found and "HTTP 404 RESOURCE_DOES_NOT_EXIST" in str(unknown.value)
    name = unique_name("fraud")
    register(mlflow_server, name)
    with pytest.raises(RegistryError, match="must be an integer"):
        registry.trained_time(name, "v7")


def test_a_server_that_is_down_is_a_registry_error():
    registry = MlflowRegistry(f"http://127.0.0.1:{free_port()}", timeout_s=2)
    with pytest.raises(RegistryError, match="cannot reach MLflow at http://127.0.0.1:"):
        registry.trained_time("fraud", "1")


def test_something_that_is_not_mlflow_is_a_registry_error(mlflow_server):  # noqa: F811
    # The server's own UI answers HTML under another prefix: a wrong base path says so.
    registry = MlflowRegistry(f"{mlflow_server}/no-such-prefix")
    with pytest.raises(RegistryError, match="HTTP 404"):
        registry.trained_time("fraud", "1")


def test_refresh_logs_each_failure_once_and_keeps_the_last_answer(mlflow_server, caplog):  # noqa: F811
    name = unique_name("fraud")
    register(mlflow_server, name, run="finished", end_ms=RUN_END_MS)
    dead = f"http://127.0.0.1:{free_port()}"
    registry = MlflowRegistry(dead, timeout_s=2)
    times = TrainedTimes(registry, [("fraud", "1"), ("ghost", "1")], {"fraud": name})
    caplog.set_level(logging.INFO, logger="exporter.aggregator.trained_times")

    times.refresh()
    times.refresh()
    assert times.current() == {}
    down = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(down) == 1, down  # one line for both models, and not again for the same reason
    assert "fraud v1, ghost v1" in down[0] and "cannot reach MLflow" in down[0]
    assert "using the profile's trained time" in down[0]

    caplog.clear()
    registry.base = mlflow_server  # the server comes back
    times.refresh()
    assert times.current() == {("fraud", "1"): RUN_END_MS / 1000}
    messages = [r.getMessage() for r in caplog.records]
    assert any(f"fraud v1 (registered as {name!r}) trained at 1700000123.000 (end of run" in m for m in messages)
    [ghost] = [m for m in messages if "ghost" in m]
    assert "RESOURCE_DOES_NOT_EXIST" in ghost

    caplog.clear()
    registry.base = dead  # and goes away again: the registry's answer stays
    times.refresh()
    times.refresh()
    assert times.current() == {("fraud", "1"): RUN_END_MS / 1000}
    [down_again] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "fraud v1, ghost v1" in down_again
    assert "keeping the registry's last answer where there is one, else the profile's" in down_again


def test_credentials_come_from_the_mlflow_variables():
    token = MlflowRegistry.with_credentials("http://x", 1, {"MLFLOW_TRACKING_TOKEN": "t0k"})
    assert token._headers["Authorization"] == "Bearer t0k"
    basic = MlflowRegistry.with_credentials(
        "http://x", 1, {"MLFLOW_TRACKING_USERNAME": "u", "MLFLOW_TRACKING_PASSWORD": "p"}
    )
    assert basic._headers["Authorization"] == "Basic dTpw"
    assert "Authorization" not in MlflowRegistry.with_credentials("http://x", 1, {})._headers


def test_the_registry_time_replaces_the_profiles_in_the_metrics(mlflow_server, profile_path, tmp_path):  # noqa: F811
    name = unique_name("fraud")
    register(mlflow_server, name, run="finished", end_ms=RUN_END_MS)
    config = AggregatorConfig(
        models=[
            {"name": "fraud", "version": "1", "reference": str(profile_path)},
            {"name": "ghost", "version": "1", "reference": str(profile_path)},
        ],
        state={"dir": str(tmp_path)},
        mlflow={"tracking_uri": mlflow_server, "model_name_map": {"fraud": name, "ghost": unique_name("ghost")}},
    )
    times = TrainedTimes(MlflowRegistry(mlflow_server), [("fraud", "1"), ("ghost", "1")], config.mlflow.model_name_map)
    log = FakeLog()
    aggregator = Aggregator(
        config,
        load_models(config),
        FakeConsumer(log),
        FakeProducer(log),
        BatchDecoder(config.kafka.labels_topic),
        trained_times=times.current,
    )
    before = {m.model: m.trained_at for m in aggregator.evaluate().models}
    assert before == {"fraud": PROFILE_TRAINED_AT, "ghost": PROFILE_TRAINED_AT}
    times.refresh()
    after = {m.model: m.trained_at for m in aggregator.evaluate().models}
    assert after == {"fraud": RUN_END_MS / 1000, "ghost": PROFILE_TRAINED_AT}  # ghost: not registered
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(aggregator.snapshot))
    text = generate_latest(registry).decode()
    assert 'model_health_model_trained_timestamp_seconds{model="fraud",model_version="1"} 1.700000123e+09' in text
    assert 'model_health_model_trained_timestamp_seconds{model="ghost",model_version="1"} 1.6e+09' in text


def test_the_service_looks_trained_times_up_on_its_schedule(mlflow_server, profile_path, broker, make_topic, tmp_path):  # noqa: F811
    name = unique_name("fraud")
    register(mlflow_server, name, run="finished", end_ms=RUN_END_MS)
    port = free_port()
    config = AggregatorConfig(
        kafka={
            "bootstrap_servers": broker.bootstrap_servers,
            "group_id": unique_group("mlflow"),
            "predictions_topic": make_topic(1),
            "labels_topic": make_topic(1),
            "session_timeout_ms": 2000,
            "heartbeat_interval_ms": 500,
        },
        models=[{"name": "fraud", "version": "1", "reference": str(profile_path)}],
        evaluation={"interval_seconds": 0.2},
        state={"dir": str(tmp_path)},
        http={"host": "127.0.0.1", "port": port},
        mlflow={"tracking_uri": mlflow_server, "model_name_map": {"fraud": name}, "refresh_interval_seconds": 600},
    )
    stop = threading.Event()
    thread = threading.Thread(target=serve, args=(config, BatchDecoder(config.kafka.labels_topic), stop), daemon=True)
    thread.start()
    wanted = 'model_health_model_trained_timestamp_seconds{model="fraud",model_version="1"} 1.700000123e+09'
    try:
        text = ""
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
                    text = response.read().decode()
            except OSError:
                pass
            if wanted in text:
                break
            stop.wait(0.1)
        assert wanted in text
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()


@pytest.mark.parametrize("uri", ["file:///mlruns", "databricks", "sqlite:///mlflow.db", "http://"])
def test_only_an_http_tracking_server_is_accepted(uri, tmp_path):
    with pytest.raises(ValueError, match="tracking_uri"):
        AggregatorConfig(
            models=[{"name": "m", "version": "1", "reference": str(tmp_path / "p")}], mlflow={"tracking_uri": uri}
        )


def test_mlflow_defaults():
    config = AggregatorConfig.model_validate(
        json.loads(
            '{"models": [{"name": "m", "version": "1", "reference": "p"}], "mlflow": {"tracking_uri": "https://mlflow.example"}}'
        )
    )
    assert (config.mlflow.refresh_interval_seconds, config.mlflow.timeout_seconds) == (300.0, 10.0)
