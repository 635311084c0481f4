"""The small HTTP surface every component serves: /metrics, /healthz, /readyz, and routes.

``/metrics`` is prometheus_client's own WSGI app over a registry passed in (text format,
or OpenMetrics when the scraper asks for it). Anything else is 404, and a method other
than GET/HEAD on these paths is 405: a bad request never stops the server.

With a bearer token (the aggregator's ``http.token_file``), ``/metrics`` and every extra
route answer 401 without ``Authorization: Bearer <token>``; ``/healthz`` and ``/readyz``
stay open, since the kubelet's probes carry no token and say nothing about the data.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from exporter.httpd.auth import token_problem
from exporter.httpd.connection import KeepAliveHandler

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Route = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _plain(
    start_response: Callable[..., Any], status: str, body: str, extra: list[tuple[str, str]] | None = None
) -> list[bytes]:
    data = body.encode()
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(data))), *(extra or [])]
    start_response(status, headers)
    return [data]


PREFIX = "/*"
"""A route key ending in ``/*`` (``"/report/*"``) takes every path under that prefix."""


def _route_for(routes: dict[str, Route], path: str) -> Route | None:
    route = routes.get(path)
    if route is not None:
        return route
    for key, prefixed in routes.items():
        if key.endswith(PREFIX) and path.startswith(key[: -len(PREFIX)] + "/"):
            return prefixed
    return None


def health_app(
    registry: CollectorRegistry,
    ready: Callable[[], tuple[bool, str]],
    routes: dict[str, Route] | None = None,
    token: str | None = None,
    wrap_metrics: Callable[[WSGIApp], WSGIApp] | None = None,
) -> WSGIApp:
    """WSGI app: /metrics from ``registry``, /healthz always, /readyz from ``ready()``.

    ``routes`` adds paths (e.g. the sidecar's POST endpoints, the aggregator's drift report),
    each its own WSGI app; a key ending in ``/*`` takes a whole prefix. ``token``, when set,
    guards ``/metrics`` and the routes. ``wrap_metrics`` wraps the ``/metrics`` app (the
    aggregator counts scrapes in flight, so a report render can step aside for them).
    """
    metrics = make_wsgi_app(registry)
    if wrap_metrics is not None:
        metrics = wrap_metrics(metrics)
    extra_routes = routes or {}

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        route = _route_for(extra_routes, path)
        if token is not None and (route is not None or path == "/metrics"):
            why = token_problem(environ.get("HTTP_AUTHORIZATION", ""), token)
            if why is not None:
                challenge = [("WWW-Authenticate", 'Bearer realm="model-health"')]
                return _plain(start_response, "401 Unauthorized", f"{why}\n", challenge)
        if route is not None:
            return route(environ, start_response)
        if path not in ("/metrics", "/healthz", "/readyz"):
            return _plain(start_response, "404 Not Found", "not found\n")
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return _plain(start_response, "405 Method Not Allowed", "use GET\n", [("Allow", "GET, HEAD")])
        if path == "/metrics":
            return metrics(environ, start_response)
        if path == "/healthz":
            return _plain(start_response, "200 OK", "ok\n")
        is_ready, why = ready()
        return _plain(start_response, "200 OK" if is_ready else "503 Service Unavailable", f"{why}\n")

    return app


class HttpServer:
    """A threaded WSGI server on (host, port); port 0 picks a free one.

    Connections are HTTP/1.1 keep-alive and request bodies arrive bounded and de-chunked
    (see :mod:`exporter.httpd.connection`); :func:`exporter.httpd.body.read_body` reads one
    within a size limit.
    """

    def __init__(self, app: WSGIApp, host: str, port: int) -> None:
        self._server = make_server(host, port, app, server_class=ThreadingWSGIServer, handler_class=KeepAliveHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="http", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> HttpServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
