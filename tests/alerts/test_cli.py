"""``model-health alerts`` and ``model-health dashboards`` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from alerts import render_files
from dashboards import render_files as render_dashboard_files
from exporter.config import AlertsConfig, DashboardsConfig

SCRIPT = Path(sys.executable).with_name("model-health")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=60)


def test_alerts_writes_the_three_files_with_config(tmp_path):
    config = tmp_path / "alerts.yaml"
    config.write_text(
        "windows: [1h]\nlabels: {team: ml}\nalertmanager:\n  relay: {url: 'http://relay.test:9880/v1/alertmanager'}\n"
    )
    result = run("alerts", "--out", str(tmp_path / "out"), "--config", str(config))
    assert result.returncode == 0, result.stderr
    expected = render_files(
        AlertsConfig(
            windows=("1h",),
            labels={"team": "ml"},
            alertmanager={"relay": {"url": "http://relay.test:9880/v1/alertmanager"}},
        )
    )
    for name, text in expected.items():
        assert (tmp_path / "out" / name).read_text() == text
    assert "3 files written" in result.stderr


def test_dashboards_writes_one_json_per_dashboard(tmp_path):
    result = run("dashboards", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    expected = render_dashboard_files(DashboardsConfig())
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(expected)
    for name, text in expected.items():
        assert (tmp_path / name).read_text() == text
        assert json.loads(text)["uid"]


def test_bad_config_names_the_field_and_writes_nothing(tmp_path):
    config = tmp_path / "alerts.yaml"
    config.write_text("gpu_latency: {gpu_utilization: 1.5}\n")
    result = run("alerts", "--out", str(tmp_path / "out"), "--config", str(config))
    assert result.returncode == 2
    assert "gpu_latency.gpu_utilization" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()
    config.write_text("title_prefx: x\n")
    result = run("dashboards", "--out", str(tmp_path / "out"), "--config", str(config))
    assert result.returncode == 2 and "title_prefx" in result.stderr and "title_prefix" in result.stderr
