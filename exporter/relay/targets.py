"""The request each target kind gets for one delivery: URL, headers and JSON body.

Every request carries the Standard Webhooks headers (see ``signing``); the body depends on
the kind:

- ``generic`` — the retraining event as JSON: model, version, reasons, the alerts, startsAt.
- ``argo`` — the same JSON to an Argo Events webhook event source (``url`` + ``endpoint``);
  sensors read it as ``body.model`` and so on.
- ``kubeflow`` — a Kubeflow Pipelines v2 run: ``POST /apis/v2beta1/runs`` with the pipeline
  (version) reference, the experiment, and ``model``, ``model_version``, ``reason`` as run
  parameters.
- ``github`` — ``POST /repos/{owner}/{repo}/dispatches`` (``repository_dispatch``) with
  ``event_type`` and the event in ``client_payload``.

A body is a pure function of the stored delivery, so every retry sends the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from exporter import __version__
from exporter.config import ArgoTargetConfig, RelayTargetConfig
from exporter.relay.credentials import Credentials
from exporter.relay.signing import webhook_headers
from exporter.relay.store import Delivery

EVENT_TYPE = "model_health.retrain_recommended"
GITHUB_API = "https://api.github.com"
KUBEFLOW_RUNS_PATH = "/apis/v2beta1/runs"
# GitHub refuses a client_payload over 65,535 characters or with more than 10 top-level keys.
GITHUB_PAYLOAD_MAX_CHARS = 65_535
USER_AGENT = f"model-health-relay/{__version__}"


@dataclass(frozen=True)
class OutboundRequest:
    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat().replace("+00:00", "Z")


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def event_payload(delivery: Delivery) -> dict[str, Any]:
    """The ``generic`` and ``argo`` body."""
    event = delivery.event
    return {
        "type": EVENT_TYPE,
        "id": delivery.id,
        "timestamp": _iso(delivery.created_at),
        "model": event.model,
        "model_version": event.model_version,
        "reasons": list(event.reasons),
        "startsAt": event.starts_at,
        "alerts": [dict(alert) for alert in event.alerts],
        "externalURL": event.external_url,
        "groupKey": event.group_key,
    }


def kubeflow_run(
    delivery: Delivery, pipeline_id: str, version_id: str | None, experiment_id: str | None
) -> dict[str, Any]:
    """A v2beta1 ``Run``; the delivery id in the name identifies a retried request's run."""
    event = delivery.event
    version = f" {event.model_version}" if event.model_version else ""
    reference: dict[str, str] = {"pipeline_id": pipeline_id}
    if version_id is not None:
        reference["pipeline_version_id"] = version_id
    run: dict[str, Any] = {
        "display_name": f"retrain {event.model}{version} ({delivery.id})",
        "description": "Requested by model-health: " + "; ".join(event.reasons),
        "pipeline_version_reference": reference,
        "runtime_config": {
            "parameters": {
                "model": event.model,
                "model_version": event.model_version or "",
                "reason": "; ".join(event.reasons),
            }
        },
    }
    if experiment_id is not None:
        run["experiment_id"] = experiment_id
    return run


def github_dispatch(delivery: Delivery, event_type: str) -> dict[str, Any]:
    event = delivery.event
    payload: dict[str, Any] = {
        "model": event.model,
        "model_version": event.model_version,
        "reasons": list(event.reasons),
        "starts_at": event.starts_at,
        "webhook_id": delivery.id,
        "external_url": event.external_url,
        "alerts": [
            {"fingerprint": a["fingerprint"], "startsAt": a["startsAt"], "labels": a["labels"]} for a in event.alerts
        ],
    }
    if len(_dumps(payload)) > GITHUB_PAYLOAD_MAX_CHARS:
        payload["alerts"] = [{"fingerprint": a["fingerprint"], "startsAt": a["startsAt"]} for a in event.alerts]
    return {"event_type": event_type, "client_payload": payload}


class Target:
    """Renders deliveries into requests for the configured target."""

    def __init__(self, config: RelayTargetConfig, credentials: Credentials) -> None:
        self.config = config
        self.kind = config.kind
        self._credentials = credentials

    def request(self, delivery: Delivery, now: float) -> OutboundRequest:
        config = self.config
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        token = self._credentials.target_token
        base = (config.url or GITHUB_API).rstrip("/")
        if config.kind == "github" and config.github is not None:
            url = f"{base}/repos/{config.github.repository}/dispatches"
            body: dict[str, Any] = github_dispatch(delivery, config.github.event_type)
            headers.update({"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": config.github.api_version})
        elif config.kind == "kubeflow" and config.kubeflow is not None:
            kfp = config.kubeflow
            url = base + KUBEFLOW_RUNS_PATH
            body = kubeflow_run(delivery, kfp.pipeline_id, kfp.pipeline_version_id, kfp.experiment_id)
        elif config.kind == "argo":
            url = base + (config.argo or ArgoTargetConfig()).endpoint
            body = event_payload(delivery)
        else:
            url = base if config.url is None else config.url
            body = event_payload(delivery)
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        text = _dumps(body)
        headers.update(webhook_headers(self._credentials.webhook, delivery.id, text, now))
        return OutboundRequest("POST", url, headers, text.encode())
