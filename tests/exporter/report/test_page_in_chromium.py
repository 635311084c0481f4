"""The drift report page in real headless Chromium (Debian's, driven by Playwright).

Loaded from a ``file://`` URL and through ``set_content``: no console errors, no script
errors, no request beyond the file itself; one chart per distribution, drifted features
first, and a hostile category value and feature name shown as text.
"""

from __future__ import annotations

import pytest

from exporter.report.html import render_html
from exporter.report.offline import build_offline_report
from tests.exporter.report.conftest import DRIFTED, HOSTILE
from tests.support.browser import browser_page

READY = "html[data-charts-ready]"


@pytest.fixture(scope="module")
def report(report_files):
    return build_offline_report(report_files["profile"], report_files["current"])


@pytest.fixture(scope="module")
def page_file(report, tmp_path_factory):
    path = tmp_path_factory.mktemp("page") / "drift.html"
    path.write_text(render_html(report), encoding="utf-8")
    return path


def test_the_page_loads_from_a_file_with_no_errors_and_no_requests(page_file, report):
    dialogs: list[str] = []
    with browser_page() as (page, log):
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(page_file.as_uri())
        page.wait_for_selector(READY, timeout=15_000)
        assert log.console_errors == [] and log.page_errors == []
        assert log.requests == [page_file.as_uri()]  # the page itself, nothing else
        charts = page.locator(".chart .uplot")
        features = len(report.features)
        assert charts.count() == features + 2  # one per feature, plus prediction and label
        assert page.locator("article.feature .chart canvas").count() == features + 2
        assert page.get_attribute("html", "data-charts-ready") == str(features + 2)
    assert dialogs == []


def test_drifted_features_come_first_with_a_badge(page_file, report):
    with browser_page() as (page, _):
        page.goto(page_file.as_uri())
        page.wait_for_selector(READY)
        sections = page.locator("article.feature[id^='feature-']")
        names = sections.locator("h3 .name").all_inner_texts()
        drifts = [sections.nth(i).get_attribute("data-drift") for i in range(sections.count())]
        assert len(names) == len(report.features)
        assert set(names[: len(DRIFTED)]) == DRIFTED
        assert drifts == ["true"] * len(DRIFTED) + ["false"] * (len(names) - len(DRIFTED))
        for i in range(len(DRIFTED)):
            assert sections.nth(i).locator(".badge.drift").first.inner_text().upper().startswith("DRIFT")
        summary = page.locator("#summary .verdict").inner_text()
        assert summary == f"{len(DRIFTED)} of {len(report.features)} features drifted"


def test_a_hostile_value_and_name_show_as_text(report):
    dialogs: list[str] = []
    with browser_page() as (page, log):
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.set_content(render_html(report))
        page.wait_for_selector(READY)
        assert log.requests == [] and log.console_errors == [] and log.page_errors == []
        assert page.locator("script").count() == 3
        # The feature named as a script is a heading's text.
        assert HOSTILE in page.locator("article.feature h3 .name").all_inner_texts()
        # The hostile category: hover its bar and the chart's readout shows it, as text.
        chart = report.features["cat_0"].chart
        index = chart.labels.index(HOSTILE)
        section = page.locator("article.feature", has=page.locator("h3 .name", has_text="cat_0")).first
        section.scroll_into_view_if_needed()
        over = section.locator(".u-over")
        box = over.bounding_box()
        assert box is not None
        x = box["x"] + box["width"] * (index + 0.5) / len(chart.labels)
        page.mouse.move(x, box["y"] + box["height"] / 2)
        readout = section.locator(".u-legend .u-series").first.locator(".u-value")
        assert readout.inner_text() == f"(new) {HOSTILE}"
    assert dialogs == []


@pytest.mark.parametrize("binning", ["reference", "evidently"])
def test_pages_from_raw_reference_data_draw_every_chart(report_files, binning):
    report = build_offline_report(report_files["reference"], report_files["current"], binning=binning)
    with browser_page() as (page, log):
        page.set_content(render_html(report))
        page.wait_for_selector(READY)
        assert log.requests == [] and log.console_errors == [] and log.page_errors == []
        assert page.locator("article.feature .chart .uplot").count() == len(report.features)
