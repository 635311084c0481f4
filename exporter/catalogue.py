"""The one metric catalogue: every series the stack exposes, with its type, labels, help and unit.

Collectors build their families from it, dashboards and alert rules may only name series it
lists, and the tests hold it to DESIGN.md's table. Names are a public contract: add, never
rename.

Conventions the catalogue keeps (and ``tests/exporter/test_catalogue.py`` enforces):

- every name starts with ``model_health_`` and is snake_case;
- base units only (seconds, bytes, ratio 0–1, joules, watts, hertz, celsius), and the unit is
  the last word of the name (before ``_total`` on counters);
- counters end in ``_total``; ``info`` metrics end in ``_info`` and are gauges whose value is
  always 1, carrying their data in labels;
- 0/1 gauges (``…_drift_detected``, ``…_collector_up``) are plain gauges;
- no label is called ``namespace`` or ``pod``: Prometheus's own target labels would clash and
  rename them to ``exported_…``. The model's namespace travels as ``model_namespace``.

Additions to DESIGN.md
----------------------

Metrics the aggregator needs that DESIGN.md's table lacks:

- ``model_health_records_late_total`` (counter; model) — records whose event time fell before
  the oldest open bucket (older than the allowed lateness); they are dropped from windows, not
  dead-lettered, because they decoded fine.
- ``model_health_feature_ks_error_bound`` (gauge; model, model_version, feature, window) — the
  stated error bound of the streaming KS D (the largest reference mass in one fine bin). It
  carries exactly the labels of ``model_health_feature_ks_statistic`` so PromQL can combine the
  two one-to-one.
- ``model_health_labels_pending`` (gauge; model) — predictions buffered for the label join,
  still awaiting their label.
- ``model_health_evaluation_last_success_timestamp_seconds`` (gauge) — when the last
  evaluation pass finished without error; alerts compare it with ``time()``.

Also decided here: ``model_health_model_info`` carries ``model``, ``model_version``,
``model_namespace`` and ``task`` (``classification``, ``regression`` or empty when the profile
does not say). No dead-lettered counter was added: every record counted by
``model_health_records_rejected_total`` is the one written to the dead-letter topic, so a second
counter would only repeat it.

Metrics of the retraining relay (owner ``relay``; ``target`` is the target kind, ``generic``,
``argo``, ``kubeflow`` or ``github``):

- ``model_health_relay_notifications_total`` (counter) — Alertmanager notifications accepted.
- ``model_health_relay_requests_rejected_total`` (counter; reason) — requests to
  ``/v1/alertmanager`` refused with a 4xx: ``unauthorized``, ``method``, ``too_large``,
  ``bad_body`` (broken framing, cut short), ``bad_json``, ``bad_payload``.
- ``model_health_relay_skipped_total`` (counter; reason) — alerts that caused no delivery:
  ``resolved``, ``other_alert``, ``no_model`` (no model label), ``duplicate`` (same fingerprint
  and startsAt already handled), ``cooldown`` (the model had a request within the cooldown).
- ``model_health_relay_deliveries_total`` (counter; target, outcome) — finished deliveries,
  ``outcome`` ``delivered`` or ``failed`` (permanent 4xx, or attempts exhausted).
- ``model_health_relay_retries_total`` (counter; target) — delivery attempts after the first.
- ``model_health_relay_deliveries_pending`` (gauge; target) — deliveries accepted but not yet
  finished, held durably in the state directory.

Metrics of the sidecar's HTTP ingest (owner ``sidecar``):

- ``model_health_ingest_requests_rejected_total`` (counter; reason) — ingest requests answered
  with a 4xx or 503: ``not_found``, ``method``, ``unsupported_media_type``, ``too_large``,
  ``bad_body`` (a body that ended early or broken chunked encoding), the 503s ``queue_full``,
  ``kafka_unavailable``, ``delivery_timeout`` and ``produce_failed`` (the last three when
  answers wait for Kafka, ``queue.acknowledge: delivered``), or
  the decoder's reason for the first record or event it refused (``invalid_json``,
  ``invalid_cloudevent``, ``missing_field``, …). Refused *records* are also counted, each, in
  ``model_health_records_rejected_total{topic,reason}`` with the topic they were bound for.
- ``model_health_inference_unpaired_total`` (counter; side, reason) — KServe logger events that
  left the request/response join buffer without their partner: ``side`` ``request`` or
  ``response``, ``reason`` ``expired`` (waited past the TTL), ``evicted`` (the buffer was full)
  or ``replaced`` (a newer event of the same side came with the same id).
- ``model_health_ingest_queue_records`` (gauge) — records accepted and not yet handed to Kafka;
  at ``queue.max_records`` ingest answers 503.

Metrics of the sidecar injector (owner ``injector``):

- ``model_health_injector_admissions_total`` (counter; outcome) — AdmissionReviews answered:
  ``injected``, ``already_injected`` (reinvocation), ``opted_out``, ``not_selected``,
  ``refused`` (no model name, a port or name clash, host network; the reason is in the
  response's warnings), ``not_applicable`` (not a pod CREATE), ``error`` (internal error; the
  pod was admitted unpatched) and ``malformed`` (a 4xx: not an AdmissionReview).
- ``model_health_injector_certificate_expiry_timestamp_seconds`` (gauge) — when the serving
  certificate in use expires; with ``failurePolicy: Ignore`` an expired certificate would
  silently stop injection, so alert on it.
- ``model_health_injector_certificate_reloads_total`` (counter; result) — rotated certificate
  files picked up (``loaded``) or refused (``failed``: the old pair keeps serving).

Metrics of the GPU collector (owners ``sidecar`` and ``node``; see ``exporter/gpu``):

- ``model_health_gpu_pcie_transmit_bytes_per_second`` and
  ``model_health_gpu_pcie_receive_bytes_per_second`` (gauge; gpu, gpu_uuid) — PCIe throughput
  as NVML measures it over 20 ms. The query is costly (~21 ms each), so it runs on the slow
  interval and only with ``gpu.slow_queries`` on. NVML gives a rate, not a byte counter,
  hence a gauge; ``bytes_per_second`` is the one derived unit the catalogue allows.
- ``model_health_gpu_process_utilization_ratio`` (gauge; gpu_uuid, pid, pod_uid,
  container_id) — share of the last sampling window the process kept the SMs busy, with the
  labels of ``model_health_gpu_process_memory_used_bytes``. Absent when NVML has no sample
  for the process ("Not Found": it ran nothing) and on MIG-enabled GPUs (not supported).
- ``model_health_gpu_mig_enabled`` (gauge 0/1; gpu, gpu_uuid) — whether the GPU is in MIG
  mode; absent where NVML cannot tell.
- ``model_health_gpu_mig_memory_used_bytes`` and ``model_health_gpu_mig_memory_total_bytes``
  (gauge; gpu, gpu_uuid, mig_uuid, gpu_instance_id, compute_instance_id) — memory of the GPU
  instance a MIG device belongs to (compute instances of one GPU instance share it, so they
  show the same value). NVML gives no utilization per MIG device.

Metrics of the aggregator's scale-out mode (``kafka.mode: scale_out``; see ``exporter/scaleout``),
exported by the replica that owns the summaries partition:

- ``model_health_summaries_merged_total`` (counter) — partial summaries merged into the models
  this replica owns (a replay after a handover merges them again, so this restarts like a
  process restart would).
- ``model_health_summaries_duplicates_total`` (counter) — partial summaries skipped because
  their source range was already merged: re-publications after a replica died mid-flush.
- ``model_health_summaries_overlaps_total`` (counter) — partial summaries whose source range
  overlaps one already merged; merged anyway and logged. Non-zero only if a replica kept
  publishing after losing its partition: worth an alert.

In scale-out, ``model_health_records_consumed_total`` and ``model_health_records_rejected_total``
are exported by the owner of each source partition's pipeline summaries (not by the replica
that happens to consume it), so they stay exact across crashes; their ``sum()`` over replicas
equals a single process's.

Several components may expose the same serving metric (the sidecar from HTTP ingest, the
aggregator from records it consumes); Prometheus's ``job`` label tells them apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

Kind = Literal["gauge", "counter", "histogram", "info"]
Component = Literal["aggregator", "sidecar", "relay", "injector", "node"]

PREFIX = "model_health_"
KINDS: frozenset[str] = frozenset({"gauge", "counter", "histogram", "info"})
COMPONENTS: frozenset[str] = frozenset({"aggregator", "sidecar", "relay", "injector", "node"})
# Base units only: a dashboard converts for display, the series never does.
# ``bytes_per_second``: NVML's PCIe throughput is a rate with no counter behind it.
UNITS: frozenset[str] = frozenset(
    {"", "seconds", "bytes", "ratio", "joules", "watts", "hertz", "celsius", "bytes_per_second"}
)
# Target labels Prometheus attaches itself; a metric label of the same name gets renamed.
FORBIDDEN_LABELS: frozenset[str] = frozenset({"namespace", "pod"})


@dataclass(frozen=True)
class Metric:
    """One metric family as the stack exposes it.

    ``name`` is the name queries use: counters include ``_total`` (prometheus_client strips it
    for the family and adds it back to the sample). ``kind`` ``info`` is a gauge fixed at 1.
    """

    name: str
    kind: Kind
    labels: tuple[str, ...]
    help: str
    unit: str
    owner: frozenset[Component]

    def __post_init__(self) -> None:
        # Fail at import time: a bad entry would otherwise surface as a broken dashboard.
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: unknown kind {self.kind!r}")
        if self.unit not in UNITS:
            raise ValueError(f"{self.name}: {self.unit!r} is not a base unit")
        if not self.owner or not self.owner <= COMPONENTS:
            raise ValueError(f"{self.name}: owner must be a non-empty subset of {sorted(COMPONENTS)}")
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"{self.name}: repeated label")

    @property
    def family(self) -> str:
        """The family name prometheus_client uses: counters without ``_total``."""
        return self.name.removesuffix("_total") if self.kind == "counter" else self.name

    @property
    def prometheus_type(self) -> str:
        """The ``# TYPE`` in the text exposition format, which has no info type."""
        return "gauge" if self.kind == "info" else self.kind


def _m(
    name: str, kind: Kind, labels: str, help: str, unit: str = "", owners: tuple[Component, ...] = ("aggregator",)
) -> Metric:
    """Compact constructor: labels as one comma-separated string keep the table readable."""
    return Metric(
        name=name,
        kind=kind,
        labels=tuple(label.strip() for label in labels.split(",") if label.strip()),
        help=help,
        unit=unit,
        owner=frozenset(owners),
    )


_FW = "model, model_version, feature, window"
_MW = "model, model_version, window"
_MV = "model, model_version"
_GPU = "gpu, gpu_uuid"
_SERVING: tuple[Component, ...] = ("aggregator", "sidecar")
_GPU_OWNERS: tuple[Component, ...] = ("sidecar", "node")
_ALL: tuple[Component, ...] = ("aggregator", "sidecar", "relay", "injector", "node")
_SIDECAR: tuple[Component, ...] = ("sidecar",)
_RELAY: tuple[Component, ...] = ("relay",)

CATALOGUE: tuple[Metric, ...] = (
    # Feature drift, per window.
    _m("model_health_feature_psi", "gauge", _FW, "Population stability index of the feature, window vs reference."),
    _m("model_health_feature_ks_statistic", "gauge", _FW, "Kolmogorov-Smirnov D of the feature, window vs reference."),
    _m("model_health_feature_ks_pvalue", "gauge", _FW, "Asymptotic p-value of the feature's Kolmogorov-Smirnov D."),
    _m(
        "model_health_feature_ks_error_bound",
        "gauge",
        _FW,
        "Largest possible error of the streaming Kolmogorov-Smirnov D (largest reference mass in one fine bin).",
    ),
    _m("model_health_feature_js_distance", "gauge", _FW, "Jensen-Shannon distance (base 2) of a categorical feature."),
    _m("model_health_feature_chi2_pvalue", "gauge", _FW, "Chi-square test p-value of a categorical feature."),
    _m(
        "model_health_feature_wasserstein_normed",
        "gauge",
        _FW,
        "Wasserstein distance of the feature divided by the reference standard deviation.",
    ),
    _m("model_health_feature_missing_ratio", "gauge", _FW, "Share of window records missing the feature.", "ratio"),
    _m("model_health_feature_drift_detected", "gauge", _FW, "1 when the feature drifts by the decision rule, else 0."),
    _m("model_health_drifted_features_ratio", "gauge", _MW, "Share of the model's features that drift.", "ratio"),
    _m("model_health_window_samples", "gauge", _MW, "Predictions in the window."),
    # Concept drift and performance.
    _m("model_health_prediction_psi", "gauge", _MW, "Population stability index of predictions vs reference."),
    _m("model_health_prediction_ks_statistic", "gauge", _MW, "Kolmogorov-Smirnov D of prediction scores vs reference."),
    _m("model_health_label_psi", "gauge", _MW, "Population stability index of ground-truth labels vs reference."),
    _m("model_health_performance", "gauge", f"{_MW}, metric", "Model performance over the window, by metric."),
    _m("model_health_performance_reference", "gauge", f"{_MV}, metric", "Model performance on the reference set."),
    _m("model_health_loss_ks_statistic", "gauge", _MW, "Kolmogorov-Smirnov D of per-record loss vs reference."),
    # Serving.
    _m("model_health_predictions_total", "counter", _MV, "Predictions seen.", owners=_SERVING),
    _m("model_health_prediction_errors_total", "counter", _MV, "Predictions with an error status.", owners=_SERVING),
    _m(
        "model_health_request_duration_seconds",
        "histogram",
        _MV,
        "Inference latency reported by the model server.",
        "seconds",
        owners=_SERVING,
    ),
    # Label join.
    _m("model_health_labels_joined_total", "counter", "model", "Labels joined to their prediction."),
    _m("model_health_labels_unmatched_total", "counter", "model", "Labels with no buffered prediction to join."),
    _m("model_health_labels_pending", "gauge", "model", "Predictions buffered awaiting their label."),
    # Staleness: timestamps, never ages, so alerts compute the age against time().
    _m("model_health_model_trained_timestamp_seconds", "gauge", _MV, "When the model was trained.", "seconds"),
    _m(
        "model_health_reference_created_timestamp_seconds",
        "gauge",
        _MV,
        "When the reference profile was built.",
        "seconds",
    ),
    _m(
        "model_health_last_prediction_timestamp_seconds",
        "gauge",
        _MV,
        "Event time of the newest prediction seen.",
        "seconds",
        owners=_SERVING,
    ),
    _m("model_health_last_label_timestamp_seconds", "gauge", "model", "Event time of the newest label.", "seconds"),
    _m(
        "model_health_model_info",
        "info",
        "model, model_version, model_namespace, task",
        "Monitored model identity; always 1.",
    ),
    # GPU (NVML).
    _m("model_health_gpu_utilization_ratio", "gauge", _GPU, "GPU busy share.", "ratio", owners=_GPU_OWNERS),
    _m(
        "model_health_gpu_memory_utilization_ratio",
        "gauge",
        _GPU,
        "Share of time GPU memory was being read or written.",
        "ratio",
        owners=_GPU_OWNERS,
    ),
    _m("model_health_gpu_memory_used_bytes", "gauge", _GPU, "GPU memory in use.", "bytes", owners=_GPU_OWNERS),
    _m("model_health_gpu_memory_total_bytes", "gauge", _GPU, "GPU memory installed.", "bytes", owners=_GPU_OWNERS),
    _m(
        "model_health_gpu_memory_reserved_bytes",
        "gauge",
        _GPU,
        "GPU memory reserved by the driver.",
        "bytes",
        owners=_GPU_OWNERS,
    ),
    _m("model_health_gpu_power_watts", "gauge", _GPU, "GPU power draw.", "watts", owners=_GPU_OWNERS),
    _m(
        "model_health_gpu_energy_joules_total",
        "counter",
        _GPU,
        "GPU energy consumed since the driver loaded.",
        "joules",
        owners=_GPU_OWNERS,
    ),
    _m("model_health_gpu_temperature_celsius", "gauge", _GPU, "GPU core temperature.", "celsius", owners=_GPU_OWNERS),
    _m("model_health_gpu_sm_clock_hertz", "gauge", _GPU, "GPU streaming-multiprocessor clock.", "hertz", _GPU_OWNERS),
    _m(
        "model_health_gpu_process_memory_used_bytes",
        "gauge",
        "gpu_uuid, pid, pod_uid, container_id",
        "GPU memory used by one process, attributed to its pod and container.",
        "bytes",
        owners=_GPU_OWNERS,
    ),
    _m(
        "model_health_gpu_info",
        "info",
        "gpu, gpu_uuid, gpu_model, driver_version",
        "GPU identity; always 1.",
        "",
        owners=_GPU_OWNERS,
    ),
    _m("model_health_gpu_collector_up", "gauge", "", "1 when the last NVML sample worked, else 0.", owners=_GPU_OWNERS),
    _m(
        "model_health_gpu_pcie_transmit_bytes_per_second",
        "gauge",
        _GPU,
        "PCIe throughput out of the GPU, measured by NVML over 20 ms.",
        "bytes_per_second",
        owners=_GPU_OWNERS,
    ),
    _m(
        "model_health_gpu_pcie_receive_bytes_per_second",
        "gauge",
        _GPU,
        "PCIe throughput into the GPU, measured by NVML over 20 ms.",
        "bytes_per_second",
        owners=_GPU_OWNERS,
    ),
    _m(
        "model_health_gpu_process_utilization_ratio",
        "gauge",
        "gpu_uuid, pid, pod_uid, container_id",
        "Share of the last sampling window one process kept the GPU's SMs busy.",
        "ratio",
        owners=_GPU_OWNERS,
    ),
    _m("model_health_gpu_mig_enabled", "gauge", _GPU, "1 when the GPU is in MIG mode, else 0.", owners=_GPU_OWNERS),
    _m(
        "model_health_gpu_mig_memory_used_bytes",
        "gauge",
        "gpu, gpu_uuid, mig_uuid, gpu_instance_id, compute_instance_id",
        "Memory in use in the GPU instance of a MIG device.",
        "bytes",
        owners=_GPU_OWNERS,
    ),
    _m(
        "model_health_gpu_mig_memory_total_bytes",
        "gauge",
        "gpu, gpu_uuid, mig_uuid, gpu_instance_id, compute_instance_id",
        "Memory of the GPU instance of a MIG device.",
        "bytes",
        owners=_GPU_OWNERS,
    ),
    # The pipeline itself.
    _m("model_health_records_consumed_total", "counter", "topic, format", "Records consumed and decoded."),
    _m(
        "model_health_records_rejected_total",
        "counter",
        "topic, reason",
        "Records refused and sent to the dead-letter topic, by reason.",
        "",
        owners=_SERVING,
    ),
    _m(
        "model_health_records_late_total",
        "counter",
        "model",
        "Records older than the allowed lateness, left out of every window.",
    ),
    _m("model_health_consumer_lag_records", "gauge", "topic, partition", "Records between consumer and log end."),
    _m("model_health_evaluation_duration_seconds", "histogram", "", "Time one evaluation pass took.", "seconds"),
    _m(
        "model_health_evaluation_last_success_timestamp_seconds",
        "gauge",
        "",
        "When the last evaluation pass succeeded.",
        "seconds",
    ),
    _m(
        "model_health_checkpoint_last_success_timestamp_seconds",
        "gauge",
        "",
        "When the last state checkpoint was written.",
        "seconds",
    ),
    # Scale-out (stage 2: merging partial summaries).
    _m(
        "model_health_summaries_merged_total",
        "counter",
        "",
        "Partial summaries merged into the models this replica owns.",
    ),
    _m(
        "model_health_summaries_duplicates_total",
        "counter",
        "",
        "Partial summaries skipped because their source range was already merged.",
    ),
    _m(
        "model_health_summaries_overlaps_total",
        "counter",
        "",
        "Partial summaries whose source range overlapped one already merged (merged anyway).",
    ),
    _m("model_health_build_info", "info", "version", "Build of the running component; always 1.", "", owners=_ALL),
    # The sidecar's HTTP ingest.
    _m(
        "model_health_ingest_requests_rejected_total",
        "counter",
        "reason",
        "Ingest requests refused with a 4xx or 503, by reason.",
        owners=_SIDECAR,
    ),
    _m(
        "model_health_inference_unpaired_total",
        "counter",
        "side, reason",
        "Logged inference requests or responses that left the join buffer without their partner.",
        owners=_SIDECAR,
    ),
    _m(
        "model_health_ingest_queue_records",
        "gauge",
        "",
        "Records accepted by ingest and not yet handed to Kafka.",
        owners=_SIDECAR,
    ),
    # The retraining relay.
    _m("model_health_relay_notifications_total", "counter", "", "Alertmanager notifications accepted.", owners=_RELAY),
    _m(
        "model_health_relay_requests_rejected_total",
        "counter",
        "reason",
        "Requests to the Alertmanager endpoint refused with a 4xx, by reason.",
        owners=_RELAY,
    ),
    _m(
        "model_health_relay_skipped_total",
        "counter",
        "reason",
        "Alerts that caused no delivery, by reason.",
        owners=_RELAY,
    ),
    _m(
        "model_health_relay_deliveries_total",
        "counter",
        "target, outcome",
        "Finished retraining deliveries, by target kind and outcome (delivered or failed).",
        owners=_RELAY,
    ),
    _m("model_health_relay_retries_total", "counter", "target", "Delivery attempts after the first.", owners=_RELAY),
    _m(
        "model_health_relay_deliveries_pending",
        "gauge",
        "target",
        "Deliveries accepted and durably queued but not yet finished.",
        owners=_RELAY,
    ),
    # The sidecar injector.
    _m(
        "model_health_injector_admissions_total",
        "counter",
        "outcome",
        "AdmissionReviews answered by the sidecar injector, by outcome.",
        owners=("injector",),
    ),
    _m(
        "model_health_injector_certificate_expiry_timestamp_seconds",
        "gauge",
        "",
        "When the injector's serving certificate expires.",
        "seconds",
        owners=("injector",),
    ),
    _m(
        "model_health_injector_certificate_reloads_total",
        "counter",
        "result",
        "Rotated serving certificates loaded or refused, by result.",
        owners=("injector",),
    ),
)

# Read-only view: the catalogue is a constant, never a registry others add to at runtime.
_BY_NAME: Mapping[str, Metric] = MappingProxyType({metric.name: metric for metric in CATALOGUE})
if len(_BY_NAME) != len(CATALOGUE):  # a lookup table would silently keep only the last duplicate
    raise ValueError("metric catalogue has duplicate names")


def by_name(name: str) -> Metric:
    """The catalogue entry for ``name``; ``KeyError`` names the metric when it is not there.

    >>> by_name("model_health_feature_psi").labels
    ('model', 'model_version', 'feature', 'window')
    """
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"{name} is not in the metric catalogue") from None


def names() -> frozenset[str]:
    """Every metric name in the catalogue."""
    return frozenset(_BY_NAME)


def for_owner(component: str) -> tuple[Metric, ...]:
    """The metrics ``component`` may expose, in catalogue order.

    >>> [m.name for m in for_owner("relay")][:2]
    ['model_health_build_info', 'model_health_relay_notifications_total']
    """
    if component not in COMPONENTS:
        raise ValueError(f"unknown component {component!r}; expected one of {sorted(COMPONENTS)}")
    return tuple(metric for metric in CATALOGUE if component in metric.owner)


def series_names(metric: Metric) -> tuple[str, ...]:
    """The sample names a scrape shows for ``metric``.

    ``_created`` appears when the collector reports creation times, as prometheus_client's own
    Counter and Histogram do; listing it keeps queries on it inside the catalogue.

    >>> series_names(by_name("model_health_predictions_total"))
    ('model_health_predictions_total', 'model_health_predictions_created')
    >>> [s.rsplit("_", 1)[1] for s in series_names(by_name("model_health_evaluation_duration_seconds"))]
    ['bucket', 'sum', 'count', 'created']
    """
    if metric.kind == "counter":
        return (f"{metric.family}_total", f"{metric.family}_created")
    if metric.kind == "histogram":
        return tuple(f"{metric.name}_{suffix}" for suffix in ("bucket", "sum", "count", "created"))
    return (metric.name,)


def all_series_names() -> frozenset[str]:
    """Every sample name any catalogue metric can expose: what a query may name."""
    return frozenset(series for metric in CATALOGUE for series in series_names(metric))


def markdown_table() -> str:
    """The catalogue as the README's Markdown table (a test keeps the README equal to it).

    >>> markdown_table().splitlines()[0]
    '| metric | type | labels | unit | exposed by | meaning |'
    """
    rows = ["| metric | type | labels | unit | exposed by | meaning |", "| --- | --- | --- | --- | --- | --- |"]
    for metric in CATALOGUE:
        rows.append(
            f"| `{metric.name}` | {metric.kind} | {', '.join(metric.labels) or '—'} | {metric.unit or '—'} "
            f"| {', '.join(sorted(metric.owner))} | {metric.help} |"
        )
    return "\n".join(rows) + "\n"
