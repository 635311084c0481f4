"""Recording rules and compound alert rules, as data, from the catalogue and ``AlertsConfig``.

Recording rules follow Prometheus's ``level:metric:operations`` naming. Levels:

- ``model`` — one monitored model: the identity labels the metric carries (``model`` and, where
  it has one, ``model_version``), plus ``window``/``metric`` where the series is per window or
  per metric.
- ``pod_uid`` — one model-server pod (the sidecar's target label ``pod_uid``, which the node GPU
  agent's per-process memory also carries); it joins serving latency to the pod's GPUs.
- ``topic`` — one Kafka topic of the pipeline.

GPU cost per model: the GPU time and energy attributed to each model (``model_health_model_gpu_*``,
exported by the sidecar in mode ``sidecar`` and by the node agent) as rates, per prediction, and
— where ``gpu_cost`` sets a price per GPU-hour or per kWh — as a cost per 1,000 predictions in
that price's currency. Both components may attribute the same GPU to the same model; like the
serving counters, the rates sum within a job and take the larger job's.

Serving counters (predictions, errors, latency) may come from two jobs at once — the sidecar
(HTTP ingest) and the aggregator (records it consumed) — for the same requests. Rules first sum
within a job and then take the ``max`` across jobs, so a model counts once whichever of the two
(or both) is deployed.

Every alert is named ``ModelHealth…`` and carries ``severity`` (critical, warning or info) and
the annotations ``summary``, ``description`` and ``runbook_url``; with ``aggregator_url`` set,
the drift and retraining alerts also carry ``report_url``, their model's drift report on the
aggregator. Annotations use only ``$labels`` (``urlquery``-escaped in ``report_url``) and
``printf`` of ``$value``, so their text is predictable (and unit-tested).
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
ESTIMATED_DROP = "model:model_health_performance_estimated:relative_drop"
# Version against its baseline version (the pairing comes from model_health_version_baseline_info).
VERSION_ERROR_RATIO = "model:model_health_prediction_errors:ratio_rate5m_minus_baseline"
VERSION_ESTIMATED = "model:model_health_performance_estimated:minus_baseline"
POD_GPU_UTILIZATION = "pod_uid:model_health_gpu_utilization_ratio:max"
LAG = "topic:model_health_consumer_lag_records:sum"
CONSUMED_RATE = "topic:model_health_records_consumed:rate5m"
REJECTED_RATE = "topic:model_health_records_rejected:rate5m"
REJECTED_RATIO = "topic:model_health_records_rejected:ratio_rate5m"
MODEL_GPU_ENERGY_RATE = "model:model_health_model_gpu_energy_joules:rate5m"
MODEL_GPU_SECONDS_RATE = "model:model_health_model_gpu_seconds:rate5m"
JOULES_PER_PREDICTION = "model:model_health_model_gpu_energy_joules:per_prediction_rate5m"
GPU_SECONDS_PER_PREDICTION = "model:model_health_model_gpu_seconds:per_prediction_rate5m"
GPU_TIME_COST_PER_1K = "model:model_health_model_gpu_seconds:cost_per_1k_predictions_rate5m"
GPU_ENERGY_COST_PER_1K = "model:model_health_model_gpu_energy_joules:cost_per_1k_predictions_rate5m"
SECONDS_PER_HOUR = 3600
JOULES_PER_KWH = 3.6e6

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


def version_latency_rule(config: AlertsConfig) -> str:
    """Name of the rule dividing a version's latency quantile by its baseline version's."""
    return f"{model_latency_rule(config)}_over_baseline"


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
        *_estimation_rules(config),
        *_version_rules(config),
        (LAG, "sum by (topic) (model_health_consumer_lag_records)"),
        (CONSUMED_RATE, "sum by (topic) (rate(model_health_records_consumed_total[5m]))"),
        (REJECTED_RATE, "sum by (topic) (rate(model_health_records_rejected_total[5m]))"),
        (
            REJECTED_RATIO,
            # A topic only the sidecar rejects from has no consumed counter: count it as 0.
            f"{REJECTED_RATE}\n/\n({REJECTED_RATE} + ({CONSUMED_RATE} or {REJECTED_RATE} * 0))",
        ),
    ]
    rules += _gpu_cost_rules(config)
    return [{"record": name, "expr": expr} for name, expr in rules]


def _gpu_cost_rules(config: AlertsConfig) -> list[tuple[str, str]]:
    """GPU time and energy per model, per prediction, and priced per 1,000 predictions."""
    served = f"({PREDICTIONS_RATE} > 0)"  # no traffic: no per-prediction figure, not +Inf
    rules = [
        (MODEL_GPU_ENERGY_RATE, _once_per_model("model_health_model_gpu_energy_joules_total")),
        (MODEL_GPU_SECONDS_RATE, _once_per_model("model_health_model_gpu_seconds_total")),
        (JOULES_PER_PREDICTION, f"{MODEL_GPU_ENERGY_RATE}\n/\n{served}"),
        (GPU_SECONDS_PER_PREDICTION, f"{MODEL_GPU_SECONDS_RATE}\n/\n{served}"),
    ]
    prices = config.gpu_cost
    if prices.price_per_gpu_hour is not None:
        rules.append(
            (
                GPU_TIME_COST_PER_1K,
                f"{GPU_SECONDS_PER_PREDICTION} * 1000 / {SECONDS_PER_HOUR} * {prices.price_per_gpu_hour!r}",
            )
        )
    if prices.price_per_kwh is not None:
        rules.append(
            (GPU_ENERGY_COST_PER_1K, f"{JOULES_PER_PREDICTION} * 1000 / {JOULES_PER_KWH:g} * {prices.price_per_kwh!r}")
        )
    return rules


def _relative_drop(
    metrics: tuple[str, ...], *, higher_is_better: bool, series: str = "model_health_performance"
) -> str:
    """(reference − window) / reference, or the reverse where lower is better; one series per window.

    ``series`` is the window's metric: the realised performance, or the label-free estimate
    (whose drop is measured from the same reference performance).
    """
    regex = any_of(metrics)
    window = f'max by ({_MODEL_WINDOW}, metric) ({series}{{metric=~"{regex}"}})'
    reference = f'max by ({_MODEL}, metric) (model_health_performance_reference{{metric=~"{regex}"}})'
    if higher_is_better:
        difference = f"  {reference}\n  - on ({_MODEL}, metric) group_right\n  {window}"
    else:
        difference = f"  {window}\n  - on ({_MODEL}, metric) group_left\n  {reference}"
    positive = f'max by ({_MODEL}, metric) (model_health_performance_reference{{metric=~"{regex}"}} > 0)'
    # No parenthesis may follow group_left: PromQL would read it as the label list.
    return f"(\n{difference}\n)\n/ on ({_MODEL}, metric) group_left\n{positive}"


# Metrics the label-free estimate exports (detectors.performance_estimation.METRICS); all are
# higher-is-better, so the estimated drop reads the configured higher_is_better ones among them.
ESTIMATED_METRICS = ("roc_auc", "accuracy", "precision", "recall", "f1")


def estimated_drop_metrics(config: AlertsConfig) -> tuple[str, ...]:
    return tuple(m for m in config.concept_drift.higher_is_better if m in ESTIMATED_METRICS)


def _estimation_rules(config: AlertsConfig) -> list[tuple[str, str]]:
    """(reference − estimate) / reference per window and metric: the estimated drop's size."""
    metrics = estimated_drop_metrics(config)
    if not metrics:
        return []
    return [
        (ESTIMATED_DROP, _relative_drop(metrics, higher_is_better=True, series="model_health_performance_estimated"))
    ]


def _with_baseline(expr: str) -> str:
    """``expr`` (by model, model_version, …) for the versions that have a baseline, labelled with it."""
    info = "max by (model, model_version, baseline_version) (model_health_version_baseline_info)"
    return f"(\n{_indent(expr)}\n  * on (model, model_version) group_left (baseline_version)\n  {info}\n)"


def _as_baseline(expr: str) -> str:
    """``expr`` with its own version copied into ``baseline_version``, to match the versions it is the baseline of."""
    return f'label_replace(\n{_indent(expr)},\n  "baseline_version", "$1", "model_version", "(.+)"\n)'


def _versus_baseline(expr: str, operator: str, on: str = "") -> str:
    """A version's ``expr`` ``operator`` its baseline version's, labelled model, model_version, baseline_version."""
    keys = f"model, baseline_version{on}"
    return f"{_with_baseline(expr)}\n{operator} on ({keys}) group_left\n{_as_baseline(expr)}"


def _version_rules(config: AlertsConfig) -> list[tuple[str, str]]:
    """Error ratio, latency quantile and estimated performance of a version against its baseline's."""
    estimated = f"max by ({_MODEL_WINDOW}, metric) (model_health_performance_estimated)"
    return [
        (VERSION_ERROR_RATIO, _versus_baseline(ERROR_RATIO, "-")),
        (version_latency_rule(config), _versus_baseline(model_latency_rule(config), "/")),
        (VERSION_ESTIMATED, _versus_baseline(estimated, "-", ", window, metric")),
    ]


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
    return (
        f"max by ({_MODEL_WINDOW}) (\n"
        f"  {selector(PERFORMANCE_DROP, window=_windows(config))} > {concept.max_performance_drop}\n)\n"
        f"and on (model)\n{_labels_joined(config)}"
    )


def _labels_joined(config: AlertsConfig) -> str:
    """Models with enough labels joined recently for their realised performance to count."""
    concept = config.concept_drift
    joined = f"sum by (model) (increase(model_health_labels_joined_total[{concept.labels_range}]))"
    return f"({joined} >= {concept.min_joined_labels})"


def _estimated_drop_condition(config: AlertsConfig) -> str:
    """The estimate fell significantly (the exporter's drop rule) while too few labels are joined.

    The value is the largest relative drop of the flagged metrics, measured as the realised
    signal measures it, so both signals read the same on a page.
    """
    return (
        f"max by ({_MODEL_WINDOW}) (\n"
        f"  {selector(ESTIMATED_DROP, window=_windows(config))}\n"
        f"  and on ({_MODEL_WINDOW}, metric)\n"
        f"  (model_health_performance_estimated_drop_detected == 1)\n)\n"
        f"unless on (model)\n{_labels_joined(config)}"
    )


def _concept_drift_expr(config: AlertsConfig) -> str:
    """Realised performance drop where labels are joined, the estimated drop where they are not,
    and prediction drift: one alert, told apart by its ``signal`` label."""
    parts = [_tagged(_performance_drop_condition(config), "signal", "performance_drop")]
    if estimated_drop_metrics(config):
        parts.append(_tagged(_estimated_drop_condition(config), "signal", "estimated_performance_drop"))
    parts.append(_tagged(_prediction_drift_condition(config), "signal", "prediction_drift"))
    return "\nor\n".join(parts)


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
            _concept_drift_expr(config),
            config.concept_drift.for_duration,
            config.concept_drift.severity,
            f"{model}: concept drift ({{{{ $labels.signal }}}}) in the {{{{ $labels.window }}}} window",
            f'{model}: {{{{ $labels.signal }}}} at {{{{ printf "%.3g" $value }}}} for '
            f"{config.concept_drift.for_duration} — a performance_drop is the relative fall below the "
            f"reference (limit {config.concept_drift.max_performance_drop:g}, with at least "
            f"{config.concept_drift.min_joined_labels} labels joined in {config.concept_drift.labels_range}); "
            f"an estimated_performance_drop is the same fall estimated from the scores alone, while fewer labels "
            f"are joined, where the drop rule finds it significant; "
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


# Alerts about one model's drift: with ``aggregator_url`` set they link to its drift report.
REPORT_LINKED: tuple[str, ...] = (FEATURE_DRIFT, CONCEPT_DRIFT, RETRAIN)


def report_url(config: AlertsConfig, alert: str) -> str | None:
    """The ``report_url`` annotation: the aggregator's drift report of the alert's model,
    version and window (the retraining alert, which has no window, gets the first one).
    Label values go through Go's ``urlquery``, so any model name makes a valid URL."""
    if config.aggregator_url is None or alert not in REPORT_LINKED:
        return None
    url = (
        f"{config.aggregator_url.rstrip('/')}/report/{{{{ $labels.model | urlquery }}}}"
        "?version={{ $labels.model_version | urlquery }}"
    )
    if alert != RETRAIN:
        url += "&window={{ $labels.window | urlquery }}"
    return url


def _annotations(config: AlertsConfig, alert: _Alert) -> dict[str, str]:
    annotations = {
        "summary": alert.summary,
        "description": alert.description,
        "runbook_url": runbook_url(config, alert.name),
    }
    link = report_url(config, alert.name)
    if link is not None:
        annotations["report_url"] = link
    return annotations


def alert_rules(config: AlertsConfig) -> list[dict[str, Any]]:
    """The alerting rules as Prometheus rule-file entries."""
    return [
        {
            "alert": alert.name,
            "expr": alert.expr,
            "for": alert.for_duration,
            "labels": {**config.labels, "severity": alert.severity},
            "annotations": _annotations(config, alert),
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
