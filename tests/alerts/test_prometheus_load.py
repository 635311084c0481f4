"""A real Prometheus loads the generated rules (every rule healthy after evaluating) and answers
every dashboard query without error."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import dashboards
from alerts import render_files, render_rules
from alerts.manifests import RULES_FILE
from exporter.kafka.embedded import free_port

API_TIMEOUT = 60.0


def wait_for(predicate, what: str, timeout: float = API_TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def get(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.load(response)
    except urllib.error.HTTPError as exc:  # a 4xx answer still carries Prometheus's error JSON
        try:
            return json.load(exc)
        except ValueError:  # 503 "Service Unavailable" in plain text while it starts: not ready yet
            return None
    except OSError:
        return None


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory) -> Iterator[str]:
    binary = shutil.which("prometheus")
    assert binary, "the Debian package 'prometheus' is installed by `make test` via .ci/system-packages"
    root: Path = tmp_path_factory.mktemp("prometheus")
    (root / RULES_FILE).write_text(render_files()[RULES_FILE])
    (root / "prometheus.yml").write_text(
        f"global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nrule_files: [{RULES_FILE}]\n"
    )
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={root / 'prometheus.yml'}",
            f"--storage.tsdb.path={root / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(root / "prometheus.log", "wb"),
    )
    try:
        yield f"http://127.0.0.1:{port}/api/v1"
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_rules_load_and_evaluate_healthy(prometheus):
    expected = {
        group["name"]: [rule.get("record") or rule["alert"] for rule in group["rules"]]
        for group in render_rules()["groups"]
    }

    def evaluated():
        answer = get(f"{prometheus}/rules")
        if not answer or answer.get("status") != "success":
            return None
        groups = answer["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        if not rules or any(rule.get("lastEvaluation", "").startswith("0001-") for rule in rules):
            return None  # not every rule has run yet
        return groups

    groups = wait_for(evaluated, "every rule to be evaluated once")
    assert {group["name"]: [rule["name"] for rule in group["rules"]] for group in groups} == expected
    unhealthy = [
        (rule["name"], rule["health"], rule.get("lastError"))
        for group in groups
        for rule in group["rules"]
        if rule["health"] != "ok"
    ]
    assert unhealthy == []


def test_every_dashboard_query_evaluates(prometheus):
    wait_for(lambda: get(f"{prometheus}/query?query=1"), "Prometheus to answer")
    for key, board in dashboards.render_all().items():
        for expr in dashboards.panel_queries(board):
            query = dashboards.fill_variables(expr, {"model": "fraud", "model_version": "7", "window": "1h"})
            answer = get(f"{prometheus}/query?" + urllib.parse.urlencode({"query": query}))
            assert answer and answer["status"] == "success", f"{key}: {query}: {answer}"
