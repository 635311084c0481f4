"""The generated Grafana dashboards: structure, stable identity, layout, and PromQL that parses."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

import dashboards
from alerts import dump_yaml
from dashboards.common import DATASOURCE
from exporter.config import DashboardsConfig

VARIABLES = {"model": "fraud", "model_version": "7", "window": "1h"}


def concrete(expr: str) -> str:
    """``expr`` with the dashboard variables replaced by values."""
    return dashboards.fill_variables(expr, VARIABLES)


def all_panels(board):
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels") or []


@pytest.fixture(scope="module")
def boards():
    return dashboards.render_all()


def test_four_dashboards_with_stable_uids_common_tag_and_prefix(boards):
    assert list(boards) == ["fleet", "model", "gpu", "pipeline"]
    assert [b["uid"] for b in boards.values()] == [
        "model-health-fleet",
        "model-health-model",
        "model-health-gpu",
        "model-health-pipeline",
    ]
    for board in boards.values():
        assert board["title"].startswith("Model Health / ")
        assert "model-health" in board["tags"]
        assert board["id"] is None  # Grafana assigns ids; the uid is the identity
    assert dashboards.render_all() == boards


def test_config_changes_titles_uids_and_tags():
    config = DashboardsConfig(title_prefix="ML / ", uid_prefix="ml-", tags=("ml", "prod"), time_from="1d")
    board = dashboards.render_all(config)["gpu"]
    assert (board["title"], board["uid"], board["tags"]) == ("ML / GPU", "ml-gpu", ["ml", "prod"])
    assert board["time"] == {"from": "now-1d", "to": "now"}


def test_datasource_variable_first_and_used_by_every_panel_and_target(boards):
    for key, board in boards.items():
        variables = board["templating"]["list"]
        assert variables[0]["type"] == "datasource" and variables[0]["query"] == "prometheus", key
        for panel in all_panels(board):
            if panel["type"] == "row":
                continue
            assert panel["datasource"] == DATASOURCE, (key, panel["title"])
            assert panel["targets"], (key, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"] == DATASOURCE


def test_model_dashboard_variables_and_panels(boards):
    board = boards["model"]
    names = [v["name"] for v in board["templating"]["list"]]
    assert names == ["datasource", "model", "model_version", "window"]
    titles = {panel["title"]: panel for panel in all_panels(board)}
    for title in (
        "Traffic",
        "Latency",
        "Error ratio",
        "PSI by feature",
        "KS D by feature",
        "Prediction and label drift",
        "Performance vs reference",
        "Label join rate",
        "Since trained",
    ):
        assert title in titles, title
    assert titles["PSI by feature"]["type"] == "heatmap"
    assert titles["PSI by feature"]["targets"][0]["legendFormat"] == "{{feature}}"
    table = next(p for p in all_panels(board) if p["title"].startswith("Most drifted features"))
    assert table["type"] == "table" and table["targets"][0]["expr"].startswith("topk(20,")
    assert all(t["instant"] and t["format"] == "table" for t in table["targets"])
    latency = [t["expr"] for t in titles["Latency"]["targets"]]
    assert [e.split(",")[0] for e in latency] == [
        "histogram_quantile(0.5",
        "histogram_quantile(0.95",
        "histogram_quantile(0.99",
    ]
    assert all("model_health_request_duration_seconds_bucket" in e for e in latency)


def test_gpu_dashboard_shows_memory_by_pod(boards):
    exprs = dashboards.panel_queries(boards["gpu"])
    assert any(e.startswith("sum by (pod_uid) (model_health_gpu_process_memory_used_bytes") for e in exprs)


def test_layout_fits_the_grid_without_overlaps_and_ids_are_unique(boards):
    for key, board in boards.items():
        cells = set()
        ids = [panel["id"] for panel in all_panels(board)]
        assert len(ids) == len(set(ids)), key
        for panel in board["panels"]:
            pos = panel["gridPos"]
            assert 0 <= pos["x"] and pos["x"] + pos["w"] <= 24, (key, panel["title"])
            for x in range(pos["x"], pos["x"] + pos["w"]):
                for y in range(pos["y"], pos["y"] + pos["h"]):
                    assert (x, y) not in cells, (key, panel["title"])
                    cells.add((x, y))


def test_files_are_deterministic_sorted_json(tmp_path):
    paths = dashboards.write_files(tmp_path)
    assert sorted(p.name for p in paths) == ["fleet.json", "gpu.json", "model.json", "pipeline.json"]
    for path in paths:
        text = path.read_text()
        assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"
    assert dashboards.render_files() == {p.name: p.read_text() for p in paths}


def test_variable_queries_are_label_values_of_catalogued_selectors(boards):
    assert dashboards.variable_queries(boards["model"]) == [
        "model_health_model_info",
        'model_health_model_info{model="$model"}',
        'model_health_window_samples{model="$model", model_version="$model_version"}',
    ]


def test_every_panel_query_parses(tmp_path, boards):
    promtool = shutil.which("promtool")
    assert promtool, "promtool (Debian package 'prometheus') is installed by `make test`"
    rules = [
        {"record": f"dashboard:{key}:q{i}", "expr": concrete(expr)}
        for key, board in boards.items()
        for i, expr in enumerate(dashboards.panel_queries(board))
    ]
    (tmp_path / "queries.yaml").write_text(dump_yaml({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", "queries.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(rf"SUCCESS: {len(rules)} rules found", result.stdout)


def test_the_model_dashboard_links_the_drift_report_only_with_an_aggregator_url(boards):
    def drift_table(board):
        return next(p for p in all_panels(board) if p["title"].startswith("Most drifted features"))

    plain = drift_table(boards["model"])
    assert not plain.get("links") and "links" not in json.dumps(plain["fieldConfig"])
    linked = drift_table(dashboards.render_all(DashboardsConfig(aggregator_url="https://mh.example.test/"))["model"])
    page = "https://mh.example.test/report/${model:percentencode}?version=${model_version:percentencode}"
    page += "&window=${window:percentencode}"
    assert [link["url"] for link in linked["links"]] == [page]
    (feature,) = [
        o for o in linked["fieldConfig"]["overrides"] if o["matcher"] == {"id": "byName", "options": "feature"}
    ]
    (link,) = feature["properties"][0]["value"]
    assert link["url"] == page + "#feature=${__data.fields.feature:percentencode}" and link["targetBlank"]
