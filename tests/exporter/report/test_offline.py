"""``model-health drift --format html`` and the report data behind it, from real files."""

from __future__ import annotations

import json
import math

import pytest

from exporter.cli import EXIT_DRIFT, main
from exporter.offline.drift import run_drift
from exporter.report.html import render_html
from exporter.report.offline import build_offline_report
from tests.exporter.report.conftest import DRIFTED, HOSTILE


def _run(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(args)
        raise SystemExit(0)
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


def _contains(whole, part) -> bool:
    """``part`` is ``whole`` with keys left out (floats equal, NaN as None)."""
    if isinstance(part, dict):
        return isinstance(whole, dict) and all(k in whole and _contains(whole[k], v) for k, v in part.items())
    if isinstance(part, float) and isinstance(whole, float):
        return whole == part or (math.isnan(whole) and math.isnan(part))
    return whole == part


@pytest.mark.parametrize(
    ("reference", "binning"), [("profile", "reference"), ("reference", "reference"), ("reference", "evidently")]
)
def test_report_json_carries_the_drift_json_unchanged(report_files, reference, binning):
    """The page's data is ``drift --format json`` plus extra keys: same numbers, same verdicts."""
    expected = run_drift(report_files[reference], report_files["current"], binning=binning).as_dict()
    report = build_offline_report(report_files[reference], report_files["current"], binning=binning)
    got = report.as_dict()
    assert _contains(got, expected)
    json.dumps(got, allow_nan=False)
    assert set(report.drifted) == DRIFTED
    assert [f.name for f in report.ordered_features][: len(DRIFTED)] == report.drifted
    for name, feature in got["features"].items():
        chart = feature["chart"]
        assert len(chart["labels"]) == len(chart["reference"]) == len(chart["current"]) >= 2, name
        assert sum(chart["reference"]) == pytest.approx(1.0, abs=1e-4), name
        assert sum(chart["current"]) == pytest.approx(1.0, abs=1e-4), name


def test_the_hostile_value_has_its_own_bar_as_unseen_in_the_reference(report_files):
    report = build_offline_report(report_files["reference"], report_files["current"])
    chart = report.features["cat_0"].chart
    index = chart.labels.index(HOSTILE)
    assert chart.roles[index] == "unseen"
    assert chart.reference[index] == 0.0 and chart.current[index] == pytest.approx(1 / 8, abs=0.01)


def test_a_profile_brings_prediction_label_and_performance(report_files):
    report = build_offline_report(report_files["profile"], report_files["current"])
    assert report.model == "fraud" and report.model_version == "7"
    assert report.prediction is not None and report.prediction.kind == "numeric"
    assert report.label is not None and report.label.kind == "categorical"
    assert {"accuracy", "roc_auc"} <= set(report.performance)
    roc = report.performance["roc_auc"]
    assert roc["reference"] is not None and roc["current"] is not None
    assert roc["current"] < roc["reference"]  # the synthetic drift weakens the score–label link


def test_drift_format_html_prints_one_page_and_keeps_the_exit_codes(report_files, capsys):
    code, out, err = _run(
        [
            "drift",
            "--reference",
            str(report_files["profile"]),
            "--current",
            str(report_files["current"]),
            "--format",
            "html",
        ],
        capsys,
    )
    assert code == 0, err
    assert out.startswith("<!doctype html>") and out.rstrip().endswith("</html>")
    assert HOSTILE not in out
    code, _, _ = _run(
        [
            "drift",
            "--reference",
            str(report_files["reference"]),
            "--current",
            str(report_files["current"]),
            "--format",
            "html",
            "--fail-on-drift",
        ],
        capsys,
    )
    assert code == EXIT_DRIFT


def test_estimated_performance_is_rendered_when_the_json_has_it(report_files):
    report = build_offline_report(report_files["profile"], report_files["current"])
    report.extra["performance_estimated"] = {"roc_auc": 0.6812, "accuracy": {"value": 0.64, "stderr": 0.01}}
    page = render_html(report)
    assert "current (estimated, no labels)" in page
    assert "0.6812" in page and "0.6400 ± 0.0100" in page
