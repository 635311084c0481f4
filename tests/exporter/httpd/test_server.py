import threading
import urllib.error
import urllib.request

import pytest
from prometheus_client import CollectorRegistry, Counter

from exporter.httpd.server import HttpServer, health_app


@pytest.fixture
def server():
    registry = CollectorRegistry()
    Counter("model_health_demo_total", "demo", registry=registry).inc()
    state = {"ready": False}
    srv = HttpServer(
        health_app(registry, lambda: (state["ready"], "broker: ok" if state["ready"] else "broker: unreachable")),
        "127.0.0.1",
        0,
    ).start()
    yield srv, state
    srv.stop()


def get(port: int, path: str, method: str = "GET", headers: dict[str, str] | None = None) -> tuple[int, str, dict]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), dict(error.headers)


def test_metrics_health_and_readiness(server):
    srv, state = server
    status, body, headers = get(srv.port, "/metrics")
    assert status == 200 and "model_health_demo_total 1.0" in body and headers["Content-Type"].startswith("text/plain")
    status, body, headers = get(srv.port, "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert (
        status == 200
        and headers["Content-Type"].startswith("application/openmetrics-text")
        and body.endswith("# EOF\n")
    )
    assert get(srv.port, "/healthz")[0] == 200
    assert get(srv.port, "/readyz")[:2] == (503, "broker: unreachable\n")
    state["ready"] = True
    assert get(srv.port, "/readyz")[:2] == (200, "broker: ok\n")


def test_bad_requests_get_4xx_and_the_server_keeps_serving(server):
    srv, _ = server
    assert get(srv.port, "/nope")[0] == 404
    assert get(srv.port, "/metrics", method="POST")[0] == 405
    assert get(srv.port, "/healthz", method="DELETE")[0] == 405
    results = []
    threads = [threading.Thread(target=lambda: results.append(get(srv.port, "/metrics")[0])) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 20


def _route(name: str):
    def app(environ, start_response):
        body = f"{name} {environ['PATH_INFO']}".encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]

    return app


@pytest.fixture
def guarded():
    registry = CollectorRegistry()
    Counter("model_health_demo_total", "demo", registry=registry).inc()
    routes = {"/report": _route("index"), "/report/*": _route("page")}
    srv = HttpServer(health_app(registry, lambda: (True, "ok"), routes, token="t0ken"), "127.0.0.1", 0).start()
    yield srv
    srv.stop()


def test_a_prefix_route_takes_every_path_under_it(guarded):
    auth = {"Authorization": "Bearer t0ken"}
    assert get(guarded.port, "/report", headers=auth)[:2] == (200, "index /report")
    assert get(guarded.port, "/report/fraud", headers=auth)[:2] == (200, "page /report/fraud")
    assert get(guarded.port, "/report/a/b", headers=auth)[:2] == (200, "page /report/a/b")
    assert get(guarded.port, "/reports", headers=auth)[0] == 404  # a prefix, not a string start


def test_a_token_guards_metrics_and_routes_but_not_the_probes(guarded):
    for path in ("/metrics", "/report", "/report/fraud"):
        status, body, headers = get(guarded.port, path)
        assert (status, body) == (401, "missing bearer token\n") and headers["WWW-Authenticate"].startswith("Bearer ")
        assert get(guarded.port, path, headers={"Authorization": "Basic dDBrZW4="})[:2] == (
            401,
            "missing bearer token\n",
        )
        assert get(guarded.port, path, headers={"Authorization": "Bearer t0ke"})[:2] == (401, "wrong bearer token\n")
        assert get(guarded.port, path, headers={"Authorization": "bearer t0ken"})[0] == 200
    assert get(guarded.port, "/healthz")[0] == 200 and get(guarded.port, "/readyz")[0] == 200
    assert get(guarded.port, "/nope")[0] == 404
