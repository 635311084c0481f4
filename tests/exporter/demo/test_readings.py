import math

from rich.console import Console

from exporter.demo.prometheus import AlertState, PrometheusStatus
from exporter.demo.readings import Frame, readings
from exporter.demo.view import render

SCRAPE = """# TYPE model_health_predictions counter
model_health_predictions_total{model="m",model_version="1"} 120.0
model_health_predictions_total{model="other",model_version="1"} 7.0
# TYPE model_health_feature_psi gauge
model_health_feature_psi{feature="a",model="m",model_version="1",window="1m"} 0.31
model_health_feature_psi{feature="b",model="m",model_version="1",window="1m"} 0.01
model_health_feature_psi{feature="a",model="m",model_version="1",window="1h"} 0.05
# TYPE model_health_feature_ks_statistic gauge
model_health_feature_ks_statistic{feature="a",model="m",model_version="1",window="1m"} 0.2
model_health_feature_ks_statistic{feature="b",model="m",model_version="1",window="1m"} 0.02
# TYPE model_health_feature_drift_detected gauge
model_health_feature_drift_detected{feature="a",model="m",model_version="1",window="1m"} 1.0
model_health_feature_drift_detected{feature="b",model="m",model_version="1",window="1m"} 0.0
# TYPE model_health_performance gauge
model_health_performance{metric="accuracy",model="m",model_version="1",window="1m"} 0.6
# TYPE model_health_performance_reference gauge
model_health_performance_reference{metric="accuracy",model="m",model_version="1"} 0.7
# TYPE model_health_gpu_utilization_ratio gauge
model_health_gpu_utilization_ratio{gpu="0",gpu_uuid="GPU-x"} 0.5
"""


def test_readings_pick_one_model_and_window() -> None:
    r = readings(SCRAPE, "m", "1m")
    assert r.predictions == 120.0
    assert r.drifted == {"a"}
    assert [f.feature for f in r.top(2)] == ["a", "b"]
    assert r.features[0].psi == 0.31 and r.features[0].ks == 0.2
    assert r.performance == {"accuracy": (0.6, 0.7)}
    assert r.gpu_utilization == 0.5
    assert math.isnan(r.window_samples)


SIDECAR = """# TYPE model_health_predictions counter
model_health_predictions_total{model="m",model_version="1"} 130.0
# TYPE model_health_gpu_utilization_ratio gauge
model_health_gpu_utilization_ratio{gpu="0",gpu_uuid="GPU-x"} 0.5
# TYPE model_health_gpu_memory_used_bytes gauge
model_health_gpu_memory_used_bytes{gpu="0",gpu_uuid="GPU-x"} 2147483648.0
# TYPE model_health_gpu_memory_total_bytes gauge
model_health_gpu_memory_total_bytes{gpu="0",gpu_uuid="GPU-x"} 150754820096.0
"""


def _text(frame: Frame, **options: object) -> str:
    console = Console(record=True, width=120)
    urls = {"aggregator /metrics": "http://x/metrics", "Prometheus": "http://p/alerts"}
    console.print(
        render(
            frame,
            elapsed=70,
            drift_after=60,
            rate=200,
            urls=urls,
            window="1m",
            gpu_source="fake: recorded H200 trace",
            **options,
        )
    )  # type: ignore[arg-type]
    return console.export_text()


def test_view_renders_every_part() -> None:
    alert = AlertState("ModelHealthFeatureDrift", "firing", "warning", "model=m window=1m")
    status = PrometheusStatus("http://p", 27, {"model-health-aggregator": "up", "model-health-sidecar": "up"}, (alert,))
    text = _text(Frame(readings(SCRAPE, "m", "1m"), readings(SIDECAR, "m", "1m"), status))
    for expected in (
        "drift injected 10s ago",
        "DRIFT",
        "0.310",
        "accuracy",
        "0.700",
        "served (sidecar)",
        "130",
        "aggregated",
        "GPU utilization",
        "50%",
        "2.0 / 140.4 GiB",
        "fake: recorded H200 trace",
        "27 rules, 2/2 targets up",
        "ModelHealthFeatureDrift",
        "firing",
        "window=1m",
        "http://x/metrics",
        "http://p/alerts",
    ):
        assert expected in text


def test_view_says_why_there_are_no_alerts_or_gpu_readings() -> None:
    text = _text(Frame(readings(SCRAPE, "m", "1m")), prometheus_note="Prometheus not installed — skipping")
    assert "Prometheus not installed — skipping" in text
    assert "no sample yet" in text


def test_alerts_from_the_prometheus_api() -> None:
    alert = AlertState.from_api(
        {
            "labels": {
                "alertname": "ModelHealthConceptDrift",
                "severity": "warning",
                "model": "m",
                "signal": "performance_drop",
                "model_version": "1",
            },
            "state": "pending",
        }
    )
    assert alert == AlertState("ModelHealthConceptDrift", "pending", "warning", "model=m signal=performance_drop")
