"""Where decoders put what they made of one message, or of a whole batch of messages.

Rows are grouped by model as they arrive, so :meth:`DecodeSink.finish` hands out one
prediction table per model (plus any tables a decoder built itself, such as Arrow
batches) and one label table.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pyarrow as pa

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

    def predictions_for(self, model: str) -> PredictionRows:
        rows = self._predictions.get(model)
        if rows is None:
            rows = self._predictions[model] = PredictionRows(model)
        return rows

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
        decoded = Decoded(predictions=self.prediction_tables, labels=self.label_tables, rejected=self.rejected)
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


def _unbuildable(rows: PredictionRows, exc: Exception) -> list[Rejected]:
    detail = f"rows could not form a table: {type(exc).__name__}: {str(exc)[:200]}"
    sources = dict.fromkeys((payload, headers) for payload, headers in rows.sources)
    return [Rejected(Reason.BAD_FEATURES, detail, payload, headers) for payload, headers in sources]
