"""The generated rules through Prometheus's own tooling: ``promtool check rules`` and
``promtool test rules`` with a unit test for every alert (see ``promtool_cases``)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from alerts import ALERT_NAMES, dump_yaml, render_files, render_rules
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
