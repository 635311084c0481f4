"""Joining ground-truth labels to predictions by request.

Labels usually arrive long after their predictions, sometimes before them. Both sides
wait in one bounded buffer with a time-to-live; a pair that meets is handed back for
folding into performance at the *prediction's* event time. An entry that outlives its
TTL, or is pushed out because the buffer is full, is counted as unmatched.

A request is found by its 64-bit key (:mod:`~exporter.pipeline.request_keys`: the request
id hashed together with the model name), so predictions and labels of every model share one
index per side (:mod:`~exporter.pipeline.key_index`) and a batch meets the other side with a
few array operations whatever it holds — repeated keys, keys already waiting, several
models. Each side keeps its entries column-wise in arrival order. The rules are those of an
insertion-ordered dict applied record by record: a record whose partner waits takes it;
otherwise it waits, and a key seen again keeps its place and takes the new values; the
oldest entries are the first to expire or to be pushed out.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from exporter.pipeline.buckets import Joined
from exporter.pipeline.key_index import KeyIndex, repeated
from exporter.pipeline.request_keys import request_keys

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
_NO_ROWS = np.zeros(0, dtype=np.int64)


@dataclass
class JoinCounts:
    joined: int = 0
    unmatched: int = 0


class _Side:
    """One side of the join: entries in arrival order, column-wise, found by request key.

    Entries are numbered in arrival order (a sequence number never reused until the side is
    renumbered); position in the arrays is ``seq − base``. Entries taken by a join leave a
    hole that is dropped when it reaches the oldest end, or when holes outnumber live entries.
    """

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields
        self.base = 0  # sequence number of position 0
        self.head = 0  # every entry before this one is gone
        self.end = 0  # the next sequence number
        self.columns: dict[str, np.ndarray] = {}
        self.valid: dict[str, np.ndarray] = {}
        self.alive = np.zeros(0, dtype=bool)
        self.models = np.zeros(0, dtype=np.int32)  # the joiner's model codes
        self.keys = np.zeros(0, dtype=np.uint64)
        self.index = KeyIndex()  # key → sequence number
        self._allocate(0)

    def __len__(self) -> int:
        return len(self.index)

    # ------------------------------------------------------------------ storage

    def _arrays(self) -> list[np.ndarray]:
        return [*self.columns.values(), *self.valid.values(), self.alive, self.models, self.keys]

    def _allocate(self, capacity: int) -> None:
        used = self.end - self.base
        old = self._arrays() if self.columns else []
        self.columns = {name: np.empty(capacity, dtype=kind) for name, kind in self.fields.items()}
        self.valid = {name: np.zeros(capacity, dtype=bool) for name in self.fields if name in _NULLABLE_FLOATS}
        self.alive = np.zeros(capacity, dtype=bool)
        self.models = np.zeros(capacity, dtype=np.int32)
        self.keys = np.zeros(capacity, dtype=np.uint64)
        for target, source in zip(self._arrays(), old):
            target[:used] = source[:used]

    def _reserve(self, extra: int) -> None:
        if self.end - self.base + extra <= self.alive.size:
            return
        span = self.end - self.head
        if span > 2 * len(self) + _MIN_CAPACITY:
            self._renumber()
        elif self.head > self.base:
            self._shift()
        needed = self.end - self.base + extra
        if needed > self.alive.size:
            self._allocate(max(needed, 2 * self.alive.size, _MIN_CAPACITY))

    def _shift(self) -> None:
        """Drop the gone entries before ``head``; sequence numbers stay."""
        cut, used = self.head - self.base, self.end - self.base
        for array in self._arrays():
            array[: used - cut] = array[cut:used]
        self.alive[used - cut : used] = False
        self.base = self.head

    def _renumber(self) -> None:
        """Close the holes left by joins: live entries move together, in order, renumbered."""
        used = self.end - self.base
        keep = np.flatnonzero(self.alive[:used])
        for array in self._arrays():
            if array is not self.alive:
                array[: keep.size] = array[keep]
        self.alive[:used] = False
        self.alive[: keep.size] = True
        self.base = self.head = self.end
        self.end = self.base + keep.size
        self.index = KeyIndex(4 * keep.size)
        self.index.insert(self.keys[: keep.size], np.arange(self.base, self.end, dtype=np.int64))

    def _advance_head(self) -> None:
        used = self.end - self.base
        start = self.head - self.base
        if start < used and not self.alive[start]:
            ahead = np.flatnonzero(self.alive[start:used])
            self.head = self.base + start + (int(ahead[0]) if ahead.size else used - start)

    # ------------------------------------------------------------------ entries

    def positions_at(self, slots: np.ndarray) -> np.ndarray:
        """Where the entries are whose keys the index holds in ``slots`` (``index.slots_of``),
        valid until the next append."""
        return self.index.values[slots] - self.base

    def take(self, slots: np.ndarray) -> np.ndarray:
        """Remove the entries whose keys the index holds in ``slots`` (``index.slots_of``);
        their positions (valid until the next append)."""
        seqs = self.index.remove_at(slots)
        positions = seqs - self.base
        self.alive[positions] = False
        if positions.size and bool((positions == self.head - self.base).any()):
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

    def assign(self, positions: np.ndarray, values: dict[str, np.ndarray], valid: dict[str, np.ndarray]) -> None:
        """New values for waiting entries (their places stay)."""
        for name, column in values.items():
            self.columns[name][positions] = column
        for name, mask in valid.items():
            self.valid[name][positions] = mask

    def append(
        self,
        keys: np.ndarray,
        models: np.ndarray | int,
        values: dict[str, np.ndarray],
        valid: dict[str, np.ndarray],
    ) -> None:
        """Add entries whose keys are distinct and not waiting, in this order."""
        count = keys.size
        if count == 0:
            return
        self._reserve(count)
        start = self.end - self.base
        window = slice(start, start + count)
        for name, column in values.items():
            self.columns[name][window] = column
        for name, mask in valid.items():
            self.valid[name][window] = mask
        self.alive[window] = True
        self.models[window] = models
        self.keys[window] = keys
        self.index.insert(keys, np.arange(self.end, self.end + count, dtype=np.int64))
        self.end += count

    def evict_oldest(self, count: int) -> np.ndarray:
        """Drop the ``count`` oldest entries; returns their model codes."""
        return self._evict(self._oldest(count))

    def expire(self, now: float, ttl: float) -> np.ndarray:
        """Drop the oldest entries, up to the first that has not outlived ``ttl``; their model codes."""
        start, used = self.head - self.base, self.end - self.base
        # Entries arrive in clock order and ``head`` is the oldest live one: when it is within
        # the TTL, so is every other (no scan of the side for the common case).
        if start >= used or now - self.columns["arrived"][start] <= ttl:
            return _NO_ROWS
        live = np.flatnonzero(self.alive[start:used]) + start
        if live.size == 0:
            return _NO_ROWS
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
        return np.concatenate(out) if out else _NO_ROWS

    def _evict(self, positions: np.ndarray) -> np.ndarray:
        if positions.size == 0:
            return _NO_ROWS
        self.alive[positions] = False
        self.index.remove(self.keys[positions])
        self._advance_head()
        return self.models[positions]

    def entries(self) -> Iterator[tuple[int, int, int]]:
        """(model code, request key, position) of every waiting entry, oldest first."""
        start, used = self.head - self.base, self.end - self.base
        positions = np.flatnonzero(self.alive[start:used]) + start
        yield from zip(self.models[positions].tolist(), self.keys[positions].tolist(), positions.tolist())

    def model_counts(self) -> np.ndarray:
        """Waiting entries per model code."""
        start, used = self.head - self.base, self.end - self.base
        return np.bincount(self.models[start:used][self.alive[start:used]])


def _meet(
    side: _Side,
    other: _Side,
    keys: np.ndarray,
    models: np.ndarray | int,
    values: dict[str, np.ndarray],
    valid: dict[str, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """A batch of ``side``'s records meets ``other``, as if record by record in batch order.

    Returns the batch rows that found their partner waiting (in batch order) and the
    partners' positions in ``other`` (valid until its next append). Of the rest, a key
    already waiting in ``side`` takes the values of its last record in place; a new key
    waits at its first record's place (its second's, when the first took a partner) with
    the values of its last record.
    """
    count = keys.size
    if count == 0:
        return _NO_ROWS, _NO_ROWS
    if not repeated(keys):  # every key once: the common case
        first = last = np.arange(count)
        second = np.full(count, -1)
        distinct = keys
    else:
        order = np.argsort(keys, kind="stable")
        ordered = keys[order]
        run_starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
        run_ends = np.append(run_starts[1:], count)
        first, last = order[run_starts], order[run_ends - 1]
        second = np.where(run_ends - run_starts > 1, order[np.minimum(run_starts + 1, count - 1)], -1)
        in_batch_order = np.argsort(first)
        first, last, second = first[in_batch_order], last[in_batch_order], second[in_batch_order]
        distinct = keys[first]
    found = other.index.slots_of(distinct)
    met = found >= 0
    partners = other.take(found[met]) if met.any() else _NO_ROWS
    own = np.full(distinct.size, -1, dtype=np.int64)
    own[~met] = side.index.slots_of(distinct[~met])
    waiting = own >= 0
    if waiting.any():
        rows = last[waiting]
        side.assign(
            side.positions_at(own[waiting]),
            {name: column[rows] for name, column in values.items()},
            {name: mask[rows] for name, mask in valid.items()},
        )
    place = np.where(met, second, first)
    new = ~waiting & (place >= 0)
    if new.any():
        arrival = np.argsort(place[new], kind="stable")
        rows, placed = last[new][arrival], place[new][arrival]
        side.append(
            distinct[new][arrival],
            models if isinstance(models, int) else models[placed],
            {name: column[rows] for name, column in values.items()},
            {name: mask[rows] for name, mask in valid.items()},
        )
    return first[met], partners


class LabelJoiner:
    """Bounded, TTL'd meeting point of predictions and labels, per model.

    >>> joiner = LabelJoiner(ttl_seconds=60, max_pending=10)
    >>> _ = joiner.add_predictions("m", "1", request_keys("m", ["r1"]), [100.0], [0.9], [None], now=100.0)
    >>> labels = pa.table({"model": ["m"], "request_key": request_keys("m", ["r1"]), "label_value": [1.0],
    ...                    "label_class": ["1"]})
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
        self._models: list[str] = []  # model code → name
        self._codes: dict[str, int] = {}
        self._dropped: set[str] = set()  # models that lost entries unmatched since take_dropped

    def _code(self, model: str) -> int:
        code = self._codes.get(model)
        if code is None:
            code = self._codes[model] = len(self._models)
            self._models.append(model)
        return code

    def pending_counts(self) -> dict[str, int]:
        """Predictions waiting for their label, per model."""
        counts = self._predictions.model_counts()
        return {self._models[code]: int(n) for code, n in enumerate(counts.tolist()) if n}

    def _count(self, model: str) -> JoinCounts:
        return self.counts.setdefault(model, JoinCounts())

    def add_counts(self, model: str, joined: int, unmatched: int) -> None:
        """Count pairs made and entries dropped elsewhere (a join shard's report) as this join's."""
        if not (joined or unmatched):
            return  # a model with nothing counted has no series yet, as when it joins here
        counts = self._count(model)
        counts.joined += joined
        counts.unmatched += unmatched

    def _count_codes(self, codes: np.ndarray, field: str) -> None:
        if codes.size:
            for code, n in enumerate(np.bincount(codes).tolist()):
                if n:
                    model = self._models[code]
                    counts = self._count(model)
                    setattr(counts, field, getattr(counts, field) + n)
                    if field == "unmatched":
                        self._dropped.add(model)

    def take_dropped(self) -> set[str]:
        """The models that lost entries unmatched (TTL or overflow) since the last call."""
        dropped, self._dropped = self._dropped, set()
        return dropped

    def add_predictions(
        self,
        model: str,
        version: str,
        keys: np.ndarray | pa.Array | pa.ChunkedArray,
        timestamps: Sequence[float] | np.ndarray | pa.Array | pa.ChunkedArray,
        scores: Sequence[float | None] | pa.Array | pa.ChunkedArray,
        predicted: Sequence[str | None] | pa.Array | pa.ChunkedArray,
        now: float,
    ) -> dict[tuple[str, str], Joined]:
        """Buffer predictions (``keys``: their request keys under ``model``); returns pairs
        whose label was already waiting."""
        keys = _keys(keys)
        code = self._code(model)
        times = _float_array(timestamps)
        score_values, score_valid = _nullable_floats(scores)
        classes = _objects(predicted, keys.size)
        rows, labels = _meet(
            self._predictions,
            self._labels,
            keys,
            code,
            {
                "version": np.full(keys.size, version, dtype=object),
                "timestamp": times,
                "score": score_values,
                "predicted": classes,
                "arrived": np.full(keys.size, now, dtype=np.float64),
            },
            {"score": score_valid},
        )
        joined = {}
        if rows.size:
            self._count(model).joined += int(rows.size)
            joined = _pairs(
                [model],
                np.zeros(rows.size, dtype=np.int32),
                np.full(rows.size, version, dtype=object),
                times[rows],
                np.where(score_valid[rows], score_values[rows], np.nan),
                score_valid[rows],
                classes[rows],
                self._labels.values_at(labels, "text"),
                self._labels.values_at(labels, "value"),
            )
        self._bound()
        return joined

    def add_join_rows(self, model: str, version: str, rows: pa.Table, now: float) -> dict[tuple[str, str], Joined]:
        """:meth:`add_predictions` for a partial's join rows (``JOIN_SCHEMA`` of :mod:`exporter.pipeline.partial`)."""
        return self.add_predictions(
            model,
            version,
            rows.column("request_key"),
            rows.column("timestamp"),
            rows.column("prediction_score"),
            rows.column("prediction_class"),
            now,
        )

    def add_labels(self, labels: pa.Table, now: float) -> dict[tuple[str, str], Joined]:
        """Match labels (columns ``model``, ``request_key``, ``label_value``, ``label_class``)
        to waiting predictions; the rest wait for theirs."""
        count = labels.num_rows
        if count == 0:
            return {}
        models = labels.column("model")
        names = models.unique().to_pylist()
        codes: np.ndarray | int
        if len(names) == 1:
            codes = self._code(names[0])
        else:
            table = np.array([self._code(name) for name in names], dtype=np.int32)
            codes = table[pc.index_in(models, value_set=pa.array(names, models.type)).to_numpy(zero_copy_only=False)]
        keys = _keys(labels.column("request_key"))
        texts = _objects(labels.column("label_class"), count)
        values, valid = _nullable_floats(labels.column("label_value"))
        rows, predictions = _meet(
            self._labels,
            self._predictions,
            keys,
            codes,
            {"text": texts, "value": values, "arrived": np.full(count, now, dtype=np.float64)},
            {"value": valid},
        )
        joined = {}
        if rows.size:
            side = self._predictions
            pair_codes = side.models[predictions]
            self._count_codes(pair_codes, "joined")
            joined = _pairs(
                self._models,
                pair_codes,
                side.columns["version"][predictions],
                side.values_at(predictions, "timestamp"),
                side.values_at(predictions, "score"),
                side.valid["score"][predictions],
                side.columns["predicted"][predictions],
                texts[rows],
                np.where(valid[rows], values[rows], np.nan),
            )
        self._bound()
        return joined

    def expire(self, now: float) -> None:
        """Count and drop entries older than the TTL (both sides)."""
        for side in (self._predictions, self._labels):
            self._count_codes(side.expire(now, self.ttl), "unmatched")

    def _bound(self) -> None:
        # Oldest first: arrival order.
        for side in (self._predictions, self._labels):
            if len(side) > self.max_pending:
                self._count_codes(side.evict_oldest(len(side) - self.max_pending), "unmatched")

    # Checkpoint support: the buffers are part of the exactly-once state.
    def export_state(self) -> dict[str, list[list[object]]]:
        """Entries as JSON lists, oldest first: ``[model, request key, …values]``."""
        p, lb, names = self._predictions, self._labels, self._models
        return {
            "predictions": [
                [
                    names[m],
                    k,
                    p.value(i, "version"),
                    p.value(i, "timestamp"),
                    p.value(i, "score"),
                    p.value(i, "predicted"),
                    p.value(i, "arrived"),
                ]
                for m, k, i in p.entries()
            ],
            "labels": [
                [names[m], k, lb.value(i, "text"), lb.value(i, "value"), lb.value(i, "arrived")]
                for m, k, i in lb.entries()
            ],
            "counts": [[m, c.joined, c.unmatched] for m, c in self.counts.items()],
        }

    def import_state(self, state: dict[str, list[list[object]]]) -> None:
        """What :meth:`export_state` wrote; a request id (text, a checkpoint written before
        keys) is keyed here."""
        self._predictions = _Side(_PREDICTION_FIELDS)
        self._labels = _Side(_LABEL_FIELDS)
        predictions = state.get("predictions", [])
        if predictions:
            columns = list(zip(*predictions))
            self._restore(
                self._predictions,
                columns[0],
                columns[1],
                {
                    "version": np.array([str(v) for v in columns[2]], dtype=object),
                    "timestamp": np.array(columns[3], dtype=np.float64),
                    "predicted": _objects(list(columns[5]), len(predictions)),
                    "arrived": np.array(columns[6], dtype=np.float64),
                },
                {"score": columns[4]},
            )
        labels = state.get("labels", [])
        if labels:
            columns = list(zip(*labels))
            self._restore(
                self._labels,
                columns[0],
                columns[1],
                {"text": _objects(list(columns[2]), len(labels)), "arrived": np.array(columns[4], dtype=np.float64)},
                {"value": columns[3]},
            )
        self.counts = {str(m): JoinCounts(int(j), int(u)) for m, j, u in state.get("counts", [])}  # type: ignore[call-overload]

    def _restore(
        self,
        side: _Side,
        models: Sequence[object],
        requests: Sequence[object],
        values: dict[str, np.ndarray],
        nullable: dict[str, Sequence[object]],
    ) -> None:
        codes = np.array([self._code(str(m)) for m in models], dtype=np.int32)
        keys = np.array(
            [
                int(request_keys(str(m), [r])[0]) if isinstance(r, str) else int(r)  # type: ignore[call-overload]
                for m, r in zip(models, requests)
            ],
            dtype=np.uint64,
        )
        valid = {}
        for name, items in nullable.items():
            values[name], valid[name] = _nullable_floats(list(items))
        # Entries were distinct when exported; apply the rules anyway (an older checkpoint's
        # ids could hash alike): a later entry of one key replaces the earlier in place.
        _meet(side, _Side(side.fields), keys, codes, values, valid)


def _pairs(
    names: Sequence[str],
    models: np.ndarray,
    versions: np.ndarray,
    timestamps: np.ndarray,
    scores: np.ndarray,
    scored: np.ndarray,
    classes: np.ndarray,
    texts: np.ndarray,
    values: np.ndarray,
) -> dict[tuple[str, str], Joined]:
    """Joined pairs, column-wise, split by model (codes into ``names``) and version."""
    out = {}
    if models.size and (models == models[0]).all() and (versions == versions[0]).all():
        groups = [(int(models[0]), versions[0])]  # one model version: no Python loop over the pairs
    else:
        groups = list(dict.fromkeys(zip(models.tolist(), versions.tolist())))
    for code, version in groups:
        part: slice | np.ndarray = (
            slice(None) if len(groups) == 1 else np.flatnonzero((models == code) & (versions == version))
        )
        predicted = classes[part]
        unclassed = _is_none(predicted)
        out[(names[code], str(version))] = Joined(
            timestamps=timestamps[part].astype(np.float64),
            labels=_text_or_empty(texts[part]),
            scores=scores[part].astype(np.float64) if scored[part].any() else None,
            classes=None if unclassed.all() else _text_or_empty(predicted, unclassed),
            label_values=values[part].astype(np.float64),
        )
    return out


def _text_or_empty(texts: np.ndarray, absent: np.ndarray | None = None) -> np.ndarray:
    """An object array of text with "" where it held None."""
    out = np.array(texts, dtype=object)  # a copy
    out[_is_none(texts) if absent is None else absent] = ""
    return out


_NONE = np.array(None, dtype=object)


def _is_none(values: np.ndarray) -> np.ndarray:
    """Which items of an object array are None (element-wise, in C)."""
    return np.equal(values, _NONE)


def _keys(values: Any) -> np.ndarray:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    if isinstance(values, pa.Array):
        values = values.to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=np.uint64)


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
