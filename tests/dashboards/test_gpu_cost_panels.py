"""The GPU-cost panels of the model and GPU dashboards, evaluated by Prometheus's own engine
(``promtool test rules``) on series shaped like the sidecar's and the node agent's."""

from __future__ import annotations

from pathlib import Path

import dashboards
from alerts import dump_yaml
from exporter.config import DashboardsConfig
from tests.alerts.promtool_cases import AGG, GPU_JOB, SIDECAR, series
from tests.alerts.test_promtool import run_promtool

PRICED = DashboardsConfig(gpu_cost={"price_per_gpu_hour": 4.5, "price_per_kwh": 0.25})
MODEL = {"model": "fraud", "model_version": "7"}
VARIABLES = {**MODEL, "window": "1h", "__rate_interval": "5m"}


def panels(config: DashboardsConfig, key: str) -> dict[str, list[str]]:
    board = dashboards.render_all(config)[key]
    out: dict[str, list[str]] = {}
    for panel in board["panels"]:
        for target in panel.get("targets") or []:
            out.setdefault(panel["title"], []).append(dashboards.fill_variables(target["expr"], VARIABLES))
    return out


def test_model_dashboard_shows_cost_panels_only_for_prices_it_has() -> None:
    plain, priced = panels(DashboardsConfig(), "model"), panels(PRICED, "model")
    for title in ("Energy per prediction", "GPU-seconds per 1k predictions", "GPU power of the model"):
        assert title in plain and title in priced
    cost = {"Cost per 1k predictions (GPU-hours)", "Cost per 1k predictions (energy)"}
    assert not cost & set(plain)
    assert cost <= set(priced)
    assert {"Power by model", "GPU time by model"} <= set(panels(DashboardsConfig(), "gpu"))


def _inputs() -> list[dict[str, str]]:
    """fraud v7 on GPU-a (node n1: 100 J/s, half the GPU's time; its sidecar also counts GPU-a)
    and GPU-b (node n2: 50 J/s, a quarter); GPU-a draws 160 J/s in all, GPU-b 50 J/s;
    10 predictions/s counted by the sidecar and the aggregator alike."""
    node = {"job": GPU_JOB, **MODEL}
    values = {
        series("model_health_model_gpu_energy_joules_total", **node, instance="n1", gpu_uuid="GPU-a"): "0+6000x60",
        series("model_health_model_gpu_energy_joules_total", **node, instance="n2", gpu_uuid="GPU-b"): "0+3000x60",
        series("model_health_model_gpu_seconds_total", **node, instance="n1", gpu_uuid="GPU-a"): "0+30x60",
        series("model_health_model_gpu_seconds_total", **node, instance="n2", gpu_uuid="GPU-b"): "0+15x60",
        series(
            "model_health_model_gpu_energy_joules_total", job=SIDECAR, instance="p1", gpu_uuid="GPU-a", **MODEL
        ): "0+6000x60",
        series("model_health_gpu_energy_joules_total", job=GPU_JOB, instance="n1", gpu="0", gpu_uuid="GPU-a"): (
            "0+9600x60"
        ),
        series("model_health_gpu_energy_joules_total", job=GPU_JOB, instance="n2", gpu="0", gpu_uuid="GPU-b"): (
            "0+3000x60"
        ),
        series("model_health_predictions_total", job=SIDECAR, instance="p1", **MODEL): "0+600x60",
        series("model_health_predictions_total", job=AGG, instance="a1", **MODEL): "0+600x60",
    }
    return [{"series": key, "values": value} for key, value in sorted(values.items())]


def _check(expr: str, labels: str, value: float) -> dict[str, object]:
    return {"expr": expr, "eval_time": "30m", "exp_samples": [{"labels": labels, "value": value}]}


def test_panels_compute_energy_time_and_cost_per_prediction(tmp_path: Path) -> None:
    model, gpu = panels(PRICED, "model"), panels(PRICED, "gpu")
    power_by_model, not_attributed = gpu["Power by model"]
    checks = [
        _check(model["Energy per prediction"][0], '{model="fraud"}', 15.0),
        _check(model["GPU-seconds per 1k predictions"][0], '{model="fraud"}', 75.0),
        _check(model["Cost per 1k predictions (GPU-hours)"][0], '{model="fraud"}', 75 / 3600 * 4.5),
        _check(model["Cost per 1k predictions (energy)"][0], '{model="fraud"}', 15e3 / 3.6e6 * 0.25),
        _check(power_by_model, '{model="fraud", model_version="7"}', 150.0),
        _check(not_attributed, "{}", 60.0),  # GPU-a: 160 J/s less fraud's 100; GPU-b: all fraud's
        _check(gpu["GPU time by model"][0], '{model="fraud", model_version="7"}', 0.75),
    ]
    (tmp_path / "empty.yaml").write_text(dump_yaml({"groups": []}))
    unit = {
        "rule_files": ["empty.yaml"],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": _inputs(), "promql_expr_test": checks}],
    }
    (tmp_path / "test-panels.yaml").write_text(dump_yaml(unit))
    run_promtool("test", "rules", "test-panels.yaml", cwd=tmp_path)
