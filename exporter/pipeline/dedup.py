"""The same inference written twice is counted once: recent request ids, per model.

Two producers' habits write one inference twice: a client that retries after a 5xx from the
sidecar although Kafka already had the records (the sidecar died between Kafka's
acknowledgement and its answer), and a Kafka producer retrying without idempotence. Both
copies carry the same request id, so a record whose ``(model, request_id)`` is among the
model's recent ids is a duplicate: it is dropped **before** it is folded (a summary cannot
un-count) and counted in ``model_health_records_duplicate_total{topic}``. Records without a
request id are never duplicates.

Request ids must be unique per model for this to hold (the label join assumes it too); a
producer that reuses them should run with ``dedup.max_ids: 0``. Memory is bounded twice per
model: at most ``max_ids`` ids (the oldest go first, a batch at
a time, so the set holds up to ``max_ids`` plus one batch), and none older than
``ttl_seconds`` behind the newest event time seen for the model, so an id reused much later
is fresh again; and at most :data:`MAX_MODELS` models are remembered. The state is plain lists of ids, checkpointed with the windows
(:meth:`RecentRequestIds.export_documents`).

Checking is per batch, with set operations: the common batch — no id repeated inside it and
none among the recent ones — costs one ``set`` build and one ``isdisjoint``; only a batch that
holds a duplicate looks at rows one by one.

Where it runs (the guarantee, mode by mode, is stated in ``docs/producers.md``): single mode
keeps one per model over every partition; scale-out's stage 1 one per source range (it
keeps nothing across ranges, so that a range published again after a crash folds the same);
KServe/Seldon halves are deduplicated where they pair
(:class:`~exporter.decoders.joiner.HalfJoiner`).

>>> recent = RecentRequestIds(max_ids=1000, ttl_seconds=600.0)
>>> table = pa.table({"request_id": ["a", "b", "a", None], "timestamp": [1.0, 2.0, 1.0, 3.0]})
>>> kept = recent.keep_first("fraud", "topic", table)
>>> kept.column("request_id").to_pylist(), dict(recent.dropped)
(['a', 'b', None], {'topic': 1})
>>> recent.keep_first("fraud", "topic", table.slice(1, 1)).num_rows  # "b" again, a later poll
0
"""

from __future__ import annotations

import json
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

DEFAULT_MAX_IDS = 100_000
DEFAULT_TTL_SECONDS = 600.0
# Models remembered at most: a producer inventing model names must not grow memory without end
# (the aggregator only asks for configured models; the sidecar forwards whatever it is sent).
MAX_MODELS = 1_000
STATE_VERSION = 1


@dataclass
class _Chunk:
    ids: list[str]
    newest: float  # newest event time among them


@dataclass
class _Model:
    chunks: deque[_Chunk] = field(default_factory=deque)
    ids: set[str] = field(default_factory=set)
    newest: float = -np.inf

    def held(self) -> int:
        return len(self.ids)


class RecentRequestIds:
    """Recent request ids per model; :meth:`keep_first` drops the rows already seen."""

    def __init__(self, max_ids: int = DEFAULT_MAX_IDS, ttl_seconds: float = DEFAULT_TTL_SECONDS) -> None:
        if max_ids < 1:
            raise ValueError("max_ids must be at least 1")
        if not ttl_seconds > 0:
            raise ValueError("ttl_seconds must be positive")
        self.max_ids = max_ids
        self.ttl_seconds = ttl_seconds
        self._models: dict[str, _Model] = {}
        self.dropped: Counter[str] = Counter()  # topic → duplicates dropped (the caller drains it)

    def held(self, model: str) -> int:
        """Ids held for ``model`` now."""
        state = self._models.get(model)
        return state.held() if state is not None else 0

    def keep_first(self, model: str, topic: str, table: pa.Table) -> pa.Table:
        """``table`` without its rows whose request id was seen (earlier, or higher up in it)."""
        if table.num_rows == 0 or "request_id" not in table.column_names:
            return table
        column = table.column("request_id")
        if column.null_count == len(column):
            return table
        state = self._models.get(model)
        if state is None:
            if len(self._models) >= MAX_MODELS:
                return table
            state = self._models[model] = _Model()
        ids: list[Any] = column.to_pylist()
        batch = set(ids)
        batch.discard(None)
        keyed = len(ids) - column.null_count
        if len(batch) == keyed and state.ids.isdisjoint(batch):
            self._remember(state, batch, table)
            return table
        # A batch holding a duplicate: keep each id's first row, unless the id was seen before.
        column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        distinct = pc.unique(column).drop_null()
        position = pc.index_in(column, value_set=distinct).to_numpy(zero_copy_only=False)
        keyed_rows = ~np.isnan(position) if position.dtype.kind == "f" else np.ones(len(ids), dtype=bool)
        first = np.zeros(len(ids), dtype=bool)
        _, first_rows = np.unique(np.where(keyed_rows, position, -1), return_index=True)
        first[first_rows] = True
        already = batch & state.ids
        if already:
            first &= ~pc.is_in(column, value_set=pa.array(list(already), pa.string())).to_numpy(zero_copy_only=False)
        keep = first | ~keyed_rows
        self.dropped[topic] += int((~keep).sum())
        kept = table.filter(pa.array(keep))
        self._remember(state, batch - already, kept)
        return kept

    def drop_seen(self, model: str, topic: str, table: pa.Table) -> pa.Table:
        """``table`` without the rows whose request id is already held (nothing is remembered:
        the sidecar remembers ids only once Kafka has confirmed them, :meth:`remember`)."""
        state = self._models.get(model)
        if state is None or table.num_rows == 0 or "request_id" not in table.column_names:
            return table
        column = table.column("request_id")
        already = set(column.drop_null().to_pylist()) & state.ids
        if not already:
            return table
        seen = pc.fill_null(pc.is_in(column, value_set=pa.array(list(already), pa.string())), False)
        self.dropped[topic] += int(pc.sum(seen).as_py() or 0)
        return table.filter(pc.invert(seen))

    def remember(self, model: str, table: pa.Table) -> None:
        """Hold the request ids of ``table`` (rows taken for good)."""
        if table.num_rows == 0 or "request_id" not in table.column_names:
            return
        state = self._models.get(model)
        if state is None:
            if len(self._models) >= MAX_MODELS:
                return
            state = self._models[model] = _Model()
        ids = table.column("request_id").to_pylist()
        fresh = set(ids) - state.ids
        fresh.discard(None)
        self._remember(state, fresh, table)

    def _remember(self, state: _Model, batch: set[str], table: pa.Table) -> None:
        if not batch:
            return
        times = table.column("timestamp") if "timestamp" in table.column_names else None
        newest = pc.max(times).as_py() if times is not None and table.num_rows else None
        newest = float(newest) if newest is not None else state.newest
        state.ids.update(batch)
        state.chunks.append(_Chunk(list(batch), newest))  # evicted as a whole: order inside does not matter
        state.newest = max(state.newest, newest)
        self._evict(state)

    def _evict(self, state: _Model) -> None:
        horizon = state.newest - self.ttl_seconds
        chunks = state.chunks
        while chunks and (
            len(state.ids) - len(chunks[0].ids) >= self.max_ids or (len(chunks) > 1 and chunks[0].newest < horizon)
        ):
            state.ids.difference_update(chunks.popleft().ids)

    def take_dropped(self) -> Counter[str]:
        """The duplicates counted since the last call, by topic (and forget them)."""
        dropped, self.dropped = self.dropped, Counter()
        return dropped

    # Checkpoint support: ids seen before the checkpoint's offsets must come back with it, or
    # a copy after the offsets would be counted again. One JSON document per model: the
    # checkpoint keeps large state as rows, not in its metadata.
    def export_documents(self) -> list[str]:
        return [
            json.dumps(
                {
                    "version": STATE_VERSION,
                    "model": model,
                    "chunks": [
                        [chunk.ids, chunk.newest if np.isfinite(chunk.newest) else None] for chunk in state.chunks
                    ],
                }
            )
            for model, state in self._models.items()
        ]

    def import_documents(self, documents: Iterable[str]) -> None:
        """Replace what is held with saved documents (none clears it)."""
        self._models = {}
        for text in documents:
            saved = json.loads(text)
            if saved.get("version") != STATE_VERSION:
                raise ValueError(f"request-id state version {saved.get('version')!r} is not {STATE_VERSION}")
            state = self._models[str(saved["model"])] = _Model()
            for ids, newest in saved["chunks"]:
                time = float(newest) if newest is not None else -np.inf
                state.chunks.append(_Chunk([str(i) for i in ids], time))
                state.ids.update(state.chunks[-1].ids)
                state.newest = max(state.newest, time)
