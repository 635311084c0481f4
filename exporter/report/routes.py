"""The aggregator's drift-report endpoints, as WSGI routes over the current snapshot.

- ``GET /report`` — the models, versions and windows of this aggregator, each with its
  drifted features and links to its page and JSON;
- ``GET /report/<model>?version=&window=`` — the drift report page of one window (the page
  of ``drift --format html``);
- ``GET /api/v1/drift?model=&version=&window=`` — the same data as JSON, in the shape of
  ``drift --format json`` (plus the page's keys).

``version`` may be left out for a model with one version; ``window`` defaults to the first
configured window. An unknown model, version or window is 404, a missing or repeated
parameter, an unknown one or a model with several versions and no ``version`` is 400, a
method other than GET/HEAD is 405; a snapshot not yet evaluated is 503. Every answer says
why in one line.

Read-only, and never behind the state lock: a request reads whatever
:class:`~exporter.pipeline.snapshot.Snapshot` is current (one reference, swapped by
evaluation), builds the report from its immutable summaries (:mod:`exporter.report.live`)
and renders it. A rendered page is kept until the next snapshot, so repeated loads and the
model dashboard's links cost one render per evaluation. While a scrape is in flight, a
render steps aside between charts (:class:`ScrapeGate`), so ``/metrics`` is answered as fast
with a report rendering as without (``benchmarks/report_scrape.py``).
"""

from __future__ import annotations

import json
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from html import escape
from typing import Any
from urllib.parse import parse_qs, quote

from exporter.pipeline.snapshot import Snapshot
from exporter.report.html import CSP, render_html, static_text, utc_text
from exporter.report.live import Ambiguous, LookupProblem, NotFound, WindowRef, find_window, window_report
from exporter.report.peers import FORWARDED_ENVIRON, Fetched, Peers

StartResponse = Callable[..., Any]
Route = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

INDEX, PAGE, API = "/report", "/report/", "/api/v1/drift"
_PAGE_PARAMETERS = frozenset({"version", "window"})
_API_PARAMETERS = frozenset({"model", "version", "window"})
CACHE_ENTRIES = 16
"""Rendered pages and JSON kept for the current snapshot (a 100-feature page is ≈ 0.3 MB)."""


class BadRequest(Exception):
    """A request that cannot name a window (400)."""


class ScrapeGate:
    """Counts scrapes in flight; a render waits between charts while there are any.

    The GIL runs one Python thread at a time, switching every few milliseconds: a render
    sharing it with a scrape would stretch the scrape. The render instead pauses at each
    chart boundary (one chart is ≈ 0.2 ms of work) until no scrape is in flight — asleep on
    a condition, so it takes no GIL turns meanwhile — for at most ``max_wait_s`` per pause,
    so back-to-back scrapes cannot starve it.
    """

    MAX_WAIT_S = 0.25

    def __init__(self, max_wait_s: float = MAX_WAIT_S) -> None:
        self._idle = threading.Condition()
        self._active = 0
        self.max_wait_s = max_wait_s

    def wrap(self, app: Route) -> Route:
        """``app`` (``/metrics``) with each request counted from its start until the server
        has written the body (WSGI's ``close()``), not only while the app builds it."""

        def counted(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
            with self._idle:
                self._active += 1
            try:
                body = app(environ, start_response)
            except BaseException:
                self._done()
                raise
            return _Closing(body, self._done)

        return counted

    def _done(self) -> None:
        with self._idle:
            self._active -= 1
            if not self._active:
                self._idle.notify_all()

    @property
    def active(self) -> int:
        return self._active

    def wait(self) -> None:
        """Return once no scrape is in flight (or ``max_wait_s`` has passed)."""
        if not self._active or self.max_wait_s <= 0:
            return
        with self._idle:
            self._idle.wait_for(lambda: not self._active, timeout=self.max_wait_s)


class _Closing:
    """A WSGI body that calls ``done`` once the server closes it (after writing it all)."""

    def __init__(self, body: Iterable[bytes], done: Callable[[], None]) -> None:
        self._body = body
        self._done: Callable[[], None] | None = done

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            if self._done is not None:
                done, self._done = self._done, None
                done()


class _RenderCache:
    """Rendered bodies of the current snapshot; a new snapshot empties it.

    The snapshot is held weakly: an old one (and the window sums it keeps) is freed when
    evaluation replaces it, whether or not a report is asked for meanwhile.
    """

    def __init__(self, entries: int = CACHE_ENTRIES) -> None:
        self._lock = threading.Lock()
        self._snapshot: weakref.ref[Snapshot] | None = None
        self._bodies: OrderedDict[tuple[str, str, str, str], bytes] = OrderedDict()
        self.entries = entries
        self.renders = 0

    def _current(self, snapshot: Snapshot) -> bool:
        return self._snapshot is not None and self._snapshot() is snapshot

    def get(self, snapshot: Snapshot, key: tuple[str, str, str, str], render: Callable[[], bytes]) -> bytes:
        with self._lock:
            if not self._current(snapshot):
                self._snapshot = weakref.ref(snapshot)
                self._bodies.clear()
            body = self._bodies.get(key)
            if body is not None:
                self._bodies.move_to_end(key)
                return body
        body = render()  # outside the lock: two first loads of a page may both render it
        with self._lock:
            self.renders += 1
            if self._current(snapshot):
                self._bodies[key] = body
                while len(self._bodies) > self.entries:
                    self._bodies.popitem(last=False)
        return body


def _one(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    if values is None:
        return None
    if len(values) != 1:
        raise BadRequest(f"{name} given {len(values)} times")
    if not values[0]:
        raise BadRequest(f"{name} is empty")
    return values[0]


def _query(environ: dict[str, Any], allowed: frozenset[str]) -> dict[str, list[str]]:
    try:
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        raise BadRequest("the query string is not UTF-8") from None
    unknown = sorted(set(query) - allowed)
    if unknown:
        raise BadRequest(f"unknown parameter(s) {', '.join(map(repr, unknown))}; known: {', '.join(sorted(allowed))}")
    return query


def _path_model(environ: dict[str, Any]) -> str:
    """The ``<model>`` of ``/report/<model>``, percent-decoded (PEP 3333 hands the path over
    as latin-1 characters of its bytes)."""
    raw = environ.get("PATH_INFO", "")[len(PAGE) :]
    try:
        return raw.encode("latin-1").decode("utf-8")
    except UnicodeError:
        raise BadRequest("the model name in the path is not UTF-8") from None


def _lookup(snapshot: Snapshot, model: str, version: str | None, window: str | None) -> WindowRef:
    """:func:`find_window`; a model name given as Go's ``urlquery`` writes it (a space as
    ``+``, as in the alerts' ``report_url``) is found too."""
    try:
        return find_window(snapshot, model, version, window)
    except NotFound:
        if "+" not in model:
            raise
        try:
            return find_window(snapshot, model.replace("+", " "), version, window)
        except LookupProblem:
            pass
        raise


def page_url(model: str, version: str, window: str) -> str:
    """The path and query of one window's page, as the index links it."""
    return f"{PAGE}{quote(model, safe='')}?version={quote(version, safe='')}&window={quote(window, safe='')}"


def render_index(snapshot: Snapshot) -> str:
    """``GET /report``: every model version and window of the snapshot, linked."""
    e = escape
    rows = []
    for model in snapshot.models:
        for window, result in model.windows.items():
            drifted = sum(1 for d in result.features.values() if d.drift)
            total = len(result.features)
            css = ' class="drifted"' if drifted else ""
            link = page_url(model.model, model.model_version, window)
            api = f"{API}?model={quote(model.model, safe='')}&version={quote(model.model_version, safe='')}"
            api += f"&window={quote(window, safe='')}"
            rows.append(
                f'<tr{css}><td class="name"><a href="{e(link)}">{e(model.model)}</a></td>'
                f"<td>{e(model.model_version)}</td><td>{e(window)}</td><td>{result.samples:,}</td>"
                f'<td>{drifted} / {total}</td><td><a href="{e(api)}">JSON</a></td></tr>'
            )
    if snapshot.evaluated_at:
        when = f"evaluated {utc_text(snapshot.evaluated_at)}"
    else:
        when = "not evaluated yet"
    table = (
        "<table><thead><tr><th>model</th><th>version</th><th>window</th><th>predictions</th>"
        f"<th>drifted features</th><th>data</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        if rows
        else '<p class="note">No model has been evaluated yet.</p>'
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Drift reports</title><style>{static_text('report.css')}</style></head><body><main>"
        f'<header><h1>Drift reports</h1><p class="muted">{e(when)}</p></header>'
        f'<section class="card" id="windows"><div class="overview-wrap">{table}</div>'
        '<p class="note">One page per model version and window, from the aggregator\'s latest evaluation. '
        "In scale-out mode each replica lists the models it owns.</p></section></main></body></html>\n"
    )


class ReportRoutes:
    """The three endpoints over ``snapshot()``, the aggregator's current snapshot."""

    def __init__(
        self, snapshot: Callable[[], Snapshot], gate: ScrapeGate | None = None, peers: Peers | None = None
    ) -> None:
        self.snapshot = snapshot
        self.gate = gate or ScrapeGate()
        self.cache = _RenderCache()
        self.peers = peers  # scale-out: where the models this replica does not own are

    def routes(self) -> dict[str, Route]:
        """For :func:`exporter.httpd.server.health_app` (``/report/*`` takes every model's page)."""
        return {INDEX: self.index, f"{INDEX}/*": self.page, API: self.api}

    # ------------------------------------------------------------------ endpoints

    def index(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        refused = _method(environ, start_response)
        if refused is not None:
            return refused
        if environ.get("QUERY_STRING"):
            return _text(start_response, "400 Bad Request", "/report takes no parameters")
        body = render_index(self.snapshot()).encode()
        return _answer(start_response, "200 OK", "text/html; charset=utf-8", body, html=True)

    def page(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        refused = _method(environ, start_response)
        if refused is not None:
            return refused
        try:
            model = _path_model(environ)
            if not model:  # "/report/": the index
                return self.index(environ, start_response)
            query = _query(environ, _PAGE_PARAMETERS)
            return self._window(environ, start_response, model, _one(query, "version"), _one(query, "window"), "html")
        except BadRequest as problem:
            return _text(start_response, "400 Bad Request", str(problem))

    def api(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        refused = _method(environ, start_response, json_body=True)
        if refused is not None:
            return refused
        try:
            query = _query(environ, _API_PARAMETERS)
            model = _one(query, "model")
            if model is None:
                raise BadRequest("model is required: /api/v1/drift?model=<name>[&version=…][&window=…]")
            return self._window(environ, start_response, model, _one(query, "version"), _one(query, "window"), "json")
        except BadRequest as problem:
            return _json_error(start_response, "400 Bad Request", str(problem))

    # ------------------------------------------------------------------ shared

    def _window(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        model: str,
        version: str | None,
        window: str | None,
        kind: str,
    ) -> Iterable[bytes]:
        snapshot = self.snapshot()
        refuse = _text if kind == "html" else _json_error
        if not snapshot.evaluated_at:
            return refuse(start_response, "503 Service Unavailable", "not evaluated yet; try again shortly")
        try:
            ref = _lookup(snapshot, model, version, window)
        except Ambiguous as problem:
            return refuse(start_response, "400 Bad Request", str(problem))
        except NotFound as problem:
            fetched = self._from_peer(environ)
            if fetched is not None:  # the owner's page, under this replica's headers
                return _answer(start_response, fetched.status, fetched.content_type, fetched.body, html=kind == "html")
            return refuse(start_response, "404 Not Found", str(problem))
        key = (ref.model.model, ref.model.model_version, ref.window, kind)
        try:
            body = self.cache.get(snapshot, key, lambda: self._render(ref, snapshot.evaluated_at, kind))
        except NotFound as problem:
            return refuse(start_response, "404 Not Found", str(problem))
        if kind == "html":
            return _answer(start_response, "200 OK", "text/html; charset=utf-8", body, html=True)
        return _answer(start_response, "200 OK", "application/json", body)

    def _from_peer(self, environ: dict[str, Any]) -> Fetched | None:
        """The page another replica serves for this request (never for a forwarded one)."""
        if self.peers is None or environ.get(FORWARDED_ENVIRON):
            return None
        path = quote(environ.get("PATH_INFO", "").encode("latin-1"), safe="/")
        query = environ.get("QUERY_STRING", "")
        return self.peers.fetch(path + (f"?{query}" if query else ""))

    def _render(self, ref: WindowRef, evaluated_at: float, kind: str) -> bytes:
        report = window_report(ref, evaluated_at, between=self.gate.wait)
        if kind == "html":
            return render_html(report, between=self.gate.wait).encode()
        return (json.dumps(report.as_dict(), allow_nan=False, ensure_ascii=False) + "\n").encode()


def _method(environ: dict[str, Any], start_response: StartResponse, json_body: bool = False) -> Iterable[bytes] | None:
    if environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
        return None
    allow = [("Allow", "GET, HEAD")]
    if json_body:
        return _json_error(start_response, "405 Method Not Allowed", "read-only: use GET", allow)
    return _text(start_response, "405 Method Not Allowed", "read-only: use GET", allow)


# Live data: never cached by a browser or a proxy, never sniffed, never sent as a referrer.
_COMMON = [("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer")]


def _answer(
    start_response: StartResponse,
    status: str,
    content_type: str,
    body: bytes,
    extra: list[tuple[str, str]] | None = None,
    html: bool = False,
) -> list[bytes]:
    headers = [("Content-Type", content_type), ("Content-Length", str(len(body))), *_COMMON, *(extra or [])]
    if html:
        headers.append(("Content-Security-Policy", CSP))
    start_response(status, headers)
    return [body]


def _text(
    start_response: StartResponse, status: str, message: str, extra: list[tuple[str, str]] | None = None
) -> list[bytes]:
    return _answer(start_response, status, "text/plain; charset=utf-8", f"{message}\n".encode(), extra)


def _json_error(
    start_response: StartResponse, status: str, message: str, extra: list[tuple[str, str]] | None = None
) -> list[bytes]:
    body = (json.dumps({"error": message}, ensure_ascii=False) + "\n").encode()
    return _answer(start_response, status, "application/json", body, extra)
