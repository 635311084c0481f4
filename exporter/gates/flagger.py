"""Flagger: one ``MetricTemplate`` per gate, and a ``Canary`` per configured model that uses them.

The templates are generic: their queries name the model as ``{{ variables.model }}``, which
Flagger fills from each Canary metric's ``templateVariables`` (its Go template runs with
``missingkey=error``, so a Canary that forgets the variable fails its check loudly instead of
querying another model). The conditions live where Flagger keeps them, in the Canary's
``thresholdRange``. ``{{ target }}`` and ``{{ namespace }}`` are not needed: the aggregator
identifies a model by its name and version, not by the Deployment or namespace serving it.
"""

from __future__ import annotations

from typing import Any

from exporter.config import CanaryConfig, GatesConfig
from exporter.gates.objects import metadata
from exporter.gates.queries import FLAGGER_MODEL, GATES, Gate

API_VERSION = "flagger.app/v1beta1"


def template_name(config: GatesConfig, gate: Gate) -> str:
    return f"{config.name_prefix}-{gate.key}"


def metric_templates(config: GatesConfig) -> list[dict[str, Any]]:
    """A ``MetricTemplate`` per gate (provider: Prometheus at ``prometheus_url``)."""
    return [
        {
            "apiVersion": API_VERSION,
            "kind": "MetricTemplate",
            "metadata": metadata(template_name(config, gate), config.namespace, "rollout-gates"),
            "spec": {
                "provider": {"type": "prometheus", "address": config.prometheus_url},
                "query": gate.query(FLAGGER_MODEL, config) + "\n",
            },
        }
        for gate in GATES
    ]


def threshold_range(gate: Gate, config: GatesConfig) -> dict[str, float]:
    return {gate.bound: float(gate.limit(config))}


def analysis_metrics(model: str, config: GatesConfig) -> list[dict[str, Any]]:
    """The ``spec.analysis.metrics`` entries of a Canary for ``model``."""
    out = []
    for gate in GATES:
        reference: dict[str, str] = {"name": template_name(config, gate)}
        if config.namespace:
            reference["namespace"] = config.namespace
        out.append(
            {
                "name": template_name(config, gate),
                "templateRef": reference,
                "templateVariables": {"model": model},
                "thresholdRange": threshold_range(gate, config),
                "interval": config.analysis.interval,
            }
        )
    return out


def canary(spec: CanaryConfig, config: GatesConfig) -> dict[str, Any]:
    """A ``Canary`` for one model's Deployment, its analysis the model-health gates."""
    analysis = config.analysis
    return {
        "apiVersion": API_VERSION,
        "kind": "Canary",
        "metadata": metadata(spec.deployment, spec.namespace, "rollout-gates"),
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": spec.deployment},
            "service": {"port": spec.port},
            "analysis": {
                "interval": analysis.interval,
                "threshold": analysis.threshold,
                "stepWeight": analysis.step_weight,
                "maxWeight": analysis.max_weight,
                "metrics": analysis_metrics(spec.model, config),
            },
        },
    }
