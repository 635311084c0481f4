"""Evaluation: every window of every model compared against its reference profile.

Pure over its inputs — the window store, the rules and ``now`` — so it can run in a
scheduler thread under the store's lock and hand back plain results.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from detectors.compare import ColumnDrift, compare
from detectors.decision import DriftRule
from detectors.summary import ColumnSummary
from exporter.pipeline.snapshot import ModelSnapshot, WindowResult
from exporter.pipeline.windows import ModelWindows

RuleFor = Callable[[str], DriftRule]  # feature name → rule


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


def evaluate_model(identity: ModelIdentity, store: ModelWindows, rule_for: RuleFor, now: float) -> ModelSnapshot:
    profile = store.profile
    epsilon = profile.metadata.settings.epsilon
    default_rule = rule_for("")
    windows: dict[str, WindowResult] = {}
    for name in store.windows:
        total = store.window(name, now)
        features: dict[str, ColumnDrift] = {}
        for feature, reference in profile.features.items():
            current = total.features.get(feature)
            if current is None or current.rows == 0:
                continue
            features[feature] = compare(reference, current, rule_for(feature), epsilon)
        performance = total.performance.metrics() if total.performance is not None else {}
        windows[name] = WindowResult(
            samples=total.records,
            features=features,
            prediction=_compare(profile.prediction, total.prediction, default_rule, epsilon),
            label=_compare(profile.label, total.label, default_rule, epsilon),
            loss=_compare(profile.loss, total.loss, default_rule, epsilon),
            performance=performance,
            labels_joined=getattr(total.performance, "count", 0) if total.performance is not None else 0,
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
