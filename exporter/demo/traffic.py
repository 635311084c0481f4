"""Synthetic live traffic for the demo: prediction records now, their labels a little later.

The model is :mod:`exporter.demo.synthetic`'s credit-scoring stand-in. Until ``drift_after``
seconds have passed the records come from the reference distribution; from then on the
drifted columns move and the score explains the label less well (concept drift), so both
feature drift and a performance drop appear. Labels arrive ``label_delay`` seconds after
their prediction, as a ground-truth pipeline would deliver them.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from exporter.demo.synthetic import drifted_columns, synthetic_table

Record = dict[str, Any]


@dataclass(frozen=True)
class Shape:
    """How many columns the synthetic model has and how many of them drift."""

    numeric: int = 8
    categorical: int = 3
    drifted: int = 3

    def drifted_columns(self) -> list[str]:
        return drifted_columns(self.numeric, self.categorical, self.drifted)

    def table(self, rows: int, *, drift: bool, seed: int) -> Any:
        return synthetic_table(
            rows, numeric=self.numeric, categorical=self.categorical, drifted=self.drifted, drift=drift, seed=seed
        )


@dataclass
class TrafficGenerator:
    """Yields the records due at each tick; the caller owns the clock and the sending.

    ``rate`` is predictions per second. Fractions of a record carry over between ticks, so
    the long-run rate is exact whatever the tick length.
    """

    model: str
    model_version: str
    started_at: float
    rate: float = 200.0
    drift_after: float = 60.0
    label_delay: float = 5.0
    shape: Shape = field(default_factory=Shape)
    seed: int = 11
    _carry: float = 0.0
    _last: float | None = None
    _tick: int = 0
    _sent: int = 0
    _labels: deque[tuple[float, Record]] = field(default_factory=deque)

    def drifting(self, now: float) -> bool:
        return now - self.started_at >= self.drift_after

    def tick(self, now: float) -> tuple[list[Record], list[Record]]:
        """Predictions produced since the last tick, and the labels now due."""
        elapsed = 0.0 if self._last is None else max(0.0, now - self._last)
        self._last = now
        wanted = self._carry + elapsed * self.rate
        rows = int(wanted)
        self._carry = wanted - rows
        predictions = self._predictions(rows, now) if rows else []
        due: list[Record] = []
        while self._labels and self._labels[0][0] <= now:
            due.append(self._labels.popleft()[1])
        return predictions, due

    def _predictions(self, rows: int, now: float) -> list[Record]:
        self._tick += 1
        table = self.shape.table(rows, drift=self.drifting(now), seed=self.seed * 1_000_003 + self._tick)
        rng = np.random.default_rng(self.seed + self._tick)
        features = {
            name: _plain(table.column(name).to_pylist())
            for name in table.column_names
            if name not in ("prediction", "label")
        }
        scores = table.column("prediction").to_pylist()
        labels = table.column("label").to_pylist()
        # Serving latency: log-normal around 20 ms, slower once the inputs drift.
        latency = rng.lognormal(math.log(30.0 if self.drifting(now) else 20.0), 0.4, rows)
        # Spread the batch's event times over the tick so buckets fill smoothly.
        times = now - rng.uniform(0.0, 0.5, rows)
        records: list[Record] = []
        for i in range(rows):
            request_id = f"{self.model}-{self.seed}-{self._sent + i}"
            records.append(
                {
                    "model": self.model,
                    "model_version": self.model_version,
                    "request_id": request_id,
                    "timestamp": float(times[i]),
                    "features": {name: values[i] for name, values in features.items()},
                    "prediction": scores[i],
                    "latency_ms": float(latency[i]),
                    "status": "ok",
                }
            )
            label = {
                "model": self.model,
                "request_id": request_id,
                "label": int(labels[i]),
                "timestamp": float(times[i]),
            }
            self._labels.append((now + self.label_delay, label))
        self._sent += rows
        return records


def _plain(values: list[Any]) -> list[Any]:
    # JSON has no NaN: a missing value travels as null, which the decoders count as missing.
    return [None if isinstance(v, float) and math.isnan(v) else v for v in values]
