"""Joining ground-truth labels to predictions by ``request_id``.

Labels usually arrive long after their predictions, sometimes before them. Both sides
wait in one bounded buffer with a time-to-live; a pair that meets is handed back for
folding into performance at the *prediction's* event time. An entry that outlives its
TTL, or is pushed out because the buffer is full, is counted as unmatched.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from exporter.windows import Joined


@dataclass
class _Prediction:
    version: str
    timestamp: float
    score: float | None
    predicted: str | None
    arrived: float


@dataclass
class _Label:
    text: str | None
    value: float | None
    arrived: float


@dataclass
class JoinCounts:
    joined: int = 0
    unmatched: int = 0


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
        self._predictions: OrderedDict[tuple[str, str], _Prediction] = OrderedDict()
        self._labels: OrderedDict[tuple[str, str], _Label] = OrderedDict()
        self.counts: dict[str, JoinCounts] = {}

    def pending_counts(self) -> dict[str, int]:
        """Predictions waiting for their label, per model (one pass over the buffer)."""
        counts: dict[str, int] = {}
        for model, _ in self._predictions:
            counts[model] = counts.get(model, 0) + 1
        return counts

    def _count(self, model: str) -> JoinCounts:
        return self.counts.setdefault(model, JoinCounts())

    def add_predictions(
        self,
        model: str,
        version: str,
        request_ids: list[str | None],
        timestamps: list[float],
        scores: list[float | None],
        predicted: list[str | None],
        now: float,
    ) -> dict[tuple[str, str], Joined]:
        """Buffer predictions; returns pairs whose label was already waiting."""
        rows: list[tuple[_Prediction, _Label]] = []
        for request_id, timestamp, score, cls in zip(request_ids, timestamps, scores, predicted):
            if request_id is None:
                continue
            key = (model, request_id)
            prediction = _Prediction(version, float(timestamp), score, cls, now)
            label = self._labels.pop(key, None)
            if label is not None:
                rows.append((prediction, label))
            else:
                self._predictions[key] = prediction
        self._bound()
        return self._joined(model, rows)

    def add_labels(self, labels: pa.Table, now: float) -> dict[tuple[str, str], Joined]:
        """Match labels to waiting predictions; the rest wait for theirs."""
        by_model: dict[str, list[tuple[_Prediction, _Label]]] = {}
        columns = labels.to_pydict()
        for model, request_id, value, text in zip(
            columns["model"], columns["request_id"], columns["label_value"], columns["label_class"]
        ):
            key = (model, request_id)
            label = _Label(text, value, now)
            prediction = self._predictions.pop(key, None)
            if prediction is not None:
                by_model.setdefault(model, []).append((prediction, label))
            else:
                self._labels[key] = label
        self._bound()
        out: dict[tuple[str, str], Joined] = {}
        for model, rows in by_model.items():
            out.update(self._joined(model, rows))
        return out

    def expire(self, now: float) -> None:
        """Count and drop entries older than the TTL (both sides)."""
        for buffer in (self._predictions, self._labels):
            while buffer:
                key, entry = next(iter(buffer.items()))
                if now - entry.arrived <= self.ttl:
                    break
                del buffer[key]
                self._count(key[0]).unmatched += 1

    def _bound(self) -> None:
        # Oldest first: insertion order is arrival order.
        for buffer in (self._predictions, self._labels):
            while len(buffer) > self.max_pending:
                key, _ = buffer.popitem(last=False)
                self._count(key[0]).unmatched += 1

    def _joined(self, model: str, rows: list[tuple[_Prediction, _Label]]) -> dict[tuple[str, str], Joined]:
        if not rows:
            return {}
        self._count(model).joined += len(rows)
        by_version: dict[str, list[tuple[_Prediction, _Label]]] = {}
        for pair in rows:
            by_version.setdefault(pair[0].version, []).append(pair)
        return {(model, version): _as_joined(pairs) for version, pairs in by_version.items()}

    # Checkpoint support: the buffers are part of the exactly-once state.
    def export_state(self) -> dict[str, list[list[object]]]:
        return {
            "predictions": [[m, r, p.version, p.timestamp, p.score, p.predicted, p.arrived] for (m, r), p in self._predictions.items()],
            "labels": [[m, r, lbl.text, lbl.value, lbl.arrived] for (m, r), lbl in self._labels.items()],
            "counts": [[m, c.joined, c.unmatched] for m, c in self.counts.items()],
        }

    def import_state(self, state: dict[str, list[list[object]]]) -> None:
        self._predictions = OrderedDict(
            ((str(m), str(r)), _Prediction(str(v), float(t), s, c, float(a)))  # type: ignore[arg-type]
            for m, r, v, t, s, c, a in state.get("predictions", [])
        )
        self._labels = OrderedDict(
            ((str(m), str(r)), _Label(text, value, float(a)))  # type: ignore[arg-type]
            for m, r, text, value, a in state.get("labels", [])
        )
        self.counts = {str(m): JoinCounts(int(j), int(u)) for m, j, u in state.get("counts", [])}  # type: ignore[call-overload]


def _as_joined(rows: list[tuple[_Prediction, _Label]]) -> Joined:
    scores = [p.score for p, _ in rows]
    predicted = [p.predicted for p, _ in rows]
    return Joined(
        timestamps=np.array([p.timestamp for p, _ in rows], dtype=np.float64),
        labels=np.array([lbl.text if lbl.text is not None else "" for _, lbl in rows], dtype=object),
        scores=None if all(s is None for s in scores) else np.array([np.nan if s is None else s for s in scores], dtype=np.float64),
        classes=None if all(c is None for c in predicted) else np.array([c or "" for c in predicted], dtype=object),
        label_values=np.array([np.nan if lbl.value is None else lbl.value for _, lbl in rows], dtype=np.float64),
    )
