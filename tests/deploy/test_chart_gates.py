"""The chart's rollout gates and KEDA ScaledObjects: off by default, what `model-health gates`
generates when on, valid for the upstream CRDs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from exporter.cli import cli
from exporter.config import GatesConfig
from exporter.gates import render_files
from exporter.gates.autoscaling import scaled_object
from tests.deploy.chart import CHART, render
from tests.support.crds import validate

GATES_VALUES = CHART / "ci" / "gates-values.yaml"
GATE_KINDS = {"MetricTemplate", "AnalysisTemplate", "ScaledObject"}


@pytest.fixture
def no_model_health_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI reads ``MODEL_HEALTH_…`` overrides by design; none may leak into a generation."""
    for key in [key for key in os.environ if key.startswith("MODEL_HEALTH_")]:
        monkeypatch.delenv(key)


def _stripped_queries(obj: dict) -> dict:
    """``obj`` with every query's surrounding whitespace removed (Helm's YAML keeps or drops the
    final newline of a block; both controllers collapse whitespace before they query)."""
    if isinstance(obj, dict):
        return {k: (v.strip() if k == "query" and isinstance(v, str) else _stripped_queries(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_stripped_queries(v) for v in obj]
    return obj


def test_off_by_default() -> None:
    assert not {doc["kind"] for doc in render().docs} & GATE_KINDS


def test_chart_gates_files_equal_a_fresh_generation(tmp_path: Path, no_model_health_env: None) -> None:
    result = CliRunner().invoke(cli, ["gates", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    generated = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    in_chart = {path.name: path.read_bytes() for path in (CHART / "files" / "gates").iterdir()}
    assert in_chart == generated, "the chart's files/gates are stale: run `make chart-files`"


def test_enabled_gates_are_the_generated_templates_in_the_release() -> None:
    rendered = render(values=GATES_VALUES)
    values = yaml.safe_load(GATES_VALUES.read_text())["gates"]
    config = GatesConfig(prometheus_url=values["prometheusUrl"])
    generated = {
        doc["metadata"]["name"]: doc
        for name in ("flagger-metrictemplates.yaml", "argo-analysistemplate.yaml")
        for doc in yaml.safe_load_all(render_files(config)[name])
        if doc
    }
    objects = [doc for doc in rendered.docs if doc["kind"] in {"MetricTemplate", "AnalysisTemplate"}]
    assert len(objects) == len(generated) == 6
    for obj in objects:
        validate(obj)
        expected = generated[obj["metadata"]["name"]]
        assert _stripped_queries(obj["spec"]) == _stripped_queries(expected["spec"])
        assert obj["metadata"]["namespace"] == ("flagger-system" if obj["kind"] == "MetricTemplate" else "monitoring")
        assert obj["metadata"]["labels"]["app.kubernetes.io/component"] == "rollout-gates"


def test_scaled_objects_for_named_models_are_what_the_generator_writes() -> None:
    rendered = render(values=GATES_VALUES)
    values = yaml.safe_load(GATES_VALUES.read_text())["gates"]
    scaled = {doc["metadata"]["name"]: doc for doc in rendered.of_kind("ScaledObject")}
    assert sorted(scaled) == ["churn-latency", "fraud-predictor-latency"]
    for entry in values["keda"]["scaledObjects"]:
        config = GatesConfig(
            prometheus_url=values["prometheusUrl"],
            autoscaling={
                "models": [
                    {
                        "model": entry["model"],
                        "deployment": entry["deployment"],
                        "namespace": entry.get("namespace", "monitoring"),
                        "target_seconds": entry.get("targetSeconds", 0.2),
                        "min_replicas": entry.get("minReplicas", 1),
                        "max_replicas": entry.get("maxReplicas", 10),
                    }
                ]
            },
        )
        expected = scaled_object(config.autoscaling.models[0], config)
        obj = scaled[expected["metadata"]["name"]]
        validate(obj)
        assert obj["spec"] == expected["spec"]
        assert obj["metadata"]["namespace"] == expected["metadata"]["namespace"]
