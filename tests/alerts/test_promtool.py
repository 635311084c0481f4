"""The generated rules through Prometheus's own tooling: ``promtool check rules`` and
``promtool test rules`` with a unit test for every alert (see ``promtool_cases``)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from alerts import ALERT_NAMES, dump_yaml, render_files, render_rules
from alerts import rules as r
from alerts.manifests import RULES_FILE
from alerts.rules import CONCEPT_DRIFT, CONSUMER_LAG, DEAD_LETTERS, FEATURE_DRIFT, GPU_LATENCY, RETRAIN
from exporter.config import AlertsConfig
from tests.alerts.promtool_cases import CASES, unit_test_file

COMPOUND = (FEATURE_DRIFT, CONCEPT_DRIFT, GPU_LATENCY, CONSUMER_LAG, DEAD_LETTERS, RETRAIN)


def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool (Debian package 'prometheus') is installed by `make test` via .ci/system-packages"
    return path


def run_promtool(*args: str, cwd: Path) -> None:
    result = subprocess.run([promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"promtool {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"


@pytest.fixture(scope="module")
def rules_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("rules")
    (root / RULES_FILE).write_text(render_files()[RULES_FILE])
    return root


def test_check_rules_accepts_the_generated_rules(rules_dir):
    run_promtool("check", "rules", RULES_FILE, cwd=rules_dir)


def test_check_rules_accepts_rules_with_every_option_changed(tmp_path):
    config = AlertsConfig(
        windows=("1h", "1d"),
        labels={"team": "ml-platform"},
        jobs={"sidecar": None, "node": None, "relay": None, "injector": None},
        concept_drift={"higher_is_better": ("accuracy",), "lower_is_better": ()},
        gpu_latency={"latency_quantile": 0.999, "latency_sla_seconds": 0.1},
        retrain={"reasons": ("stale",)},
    )
    (tmp_path / RULES_FILE).write_text(dump_yaml(render_rules(config)))
    run_promtool("check", "rules", RULES_FILE, cwd=tmp_path)


def test_every_alert_has_a_firing_case_and_compound_alerts_a_half_true_case():
    firing = {case.alert for case in CASES if case.fires}
    assert firing == set(ALERT_NAMES)
    silent = {case.alert for case in CASES if case.silent}
    assert set(COMPOUND) <= silent


def test_promtool_nothing_fires_when_every_metric_is_healthy(rules_dir):
    (rules_dir / "test-healthy.yaml").write_text(
        dump_yaml(unit_test_file(AlertsConfig(), RULES_FILE, (), with_healthy=True))
    )
    run_promtool("test", "rules", "test-healthy.yaml", cwd=rules_dir)


@pytest.mark.parametrize("alert", ALERT_NAMES)
def test_promtool_unit_tests(alert, rules_dir):
    config = AlertsConfig()
    cases = tuple(case for case in CASES if case.alert == alert)
    name = f"test-{alert}.yaml"
    (rules_dir / name).write_text(dump_yaml(unit_test_file(config, RULES_FILE, cases)))
    run_promtool("test", "rules", name, cwd=rules_dir)


def test_promtool_report_url_links_the_model_version_and_window_escaped(tmp_path):
    """With ``aggregator_url``, the drift, concept-drift and retraining alerts link to the drift
    report; label values pass through Go's ``urlquery`` (a model name with a space and a slash)."""
    from alerts.rules import alert_rules
    from tests.alerts.promtool_cases import render_annotation, series

    config = AlertsConfig(aggregator_url="https://mh.example.test/", concept_drift={"for_duration": "5m"})
    model = {"model": "fraud detector/eu", "model_version": "7 beta"}
    agg = {"job": "model-health-aggregator", "instance": "10.0.0.5:9877", **model}
    inputs = {
        series("model_health_feature_drift_detected", **agg, feature="amount", window="1h"): "1x200",
        series("model_health_window_samples", **agg, window="1h"): "5000x200",
        series("model_health_prediction_psi", **agg, window="1h"): "0.35x200",
    }
    base = "https://mh.example.test/report/fraud+detector%2Feu?version=7+beta"
    expected = {
        FEATURE_DRIFT: ({**model, "window": "1h"}, 1.0, f"{base}&window=1h"),
        CONCEPT_DRIFT: ({**model, "window": "1h", "signal": "prediction_drift"}, 0.35, f"{base}&window=1h"),
        RETRAIN: ({**model, "reason": "feature_drift"}, 1.0, base),
    }
    rules = {rule["alert"]: rule for rule in alert_rules(config)}
    checks = []
    for alert, (labels, value, url) in expected.items():
        rule = rules[alert]
        every = {**labels, **rule["labels"]}
        annotations = {
            k: render_annotation(v, every, value) for k, v in rule["annotations"].items() if k != "report_url"
        }
        checks.append(
            {
                "eval_time": "150m",
                "alertname": alert,
                "exp_alerts": [{"exp_labels": every, "exp_annotations": {**annotations, "report_url": url}}],
            }
        )
    unit = {
        "rule_files": [RULES_FILE],
        "evaluation_interval": "1m",
        "group_eval_order": [r.RULE_GROUP_RECORDING, r.RULE_GROUP_ALERTS],
        "tests": [
            {
                "name": "report_url",
                "interval": "1m",
                "input_series": [{"series": k, "values": v} for k, v in inputs.items()],
                "alert_rule_test": checks,
            }
        ],
    }
    (tmp_path / RULES_FILE).write_text(dump_yaml(render_rules(config)))
    (tmp_path / "test-report-url.yaml").write_text(dump_yaml(unit))
    run_promtool("test", "rules", "test-report-url.yaml", cwd=tmp_path)
