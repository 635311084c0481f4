"""The demo's Prometheus config: the generated rules over the aggregator and sidecar jobs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from alerts import render_rules
from exporter.config import AlertsConfig
from exporter.demo.prometheus import demo_alerts_config, rule_count, write_config


def test_the_jobs_are_the_ones_the_rules_expect_and_the_rules_are_the_generated_ones(tmp_path: Path) -> None:
    config = demo_alerts_config()
    jobs = AlertsConfig().jobs
    path = write_config(tmp_path, {str(jobs.aggregator): "127.0.0.1:1", str(jobs.sidecar): "127.0.0.1:2"}, config)
    document = yaml.safe_load(path.read_text())
    assert {scrape["job_name"]: scrape["static_configs"][0]["targets"] for scrape in document["scrape_configs"]} == {
        "model-health-aggregator": ["127.0.0.1:1"],
        "model-health-sidecar": ["127.0.0.1:2"],
    }
    rules = yaml.safe_load((tmp_path / "rules.yaml").read_text())
    assert rules == render_rules(config)
    # Only the waiting times are the demo's own: every rule of the default config is there.
    assert rule_count(rules) == rule_count(render_rules(AlertsConfig()))
    durations = {
        rule["alert"]: rule.get("for") for group in rules["groups"] for rule in group["rules"] if "alert" in rule
    }
    assert durations["ModelHealthFeatureDrift"] == "15s" and durations["ModelHealthRetrainRecommended"] == "30s"


def test_promtool_accepts_the_config_and_its_rules(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed; `make test` installs it via .ci/system-packages")
    path = write_config(
        tmp_path,
        {"model-health-aggregator": "127.0.0.1:1", "model-health-sidecar": "127.0.0.1:2"},
        demo_alerts_config(),
    )
    checked = subprocess.run([promtool, "check", "config", str(path)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout + checked.stderr
