"""The demo model's payload logger: its inferences, sent to the sidecar as KServe's logger sends them.

KServe's payload logger (``pkg/logger/worker.go``) POSTs two binary-mode CloudEvents per
inference to its ``logger.url``: ``org.kubeflow.serving.inference.request`` carrying the
request body and ``org.kubeflow.serving.inference.response`` carrying the response body.
Both share ``ce-id`` (the inference's request id); ``ce-inferenceservicename``,
``ce-namespace``, ``ce-component`` and ``ce-endpoint`` say who served it, and ``ce-time``
when each half happened, so the response's time minus the request's is the latency.

:func:`inference_calls` groups the traffic generator's records into inference calls of a
few rows, as a client batching its requests would, with bodies in either protocol:

- ``v1`` — ``{"instances": [{feature: value, ...}]}`` → ``{"predictions": [score, ...]}``;
- ``v2`` (Open Inference Protocol) — one tensor per feature, the pandas codec's layout
  (``FP64`` for numbers, ``BYTES`` for text) → one ``FP64`` output. A tensor has no null:
  a missing number is sent as NaN (the decoders read NaN as a gap, as pandas writes it),
  and a row with a missing text value goes in a call of its own, without that input.

The sidecar names the rows of a call ``<ce-id>/<i>`` (``<ce-id>`` when the call has one
row); those are the ids a ground-truth pipeline labels, so each call says which generator
record became which logged id. :class:`PayloadLogger` posts the events over one
keep-alive connection.
"""

from __future__ import annotations

import http.client
import json
import logging
import math
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from exporter.decoders.kserve import REQUEST_TYPE, RESPONSE_TYPE
from exporter.demo.traffic import Record

log = logging.getLogger(__name__)

Protocol = Literal["v1", "v2"]
PROTOCOLS: tuple[Protocol, ...] = ("v1", "v2")
# What KServe's logger puts in ce-source: the model server's own address.
SOURCE = "http://localhost:8080/"
# A sidecar answers 503 while its buffer to Kafka is full; the logger tries again this often.
RETRIES_WHEN_FULL = 5


@dataclass(frozen=True)
class LoggedEvent:
    """One binary-mode CloudEvent: the JSON body and the ``ce-`` headers."""

    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class InferenceCall:
    """One inference as the logger reports it: the request event, then the response event."""

    id: str
    request: LoggedEvent
    response: LoggedEvent
    logged_ids: dict[str, str]  # the generator's request id → the id the sidecar gives the row


def rfc3339(seconds: float) -> str:
    """``ce-time`` as KServe's logger writes it (UTC, nanosecond digits).

    >>> rfc3339(1795889160.04)
    '2026-11-28T18:06:00.040000000Z'
    """
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}000Z"


def inference_calls(
    records: Sequence[Record],
    *,
    protocol: Protocol = "v1",
    call_size: int = 5,
    namespace: str = "demo",
    new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
) -> list[InferenceCall]:
    """The records, in order, as inference calls of at most ``call_size`` rows each."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, not {protocol!r}")
    calls: list[InferenceCall] = []
    for start in range(0, len(records), call_size):
        chunk = list(records[start : start + call_size])
        groups = _v2_groups(chunk) if protocol == "v2" else [chunk]
        calls.extend(_call(group, protocol, namespace, new_id()) for group in groups)
    return calls


def _v2_groups(chunk: list[Record]) -> list[list[Record]]:
    """A v2 BYTES tensor cannot hold a gap: rows missing a text value go alone."""
    text = {name for record in chunk for name, value in record["features"].items() if isinstance(value, str)}
    gapped = [any(record["features"].get(name) is None for name in text) for record in chunk]
    whole = [record for record, gap in zip(chunk, gapped) if not gap]
    alone = [[record] for record, gap in zip(chunk, gapped) if gap]
    return ([whole] if whole else []) + alone


def _call(rows: list[Record], protocol: Protocol, namespace: str, call_id: str) -> InferenceCall:
    first = rows[0]
    model, version = str(first["model"]), str(first["model_version"])
    started = float(first["timestamp"])
    answered = started + float(first.get("latency_ms") or 0.0) / 1000.0
    if protocol == "v1":
        request: dict[str, object] = {"instances": [dict(row["features"]) for row in rows]}
        response: dict[str, object] = {"predictions": [row["prediction"] for row in rows]}
    else:
        request = {"id": call_id, "inputs": _v2_inputs(rows)}
        scores = [math.nan if row["prediction"] is None else float(row["prediction"]) for row in rows]
        response = {
            "model_name": model,
            "model_version": version,
            "id": call_id,
            "outputs": [{"name": "predict", "shape": [len(rows)], "datatype": "FP64", "data": scores}],
        }
    logged = {str(row["request_id"]): (call_id if len(rows) == 1 else f"{call_id}/{i}") for i, row in enumerate(rows)}
    return InferenceCall(
        call_id,
        LoggedEvent(_json(request), _headers(call_id, REQUEST_TYPE, model, namespace, started)),
        LoggedEvent(_json(response), _headers(call_id, RESPONSE_TYPE, model, namespace, answered)),
        logged,
    )


def _v2_inputs(rows: list[Record]) -> list[dict[str, object]]:
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row["features"]))
    tensors: list[dict[str, object]] = []
    for name in names:
        values = [row["features"].get(name) for row in rows]
        present = [value for value in values if value is not None]
        if not present:
            continue  # a feature no row has is missing from all of them
        if any(isinstance(value, str) for value in present):
            datatype, data = "BYTES", values  # _v2_groups left no gap here
        else:
            datatype, data = "FP64", [math.nan if value is None else float(value) for value in values]
        tensors.append({"name": name, "shape": [len(rows)], "datatype": datatype, "data": data})
    return tensors


def _json(document: object) -> bytes:
    # NaN is written as the bare token Python's json (and pandas) write; V1 bodies carry
    # gaps as null and hold no NaN.
    return json.dumps(document, separators=(",", ":")).encode()


def _headers(call_id: str, kind: str, model: str, namespace: str, moment: float) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": call_id,
        "ce-source": SOURCE,
        "ce-type": kind,
        "ce-time": rfc3339(moment),
        "ce-inferenceservicename": model,
        "ce-namespace": namespace,
        "ce-component": "predictor",
        "ce-endpoint": "default",
    }


@dataclass
class PayloadLogger:
    """Posts inference calls to a sidecar's ``POST /`` over one keep-alive HTTP connection.

    Not thread-safe: one model thread owns it. ``statuses`` counts the answers by status.
    """

    host: str
    port: int
    protocol: Protocol = "v1"
    call_size: int = 5
    namespace: str = "demo"
    timeout_s: float = 10.0
    statuses: Counter[int] = field(default_factory=Counter)
    _connection: http.client.HTTPConnection | None = None

    def log(self, records: Sequence[Record]) -> dict[str, str]:
        """Serve ``records`` as inference calls and log each; returns their logged ids."""
        logged: dict[str, str] = {}
        for call in inference_calls(
            records, protocol=self.protocol, call_size=self.call_size, namespace=self.namespace
        ):
            for event in (call.request, call.response):
                self.post(event)
            logged.update(call.logged_ids)
        return logged

    def post(self, event: LoggedEvent) -> int:
        """POST one event; a full sidecar (503) is tried again after its ``Retry-After``."""
        status = 0
        for _ in range(RETRIES_WHEN_FULL):
            status, retry_after = self._send(event)
            if status != 503:
                break
            time.sleep(retry_after)
        self.statuses[status] += 1
        if status != 200:
            log.warning("the sidecar answered %s to a %s event", status or "nothing", event.headers["ce-type"])
        return status

    def _send(self, event: LoggedEvent) -> tuple[int, float]:
        for _ in range(2):  # a kept-alive connection the server closed meanwhile: reconnect once
            connection = self._connect()
            try:
                connection.request("POST", "/", body=event.body, headers=event.headers)
                response = connection.getresponse()
                response.read()
                return response.status, float(response.getheader("Retry-After") or 1.0)
            except (OSError, http.client.HTTPException) as error:
                log.debug("POST to the sidecar failed (%s); reconnecting", error)
                self.close()
        return 0, 1.0

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            self._connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
