"""Column-wise accumulators for decoded rows, turned into contract tables in one go.

Decoders validate a record completely before appending it, so an append never fails
half-way and the columns always line up. Building the Arrow table is deferred to the
end of a message or a batch of messages: one table per model per batch costs far less
than a table per record.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pyarrow as pa

from exporter.decoders.arrow_text import text_array, utf8_safe
from exporter.decoders.feature_arrays import RowProblems, feature_array
from exporter.decoders.message_headers import Headers
from exporter.decoders.ndjson_columns import unify_features
from exporter.records import FEATURE_PREFIX, LABEL_SCHEMA, PREDICTION_FIELDS, Reason, Rejected, probability_column

Features = Mapping[str, object]
Source = tuple[bytes, Headers]
# Decodes a column-read message again line by line: its rows (one model) and refusals.
Redecode = Callable[[], tuple["PredictionRows | None", list[Rejected]]]


class PredictionRows:
    """Prediction rows of one model, held as Python lists until :meth:`build`."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.model_version: list[str | None] = []
        self.deployment_slot: list[str | None] = []
        self.model_namespace: list[str | None] = []
        self.request_id: list[str | None] = []
        self.timestamp: list[float] = []
        self.prediction_score: list[float | None] = []
        self.prediction_class: list[str | None] = []
        self.latency_ms: list[float | None] = []
        self.status: list[str | None] = []
        # A multiclass prediction's probability vector (None for the rest): ``p.k`` columns.
        self.probabilities: list[tuple[float, ...] | None] = []
        self.features: list[Features] = []
        # Where each row came from, so a row refused at build time can still be dead-lettered.
        self.sources: list[Source] = []
        # Messages read column-wise (see ndjson_columns): (rows above before it, its table,
        # how to read it line by line instead), and where they came from.
        self.tables: list[tuple[int, pa.Table, Redecode]] = []
        self.table_sources: list[Source] = []

    def __len__(self) -> int:
        return len(self.timestamp)

    def append(
        self,
        *,
        model_version: str | None,
        model_namespace: str | None,
        request_id: str | None,
        timestamp: float,
        prediction_score: float | None,
        prediction_class: str | None,
        latency_ms: float | None,
        status: str | None,
        features: Features,
        source: Source,
        deployment_slot: str | None = None,
        probabilities: tuple[float, ...] | None = None,
    ) -> None:
        self.model_version.append(model_version)
        self.deployment_slot.append(deployment_slot)
        self.model_namespace.append(model_namespace)
        self.request_id.append(request_id)
        self.timestamp.append(timestamp)
        self.prediction_score.append(prediction_score)
        self.prediction_class.append(prediction_class)
        self.latency_ms.append(latency_ms)
        self.status.append(status)
        self.features.append(features)
        self.probabilities.append(probabilities)
        self.sources.append(source)

    def append_table(self, table: pa.Table, redecode: Redecode, source: Source) -> None:
        """Add a message already read into the contract's columns (features may be null-typed)."""
        self.tables.append((len(self), table, redecode))
        self.table_sources.append(source)

    def extend(self, other: PredictionRows) -> None:
        """Add ``other``'s rows (read line by line) after these."""
        self.model_version.extend(other.model_version)
        self.deployment_slot.extend(other.deployment_slot)
        self.model_namespace.extend(other.model_namespace)
        self.request_id.extend(other.request_id)
        self.timestamp.extend(other.timestamp)
        self.prediction_score.extend(other.prediction_score)
        self.prediction_class.extend(other.prediction_class)
        self.latency_ms.extend(other.latency_ms)
        self.status.extend(other.status)
        self.features.extend(other.features)
        self.probabilities.extend(other.probabilities)
        self.sources.extend(other.sources)

    def build(self) -> tuple[pa.Table | None, list[Rejected]]:
        """The contract table (None when every row was refused) and the refused rows."""
        if self.tables:
            if len(self) == 0:
                # Only column-read messages: joined as one line-by-line decode would type them.
                table = unify_features([t for _, t, _ in self.tables], len(PREDICTION_FIELDS))
                if table is not None:
                    return table, []
            return self._line_by_line()
        rows = len(self)
        if rows == 0:
            return None, []
        names, columns, problems = _feature_columns(self.features)
        arrays = [
            text_array([self.model] * rows),
            text_array(self.model_version),
            text_array(self.deployment_slot),
            text_array(self.model_namespace),
            text_array(self.request_id),
            pa.array(self.timestamp, type=pa.float64()),
            pa.array(self.prediction_score, type=pa.float64(), from_pandas=True),
            text_array(self.prediction_class),
            pa.array(self.latency_ms, type=pa.float64(), from_pandas=True),
            text_array(self.status),
            *columns,
        ]
        fields = [*PREDICTION_FIELDS, *(pa.field(FEATURE_PREFIX + n, c.type) for n, c in zip(names, columns))]
        for position, column in _probability_columns(self.probabilities):
            arrays.append(column)
            fields.append(pa.field(probability_column(position), pa.float64()))
        table = pa.Table.from_arrays(arrays, schema=pa.schema(fields))
        if not problems:
            return table, []
        rejected = [
            Rejected(Reason.BAD_FEATURES, detail, *self.sources[row]) for row, detail in sorted(problems.items())
        ]
        keep = pa.array([row not in problems for row in range(rows)])
        kept = table.filter(keep)
        return (kept if kept.num_rows else None), rejected

    def _line_by_line(self) -> tuple[pa.Table | None, list[Rejected]]:
        """Build as if every message had been read line by line, in arrival order."""
        rows = PredictionRows(self.model)
        rejected: list[Rejected] = []
        done = 0
        for before, _, redecode in self.tables:
            rows.extend(self._slice(done, before))
            again, refused = redecode()
            if again is not None:
                rows.extend(again)
            rejected.extend(refused)
            done = before
        rows.extend(self._slice(done, len(self)))
        table, refused = rows.build()
        return table, [*rejected, *refused]

    def _slice(self, start: int, end: int) -> PredictionRows:
        part = PredictionRows(self.model)
        for name in (
            "model_version",
            "deployment_slot",
            "model_namespace",
            "request_id",
            "timestamp",
            "prediction_score",
            "prediction_class",
            "latency_ms",
            "status",
            "features",
            "probabilities",
            "sources",
        ):
            setattr(part, name, getattr(self, name)[start:end])
        return part


def _feature_columns(features: list[Features]) -> tuple[list[str], list[pa.Array], RowProblems]:
    # Producers nearly always send the same keys in the same order; then a transpose
    # in C replaces a dictionary lookup per value.
    first = tuple(features[0])
    if all(tuple(f) == first for f in features):
        values = list(map(list, zip(*(f.values() for f in features)))) if first else []
        by_name = dict(zip(first, values))
    else:
        by_name = _aligned_columns(features)
    names: list[str] = []
    columns: list[pa.Array] = []
    problems: RowProblems = {}
    for name, column_values in by_name.items():
        array, column_problems = feature_array(name, column_values)
        names.append(utf8_safe(name))
        columns.append(array)
        for row, detail in column_problems.items():
            problems.setdefault(row, detail)
    return names, columns, problems


def _aligned_columns(features: list[Features]) -> dict[str, list[object]]:
    rows = len(features)
    columns: dict[str, list[object]] = {}
    for row, record in enumerate(features):
        for name, value in record.items():
            column = columns.get(name)
            if column is None:
                column = columns[name] = [None] * rows
            column[row] = value
    return columns


class LabelRows:
    """Label rows (any model), held as Python lists until :meth:`build`."""

    def __init__(self) -> None:
        self.model: list[str] = []
        self.request_id: list[str] = []
        self.label_value: list[float | None] = []
        self.label_class: list[str] = []
        self.timestamp: list[float] = []

    def __len__(self) -> int:
        return len(self.timestamp)

    def append(
        self, model: str, request_id: str, label_value: float | None, label_class: str, timestamp: float
    ) -> None:
        self.model.append(model)
        self.request_id.append(request_id)
        self.label_value.append(label_value)
        self.label_class.append(label_class)
        self.timestamp.append(timestamp)

    def build(self) -> pa.Table | None:
        if not self.timestamp:
            return None
        arrays = [
            text_array(self.model),
            text_array(self.request_id),
            pa.array(self.label_value, type=pa.float64()),
            text_array(self.label_class),
            pa.array(self.timestamp, type=pa.float64()),
        ]
        return pa.Table.from_arrays(arrays, schema=LABEL_SCHEMA)


def _probability_columns(vectors: list[tuple[float, ...] | None]) -> list[tuple[int, pa.Array]]:
    """One float column per position of the rows' probability vectors (none when no row has
    one); a row without a vector, or with a shorter one, is null there."""
    width = max((len(v) for v in vectors if v is not None), default=0)
    return [
        (k, pa.array([v[k] if v is not None and k < len(v) else None for v in vectors], pa.float64()))
        for k in range(width)
    ]
