"""Shape of the generated rules, PrometheusRule and runbooks, and how config changes them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from alerts import (
    ALERT_NAMES,
    alert_rules,
    recording_rules,
    render_files,
    render_prometheus_rule,
    render_rules,
    write_files,
)
from alerts.rules import ALERT_PREFIX, EXPORTER_DOWN, FEATURE_DRIFT, RETRAIN
from exporter.catalogue import by_name, names
from exporter.config import AlertsConfig

RUNBOOKS = Path(__file__).resolve().parents[2] / "docs" / "runbooks"
RECORD_NAME = re.compile(r"^(?P<level>[a-z_]+):(?P<metric>[a-z_]+):(?P<ops>[a-z0-9_]+)$")


def test_alert_names_severities_and_annotations():
    rules = alert_rules(AlertsConfig())
    assert [rule["alert"] for rule in rules] == list(ALERT_NAMES)
    for rule in rules:
        assert re.fullmatch(rf"{ALERT_PREFIX}(?:[A-Z][a-z0-9]+)+", rule["alert"]), rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning", "info")
        assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}
        assert rule["annotations"]["runbook_url"].endswith(f"/{rule['alert']}.md")
        assert re.fullmatch(r"\d+[smhd]", rule["for"])


def test_report_url_only_with_an_aggregator_url_and_only_on_drift_and_retraining_alerts():
    from alerts.rules import REPORT_LINKED

    assert all("report_url" not in rule["annotations"] for rule in alert_rules(AlertsConfig()))
    rules = alert_rules(AlertsConfig(aggregator_url="https://mh.example.test/base/"))
    linked = {rule["alert"]: rule["annotations"]["report_url"] for rule in rules if "report_url" in rule["annotations"]}
    assert set(linked) == set(REPORT_LINKED)
    for alert, url in linked.items():
        assert url.startswith("https://mh.example.test/base/report/{{ $labels.model | urlquery }}?version=")
        assert url.endswith("&window={{ $labels.window | urlquery }}") == (alert != RETRAIN)


def test_recording_rules_follow_level_metric_operations():
    for rule in recording_rules(AlertsConfig()):
        match = RECORD_NAME.match(rule["record"])
        assert match, rule["record"]
        assert match["level"] in ("model", "pod_uid", "topic")
        metric = match["metric"]
        # The metric part is a catalogue metric, its counter without _total, or a histogram series.
        candidates = {metric, f"{metric}_total", metric.removesuffix("_bucket")}
        assert candidates & names(), rule["record"]
        if match["ops"].startswith("rate") and f"{metric}_total" in names():
            assert by_name(f"{metric}_total").kind == "counter"


@pytest.mark.parametrize("alert", ALERT_NAMES)
def test_every_alert_has_a_runbook_with_meaning_checks_and_actions(alert):
    path = RUNBOOKS / f"{alert}.md"
    assert path.is_file(), f"missing runbook {path}"
    text = path.read_text()
    assert text.startswith(f"# {alert}\n")
    for heading in ("## What it means", "## How to check", "## How to act"):
        assert heading in text, f"{alert}: no {heading!r}"
    severity = next(rule for rule in alert_rules(AlertsConfig()) if rule["alert"] == alert)["labels"]["severity"]
    assert f"**Severity:** {severity}" in text


def test_no_runbook_without_an_alert():
    assert {path.stem for path in RUNBOOKS.glob("*.md") if path.stem != "index"} == set(ALERT_NAMES)


def test_config_reaches_the_rules():
    config = AlertsConfig(
        windows=("1h", "1d"),
        labels={"team": "ml-platform"},
        runbook_base_url="https://runbooks.example.test/mh/",
        feature_drift={"min_samples": 2000, "for_duration": "45m"},
        jobs={"sidecar": None, "node": None, "relay": None, "injector": None},
        retrain={"reasons": ("stale", "feature_drift")},
    )
    rules = {rule["alert"]: rule for rule in alert_rules(config)}
    drift = rules[FEATURE_DRIFT]
    assert drift["for"] == "45m" and ">= 2000" in drift["expr"] and 'window=~"1h|1d"' in drift["expr"]
    assert drift["labels"] == {"team": "ml-platform", "severity": "warning"}
    assert drift["annotations"]["runbook_url"] == f"https://runbooks.example.test/mh/{FEATURE_DRIFT}.md"
    assert 'up{job=~"model-health-aggregator"}' in rules[EXPORTER_DOWN]["expr"]
    assert '"reason", "performance_drop"' not in rules[RETRAIN]["expr"]
    assert rules[RETRAIN]["expr"].index('"stale"') < rules[RETRAIN]["expr"].index('"feature_drift"')


def test_without_jobs_there_is_no_exporter_down_alert():
    config = AlertsConfig(jobs={"aggregator": None, "sidecar": None, "node": None, "relay": None, "injector": None})
    assert EXPORTER_DOWN not in {rule["alert"] for rule in alert_rules(config)}


def test_prometheus_rule_wraps_the_same_groups_with_selector_labels():
    config = AlertsConfig(prometheus_rule={"name": "mh-rules", "namespace": "monitoring", "labels": {"release": "kps"}})
    manifest = render_prometheus_rule(config)
    assert manifest["apiVersion"] == "monitoring.coreos.com/v1" and manifest["kind"] == "PrometheusRule"
    assert manifest["metadata"]["name"] == "mh-rules" and manifest["metadata"]["namespace"] == "monitoring"
    assert manifest["metadata"]["labels"]["release"] == "kps"
    assert manifest["spec"] == render_rules(config)
    assert "namespace" not in render_prometheus_rule(AlertsConfig())["metadata"]


def test_files_are_deterministic_and_parse_back(tmp_path):
    first, second = render_files(), render_files()
    assert first == second
    paths = write_files(tmp_path)
    assert sorted(path.name for path in paths) == ["alertmanager.yaml", "prometheusrule.yaml", "rules.yaml"]
    assert yaml.safe_load((tmp_path / "rules.yaml").read_text()) == render_rules()
    # Sorted keys everywhere: a Helm chart can embed the files and diff them byte for byte.
    text = (tmp_path / "rules.yaml").read_text()
    assert text.index("  - alert: ModelHealthFeatureDrift\n    annotations:") > 0
