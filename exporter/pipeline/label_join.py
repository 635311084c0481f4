"""Joining ground-truth labels to predictions by ``request_id``.

Labels usually arrive long after their predictions, sometimes before them. Both sides
wait in one bounded buffer with a time-to-live; a pair that meets is handed back for
folding into performance at the *prediction's* event time. An entry that outlives its
TTL, or is pushed out because the buffer is full, is counted as unmatched.

Each side keeps its entries column-wise in arrival order (numpy arrays, no object per
entry) and finds them through one ``request_id → position`` dict per model, so a batch
of predictions with fresh request ids is buffered with a few array copies and one
``dict.update``. The order rules are those of an insertion-ordered dict: an entry whose
key is seen again keeps its place and takes the new values; the oldest entries are the
first to expire or to be pushed out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import compress
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from exporter.pipeline.buckets import Joined

_MIN_CAPACITY = 1024

# Columns of each side; floats are float64 with a validity mask (None is not NaN).
_PREDICTION_FIELDS = {
    "version": object,
    "timestamp": np.float64,
    "score": np.float64,
    "predicted": object,
    "arrived": np.float64,
}
_LABEL_FIELDS = {"text": object, "value": np.float64, "arrived": np.float64}
_NULLABLE_FLOATS = {"score", "value"}


@dataclass
class JoinCounts:
    joined: int = 0
    unmatched: int = 0


class _Side:
    """One side of the join: entries in arrival order, column-wise, found by request id.

    Entries are numbered in arrival order (a sequence number never reused); position in
    the arrays is ``seq − base``. Entries taken by a join leave a hole that is dropped
    when it reaches the oldest end, or when holes outnumber live entries.
    """

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields
        self.base = 0  # sequence number of position 0
        self.head = 0  # every entry before this one is gone
        self.end = 0  # the next sequence number
        self.live = 0
        self.columns: dict[str, np.ndarray] = {}
        self.valid: dict[str, np.ndarray] = {}
        self.alive = np.zeros(0, dtype=bool)
        self.models = np.empty(0, dtype=object)
        self.requests = np.empty(0, dtype=object)
        self.index: dict[str, dict[str, int]] = {}
        self._allocate(0)

    def __len__(self) -> int:
        return self.live

    # ------------------------------------------------------------------ storage

    def _allocate(self, capacity: int) -> None:
        used = self.end - self.base
        columns = {name: np.empty(capacity, dtype=kind) for name, kind in self.fields.items()}
        valid = {name: np.zeros(capacity, dtype=bool) for name in self.fields if name in _NULLABLE_FLOATS}
        alive = np.zeros(capacity, dtype=bool)
        models = np.empty(capacity, dtype=object)
        requests = np.empty(capacity, dtype=object)
        if used:
            for name, column in self.columns.items():
                columns[name][:used] = column[:used]
            for name, mask in self.valid.items():
                valid[name][:used] = mask[:used]
            alive[:used] = self.alive[:used]
            models[:used] = self.models[:used]
            requests[:used] = self.requests[:used]
        self.columns, self.valid, self.alive, self.models, self.requests = columns, valid, alive, models, requests

    def _reserve(self, extra: int) -> None:
        if self.end - self.base + extra <= self.alive.size:
            return
        span = self.end - self.head
        if span > 2 * self.live + _MIN_CAPACITY:
            self._renumber()
        elif self.head > self.base:
            self._shift()
        needed = self.end - self.base + extra
        if needed > self.alive.size:
            self._allocate(max(needed, 2 * self.alive.size, _MIN_CAPACITY))

    def _shift(self) -> None:
        """Drop the gone entries before ``head``; sequence numbers stay."""
        cut, used = self.head - self.base, self.end - self.base
        for array in (*self.columns.values(), *self.valid.values(), self.alive, self.models, self.requests):
            array[: used - cut] = array[cut:used]
        self.alive[used - cut : used] = False
        self.base = self.head

    def _renumber(self) -> None:
        """Close the holes left by joins: live entries move together, in order, renumbered."""
        used = self.end - self.base
        keep = np.flatnonzero(self.alive[:used])
        for array in (*self.columns.values(), *self.valid.values(), self.models, self.requests):
            array[: keep.size] = array[keep]
        self.alive[:used] = False
        self.alive[: keep.size] = True
        self.base = self.head = self.end
        self.end = self.base + keep.size
        for seq, (model, request) in enumerate(
            zip(self.models[: keep.size].tolist(), self.requests[: keep.size].tolist()), self.base
        ):
            self.index[model][request] = seq

    def _advance_head(self) -> None:
        used = self.end - self.base
        start = self.head - self.base
        if start < used and not self.alive[start]:
            ahead = np.flatnonzero(self.alive[start:used])
            self.head = self.base + start + (int(ahead[0]) if ahead.size else used - start)

    # ------------------------------------------------------------------ entries

    def find(self, model: str, request: str) -> int | None:
        by_request = self.index.get(model)
        return None if by_request is None else by_request.get(request)

    def take(self, model: str, request: str) -> int | None:
        """Remove one entry; returns its position (valid until the next append)."""
        by_request = self.index.get(model)
        seq = None if by_request is None else by_request.pop(request, None)
        if seq is None:
            return None
        position = seq - self.base
        self.alive[position] = False
        self.live -= 1
        if seq == self.head:
            self._advance_head()
        return position

    def take_many(self, model: str, requests: Sequence[str]) -> np.ndarray:
        """Remove the entries of ``requests`` (each waiting, each once); their positions
        (valid until the next append)."""
        by_request = self.index[model]
        seqs = np.fromiter(map(by_request.pop, requests), dtype=np.int64, count=len(requests))
        positions = seqs - self.base
        self.alive[positions] = False
        self.live -= positions.size
        if positions.size and self.head in set(seqs.tolist()):
            self._advance_head()
        return positions

    def values_at(self, positions: np.ndarray, name: str) -> np.ndarray:
        """One column at ``positions``: floats with NaN where absent, objects as stored."""
        column = self.columns[name][positions]
        if name in self.valid:
            column = np.where(self.valid[name][positions], column, np.nan)
        return column

    def value(self, position: int, name: str) -> Any:
        if name in self.valid and not self.valid[name][position]:
            return None
        return self.columns[name][position].item() if self.fields[name] is np.float64 else self.columns[name][position]

    def put(self, model: str, request: str, values: dict[str, Any]) -> None:
        """Add one entry, or update it in place when its key is already waiting."""
        seq = self.find(model, request)
        if seq is None:
            self._reserve(1)
            seq = self.end
            self.end += 1
            self.live += 1
            position = seq - self.base
            self.alive[position] = True
            self.models[position] = model
            self.requests[position] = request
            self.index.setdefault(model, {})[request] = seq
        position = seq - self.base
        for name, value in values.items():
            if name in self.valid:
                self.valid[name][position] = value is not None
                self.columns[name][position] = np.nan if value is None else value
            else:
                self.columns[name][position] = value

    def numbered(self, requests: list[str | None]) -> dict[str | None, int]:
        """``request → sequence number`` for appending ``requests`` next: room is made first,
        so the numbers hold for :meth:`append_fresh`; one dict serves the caller's
        distinct-and-fresh checks and the index update (no second hashing pass)."""
        self._reserve(len(requests))
        return dict(zip(requests, range(self.end, self.end + len(requests))))

    def append_fresh(
        self,
        model: str,
        requests: list[str],
        values: dict[str, Any],
        valid: dict[str, np.ndarray],
        numbered: dict[str | None, int] | None = None,
    ) -> None:
        """Add entries whose keys are distinct and not waiting (the caller checked);
        ``numbered`` is :meth:`numbered` of ``requests`` when the caller made it."""
        count = len(requests)
        self._reserve(count)
        if numbered is not None and count and numbered.get(requests[0]) != self.end:
            numbered = None  # renumbered in between: number them here
        start = self.end - self.base
        window = slice(start, start + count)
        for name, column in values.items():
            self.columns[name][window] = column
        for name, mask in valid.items():
            self.valid[name][window] = mask
        self.alive[window] = True
        self.models[window] = model
        self.requests[window] = requests
        index = self.index.setdefault(model, {})
        if numbered is not None:
            index.update(numbered)  # type: ignore[arg-type]  # the caller numbered ``requests``: no None among them
        else:
            index.update(zip(requests, range(self.end, self.end + count)))
        self.end += count
        self.live += count

    def evict_oldest(self, count: int) -> Counter[str]:
        """Drop the ``count`` oldest entries; returns how many per model."""
        return self._evict(self._oldest(count))

    def expire(self, now: float, ttl: float) -> Counter[str]:
        """Drop the oldest entries, up to the first that has not outlived ``ttl``."""
        start, used = self.head - self.base, self.end - self.base
        live = np.flatnonzero(self.alive[start:used]) + start
        if live.size == 0:
            return Counter()
        fresh = np.flatnonzero(now - self.columns["arrived"][live] <= ttl)
        return self._evict(live if fresh.size == 0 else live[: fresh[0]])

    def _oldest(self, count: int) -> np.ndarray:
        start, used = self.head - self.base, self.end - self.base
        out: list[np.ndarray] = []
        found = 0
        step = max(count, 256)
        while found < count and start < used:
            chunk = np.flatnonzero(self.alive[start : min(start + step, used)]) + start
            out.append(chunk[: count - found])
            found += min(chunk.size, count - found)
            start += step
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)

    def _evict(self, positions: np.ndarray) -> Counter[str]:
        if positions.size == 0:
            return Counter()
        self.alive[positions] = False
        self.live -= positions.size
        models = self.models[positions].tolist()
        for model, request in zip(models, self.requests[positions].tolist()):
            del self.index[model][request]
        self._advance_head()
        return Counter(models)

    def entries(self) -> Iterator[tuple[str, str, int]]:
        """(model, request id, position) of every waiting entry, oldest first."""
        start, used = self.head - self.base, self.end - self.base
        positions = np.flatnonzero(self.alive[start:used]) + start
        yield from zip(self.models[positions].tolist(), self.requests[positions].tolist(), positions.tolist())

    def counts(self) -> dict[str, int]:
        return {model: len(by_request) for model, by_request in self.index.items() if by_request}


class LabelJoiner:
    """Bounded, TTL'd meeting point of predictions and labels, per model.

    >>> joiner = LabelJoiner(ttl_seconds=60, max_pending=10)
    >>> _ = joiner.add_predictions("m", "1", ["r1"], [100.0], [0.9], [None], now=100.0)
    >>> labels = pa.table({"model": ["m"], "request_id": ["r1"], "label_value": [1.0],
    ...                    "label_class": ["1"], "timestamp": [130.0]})
    >>> joined = joiner.add_labels(labels, now=130.0)
    >>> joined[("m", "1")].labels.tolist(), joiner.counts["m"].joined
    (['1'], 1)
    """

    def __init__(self, ttl_seconds: float, max_pending: int) -> None:
        if ttl_seconds <= 0 or max_pending <= 0:
            raise ValueError("ttl_seconds and max_pending must be positive")
        self.ttl = float(ttl_seconds)
        self.max_pending = int(max_pending)
        self._predictions = _Side(_PREDICTION_FIELDS)
        self._labels = _Side(_LABEL_FIELDS)
        self.counts: dict[str, JoinCounts] = {}

    def pending_counts(self) -> dict[str, int]:
        """Predictions waiting for their label, per model."""
        return self._predictions.counts()

    def _count(self, model: str) -> JoinCounts:
        return self.counts.setdefault(model, JoinCounts())

    def add_predictions(
        self,
        model: str,
        version: str,
        request_ids: Sequence[str | None] | pa.Array | pa.ChunkedArray,
        timestamps: Sequence[float] | np.ndarray | pa.Array | pa.ChunkedArray,
        scores: Sequence[float | None] | pa.Array | pa.ChunkedArray,
        predicted: Sequence[str | None] | pa.Array | pa.ChunkedArray,
        now: float,
    ) -> dict[tuple[str, str], Joined]:
        """Buffer predictions; returns pairs whose label was already waiting."""
        ids = _pylist(request_ids)
        distinct = set(ids)
        waiting = self._predictions.index.get(model, {})
        labelled = self._labels.index.get(model, {})
        hits = labelled.keys() & distinct if labelled else set()
        if len(distinct) != len(ids) or None in distinct or not waiting.keys().isdisjoint(distinct):
            return self._add_predictions_one_by_one(model, version, ids, timestamps, scores, predicted, now)
        # Distinct, fresh ids: the ones a label waits for join at once, the rest are appended.
        times = _float_array(timestamps)
        score_values, score_valid = _nullable_floats(scores)
        classes = _objects(predicted, len(ids))
        joined: dict[tuple[str, str], Joined] = {}
        if hits:
            hit = np.fromiter(map(hits.__contains__, ids), dtype=bool, count=len(ids))  # C loops, not Python ones
            rows = np.flatnonzero(hit)
            labels = self._labels.take_many(model, list(compress(ids, hit)))
            joined = self._pairs(
                model,
                np.full(rows.size, version, dtype=object),
                times[rows],
                np.where(score_valid[rows], score_values[rows], np.nan),
                score_valid[rows],
                classes[rows],
                self._labels.values_at(labels, "text"),
                self._labels.values_at(labels, "value"),
            )
            keep = ~hit
            ids = list(compress(ids, keep))
            times, score_values, score_valid, classes = (
                times[keep],
                score_values[keep],
                score_valid[keep],
                classes[keep],
            )
        if ids:
            self._predictions.append_fresh(
                model,
                ids,
                {
                    "version": version,
                    "timestamp": times,
                    "score": score_values,
                    "predicted": classes,
                    "arrived": np.full(len(ids), now, dtype=np.float64),
                },
                {"score": score_valid},
            )
        self._bound()
        return joined

    def _add_predictions_one_by_one(
        self, model: str, version: str, ids: list[Any], timestamps: Any, scores: Any, predicted: Any, now: float
    ) -> dict[tuple[str, str], Joined]:
        """Repeated or already waiting ids, or ids missing: the rules applied record by record."""
        rows: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for request_id, timestamp, score, cls in zip(ids, _pylist(timestamps), _pylist(scores), _pylist(predicted)):
            if request_id is None:
                continue
            prediction = {
                "version": version,
                "timestamp": float(timestamp),
                "score": score,
                "predicted": cls,
                "arrived": now,
            }
            position = self._labels.take(model, request_id)
            if position is not None:
                label = {name: self._labels.value(position, name) for name in _LABEL_FIELDS}
                rows.append((prediction, label))
            else:
                self._predictions.put(model, request_id, prediction)
        self._bound()
        return self._joined(model, rows)

    def _pairs(
        self,
        model: str,
        versions: np.ndarray,
        timestamps: np.ndarray,
        scores: np.ndarray,
        scored: np.ndarray,
        classes: np.ndarray,
        texts: np.ndarray,
        values: np.ndarray,
    ) -> dict[tuple[str, str], Joined]:
        """Joined pairs, column-wise, split by the predictions' versions."""
        self._count(model).joined += int(timestamps.size)
        out = {}
        versions_seen = list(dict.fromkeys(versions.tolist()))
        for version in versions_seen:
            part = slice(None) if len(versions_seen) == 1 else np.flatnonzero(versions == version)
            cls = classes[part].tolist()
            out[(model, str(version))] = Joined(
                timestamps=timestamps[part].astype(np.float64),
                labels=np.array([t if t is not None else "" for t in texts[part].tolist()], dtype=object),
                scores=scores[part].astype(np.float64) if scored[part].any() else None,
                classes=None if all(c is None for c in cls) else np.array([c or "" for c in cls], dtype=object),
                label_values=values[part].astype(np.float64),
            )
        return out

    def add_labels(self, labels: pa.Table, now: float) -> dict[tuple[str, str], Joined]:
        """Match labels to waiting predictions; the rest wait for theirs."""
        models = labels.column("model")
        if labels.num_rows and models.null_count == 0 and pc.count_distinct(models).as_py() == 1:
            joined = self._add_model_labels(models[0].as_py(), labels, now)
        else:  # labels of several models keep their arrival order across models: one by one
            joined = self._add_labels_one_by_one(labels, now)
        self._bound()
        return joined

    def _add_model_labels(self, model: str, labels: pa.Table, now: float) -> dict[tuple[str, str], Joined]:
        ids = labels.column("request_id").to_pylist()
        distinct = set(ids)
        waiting = self._labels.index.get(model, {})
        if len(distinct) != len(ids) or None in distinct or not waiting.keys().isdisjoint(distinct):
            return self._add_labels_one_by_one(labels, now)
        predictions = self._predictions.index.get(model, {})
        hits = predictions.keys() & distinct if predictions else set()
        texts = _objects(labels.column("label_class"), len(ids))
        values, valid = _nullable_floats(labels.column("label_value"))
        joined: dict[tuple[str, str], Joined] = {}
        if hits:
            hit = np.fromiter(map(hits.__contains__, ids), dtype=bool, count=len(ids))  # C loops, not Python ones
            rows = np.flatnonzero(hit)
            taken = self._predictions.take_many(model, list(compress(ids, hit)))
            side = self._predictions
            joined = self._pairs(
                model,
                side.values_at(taken, "version"),
                side.values_at(taken, "timestamp"),
                side.values_at(taken, "score"),
                side.valid["score"][taken],
                side.values_at(taken, "predicted"),
                texts[rows],
                np.where(valid[rows], values[rows], np.nan),
            )
            keep = ~hit
            ids = list(compress(ids, keep))
            texts, values, valid = texts[keep], values[keep], valid[keep]
        if ids:
            self._labels.append_fresh(
                model,
                ids,
                {"text": texts, "value": values, "arrived": np.full(len(ids), now, dtype=np.float64)},
                {"value": valid},
            )
        return joined

    def _add_labels_one_by_one(self, labels: pa.Table, now: float) -> dict[tuple[str, str], Joined]:
        """Repeated or already waiting ids, ids missing, several models: the rules applied label by label."""
        by_model: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
        columns = labels.to_pydict()
        predictions = self._predictions
        for model, request_id, value, text in zip(
            columns["model"], columns["request_id"], columns["label_value"], columns["label_class"]
        ):
            label = {"text": text, "value": value, "arrived": now}
            position = predictions.take(model, request_id)
            if position is not None:
                prediction = {name: predictions.value(position, name) for name in _PREDICTION_FIELDS}
                by_model.setdefault(model, []).append((prediction, label))
            else:
                self._labels.put(model, request_id, label)
        out: dict[tuple[str, str], Joined] = {}
        for model, rows in by_model.items():
            out.update(self._joined(model, rows))
        return out

    def expire(self, now: float) -> None:
        """Count and drop entries older than the TTL (both sides)."""
        for side in (self._predictions, self._labels):
            for model, dropped in side.expire(now, self.ttl).items():
                self._count(model).unmatched += dropped

    def _bound(self) -> None:
        # Oldest first: arrival order.
        for side in (self._predictions, self._labels):
            if len(side) > self.max_pending:
                for model, dropped in side.evict_oldest(len(side) - self.max_pending).items():
                    self._count(model).unmatched += dropped

    def _joined(self, model: str, rows: list[tuple[dict[str, Any], dict[str, Any]]]) -> dict[tuple[str, str], Joined]:
        if not rows:
            return {}
        self._count(model).joined += len(rows)
        by_version: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
        for pair in rows:
            by_version.setdefault(pair[0]["version"], []).append(pair)
        return {(model, version): _as_joined(pairs) for version, pairs in by_version.items()}

    # Checkpoint support: the buffers are part of the exactly-once state.
    def export_state(self) -> dict[str, list[list[object]]]:
        p, lb = self._predictions, self._labels
        return {
            "predictions": [
                [
                    m,
                    r,
                    p.value(i, "version"),
                    p.value(i, "timestamp"),
                    p.value(i, "score"),
                    p.value(i, "predicted"),
                    p.value(i, "arrived"),
                ]
                for m, r, i in p.entries()
            ],
            "labels": [
                [m, r, lb.value(i, "text"), lb.value(i, "value"), lb.value(i, "arrived")] for m, r, i in lb.entries()
            ],
            "counts": [[m, c.joined, c.unmatched] for m, c in self.counts.items()],
        }

    def import_state(self, state: dict[str, list[list[object]]]) -> None:
        self._predictions = _Side(_PREDICTION_FIELDS)
        self._labels = _Side(_LABEL_FIELDS)
        for m, r, v, t, s, c, a in state.get("predictions", []):
            self._predictions.put(
                str(m),
                str(r),
                {"version": str(v), "timestamp": float(t), "score": s, "predicted": c, "arrived": float(a)},  # type: ignore[arg-type]  # JSON numbers
            )
        for m, r, text, value, a in state.get("labels", []):
            self._labels.put(str(m), str(r), {"text": text, "value": value, "arrived": float(a)})  # type: ignore[arg-type]
        self.counts = {str(m): JoinCounts(int(j), int(u)) for m, j, u in state.get("counts", [])}  # type: ignore[call-overload]


def _pylist(values: Any) -> list[Any]:
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values.to_pylist()
    if isinstance(values, np.ndarray):
        return values.tolist()
    return values if isinstance(values, list) else list(values)


def _objects(values: Any, count: int) -> np.ndarray:
    out = np.empty(count, dtype=object)  # None throughout
    if not (isinstance(values, (pa.Array, pa.ChunkedArray)) and values.null_count == count):
        out[:] = _pylist(values)
    return out


def _float_array(values: Any) -> np.ndarray:
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    return np.asarray(values, dtype=np.float64)


def _nullable_floats(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """float64 values (NaN where None) and which are present (None is absent, NaN is not)."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        valid = values.is_valid().to_numpy(zero_copy_only=False)
        return values.to_numpy(zero_copy_only=False).astype(np.float64, copy=False), valid
    items = _pylist(values)
    valid = np.fromiter((v is not None for v in items), dtype=bool, count=len(items))
    if valid.all():
        return np.asarray(items, dtype=np.float64), valid
    return np.array([np.nan if v is None else v for v in items], dtype=np.float64), valid


def _as_joined(rows: list[tuple[dict[str, Any], dict[str, Any]]]) -> Joined:
    scores = [p["score"] for p, _ in rows]
    predicted = [p["predicted"] for p, _ in rows]
    return Joined(
        timestamps=np.array([p["timestamp"] for p, _ in rows], dtype=np.float64),
        labels=np.array([lbl["text"] if lbl["text"] is not None else "" for _, lbl in rows], dtype=object),
        scores=None
        if all(s is None for s in scores)
        else np.array([np.nan if s is None else s for s in scores], dtype=np.float64),
        classes=None if all(c is None for c in predicted) else np.array([c or "" for c in predicted], dtype=object),
        label_values=np.array([np.nan if lbl["value"] is None else lbl["value"] for _, lbl in rows], dtype=np.float64),
    )
