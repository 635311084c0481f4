"""Rendering the Helm chart with real helm, and reading what it rendered."""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support.helm import helm

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "model-health-exporter"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
RELEASE = "mh"
NAMESPACE = "monitoring"
# Kinds from CRDs: kubernetes-validate has no schema for them; tests check their structure.
CRD_KINDS = frozenset(
    {
        "ServiceMonitor",
        "PodMonitor",
        "PrometheusRule",
        "Certificate",
        "Issuer",
        # The rollout gates (tests/deploy/test_chart_gates.py validates them against the vendored CRDs).
        "MetricTemplate",
        "AnalysisTemplate",
        "ScaledObject",
    }
)


@dataclass(frozen=True)
class Rendered:
    values_file: str
    docs: tuple[dict[str, Any], ...]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [doc for doc in self.docs if doc["kind"] == kind]

    def one(self, kind: str, component: str | None = None) -> dict[str, Any]:
        found = [doc for doc in self.of_kind(kind) if component is None or component_of(doc) == component]
        assert len(found) == 1, f"{self.values_file}: {len(found)} {kind} for {component}"
        return found[0]

    def maybe(self, kind: str, component: str) -> dict[str, Any] | None:
        found = [doc for doc in self.of_kind(kind) if component_of(doc) == component]
        return found[0] if found else None

    def workloads(self) -> list[dict[str, Any]]:
        return [doc for doc in self.docs if doc["kind"] in ("Deployment", "DaemonSet")]


def component_of(doc: Mapping[str, Any]) -> str | None:
    return (doc.get("metadata", {}).get("labels") or {}).get("app.kubernetes.io/component")


def render(*args: str, values: Path | None = None) -> Rendered:
    extra = ["-f", str(values)] if values is not None else []
    result = helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE, *extra, *args)
    docs = tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)
    return Rendered(values.name if values is not None else "(defaults)", docs)


def render_fails(*args: str) -> str:
    result = helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE, *args, check=False)
    assert result.returncode != 0, "expected helm template to fail"
    return result.stderr


def render_notes(tmp: Path, *args: str) -> str:
    """NOTES.txt as helm renders it (helm template skips NOTES; a copy renders it into a ConfigMap)."""
    copy = tmp / "chart"
    shutil.copytree(CHART, copy)
    (copy / "files" / "notes.txt").write_text((CHART / "templates" / "NOTES.txt").read_text())
    (copy / "templates" / "notes-probe.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\ndata:\n"
        '  notes: {{ tpl (.Files.Get "files/notes.txt") . | quote }}\n'
    )
    result = helm(
        "template", RELEASE, str(copy), "--namespace", NAMESPACE, "--show-only", "templates/notes-probe.yaml", *args
    )
    return str(yaml.safe_load(result.stdout)["data"]["notes"])


def pod_specs(rendered: Rendered) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(workload, pod template) for every Deployment and DaemonSet."""
    for workload in rendered.workloads():
        yield workload, workload["spec"]["template"]


def matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Kubernetes label-selector semantics (matchLabels and matchExpressions, ANDed)."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True
