"""The live drift report: built from the aggregator's snapshot, served by its HTTP app.

The aggregator is the real single-mode pipeline over in-memory Kafka (``live_support``). The
checks: the live report of a window equals the offline report of the same records against the
same profile (statistics, charts, realised performance), the snapshot's summaries stay as
evaluated while the consumer folds on, and every endpoint answers as ``exporter.report.routes``
says — pages, JSON, 4xx with a reason, 503 before the first evaluation, one render per
snapshot, the bearer token.
"""

from __future__ import annotations

import gc
import json
import threading
import time
import urllib.error
import urllib.request
import weakref
from dataclasses import replace

import numpy as np
import pyarrow.parquet as pq
import pytest

from exporter.pipeline.snapshot import Snapshot
from exporter.report.live import Ambiguous, NotFound, find_window, window_report
from exporter.report.offline import build_offline_report
from exporter.report.routes import ReportRoutes, ScrapeGate, page_url, render_index
from tests.exporter.report.live_support import (
    DRIFTED,
    HOSTILE,
    MODEL,
    ROWS,
    START,
    VERSION,
    WINDOW,
    FakeLog,
    config,
    current_table,
    live_aggregator,
    send_traffic,
    write_profile,
)


@pytest.fixture(scope="module")
def profile(tmp_path_factory):
    return write_profile(tmp_path_factory.mktemp("profile") / "fraud-7.parquet")


@pytest.fixture(scope="module")
def live(profile, tmp_path_factory):
    log = FakeLog()
    send_traffic(log, current_table())
    with live_aggregator(config(profile, tmp_path_factory.mktemp("state")), log) as running:
        yield running


def get(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


# ---------------------------------------------------------------------------------------------
# The report from the snapshot.


def test_the_live_report_equals_the_offline_report_of_the_same_records(live, profile, tmp_path):
    """A user replaying the window's records offline against the profile sees the same page data."""
    snapshot = live.aggregator.snapshot()
    report = window_report(find_window(snapshot, MODEL, VERSION, WINDOW), snapshot.evaluated_at)
    path = tmp_path / "current.parquet"
    pq.write_table(current_table(), path)
    offline = build_offline_report(profile, path)
    assert report.current_rows == offline.current_rows == ROWS
    assert set(report.drifted) == set(offline.drifted) == DRIFTED
    assert [f.name for f in report.ordered_features] == [f.name for f in offline.ordered_features]
    for name, feature in report.features.items():
        assert feature.as_dict() == offline.features[name].as_dict(), name
    assert report.prediction is not None and offline.prediction is not None
    assert report.prediction.as_dict() == offline.prediction.as_dict()
    # Realised performance from the joined labels, as offline from the label column.
    for metric in ("accuracy", "f1", "roc_auc"):
        live_value = report.performance[metric]["current"]
        assert live_value == pytest.approx(offline.performance[metric]["current"], abs=1e-9), metric
        assert report.performance[metric]["reference"] == offline.performance[metric]["reference"]
    out = report.as_dict()
    assert (out["model"], out["model_version"], out["window"]) == (MODEL, VERSION, WINDOW)
    assert out["evaluated_at"] == snapshot.evaluated_at
    # The window's label-free estimate (the profile is calibrated), under drift --format json's keys.
    estimated = snapshot.models[0].windows[WINDOW].estimated
    assert estimated is not None and out["performance_estimated"] == estimated.as_dict()
    assert out["performance_estimated_rows"] == estimated.count == ROWS
    assert report.performance_estimated == estimated.as_dict()  # the page's column


def test_the_snapshot_keeps_the_summaries_it_evaluated_while_the_consumer_folds_on(profile, tmp_path):
    """The report reads summaries without the lock: folding more records must not change them."""
    log = FakeLog()
    send_traffic(log, current_table(600))
    with live_aggregator(config(profile, tmp_path), log) as running:
        before = running.aggregator.snapshot()
        summaries = before.models[0].windows[WINDOW].summaries
        assert summaries is not None
        kept = {name: (s.counts.copy(), s.missing) for name, s in summaries.current.features.items()}
        page = window_report(find_window(before, MODEL, VERSION, WINDOW)).as_dict()
        send_traffic(log, current_table(600), start=START + 30, prefix="more-")
        while running.aggregator.poll_once():
            pass
        after = running.aggregator.evaluate()
        for name, (counts, missing) in kept.items():
            assert (
                np.array_equal(summaries.current.features[name].counts, counts)
                and summaries.current.features[name].missing == missing
            )
        assert window_report(find_window(before, MODEL, VERSION, WINDOW)).as_dict() == page
        assert after.models[0].windows[WINDOW].samples == 1_200 and before.models[0].windows[WINDOW].samples == 600


def test_find_window_names_what_exists(live):
    snapshot = live.aggregator.snapshot()
    assert find_window(snapshot, MODEL, None, None).window == WINDOW  # the first configured window
    assert find_window(snapshot, MODEL, VERSION, "1d").window == "1d"
    with pytest.raises(NotFound, match="no model 'ghost'.*'fraud'"):
        find_window(snapshot, "ghost", None, None)
    with pytest.raises(NotFound, match="no version '8'.*'7'"):
        find_window(snapshot, MODEL, "8", None)
    with pytest.raises(NotFound, match="no window '5m'.*'1h', '1d'"):
        find_window(snapshot, MODEL, None, "5m")
    two = replace(snapshot, models=(*snapshot.models, replace(snapshot.models[0], model_version="8")))
    with pytest.raises(Ambiguous, match="versions '7', '8': add \\?version="):
        find_window(two, MODEL, None, None)
    assert find_window(two, MODEL, "8", None).model.model_version == "8"


# ---------------------------------------------------------------------------------------------
# The endpoints.


def test_the_page_json_and_index_are_served_with_safe_headers(live):
    status, body, headers = get(live.url(f"/report/{MODEL}?version={VERSION}&window={WINDOW}"))
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Cache-Control"] == "no-store" and headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Security-Policy"].startswith("default-src 'none'")
    page = body.decode()
    assert page.startswith("<!doctype html>") and HOSTILE not in page  # escaped wherever it appears
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    # Defaults: the only version, the first window.
    assert get(live.url(f"/report/{MODEL}"))[1] == body
    status, data, headers = get(live.url(f"/api/v1/drift?model={MODEL}&window={WINDOW}"))
    assert status == 200 and headers["Content-Type"] == "application/json"
    snapshot = live.aggregator.snapshot()
    expected = window_report(find_window(snapshot, MODEL, VERSION, WINDOW), snapshot.evaluated_at).as_dict()
    assert json.loads(data) == json.loads(json.dumps(expected))
    status, index, _ = get(live.url("/report"))
    assert status == 200
    for window in (WINDOW, "1d"):
        assert page_url(MODEL, VERSION, window).replace("&", "&amp;") in index.decode()
    assert get(live.url("/report/"))[1] == index
    status, body, headers = get(live.url(f"/report/{MODEL}"), method="HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 10_000


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/report/ghost", 404, "no model 'ghost'"),
        (f"/report/{MODEL}?version=9", 404, "no version '9'"),
        (f"/report/{MODEL}?window=5m", 404, "no window '5m'"),
        (f"/report/{MODEL}?windows=1h", 400, "unknown parameter(s) 'windows'"),
        (f"/report/{MODEL}?window=1h&window=1d", 400, "window given 2 times"),
        (f"/report/{MODEL}?window=", 400, "window is empty"),
        ("/report/%ff", 400, "not UTF-8"),
        ("/report?model=fraud", 400, "takes no parameters"),
        ("/api/v1/drift", 400, "model is required"),
        ("/api/v1/drift?model=ghost", 404, "no model 'ghost'"),
        ("/api/v1/drift?model=fraud&feature=x", 400, "unknown parameter(s) 'feature'"),
    ],
)
def test_bad_requests_answer_4xx_with_the_reason(live, path, status, says):
    got, body, headers = get(live.url(path))
    assert got == status
    text = json.loads(body)["error"] if path.startswith("/api/") else body.decode()
    assert says in text
    assert get(live.url("/healthz"))[0] == 200  # and the server goes on


@pytest.mark.parametrize("path", ["/report", f"/report/{MODEL}", f"/api/v1/drift?model={MODEL}"])
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_the_endpoints_are_read_only(live, path, method):
    status, _, headers = get(live.url(path), method=method)
    assert status == 405 and headers["Allow"] == "GET, HEAD"


def test_before_the_first_evaluation_the_pages_say_so():
    empty = Snapshot(evaluated_at=0.0)
    routes = ReportRoutes(lambda: empty)
    answers: list[str] = []
    body = routes.page(
        {"REQUEST_METHOD": "GET", "PATH_INFO": f"/report/{MODEL}", "QUERY_STRING": ""},
        lambda status, headers: answers.append(status),
    )
    assert answers == ["503 Service Unavailable"] and b"not evaluated yet" in b"".join(body)
    assert "No model has been evaluated yet" in render_index(empty)


def test_a_model_name_with_a_space_is_found_as_urlquery_writes_it(live):
    snapshot = live.aggregator.snapshot()
    spaced = replace(snapshot, models=(replace(snapshot.models[0], model="fraud eu"),))
    routes = ReportRoutes(lambda: spaced)
    for raw in ("fraud eu", "fraud+eu"):  # %20 reaches PATH_INFO as a space; Go's urlquery writes "+"
        answers: list[str] = []
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": f"/report/{raw}", "QUERY_STRING": ""}
        routes.page(environ, lambda status, headers, seen=answers: seen.append(status))
        assert answers == ["200 OK"], raw


def test_a_page_renders_once_per_snapshot(live):
    snapshot = live.aggregator.snapshot()
    current = {"snapshot": snapshot}
    routes = ReportRoutes(lambda: current["snapshot"])
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": f"/report/{MODEL}", "QUERY_STRING": "window=1h"}
    first = b"".join(routes.page(dict(environ), lambda s, h: None))
    again = b"".join(routes.page(dict(environ), lambda s, h: None))
    assert first == again and routes.cache.renders == 1
    current["snapshot"] = replace(snapshot)  # the next evaluation's snapshot
    b"".join(routes.page(dict(environ), lambda s, h: None))
    assert routes.cache.renders == 2
    # The cache does not keep a replaced snapshot (and the window sums it holds) alive.
    old = weakref.ref(current["snapshot"])
    current["snapshot"] = replace(snapshot)
    gc.collect()
    assert old() is None


def test_a_bearer_token_guards_metrics_and_the_report_but_not_the_probes(profile, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token\n")
    log = FakeLog()
    send_traffic(log, current_table(600))
    with live_aggregator(config(profile, tmp_path, token_file=token_file), log) as running:
        for path in ("/metrics", "/report", f"/report/{MODEL}", f"/api/v1/drift?model={MODEL}"):
            status, body, headers = get(running.url(path))
            assert (status, body) == (401, b"missing bearer token\n") and headers["WWW-Authenticate"].startswith(
                "Bearer"
            )
            assert get(running.url(path), headers={"Authorization": "Bearer nope"})[:2] == (
                401,
                b"wrong bearer token\n",
            )
            assert get(running.url(path), headers={"Authorization": "Bearer s3cret-token"})[0] == 200
        assert get(running.url("/report/ghost"))[0] == 401  # nothing is said about what exists
        assert get(running.url("/healthz"))[0] == 200
        assert get(running.url("/readyz"))[0] in (200, 503)


def test_a_bad_token_file_fails_the_start_naming_the_field(profile, tmp_path):
    from exporter.errors import UserError

    empty = tmp_path / "empty"
    empty.write_text("\n")
    for path, message in ((tmp_path / "missing", "cannot read"), (empty, "is empty")):
        with pytest.raises(UserError, match=f"http.token_file: .*{message}"):
            with live_aggregator(config(profile, tmp_path, token_file=path), FakeLog()):
                pass


# ---------------------------------------------------------------------------------------------
# The scrape gate.


def test_the_gate_holds_a_render_while_a_scrape_is_in_flight_and_no_longer():
    gate = ScrapeGate(max_wait_s=5.0)
    release = threading.Event()

    def slow_metrics(environ, start_response):
        release.wait(5)
        return [b"metrics"]

    scrape = gate.wrap(slow_metrics)
    bodies: list[object] = []
    thread = threading.Thread(target=lambda: bodies.append(scrape({}, lambda s, h: None)))
    thread.start()
    while not gate.active:
        time.sleep(0.001)
    waited: list[float] = []
    waiter = threading.Thread(
        target=lambda: (t := time.perf_counter(), gate.wait(), waited.append(time.perf_counter() - t))
    )
    waiter.start()
    time.sleep(0.1)
    assert not waited  # still waiting: the scrape is in flight
    release.set()
    thread.join()
    assert gate.active == 1  # the body is not written yet: the scrape still counts
    (body,) = bodies
    assert list(body) == [b"metrics"]  # type: ignore[call-overload]
    body.close()  # type: ignore[attr-defined]
    waiter.join(5)
    assert gate.active == 0 and len(waited) == 1 and waited[0] >= 0.1


def test_the_gate_never_holds_a_render_longer_than_its_bound():
    gate = ScrapeGate(max_wait_s=0.05)
    gate.wrap(lambda environ, start_response: [b""])({}, lambda s, h: None)  # never closed: stays in flight
    began = time.perf_counter()
    gate.wait()
    assert 0.04 <= time.perf_counter() - began < 1.0
