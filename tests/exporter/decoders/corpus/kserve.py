"""KServe's payload logger, event by event, as its agent writes them and a KafkaSink stores them.

Sources (kserve/kserve at aaac4e2):

- ``pkg/webhook/admission/pod/agent_injector.go`` — the controller starts the agent with
  ``--log-mode`` (the InferenceService's ``logger.mode``: ``all`` unless set), ``--source-uri``
  (the pod's name), ``--inference-service``, ``--namespace``, ``--endpoint`` (the pod's
  ``endpoint`` label: ``default`` or ``canary``), ``--component`` and, when the logger names
  ``metadataHeaders``, ``--metadata-headers``.
- ``pkg/logger/handler.go`` — one event for the request (modes ``all`` and ``request``) and,
  only for a ``200`` answer, one for the response (``all`` and ``response``), both with the
  id the client sent in ``Ce-Id`` or a fresh UUID, and the *request's* content type; the
  request event's time is when the request arrived, the response's when it was answered;
  ``metadata`` holds the allowed request headers under Go's canonical names.
- ``pkg/logger/worker.go`` — binary-mode CloudEvents (cloudevents/sdk-go): ``Ce-Id``,
  ``Ce-Type``, ``Ce-Source``, ``Ce-Specversion``, ``Ce-Time`` (RFC 3339, nanoseconds, UTC) and
  the extensions ``recordedtime`` (when sent), ``inferenceservicename``, ``namespace``,
  ``component``, ``endpoint``, ``metadata`` (always: ``{}`` when no header is allowed) and
  ``annotations`` (only when set); the body is the request or response body as it was.
- kserve/kserve#6036 (open, 2026-08) — ``logAllResponses`` would log every response with a
  ``statuscode`` extension; it is not in a release.

On Kafka (Knative's KafkaSink, knative-extensions/eventing-kafka-broker, with the CloudEvents
Java SDK's Kafka binding): binary content mode, each attribute and extension a ``ce_<name>``
header in lower case, the content type as ``content-type``, the body as the value, and no
key (KafkaSink keys a record only by a ``partitionkey`` extension, which KServe never sets).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

REQUEST = "org.kubeflow.serving.inference.request"
RESPONSE = "org.kubeflow.serving.inference.response"


@dataclass(frozen=True)
class Logged:
    """One logged event as it travels: on Kafka (``key`` None, ``ce_`` headers) or over HTTP."""

    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    key: bytes | None = None


@dataclass(frozen=True)
class Agent:
    """One agent's flags, as agent_injector.go sets them for a predictor pod."""

    service: str
    namespace: str
    endpoint: str = "default"
    component: str = "predictor"
    source: str = ""  # --source-uri: the pod's name
    log_mode: str = "all"  # all | request | response
    metadata_headers: tuple[str, ...] = ()  # --metadata-headers, Go's canonical names

    def pod(self) -> str:
        return self.source or f"{self.service}-{self.component}-00001-deployment-7d9f8b6c4-x2x7q"


def rfc3339_nano(seconds: float) -> str:
    """Go's ``time.RFC3339Nano`` in UTC, as sdk-go writes ``Ce-Time``: trailing zeros dropped."""
    moment = datetime.fromtimestamp(seconds, UTC)
    whole = moment.strftime("%Y-%m-%dT%H:%M:%S")
    nanos = round((seconds - int(seconds)) * 1e9)
    fraction = f"{nanos:09d}".rstrip("0")
    return f"{whole}.{fraction}Z" if fraction else f"{whole}Z"


def inference(
    agent: Agent,
    request_body: dict[str, Any],
    response_body: dict[str, Any],
    *,
    at: float,
    latency: float = 0.012,
    status: int = 200,
    client_headers: dict[str, str] | None = None,
    ce_id: str | None = None,
    kafka: bool = True,
    log_all_responses: bool = False,
) -> list[Logged]:
    """The events one inference call makes the agent log, in the order it queues them.

    ``client_headers`` are the headers the client sent (those in ``metadata_headers`` are
    passed on); ``ce_id`` is the client's ``Ce-Id`` (else a UUID, as ``getOrCreateID``).
    """
    event_id = ce_id or str(uuid.uuid4())
    sent = client_headers or {}
    metadata = {name: [value] for name, value in sent.items() if name in agent.metadata_headers}
    events = []
    if agent.log_mode in ("all", "request"):
        events.append(_event(agent, REQUEST, event_id, request_body, at, at + 0.0004, metadata, None, kafka))
    answered = at + latency
    logs_response = status == 200 or log_all_responses
    if logs_response and agent.log_mode in ("all", "response"):
        code = status if log_all_responses else None
        events.append(
            _event(agent, RESPONSE, event_id, response_body, answered, answered + 0.0004, metadata, code, kafka)
        )
    return events


def _event(
    agent: Agent,
    kind: str,
    event_id: str,
    body: dict[str, Any],
    occurred: float,
    sent: float,
    metadata: dict[str, list[str]],
    status_code: int | None,
    kafka: bool,
) -> Logged:
    # worker.go's sendHttpCloudEvent, attribute by attribute, in its order.
    attributes: list[tuple[str, str]] = [
        ("id", event_id),
        ("type", kind),
        ("time", rfc3339_nano(occurred)),
        ("recordedtime", rfc3339_nano(sent)),
        ("inferenceservicename", agent.service),
        ("namespace", agent.namespace),
        ("component", agent.component),
        ("endpoint", agent.endpoint),
        ("metadata", json.dumps(metadata, separators=(",", ":"))),  # Go's json.Marshal: compact
        ("source", agent.pod()),
        ("specversion", "1.0"),
    ]
    if status_code is not None:
        attributes.append(("statuscode", str(status_code)))
    value = json.dumps(body, separators=(",", ":")).encode()
    content_type = "application/json"  # the client's request Content-Type, for both events
    if kafka:
        headers = [(f"ce_{name}", text.encode()) for name, text in attributes]
        headers.append(("content-type", content_type.encode()))
    else:
        # Go's http.Header canonicalises names: Ce-Id, Ce-Inferenceservicename, …
        headers = [(f"Ce-{name.capitalize()}", text.encode()) for name, text in attributes]
        headers.append(("Content-Type", content_type.encode()))
    return Logged(value, tuple(headers))


def v1_request(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A V1 (TensorFlow-style) request body: ``{"instances": [...]}``."""
    return {"instances": rows}


def v1_response(predictions: list[Any]) -> dict[str, Any]:
    """A V1 response as KServe's Python model server writes it: ``{"predictions": [...]}``."""
    return {"predictions": predictions}


def v2_request(name: str, values: list[list[float]], datatype: str = "FP32") -> dict[str, Any]:
    """An Open Inference Protocol REST request: one row-major tensor, data flattened."""
    flat = [v for row in values for v in row]
    return {"inputs": [{"name": name, "shape": [len(values), len(values[0])], "datatype": datatype, "data": flat}]}


def v2_response(model: str, scores: list[float], *, request_id: str = "") -> dict[str, Any]:
    """An OIP REST response as KServe's model server writes it (no ``model_version`` unless set)."""
    return {
        "model_name": model,
        "id": request_id,
        "outputs": [{"name": "output-0", "shape": [len(scores)], "datatype": "FP64", "data": scores}],
    }
