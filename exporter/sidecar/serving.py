"""The sidecar's serving metrics: counted as records arrive, rendered at scrape time.

Ingest threads update :class:`ServingStats` under its lock; a scrape takes an immutable
:class:`ServingSnapshot` copy and renders it with catalogue-typed families
(:class:`SidecarCollector`), so a scrape never waits on decoding or Kafka.

A prediction counts once ingest has taken it into the queue, whether or not Kafka later
takes it: these metrics describe the model server's traffic (requests, errors, latency,
freshness), and a request refused with 503 is not counted because its client sends it
again. What happens to records on the way to Kafka is counted apart, in
``model_health_records_rejected_total``.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
from prometheus_client.core import Metric

from exporter.exposition import CatalogueCollector
from exporter.pipeline.fold import by_model_version
from exporter.pipeline.serving import error_count, latency_seconds
from exporter.pipeline.snapshot import HistogramState

ModelKey = tuple[str, str]  # (model, model_version); an unknown version is ""


@dataclass(frozen=True)
class ServingSnapshot:
    predictions: dict[ModelKey, int] = field(default_factory=dict)
    errors: dict[ModelKey, int] = field(default_factory=dict)
    latency: dict[ModelKey, HistogramState] = field(default_factory=dict)
    last_prediction: dict[ModelKey, float] = field(default_factory=dict)
    requests_rejected: dict[str, int] = field(default_factory=dict)
    records_rejected: dict[tuple[str, str], int] = field(default_factory=dict)
    records_duplicate: dict[str, int] = field(default_factory=dict)
    unpaired: dict[tuple[str, str], int] = field(default_factory=dict)


class ServingStats:
    """Thread-safe totals of what ingest saw; ``model`` starts at zero so rates work at once."""

    def __init__(self, latency_bounds: tuple[float, ...], model: ModelKey | None = None) -> None:
        self._bounds = tuple(float(b) for b in latency_bounds)
        self._lock = threading.Lock()
        self._predictions: Counter[ModelKey] = Counter()
        self._errors: Counter[ModelKey] = Counter()
        self._latency: dict[ModelKey, HistogramState] = {}
        self._last: dict[ModelKey, float] = {}
        self._requests_rejected: Counter[str] = Counter()
        self._records_rejected: Counter[tuple[str, str]] = Counter()
        self._records_duplicate: Counter[str] = Counter()
        self._unpaired: dict[tuple[str, str], int] = {}
        if model is not None:
            self._predictions[model] = 0
            self._errors[model] = 0
            self._latency[model] = HistogramState.empty(self._bounds)

    def observe(self, table: pa.Table) -> None:
        """Count one decoded prediction table (the :mod:`exporter.records` shape), by the
        serving rules every component shares (:mod:`exporter.pipeline.serving`)."""
        if table.num_rows == 0:
            return
        groups = by_model_version(table)
        with self._lock:
            for (model, version), part in groups:
                key = (model, version or "")
                self._predictions[key] += part.num_rows
                self._errors[key] += error_count(part)
                latency = latency_seconds(part)
                self._latency[key] = (self._latency.get(key) or HistogramState.empty(self._bounds)).observe_many(
                    latency
                )
                newest = float(np.nanmax(part.column("timestamp").to_numpy(zero_copy_only=False).astype(np.float64)))
                if newest > self._last.get(key, -np.inf):
                    self._last[key] = newest

    def request_refused(self, reason: str) -> None:
        with self._lock:
            self._requests_rejected[reason] += 1

    def records_refused(self, topic: str, reason: str, count: int = 1) -> None:
        if count <= 0:
            return
        with self._lock:
            self._records_rejected[(topic, reason)] += count

    def records_duplicate(self, topic: str, count: int = 1) -> None:
        """Records not sent again: the same inference was already taken (see exporter.pipeline.dedup)."""
        if count <= 0:
            return
        with self._lock:
            self._records_duplicate[topic] += count

    def set_unpaired(self, counts: dict[tuple[str, str], int]) -> None:
        """The join buffer's totals of halves that left unpaired, keyed (side, reason)."""
        with self._lock:
            self._unpaired = dict(counts)

    def snapshot(self) -> ServingSnapshot:
        with self._lock:
            return ServingSnapshot(
                predictions=dict(self._predictions),
                errors=dict(self._errors),
                latency=dict(self._latency),
                last_prediction=dict(self._last),
                requests_rejected=dict(self._requests_rejected),
                records_rejected=dict(self._records_rejected),
                records_duplicate=dict(self._records_duplicate),
                unpaired=dict(self._unpaired),
            )


class SidecarCollector(CatalogueCollector):
    """Renders the sidecar's serving families from the catalogue and a fresh :class:`ServingSnapshot`.

    Registered beside the role's build_info collector and, with ``gpu.mode`` on, the GPU collector.
    """

    METRICS = (
        "model_health_predictions_total",
        "model_health_prediction_errors_total",
        "model_health_request_duration_seconds",
        "model_health_last_prediction_timestamp_seconds",
        "model_health_records_rejected_total",
        "model_health_records_duplicate_total",
        "model_health_ingest_requests_rejected_total",
        "model_health_inference_unpaired_total",
        "model_health_ingest_queue_records",
    )

    def __init__(self, stats: ServingStats, queued: Callable[[], int]) -> None:
        self._stats = stats
        self._queued = queued

    def collect(self) -> Iterator[Metric]:
        snap = self._stats.snapshot()
        out = self.families()
        for (model, version), count in sorted(snap.predictions.items()):
            out.add("model_health_predictions_total", [model, version], count)
        for (model, version), count in sorted(snap.errors.items()):
            out.add("model_health_prediction_errors_total", [model, version], count)
        for (model, version), state in sorted(snap.latency.items()):
            out.histogram("model_health_request_duration_seconds", [model, version], state)
        for (model, version), when in sorted(snap.last_prediction.items()):
            out.add("model_health_last_prediction_timestamp_seconds", [model, version], when)
        for (topic, reason), count in sorted(snap.records_rejected.items()):
            out.add("model_health_records_rejected_total", [topic, reason], count)
        for topic, count in sorted(snap.records_duplicate.items()):
            out.add("model_health_records_duplicate_total", [topic], count)
        for reason, count in sorted(snap.requests_rejected.items()):
            out.add("model_health_ingest_requests_rejected_total", [reason], count)
        for (side, reason), count in sorted(snap.unpaired.items()):
            out.add("model_health_inference_unpaired_total", [side, reason], count)
        out.add("model_health_ingest_queue_records", [], self._queued())
        yield from out
