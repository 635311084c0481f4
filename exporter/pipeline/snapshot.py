"""The immutable snapshot that evaluation publishes and collectors render at scrape time.

Evaluation builds a new :class:`Snapshot` and swaps one reference; a scrape reads
whatever snapshot is current, so it never waits on evaluation, folding or I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from detectors.compare import ColumnDrift
from detectors.decision import DriftRule
from detectors.performance_estimation import EstimatedPerformance
from detectors.profile import ReferenceProfile
from detectors.summary import ColumnSummary
from detectors.version_comparison import VersionComparison
from exporter.pipeline.buckets import Bucket


@dataclass(frozen=True)
class WindowSummaries:
    """What the drift report draws for one window, held by reference, never copied.

    ``reference`` is the model's profile and ``current`` the window's summed
    :class:`~exporter.pipeline.buckets.Bucket`, the one evaluation compared the reference
    with; ``rule_for`` gives each feature's decision rule (its thresholds). Summaries are
    immutable values: a later fold replaces a ring's buckets instead of changing them, so
    the HTTP thread can chart these without the state lock while the consumer goes on.
    """

    reference: ReferenceProfile
    current: Bucket
    rule_for: Callable[[str], DriftRule]


@dataclass(frozen=True)
class WindowResult:
    samples: int
    features: dict[str, ColumnDrift]
    prediction: ColumnDrift | None = None
    label: ColumnDrift | None = None
    loss: ColumnDrift | None = None
    performance: dict[str, float] = field(default_factory=dict)
    labels_joined: int = 0
    # Label-free estimate of the window's performance (a profile with a binary calibration),
    # and per metric whether it fell below the reference by the model's drop rule.
    estimated: EstimatedPerformance | None = None
    estimated_dropped: dict[str, bool] = field(default_factory=dict)
    # The window's prediction summary (what the version comparison reads) and, for a version
    # with a baseline, its predictions against the baseline version's over the same window.
    prediction_summary: ColumnSummary | None = None
    versus_baseline: VersionComparison | None = None
    summaries: WindowSummaries | None = None  # what the drift report charts; None in hand-built results
    # The family-wise level each feature was tested at (detectors.familywise); None: no features.
    alpha_effective: float | None = None

    @property
    def drifted_ratio(self) -> float:
        if not self.features:
            return 0.0
        return sum(1 for d in self.features.values() if d.drift) / len(self.features)


@dataclass(frozen=True)
class ModelSnapshot:
    model: str
    model_version: str
    model_namespace: str
    windows: dict[str, WindowResult]
    reference_performance: dict[str, float] = field(default_factory=dict)
    trained_at: float | None = None
    reference_created_at: float | None = None
    last_prediction_at: float | None = None
    last_label_at: float | None = None
    task: str = ""
    baseline_version: str | None = None  # the version this one's predictions are compared with


@dataclass(frozen=True)
class HistogramState:
    """Cumulative bucket counts of an observed duration, rendered as a histogram."""

    bounds: tuple[float, ...]
    counts: tuple[int, ...]  # per bound, cumulative, then +Inf last
    total: float = 0.0

    @classmethod
    def empty(cls, bounds: tuple[float, ...]) -> HistogramState:
        return cls(bounds, (0,) * (len(bounds) + 1), 0.0)

    def observe(self, value: float) -> HistogramState:
        counts = tuple(
            c + (1 if i == len(self.bounds) or value <= self.bounds[i] else 0) for i, c in enumerate(self.counts)
        )
        return HistogramState(self.bounds, counts, self.total + value)

    def observe_many(self, values: np.ndarray) -> HistogramState:
        """Every value observed at once (equal to observing them one by one, up to float rounding of the sum).

        >>> HistogramState.empty((1.0, 2.0)).observe_many(np.array([0.5, 1.5, 9.0])).counts
        (1, 2, 3)
        """
        if values.size == 0:
            return self
        below = np.searchsorted(np.sort(values), np.asarray(self.bounds), side="right").tolist()
        counts = tuple(int(old) + int(new) for old, new in zip(self.counts, [*below, values.size]))
        return HistogramState(self.bounds, counts, self.total + float(values.sum()))

    def __add__(self, other: HistogramState) -> HistogramState:
        if self.bounds != other.bounds:
            raise ValueError("histograms with different buckets do not add")
        counts = tuple(int(a) + int(b) for a, b in zip(self.counts, other.counts))
        return HistogramState(self.bounds, counts, self.total + other.total)

    @property
    def count(self) -> int:
        return self.counts[-1]


@dataclass(frozen=True)
class PipelineState:
    """Counters and gauges of the consuming pipeline itself."""

    consumed: dict[tuple[str, str], int] = field(default_factory=dict)  # (topic, format)
    rejected: dict[tuple[str, str], int] = field(default_factory=dict)  # (topic, reason)
    duplicates: dict[str, int] = field(default_factory=dict)  # topic → copies of an inference dropped
    late: dict[str, int] = field(default_factory=dict)  # model
    predictions: dict[tuple[str, str], int] = field(default_factory=dict)  # (model, version)
    prediction_errors: dict[tuple[str, str], int] = field(default_factory=dict)
    labels_joined: dict[str, int] = field(default_factory=dict)
    labels_unmatched: dict[str, int] = field(default_factory=dict)
    labels_pending: dict[str, int] = field(default_factory=dict)
    consumer_lag: dict[tuple[str, int], int] = field(default_factory=dict)


EVALUATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)  # seconds


@dataclass(frozen=True)
class Snapshot:
    evaluated_at: float
    models: tuple[ModelSnapshot, ...] = ()
    pipeline: PipelineState = PipelineState()
    evaluation_duration: HistogramState = HistogramState.empty(EVALUATION_BUCKETS)
    checkpoint_last_success: float | None = None
    evaluation_last_success: float | None = None
