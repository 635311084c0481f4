"""Arrow IPC prediction logs: each message is an IPC stream (or file) of record batches.

Columns are those of the native JSON record, features as ``f.<name>``. Producers write
Arrow with whatever types their data frame had, so columns are normalised here: the
prediction may be one ``prediction`` column (number, text, boolean, or a struct of
``score``/``class``) or ``prediction_score``/``prediction_class``; ``timestamp`` may be
numeric epoch seconds, an Arrow timestamp or RFC 3339 text; missing optional columns
become nulls, a missing or null ``timestamp`` becomes ``now``. A batch with a ``label``
column and no feature columns is a label batch.

A column of the wrong kind refuses the message; a bad value in a row (a null model, a
NaN time) refuses that row only, dead-lettered as a one-row IPC stream.

Prediction batches are normalised at the end of a consumer batch: consecutive messages
with one schema and one model are concatenated (each stays a chunk) and normalised once,
which gives the same rows and refusals as one message at a time for a fraction of the
per-message cost; anything unexpected falls back to one message at a time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from exporter.decoders.message_headers import Headers, HeadersIn, normalise_headers
from exporter.decoders.native_json import add_label
from exporter.decoders.record_error import RecordError
from exporter.decoders.sink import DecodeSink
from exporter.decoders.timestamps import rfc3339_seconds
from exporter.records import FEATURE_PREFIX, PREDICTION_FIELDS, PROBABILITY_PREFIX, Decoded, Reason, Rejected

STREAM_CONTINUATION = b"\xff\xff\xff\xff"
FILE_MAGIC = b"ARROW1"

RowProblems = dict[int, RecordError]

_TIME_UNITS_PER_SECOND = MappingProxyType({"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000})
_OPTIONAL_TEXT = ("model_version", "deployment_slot", "model_namespace", "request_id", "status")


def looks_like_arrow(value: bytes) -> bool:
    """Whether ``value`` starts like an Arrow IPC stream or file.

    >>> looks_like_arrow(b"\\xff\\xff\\xff\\xff\\x10\\x00"), looks_like_arrow(b'{"model": 1}')
    (True, False)
    """
    return value[:4] == STREAM_CONTINUATION or value[:6] == FILE_MAGIC


def decode_arrow_ipc(value: bytes, now: float, *, headers: HeadersIn = None, labels_only: bool = False) -> Decoded:
    """Decode one Arrow IPC message; ``now`` stands in for missing timestamps."""
    sink = DecodeSink()
    message_headers = normalise_headers(headers)
    with sink.guard(Reason.INVALID_ARROW, value, message_headers):
        decode_arrow_ipc_into(sink, value, message_headers, now, labels_only=labels_only)
    return sink.finish()


def decode_arrow_ipc_into(
    sink: DecodeSink, value: bytes, headers: Headers, now: float, *, labels_only: bool = False
) -> None:
    """Add one message's rows to ``sink`` as ready-made tables (one per model): labels at
    once, predictions when the sink finishes its batch."""
    try:
        table = read_ipc(value)
        if table.num_rows == 0:
            return
        if labels_only or ("label" in table.column_names and not _feature_names(table)):
            _add_labels(sink, table, headers, now)
            return
    except RecordError as error:
        sink.reject(error, value, headers)
        return
    sink.defer(_finish_predictions, _Pending(table, value, headers, now, _only_model(table)))


@dataclass(frozen=True)
class _Pending:
    """A read prediction message waiting for the end of its batch."""

    table: pa.Table
    value: bytes
    headers: Headers
    now: float
    model: Any  # the one model of its rows; None when several, null or no column


def _only_model(table: pa.Table) -> Any:
    if "model" not in table.column_names:
        return None
    column = table.column("model")
    try:
        if column.null_count or pc.count_distinct(column).as_py() != 1:
            return None
        return column[0].as_py()
    except (pa.ArrowException, TypeError, ValueError):
        return None  # an odd model column: normalised alone, where it is refused or cast


def _finish_predictions(sink: DecodeSink, items: list[_Pending]) -> None:
    """Normalise a batch's prediction messages, runs of one schema and model together."""
    run: list[_Pending] = []
    for item in items:
        if run and not _same_run(run[0], item):
            _finish_run(sink, run)
            run = []
        run.append(item)
    if run:
        _finish_run(sink, run)


def _same_run(first: _Pending, item: _Pending) -> bool:
    return (
        item.model is not None
        and item.model == first.model
        and item.now == first.now
        and item.table.schema.equals(first.table.schema, check_metadata=True)
    )


def _finish_run(sink: DecodeSink, run: list[_Pending]) -> None:
    if len(run) > 1:
        try:
            tables, rejected = _normalised_run(run)
        except Exception:  # noqa: BLE001 - one message at a time says which and why
            pass
        else:
            sink.rejected.extend(rejected)
            sink.prediction_tables.extend(tables)
            return
    for item in run:
        with sink.guard(Reason.INVALID_ARROW, item.value, item.headers):
            _finish_one(sink, item)


def _finish_one(sink: DecodeSink, item: _Pending) -> None:
    table = item.table
    try:
        decoded, problems = normalised_predictions(table, item.now)
    except RecordError as error:
        sink.reject(error, item.value, item.headers)
        return
    for row, problem in sorted(problems.items()):
        sink.rejected.append(Rejected(problem.reason, problem.detail, row_payload(table, row), item.headers))
    if problems:
        decoded = decoded.filter(pa.array([row not in problems for row in range(table.num_rows)]))
    sink.prediction_tables.extend(tables_by_model(decoded))


def _normalised_run(run: list[_Pending]) -> tuple[list[pa.Table], list[Rejected]]:
    """What :func:`_finish_one` makes of each message of ``run``, from one normalisation;
    raises (changing nothing) where the messages must be taken one by one."""
    combined = pa.concat_tables([item.table for item in run])
    decoded, problems = normalised_predictions(combined, run[0].now)
    sizes = np.array([item.table.num_rows for item in run], dtype=np.int64)
    starts = np.concatenate(([0], np.cumsum(sizes)))
    rejected: list[Rejected] = []
    kept = sizes.copy()
    for row, error in sorted(problems.items()):
        index = int(np.searchsorted(starts, row, side="right")) - 1
        item = run[index]
        kept[index] -= 1
        rejected.append(
            Rejected(error.reason, error.detail, row_payload(item.table, row - int(starts[index])), item.headers)
        )
    if problems:
        keep = np.ones(combined.num_rows, dtype=bool)
        keep[list(problems)] = False
        decoded = decoded.filter(pa.array(keep))
    # One chunk per message, as if each had been decoded alone (the windows fold them in
    # turn where lateness depends on the order).
    bounds = np.concatenate(([0], np.cumsum(kept))).tolist()
    pieces = [decoded.slice(a, b - a) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    if not pieces:
        return [], rejected
    return tables_by_model(pa.concat_tables(pieces)), rejected


def read_ipc(value: bytes) -> pa.Table:
    """The table in an IPC stream or file, fully validated (hostile bytes must not crash later)."""
    try:
        buffer = pa.py_buffer(value)
        if value[:6] == FILE_MAGIC:
            table = pa.ipc.open_file(buffer).read_all()
        else:
            table = pa.ipc.open_stream(buffer).read_all()
        table.validate(full=True)
    except (pa.ArrowException, ValueError, TypeError, OSError, IndexError, KeyError, NotImplementedError) as exc:
        raise RecordError(Reason.INVALID_ARROW, f"not an Arrow IPC stream: {str(exc)[:200]}") from None
    if len(set(table.column_names)) != len(table.column_names):
        raise RecordError(Reason.INVALID_ARROW, "duplicate column names")
    return table.combine_chunks()


def normalised_predictions(table: pa.Table, now: float) -> tuple[pa.Table, RowProblems]:
    """``table`` in the contract's columns and types, and the rows to refuse."""
    rows = table.num_rows
    problems: RowProblems = {}
    if "model" not in table.column_names:
        raise RecordError(Reason.MISSING_FIELD, "model: no such column")
    model = _text_column(table, "model")
    for row in _null_or_empty_rows(model):
        problems[row] = RecordError(Reason.MISSING_FIELD, "model: required")
    texts = {name: _text_column(table, name) for name in _OPTIONAL_TEXT}
    timestamp = _timestamp_column(table, now, problems)
    score, klass = _prediction_columns(table)
    latency = _float_column(table, "latency_ms", Reason.MISSING_FIELD) if "latency_ms" in table.column_names else None
    arrays = [
        model,
        texts["model_version"],
        texts["deployment_slot"],
        texts["model_namespace"],
        texts["request_id"],
        timestamp,
        score,
        klass,
        latency if latency is not None else pa.nulls(rows, pa.float64()),
        texts["status"],
    ]
    fields = list(PREDICTION_FIELDS)
    for name in _feature_names(table):
        column = _feature_column(table, name)
        arrays.append(column)
        fields.append(pa.field(name, column.type))
    for name in _probability_names(table):  # a multiclass probability vector, as decoders write it
        arrays.append(_float_column(table, name, Reason.BAD_PREDICTION))
        fields.append(pa.field(name, pa.float64()))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields)), problems


def tables_by_model(table: pa.Table) -> list[pa.Table]:
    if table.num_rows == 0:
        return []
    models = pc.unique(table.column("model"))
    if len(models) == 1:
        return [table]
    return [table.filter(pc.equal(table.column("model"), model)) for model in models]


def row_payload(table: pa.Table, row: int) -> bytes:
    """Row ``row`` of ``table`` as a one-row IPC stream, the dead-letter form of a refused row."""
    out = pa.BufferOutputStream()
    with pa.ipc.new_stream(out, table.schema) as writer:
        writer.write_table(table.slice(row, 1))
    return out.getvalue().to_pybytes()


def _feature_names(table: pa.Table) -> list[str]:
    return [name for name in table.column_names if name.startswith(FEATURE_PREFIX)]


def _probability_names(table: pa.Table) -> list[str]:
    return [name for name in table.column_names if name.startswith(PROBABILITY_PREFIX)]


def _is_text(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        return _is_text(kind.value_type)
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)


def _is_number(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)


def _text_column(table: pa.Table, name: str) -> pa.Array:
    if name not in table.column_names:
        return pa.nulls(table.num_rows, pa.string())
    column = _array(table, name)
    kind = column.type
    if _is_text(kind) or pa.types.is_integer(kind) or pa.types.is_null(kind):
        return column.cast(pa.string())
    raise RecordError(Reason.MISSING_FIELD, f"{name}: expected a text column, got {kind}")


def _float_column(table: pa.Table, name: str, reason: Reason) -> pa.Array:
    column = _array(table, name)
    kind = column.type
    if not (_is_number(kind) or pa.types.is_null(kind)):
        raise RecordError(reason, f"{name}: expected a numeric column, got {kind}")
    return _nan_to_null(column.cast(pa.float64(), safe=False))


def _nan_to_null(column: pa.Array) -> pa.Array:
    nan = pc.is_nan(column)
    if not pc.any(nan).as_py():
        return column
    return pc.if_else(nan, pa.scalar(None, pa.float64()), column)


def _timestamp_column(table: pa.Table, now: float, problems: RowProblems) -> pa.Array:
    if "timestamp" not in table.column_names:
        return pa.array([now] * table.num_rows, type=pa.float64())
    column = _array(table, "timestamp")
    kind = column.type
    if pa.types.is_timestamp(kind):
        ticks = column.cast(pa.int64())
        seconds = pc.divide(ticks.cast(pa.float64(), safe=False), float(_TIME_UNITS_PER_SECOND[kind.unit]))
    elif pa.types.is_date(kind):
        seconds = pc.multiply(column.cast(pa.date32()).cast(pa.int32()).cast(pa.float64()), 86400.0)
    elif _is_number(kind) or pa.types.is_null(kind):
        seconds = column.cast(pa.float64(), safe=False)
    elif _is_text(kind):
        seconds = pa.array(_parsed_times(column.cast(pa.string()).to_pylist(), problems), type=pa.float64())
    else:
        raise RecordError(Reason.BAD_TIMESTAMP, f"timestamp: expected seconds, an Arrow timestamp or text, got {kind}")
    seconds = seconds.fill_null(now)
    finite = pc.is_finite(seconds)
    if not pc.all(finite).as_py():
        for row, ok in enumerate(finite.to_pylist()):
            if not ok:
                problems.setdefault(row, RecordError(Reason.BAD_TIMESTAMP, "timestamp: not a finite time"))
        seconds = pc.if_else(finite, seconds, now)
    return seconds


def _parsed_times(texts: list[str | None], problems: RowProblems) -> list[float | None]:
    out: list[float | None] = []
    for row, text in enumerate(texts):
        if text is None:
            out.append(None)
            continue
        try:
            out.append(rfc3339_seconds(text))
        except RecordError as error:
            problems.setdefault(row, error)
            out.append(math.nan)
    return out


def _prediction_columns(table: pa.Table) -> tuple[pa.Array, pa.Array]:
    names = table.column_names
    rows = table.num_rows
    if "prediction_score" in names or "prediction_class" in names:
        score = (
            _float_column(table, "prediction_score", Reason.BAD_PREDICTION)
            if "prediction_score" in names
            else pa.nulls(rows, pa.float64())
        )
        klass = _class_column(_array(table, "prediction_class")) if "prediction_class" in names else None
        return score, klass if klass is not None else pa.nulls(rows, pa.string())
    if "prediction" not in names:
        return pa.nulls(rows, pa.float64()), pa.nulls(rows, pa.string())
    column = _array(table, "prediction")
    kind = column.type
    if pa.types.is_struct(kind):
        return _struct_prediction(column, rows)
    if pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return _nan_to_null(column.cast(pa.float64(), safe=False)), pa.nulls(rows, pa.string())
    if pa.types.is_integer(kind) or pa.types.is_boolean(kind):
        # Integer and boolean predictions are class labels too (see field_values).
        return column.cast(pa.float64(), safe=False), _class_column(column)
    if _is_text(kind):
        return pa.nulls(rows, pa.float64()), column.cast(pa.string())
    if pa.types.is_null(kind):
        return pa.nulls(rows, pa.float64()), pa.nulls(rows, pa.string())
    raise RecordError(Reason.BAD_PREDICTION, f"prediction: unexpected column type {kind}")


def _struct_prediction(column: pa.StructArray, rows: int) -> tuple[pa.Array, pa.Array]:
    kind = column.type
    score = pa.nulls(rows, pa.float64())
    klass = pa.nulls(rows, pa.string())
    if kind.get_field_index("score") >= 0:
        part = pc.struct_field(column, "score")
        if not (_is_number(part.type) or pa.types.is_null(part.type)):
            raise RecordError(Reason.BAD_PREDICTION, f"prediction.score: expected numbers, got {part.type}")
        score = _nan_to_null(part.cast(pa.float64(), safe=False))
    if kind.get_field_index("class") >= 0:
        klass = _class_column(pc.struct_field(column, "class"))
    return score, klass


def _class_column(column: pa.Array) -> pa.Array:
    kind = column.type
    if pa.types.is_boolean(kind) or _is_text(kind) or pa.types.is_integer(kind) or pa.types.is_null(kind):
        return column.cast(pa.string())
    raise RecordError(Reason.BAD_PREDICTION, f"prediction_class: expected text, got {kind}")


def _feature_column(table: pa.Table, name: str) -> pa.Array:
    column = _array(table, name)
    kind = column.type
    if _is_number(kind) or pa.types.is_null(kind):
        return _nan_to_null(column.cast(pa.float64(), safe=False))
    if pa.types.is_boolean(kind) or _is_text(kind):
        return column.cast(pa.string())
    raise RecordError(Reason.BAD_FEATURES, f"{name}: expected numbers, text or booleans, got {kind}")


def _null_or_empty_rows(column: pa.Array) -> list[int]:
    bad = pc.fill_null(pc.equal(column, ""), True)
    if not pc.any(bad).as_py():
        return []
    return [row for row, flag in enumerate(bad.to_pylist()) if flag]


def _array(table: pa.Table, name: str) -> pa.Array | pa.ChunkedArray:
    # A batch of messages stays chunked (one chunk each): no copy, and the chunks say
    # where each message's rows are.
    column = table.column(name)
    return column.chunk(0) if column.num_chunks == 1 else column


def _add_labels(sink: DecodeSink, table: pa.Table, headers: Headers, now: float) -> None:
    for row, record in enumerate(table.to_pylist()):
        try:
            add_label(sink, record, now)
        except RecordError as error:
            sink.reject(error, row_payload(table, row), headers)
