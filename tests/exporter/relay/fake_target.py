"""A retraining target on loopback, for the relay's tests.

It stands in for what cannot run here (a webhook receiver, an Argo Events event source, the
Kubeflow Pipelines API, GitHub) and answers the way each documents: a generic receiver and Argo
Events answer 200, Kubeflow Pipelines answers 200 with the created run, GitHub answers 204 No
Content. Every request is recorded; when given a secret it verifies the Standard Webhooks
signature with ``standardwebhooks.Webhook(secret).verify`` and refuses (400) a bad one, as a
receiver should. Tests can make it fail the next N requests (with a status and a
``Retry-After``), answer one status for good, or go down and come back on the same port.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from exporter.kafka.embedded import free_port


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool | None  # None: no secret to check against
    answered: int
    at: float  # time.monotonic() when it arrived

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


class FakeTarget:
    def __init__(
        self,
        kind: str = "generic",
        secret: str | None = None,
        port: int | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.kind = kind
        self.port = port or free_port()
        self._tls = tls
        self._webhook = Webhook(secret) if secret else None
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._failures: list[tuple[int, str | None]] = []
        self._fixed_status: int | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self._tls else 'http'}://127.0.0.1:{self.port}"

    # -- control -------------------------------------------------------------------------------

    def start(self) -> FakeTarget:
        """Listen (again) on the same port."""
        handler = _handler(self)
        deadline = time.monotonic() + 10
        while True:
            try:
                self._server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self._server.daemon_threads = True
        if self._tls is not None:
            self._server.socket = self._tls.wrap_socket(self._server.socket, server_side=True)
        # A short poll interval: going down (``stop``) is part of most tests.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Go down: connections are refused until ``start``."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def fail_next(self, count: int, status: int = 503, retry_after: str | None = None) -> None:
        with self._lock:
            self._failures.extend([(status, retry_after)] * count)

    def always(self, status: int | None) -> None:
        """Answer ``status`` to every request (None: back to normal)."""
        with self._lock:
            self._fixed_status = status

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def delivered(self) -> list[Received]:
        """Requests it accepted (2xx)."""
        return [r for r in self.received if 200 <= r.answered < 300]

    def wait_for(self, count: int, timeout: float = 30.0, accepted: bool = True) -> list[Received]:
        wait_until(
            lambda: len(self.delivered() if accepted else self.received) >= count,
            timeout,
            f"{count} request(s) at the target",
        )
        return self.delivered() if accepted else self.received

    # -- answering -----------------------------------------------------------------------------

    def _answer(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        arrived = time.monotonic()
        verified: bool | None = None
        if self._webhook is not None:
            try:
                self._webhook.verify(body, headers)
                verified = True
            except WebhookVerificationError:
                verified = False
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
            fixed = self._fixed_status
        extra: dict[str, str] = {}
        if verified is False:
            status, payload = 400, b'{"error": "bad signature"}'
        elif failure is not None:
            status, retry_after = failure
            payload = b'{"error": "injected failure"}'
            if retry_after is not None:
                extra["Retry-After"] = retry_after
        elif fixed is not None:
            status, payload = fixed, b'{"error": "fixed answer"}'
        else:
            status, payload = self._success(path, body)
        with self._lock:
            self._received.append(Received(method, path, headers, body, verified, status, arrived))
        return status, extra, payload

    def _success(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.kind == "github":
            return 204, b""  # repository_dispatch: 204 No Content
        if self.kind == "kubeflow":
            run = json.loads(body)
            created = {
                "run_id": f"run-{len(self._received) + 1}",
                "display_name": run.get("display_name"),
                "experiment_id": run.get("experiment_id", ""),
                "pipeline_version_reference": run.get("pipeline_version_reference"),
                "runtime_config": run.get("runtime_config"),
                "state": "PENDING",
                "created_at": "2026-01-01T00:00:00Z",
            }
            return 200, json.dumps(created).encode()
        return 200, b"success"


def _handler(target: FakeTarget) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            headers = {key.lower(): value for key, value in self.headers.items()}
            status, extra, payload = target._answer("POST", self.path, headers, body)
            self.send_response(status)
            for key, value in extra.items():
                self.send_header(key, value)
            if status != 204:
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
            # One request per connection, as the relay sends: no idle keep-alive to be reset.
            self.send_header("Connection", "close")
            self.end_headers()
            if status != 204:
                self.wfile.write(payload)
            self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    return Handler


def wait_until(predicate: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    """Poll ``predicate`` until true; fail after ``timeout`` seconds (generous: CI is slow)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)
