"""The live drift report in real headless Chromium (Debian's, driven by Playwright).

The aggregator is the real single-mode pipeline over in-memory Kafka, its HTTP app on
loopback (``live_support``). Loaded over HTTP: no console or script errors, no request but
the page itself; one chart per feature plus the prediction's, drifted features first; the
hostile category value (a reference category here) and the feature named as a script read
back as text; a link to one feature (``#feature=<name>``, the model dashboard's) marks it.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest

from exporter.report.live import find_window, window_report
from tests.exporter.report.live_support import (
    DRIFTED,
    HOSTILE,
    MODEL,
    VERSION,
    WINDOW,
    FakeLog,
    config,
    current_table,
    live_aggregator,
    send_traffic,
    write_profile,
)
from tests.support.browser import browser_page

READY = "html[data-charts-ready]"


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    root = tmp_path_factory.mktemp("live")
    profile = write_profile(root / "fraud-7.parquet")
    log = FakeLog()
    send_traffic(log, current_table())
    with live_aggregator(config(profile, root / "state"), log) as running:
        yield running


@pytest.fixture(scope="module")
def report(live):
    snapshot = live.aggregator.snapshot()
    return window_report(find_window(snapshot, MODEL, VERSION, WINDOW), snapshot.evaluated_at)


def test_the_live_page_loads_with_no_errors_and_no_requests_beyond_itself(live, report):
    url = live.url(f"/report/{MODEL}?version={VERSION}&window={WINDOW}")
    dialogs: list[str] = []
    with browser_page() as (page, log):
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(url)
        page.wait_for_selector(READY, timeout=15_000)
        assert log.console_errors == [] and log.page_errors == []
        assert log.requests == [url]
        features = len(report.features)
        charts = features + 1 + (report.label is not None)  # every feature, the prediction, the label
        assert page.locator("article.feature .chart .uplot").count() == charts
        assert page.get_attribute("html", "data-charts-ready") == str(charts)
        sections = page.locator("article.feature[id^='feature-']")
        names = sections.locator("h3 .name").all_inner_texts()
        assert len(names) == features and set(names[: len(DRIFTED)]) == DRIFTED
        drifts = [sections.nth(i).get_attribute("data-drift") for i in range(sections.count())]
        assert drifts == ["true"] * len(DRIFTED) + ["false"] * (features - len(DRIFTED))
        assert HOSTILE in names  # the feature named as a script is a heading's text
        assert page.locator("#summary .verdict").inner_text() == f"{len(DRIFTED)} of {features} features drifted"
        facts = page.locator("#summary .facts").inner_text().lower()
        assert "window" in facts and WINDOW in facts and "evaluated" in facts
    assert dialogs == []


def test_the_hostile_category_reads_back_as_text(live, report):
    url = live.url(f"/report/{MODEL}")
    dialogs: list[str] = []
    with browser_page() as (page, log):
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(url)
        page.wait_for_selector(READY)
        chart = report.features["cat_2"].chart
        index = chart.labels.index(HOSTILE)  # one of the reference's top categories
        section = page.locator("article.feature[data-name='cat_2']")
        section.scroll_into_view_if_needed()
        box = section.locator(".u-over").bounding_box()
        assert box is not None
        page.mouse.move(box["x"] + box["width"] * (index + 0.5) / len(chart.labels), box["y"] + box["height"] / 2)
        readout = section.locator(".u-legend .u-series").first.locator(".u-value")
        assert readout.inner_text() == HOSTILE
        assert page.locator("script").count() == 3  # the data block, uPlot, the page's own
        assert log.console_errors == [] and log.page_errors == [] and log.requests == [url]
    assert dialogs == []


def test_a_link_to_one_feature_marks_it(live):
    base = live.url(f"/report/{MODEL}?window={WINDOW}")
    with browser_page() as (page, log):
        page.goto(f"{base}#feature={quote(HOSTILE, safe='')}")
        page.wait_for_selector(READY)
        linked = page.locator("article.feature.linked")
        assert linked.count() == 1 and linked.locator("h3 .name").inner_text() == HOSTILE
        assert log.requests == [base] and log.console_errors == []


def test_the_index_links_every_window_and_loads_clean(live):
    url = live.url("/report")
    with browser_page() as (page, log):
        page.goto(url)
        links = page.locator("#windows a").all_inner_texts()
        assert links.count(MODEL) == 2 and links.count("JSON") == 2  # the 1h and 1d windows
        page.locator("#windows a", has_text=MODEL).first.click()
        page.wait_for_selector(READY)
        assert page.url == live.url(f"/report/{MODEL}?version={VERSION}&window={WINDOW}")
        assert log.console_errors == [] and log.page_errors == []
        assert log.requests == [url, page.url]
