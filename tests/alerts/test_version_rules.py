"""The version-against-baseline recording rules through ``promtool test rules`` (promql_expr_test).

Two versions of ``fraud`` — stable 7 and canary 8 (its baseline 7, as the aggregator's
``model_health_version_baseline_info`` says) — served by a sidecar pod each and counted by the
aggregator too, as in production. The rules must pair the canary with the stable version
through the info series alone, count each version once across jobs, and leave the stable
version (which has no baseline) out.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from alerts import dump_yaml, render_rules
from alerts import rules as r
from alerts.manifests import RULES_FILE
from exporter.config import AlertsConfig
from tests.alerts.promtool_cases import MINUTES, const, per_minute, series
from tests.alerts.test_promtool import run_promtool

AGG = {"job": "model-health-aggregator", "instance": "10.0.0.5:9877"}
BOUNDS = ("0.1", "0.25", "0.5", "1", "+Inf")


def _pod(version: str) -> dict[str, str]:
    return {"job": "model-health-sidecar", "instance": f"10.0.1.{version}:9878", "pod_uid": f"pod-{version}"}


def _serving(version: str, predictions: float, errors: float, latency: dict[str, float]) -> dict[str, str]:
    """A version's counters, from its pod's sidecar and from the aggregator (the same requests)."""
    out = {}
    for source in (_pod(version), AGG):
        labels = {**source, "model": "fraud", "model_version": version}
        out[series("model_health_predictions_total", **labels)] = per_minute(predictions)
        out[series("model_health_prediction_errors_total", **labels)] = per_minute(errors)
        for le in BOUNDS:
            out[series("model_health_request_duration_seconds_bucket", **labels, le=le)] = per_minute(latency[le])
    return out


# 600 requests a minute each (binary fractions keep the expected floats exact). Stable: 12.5%
# errors, every request under 0.1 s (p99 = 0.099 s). Canary: 25% errors, every request
# between 0.1 and 0.25 s (p99 = 0.1 + 0.15 × 0.99 = 0.2485 s).
FAST = {"0.1": 600, "0.25": 600, "0.5": 600, "1": 600, "+Inf": 600}
SLOWER = {"0.1": 0, "0.25": 600, "0.5": 600, "1": 600, "+Inf": 600}


def _inputs() -> dict[str, str]:
    values = {
        **_serving("7", 600, 75, FAST),
        **_serving("8", 600, 150, SLOWER),
        series("model_health_version_baseline_info", **AGG, model="fraud", model_version="8", baseline_version="7"): (
            const(1)
        ),
    }
    for version, accuracy in (("7", 0.875), ("8", 0.75)):
        labels = {**AGG, "model": "fraud", "model_version": version, "window": "1h", "metric": "accuracy"}
        values[series("model_health_performance_estimated", **labels)] = const(accuracy)
    return values


def _expected(config: AlertsConfig) -> list[dict[str, object]]:
    pair = {"model": "fraud", "model_version": "8", "baseline_version": "7"}
    return [
        {
            "expr": r.VERSION_ERROR_RATIO,
            "eval_time": "30m",
            "exp_samples": [{"labels": _labels(r.VERSION_ERROR_RATIO, pair), "value": 0.125}],
        },
        {
            "expr": r.version_latency_rule(config),
            "eval_time": "30m",
            "exp_samples": [{"labels": _labels(r.version_latency_rule(config), pair), "value": 0.2485 / 0.099}],
        },
        {
            "expr": r.VERSION_ESTIMATED,
            "eval_time": "30m",
            "exp_samples": [
                {
                    "labels": _labels(r.VERSION_ESTIMATED, {**pair, "window": "1h", "metric": "accuracy"}),
                    "value": -0.125,
                }
            ],
        },
    ]


def _labels(name: str, labels: dict[str, str]) -> str:
    return series(name, **labels)


@pytest.mark.parametrize("windows", [(), ("1h",)])
def test_version_rules_pair_the_canary_with_its_baseline(tmp_path: Path, windows: tuple[str, ...]):
    config = AlertsConfig(windows=windows)
    (tmp_path / RULES_FILE).write_text(dump_yaml(render_rules(config)))
    test = {
        "rule_files": [RULES_FILE],
        "evaluation_interval": "1m",
        "group_eval_order": [r.RULE_GROUP_RECORDING, r.RULE_GROUP_ALERTS],
        "tests": [
            {
                "name": "canary 8 against stable 7",
                "interval": "1m",
                "input_series": [{"series": k, "values": v} for k, v in sorted(_inputs().items())],
                "promql_expr_test": _expected(config),
            }
        ],
    }
    (tmp_path / "test-versions.yaml").write_text(dump_yaml(test))
    run_promtool("test", "rules", "test-versions.yaml", cwd=tmp_path)
    assert MINUTES >= 30  # the inputs span the evaluation time
