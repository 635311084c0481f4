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

What each entry says beyond its help is its ``note``: why it exists, what its label values
mean, how it behaves in scale-out. ``added`` says where a metric comes from: ``contract`` for
the contract's own table (DESIGN.md), ``project`` for the ones this project added, each of
which must carry a note (the contract asks that the project's docs list every addition with
why; :func:`additions_markdown` renders that list).

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
# ``contract``: named by the contract's metric table; ``project``: added by this project.
Added = Literal["contract", "project"]

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
    note: str = ""  # what the help cannot say: why it exists, what its labels' values mean
    added: Added = "contract"

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
        if self.added not in ("contract", "project"):
            raise ValueError(f"{self.name}: added must be 'contract' or 'project', got {self.added!r}")
        if self.added == "project" and not self.note:
            raise ValueError(f"{self.name}: a metric the project added needs a note saying why")

    @property
    def family(self) -> str:
        """The family name prometheus_client uses: counters without ``_total``."""
        return self.name.removesuffix("_total") if self.kind == "counter" else self.name

    @property
    def prometheus_type(self) -> str:
        """The ``# TYPE`` in the text exposition format, which has no info type."""
        return "gauge" if self.kind == "info" else self.kind


def _m(
    name: str,
    kind: Kind,
    labels: str,
    help: str,
    unit: str = "",
    owners: tuple[Component, ...] = ("aggregator",),
    *,
    note: str = "",
    added: Added = "contract",
) -> Metric:
    """Compact constructor: labels as one comma-separated string keep the table readable."""
    return Metric(
        name=name,
        kind=kind,
        labels=tuple(label.strip() for label in labels.split(",") if label.strip()),
        help=help,
        unit=unit,
        owner=frozenset(owners),
        note=note,
        added=added,
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
_PCIE_NOTE = (
    "The query is costly (~21 ms each), so it runs on the slow interval and only with `gpu.slow_queries` on. NVML gives"
    " a rate, not a byte counter, hence a gauge; `bytes_per_second` is the one derived unit the catalogue allows."
)
_MIG_MEMORY_NOTE = (
    "Memory of the GPU instance a MIG device belongs to: compute instances of one GPU instance share it, so they show "
    "the same value. NVML gives no utilization per MIG device."
)
_MODEL_GPU_NOTE = (
    "The model's share of the GPU, sample by sample: the whole device where its pod holds it alone (the sidecar's "
    "GPUs; in the node agent, a GPU whose processes are one pod's), else by its processes' NVML per-process SM "
    "utilization, and on MIG by each instance's compute and memory share. Energy splits the device's energy counter "
    "by those shares, so the models on a GPU sum to its energy less what no model holds. Counted since the exporting "
    "process started (sidecar: `model` from its config; node agent: each pod named by its sidecar)."
)

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
        note=(
            "The streaming D is exact only up to this bound. It carries exactly the labels of "
            "`model_health_feature_ks_statistic`, so PromQL can combine the two one-to-one."
        ),
        added="project",
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
    _m(
        "model_health_feature_drift_pvalue",
        "gauge",
        _FW,
        "Smallest level at which the decision rule flags the feature (1 below every effect-size threshold).",
        note=(
            "The feature drifts when this is at most `model_health_drift_alpha_effective` of its model and window "
            "(or the feature's own `alpha` where smaller), so `bottomk` ranks features by how close they are to "
            "the line, and the ratio of the two says how far. It is a gated p-value: 1 while no statistic passes "
            "its effect-size threshold, else the statistic's p-value under the null (KS from `kstwo`, PSI and JS "
            "from a Chernoff bound: never below the true one). See docs/statistics.md#family-wise-control."
        ),
        added="project",
    ),
    _m("model_health_drifted_features_ratio", "gauge", _MW, "Share of the model's features that drift.", "ratio"),
    _m(
        "model_health_drift_alpha_effective",
        "gauge",
        _MW,
        "Per-feature level of the model's family-wise drift test: alpha_model over the features tested.",
        note=(
            "A stationary model flags any feature in one evaluation with a chance of at most `alpha_model` "
            "(`models[].thresholds.alpha_model`, 1% by default): Bonferroni over the features with at least "
            "`min_samples` present values in the window. Compare `model_health_feature_drift_pvalue` with it."
        ),
        added="project",
    ),
    _m("model_health_window_samples", "gauge", _MW, "Predictions in the window."),
    # Concept drift and performance.
    _m("model_health_prediction_psi", "gauge", _MW, "Population stability index of predictions vs reference."),
    _m("model_health_prediction_ks_statistic", "gauge", _MW, "Kolmogorov-Smirnov D of prediction scores vs reference."),
    _m("model_health_label_psi", "gauge", _MW, "Population stability index of ground-truth labels vs reference."),
    _m("model_health_performance", "gauge", f"{_MW}, metric", "Model performance over the window, by metric."),
    _m("model_health_performance_reference", "gauge", f"{_MV}, metric", "Model performance on the reference set."),
    _m("model_health_loss_ks_statistic", "gauge", _MW, "Kolmogorov-Smirnov D of per-record loss vs reference."),
    # Label-free performance estimation (CBPE over the window's score histogram).
    _m(
        "model_health_performance_estimated",
        "gauge",
        f"{_MW}, metric",
        "Performance over the window estimated from prediction scores alone, by metric.",
        note=(
            "Confidence-based estimate (docs/performance-estimation.md) of `roc_auc`, `accuracy`, `precision`, "
            "`recall` and `f1`, from the window's scores and the calibration stored in a profile built from scores and "
            "labels (binary: the score; multiclass: every class's score column, macro averages); absent for profiles "
            "without one (class predictions without scores, regression). Its band is the "
            "sibling `model_health_performance_estimated_stderr`: estimate ± k·stderr."
        ),
    ),
    _m(
        "model_health_performance_estimated_stderr",
        "gauge",
        f"{_MW}, metric",
        "Standard error of the label-free performance estimate.",
        note=(
            "The band of `model_health_performance_estimated`, as a sibling gauge with the same labels: σ/√n, the "
            "spread of the estimate over stationary windows of this size (σ fitted with the calibration). Not the "
            "spread of the realised metric, which is wider because labels are random too."
        ),
        added="project",
    ),
    _m(
        "model_health_performance_estimated_drop_detected",
        "gauge",
        f"{_MW}, metric",
        "1 when the estimate fell below the reference's by the drop rule, else 0.",
        note=(
            "The drop rule of `models[].performance_estimation`: reference − estimate > max(k·√(se² + se_ref²), "
            "min_drop) on a window of at least min_samples scored predictions (k = 3: about 0.13 % false alarms a "
            "metric). `ModelHealthConceptDrift` reads it while too few labels are joined to judge realised "
            "performance."
        ),
        added="project",
    ),
    # Version against version (a canary against its stable version), same window.
    _m(
        "model_health_version_prediction_psi",
        "gauge",
        "model, model_version, baseline_version, window",
        "Population stability index of the version's predictions against its baseline version's, same window.",
        note=(
            "`baseline_version` is the version this one is compared with (`models[].baseline_version`, or the "
            "earlier-listed of exactly two configured versions). Over the baseline's coarse bins; a candidate with "
            "its own profile is re-binned onto them (docs/rollouts.md)."
        ),
    ),
    _m(
        "model_health_version_prediction_ks_statistic",
        "gauge",
        "model, model_version, baseline_version, window",
        "Kolmogorov-Smirnov D of the version's prediction scores against its baseline version's, same window.",
        note=(
            "Over the union of both versions' fine edges; within the sum of the two windows' largest fine-bin "
            "shares of the exact D when the versions have different profiles (docs/rollouts.md)."
        ),
    ),
    _m(
        "model_health_version_prediction_drift_detected",
        "gauge",
        "model, model_version, baseline_version, window",
        "1 when the version's predictions drift from its baseline version's by the decision rule, else 0.",
        note=(
            "The version's own drift decision rule (thresholds and null quantiles, min_samples on the candidate's "
            "window) with the baseline version's window in the reference's place: what the rollout gates read."
        ),
        added="project",
    ),
    _m(
        "model_health_version_baseline_info",
        "info",
        "model, model_version, baseline_version",
        "The version a configured version is compared with; always 1.",
        note=(
            "One series per version that has a baseline: the pairing the version recording rules join on "
            "(`…_minus_baseline`, `…_over_baseline`), so a rollout gate needs only the model's name."
        ),
        added="project",
    ),
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
    _m(
        "model_health_labels_pending",
        "gauge",
        "model",
        "Predictions buffered awaiting their label.",
        note=(
            "How much the label join holds: predictions wait by `request_id` in a bounded, TTL-limited buffer until "
            "their label comes."
        ),
        added="project",
    ),
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
        note=(
            "Carries `model`, `model_version`, `model_namespace` and `task` (`classification`, `regression`, or empty "
            "when the profile does not say)."
        ),
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
        note=_PCIE_NOTE,
        added="project",
    ),
    _m(
        "model_health_gpu_pcie_receive_bytes_per_second",
        "gauge",
        _GPU,
        "PCIe throughput into the GPU, measured by NVML over 20 ms.",
        "bytes_per_second",
        owners=_GPU_OWNERS,
        note=_PCIE_NOTE,
        added="project",
    ),
    _m(
        "model_health_gpu_process_utilization_ratio",
        "gauge",
        "gpu_uuid, pid, pod_uid, container_id",
        "Share of the last sampling window one process kept the GPU's SMs busy.",
        "ratio",
        owners=_GPU_OWNERS,
        note=(
            "Share of the last sampling window the process kept the SMs busy, with the labels of "
            '`model_health_gpu_process_memory_used_bytes`. Absent when NVML has no sample for the process ("Not Found":'
            " it ran nothing) and on MIG-enabled GPUs (not supported)."
        ),
        added="project",
    ),
    _m(
        "model_health_gpu_mig_enabled",
        "gauge",
        _GPU,
        "1 when the GPU is in MIG mode, else 0.",
        owners=_GPU_OWNERS,
        note=(
            "Absent where NVML cannot tell. On a MIG GPU, memory is reported per GPU instance "
            "(`model_health_gpu_mig_memory_*`) and per-process utilization is absent."
        ),
        added="project",
    ),
    _m(
        "model_health_gpu_mig_memory_used_bytes",
        "gauge",
        "gpu, gpu_uuid, mig_uuid, gpu_instance_id, compute_instance_id",
        "Memory in use in the GPU instance of a MIG device.",
        "bytes",
        owners=_GPU_OWNERS,
        note=_MIG_MEMORY_NOTE,
        added="project",
    ),
    _m(
        "model_health_gpu_mig_memory_total_bytes",
        "gauge",
        "gpu, gpu_uuid, mig_uuid, gpu_instance_id, compute_instance_id",
        "Memory of the GPU instance of a MIG device.",
        "bytes",
        owners=_GPU_OWNERS,
        note=_MIG_MEMORY_NOTE,
        added="project",
    ),
    # GPU cost per model: the device's energy and time, split among the models on it.
    _m(
        "model_health_model_gpu_energy_joules_total",
        "counter",
        "model, model_version, gpu_uuid",
        "GPU energy attributed to the model version on this GPU.",
        "joules",
        owners=_GPU_OWNERS,
        note=_MODEL_GPU_NOTE,
    ),
    _m(
        "model_health_model_gpu_seconds_total",
        "counter",
        "model, model_version, gpu_uuid",
        "GPU time attributed to the model version on this GPU (a whole GPU for a second is 1).",
        "seconds",
        owners=_GPU_OWNERS,
        note=_MODEL_GPU_NOTE,
    ),
    # The pipeline itself.
    _m(
        "model_health_records_consumed_total",
        "counter",
        "topic, format",
        "Records consumed and decoded.",
        note=(
            "In scale-out it is exported by the owner of each source partition's pipeline summaries, not by the replica"
            " that happens to consume it, so it stays exact across crashes: its `sum()` over replicas equals a single "
            "process's."
        ),
    ),
    _m(
        "model_health_records_rejected_total",
        "counter",
        "topic, reason",
        "Records refused and sent to the dead-letter topic, by reason.",
        "",
        owners=_SERVING,
        note=(
            "Every record it counts is the one written to the dead-letter topic, so no separate dead-lettered counter "
            "exists. The sidecar counts each record its ingest refuses here too, with the topic it was bound for. In "
            "scale-out it is exported by the owner of each source partition's pipeline summaries, not by the replica "
            "that happens to consume it, so it stays exact across crashes: its `sum()` over replicas equals a single "
            "process's."
        ),
    ),
    _m(
        "model_health_records_duplicate_total",
        "counter",
        "topic",
        "Records dropped because the same inference (model and request id) was already taken.",
        owners=_SERVING,
        note=(
            "A client retrying after a 5xx whose records Kafka already had, or a producer retrying without "
            "idempotence, writes one inference twice; the copy is dropped before it is counted anywhere. The "
            "aggregator remembers the last `dedup.max_ids` request ids per model (single mode: over every partition; "
            "scale-out: within one source range of one partition), and pairs KServe/Seldon halves once (per model, "
            "both modes); the sidecar does not send again records whose delivery Kafka already confirmed. Which "
            "copies each place can catch: the producers page of the docs."
        ),
    ),
    _m(
        "model_health_records_late_total",
        "counter",
        "model",
        "Records older than the allowed lateness, left out of every window.",
        note=(
            "Their time slot ended before the model's newest event time (as of the batch before) minus "
            "allowed_lateness_seconds. They decoded fine, so they are counted here and dropped from windows "
            "rather than dead-lettered."
        ),
        added="project",
    ),
    _m("model_health_consumer_lag_records", "gauge", "topic, partition", "Records between consumer and log end."),
    _m("model_health_evaluation_duration_seconds", "histogram", "", "Time one evaluation pass took.", "seconds"),
    _m(
        "model_health_evaluation_last_success_timestamp_seconds",
        "gauge",
        "",
        "When the last evaluation pass succeeded.",
        "seconds",
        note=(
            "Alerts compare it with `time()`, which catches an evaluation loop that stopped as well as one that keeps "
            "failing."
        ),
        added="project",
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
        note=(
            "Scale-out (`kafka.mode: scale_out`), exported by the replica that owns the summaries partition: partial "
            "summaries merged into the models it owns. A replay after a handover merges them again, so this restarts "
            "like a process restart would."
        ),
        added="project",
    ),
    _m(
        "model_health_summaries_duplicates_total",
        "counter",
        "",
        "Partial summaries skipped because their source range was already merged.",
        note=(
            "Scale-out, exported by the replica that owns the summaries partition: partial summaries skipped because "
            "their source range was already merged, i.e. re-publications after a replica died mid-flush."
        ),
        added="project",
    ),
    _m(
        "model_health_summaries_overlaps_total",
        "counter",
        "",
        "Partial summaries whose source range overlapped one already merged (refused).",
        note=(
            "Scale-out, exported by the replica that owns the summaries partition: partial summaries whose source range"
            " overlaps one already merged; refused (never merged twice) and logged. Stage 1's fence makes it "
            "impossible: non-zero means a producer outside the protocol wrote to the summaries topic — worth an alert."
        ),
        added="project",
    ),
    _m("model_health_build_info", "info", "version", "Build of the running component; always 1.", "", owners=_ALL),
    # The sidecar's HTTP ingest.
    _m(
        "model_health_ingest_requests_rejected_total",
        "counter",
        "reason",
        "Ingest requests refused with a 4xx or 503, by reason.",
        owners=_SIDECAR,
        note=(
            "The sidecar's HTTP ingest answered 4xx or 503. `reason`: `not_found`, `method`, `unsupported_media_type`, "
            "`too_large`, `bad_body` (a body that ended early or broken chunked encoding); the 503s `queue_full`, "
            "`kafka_unavailable`, `delivery_timeout` and `produce_failed` (the last three when answers wait for Kafka, "
            "`queue.acknowledge: delivered`); or the decoder's reason for the first record or event it refused "
            "(`invalid_json`, `invalid_cloudevent`, `missing_field`, …). Refused records are also counted, each, in "
            "`model_health_records_rejected_total{topic,reason}` with the topic they were bound for."
        ),
        added="project",
    ),
    _m(
        "model_health_inference_unpaired_total",
        "counter",
        "side, reason",
        "Logged inference requests or responses that left the join buffer without their partner.",
        owners=_SIDECAR,
        note=(
            "KServe logger events that left the sidecar's request/response join buffer without their partner: `side` "
            "`request` or `response`; `reason` `expired` (waited past the TTL), `evicted` (the buffer was full) or "
            "`replaced` (a newer event of the same side came with the same id)."
        ),
        added="project",
    ),
    _m(
        "model_health_ingest_queue_records",
        "gauge",
        "",
        "Records accepted by ingest and not yet handed to Kafka.",
        owners=_SIDECAR,
        note=(
            "Records the sidecar's ingest accepted and has not yet handed to Kafka; at `queue.max_records` ingest "
            "answers 503."
        ),
        added="project",
    ),
    # The retraining relay.
    _m(
        "model_health_relay_notifications_total",
        "counter",
        "",
        "Alertmanager notifications accepted.",
        owners=_RELAY,
        note=(
            "Each webhook call from Alertmanager the retraining relay accepted; the alerts in it are then delivered or "
            "counted in `model_health_relay_skipped_total`."
        ),
        added="project",
    ),
    _m(
        "model_health_relay_requests_rejected_total",
        "counter",
        "reason",
        "Requests to the Alertmanager endpoint refused with a 4xx, by reason.",
        owners=_RELAY,
        note=(
            "Requests to the relay's `/v1/alertmanager` refused with a 4xx. `reason`: `unauthorized`, `method`, "
            "`too_large`, `bad_body` (broken framing, cut short), `bad_json`, `bad_payload`."
        ),
        added="project",
    ),
    _m(
        "model_health_relay_skipped_total",
        "counter",
        "reason",
        "Alerts that caused no delivery, by reason.",
        owners=_RELAY,
        note=(
            "Alerts that caused no retraining delivery. `reason`: `resolved`, `other_alert`, `no_model` (no model "
            "label), `duplicate` (same fingerprint and startsAt already handled), `cooldown` (the model had a request "
            "within the cooldown)."
        ),
        added="project",
    ),
    _m(
        "model_health_relay_deliveries_total",
        "counter",
        "target, outcome",
        "Finished retraining deliveries, by target kind and outcome (delivered or failed).",
        owners=_RELAY,
        note=(
            "Finished retraining deliveries. `target` is the target kind (`generic`, `argo`, `kubeflow` or `github`); "
            "`outcome` `delivered` or `failed` (a permanent 4xx, or attempts exhausted)."
        ),
        added="project",
    ),
    _m(
        "model_health_relay_retries_total",
        "counter",
        "target",
        "Delivery attempts after the first.",
        owners=_RELAY,
        note=(
            "Retraining delivery attempts after the first, by target kind (`generic`, `argo`, `kubeflow` or `github`)."
        ),
        added="project",
    ),
    _m(
        "model_health_relay_deliveries_pending",
        "gauge",
        "target",
        "Deliveries accepted and durably queued but not yet finished.",
        owners=_RELAY,
        note=(
            "Retraining deliveries accepted but not yet finished, held durably in the relay's state directory; by "
            "target kind (`generic`, `argo`, `kubeflow` or `github`)."
        ),
        added="project",
    ),
    # The sidecar injector.
    _m(
        "model_health_injector_admissions_total",
        "counter",
        "outcome",
        "AdmissionReviews answered by the sidecar injector, by outcome.",
        owners=("injector",),
        note=(
            "AdmissionReviews the sidecar injector answered. `outcome`: `injected`, `already_injected` (reinvocation), "
            "`opted_out`, `not_selected`, `refused` (no model name, a port or name clash, host network; the reason is "
            "in the response's warnings), `not_applicable` (not a pod CREATE), `error` (internal error; the pod was "
            "admitted unpatched) and `malformed` (a 4xx: not an AdmissionReview)."
        ),
        added="project",
    ),
    _m(
        "model_health_injector_certificate_expiry_timestamp_seconds",
        "gauge",
        "",
        "When the injector's serving certificate expires.",
        "seconds",
        owners=("injector",),
        note=(
            "When the injector's serving certificate in use expires. With `failurePolicy: Ignore` an expired "
            "certificate would silently stop injection, so alert on it."
        ),
        added="project",
    ),
    _m(
        "model_health_injector_certificate_reloads_total",
        "counter",
        "result",
        "Rotated serving certificates loaded or refused, by result.",
        owners=("injector",),
        note=(
            "Rotated certificate files the injector picked up (`loaded`) or refused (`failed`: the old pair keeps "
            "serving)."
        ),
        added="project",
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


def markdown_table(notes: bool = False) -> str:
    """The catalogue as the README's Markdown table (a test keeps the README equal to it);
    ``notes`` adds a last column with each metric's note.

    >>> markdown_table().splitlines()[0]
    '| metric | type | labels | unit | exposed by | meaning |'
    >>> markdown_table(notes=True).splitlines()[0]
    '| metric | type | labels | unit | exposed by | meaning | note |'
    """
    header = "| metric | type | labels | unit | exposed by | meaning |" + (" note |" if notes else "")
    rows = [header, "| --- " * header.count(" | ") + "| --- |"]
    for metric in CATALOGUE:
        row = (
            f"| `{metric.name}` | {metric.kind} | {', '.join(metric.labels) or '—'} | {metric.unit or '—'} "
            f"| {', '.join(sorted(metric.owner))} | {metric.help} |"
        )
        if notes:
            row += f" {_cell(metric.note) or '—'} |"
        rows.append(row)
    return "\n".join(rows) + "\n"


def _cell(text: str) -> str:
    """``text`` inside a Markdown table cell, where a bare ``|`` would end the cell."""
    return text.replace("|", "\\|")


def additions() -> tuple[Metric, ...]:
    """The metrics this project added beyond the contract's table, in catalogue order."""
    return tuple(metric for metric in CATALOGUE if metric.added == "project")


def additions_markdown() -> str:
    """The project's additions as Markdown, one entry each with its type, labels and note.

    >>> additions_markdown().splitlines()[0].split(":")[0]
    '- `model_health_feature_ks_error_bound` (gauge; model, model_version, feature, window)'
    """
    return "".join(
        f"- `{metric.name}` ({metric.kind}; {', '.join(metric.labels) or 'no labels'}): {metric.help} {metric.note}\n"
        for metric in additions()
    )
