"""Prometheus collector that renders the aggregator's current snapshot at scrape time.

Every family comes from the metric catalogue through :mod:`exporter.exposition` (name, type,
help, labels); ``model_health_build_info`` is the role's own
:class:`~exporter.exposition.BuildInfoCollector`. The values come from one immutable
:class:`~exporter.pipeline.snapshot.Snapshot`. A scrape builds families from numbers already
computed: no evaluation, folding, Kafka or disk I/O happens here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import Metric

from detectors.drift_statistics import DRIFT_STATISTICS
from exporter.exposition import CatalogueCollector, Families
from exporter.pipeline.snapshot import HistogramState, Snapshot, WindowResult

# Statistic attribute of ColumnDrift → the feature metric that exports it: the table's exported rows.
_FEATURE_METRICS = tuple((s.attribute, s.metric) for s in DRIFT_STATISTICS if s.metric is not None)
ESTIMATED_METRICS = (
    "model_health_performance_estimated",
    "model_health_performance_estimated_stderr",
    "model_health_performance_estimated_drop_detected",
)
VERSION_METRICS = (
    "model_health_version_prediction_psi",
    "model_health_version_prediction_ks_statistic",
    "model_health_version_prediction_drift_detected",
    "model_health_version_baseline_info",
)


def add_estimated(out: Families, labels: list[str], result: WindowResult) -> None:
    """The window's label-free estimate, its standard error and the drop verdict, per metric."""
    if result.estimated is None:
        return
    for metric, value in sorted(result.estimated.metrics.items()):
        out.add("model_health_performance_estimated", [*labels, metric], value)
        out.add("model_health_performance_estimated_stderr", [*labels, metric], result.estimated.stderr.get(metric))
    for metric, dropped in sorted(result.estimated_dropped.items()):
        out.add("model_health_performance_estimated_drop_detected", [*labels, metric], int(dropped))


def add_versus_baseline(out: Families, labels: list[str], result: WindowResult) -> None:
    """The window's predictions against the baseline version's (``labels`` end in baseline, window)."""
    comparison = result.versus_baseline
    if comparison is None:
        return
    drift = comparison.drift
    out.add("model_health_version_prediction_psi", labels, drift.psi)
    out.add("model_health_version_prediction_ks_statistic", labels, drift.ks_statistic)
    out.add("model_health_version_prediction_drift_detected", labels, int(drift.drift))


class SnapshotCollector(CatalogueCollector):
    """Yields the aggregator's metric families from ``current()``, the latest snapshot."""

    METRICS = (
        "model_health_model_info",
        "model_health_model_trained_timestamp_seconds",
        "model_health_reference_created_timestamp_seconds",
        "model_health_last_prediction_timestamp_seconds",
        "model_health_last_label_timestamp_seconds",
        "model_health_performance_reference",
        "model_health_window_samples",
        "model_health_drifted_features_ratio",
        "model_health_drift_alpha_effective",
        *(name for _, name in _FEATURE_METRICS),
        "model_health_feature_drift_detected",
        "model_health_prediction_psi",
        "model_health_prediction_ks_statistic",
        "model_health_label_psi",
        "model_health_loss_ks_statistic",
        "model_health_performance",
        *ESTIMATED_METRICS,
        *VERSION_METRICS,
        "model_health_predictions_total",
        "model_health_prediction_errors_total",
        "model_health_labels_joined_total",
        "model_health_labels_unmatched_total",
        "model_health_labels_pending",
        "model_health_records_late_total",
        "model_health_records_consumed_total",
        "model_health_records_rejected_total",
        "model_health_records_duplicate_total",
        "model_health_consumer_lag_records",
        "model_health_request_duration_seconds",
        "model_health_evaluation_duration_seconds",
        "model_health_checkpoint_last_success_timestamp_seconds",
        "model_health_evaluation_last_success_timestamp_seconds",
    )

    def __init__(
        self,
        current: Callable[[], Snapshot],
        latency: Callable[[], dict[tuple[str, str], HistogramState]] | None = None,
    ) -> None:
        self._current = current
        self._latency = latency

    def collect(self) -> Iterator[Metric]:
        snapshot = self._current()
        out = self.families()
        for model in snapshot.models:
            mv = [model.model, model.model_version]
            out.add("model_health_model_info", [*mv, model.model_namespace, model.task], 1)
            out.add("model_health_model_trained_timestamp_seconds", mv, model.trained_at)
            out.add("model_health_reference_created_timestamp_seconds", mv, model.reference_created_at)
            out.add("model_health_last_prediction_timestamp_seconds", mv, model.last_prediction_at)
            out.add("model_health_last_label_timestamp_seconds", [model.model], model.last_label_at)
            for metric, value in sorted(model.reference_performance.items()):
                out.add("model_health_performance_reference", [*mv, metric], value)
            for window, result in model.windows.items():
                mvw = [*mv, window]
                out.add("model_health_window_samples", mvw, result.samples)
                out.add("model_health_drifted_features_ratio", mvw, result.drifted_ratio)
                out.add("model_health_drift_alpha_effective", mvw, result.alpha_effective)
                for feature, drift in result.features.items():
                    labels = [*mv, feature, window]
                    for attribute, name in _FEATURE_METRICS:
                        out.add(name, labels, getattr(drift, attribute))
                    out.add("model_health_feature_drift_detected", labels, int(drift.drift))
                if result.prediction is not None:
                    out.add("model_health_prediction_psi", mvw, result.prediction.psi)
                    out.add("model_health_prediction_ks_statistic", mvw, result.prediction.ks_statistic)
                if result.label is not None:
                    out.add("model_health_label_psi", mvw, result.label.psi)
                if result.loss is not None:
                    out.add("model_health_loss_ks_statistic", mvw, result.loss.ks_statistic)
                for metric, value in sorted(result.performance.items()):
                    out.add("model_health_performance", [*mvw, metric], value)
                add_estimated(out, mvw, result)
                if model.baseline_version is not None:
                    add_versus_baseline(out, [*mv, model.baseline_version, window], result)
            if model.baseline_version is not None:
                out.add("model_health_version_baseline_info", [*mv, model.baseline_version], 1)
        pipeline = snapshot.pipeline
        for (model_name, version), count in pipeline.predictions.items():
            out.add("model_health_predictions_total", [model_name, version], count)
        for (model_name, version), count in pipeline.prediction_errors.items():
            out.add("model_health_prediction_errors_total", [model_name, version], count)
        for model_name, count in pipeline.labels_joined.items():
            out.add("model_health_labels_joined_total", [model_name], count)
        for model_name, count in pipeline.labels_unmatched.items():
            out.add("model_health_labels_unmatched_total", [model_name], count)
        for model_name, count in pipeline.labels_pending.items():
            out.add("model_health_labels_pending", [model_name], count)
        for model_name, count in pipeline.late.items():
            out.add("model_health_records_late_total", [model_name], count)
        for (topic, fmt), count in pipeline.consumed.items():
            out.add("model_health_records_consumed_total", [topic, fmt], count)
        for (topic, reason), count in pipeline.rejected.items():
            out.add("model_health_records_rejected_total", [topic, reason], count)
        for topic, count in pipeline.duplicates.items():
            out.add("model_health_records_duplicate_total", [topic], count)
        for (topic, partition), lag in pipeline.consumer_lag.items():
            out.add("model_health_consumer_lag_records", [topic, str(partition)], lag)
        if self._latency is not None:
            for (model_name, version), state in self._latency().items():
                out.histogram("model_health_request_duration_seconds", [model_name, version], state)
        out.histogram("model_health_evaluation_duration_seconds", [], snapshot.evaluation_duration)
        out.add("model_health_checkpoint_last_success_timestamp_seconds", [], snapshot.checkpoint_last_success)
        out.add("model_health_evaluation_last_success_timestamp_seconds", [], snapshot.evaluation_last_success)
        yield from out
