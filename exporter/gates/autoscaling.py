"""Scaling a model's Deployment on its serving latency: KEDA, or a plain HPA via prometheus-adapter.

Both hold the model's latency quantile (``autoscaling.quantile``, p95 by default, over
``autoscaling.range``) to ``target_seconds``. Latency is not a per-pod quantity to divide among
replicas, so the metric target is a **Value**: the HPA wants
``ceil(replicas × latency / target)`` replicas — more when the model is slower than its target,
fewer when faster.

* KEDA: a ``ScaledObject`` with a ``prometheus`` trigger (``metricType: Value``); KEDA queries
  Prometheus itself and needs one sample (it refuses a query that returns several).
* prometheus-adapter: an ``externalRules`` entry exposing
  ``model_health_request_duration_seconds_p<q>`` on the external metrics API, selected by
  ``model`` (``namespaced: false``: the series come from the aggregator's and the sidecars'
  namespaces, not the HPA's), and an ``autoscaling/v2`` HPA per model reading it.
"""

from __future__ import annotations

from typing import Any

from exporter.config import GatesConfig, ScaledModelConfig
from exporter.gates.objects import metadata
from exporter.gates.queries import adapter_latency_query, latency_query

LATENCY_SERIES = "model_health_request_duration_seconds_bucket"


def external_metric(config: GatesConfig) -> str:
    """The external metric's name, e.g. ``model_health_request_duration_seconds_p95``."""
    return f"model_health_request_duration_seconds_p{config.autoscaling.quantile * 100:g}".replace(".", "_")


def object_name(model: ScaledModelConfig) -> str:
    return f"{model.deployment}-latency"


def scaled_object(model: ScaledModelConfig, config: GatesConfig) -> dict[str, Any]:
    scaling = config.autoscaling
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": metadata(object_name(model), model.namespace, "autoscaling"),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": model.deployment},
            "minReplicaCount": model.min_replicas,
            "maxReplicaCount": model.max_replicas,
            "triggers": [
                {
                    "type": "prometheus",
                    "metricType": "Value",
                    "metadata": {
                        "serverAddress": config.prometheus_url,
                        "query": latency_query(model.model, scaling.quantile, scaling.range),
                        "threshold": f"{model.target_seconds:g}",
                    },
                }
            ],
        },
    }


def adapter_rules(config: GatesConfig) -> dict[str, Any]:
    """prometheus-adapter configuration (its ``rules`` file, or the chart's ``rules.external``)."""
    scaling = config.autoscaling
    return {
        "externalRules": [
            {
                "seriesQuery": f'{LATENCY_SERIES}{{model!=""}}',
                "resources": {"namespaced": False},
                "name": {"matches": f"^{LATENCY_SERIES}$", "as": external_metric(config)},
                "metricsQuery": adapter_latency_query(scaling.quantile, scaling.range),
            }
        ]
    }


def milli(seconds: float) -> str:
    """A Kubernetes quantity in thousandths: ``0.2`` → ``200m``."""
    return f"{round(seconds * 1000)}m"


def horizontal_pod_autoscaler(model: ScaledModelConfig, config: GatesConfig) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(object_name(model), model.namespace, "autoscaling"),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": model.deployment},
            "minReplicas": model.min_replicas,
            "maxReplicas": model.max_replicas,
            "metrics": [
                {
                    "type": "External",
                    "external": {
                        "metric": {
                            "name": external_metric(config),
                            "selector": {"matchLabels": {"model": model.model}},
                        },
                        "target": {"type": "Value", "value": milli(model.target_seconds)},
                    },
                }
            ],
        },
    }
