import math

from exporter.demo.readings import readings
from exporter.demo.view import render
from rich.console import Console

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


def test_view_renders_every_part() -> None:
    console = Console(record=True, width=100)
    console.print(render(readings(SCRAPE, "m", "1m"), elapsed=70, drift_after=60, rate=200, urls={"metrics": "http://x/metrics"}, window="1m"))
    text = console.export_text()
    for expected in ("drift injected 10s ago", "DRIFT", "0.310", "accuracy", "0.700", "GPU utilization", "http://x/metrics"):
        assert expected in text
