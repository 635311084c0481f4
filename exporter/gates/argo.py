"""Argo Rollouts: one ``AnalysisTemplate`` whose metrics are the gates.

The model is the template's ``model`` argument (``{{args.model}}``), which a Rollout's analysis
step or background analysis passes (``args: [{name: model, value: fraud}]``). Each metric's
``successCondition`` reads the query's one sample as ``result[0]``; with no failure condition
given, a measurement that does not succeed fails, and ``failureLimit`` failures are tolerated.
"""

from __future__ import annotations

from typing import Any

from exporter.config import GatesConfig
from exporter.gates.objects import metadata
from exporter.gates.queries import ARGO_MODEL, GATES, Gate

API_VERSION = "argoproj.io/v1alpha1"


def success_condition(gate: Gate, config: GatesConfig) -> str:
    operator = "<=" if gate.bound == "max" else ">="
    return f"result[0] {operator} {float(gate.limit(config))!r}"


def analysis_template(config: GatesConfig) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "AnalysisTemplate",
        "metadata": metadata(config.name_prefix, config.namespace, "rollout-gates"),
        "spec": {
            "args": [{"name": "model"}],
            "metrics": [
                {
                    "name": gate.key,
                    "interval": config.analysis.interval,
                    "failureLimit": config.analysis.failure_limit,
                    "successCondition": success_condition(gate, config),
                    "provider": {
                        "prometheus": {"address": config.prometheus_url, "query": gate.query(ARGO_MODEL, config) + "\n"}
                    },
                }
                for gate in GATES
            ],
        },
    }
