"""Recording rules and compound alert rules, as data, from the catalogue and ``AlertsConfig``.

Recording rules follow Prometheus's ``level:metric:operations`` naming. Levels:

- ``model`` — one monitored model: the identity labels the metric carries (``model`` and, where
  it has one, ``model_version``), plus ``window``/``metric`` where the series is per window or
  per metric.
- ``pod_uid`` — one model-server pod (the sidecar's target label ``pod_uid``, which the node GPU
  agent's per-process memory also carries); it joins serving latency to the pod's GPUs.
- ``topic`` — one Kafka topic of the pipeline.

Serving counters (predictions, errors, latency) may come from two jobs at once — the sidecar
(HTTP ingest) and the aggregator (records it consumed) — for the same requests. Rules first sum
within a job and then take the ``max`` across jobs, so a model counts once whichever of the two
(or both) is deployed.

Every alert is named ``ModelHealth…`` and carries ``severity`` (critical, warning or info) and
the annotations ``summary``, ``description`` and ``runbook_url``. Annotations use only
``$labels`` and ``printf`` of ``$value``, so their text is predictable (and unit-tested).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from alerts.promql import any_of, selector
from exporter.config import AlertsConfig, duration_seconds

ALERT_PREFIX = "ModelHealth"
RULE_GROUP_RECORDING = "model-health.rules"
RULE_GROUP_ALERTS = "model-health.alerts"

# Alert names, in the order the rules file lists them.
FEATURE_DRIFT = "ModelHealthFeatureDrift"
CONCEPT_DRIFT = "ModelHealthConceptDrift"
GPU_LATENCY = "ModelHealthGpuSaturatedLatencySla"
MODEL_STALE = "ModelHealthModelStale"
PREDICTIONS_ABSENT = "ModelHealthPredictionsAbsent"
EXPORTER_DOWN = "ModelHealthExporterDown"
CONSUMER_LAG = "ModelHealthConsumerLagGrowing"
DEAD_LETTERS = "ModelHealthDeadLetterSpike"
EVALUATION_STALLED = "ModelHealthEvaluationStalled"
GPU_COLLECTOR_DOWN = "ModelHealthGpuCollectorDown"
RETRAIN = "ModelHealthRetrainRecommended"
ALERT_NAMES: tuple[str, ...] = (
    FEATURE_DRIFT,
    CONCEPT_DRIFT,
    GPU_LATENCY,
    MODEL_STALE,
    PREDICTIONS_ABSENT,
    EXPORTER_DOWN,
    CONSUMER_LAG,
    DEAD_LETTERS,
    EVALUATION_STALLED,
    GPU_COLLECTOR_DOWN,
    RETRAIN,
)
# Drift alerts say nothing while a model gets no traffic: Alertmanager inhibits them then.
INHIBITED_BY_ABSENCE: tuple[str, ...] = (FEATURE_DRIFT, CONCEPT_DRIFT, RETRAIN)

# Recording rule names.
PREDICTIONS_RATE = "model:model_health_predictions:rate5m"
ERRORS_RATE = "model:model_health_prediction_errors:rate5m"
ERROR_RATIO = "model:model_health_prediction_errors:ratio_rate5m"
LATENCY_BUCKETS = "model:model_health_request_duration_seconds_bucket:rate5m"
LABELS_JOINED_RATE = "model:model_health_labels_joined:rate5m"
LABELS_UNMATCHED_RATE = "model:model_health_labels_unmatched:rate5m"
DRIFTING_FEATURES = "model:model_health_feature_drift_detected:sum"
WINDOW_SAMPLES = "model:model_health_window_samples:max"
PERFORMANCE_DROP = "model:model_health_performance:relative_drop"
POD_GPU_UTILIZATION = "pod_uid:model_health_gpu_utilization_ratio:max"
LAG = "topic:model_health_consumer_lag_records:sum"
CONSUMED_RATE = "topic:model_health_records_consumed:rate5m"
REJECTED_RATE = "topic:model_health_records_rejected:rate5m"
REJECTED_RATIO = "topic:model_health_records_rejected:ratio_rate5m"

_MODEL = "model, model_version"
_MODEL_WINDOW = "model, model_version, window"
_DAY = 86400.0
NO_TARGET = "no target discovered"


def quantile_tag(quantile: float) -> str:
    """``0.99`` → ``p99``, ``0.999`` → ``p99_9``: the quantile as a recording-rule operation.

    >>> quantile_tag(0.99), quantile_tag(0.5), quantile_tag(0.999)
    ('p99', 'p50', 'p99_9')
    """
    return "p" + format(round(quantile * 100, 6), "g").replace(".", "_")


def model_latency_rule(config: AlertsConfig) -> str:
    """Name of the per-model latency-quantile recording rule."""
    return f"model:model_health_request_duration_seconds:{quantile_tag(config.gpu_latency.latency_quantile)}_rate5m"


def pod_latency_rule(config: AlertsConfig) -> str:
    """Name of the per-pod latency-quantile recording rule (joined to the pod's GPUs)."""
    return f"pod_uid:model_health_request_duration_seconds:{quantile_tag(config.gpu_latency.latency_quantile)}_rate5m"


def _once_per_model(counter: str, labels: str = _MODEL) -> str:
    """The rate of a serving counter, summed within each job, then the largest job's."""
    return f"max by ({labels}) (\n  sum by (job, {labels}) (rate({counter}[5m]))\n)"


def _windows(config: AlertsConfig) -> str | None:
    return any_of(config.windows) if config.windows else None


def recording_rules(config: AlertsConfig) -> list[dict[str, str]]:
    """The recording rules, in evaluation order (later rules read earlier ones)."""
    quantile = config.gpu_latency.latency_quantile
    concept = config.concept_drift
    sidecar = {"job": config.jobs.sidecar} if config.jobs.sidecar else {}
    pod_buckets = selector("model_health_request_duration_seconds_bucket", sidecar, pod_uid=".+")
    drop_parts = []
    if concept.higher_is_better:
        drop_parts.append(_relative_drop(concept.higher_is_better, higher_is_better=True))
    if concept.lower_is_better:
        drop_parts.append(_relative_drop(concept.lower_is_better, higher_is_better=False))
    rules = [
        (PREDICTIONS_RATE, _once_per_model("model_health_predictions_total")),
        (ERRORS_RATE, _once_per_model("model_health_prediction_errors_total")),
        (ERROR_RATIO, f"{ERRORS_RATE}\n/\n{PREDICTIONS_RATE}"),
        (LATENCY_BUCKETS, _once_per_model("model_health_request_duration_seconds_bucket", f"{_MODEL}, le")),
        (model_latency_rule(config), f"histogram_quantile({quantile}, {LATENCY_BUCKETS})"),
        (
            pod_latency_rule(config),
            f"histogram_quantile(\n  {quantile},\n  sum by (pod_uid, {_MODEL}, le) (rate({pod_buckets}[5m]))\n)",
        ),
        (
            POD_GPU_UTILIZATION,
            # Each GPU a pod's processes hold memory on, with that GPU's utilization; then the
            # busiest of the pod's GPUs.
            "max by (pod_uid) (\n"
            '    max by (gpu_uuid, pod_uid) (model_health_gpu_process_memory_used_bytes{pod_uid!=""}) * 0\n'
            "  + on (gpu_uuid) group_left\n"
            "    max by (gpu_uuid) (model_health_gpu_utilization_ratio)\n"
            ")",
        ),
        (LABELS_JOINED_RATE, "sum by (model) (rate(model_health_labels_joined_total[5m]))"),
        (LABELS_UNMATCHED_RATE, "sum by (model) (rate(model_health_labels_unmatched_total[5m]))"),
        (
            DRIFTING_FEATURES,
            f"sum by ({_MODEL_WINDOW}) (\n  max by ({_MODEL_WINDOW}, feature) (model_health_feature_drift_detected)\n)",
        ),
        (WINDOW_SAMPLES, f"max by ({_MODEL_WINDOW}) (model_health_window_samples)"),
        (PERFORMANCE_DROP, "\nor\n".join(drop_parts)),
        (LAG, "sum by (topic) (model_health_consumer_lag_records)"),
        (CONSUMED_RATE, "sum by (topic) (rate(model_health_records_consumed_total[5m]))"),
        (REJECTED_RATE, "sum by (topic) (rate(model_health_records_rejected_total[5m]))"),
        (
            REJECTED_RATIO,
            # A topic only the sidecar rejects from has no consumed counter: count it as 0.
            f"{REJECTED_RATE}\n/\n({REJECTED_RATE} + ({CONSUMED_RATE} or {REJECTED_RATE} * 0))",
        ),
    ]
    return [{"record": name, "expr": expr} for name, expr in rules]


def _relative_drop(metrics: tuple[str, ...], *, higher_is_better: bool) -> str:
    """(reference − window) / reference, or the reverse where lower is better; one series per window."""
    regex = any_of(metrics)
    window = f'max by ({_MODEL_WINDOW}, metric) (model_health_performance{{metric=~"{regex}"}})'
    reference = f'max by ({_MODEL}, metric) (model_health_performance_reference{{metric=~"{regex}"}})'
    if higher_is_better:
        difference = f"  {reference}\n  - on ({_MODEL}, metric) group_right\n  {window}"
    else:
        difference = f"  {window}\n  - on ({_MODEL}, metric) group_left\n  {reference}"
    positive = f'max by ({_MODEL}, metric) (model_health_performance_reference{{metric=~"{regex}"}} > 0)'
    # No parenthesis may follow group_left: PromQL would read it as the label list.
    return f"(\n{difference}\n)\n/ on ({_MODEL}, metric) group_left\n{positive}"


# ---------------------------------------------------------------------------------------------
# Conditions shared by several alerts.


def _feature_drift_condition(config: AlertsConfig) -> str:
    drift = config.feature_drift
    windows = _windows(config)
    return (
        f"(\n  {selector(DRIFTING_FEATURES, window=windows)} >= {drift.min_drifted_features}\n)\n"
        f"and on ({_MODEL_WINDOW})\n"
        f"(\n  {selector(WINDOW_SAMPLES, window=windows)} >= {drift.min_samples}\n)"
    )


def _performance_drop_condition(config: AlertsConfig) -> str:
    concept = config.concept_drift
    joined = f"sum by (model) (increase(model_health_labels_joined_total[{concept.labels_range}]))"
    return (
        f"max by ({_MODEL_WINDOW}) (\n"
        f"  {selector(PERFORMANCE_DROP, window=_windows(config))} > {concept.max_performance_drop}\n)\n"
        f"and on (model)\n({joined} >= {concept.min_joined_labels})"
    )


def _prediction_drift_condition(config: AlertsConfig) -> str:
    concept = config.concept_drift
    windows = _windows(config)
    psi = selector("model_health_prediction_psi", window=windows)
    ks = selector("model_health_prediction_ks_statistic", window=windows)
    return (
        f"(\n  max by ({_MODEL_WINDOW}) ({psi}) >= {concept.prediction_psi}\n"
        f"  or\n  max by ({_MODEL_WINDOW}) ({ks}) >= {concept.prediction_ks}\n)\n"
        f"and on ({_MODEL_WINDOW})\n"
        f"(\n  {selector(WINDOW_SAMPLES, window=windows)} >= {concept.min_samples}\n)"
    )


def _stale_condition(config: AlertsConfig) -> str:
    max_days = duration_seconds(config.stale_model.max_model_age) / _DAY
    return (
        f"(\n  time() - max by ({_MODEL}) (model_health_model_trained_timestamp_seconds)\n)\n/ {_DAY:g} > {max_days:g}"
    )


def _tagged(expr: str, label: str, value: str) -> str:
    """``expr`` with a constant label added (label_replace with an always-matching empty regex)."""
    indented = "\n".join("  " + line for line in expr.splitlines())
    return f'label_replace(\n{indented},\n  "{label}", "{value}", "", ""\n)'


def _indent(expr: str) -> str:
    return "\n".join("  " + line for line in expr.splitlines())


def _group_by_model(expr: str) -> str:
    return f"max by ({_MODEL}) (\n{_indent(expr)}\n)"


# ---------------------------------------------------------------------------------------------
# Alerts.


@dataclass(frozen=True)
class _Alert:
    name: str
    expr: str
    for_duration: str
    severity: str
    summary: str
    description: str


def _alerts(config: AlertsConfig) -> list[_Alert]:
    jobs = config.jobs
    gpu = config.gpu_latency
    stale = config.stale_model
    lag = config.consumer_lag
    dead = config.dead_letters
    stalled = config.evaluation_stalled
    model = "{{ $labels.model }} v{{ $labels.model_version }}"
    alerts: list[_Alert] = [
        _Alert(
            FEATURE_DRIFT,
            _feature_drift_condition(config),
            config.feature_drift.for_duration,
            config.feature_drift.severity,
            f'{model}: {{{{ printf "%.0f" $value }}}} features drift in the {{{{ $labels.window }}}} window',
            f"{model} has had at least {config.feature_drift.min_drifted_features} drifting feature(s) for "
            f"{config.feature_drift.for_duration}, in a {{{{ $labels.window }}}} window of at least "
            f"{config.feature_drift.min_samples} predictions: the drift outlasted the records it was first seen in. "
            "The model sees inputs unlike its reference data.",
        ),
        _Alert(
            CONCEPT_DRIFT,
            f"{_tagged(_performance_drop_condition(config), 'signal', 'performance_drop')}\n"
            f"or\n{_tagged(_prediction_drift_condition(config), 'signal', 'prediction_drift')}",
            config.concept_drift.for_duration,
            config.concept_drift.severity,
            f"{model}: concept drift ({{{{ $labels.signal }}}}) in the {{{{ $labels.window }}}} window",
            f'{model}: {{{{ $labels.signal }}}} at {{{{ printf "%.3g" $value }}}} for '
            f"{config.concept_drift.for_duration} — a performance_drop is the relative fall below the "
            f"reference (limit {config.concept_drift.max_performance_drop:g}, with at least "
            f"{config.concept_drift.min_joined_labels} labels joined in {config.concept_drift.labels_range}); "
            f"a prediction_drift is the prediction PSI or KS D (limits {config.concept_drift.prediction_psi:g} / "
            f"{config.concept_drift.prediction_ks:g}).",
        ),
        _Alert(
            GPU_LATENCY,
            f"{pod_latency_rule(config)} > {gpu.latency_sla_seconds:g}\n"
            f"and on (pod_uid)\n{POD_GPU_UTILIZATION} > {gpu.gpu_utilization:g}",
            gpu.for_duration,
            gpu.severity,
            f"{model}: GPU saturated and p{gpu.latency_quantile * 100:g} latency over the SLA",
            f"Pod {{{{ $labels.pod_uid }}}} of {model}: p{gpu.latency_quantile * 100:g} latency "
            f'{{{{ printf "%.3g" $value }}}}s is above the {gpu.latency_sla_seconds:g}s SLA while a GPU it uses '
            f"is more than {gpu.gpu_utilization * 100:g}% busy, for {gpu.for_duration}.",
        ),
        _Alert(
            MODEL_STALE,
            _stale_condition(config),
            stale.for_duration,
            stale.severity,
            f'{model} was trained {{{{ printf "%.1f" $value }}}} days ago',
            f"{model} is older than the {stale.max_model_age} allowed since training "
            f'({{{{ printf "%.1f" $value }}}} days).',
        ),
        _Alert(
            PREDICTIONS_ABSENT,
            f"max by ({_MODEL}) (model_health_model_info)\nunless on ({_MODEL})\n({PREDICTIONS_RATE} > 0)",
            config.predictions_absent.for_duration,
            config.predictions_absent.severity,
            f"{model} receives no predictions",
            f"{model} is monitored but no prediction reached model-health for "
            f"{config.predictions_absent.for_duration}. Drift alerts for it are inhibited meanwhile.",
        ),
        _Alert(
            CONSUMER_LAG,
            f"{LAG} > {lag.min_lag_records}\nand on (topic)\nderiv({LAG}[{lag.growth_range}]) > 0",
            lag.for_duration,
            lag.severity,
            "Kafka consumer lag on {{ $labels.topic }} keeps growing",
            f'The aggregators are {{{{ printf "%.0f" $value }}}} records behind on topic {{{{ $labels.topic }}}} '
            f"and the lag has grown for {lag.for_duration}: metrics lag behind the traffic.",
        ),
        _Alert(
            DEAD_LETTERS,
            f"{REJECTED_RATE} > {dead.min_rate_per_second:g}\nand on (topic)\n{REJECTED_RATIO} > {dead.min_ratio:g}",
            dead.for_duration,
            dead.severity,
            "Records from {{ $labels.topic }} are being dead-lettered",
            f'{{{{ printf "%.3g" $value }}}} records/s from topic {{{{ $labels.topic }}}} are rejected and sent to '
            f"the dead-letter topic (more than {dead.min_rate_per_second:g}/s and {dead.min_ratio * 100:g}% of "
            f"the topic's records, for {dead.for_duration}).",
        ),
        _Alert(
            EVALUATION_STALLED,
            f"time() - max by (job, instance) (model_health_evaluation_last_success_timestamp_seconds)\n"
            f"> {duration_seconds(stalled.max_age):g}",
            stalled.for_duration,
            stalled.severity,
            "Drift evaluation stalled on {{ $labels.instance }}",
            f'The last successful evaluation on {{{{ $labels.instance }}}} was {{{{ printf "%.0f" $value }}}}s '
            f"ago (limit {stalled.max_age}): drift metrics are frozen.",
        ),
        _Alert(
            GPU_COLLECTOR_DOWN,
            "model_health_gpu_collector_up == 0",
            config.gpu_collector.for_duration,
            config.gpu_collector.severity,
            "NVML sampling fails on {{ $labels.instance }}",
            f"The GPU collector on {{{{ $labels.instance }}}} has failed to sample NVML for "
            f"{config.gpu_collector.for_duration}: GPU metrics are missing.",
        ),
    ]
    job_names = jobs.names()
    if job_names:
        down = f'up{{job=~"{any_of(job_names)}"}} == 0'
        if jobs.aggregator:
            # No aggregator target discovered at all is as blind as one that is down.
            down += f'\nor\nlabel_replace(absent(up{{job="{jobs.aggregator}"}}), "instance", "{NO_TARGET}", "", "")'
        alerts.insert(
            5,
            _Alert(
                EXPORTER_DOWN,
                down,
                config.exporter_down.for_duration,
                config.exporter_down.severity,
                "{{ $labels.job }} is down ({{ $labels.instance }})",
                f"Prometheus could not scrape job {{{{ $labels.job }}}}, instance {{{{ $labels.instance }}}}, for "
                f"{config.exporter_down.for_duration}: its metrics, and the alerts built on them, are blind.",
            ),
        )
    retrain = config.retrain
    reasons: dict[str, Callable[[], str]] = {
        "feature_drift": lambda: _group_by_model(_feature_drift_condition(config)),
        "performance_drop": lambda: _group_by_model(_performance_drop_condition(config)),
        "stale": lambda: _stale_condition(config),
    }
    alerts.append(
        _Alert(
            RETRAIN,
            "\nor\n".join(_tagged(reasons[reason](), "reason", reason) for reason in retrain.reasons),
            retrain.for_duration,
            retrain.severity,
            f"Retrain {model} ({{{{ $labels.reason }}}})",
            f"{model} should be retrained: {{{{ $labels.reason }}}} has held for {retrain.for_duration}. "
            f"Alertmanager sends this alert to the retraining relay.",
        ),
    )
    return alerts


def runbook_url(config: AlertsConfig, alert: str) -> str:
    """Where ``docs/runbooks/<alert>.md`` is published."""
    return f"{config.runbook_base_url.rstrip('/')}/{alert}.md"


def alert_rules(config: AlertsConfig) -> list[dict[str, Any]]:
    """The alerting rules as Prometheus rule-file entries."""
    return [
        {
            "alert": alert.name,
            "expr": alert.expr,
            "for": alert.for_duration,
            "labels": {**config.labels, "severity": alert.severity},
            "annotations": {
                "summary": alert.summary,
                "description": alert.description,
                "runbook_url": runbook_url(config, alert.name),
            },
        }
        for alert in _alerts(config)
    ]


def render_rules(config: AlertsConfig | None = None) -> dict[str, Any]:
    """The Prometheus rules file (``rule_files`` format): a recording group and an alert group."""
    config = config or AlertsConfig()
    return {
        "groups": [
            {"name": RULE_GROUP_RECORDING, "rules": recording_rules(config)},
            {"name": RULE_GROUP_ALERTS, "rules": alert_rules(config)},
        ]
    }


def recording_rule_names(config: AlertsConfig | None = None) -> frozenset[str]:
    """Names of the series the recording rules create."""
    return frozenset(rule["record"] for rule in recording_rules(config or AlertsConfig()))
