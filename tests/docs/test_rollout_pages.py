"""The rollout pages quote the generator: every manifest on them is what `model-health gates`
writes for the pages' example config, and every gate is documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from exporter.config import GatesConfig
from exporter.gates import GATES, render_files

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGES = ("rollouts-flagger.md", "rollouts-argo.md", "autoscaling.md")
GENERATED_KINDS = {"MetricTemplate", "Canary", "AnalysisTemplate", "ScaledObject", "HorizontalPodAutoscaler"}
# The example the pages use, their gates.yaml sections together.
EXAMPLE = GatesConfig(
    prometheus_url="http://prometheus-operated.monitoring.svc:9090",
    canaries=[{"model": "fraud", "deployment": "fraud-predictor", "namespace": "models", "port": 8080}],
    autoscaling={
        "models": [
            {
                "model": "fraud",
                "deployment": "fraud-predictor",
                "namespace": "models",
                "target_seconds": 0.2,
                "max_replicas": 12,
            }
        ]
    },
)
_YAML_BLOCK = re.compile(r"```yaml\n(.*?)```", re.DOTALL)


def _generated() -> list[object]:
    return [
        doc
        for name, text in render_files(EXAMPLE).items()
        if name.endswith(".yaml")
        for doc in yaml.safe_load_all(text)
        if doc
    ]


@pytest.mark.parametrize("page", PAGES)
def test_every_quoted_manifest_is_the_generators(page: str) -> None:
    generated = _generated()
    quoted = [
        doc
        for block in _YAML_BLOCK.findall((DOCS / page).read_text())
        for doc in yaml.safe_load_all(block)
        if isinstance(doc, dict) and (doc.get("kind") in GENERATED_KINDS or "externalRules" in doc)
    ]
    assert quoted, f"{page} quotes no generated manifest"
    for doc in quoted:
        assert doc in generated, f"{page}: a quoted {doc.get('kind', 'adapter rule')} is not what the generator writes"


def test_flagger_page_quotes_every_template_and_argo_page_the_template() -> None:
    flagger = (DOCS / "rollouts-flagger.md").read_text()
    argo = (DOCS / "rollouts-argo.md").read_text()
    for gate in GATES:
        assert f"name: model-health-{gate.key}" in flagger, gate.key
        assert f"name: {gate.key}" in argo, gate.key


def test_every_gate_is_in_the_overview() -> None:
    text = (DOCS / "rollouts.md").read_text()
    for gate in GATES:
        assert f"| `{gate.key}` |" in text, gate.key
