"""``model-health gates``: every manifest valid for the real CRDs and Kubernetes schemas, every
query naming only catalogued series, the CLI writing exactly what the generator renders."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from alerts import PROMETHEUS_SERIES, metric_names, recording_rule_names
from exporter.catalogue import all_series_names
from exporter.config import AlertsConfig, GatesConfig, load_config
from exporter.errors import UserError
from exporter.gates import GATES, render_files
from exporter.gates.argo import analysis_template
from exporter.gates.autoscaling import adapter_rules, horizontal_pod_autoscaler, scaled_object
from exporter.gates.flagger import canary, metric_templates
from exporter.gates.queries import latency_query
from tests.exporter.gates import render
from tests.support.crds import validate

SCRIPT = Path(sys.executable).with_name("model-health")
CONFIG = GatesConfig(
    namespace="flagger",
    canaries=[{"model": "fraud", "deployment": "fraud-predictor", "namespace": "prod", "port": 8080}],
    autoscaling={
        "models": [
            {"model": "fraud", "deployment": "fraud-predictor", "namespace": "prod", "target_seconds": 0.25},
            {"model": "churn", "deployment": "churn", "min_replicas": 2, "max_replicas": 4},
        ]
    },
)


def _documents(config: GatesConfig) -> list[dict]:
    docs = []
    for name, text in render_files(config).items():
        if name.endswith(".yaml"):
            docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return docs


@pytest.mark.parametrize("config", [GatesConfig(), CONFIG], ids=["defaults", "models"])
def test_every_custom_resource_validates_against_its_crd(config):
    custom = [
        doc for doc in _documents(config) if doc.get("apiVersion", "").split("/")[0].endswith((".app", ".io", ".sh"))
    ]
    kinds = {doc["kind"] for doc in custom}
    expected = {"MetricTemplate", "AnalysisTemplate"} | ({"Canary", "ScaledObject"} if config.canaries else set())
    assert kinds == expected
    for doc in custom:
        validate(doc)


@pytest.mark.parametrize("version", ["1.29", "1.33"])
def test_the_hpas_validate_against_kubernetes(version):
    hpas = [doc for doc in _documents(CONFIG) if doc.get("kind") == "HorizontalPodAutoscaler"]
    assert len(hpas) == 2
    for hpa in hpas:
        kubernetes_validate.validate(hpa, version, strict=True)


def test_the_validator_catches_what_the_api_server_would_drop_or_refuse():
    template = analysis_template(GatesConfig())
    typo = copy.deepcopy(template)
    typo["spec"]["metrics"][0]["sucessCondition"] = typo["spec"]["metrics"][0].pop("successCondition")
    with pytest.raises(AssertionError, match="sucessCondition"):
        validate(typo)
    scaled = scaled_object(CONFIG.autoscaling.models[0], CONFIG)
    scaled["spec"]["triggers"][0]["metadata"]["threshold"] = 0.25  # KEDA's trigger metadata is map[string]string
    with pytest.raises(AssertionError, match="threshold|string"):
        validate(scaled)
    wrong = canary(CONFIG.canaries[0], CONFIG)
    wrong["spec"]["analysis"]["metrics"][0]["thresholdRange"] = {"max": "0"}
    with pytest.raises(AssertionError):
        validate(wrong)


def _known_series() -> frozenset[str]:
    return all_series_names() | recording_rule_names(AlertsConfig()) | PROMETHEUS_SERIES


def test_every_query_reads_only_catalogued_series_and_recording_rules():
    queries = [gate.query("fraud", CONFIG) for gate in GATES]
    queries.append(latency_query("fraud", 0.95, "2m"))
    queries.append(render.adapter(adapter_rules(CONFIG)["externalRules"][0]["metricsQuery"], "x", 'model="fraud"'))
    for query in queries:
        unknown = metric_names(query) - _known_series() - {"x"}
        assert not unknown, (query, unknown)


def test_flagger_templates_render_for_a_canarys_variables_and_fail_without_them():
    for template, gate in zip(metric_templates(CONFIG), GATES, strict=True):
        query = template["spec"]["query"]
        assert render.flagger(query, {"model": "fraud"}).strip() == gate.query("fraud", CONFIG)
        with pytest.raises(KeyError):
            render.flagger(query, {})
    for metric, gate in zip(canary(CONFIG.canaries[0], CONFIG)["spec"]["analysis"]["metrics"], GATES, strict=True):
        assert metric["templateVariables"] == {"model": "fraud"}
        assert metric["templateRef"] == {"name": metric["name"], "namespace": "flagger"}
        assert metric["thresholdRange"] == {gate.bound: float(gate.limit(CONFIG))}


def test_argo_metrics_render_from_the_model_argument():
    template = analysis_template(CONFIG)
    assert template["spec"]["args"] == [{"name": "model"}]
    for metric, gate in zip(template["spec"]["metrics"], GATES, strict=True):
        query = metric["provider"]["prometheus"]["query"]
        assert render.argo(query, {"model": "fraud"}).strip() == gate.query("fraud", CONFIG)
        operator = "<=" if gate.bound == "max" else ">="
        assert metric["successCondition"] == f"result[0] {operator} {float(gate.limit(CONFIG))!r}"


def test_autoscalers_hold_the_latency_quantile_as_a_value():
    model = CONFIG.autoscaling.models[0]
    scaled = scaled_object(model, CONFIG)
    trigger = scaled["spec"]["triggers"][0]
    assert trigger["metricType"] == "Value" and trigger["metadata"]["threshold"] == "0.25"
    assert trigger["metadata"]["query"] == latency_query("fraud", 0.95, "2m")
    hpa = horizontal_pod_autoscaler(model, CONFIG)
    external = hpa["spec"]["metrics"][0]["external"]
    assert external["target"] == {"type": "Value", "value": "250m"}
    assert external["metric"] == {
        "name": "model_health_request_duration_seconds_p95",
        "selector": {"matchLabels": {"model": "fraud"}},
    }
    rule = adapter_rules(CONFIG)["externalRules"][0]
    assert rule["name"]["as"] == external["metric"]["name"]
    # The HPA's selector becomes the adapter's label matchers: the same query KEDA runs.
    assert (
        render.adapter(rule["metricsQuery"], "model_health_request_duration_seconds_bucket", 'model="fraud"')
        == (trigger["metadata"]["query"])
    )


def test_the_cli_writes_what_the_generator_renders(tmp_path):
    path = tmp_path / "gates.yaml"
    path.write_text(
        "prometheus_url: http://prometheus.monitoring:9090\nwindow: 1d\n"
        "autoscaling: {models: [{model: fraud, deployment: fraud-predictor}]}\n"
    )
    result = subprocess.run(
        [str(SCRIPT), "gates", "--out", str(tmp_path / "out"), "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    expected = render_files(load_config(path, GatesConfig, environ={}))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(expected)
    for name, text in expected.items():
        assert (tmp_path / "out" / name).read_text() == text
    assert 'window="1d"' in expected["flagger-metrictemplates.yaml"]


def test_bad_config_fails_at_start_naming_the_field(tmp_path):
    path = tmp_path / "gates.yaml"
    path.write_text(
        "autoscaling: {models: [{model: fraud, deployment: Fraud_Predictor, min_replicas: 3, max_replicas: 2}]}\n"
    )
    with pytest.raises(UserError, match=r"autoscaling\.models\.0\.deployment"):
        load_config(path, GatesConfig, environ={})
    path.write_text("conditions: {max_latency_ratio: 0}\n")
    with pytest.raises(UserError, match=r"conditions\.max_latency_ratio"):
        load_config(path, GatesConfig, environ={})
