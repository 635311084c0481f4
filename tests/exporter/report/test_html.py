"""The page as text: self-contained, escaped, drifted first (the browser tests load it)."""

from __future__ import annotations

import json
import re

import pytest

from exporter.report.html import render_html
from exporter.report.offline import build_offline_report
from tests.exporter.report.conftest import DRIFTED, HOSTILE


@pytest.fixture(scope="module")
def page(report_files) -> str:
    return render_html(build_offline_report(report_files["profile"], report_files["current"]))


def test_the_page_needs_nothing_from_outside(page):
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page, re.I)
    assert "@import" not in page and "url(http" not in page
    assert "uPlot" in page and "Permission is hereby granted" in page  # inlined, with its licence


def test_hostile_names_and_values_are_text(page):
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # the feature name, as text
    assert page.count("<script") == 3  # chart data, uPlot, the page's script
    data = re.search(r'<script type="application/json" id="drift-report-charts">(.*?)</script>', page, re.S)
    assert data is not None
    labels = [label for chart in json.loads(data.group(1)) for label in chart["labels"]]
    assert HOSTILE in labels  # the category value reaches the chart as data


def test_drifted_features_come_first(page):
    flags = re.findall(r'<article class="card feature[^"]*" id="feature-\d+" data-drift="(true|false)"', page)
    assert flags == sorted(flags, key=lambda f: f != "true")
    assert flags.count("true") == len(DRIFTED)


def test_no_records_or_request_ids_reach_the_page(report_files, page):
    import pyarrow.parquet as pq

    current = pq.read_table(report_files["current"])
    # Raw numeric values are never printed: a handful of exact current values must be absent.
    for value in current.column("num_00").to_pylist()[:50]:
        assert repr(value) not in page
    assert "request_id" not in page
