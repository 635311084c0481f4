"""``promtool test rules`` cases for every alert, generated from a healthy baseline.

The baseline is one model (``fraud`` v7) served by one pod whose sidecar and the aggregator
both count its traffic, one GPU on a node agent, and the Kafka pipeline — every metric healthy.
A case replaces a few series of the baseline and says which alerts it expects at an evaluation
time, with their labels and value; the expected annotations are the rule's own templates
rendered with those labels and value, so the test also pins what on-call reads.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from alerts import rules as r
from exporter.config import AlertsConfig

MINUTES = 240  # four hours of samples, one a minute: long enough for the 2h retrain hold
AGG, SIDECAR, GPU_JOB = "model-health-aggregator", "model-health-sidecar", "model-health-node"
AGG_INSTANCE, POD_INSTANCE, NODE_INSTANCE = "10.0.0.5:9877", "10.0.1.7:9878", "10.0.2.9:9879"
MODEL = {"model": "fraud", "model_version": "7"}
TOPIC = "model-predictions"


def series(name: str, **labels: str) -> str:
    """``name{a="x", …}`` with labels in a fixed order, the key cases override."""
    return name + "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def const(value: float) -> str:
    return f"{value:g}x{MINUTES}"


def per_minute(increase: float) -> str:
    """A counter growing by ``increase`` a minute."""
    return f"0+{increase:g}x{MINUTES}"


def _agg(**labels: str) -> dict[str, str]:
    return {"job": AGG, "instance": AGG_INSTANCE, **labels}


def _pod(**labels: str) -> dict[str, str]:
    return {"job": SIDECAR, "instance": POD_INSTANCE, "pod_uid": "pod-1", **labels}


def _node(**labels: str) -> dict[str, str]:
    return {"job": GPU_JOB, "instance": NODE_INSTANCE, **labels}


# Keys cases override.
UP_AGG = series("up", job=AGG, instance=AGG_INSTANCE)
UP_SIDECAR = series("up", job=SIDECAR, instance=POD_INSTANCE)
PREDICTIONS_POD = series("model_health_predictions_total", **_pod(**MODEL))
PREDICTIONS_AGG = series("model_health_predictions_total", **_agg(**MODEL))
DRIFT_AMOUNT = series("model_health_feature_drift_detected", **_agg(**MODEL, feature="amount", window="1h"))
SAMPLES = series("model_health_window_samples", **_agg(**MODEL, window="1h"))
PREDICTION_PSI = series("model_health_prediction_psi", **_agg(**MODEL, window="1h"))
ACCURACY = series("model_health_performance", **_agg(**MODEL, window="1h", metric="accuracy"))
LOG_LOSS = series("model_health_performance", **_agg(**MODEL, window="1h", metric="log_loss"))
ESTIMATED_ACCURACY = series("model_health_performance_estimated", **_agg(**MODEL, window="1h", metric="accuracy"))
ESTIMATED_ACCURACY_DROP = series(
    "model_health_performance_estimated_drop_detected", **_agg(**MODEL, window="1h", metric="accuracy")
)
LABELS_JOINED = series("model_health_labels_joined_total", **_agg(model="fraud"))
TRAINED = series("model_health_model_trained_timestamp_seconds", **_agg(**MODEL))
GPU_UTIL = series("model_health_gpu_utilization_ratio", **_node(gpu="0", gpu_uuid="GPU-a"))
COLLECTOR_UP = series("model_health_gpu_collector_up", **_node())
LAG_0 = series("model_health_consumer_lag_records", **_agg(topic=TOPIC, partition="0"))
CONSUMED = series("model_health_records_consumed_total", **_agg(topic=TOPIC, format="ndjson"))
REJECTED = series("model_health_records_rejected_total", **_agg(topic=TOPIC, reason="invalid_json"))
EVALUATED = series("model_health_evaluation_last_success_timestamp_seconds", **_agg())
LATENCY_BOUNDS = ("0.1", "0.25", "0.5", "1", "+Inf")


def latency(counts_per_minute: Mapping[str, float]) -> dict[str, str]:
    """Latency buckets of the pod: cumulative counts a minute by ``le``."""
    return {
        series("model_health_request_duration_seconds_bucket", **_pod(**MODEL, le=le)): per_minute(
            counts_per_minute[le]
        )
        for le in LATENCY_BOUNDS
    }


FAST = {"0.1": 600, "0.25": 600, "0.5": 600, "1": 600, "+Inf": 600}
# Every request between 0.5 s and 1 s: p99 interpolates to 0.5 + 0.5 × 0.99 = 0.995 s.
SLOW = {"0.1": 0, "0.25": 0, "0.5": 0, "1": 600, "+Inf": 600}


def healthy() -> dict[str, str]:
    """Every metric of the baseline, healthy: no alert fires on it."""
    base = {
        UP_AGG: const(1),
        UP_SIDECAR: const(1),
        series("up", job=GPU_JOB, instance=NODE_INSTANCE): const(1),
        series("model_health_model_info", **_agg(**MODEL, model_namespace="prod", task="classification")): const(1),
        PREDICTIONS_POD: per_minute(600),
        PREDICTIONS_AGG: per_minute(600),
        series("model_health_prediction_errors_total", **_pod(**MODEL)): per_minute(1),
        DRIFT_AMOUNT: const(0),
        series("model_health_feature_drift_detected", **_agg(**MODEL, feature="country", window="1h")): const(0),
        SAMPLES: const(5000),
        PREDICTION_PSI: const(0.05),
        series("model_health_prediction_ks_statistic", **_agg(**MODEL, window="1h")): const(0.02),
        ACCURACY: const(0.9),
        series("model_health_performance_reference", **_agg(**MODEL, metric="accuracy")): const(0.91),
        LOG_LOSS: const(0.3),
        ESTIMATED_ACCURACY: const(0.905),
        ESTIMATED_ACCURACY_DROP: const(0),
        series("model_health_performance_reference", **_agg(**MODEL, metric="log_loss")): const(0.29),
        LABELS_JOINED: per_minute(300),
        TRAINED: const(86400),  # trained a day after the epoch the test clock starts at
        GPU_UTIL: const(0.5),
        series(
            "model_health_gpu_process_memory_used_bytes",
            **_node(gpu_uuid="GPU-a", pid="4242", pod_uid="pod-1", container_id="c-1"),
        ): const(2e9),
        COLLECTOR_UP: const(1),
        LAG_0: const(50),
        series("model_health_consumer_lag_records", **_agg(topic=TOPIC, partition="1")): const(50),
        CONSUMED: per_minute(6000),
        REJECTED: per_minute(0),
        EVALUATED: per_minute(60),  # the last pass is always the current minute
    }
    base.update(latency(FAST))
    return base


@dataclass(frozen=True)
class Fires:
    """One alert expected to fire: its labels (without alertname and config labels) and value."""

    labels: Mapping[str, str]
    value: float | None = None


@dataclass(frozen=True)
class Case:
    name: str
    alert: str
    changes: Mapping[str, str | None]  # series → values; None drops the series
    eval_time: str
    fires: tuple[Fires, ...] = ()
    also: tuple[tuple[str, str, tuple[Fires, ...]], ...] = field(default=())  # (alert, eval_time, fires)

    @property
    def silent(self) -> bool:
        return not self.fires


def _with(changes: Mapping[str, str | None]) -> dict[str, str]:
    out = healthy()
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


M = dict(MODEL)
MW = {**MODEL, "window": "1h"}
POD = {**MODEL, "pod_uid": "pod-1"}

CASES: tuple[Case, ...] = (
    # Feature drift: drifting features AND enough samples, sustained past a whole window.
    Case(
        "feature drift with enough samples, held 90m",
        r.FEATURE_DRIFT,
        {DRIFT_AMOUNT: const(1)},
        "95m",
        (Fires(MW, 1),),
        also=((r.FEATURE_DRIFT, "85m", ()),),
    ),
    Case(
        # A noise excursion lasts about as long as the window holds the records behind it: it
        # may stay flagged longer than 30 minutes, and must not page.
        "a 70-minute flag inside one window's turnover does not page",
        r.FEATURE_DRIFT,
        {DRIFT_AMOUNT: f"0x5 1x70 0x{MINUTES - 77}"},  # flagged from minute 6 to minute 76
        "76m",
    ),
    Case(
        "feature drift on a window with too few samples",
        r.FEATURE_DRIFT,
        {DRIFT_AMOUNT: const(1), SAMPLES: const(100)},
        "60m",
    ),
    # Concept drift: performance drop with enough labels, OR prediction drift with enough samples.
    Case(
        "accuracy drop with enough labels",
        r.CONCEPT_DRIFT,
        {ACCURACY: const(0.8)},
        "45m",
        (Fires({**MW, "signal": "performance_drop"}, (0.91 - 0.8) / 0.91),),
    ),
    Case(
        "log loss rise with enough labels",
        r.CONCEPT_DRIFT,
        {LOG_LOSS: const(0.4)},
        "45m",
        (Fires({**MW, "signal": "performance_drop"}, (0.4 - 0.29) / 0.29),),
    ),
    Case(
        "accuracy drop with too few labels joined",
        r.CONCEPT_DRIFT,
        {ACCURACY: const(0.8), LABELS_JOINED: per_minute(1)},
        "90m",
    ),
    # The estimated drop speaks only while too few labels are joined, and only where the
    # exporter's drop rule flagged it.
    Case(
        "estimated accuracy drop while labels are missing",
        r.CONCEPT_DRIFT,
        {ESTIMATED_ACCURACY: const(0.85), ESTIMATED_ACCURACY_DROP: const(1), LABELS_JOINED: per_minute(1)},
        "45m",
        (Fires({**MW, "signal": "estimated_performance_drop"}, (0.91 - 0.85) / 0.91),),
        also=((r.CONCEPT_DRIFT, "25m", ()),),
    ),
    Case(
        "estimated accuracy drop while labels are joined: the realised performance decides",
        r.CONCEPT_DRIFT,
        {ESTIMATED_ACCURACY: const(0.85), ESTIMATED_ACCURACY_DROP: const(1)},
        "90m",
    ),
    Case(
        "estimate lower but not a significant drop, labels missing",
        r.CONCEPT_DRIFT,
        {ESTIMATED_ACCURACY: const(0.85), LABELS_JOINED: per_minute(1)},
        "90m",
    ),
    Case(
        "prediction drift with enough samples",
        r.CONCEPT_DRIFT,
        {PREDICTION_PSI: const(0.35)},
        "45m",
        (Fires({**MW, "signal": "prediction_drift"}, 0.35),),
    ),
    Case(
        "prediction drift on a window with too few samples",
        r.CONCEPT_DRIFT,
        {PREDICTION_PSI: const(0.35), SAMPLES: const(100)},
        "90m",
    ),
    # GPU saturated AND latency over the SLA.
    Case(
        "GPU saturated and p99 over the SLA",
        r.GPU_LATENCY,
        {GPU_UTIL: const(0.95), **latency(SLOW)},
        "20m",
        (Fires(POD, 0.995),),
    ),
    Case("GPU saturated, latency within the SLA", r.GPU_LATENCY, {GPU_UTIL: const(0.95)}, "60m"),
    Case("p99 over the SLA, GPU not saturated", r.GPU_LATENCY, latency(SLOW), "60m"),
    # Staleness: the test clock starts at the epoch, so "long ago" is a negative timestamp.
    Case(
        "model trained 35 days ago",
        r.MODEL_STALE,
        {TRAINED: const(-3_000_000)},
        "90m",
        (Fires(M, (5400 + 3_000_000) / 86400),),
    ),
    # No predictions from any job.
    Case(
        "prediction counters stop",
        r.PREDICTIONS_ABSENT,
        {PREDICTIONS_POD: const(100), PREDICTIONS_AGG: const(100)},
        "30m",
        (Fires(M, 1),),
    ),
    Case(
        "no prediction series at all",
        r.PREDICTIONS_ABSENT,
        {PREDICTIONS_POD: None, PREDICTIONS_AGG: None},
        "30m",
        (Fires(M, 1),),
    ),
    Case("only the aggregator counts predictions", r.PREDICTIONS_ABSENT, {PREDICTIONS_POD: None}, "60m"),
    # Targets down.
    Case(
        "a sidecar target down",
        r.EXPORTER_DOWN,
        {UP_SIDECAR: const(0)},
        "10m",
        (Fires({"job": SIDECAR, "instance": POD_INSTANCE}, 0),),
    ),
    Case(
        "no aggregator target at all",
        r.EXPORTER_DOWN,
        {UP_AGG: None},
        "10m",
        (Fires({"job": AGG, "instance": r.NO_TARGET}, 1),),
    ),
    # Lag above the floor AND growing.
    Case("lag high and growing", r.CONSUMER_LAG, {LAG_0: per_minute(100)}, "40m", (Fires({"topic": TOPIC}, 4050),)),
    Case("lag high but flat", r.CONSUMER_LAG, {LAG_0: const(5000)}, "60m"),
    Case("lag growing but below the floor", r.CONSUMER_LAG, {LAG_0: per_minute(1)}, "60m"),
    # Dead letters: rate AND share of the topic.
    Case("5/s of 105/s rejected", r.DEAD_LETTERS, {REJECTED: per_minute(300)}, "15m", (Fires({"topic": TOPIC}, 5),)),
    Case("2/s rejected of 1000/s", r.DEAD_LETTERS, {REJECTED: per_minute(120), CONSUMED: per_minute(60_000)}, "30m"),
    Case("a third rejected, but 0.5/s", r.DEAD_LETTERS, {REJECTED: per_minute(30), CONSUMED: per_minute(60)}, "30m"),
    Case(
        "a topic only the sidecar rejects from",
        r.DEAD_LETTERS,
        {REJECTED: per_minute(300), CONSUMED: None},
        "15m",
        (Fires({"topic": TOPIC}, 5),),
    ),
    # Evaluation stuck since t = 10 min.
    Case(
        "evaluation stuck",
        r.EVALUATION_STALLED,
        {EVALUATED: const(600)},
        "30m",
        (Fires({"job": AGG, "instance": AGG_INSTANCE}, 1200),),
    ),
    Case(
        "NVML sampling fails",
        r.GPU_COLLECTOR_DOWN,
        {COLLECTOR_UP: const(0)},
        "15m",
        (Fires({"job": GPU_JOB, "instance": NODE_INSTANCE}, 0),),
    ),
    # Retraining: each reason after the 2h hold.
    Case(
        "sustained feature drift recommends retraining",
        r.RETRAIN,
        {DRIFT_AMOUNT: const(1)},
        "130m",
        (Fires({**M, "reason": "feature_drift"}, 1),),
        also=((r.RETRAIN, "100m", ()),),
    ),
    Case(
        "a sustained performance drop recommends retraining",
        r.RETRAIN,
        {ACCURACY: const(0.8)},
        "130m",
        (Fires({**M, "reason": "performance_drop"}, (0.91 - 0.8) / 0.91),),
    ),
    Case(
        "a stale model recommends retraining",
        r.RETRAIN,
        {TRAINED: const(-3_000_000)},
        "130m",
        (Fires({**M, "reason": "stale"}, (7800 + 3_000_000) / 86400),),
    ),
    Case(
        "feature drift with too few samples recommends nothing",
        r.RETRAIN,
        {DRIFT_AMOUNT: const(1), SAMPLES: const(100)},
        "130m",
    ),
)


_LABEL = re.compile(r"\{\{ \$labels\.(\w+) \}\}")
_VALUE = re.compile(r'\{\{ printf "(%[^"]+)" \$value \}\}')


def render_annotation(template: str, labels: Mapping[str, str], value: float | None) -> str:
    """The subset of Go templates the rules use: ``$labels.x`` and ``printf "%…" $value``."""
    text = _LABEL.sub(lambda m: labels.get(m.group(1), ""), template)
    if _VALUE.search(text):
        assert value is not None, f"a value is needed to render {template!r}"
        text = _VALUE.sub(lambda m: m.group(1) % value, text)
    assert "{{" not in text, f"template construct the test cannot render: {template!r}"
    return text


def _expected(config: AlertsConfig, alert: str, fires: tuple[Fires, ...]) -> list[dict[str, Any]]:
    rule = next(rule for rule in r.alert_rules(config) if rule["alert"] == alert)
    out = []
    for fire in fires:
        labels = {**fire.labels, **rule["labels"]}
        annotations = {k: render_annotation(v, labels, fire.value) for k, v in rule["annotations"].items()}
        out.append({"exp_labels": labels, "exp_annotations": annotations})
    return out


def _input_series(values: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"series": key, "values": value} for key, value in sorted(values.items())]


def unit_test_file(
    config: AlertsConfig, rule_file: str, cases: tuple[Case, ...], *, with_healthy: bool = False
) -> dict[str, Any]:
    """The promtool unit-test file: one group a case, after (optionally) the healthy group that
    checks every alert stays silent."""
    groups: list[dict[str, Any]] = []
    if with_healthy:
        groups.append(
            {
                "name": "healthy: nothing fires",
                "interval": "1m",
                "input_series": _input_series(healthy()),
                "alert_rule_test": [
                    {"eval_time": time, "alertname": alert, "exp_alerts": []}
                    for alert in r.ALERT_NAMES
                    for time in ("30m", "150m", "235m")
                ],
            }
        )
    for case in cases:
        checks = [(case.alert, case.eval_time, case.fires), *case.also]
        groups.append(
            {
                "name": f"{case.alert}: {case.name}",
                "interval": "1m",
                "input_series": _input_series(_with(case.changes)),
                "alert_rule_test": [
                    {"eval_time": time, "alertname": alert, "exp_alerts": _expected(config, alert, fires)}
                    for alert, time, fires in checks
                ],
            }
        )
    # promtool evaluates groups in random order unless told; alerts read the recording group's
    # series, so pin the order (as a sequential Prometheus would) to make values reproducible.
    return {
        "rule_files": [rule_file],
        "evaluation_interval": "1m",
        "group_eval_order": [r.RULE_GROUP_RECORDING, r.RULE_GROUP_ALERTS],
        "tests": groups,
    }
