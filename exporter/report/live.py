"""The live drift report: one model version's window, from the aggregator's current snapshot.

Evaluation keeps, in each :class:`~exporter.pipeline.snapshot.WindowResult`, the summaries it
compared (:class:`~exporter.pipeline.snapshot.WindowSummaries`: the profile, the window's summed
bucket and the decision rules), by reference. :func:`window_report` turns them, with the
window's realised and label-free estimated performance, into the same
:class:`~exporter.report.data.ReportData` the offline command builds, through the same
:func:`~exporter.report.data.feature_from_summaries`: the page and the JSON of
``/report/<model>`` are those of ``drift --format html|json`` for that window. Nothing here
reads the live windows or takes a lock; it only reads immutable values.

:func:`find_window` resolves a request's model, version and window against a snapshot, with
the reason for a refusal (:class:`NotFound`, :class:`Ambiguous`); the HTTP side is
:mod:`exporter.report.routes`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from detectors.compare import ColumnDrift
from detectors.summary import ColumnSummary
from exporter.pipeline.snapshot import ModelSnapshot, Snapshot, WindowResult, WindowSummaries
from exporter.report.data import FeatureReport, ReportData, feature_from_summaries


class LookupProblem(Exception):
    """A request that names no window of this snapshot; the message says what exists."""


class NotFound(LookupProblem):
    """The model, version or window is not in the snapshot (404)."""


class Ambiguous(LookupProblem):
    """The request needs a parameter it left out, e.g. the version of a model with two (400)."""


@dataclass(frozen=True)
class WindowRef:
    """One window of one model version in a snapshot."""

    model: ModelSnapshot
    window: str

    @property
    def result(self) -> WindowResult:
        return self.model.windows[self.window]


def _names(items: Iterable[object]) -> str:
    return ", ".join(repr(str(item)) for item in items)


def find_window(snapshot: Snapshot, model: str, version: str | None, window: str | None) -> WindowRef:
    """The window a request names. Without ``version``, the model's only version; without
    ``window``, the first configured window (the order of the config's ``windows``)."""
    versions = [m for m in snapshot.models if m.model == model]
    if not versions:
        known = sorted({m.model for m in snapshot.models})
        raise NotFound(
            f"no model {model!r} in this aggregator's snapshot (models here: {_names(known) or 'none'}; in "
            "scale-out mode each model is served by the replica that owns it)"
        )
    if version is None:
        if len(versions) > 1:
            raise Ambiguous(f"model {model!r} has versions {_names(m.model_version for m in versions)}: add ?version=")
        chosen = versions[0]
    else:
        match = [m for m in versions if m.model_version == version]
        if not match:
            raise NotFound(
                f"model {model!r} has no version {version!r} (versions: {_names(m.model_version for m in versions)})"
            )
        chosen = match[0]
    if not chosen.windows:
        raise NotFound(f"model {model!r} version {chosen.model_version!r} has no evaluated window yet")
    if window is None:
        window = next(iter(chosen.windows))
    elif window not in chosen.windows:
        raise NotFound(f"no window {window!r} (windows: {_names(chosen.windows)})")
    return WindowRef(chosen, window)


def _feature(
    name: str,
    reference: ColumnSummary | None,
    current: ColumnSummary | None,
    summaries: WindowSummaries,
    drift: ColumnDrift | None,
) -> FeatureReport | None:
    if reference is None or current is None or drift is None:
        return None
    return feature_from_summaries(name, reference, current, drift, summaries.rule_for(name))


def window_report(
    ref: WindowRef, evaluated_at: float | None = None, between: Callable[[], None] = lambda: None
) -> ReportData:
    """The report of one window; ``between()`` runs after each chart (a render yields there to
    scrapes, see :mod:`exporter.report.routes`)."""
    result, model = ref.result, ref.model
    summaries = result.summaries
    if summaries is None:
        raise NotFound(f"window {ref.window!r} of {model.model!r} carries no summaries to chart")
    profile, current = summaries.reference, summaries.current
    features: dict[str, FeatureReport] = {}
    for name, drift in result.features.items():
        section = _feature(name, profile.features.get(name), current.features.get(name), summaries, drift)
        if section is not None:
            features[name] = section
        between()
    meta = profile.metadata
    prediction = _feature(
        meta.prediction or "prediction", profile.prediction, current.prediction, summaries, result.prediction
    )
    label = _feature(meta.label or "label", profile.label, current.label, summaries, result.label)
    return ReportData(
        reference_rows=meta.rows,
        current_rows=result.samples,
        features=features,
        rule=summaries.rule_for(""),
        binning="reference",
        reference_kind="profile",
        model=model.model,
        model_version=model.model_version,
        window=ref.window,
        title=f"Drift report: {model.model} version {model.model_version}",
        prediction=prediction,
        label=label,
        performance=_performance(model, result),
        extra=result.estimated.json_fields() if result.estimated is not None else {},
        evaluated_at=evaluated_at,
    )


def _performance(model: ModelSnapshot, result: WindowResult) -> dict[str, dict[str, float | None]]:
    """The profile's reference metrics next to the window's realised ones (from joined labels)."""
    metrics = list(model.reference_performance) + [
        m for m in result.performance if m not in model.reference_performance
    ]

    def clean(value: float | None) -> float | None:
        return None if value is None or value != value else float(value)

    return {
        metric: {
            "reference": clean(model.reference_performance.get(metric)),
            "current": clean(result.performance.get(metric)),
        }
        for metric in sorted(metrics)
    }
