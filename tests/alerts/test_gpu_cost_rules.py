"""The GPU-cost recording rules through ``promtool test rules``: joules and GPU-seconds per
prediction, and cost per 1,000 predictions from the configured prices."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerts import dump_yaml, recording_rule_names, render_rules
from alerts import rules as r
from alerts.manifests import RULES_FILE
from exporter.config import AlertsConfig
from tests.alerts.promtool_cases import AGG, GPU_JOB, SIDECAR, series
from tests.alerts.test_promtool import run_promtool

PRICED = AlertsConfig(gpu_cost={"price_per_gpu_hour": 4.5, "price_per_kwh": 0.25})
MODEL = {"model": "fraud", "model_version": "7"}
OUT = 'model="fraud", model_version="7"'
MINUTES = 60


def per_minute(increase: float) -> str:
    return f"0+{increase:g}x{MINUTES}"


def inputs(*, node_energy: tuple[float, float], sidecar_energy: float, predictions: float) -> list[dict[str, str]]:
    """fraud v7 on two GPUs of two nodes (node agent), also on the first through its sidecar in
    mode ``sidecar``; predictions counted by both the sidecar and the aggregator."""
    node = {"job": GPU_JOB, **MODEL}
    values = {
        series("model_health_model_gpu_energy_joules_total", **node, instance="n1:9879", gpu_uuid="GPU-a"): (
            per_minute(node_energy[0])
        ),
        series("model_health_model_gpu_energy_joules_total", **node, instance="n2:9879", gpu_uuid="GPU-b"): (
            per_minute(node_energy[1])
        ),
        series("model_health_model_gpu_seconds_total", **node, instance="n1:9879", gpu_uuid="GPU-a"): per_minute(30),
        series("model_health_model_gpu_seconds_total", **node, instance="n2:9879", gpu_uuid="GPU-b"): per_minute(15),
        series(
            "model_health_model_gpu_energy_joules_total",
            job=SIDECAR,
            instance="10.0.1.7:9878",
            gpu_uuid="GPU-a",
            **MODEL,
        ): per_minute(sidecar_energy),
        series("model_health_predictions_total", job=SIDECAR, instance="10.0.1.7:9878", **MODEL): per_minute(
            predictions
        ),
        series("model_health_predictions_total", job=AGG, instance="10.0.0.5:9877", **MODEL): per_minute(predictions),
    }
    return [{"series": key, "values": value} for key, value in sorted(values.items())]


def expect(record: str, value: float) -> dict[str, object]:
    return {"expr": record, "eval_time": "30m", "exp_samples": [{"labels": f"{record}{{{OUT}}}", "value": value}]}


def test_promtool_gpu_cost_per_prediction_and_per_thousand(tmp_path: Path) -> None:
    (tmp_path / RULES_FILE).write_text(dump_yaml(render_rules(PRICED)))
    run_promtool("check", "rules", RULES_FILE, cwd=tmp_path)
    # Node agents: 100 + 50 J/s on two GPUs, 0.5 + 0.25 GPU busy; the sidecar sees 100 J/s of
    # GPU-a (the same joules): the larger job counts. 600 predictions a minute = 10/s.
    joules, gpu_seconds = 150.0, 0.75
    tests = {
        "name": "GPU cost of fraud v7",
        "interval": "1m",
        "input_series": inputs(node_energy=(6000, 3000), sidecar_energy=6000, predictions=600),
        "promql_expr_test": [
            expect(r.MODEL_GPU_ENERGY_RATE, joules),
            expect(r.MODEL_GPU_SECONDS_RATE, gpu_seconds),
            expect(r.JOULES_PER_PREDICTION, joules / 10),
            expect(r.GPU_SECONDS_PER_PREDICTION, gpu_seconds / 10),
            # 0.075 GPU-s a prediction = 75 GPU-s per 1,000 = 75/3600 GPU-h at 4.5 an hour.
            expect(r.GPU_TIME_COST_PER_1K, 75 / 3600 * 4.5),
            # 15 J a prediction = 15 kJ per 1,000 = 15e3/3.6e6 kWh at 0.25 a kWh.
            expect(r.GPU_ENERGY_COST_PER_1K, 15e3 / 3.6e6 * 0.25),
        ],
    }
    idle = {
        "name": "no predictions: no per-prediction figure",
        "interval": "1m",
        "input_series": inputs(node_energy=(6000, 3000), sidecar_energy=0, predictions=0),
        "promql_expr_test": [
            expect(r.MODEL_GPU_ENERGY_RATE, joules),
            {"expr": r.JOULES_PER_PREDICTION, "eval_time": "30m", "exp_samples": []},
            {"expr": r.GPU_TIME_COST_PER_1K, "eval_time": "30m", "exp_samples": []},
        ],
    }
    unit = {
        "rule_files": [RULES_FILE],
        "evaluation_interval": "1m",
        "group_eval_order": [r.RULE_GROUP_RECORDING, r.RULE_GROUP_ALERTS],
        "tests": [tests, idle],
    }
    (tmp_path / "test-gpu-cost.yaml").write_text(dump_yaml(unit))
    run_promtool("test", "rules", "test-gpu-cost.yaml", cwd=tmp_path)


@pytest.mark.parametrize(
    ("prices", "present"),
    [
        ({}, set()),
        ({"price_per_gpu_hour": 2.0}, {r.GPU_TIME_COST_PER_1K}),
        ({"price_per_kwh": 0.3}, {r.GPU_ENERGY_COST_PER_1K}),
    ],
)
def test_cost_rules_only_where_a_price_is_set(prices, present) -> None:
    names = recording_rule_names(AlertsConfig(gpu_cost=prices))
    assert {r.JOULES_PER_PREDICTION, r.GPU_SECONDS_PER_PREDICTION} <= names
    assert names & {r.GPU_TIME_COST_PER_1K, r.GPU_ENERGY_COST_PER_1K} == present


def test_a_price_keeps_its_digits_in_the_rule() -> None:
    config = AlertsConfig(gpu_cost={"price_per_gpu_hour": 2.4567891234})
    rule = next(rule for rule in render_rules(config)["groups"][0]["rules"] if rule["record"] == r.GPU_TIME_COST_PER_1K)
    assert rule["expr"].endswith("* 2.4567891234")


def test_a_negative_price_fails_naming_the_field() -> None:
    with pytest.raises(ValueError, match="gpu_cost.price_per_kwh"):
        AlertsConfig(gpu_cost={"price_per_kwh": -1})
