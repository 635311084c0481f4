"""Evaluation: every window of every model compared against its reference profile.

:func:`evaluate_model` is pure over its inputs — the window store, the rules and ``now``.
:class:`Evaluator` runs it over everything a consumer owns, in a scheduler thread under the
state lock, and publishes the result as one immutable snapshot (the same for single mode
and scale-out). Each window also gets its label-free performance estimate
(:mod:`~exporter.pipeline.estimation`), and once every model is evaluated each version with a
baseline is compared with it (:mod:`~exporter.pipeline.versions`), outside the lock.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace

from detectors.compare import ColumnDrift, compare
from detectors.decision import DriftRule
from detectors.familywise import apply_family
from detectors.performance_estimation import DropRule
from detectors.summary import ColumnSummary
from exporter.config import ModelConfig
from exporter.pipeline.estimation import estimate_window
from exporter.pipeline.model_versions import ModelKey
from exporter.pipeline.owner import Counters, OwnedModels
from exporter.pipeline.snapshot import (
    EVALUATION_BUCKETS,
    HistogramState,
    ModelSnapshot,
    PipelineState,
    Snapshot,
    WindowResult,
    WindowSummaries,
)
from exporter.pipeline.versions import baseline_versions, with_version_comparisons
from exporter.pipeline.windows import ModelWindows

RuleFor = Callable[[str], DriftRule]  # feature name → rule
DEFAULT_DROP_RULE = DropRule()


@dataclass(frozen=True)
class ModelIdentity:
    model: str
    model_version: str
    model_namespace: str = ""


def _compare(
    reference: ColumnSummary | None, current: ColumnSummary | None, rule: DriftRule, epsilon: float
) -> ColumnDrift | None:
    if reference is None or current is None or current.count == 0:
        return None
    return compare(reference, current, rule, epsilon)


def _feature_drift(
    references: Mapping[str, ColumnSummary],
    currents: Mapping[str, ColumnSummary],
    rule_for: RuleFor,
    epsilon: float,
) -> tuple[dict[str, ColumnDrift], float | None]:
    """Every feature with rows in the window, judged together at the model's family-wise level
    (the offline ``drift`` command does the same: :func:`detectors.familywise.apply_family`)."""
    features: dict[str, ColumnDrift] = {}
    for feature, reference in references.items():
        current = currents.get(feature)
        if current is None or current.rows == 0:
            continue
        features[feature] = compare(reference, current, rule_for(feature), epsilon)
    if not features:
        return features, None
    judged, family = apply_family(features, rule_for)
    return judged, family.alpha_effective


def evaluate_model(
    identity: ModelIdentity, store: ModelWindows, rule_for: RuleFor, now: float, drop_rule: DropRule = DEFAULT_DROP_RULE
) -> ModelSnapshot:
    profile = store.profile
    epsilon = profile.metadata.settings.epsilon
    default_rule = rule_for("")
    windows: dict[str, WindowResult] = {}
    for name in store.windows:
        total = store.window(name, now)
        features, alpha_effective = _feature_drift(profile.features, total.features, rule_for, epsilon)
        performance = total.performance.metrics() if total.performance is not None else {}
        estimated, estimated_dropped = estimate_window(profile, total, drop_rule)
        windows[name] = WindowResult(
            samples=total.records,
            features=features,
            prediction=_compare(profile.prediction, total.prediction, default_rule, epsilon),
            label=_compare(profile.label, total.label, default_rule, epsilon),
            loss=_compare(profile.loss, total.loss, default_rule, epsilon),
            performance=performance,
            labels_joined=getattr(total.performance, "count", 0) if total.performance is not None else 0,
            estimated=estimated,
            estimated_dropped=estimated_dropped,
            prediction_summary=total.prediction,
            summaries=WindowSummaries(profile, total, rule_for),
            alpha_effective=alpha_effective,
        )
    meta = profile.metadata
    return ModelSnapshot(
        model=identity.model,
        model_version=identity.model_version,
        model_namespace=identity.model_namespace,
        windows=windows,
        reference_performance=dict(meta.performance),
        trained_at=meta.trained_at,
        reference_created_at=meta.created_at,
        last_prediction_at=store.last_prediction_at,
        last_label_at=store.last_label_at,
        task=meta.task or "",
    )


class Evaluator:
    """Evaluates owned models into the immutable :class:`Snapshot` a scrape renders.

    One for every mode: single mode evaluates the one :class:`OwnedModels` it has, a stage-2
    replica those of the summaries partitions it holds. The snapshot is built under the
    caller's state lock and published by swapping one reference; scrapes read it lock-free.
    """

    def __init__(
        self,
        models: Mapping[ModelKey, ModelConfig],
        clock: Callable[[], float],
        trained_times: Callable[[], Mapping[ModelKey, float]] | None = None,
    ) -> None:
        self.models = models
        self.clock = clock
        # Trained times from a registry (MLflow), where it has them; else the profile's.
        self.trained_times = trained_times or dict
        self.baselines = baseline_versions(models)
        self._epsilons: dict[ModelKey, float] = {}
        self.checkpoint_at: float | None = None
        self._snapshot = Snapshot(evaluated_at=0.0)
        self._latency: dict[ModelKey, HistogramState] = {}
        self._durations = HistogramState.empty(EVALUATION_BUCKETS)
        self._evaluated_at: float | None = None

    def evaluate(
        self,
        lock: AbstractContextManager[object],
        owned: Callable[[], Iterable[OwnedModels]],
        lag: Callable[[], dict[tuple[str, int], int]],
        before: Callable[[float], None] | None = None,
    ) -> Snapshot:
        """Evaluate every owned model at the clock's ``now``; ``before(now)`` runs first, under the lock."""
        started = time.perf_counter()
        now = self.clock()
        trained = self.trained_times()
        with lock:
            if before is not None:
                before(now)
            states = list(owned())
            results = []
            for state in states:
                state.expire_windows(now)
                for key, store in state.stores.items():
                    config = self.models[key]
                    identity = ModelIdentity(key[0], key[1], config.namespace or "")
                    drop_rule = config.performance_estimation.rule()
                    result = evaluate_model(identity, store, config.thresholds.rule, now, drop_rule)
                    self._epsilons[key] = store.profile.metadata.settings.epsilon
                    if key in trained:
                        result = replace(result, trained_at=trained[key])
                    results.append(result)
            totals = Counters.total(state.counters for state in states)
            joined: Counter[str] = Counter()
            unmatched: Counter[str] = Counter()
            pending: Counter[str] = Counter()
            for state in states:
                for model, counts in state.joiner.counts.items():
                    joined[model] += counts.joined
                    unmatched[model] += counts.unmatched
                waiting = state.pending_counts()
                for model in state.versions:
                    pending[model] += waiting.get(model, 0)
            pipeline = PipelineState(
                consumed=dict(totals.consumed),
                rejected=dict(totals.rejected),
                duplicates=dict(totals.duplicates),
                late=dict(totals.late),
                predictions=dict(totals.predictions),
                prediction_errors=dict(totals.errors),
                labels_joined=dict(joined),
                labels_unmatched=dict(unmatched),
                labels_pending=dict(pending),
                consumer_lag=lag(),
            )
        if self.baselines:
            results = with_version_comparisons(
                results, self.baselines, lambda key: self.models[key].thresholds.rule(), self._epsilons.__getitem__
            )
        order = {key: i for i, key in enumerate(self.models)}
        results.sort(key=lambda m: order.get((m.model, m.model_version), len(order)))
        self._latency = dict(totals.latency)
        self._durations = self._durations.observe(time.perf_counter() - started)
        self._evaluated_at = self.clock()
        self._snapshot = Snapshot(
            evaluated_at=now,
            models=tuple(results),
            pipeline=pipeline,
            evaluation_duration=self._durations,
            checkpoint_last_success=self.checkpoint_at,
            evaluation_last_success=self._evaluated_at,
        )
        return self._snapshot

    def snapshot(self) -> Snapshot:
        return self._snapshot

    def latency(self) -> dict[ModelKey, HistogramState]:
        return dict(self._latency)
