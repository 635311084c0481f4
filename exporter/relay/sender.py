"""One HTTP attempt to the target, with separate connect and read timeouts.

``http.client`` rather than a client library: one POST, no redirects (a redirected signed
request is a misconfiguration to surface, not to follow), and the exact bytes that were signed
go on the wire.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from exporter.relay.targets import OutboundRequest

# Enough of an error body to say why in a log line.
MAX_ERROR_BODY = 300


@dataclass(frozen=True)
class Response:
    status: int
    retry_after: str | None
    excerpt: str


class TransportError(Exception):
    """No HTTP answer: refused, reset, DNS, TLS or a timeout. Worth retrying."""


def send(
    request: OutboundRequest, connect_timeout: float, read_timeout: float, ssl_context: ssl.SSLContext | None = None
) -> Response:
    parts = urlsplit(request.url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(
            parts.hostname or "",
            parts.port,
            timeout=connect_timeout,
            context=ssl_context or ssl.create_default_context(),
        )
    else:
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=connect_timeout)
    phase = "connecting"
    try:
        connection.connect()
        if connection.sock is not None:
            connection.sock.settimeout(read_timeout)
        phase = "waiting for the answer"
        connection.request(request.method, path, body=request.body, headers=dict(request.headers))
        answer = connection.getresponse()
        body = answer.read(MAX_ERROR_BODY) if not 200 <= answer.status < 300 else b""
        return Response(answer.status, answer.getheader("Retry-After"), body.decode("utf-8", "replace").strip())
    except (OSError, http.client.HTTPException) as exc:  # socket.timeout and ssl errors are OSErrors
        raise TransportError(_describe(exc, phase)) from None
    finally:
        connection.close()


def _describe(exc: BaseException, phase: str) -> str:
    if isinstance(exc, socket.timeout):
        return f"timed out {phase}"
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__} {phase}: {text}"
