"""A canary through the real broker, judged by the generated gates on a real Prometheus.

Two models, each with a stable version 1 and a canary version 2 configured in the aggregator
(the default pairing: the second listed is compared with the first), each version with its own
profile built from its own reference draw, so their bins differ as a retrained model's would:

* ``fraud``'s canary **shifts**: every score is the square root of what the stable model says
  (more confident positives), it is 60% slower and 5% of its predictions fail;
* ``churn``'s canary behaves exactly like its stable version.

Traffic (the live demo's generator, native NDJSON records with explicit versions, no labels:
the estimate gate must work without them) → tansu → ``model-health aggregator`` (10 s window of
1 s buckets) → Prometheus (1 s scrapes and rule evaluations, the generated rules) → every gate's
query as Flagger and Argo Rollouts render it, and the autoscalers' latency queries as KEDA and
prometheus-adapter send them.

The checks: every query returns exactly one sample for each model; ``fraud``'s canary fails the
prediction-drift, latency, error and estimated-performance gates and ``churn``'s passes every
gate.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from alerts import dump_yaml, render_rules
from detectors.profile import build_profile
from exporter.config import AlertsConfig, GatesConfig
from exporter.demo.live import DEADLETTER, LABELS, PREDICTIONS, background, send_ndjson
from exporter.demo.traffic import Shape, TrafficGenerator
from exporter.gates import BY_KEY, GATES
from exporter.gates.argo import analysis_template
from exporter.gates.autoscaling import adapter_rules
from exporter.gates.flagger import metric_templates
from exporter.gates.queries import latency_query
from exporter.kafka import ProducerSettings, open_producer
from exporter.kafka.embedded import EmbeddedBroker, free_port
from exporter.profiles import save_profile
from tests.exporter.gates import render
from tests.support.services import PrometheusApi, binary, running, wait_for

pytestmark = pytest.mark.slow

MODEL_HEALTH = str(Path(sys.executable).with_name("model-health"))
WINDOW = "10s"
STABLE_RATE, CANARY_RATE = 300.0, 100.0  # predictions/s: a canary window holds ~1,000
SHAPE = Shape(numeric=4, categorical=2, drifted=0)
TIMEOUT = 120.0
GATES_CONFIG = GatesConfig(window=WINDOW)


@dataclass(frozen=True)
class Version:
    model: str
    version: str
    rate: float
    shifted: bool = False

    @property
    def canary(self) -> bool:
        return self.version == "2"


VERSIONS = (
    Version("fraud", "1", STABLE_RATE),
    Version("fraud", "2", CANARY_RATE, shifted=True),
    Version("churn", "1", STABLE_RATE),
    Version("churn", "2", CANARY_RATE),
)


def _shift(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The shifted canary's behaviour: sqrt scores, 60% slower, every 20th prediction an error."""
    for i, record in enumerate(records):
        record["prediction"] = math.sqrt(record["prediction"])
        record["latency_ms"] *= 1.6
        if i % 20 == 0:
            record["status"] = "error"
    return records


def _profile(workdir: Path, v: Version, seed: int) -> Path:
    table = SHAPE.table(20_000, drift=False, seed=seed)
    if v.shifted:
        scores = np.sqrt(table.column("prediction").to_numpy())
        table = table.set_column(table.column_names.index("prediction"), "prediction", [scores])
    profile = build_profile(
        table,
        model=v.model,
        model_version=v.version,
        created_at=time.time(),
        prediction="prediction",
        label="label",
    )
    return save_profile(profile, workdir / f"{v.model}-{v.version}.parquet")


def _send(producer: Any, stop: threading.Event) -> None:
    now = time.time()
    generators = [
        (v, TrafficGenerator(v.model, v.version, now, rate=v.rate, drift_after=1e9, shape=SHAPE, seed=11 + i))
        for i, v in enumerate(VERSIONS)
    ]
    while not stop.wait(0.5):
        for v, generator in generators:
            records, _ = generator.tick(time.time())  # labels are never sent
            send_ndjson(producer, PREDICTIONS, _shift(records) if v.shifted else records, key=v.model.encode())
        producer.flush(timeout_s=10.0)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusApi]:
    workdir = tmp_path_factory.mktemp("rollout-gates")
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("MODEL_HEALTH_")}
    with ExitStack() as stack:
        broker = stack.enter_context(EmbeddedBroker())
        broker.create_topics([PREDICTIONS, LABELS, DEADLETTER], exist_ok=True)
        models = [
            {"name": v.model, "version": v.version, "reference": str(_profile(workdir, v, seed=100 + i))}
            for i, v in enumerate(VERSIONS)
        ]
        port, prometheus_port = free_port(), free_port()
        config = {
            "kafka": {
                "bootstrap_servers": broker.bootstrap_servers,
                "predictions_topic": PREDICTIONS,
                "labels_topic": LABELS,
                "deadletter_topic": DEADLETTER,
                "session_timeout_ms": 2000,
                "heartbeat_interval_ms": 500,
            },
            "models": models,
            "windows": [{"name": WINDOW, "bucket_seconds": 1, "buckets": 10}],
            "evaluation": {"interval_seconds": 1.0},
            "http": {"host": "127.0.0.1", "port": port},
            "state": {"dir": str(workdir / "state")},
        }
        (workdir / "aggregator.yaml").write_text(yaml.safe_dump(config))
        (workdir / "rules.yaml").write_text(dump_yaml(render_rules(AlertsConfig())))
        (workdir / "prometheus.yml").write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
                    "rule_files": ["rules.yaml"],
                    "scrape_configs": [
                        {
                            "job_name": "model-health-aggregator",
                            "static_configs": [{"targets": [f"127.0.0.1:{port}"]}],
                        }
                    ],
                }
            )
        )
        producer = open_producer(ProducerSettings(broker.bootstrap_servers))
        stack.callback(producer.close)
        stack.enter_context(
            running(
                "aggregator",
                [MODEL_HEALTH, "aggregator", "--config", str(workdir / "aggregator.yaml")],
                workdir / "aggregator.log",
                f"http://127.0.0.1:{port}/readyz",
                env=env,
            )
        )
        stack.enter_context(
            running(
                "prometheus",
                [
                    binary("prometheus"),
                    f"--config.file={workdir / 'prometheus.yml'}",
                    f"--storage.tsdb.path={workdir / 'prometheus-data'}",
                    f"--web.listen-address=127.0.0.1:{prometheus_port}",
                ],
                workdir / "prometheus.log",
                f"http://127.0.0.1:{prometheus_port}/-/ready",
            )
        )
        stack.enter_context(background("traffic", lambda stop: _send(producer, stop)))
        yield PrometheusApi(f"http://127.0.0.1:{prometheus_port}")


def _one(api: PrometheusApi, query: str) -> float | None:
    """The value of a query's one sample; None while it has none; fails on several."""
    result = api.query(query)
    assert len(result) <= 1, f"{len(result)} samples for a controller that needs one: {query}\n{result}"
    return float(result[0]["value"][1]) if result else None


def _flagger_query(gate_key: str, model: str) -> str:
    template = next(t for t, g in zip(metric_templates(GATES_CONFIG), GATES, strict=True) if g.key == gate_key)
    return render.flagger(template["spec"]["query"], {"model": model})


def _argo_query(gate_key: str, model: str) -> str:
    metric = next(m for m in analysis_template(GATES_CONFIG)["spec"]["metrics"] if m["name"] == gate_key)
    return render.argo(metric["provider"]["prometheus"]["query"], {"model": model})


def _settled(api: PrometheusApi) -> dict[tuple[str, str], float]:
    """Every gate's value for both models, once all of them have one and the evidence is in."""

    def values() -> dict[tuple[str, str], float] | None:
        # Evidence first: both canaries compared over full windows (otherwise evidence gates read 0).
        compared = api.query(f'model_health_version_prediction_psi{{window="{WINDOW}"}}')
        samples = api.query(f'model:model_health_window_samples:max{{model_version="2", window="{WINDOW}"}} >= 500')
        if len(compared) < 2 or len(samples) < 2:
            return None
        out = {}
        for gate in GATES:
            for model in ("fraud", "churn"):
                value = _one(api, _flagger_query(gate.key, model))
                if value is None or math.isnan(value):
                    return None
                out[(gate.key, model)] = value
        return out

    return wait_for(values, "every gate to have a value for both canaries", TIMEOUT, interval=1.0)


def test_the_shifted_canary_fails_its_gates_and_the_unshifted_one_passes(prometheus: PrometheusApi) -> None:
    values = _settled(prometheus)
    # The drift decision needs a few full windows of the canary; give it a few evaluations more.
    time.sleep(3)
    values = _settled(prometheus)
    print("gate values:", {f"{k[0]}/{k[1]}": round(v, 4) for k, v in sorted(values.items())})
    for gate in GATES:
        assert gate.passes(values[(gate.key, "churn")], GATES_CONFIG), (gate.key, values[(gate.key, "churn")])
    # The estimate too: at the profile's threshold (0.5) the sqrt scores call many more positives,
    # and the canary's own calibration says that costs accuracy — without a single label.
    for key in ("prediction-drift", "latency-ratio", "error-ratio-increase", "estimated-performance-drop"):
        assert not BY_KEY[key].passes(values[(key, "fraud")], GATES_CONFIG), (key, values[(key, "fraud")])
    assert values[("feature-drift", "fraud")] == 0, "both canaries see the stable version's inputs"
    # The statistics behind the verdict: the shifted canary's PSI past the threshold, the other's near 0.
    psi = {
        r["metric"]["model"]: float(r["value"][1])
        for r in prometheus.query(f'model_health_version_prediction_psi{{window="{WINDOW}"}}')
    }
    assert psi["fraud"] > 0.2 > 0.05 > psi["churn"], psi
    assert {r["metric"]["baseline_version"] for r in prometheus.query("model_health_version_baseline_info")} == {"1"}


def test_argo_renders_the_same_one_sample_queries(prometheus: PrometheusApi) -> None:
    _settled(prometheus)
    for gate in GATES:
        for model in ("fraud", "churn"):
            assert _argo_query(gate.key, model) == _flagger_query(gate.key, model)
            assert _one(prometheus, _argo_query(gate.key, model)) is not None


def test_the_autoscaling_queries_return_one_latency_each(prometheus: PrometheusApi) -> None:
    _settled(prometheus)
    rule = adapter_rules(GATES_CONFIG)["externalRules"][0]
    for model in ("fraud", "churn"):
        keda = latency_query(model, 0.95, GATES_CONFIG.autoscaling.range)
        adapter = render.adapter(
            rule["metricsQuery"], "model_health_request_duration_seconds_bucket", f'model="{model}"'
        )
        value = _one(prometheus, keda)
        assert value is not None and 0.005 < value < 1.0, (model, value)  # log-normal around 20-32 ms
        assert _one(prometheus, adapter) == pytest.approx(value)
    # The series the adapter discovers its metric from exist.
    assert prometheus.query(f"count({rule['seriesQuery']})")
