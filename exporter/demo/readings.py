"""What the demo shows, read back from the aggregator's and the sidecar's ``/metrics`` text.

The live view scrapes ``/metrics`` like Prometheus would, so what a user sees in the
terminal is exactly what their monitoring would see.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client.parser import text_string_to_metric_families

if TYPE_CHECKING:
    from exporter.demo.prometheus import PrometheusStatus

Labels = dict[str, str]


def parse_samples(text: str) -> dict[str, list[tuple[Labels, float]]]:
    """Every sample of a text exposition, by sample name.

    >>> parse_samples('# TYPE x gauge\\nx{a="1"} 2.0\\n')["x"]
    [({'a': '1'}, 2.0)]
    """
    out: dict[str, list[tuple[Labels, float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    return out


@dataclass(frozen=True)
class FeatureReading:
    feature: str
    psi: float
    ks: float
    drift: bool


@dataclass(frozen=True)
class Readings:
    """One scrape, reduced to what the demo's view and its headless check need."""

    predictions: float = 0.0
    errors: float = 0.0
    labels_joined: float = 0.0
    rejected: float = 0.0
    window_samples: float = 0.0
    drifted_ratio: float = 0.0
    prediction_psi: float = math.nan
    features: tuple[FeatureReading, ...] = ()
    performance: dict[str, tuple[float, float]] = field(default_factory=dict)
    gpu_utilization: float = math.nan
    gpu_memory_used: float = math.nan
    gpu_memory_total: float = math.nan

    @property
    def drifted(self) -> frozenset[str]:
        return frozenset(f.feature for f in self.features if f.drift)

    def top(self, count: int) -> tuple[FeatureReading, ...]:
        """The ``count`` features furthest from the reference, drifting ones first."""
        ranked = sorted(self.features, key=lambda f: (not f.drift, -_or_zero(f.psi)))
        return tuple(ranked[:count])


@dataclass(frozen=True)
class Frame:
    """One refresh of the view: the aggregator's and the sidecar's ``/metrics``, and Prometheus.

    The sidecar's readings carry what it served (``predictions``, ``rejected``) and the GPU
    its collector samples; ``prometheus`` is None where no Prometheus runs or answers.
    """

    aggregator: Readings = field(default_factory=Readings)
    sidecar: Readings = field(default_factory=Readings)
    prometheus: PrometheusStatus | None = None


def readings(text: str, model: str, window: str) -> Readings:
    """Reduce a scrape of ``/metrics`` to :class:`Readings` for one model and window."""
    samples = parse_samples(text)

    def values(name: str, **match: str) -> list[tuple[Labels, float]]:
        return [
            (labels, value)
            for labels, value in samples.get(name, [])
            if all(labels.get(k) == v for k, v in match.items())
        ]

    def total(name: str, **match: str) -> float:
        return sum(value for _, value in values(name, **match))

    def one(name: str, **match: str) -> float:
        found = values(name, **match)
        return found[0][1] if found else math.nan

    per_feature: dict[str, dict[str, float]] = {}
    for metric, key in (
        ("model_health_feature_psi", "psi"),
        ("model_health_feature_ks_statistic", "ks"),
        ("model_health_feature_drift_detected", "drift"),
    ):
        for labels, value in values(metric, model=model, window=window):
            per_feature.setdefault(labels["feature"], {})[key] = value
    features = tuple(
        FeatureReading(name, got.get("psi", math.nan), got.get("ks", math.nan), got.get("drift", 0.0) == 1.0)
        for name, got in sorted(per_feature.items())
    )
    reference = {labels["metric"]: value for labels, value in values("model_health_performance_reference", model=model)}
    performance = {
        labels["metric"]: (value, reference.get(labels["metric"], math.nan))
        for labels, value in values("model_health_performance", model=model, window=window)
    }
    return Readings(
        predictions=total("model_health_predictions_total", model=model),
        errors=total("model_health_prediction_errors_total", model=model),
        labels_joined=total("model_health_labels_joined_total", model=model),
        rejected=total("model_health_records_rejected_total"),
        window_samples=one("model_health_window_samples", model=model, window=window),
        drifted_ratio=one("model_health_drifted_features_ratio", model=model, window=window),
        prediction_psi=one("model_health_prediction_psi", model=model, window=window),
        features=features,
        performance=performance,
        gpu_utilization=_mean(v for _, v in values("model_health_gpu_utilization_ratio")),
        gpu_memory_used=sum(v for _, v in values("model_health_gpu_memory_used_bytes")) or math.nan,
        gpu_memory_total=sum(v for _, v in values("model_health_gpu_memory_total_bytes")) or math.nan,
    )


def _mean(values: object) -> float:
    items = list(values)  # type: ignore[call-overload]
    return sum(items) / len(items) if items else math.nan


def _or_zero(value: float) -> float:
    return 0.0 if math.isnan(value) else value
