"""Event-time buckets of mergeable summaries, per model, for several windows at once.

Each window (``bucket_seconds × buckets``) keeps a ring of buckets keyed by their start
time. A decoded batch is grouped by the finest bucket boundary every window shares (the
gcd of the bucket widths); every column is folded for all groups at once (one sort per
group, exact sums for all groups in one pass), the groups that share a window bucket are
summed, and each window bucket takes one merge. A window is the sum of its buckets that
end after ``now − span``, summed in one step.

A record is *late* when its event time is more than ``allowed_lateness`` behind the
newest event time seen for its model; late records are counted and left out, so a
replayed backlog cannot rewrite buckets that have already been reported. A table made of
several decoded tables (one chunk each, e.g. a poll's Arrow messages) is folded in one
go when no record in it can be late behind another, else chunk by chunk, so lateness is
what it would be with the tables folded one by one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import reduce

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from detectors.columns import as_strings, non_numeric_rows
from detectors.performance import ClassificationSummary, RegressionSummary, per_record_loss
from detectors.profile import PerformanceSummary, ReferenceProfile
from detectors.summary import CategoricalSummary, ColumnSummary, NumericSummary
from exporter.records import Reason, feature_column


@dataclass(frozen=True)
class WindowSpec:
    name: str
    bucket_seconds: int
    buckets: int

    @property
    def span(self) -> int:
        return self.bucket_seconds * self.buckets


def _merge(a: ColumnSummary | PerformanceSummary | None, b: ColumnSummary | PerformanceSummary | None):  # type: ignore[no-untyped-def]
    if a is None:
        return b
    if b is None:
        return a
    return a + b  # type: ignore[operator]


def _sum(parts: list):  # type: ignore[no-untyped-def, type-arg]
    """The merge of the present parts (None when none is)."""
    present = [p for p in parts if p is not None]
    if not present:
        return None
    kind = type(present[0])
    if kind in (NumericSummary, CategoricalSummary) and all(type(p) is kind for p in present):
        return kind.sum(present)  # type: ignore[attr-defined]
    return reduce(_merge, present)


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
            {n: _sum([p.features.get(n) for p in parts]) for n in names},
            _sum([p.prediction for p in parts]),
            _sum([p.label for p in parts]),
            _sum([p.performance for p in parts]),
            _sum([p.loss for p in parts]),
            sum(p.labels for p in parts),
        )

    def __add__(self, other: Bucket) -> Bucket:
        names = self.features.keys() | other.features.keys()
        return Bucket(
            self.records + other.records,
            {n: _merge(self.features.get(n), other.features.get(n)) for n in names},
            _merge(self.prediction, other.prediction),
            _merge(self.label, other.label),
            _merge(self.performance, other.performance),
            _merge(self.loss, other.loss),
            self.labels + other.labels,
        )


@dataclass(frozen=True)
class RowProblem:
    """Rows of a batch that could not be folded, and why (for counting and dead letters)."""

    reason: Reason
    detail: str
    rows: np.ndarray  # indices into the batch


@dataclass(frozen=True)
class FoldOutcome:
    accepted: int
    late: int
    problems: tuple[RowProblem, ...] = ()


@dataclass(frozen=True)
class Joined:
    """Predictions joined with their labels, ready to fold into performance."""

    timestamps: np.ndarray  # the predictions' event times
    labels: np.ndarray  # label text (classification) or value (regression), per row
    scores: np.ndarray | None  # float64 scores, or None
    classes: np.ndarray | None  # predicted classes (text), or None
    label_values: np.ndarray | None = None  # numeric labels, for regression


def _gcd(values: Iterable[int]) -> int:
    return reduce(math.gcd, values)


class ModelWindows:
    """The buckets of one model version, for every configured window."""

    def __init__(self, profile: ReferenceProfile, windows: list[WindowSpec], allowed_lateness: float) -> None:
        if not windows:
            raise ValueError("at least one window is needed")
        self.profile = profile
        self.windows = {w.name: w for w in windows}
        self.allowed_lateness = float(allowed_lateness)
        self.base_seconds = _gcd(w.bucket_seconds for w in windows)
        self.buckets: dict[str, dict[int, Bucket]] = {w.name: {} for w in windows}
        self.newest_event = -math.inf
        self.last_prediction_at: float | None = None
        self.last_label_at: float | None = None

    # ------------------------------------------------------------------ folding

    def fold_predictions(self, table: pa.Table) -> FoldOutcome:
        """Fold a decoded prediction table (the ``exporter.records`` shape)."""
        if table.num_rows == 0:
            return FoldOutcome(0, 0)
        timestamps = table.column("timestamp").to_numpy(zero_copy_only=False).astype(np.float64)
        chunk_ends = np.cumsum([len(chunk) for chunk in table.column("timestamp").chunks])
        table, timestamps, problems, kept = self._validate(table, timestamps)
        if table.num_rows == 0:
            return FoldOutcome(0, 0, problems)
        if chunk_ends.size > 1 and not self._lateness_order_free(timestamps):
            # A batch of several decoded tables (chunks) is one fold only when no record can
            # be late behind another in it; otherwise the tables are folded in turn, as if
            # they had come one by one.
            if kept is not None:
                chunk_ends = np.cumsum(kept)[chunk_ends - 1]
            accepted = late = 0
            for start, end in zip([0, *chunk_ends[:-1].tolist()], chunk_ends.tolist()):
                if end > start:
                    piece_accepted, piece_late = self._fold_valid(
                        table.slice(start, end - start), timestamps[start:end]
                    )
                    accepted, late = accepted + piece_accepted, late + piece_late
            return FoldOutcome(accepted, late, problems)
        accepted, late = self._fold_valid(table, timestamps)
        return FoldOutcome(accepted, late, problems)

    def _lateness_order_free(self, timestamps: np.ndarray) -> bool:
        """Whether lateness is the same whichever part of this batch is folded first."""
        newest = float(timestamps.max())
        return newest <= self.newest_event or float(timestamps.min()) >= newest - self.allowed_lateness

    def _fold_valid(self, table: pa.Table, timestamps: np.ndarray) -> tuple[int, int]:
        """Fold validated rows that are not late; returns (accepted, late)."""
        late_mask = timestamps < self.newest_event - self.allowed_lateness
        late = int(late_mask.sum())
        if late:
            keep = ~late_mask
            table, timestamps = table.filter(pa.array(keep)), timestamps[keep]
        if table.num_rows == 0:
            return 0, late
        self.newest_event = max(self.newest_event, float(timestamps.max()))
        self.last_prediction_at = max(self.last_prediction_at or -math.inf, float(timestamps.max()))
        slots = np.floor(timestamps / self.base_seconds).astype(np.int64)
        order, bounds, slot_values = _group_by_slot(slots)
        buckets = self._summarise(table, order, bounds)
        self._add_all([slot * self.base_seconds for slot in slot_values], buckets)
        return table.num_rows, late

    def fold_labels(self, labels: pa.Table) -> None:
        """Fold label values into the label distribution, at the labels' event times."""
        if labels.num_rows == 0 or self.profile.label is None:
            return
        timestamps = labels.column("timestamp").to_numpy(zero_copy_only=False).astype(np.float64)
        self.last_label_at = max(self.last_label_at or -math.inf, float(timestamps.max()))
        slots = np.floor(timestamps / self.base_seconds).astype(np.int64)
        reference = self.profile.label
        for slot in np.unique(slots):
            rows = np.flatnonzero(slots == slot)
            group = labels.take(pa.array(rows))
            if isinstance(reference, CategoricalSummary):
                names, counts = _value_counts(group.column("label_class"))
                summary: ColumnSummary = CategoricalSummary.from_counts(
                    reference.bins, names, counts, group.column("label_class").null_count
                )
            else:
                values = group.column("label_value").to_numpy(zero_copy_only=False).astype(np.float64)
                summary = NumericSummary.fold(reference.bins, values)
            self._add(int(slot) * self.base_seconds, Bucket(label=summary, labels=group.num_rows))

    def fold_joined(self, joined: Joined) -> None:
        """Fold joined prediction/label pairs into performance and loss, at prediction time."""
        meta = self.profile.metadata
        if joined.timestamps.size == 0 or meta.task is None:
            return
        slots = np.floor(joined.timestamps / self.base_seconds).astype(np.int64)
        for slot in np.unique(slots):
            rows = np.flatnonzero(slots == slot)
            performance, loss = self._performance(joined, rows)
            self._add(int(slot) * self.base_seconds, Bucket(performance=performance, loss=loss))

    def _performance(self, joined: Joined, rows: np.ndarray) -> tuple[PerformanceSummary, NumericSummary | None]:
        meta = self.profile.metadata
        loss_bins = self.profile.loss.bins if self.profile.loss is not None else None
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
                y_pred = np.where(scores >= 0.5, meta.positive, negative)
                losses = per_record_loss("classification", y_true, scores, positive=meta.positive)
            else:
                classes = joined.classes if joined.classes is not None else np.full(joined.labels.size, "")
                y_pred = classes[rows].astype(str)
                scores = None
                losses = per_record_loss("classification", y_true, y_pred)
            performance = ClassificationSummary.fold(
                meta.classes, y_true, y_pred, scores=scores, positive=meta.positive
            )
        loss = NumericSummary.fold(loss_bins, losses) if loss_bins is not None else None
        return performance, loss

    def _validate(
        self, table: pa.Table, timestamps: np.ndarray
    ) -> tuple[pa.Table, np.ndarray, tuple[RowProblem, ...], np.ndarray | None]:
        """Drop rows whose numeric features hold text that is not a number (and say which were kept)."""
        bad = np.zeros(table.num_rows, dtype=bool)
        problems: list[RowProblem] = []
        for name in self.profile.metadata.features:
            column_name = feature_column(name)
            if column_name not in table.column_names or self.profile.metadata.kinds[name] != "numeric":
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

    def _summarise(self, table: pa.Table, order: np.ndarray | None, bounds: np.ndarray) -> list[Bucket]:
        """One bucket per slot group: every column is folded for all groups at once."""
        columns: dict[str, tuple[str, ColumnSummary]] = {
            name: (feature_column(name), reference) for name, reference in self.profile.features.items()
        }
        if self.profile.prediction is not None:
            column = "prediction_score" if isinstance(self.profile.prediction, NumericSummary) else "prediction_class"
            columns[_PREDICTION] = (column, self.profile.prediction)
        folded = _fold_numeric_columns(table, columns, order, bounds)
        for name, (column, reference) in columns.items():
            if name not in folded:
                folded[name] = _fold_column(table, column, reference, order, bounds)
        features = {name: folded[name] for name in self.profile.features}
        predictions: list[ColumnSummary | None] = list(folded.get(_PREDICTION, [None] * (bounds.size - 1)))
        sizes = np.diff(bounds).tolist()
        return [
            Bucket(
                records=size, features={name: parts[g] for name, parts in features.items()}, prediction=predictions[g]
            )
            for g, size in enumerate(sizes)
        ]

    def add_bucket(self, slot_start: int, bucket: Bucket) -> None:
        """Add a bucket folded elsewhere (a partial summary of the slot starting at
        ``slot_start``, whose width divides every window's ``bucket_seconds``) to every window."""
        self._add(slot_start, bucket)

    def _add(self, slot_start: int, bucket: Bucket) -> None:
        self._add_all([slot_start], [bucket])

    def _add_all(self, slot_starts: list[int], buckets: list[Bucket]) -> None:
        """Add slot buckets (ascending starts) to every window: the slots that share a
        window bucket are summed first, so each window bucket takes one merge."""
        for spec in self.windows.values():
            ring = self.buckets[spec.name]
            pending: list[Bucket] = []
            current = 0
            for slot_start, bucket in zip(slot_starts, buckets):
                start = slot_start - slot_start % spec.bucket_seconds
                if pending and start != current:
                    _merge_into(ring, current, pending)
                    pending = []
                current = start
                pending.append(bucket)
            if pending:
                _merge_into(ring, current, pending)

    # ------------------------------------------------------------------ reading

    def window(self, name: str, now: float) -> Bucket:
        """The sum of the window's buckets that overlap ``(now − span, now]``."""
        spec = self.windows[name]
        oldest = now - spec.span
        parts = [b for start, b in self.buckets[name].items() if start + spec.bucket_seconds > oldest and start <= now]
        return Bucket.sum(parts)

    def expire(self, now: float) -> None:
        """Forget buckets no window can reach any more."""
        for name, spec in self.windows.items():
            oldest = now - spec.span - self.allowed_lateness
            ring = self.buckets[name]
            for start in [s for s in ring if s + spec.bucket_seconds <= oldest]:
                del ring[start]


def _merge_into(ring: dict[int, Bucket], start: int, parts: list[Bucket]) -> None:
    if start in ring:
        parts = [ring[start], *parts]
    ring[start] = Bucket.sum(parts)


def _group_by_slot(slots: np.ndarray) -> tuple[np.ndarray | None, np.ndarray, list[int]]:
    """Rows ordered by slot (None: already in order), group bounds, and each group's slot."""
    order = None
    if slots.size > 1 and bool((slots[1:] < slots[:-1]).any()):
        order = np.argsort(slots, kind="stable")
        slots = slots[order]
    starts = np.flatnonzero(slots[1:] != slots[:-1]) + 1
    bounds = np.concatenate(([0], starts, [slots.size])).astype(np.int64)
    return order, bounds, slots[bounds[:-1]].tolist()


def _value_counts(column: pa.ChunkedArray) -> tuple[list[str], list[int]]:
    counted = pc.value_counts(column.drop_null())
    if len(counted) == 0:
        return [], []
    return counted.field("values").to_pylist(), counted.field("counts").to_pylist()


_PREDICTION = "\x00prediction"  # the prediction's key among feature names (no feature is named so)


def _fold_numeric_columns(
    table: pa.Table, columns: dict[str, tuple[str, ColumnSummary]], order: np.ndarray | None, bounds: np.ndarray
) -> dict[str, list[ColumnSummary]]:
    """The present numeric columns folded together (one sort per group for all of them,
    see :meth:`NumericSummary.fold_columns`); the others are left to :func:`_fold_column`."""
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
    folded = NumericSummary.fold_columns([reference.bins for _, _, reference in numeric], matrix, bounds)  # type: ignore[union-attr]
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
