"""``POST /v1/alertmanager``: Alertmanager's webhook receiver, as a WSGI app.

Checks run cheapest first and each refusal is a 4xx with a one-line reason, counted by reason:
405 for a method other than POST, 401 without the right bearer token (compared in constant
time), 413 for a body over ``http.max_body_bytes`` (refused from ``Content-Length`` before
reading; a chunked body as soon as it passes the limit), 400 for a broken body, a body that is
not JSON or not a version-4 notification. The body of a refused request is read and dropped
(up to a bound) so the client gets its answer instead of a connection reset. A failure to
record the notification is a 500, which Alertmanager retries.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from exporter.httpd.auth import token_problem
from exporter.httpd.body import BodyError, read_body
from exporter.httpd.connection import CHUNKED_KEY
from exporter.relay.intake import Intake
from exporter.relay.payload import PayloadError, parse_notification
from exporter.relay.stats import RelayStats

log = logging.getLogger(__name__)

PATH = "/v1/alertmanager"
# Past this, a refused body is not drained: the client may see a reset instead of the 413.
DRAIN_LIMIT_BYTES = 64 * 1024 * 1024
_CHUNK = 64 * 1024


def _answer(
    start_response: Callable[..., Any], status: str, body: dict[str, Any], extra: list[tuple[str, str]] | None = None
) -> list[bytes]:
    data = (json.dumps(body) + "\n").encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data))), *(extra or [])])
    return [data]


def _drain(environ: dict[str, Any]) -> None:
    """Read and drop what is left of the body, when it is bounded and not huge."""
    if environ.get(CHUNKED_KEY):
        remaining = DRAIN_LIMIT_BYTES  # the server ends a chunked body's stream at its end
    else:
        try:
            remaining = int(environ.get("CONTENT_LENGTH") or "0")
        except ValueError:
            return
        if remaining > DRAIN_LIMIT_BYTES:
            return
    stream = environ["wsgi.input"]
    try:
        while remaining > 0:
            chunk = stream.read(min(_CHUNK, remaining))
            if not chunk:
                return
            remaining -= len(chunk)
    except (OSError, ValueError):  # a broken body: the connection is closed after the answer
        return


def alertmanager_endpoint(
    intake: Intake, token: str, max_body_bytes: int, stats: RelayStats
) -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def refuse(status: str, reason: str, message: str, extra: list[tuple[str, str]] | None = None) -> list[bytes]:
            # Only a body left unread: past broken framing the rest of the stream is not a body,
            # and a body already read has nothing left.
            if reason in ("method", "unauthorized", "too_large"):
                _drain(environ)
            stats.rejected(reason)
            log.warning("refused %s %s: %s (%s)", environ.get("REQUEST_METHOD"), PATH, message, status)
            return _answer(start_response, status, {"error": message, "reason": reason}, extra)

        if environ.get("REQUEST_METHOD") != "POST":
            return refuse("405 Method Not Allowed", "method", "use POST", [("Allow", "POST")])
        why = token_problem(environ.get("HTTP_AUTHORIZATION", ""), token)
        if why is not None:
            return refuse(
                "401 Unauthorized", "unauthorized", why, [("WWW-Authenticate", 'Bearer realm="model-health-relay"')]
            )
        try:
            body = read_body(environ, max_body_bytes)
        except BodyError as error:
            return refuse(error.status, error.reason, error.message)
        try:
            notification = parse_notification(body)
        except PayloadError as error:
            return refuse("400 Bad Request", error.reason, str(error))
        try:
            summary = intake.receive(notification)
        except Exception:  # noqa: BLE001 - the answer tells Alertmanager to retry
            log.exception("cannot record notification %s", notification.groupKey)
            return _answer(start_response, "500 Internal Server Error", {"error": "cannot record the notification"})
        return _answer(start_response, "200 OK", summary)

    return app
