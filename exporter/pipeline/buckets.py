"""What one model holds for one time slot, and how records are folded into slots.

A :class:`Bucket` is everything folded for one model version in one event-time slot: the
record count, a summary per feature in the reference profile's frozen bins, the prediction,
label, performance and loss summaries. Buckets add like summaries, so a window is the sum
of its buckets, a scale-out partial is a set of buckets, and a sidecar's edge summary is
one bucket.

The three folds here are the only place records become summaries, in every mode:

- :func:`prediction_buckets` — decoded prediction rows → one bucket per slot, with each
  slot's newest event time; rows whose numeric features hold text are left out and
  reported (:class:`RowProblem`);
- :func:`label_buckets` — label rows → the label distribution per slot;
- :func:`performance_buckets` — predictions joined with their labels → performance and
  per-record loss per slot, at the prediction's event time.

A batch is grouped by slot once; every column is folded for all slots at once (a small
batch sorts each slot for all numeric columns together; a large one is folded without a sort,
its columns split over threads). Lateness is
not decided here: that is the window store's rule (:mod:`exporter.pipeline.windows`).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from detectors.columns import as_strings, non_numeric_rows
from detectors.performance import ClassificationSummary, RegressionSummary, per_record_loss
from detectors.performance_estimation import DEFAULT_THRESHOLD
from detectors.profile import PerformanceSummary, ReferenceProfile
from detectors.summary import CategoricalSummary, ColumnSummary, NumericSummary
from exporter.pipeline.class_scores import fold_class_scores
from exporter.pipeline.column_fold import fold_numeric_columns
from exporter.records import Reason, feature_column

Summary = ColumnSummary | PerformanceSummary


def _merge(a: Summary | None, b: Summary | None) -> Summary | None:
    if a is None:
        return b
    if b is None:
        return a
    return a + b  # type: ignore[operator]  # both sides have the same summary type


def _sum(parts: list[Summary | None]) -> Summary | None:
    """The merge of the present parts (None when none is)."""
    present = [p for p in parts if p is not None]
    if not present:
        return None
    kind = type(present[0])
    if kind in (NumericSummary, CategoricalSummary) and all(type(p) is kind for p in present):
        return kind.sum(present)  # type: ignore[arg-type]  # one summary type, checked above
    total: Summary | None = present[0]
    for part in present[1:]:
        total = _merge(total, part)
    return total


@dataclass(frozen=True)
class Bucket:
    """Everything folded for one model in one time slot; buckets add like summaries."""

    records: int = 0
    features: dict[str, ColumnSummary] = field(default_factory=dict)
    prediction: ColumnSummary | None = None
    label: ColumnSummary | None = None
    performance: PerformanceSummary | None = None
    loss: NumericSummary | None = None
    labels: int = 0  # labels folded (joined or not)

    @classmethod
    def sum(cls, parts: list[Bucket]) -> Bucket:
        """The merge of many buckets in one step (equal to adding them one by one)."""
        if not parts:
            return cls()
        if len(parts) == 1:
            return parts[0]
        names: dict[str, None] = {}
        for part in parts:
            names.update(dict.fromkeys(part.features))
        return cls(
            sum(p.records for p in parts),
            {n: _sum([p.features.get(n) for p in parts]) for n in names},  # type: ignore[misc]
            _sum([p.prediction for p in parts]),  # type: ignore[arg-type]
            _sum([p.label for p in parts]),  # type: ignore[arg-type]
            _sum([p.performance for p in parts]),  # type: ignore[arg-type]
            _sum([p.loss for p in parts]),  # type: ignore[arg-type]
            sum(p.labels for p in parts),
        )

    def __add__(self, other: Bucket) -> Bucket:
        return Bucket.sum([self, other])


def add_into(slots: MutableMapping[int, Any], start: int, bucket: Bucket) -> None:
    """Add ``bucket`` to the slot starting at ``start`` of ``slots`` (slots of buckets: a fold's)."""
    known = slots.get(start)
    if known is not None and not isinstance(known, Bucket):
        raise TypeError(f"slot {start} holds a {type(known).__name__}: a window merges it, not a fold")
    slots[start] = bucket if known is None else known + bucket


@dataclass(frozen=True)
class RowProblem:
    """Rows of a batch that could not be folded, and why (for counting and dead letters)."""

    reason: Reason
    detail: str
    rows: np.ndarray  # indices into the batch


@dataclass(frozen=True)
class SlotFold:
    """What a prediction table folds to: buckets and newest event time per slot start."""

    buckets: dict[int, Bucket]
    newest: dict[int, float]
    problems: tuple[RowProblem, ...] = ()
    accepted: np.ndarray | None = None  # rows folded (None: all of them)


@dataclass(frozen=True)
class Joined:
    """Predictions joined with their labels, ready to fold into performance."""

    timestamps: np.ndarray  # the predictions' event times
    labels: np.ndarray  # label text (classification) or value (regression), per row
    scores: np.ndarray | None  # float64 scores, or None
    classes: np.ndarray | None  # predicted classes (text), or None
    label_values: np.ndarray | None = None  # numeric labels, for regression


def concat_joined(parts: list[Joined]) -> Joined:
    """Joined pairs of one shape (all with scores or all without, likewise classes) as one."""
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    return Joined(
        timestamps=np.concatenate([p.timestamps for p in parts]),
        labels=np.concatenate([p.labels for p in parts]),
        scores=None if first.scores is None else np.concatenate([p.scores for p in parts]),
        classes=None if first.classes is None else np.concatenate([p.classes for p in parts]),
        label_values=None if first.label_values is None else np.concatenate([p.label_values for p in parts]),
    )


def pairs_performance(profile: ReferenceProfile, parts: list[Joined], slot_seconds: int) -> dict[int, Bucket]:
    """:func:`performance_buckets` of pairs gathered from several joins: the pairs of one shape
    (with or without scores, likewise classes) folded together, the shapes' slots added."""
    shapes: dict[tuple[bool, bool], list[Joined]] = {}
    for part in parts:
        shapes.setdefault((part.scores is not None, part.classes is not None), []).append(part)
    slots: dict[int, Bucket] = {}
    for same in shapes.values():
        for start, bucket in performance_buckets(profile, concat_joined(same), slot_seconds).items():
            add_into(slots, start, bucket)
    return slots


def slot_starts(timestamps: np.ndarray, slot_seconds: int) -> np.ndarray:
    """The start of the slot each event time falls in."""
    return np.floor(timestamps / slot_seconds).astype(np.int64) * slot_seconds


def prediction_buckets(profile: ReferenceProfile, table: pa.Table, slot_seconds: int) -> SlotFold:
    """Fold a decoded prediction table (the :mod:`exporter.records` shape) into slot buckets."""
    if table.num_rows == 0:
        return SlotFold({}, {})
    timestamps = table.column("timestamp").to_numpy(zero_copy_only=False).astype(np.float64)
    table, timestamps, problems, kept = _validate(profile, table, timestamps)
    if table.num_rows == 0:
        return SlotFold({}, {}, problems, kept)
    starts = slot_starts(timestamps, slot_seconds)
    order, bounds = _group(starts)
    ordered_starts = starts if order is None else starts[order]
    ordered_times = timestamps if order is None else timestamps[order]
    group_starts = ordered_starts[bounds[:-1]].tolist()
    newest = np.maximum.reduceat(ordered_times, bounds[:-1]).tolist()
    buckets = _summarise(profile, table, order, bounds)
    return SlotFold(dict(zip(group_starts, buckets)), dict(zip(group_starts, newest)), problems, kept)


def label_buckets(profile: ReferenceProfile, labels: pa.Table, slot_seconds: int) -> SlotFold:
    """Fold label values into the label distribution, one bucket per slot of their event times.

    A profile without a label folds nothing (the labels still feed the join).
    """
    reference = profile.label
    if labels.num_rows == 0 or reference is None:
        return SlotFold({}, {})
    timestamps = labels.column("timestamp").to_numpy(zero_copy_only=False).astype(np.float64)
    starts = slot_starts(timestamps, slot_seconds)
    buckets: dict[int, Bucket] = {}
    newest: dict[int, float] = {}
    for start in np.unique(starts).tolist():
        rows = np.flatnonzero(starts == start)
        group = labels.take(pa.array(rows))
        if isinstance(reference, CategoricalSummary):
            names, counts = _value_counts(group.column("label_class"))
            summary: ColumnSummary = CategoricalSummary.from_counts(
                reference.bins, names, counts, group.column("label_class").null_count
            )
        else:
            values = group.column("label_value").to_numpy(zero_copy_only=False).astype(np.float64)
            summary = NumericSummary.fold(reference.bins, values)
        buckets[start] = Bucket(label=summary, labels=group.num_rows)
        newest[start] = float(timestamps[rows].max())
    return SlotFold(buckets, newest)


def performance_buckets(profile: ReferenceProfile, joined: Joined, slot_seconds: int) -> dict[int, Bucket]:
    """Fold joined prediction/label pairs into performance and loss, at prediction time."""
    if joined.timestamps.size == 0 or profile.metadata.task is None:
        return {}
    starts = slot_starts(joined.timestamps, slot_seconds)
    buckets = {}
    for start in np.unique(starts).tolist():
        rows = np.flatnonzero(starts == start)
        performance, loss = _performance(profile, joined, rows)
        buckets[start] = Bucket(performance=performance, loss=loss)
    return buckets


def _performance(
    profile: ReferenceProfile, joined: Joined, rows: np.ndarray
) -> tuple[PerformanceSummary, NumericSummary | None]:
    meta = profile.metadata
    loss_bins = profile.loss.bins if profile.loss is not None else None
    if meta.task == "regression":
        y_true = (joined.label_values if joined.label_values is not None else joined.labels.astype(float))[rows]
        y_pred = joined.scores[rows] if joined.scores is not None else np.full(rows.size, np.nan)
        performance: PerformanceSummary = RegressionSummary.fold(y_true, y_pred)
        losses = per_record_loss("regression", y_true, y_pred)
    else:
        y_true = joined.labels[rows].astype(str)
        scores = joined.scores[rows] if joined.scores is not None else None
        if scores is not None and meta.positive is not None:
            negative = meta.classes[0] if meta.classes[1] == meta.positive else meta.classes[1]
            # The model's decision threshold, as the profile states it (0.5 when it says none).
            threshold = getattr(profile.calibration, "threshold", DEFAULT_THRESHOLD)
            y_pred = np.where(scores >= threshold, meta.positive, negative)
            losses = per_record_loss("classification", y_true, scores, positive=meta.positive)
        else:
            classes = joined.classes if joined.classes is not None else np.full(joined.labels.size, "")
            y_pred = classes[rows].astype(str)
            scores = None
            losses = per_record_loss("classification", y_true, y_pred)
        performance = ClassificationSummary.fold(meta.classes, y_true, y_pred, scores=scores, positive=meta.positive)
    loss = NumericSummary.fold(loss_bins, losses) if loss_bins is not None else None
    return performance, loss


def _validate(
    profile: ReferenceProfile, table: pa.Table, timestamps: np.ndarray
) -> tuple[pa.Table, np.ndarray, tuple[RowProblem, ...], np.ndarray | None]:
    """Drop rows whose numeric features hold text that is not a number (and say which were kept)."""
    bad = np.zeros(table.num_rows, dtype=bool)
    problems: list[RowProblem] = []
    for name in profile.metadata.features:
        column_name = feature_column(name)
        if column_name not in table.column_names or profile.metadata.kinds[name] != "numeric":
            continue
        column = table.column(column_name)
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            rows = np.asarray(non_numeric_rows(column), dtype=np.int64)
            if rows.size:
                bad[rows] = True
                problems.append(RowProblem(Reason.BAD_FEATURE_VALUE, f"feature {name!r} is not numeric", rows))
    if not bad.any():
        return table, timestamps, tuple(problems), None
    keep = ~bad
    return table.filter(pa.array(keep)), timestamps[keep], tuple(problems), keep


def _group(starts: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """Rows ordered by slot (None: already in order) and the bounds of each slot's group."""
    order = None
    if starts.size > 1 and bool((starts[1:] < starts[:-1]).any()):
        order = np.argsort(starts, kind="stable")
        starts = starts[order]
    changes = np.flatnonzero(starts[1:] != starts[:-1]) + 1
    return order, np.concatenate(([0], changes, [starts.size])).astype(np.int64)


_PREDICTION = "\x00prediction"  # the prediction's key among feature names (no feature is named so)


def _summarise(
    profile: ReferenceProfile, table: pa.Table, order: np.ndarray | None, bounds: np.ndarray
) -> list[Bucket]:
    """One bucket per slot group: every column is folded for all groups at once."""
    columns: dict[str, tuple[str, ColumnSummary]] = {
        name: (feature_column(name), reference) for name, reference in profile.features.items()
    }
    if profile.prediction is not None:
        column = "prediction_score" if isinstance(profile.prediction, NumericSummary) else "prediction_class"
        columns[_PREDICTION] = (column, profile.prediction)
    folded = _fold_numeric_columns(table, columns, order, bounds)
    for name, (column, reference) in columns.items():
        if name not in folded:
            folded[name] = _fold_column(table, column, reference, order, bounds)
    features = {name: folded[name] for name in profile.features}
    predictions: list[ColumnSummary | None] = list(folded.get(_PREDICTION, [None] * (bounds.size - 1)))
    class_scores = fold_class_scores(profile, table, order, bounds)  # multiclass profiles only
    sizes = np.diff(bounds).tolist()
    return [
        Bucket(
            records=size,
            features={**{name: parts[g] for name, parts in features.items()}, **class_scores[g]},
            prediction=predictions[g],
        )
        for g, size in enumerate(sizes)
    ]


def _value_counts(column: pa.ChunkedArray) -> tuple[list[str], list[int]]:
    counted = pc.value_counts(column.drop_null())
    if len(counted) == 0:
        return [], []
    return counted.field("values").to_pylist(), counted.field("counts").to_pylist()


def _fold_numeric_columns(
    table: pa.Table, columns: dict[str, tuple[str, ColumnSummary]], order: np.ndarray | None, bounds: np.ndarray
) -> dict[str, list[ColumnSummary]]:
    """The present numeric columns folded together (:meth:`NumericSummary.fold_columns`, the
    columns of a large batch split over threads: :mod:`~exporter.pipeline.column_fold`); the
    others are left to :func:`_fold_column`."""
    numeric = [
        (name, column, reference)
        for name, (column, reference) in columns.items()
        if isinstance(reference, NumericSummary) and column in table.column_names
    ]
    if not numeric:
        return {}
    rows = table.num_rows
    matrix = np.empty((len(numeric), rows), dtype=np.float64)
    for i, (_, column, _) in enumerate(numeric):
        values = table.column(column)
        if not pa.types.is_floating(values.type):
            values = pc.cast(values, pa.float64(), safe=False)
        array = values.to_numpy(zero_copy_only=False)
        if order is not None:
            np.take(array, order, out=matrix[i])
        else:
            matrix[i] = array
    folded = fold_numeric_columns([reference.bins for _, _, reference in numeric], matrix, bounds)
    return {name: list(parts) for (name, _, _), parts in zip(numeric, folded)}


def _fold_column(
    table: pa.Table, column: str, reference: ColumnSummary, order: np.ndarray | None, bounds: np.ndarray
) -> list[ColumnSummary]:
    """Fold one column into the reference's frozen bins, one summary per row group
    (rows taken in ``order``, grouped by ``bounds``); an absent column is all missing."""
    sizes = np.diff(bounds).tolist()
    if isinstance(reference, CategoricalSummary):
        if column not in table.column_names:
            return [replace(CategoricalSummary.empty(reference.bins), missing=size) for size in sizes]
        strings = as_strings(table, column)
        encoded = pc.dictionary_encode(strings.combine_chunks() if isinstance(strings, pa.ChunkedArray) else strings)
        codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
        if order is not None:
            codes = codes[order]
        return list(CategoricalSummary.fold_groups(reference.bins, encoded.dictionary.to_pylist(), codes, bounds))
    if column not in table.column_names:
        return [replace(NumericSummary.empty(reference.bins), missing=size) for size in sizes]
    values = table.column(column)
    if not pa.types.is_floating(values.type):
        values = pc.cast(values, pa.float64(), safe=False)
    array = values.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    if order is not None:
        array = array[order]
    return list(NumericSummary.fold_groups(reference.bins, array, bounds))
