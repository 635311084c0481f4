"""A PagerDuty Events API v2 stand-in on loopback: ``POST /v2/enqueue``.

PagerDuty itself cannot run here, so this server answers the way its documentation says the
Events API v2 does (https://developer.pagerduty.com/docs/events-api-v2/trigger-events/):

- ``202 {"status": "success", "message": "Event processed", "dedup_key": …}`` for a valid
  event (the ``dedup_key`` sent, or a new one when a trigger has none);
- ``400 {"status": "invalid event", "message": "Event object is invalid", "errors": [...]}``
  when the body is not a JSON object, the ``routing_key`` is not the integration's (32
  characters), ``event_action`` is not ``trigger``/``acknowledge``/``resolve``, a
  ``dedup_key`` is longer than 255 characters or missing on acknowledge/resolve, or a
  trigger's ``payload`` lacks ``summary`` (≤ 1024 characters), ``source`` or a ``severity``
  of ``critical``/``error``/``warning``/``info``; ``custom_details`` must be an object and
  ``links``/``images`` lists;
- ``404`` for any other path, ``405`` for a method other than POST.

Every valid event is kept in ``events``; every refused one in ``refused`` with its errors,
so a test can assert that nothing malformed was sent.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PATH = "/v2/enqueue"
ACTIONS = ("trigger", "acknowledge", "resolve")
SEVERITIES = ("critical", "error", "warning", "info")
ROUTING_KEY_LENGTH = 32
MAX_SUMMARY = 1024
MAX_DEDUP_KEY = 255


@dataclass(frozen=True)
class Refused:
    body: bytes
    errors: list[str]


def event_errors(event: Any, routing_key: str) -> list[str]:
    """What makes ``event`` invalid for the Events API v2 integration ``routing_key`` (empty: valid)."""
    if not isinstance(event, dict):
        return ["Event object must be a JSON object"]
    errors: list[str] = []
    key = event.get("routing_key")
    if not isinstance(key, str) or len(key) != ROUTING_KEY_LENGTH:
        errors.append(f"'routing_key' must be a {ROUTING_KEY_LENGTH}-character integration key")
    elif key != routing_key:
        errors.append("'routing_key' is not the key of this integration")
    action = event.get("event_action")
    if action not in ACTIONS:
        errors.append(f"'event_action' must be one of {', '.join(ACTIONS)}")
    dedup_key = event.get("dedup_key")
    if dedup_key is not None and (not isinstance(dedup_key, str) or len(dedup_key) > MAX_DEDUP_KEY):
        errors.append(f"'dedup_key' must be a string of at most {MAX_DEDUP_KEY} characters")
    if action in ("acknowledge", "resolve") and not dedup_key:
        errors.append(f"'dedup_key' is required for {action}")
    if action == "trigger":
        errors.extend(_payload_errors(event.get("payload")))
    for name in ("links", "images"):
        if name in event and not isinstance(event[name], list):
            errors.append(f"'{name}' must be a list")
    return errors


def _payload_errors(payload: Any) -> list[str]:
    if not isinstance(payload, dict):
        return ["'payload' is required for trigger and must be an object"]
    errors = []
    summary = payload.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        errors.append("'payload.summary' is required")
    elif len(summary) > MAX_SUMMARY:
        errors.append(f"'payload.summary' must be at most {MAX_SUMMARY} characters")
    source = payload.get("source")
    if not isinstance(source, str) or not source.strip():
        errors.append("'payload.source' is required")
    if payload.get("severity") not in SEVERITIES:
        errors.append(f"'payload.severity' must be one of {', '.join(SEVERITIES)}")
    if "custom_details" in payload and not isinstance(payload["custom_details"], dict):
        errors.append("'payload.custom_details' must be an object")
    return errors


class PagerDutyStandIn:
    """``start()`` → listening on 127.0.0.1 (a free port); ``url`` is the enqueue URL."""

    def __init__(self, routing_key: str) -> None:
        self.routing_key = routing_key
        self._lock = threading.Lock()
        self._events: list[dict[str, Any]] = []
        self._refused: list[Refused] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{PATH}"

    def start(self) -> PagerDutyStandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def events(self) -> list[dict[str, Any]]:
        """Valid events, in arrival order."""
        with self._lock:
            return list(self._events)

    @property
    def refused(self) -> list[Refused]:
        with self._lock:
            return list(self._refused)

    def _enqueue(self, body: bytes) -> tuple[int, dict[str, Any]]:
        try:
            event = json.loads(body)
        except ValueError:
            event = None
        errors = event_errors(event, self.routing_key)
        with self._lock:
            if errors:
                self._refused.append(Refused(body, errors))
            else:
                self._events.append(event)
        if errors:
            return 400, {"status": "invalid event", "message": "Event object is invalid", "errors": errors}
        dedup_key = event.get("dedup_key") or uuid.uuid4().hex
        return 202, {"status": "success", "message": "Event processed", "dedup_key": dedup_key}


def _handler(standin: PagerDutyStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, document: dict[str, Any]) -> None:
            payload = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path != PATH:
                self._answer(404, {"status": "not found", "message": f"no such endpoint: {self.path}"})
                return
            self._answer(*standin._enqueue(body))

        def do_GET(self) -> None:  # noqa: N802
            self._answer(405, {"status": "method not allowed", "message": "use POST"})

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    return Handler
