"""``model-health injector``: the admission webhook's HTTPS service.

Routes: ``POST /mutate`` (AdmissionReview v1; ``?scope=namespace`` marks requests from the
namespace-scoped webhook, whose namespaces opt every pod in), and ``/metrics``,
``/healthz``, ``/readyz`` on the same TLS port.

The injector must never be the reason a pod cannot start: every well-formed review is
answered ``allowed: true``; an internal error while planning the sidecar lets the pod
through unpatched with the reason in ``warnings`` (and the webhook's ``failurePolicy:
Ignore`` covers the injector being down). Only a body that is not an AdmissionReview gets a
4xx — it cannot have come from an API server.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import parse_qs

from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric

from exporter import __version__
from exporter.config import InjectedSidecarConfig, InjectorConfig
from exporter.exposition import BuildInfoCollector, CatalogueCollector
from exporter.httpd.body import BodyError, read_body
from exporter.httpd.server import WSGIApp, health_app
from exporter.injector import admission
from exporter.injector.https_server import HttpsServer
from exporter.injector.mutation import Scope, SidecarConfigValidator, plan
from exporter.injector.tls import ReloadingTlsContext

log = logging.getLogger(__name__)

# Every outcome /mutate can have; exported from the start so rate() sees the first one.
OUTCOMES = (
    "injected",
    "already_injected",
    "opted_out",
    "not_selected",
    "refused",
    "not_applicable",
    "error",
    "malformed",
)


class AdmissionCounts:
    """Admissions by outcome; written by request threads, read by scrapes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(OUTCOMES, 0)

    def add(self, outcome: str) -> None:
        with self._lock:
            self._counts[outcome] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


class InjectorCollector(CatalogueCollector):
    """The injector's families, from the catalogue, rendered from counters at scrape time
    (beside the role's build_info collector)."""

    METRICS = (
        "model_health_injector_admissions_total",
        "model_health_injector_certificate_expiry_timestamp_seconds",
        "model_health_injector_certificate_reloads_total",
    )

    def __init__(self, counts: AdmissionCounts, tls: ReloadingTlsContext) -> None:
        self._counts = counts
        self._tls = tls

    def collect(self) -> Iterator[Metric]:
        out = self.families()
        for outcome, count in self._counts.snapshot().items():
            out.add("model_health_injector_admissions_total", [outcome], count)
        out.add("model_health_injector_certificate_expiry_timestamp_seconds", [], self._tls.loaded.not_after)
        out.add("model_health_injector_certificate_reloads_total", ["loaded"], self._tls.reloads)
        out.add("model_health_injector_certificate_reloads_total", ["failed"], self._tls.reload_failures)
        yield from out


def _reply(
    start_response: Callable[..., Any],
    status: str,
    body: bytes,
    content_type: str,
    extra: Iterable[tuple[str, str]] = (),
) -> list[bytes]:
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body))), *extra])
    return [body]


def _text(
    start_response: Callable[..., Any], status: str, message: str, extra: Iterable[tuple[str, str]] = ()
) -> list[bytes]:
    return _reply(start_response, status, f"{message}\n".encode(), "text/plain; charset=utf-8", extra)


def _pod_name(pod: Mapping[str, Any] | None, request: admission.AdmissionRequest) -> str:
    metadata = (pod or {}).get("metadata") or {}
    name = request.name or metadata.get("name") or f"{metadata.get('generateName') or ''}*"
    return f"{request.namespace or metadata.get('namespace') or '?'}/{name}"


class Injector:
    """Answers AdmissionReviews: ``handle(body, scope)`` → (outcome, response document)."""

    def __init__(self, sidecar: InjectedSidecarConfig) -> None:
        self._sidecar = sidecar
        self._validator = SidecarConfigValidator()

    def handle(self, review: admission.AdmissionReview, scope: Scope) -> tuple[str, dict[str, Any]]:
        request = review.request
        if not review.is_pod_create:
            return "not_applicable", admission.response(request.uid)
        pod = request.object or {}
        where = _pod_name(pod, request)
        try:
            namespace = request.namespace or (pod.get("metadata") or {}).get("namespace") or ""
            decision = plan(pod, namespace, scope, self._sidecar, self._validator)
            patch = admission.json_patch(pod, decision.mutated) if decision.mutated is not None else None
        except Exception as exc:  # noqa: BLE001 - a bug here must not block the pod
            log.exception("pod %s: internal error; admitted without the sidecar", where)
            warning = f"model-health sidecar not injected: internal error ({type(exc).__name__}: {exc})"
            return "error", admission.response(request.uid, warnings=(warning,))
        level = logging.INFO if decision.outcome in ("injected", "refused") else logging.DEBUG
        log.log(level, "pod %s: %s: %s", where, decision.outcome, decision.reason)
        return decision.outcome, admission.response(request.uid, patch, decision.warnings)


def mutate_route(injector: Injector, counts: AdmissionCounts, max_body_bytes: int) -> WSGIApp:
    """The WSGI app behind ``/mutate``."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            return _text(
                start_response, "405 Method Not Allowed", "use POST with an AdmissionReview", [("Allow", "POST")]
            )
        scopes = parse_qs(environ.get("QUERY_STRING", "")).get("scope", ["pod"])
        if len(scopes) != 1 or scopes[0] not in ("pod", "namespace"):
            counts.add("malformed")
            return _text(start_response, "400 Bad Request", "scope must be pod or namespace")
        try:
            length = int(environ.get("CONTENT_LENGTH") or "")
        except ValueError:
            counts.add("malformed")
            return _text(start_response, "411 Length Required", "Content-Length required")
        if length < 0 or length > max_body_bytes:
            counts.add("malformed")
            return _text(start_response, "413 Content Too Large", f"AdmissionReview larger than {max_body_bytes} bytes")
        try:
            body = read_body(environ, max_body_bytes)
        except BodyError as exc:  # the client went quiet or broke off mid-body
            counts.add("malformed")
            return _text(start_response, exc.status, str(exc))
        try:
            review = admission.parse_review(body)
        except admission.MalformedReview as exc:
            counts.add("malformed")
            log.warning("refused a request to /mutate: %s", exc)
            return _text(start_response, "400 Bad Request", str(exc))
        outcome, document = injector.handle(review, scopes[0])
        counts.add(outcome)
        return _reply(start_response, "200 OK", json.dumps(document).encode(), "application/json")

    return app


def build_app(config: InjectorConfig, tls: ReloadingTlsContext, registry: CollectorRegistry) -> WSGIApp:
    counts = AdmissionCounts()
    registry.register(BuildInfoCollector(__version__))
    registry.register(InjectorCollector(counts, tls))

    def ready() -> tuple[bool, str]:
        not_after = tls.loaded.not_after
        if not_after <= time.time():
            return False, f"serving certificate expired at {not_after:.0f}"
        return True, "serving"

    route = mutate_route(Injector(config.sidecar), counts, config.http.max_body_bytes)
    return health_app(registry, ready, {"/mutate": route})


def serve(
    config: InjectorConfig, stop: threading.Event | None = None, on_ready: Callable[[int], None] | None = None
) -> None:
    """Serve until ``stop`` is set (SIGTERM/SIGINT set it when run from the CLI)."""
    stop = stop or threading.Event()
    tls = ReloadingTlsContext(config.tls.cert_file, config.tls.key_file)
    app = build_app(config, tls, CollectorRegistry())
    server = HttpsServer(app, config.http.host, config.http.port, tls, config.http.connection_timeout_seconds).start()
    log.info(
        "injecting %s (%s) on https://%s:%d/mutate",
        config.sidecar.image,
        "native sidecar" if config.sidecar.native_sidecar else "plain container",
        config.http.host,
        server.port,
    )
    if on_ready is not None:
        on_ready(server.port)
    try:
        stop.wait()
    finally:
        server.stop()
        log.info("stopped")
