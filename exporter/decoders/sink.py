"""Where decoders put what they made of one message, or of a whole batch of messages.

Rows are grouped by model as they arrive, so :meth:`DecodeSink.finish` hands out one
prediction table per model (plus any tables a decoder built itself, such as Arrow
batches) and one label table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from exporter.decoders.message_headers import Headers
from exporter.decoders.record_error import RecordError
from exporter.decoders.row_builders import LabelRows, PredictionRows
from exporter.records import Decoded, Reason, Rejected


class DecodeSink:
    """Accumulates decoded rows, ready-made tables and refusals."""

    def __init__(self) -> None:
        self._clear()

    def _clear(self) -> None:
        self._predictions: dict[str, PredictionRows] = {}
        self.labels = LabelRows()
        self.prediction_tables: list[pa.Table] = []
        self.label_tables: list[pa.Table] = []
        self.rejected: list[Rejected] = []
        self.duplicates = 0  # copies dropped (the join buffers count them here)
        self._deferred: dict[Callable[[DecodeSink, list[Any]], None], list[Any]] = {}

    def predictions_for(self, model: str) -> PredictionRows:
        rows = self._predictions.get(model)
        if rows is None:
            rows = self._predictions[model] = PredictionRows(model)
        return rows

    @property
    def pending_rows(self) -> int:
        """Prediction rows appended one by one and not yet built into a table by :meth:`finish`."""
        return sum(len(rows) for rows in self._predictions.values())

    def defer(self, finisher: Callable[[DecodeSink, list[Any]], None], item: Any) -> None:
        """Hold ``item`` until :meth:`finish`, which hands ``finisher`` all its items at once,
        in order: a decoder does per batch what would cost as much again per message."""
        self._deferred.setdefault(finisher, []).append(item)

    def reject(self, error: RecordError, payload: bytes, headers: Headers) -> None:
        self.rejected.append(Rejected(error.reason, error.detail, payload, headers))

    @contextmanager
    def guard(self, reason: Reason, payload: bytes, headers: Headers) -> Iterator[None]:
        """Refuse the message with ``reason`` if decoding it fails in a way no check foresaw.

        The consumer must outlive any input: a parser failing on hostile bytes costs that
        message, dead-lettered with the error, never the consumer.
        """
        try:
            yield
        except Exception as exc:  # noqa: BLE001
            detail = f"decoder failed: {type(exc).__name__}: {str(exc)[:200]}"
            self.rejected.append(Rejected(reason, detail, payload, headers))

    def finish(self) -> Decoded:
        """Everything collected so far, as contract tables; the sink is empty afterwards."""
        deferred, self._deferred = self._deferred, {}
        for finisher, items in deferred.items():
            finisher(self, items)
        decoded = Decoded(
            predictions=merged_runs(self.prediction_tables),
            labels=self.label_tables,
            rejected=self.rejected,
            duplicates=self.duplicates,
        )
        for rows in self._predictions.values():
            try:
                table, refused = rows.build()
            except Exception as exc:  # noqa: BLE001 - same reasoning as guard()
                table, refused = None, _unbuildable(rows, exc)
            if table is not None:
                decoded.predictions.append(table)
            decoded.rejected.extend(refused)
        labels = self.labels.build()
        if labels is not None:
            decoded.labels.append(labels)
        self._clear()
        return decoded


def merged_runs(tables: list[pa.Table]) -> list[pa.Table]:
    """Consecutive tables of one model and one schema (a poll's Arrow messages) as one table.

    Folding, routing and the label join then run once per poll instead of once per message;
    each input table stays a chunk, so the windows can still fold them one by one where the
    order matters (lateness).
    """
    out: list[pa.Table] = []
    run: list[pa.Table] = []
    model: object = None
    for table in tables:
        table_model = _single_model(table)
        if run and (table_model is None or table_model != model or table.schema != run[0].schema):
            out.append(run[0] if len(run) == 1 else pa.concat_tables(run))
            run = []
        run.append(table)
        model = table_model
    if run:
        out.append(run[0] if len(run) == 1 else pa.concat_tables(run))
    return out


def _single_model(table: pa.Table) -> object:
    """The one model of a table's rows (None when it holds several or none)."""
    if table.num_rows == 0 or "model" not in table.column_names:
        return None
    column = table.column("model")
    first = column[0].as_py()
    if first is None or column.null_count or not pc.all(pc.equal(column, first)).as_py():
        return None
    return first


def _unbuildable(rows: PredictionRows, exc: Exception) -> list[Rejected]:
    detail = f"rows could not form a table: {type(exc).__name__}: {str(exc)[:200]}"
    sources = dict.fromkeys((payload, headers) for payload, headers in [*rows.sources, *rows.table_sources])
    return [Rejected(Reason.BAD_FEATURES, detail, payload, headers) for payload, headers in sources]
