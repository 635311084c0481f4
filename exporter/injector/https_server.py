"""A threaded WSGI server over TLS whose certificate can change under it.

Each accepted connection is wrapped with the context :class:`ReloadingTlsContext` holds at
that moment, so a rotated certificate is served from the next connection on with no
restart. The TLS handshake runs in the connection's own thread, under a timeout, so a slow
or non-TLS client never stalls the accept loop; a failed handshake or a broken connection
is logged at debug level and costs nothing else.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler

from prometheus_client.exposition import ThreadingWSGIServer

from exporter.httpd.server import WSGIApp
from exporter.injector.tls import ReloadingTlsContext

log = logging.getLogger(__name__)


class _Handler(WSGIRequestHandler):
    def get_environ(self) -> dict[str, Any]:
        environ = super().get_environ()
        environ["HTTPS"] = "on"  # wsgi.url_scheme follows it
        return environ

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s %s", self.address_string(), format % args)


class _TlsWsgiServer(ThreadingWSGIServer):
    tls: ReloadingTlsContext
    connection_timeout: float

    def get_request(self) -> tuple[socket.socket, Any]:
        raw, address = self.socket.accept()
        raw.settimeout(self.connection_timeout)
        try:
            wrapped = self.tls.current().wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
        except (OSError, ValueError):
            raw.close()
            raise OSError("could not wrap the connection") from None
        return wrapped, address

    def finish_request(self, request: Any, client_address: Any) -> None:
        try:
            request.do_handshake()
        except (ssl.SSLError, OSError) as exc:
            log.debug("TLS handshake with %s failed: %s", client_address, exc)
            return
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that goes away mid-request is routine, not a traceback on stderr.
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


class _TlsWsgiServer6(_TlsWsgiServer):
    address_family = socket.AF_INET6


class HttpsServer:
    """HTTPS on (host, port); port 0 picks a free one."""

    def __init__(
        self, app: WSGIApp, host: str, port: int, tls: ReloadingTlsContext, connection_timeout: float = 10.0
    ) -> None:
        server_cls = _TlsWsgiServer6 if ":" in host else _TlsWsgiServer
        self._server = server_cls((host, port), _Handler)
        self._server.tls = tls
        self._server.connection_timeout = connection_timeout
        self._server.set_app(app)
        self._thread = threading.Thread(target=self._server.serve_forever, name="https", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> HttpsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
