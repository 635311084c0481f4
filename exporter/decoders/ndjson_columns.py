"""NDJSON prediction batches read column-wise by Arrow's JSON reader: the fast path.

Parsing NDJSON line by line in Python and checking each record field by field costs far
more than receiving it. A message that is plainly a batch of well-formed prediction
records of one model is read by ``pyarrow.json`` straight into columns instead and
brought to the contract's columns with compute kernels.

The rules are those of :mod:`~exporter.decoders.native_json`; this module takes only
messages for which reading them column-wise provably gives the same rows, and answers
None for anything else — a line that is not one JSON object, a label, a model version
written as a float, a nested feature value, a whole-number prediction in a column of
fractions (where the line-by-line reading would also see a class), non-ASCII text,
duplicate keys — which then goes the line-by-line way that says what is wrong with each
record. Checked per message:

* ASCII only (so valid UTF-8 with no BOM; Arrow refuses escaped lone surrogates, which
  Python would keep) and no NUL byte;
* every line opens an object (no blank or indented lines), no two objects share a line,
  and there are as many rows as lines: each line is exactly one record, as the
  line-by-line reading sees it. This also keeps away input that crashes pyarrow 25's
  reader (a line that is ``null``);
* no top-level ``label`` key (label records have rules of their own), nothing nested
  outside ``features``, at least two records (one record is a plain JSON message).
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from exporter.decoders.record_error import RecordError
from exporter.decoders.timestamps import rfc3339_seconds
from exporter.records import FEATURE_PREFIX, PREDICTION_FIELDS

_TWO_ON_A_LINE = re.compile(rb"\}[ \t\r]*\{")
_TEXT_FIELDS = ("model_version", "model_namespace", "request_id", "status")
_READ = frozenset({"model", *_TEXT_FIELDS, "timestamp", "prediction", "latency_ms", "features"})
_MIN_BLOCK = 1 << 20
_NEWLINE, _OPEN = ord("\n"), ord("{")
_INFERRED = pajson.ParseOptions()
_TEXT_TIMES = pajson.ParseOptions(
    explicit_schema=pa.schema([("timestamp", pa.string())]), unexpected_field_behavior="infer"
)


class NotColumnar(Exception):
    """The message is not one for the fast path (internal: turned into None)."""


def read_predictions(value: bytes, now: float) -> tuple[str, pa.Table] | None:
    """``(model, table)`` for an NDJSON batch of one model's prediction records, or None.

    The table has the contract's prediction columns and one ``f.<name>`` column per
    feature, float64 or string — or null-typed where every row lacks the feature, whose
    type the other messages of the batch decide (see
    :class:`~exporter.decoders.row_builders.PredictionRows`).
    """
    newline = value.find(b"\n")
    if newline < 0 or newline == len(value) - 1:
        return None  # one line: a plain JSON message (the common one-record case costs one scan)
    records = _record_lines(value)
    if records < 2 or not value.isascii() or b"\x00" in value or _TWO_ON_A_LINE.search(value) is not None:
        return None
    first = value[:newline]
    # Arrow would turn RFC 3339 text into its own timestamps (by rules of its own): text
    # times stay text when the first record has one, and are read as the line-by-line way
    # reads them.
    text_times = b'"timestamp": "' in first or b'"timestamp":"' in first
    try:
        table = pajson.read_json(
            pa.py_buffer(value),
            read_options=pajson.ReadOptions(use_threads=False, block_size=max(len(value) + 1, _MIN_BLOCK)),
            parse_options=_TEXT_TIMES if text_times else _INFERRED,
        )
    except (pa.ArrowException, ValueError, TypeError, OverflowError, UnicodeDecodeError):
        return None
    if table.num_rows != records or "label" in table.column_names:
        return None  # a line that is not one object; or labels, which have rules of their own
    try:
        return _normalised(table.combine_chunks(), now)
    except (NotColumnar, RecordError, pa.ArrowException, ValueError, TypeError, OverflowError):
        return None


def _record_lines(value: bytes) -> int:
    """The number of lines when every one opens an object (a last empty line aside), else 0.

    Blank or indented lines are legal NDJSON but rare from machines: they go line by line.
    """
    data = np.frombuffer(value, dtype=np.uint8)
    after = np.flatnonzero(data == _NEWLINE) + 1
    lines = after.size + (not value.endswith(b"\n"))
    starts = int(np.count_nonzero(data[after[after < data.size]] == _OPEN)) + value.startswith(b"{")
    return lines if starts == lines else 0


def _normalised(table: pa.Table, now: float) -> tuple[str, pa.Table]:
    names = set(table.column_names)
    rows = table.num_rows
    for field in table.schema:
        # Keys no rule reads may hold any scalar; a nested one might be too deep to parse
        # line by line (RecursionError), so it goes that way.
        if field.name not in _READ and pa.types.is_nested(field.type):
            raise NotColumnar
    model = _model(table)
    texts = {name: _text(table, name) if name in names else pa.nulls(rows, pa.string()) for name in _TEXT_FIELDS}
    timestamp = _timestamp(table, now) if "timestamp" in names else pa.array(np.full(rows, now))
    score, klass = (
        _prediction(table) if "prediction" in names else (pa.nulls(rows, pa.float64()), pa.nulls(rows, pa.string()))
    )
    latency = _number(table.column("latency_ms").chunk(0)) if "latency_ms" in names else pa.nulls(rows, pa.float64())
    arrays = [
        pa.array([model] * rows, pa.string()) if rows else pa.nulls(0, pa.string()),
        texts["model_version"],
        pa.nulls(rows, pa.string()),  # deployment_slot: a KServe notion native records do not carry
        texts["model_namespace"],
        texts["request_id"],
        timestamp,
        score,
        klass,
        latency,
        texts["status"],
    ]
    fields = list(PREDICTION_FIELDS)
    if "features" in names:
        for name, column in _features(table.column("features").chunk(0)):
            arrays.append(column)
            fields.append(pa.field(FEATURE_PREFIX + name, column.type))
    return model, pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _model(table: pa.Table) -> str:
    if "model" not in table.column_names:
        raise NotColumnar
    column = table.column("model").chunk(0)
    if not pa.types.is_string(column.type) or column.null_count:
        raise NotColumnar
    distinct = pc.unique(column)
    if len(distinct) != 1 or distinct[0].as_py() == "":
        raise NotColumnar  # several models, or an empty one: the line-by-line way
    return distinct[0].as_py()


def _text(table: pa.Table, name: str) -> pa.Array:
    column = table.column(name).chunk(0)
    kind = column.type
    if pa.types.is_string(kind):
        return column
    if pa.types.is_null(kind) or pa.types.is_int64(kind):
        return column.cast(pa.string())  # an integer is written out, as str() writes it
    raise NotColumnar


def _timestamp(table: pa.Table, now: float) -> pa.Array:
    column = table.column("timestamp").chunk(0)
    kind = column.type
    if pa.types.is_null(kind):
        return pa.array(np.full(len(column), now))
    if pa.types.is_string(kind):
        seconds = pa.array(
            [now if text is None else rfc3339_seconds(text) for text in column.to_pylist()], pa.float64()
        )
    elif pa.types.is_floating(kind) or pa.types.is_int64(kind):
        seconds = column.cast(pa.float64()).fill_null(now)
    else:
        raise NotColumnar
    if not pc.all(pc.is_finite(seconds)).as_py():
        raise NotColumnar  # refused line by line, with its reason
    return seconds


def _prediction(table: pa.Table) -> tuple[pa.Array, pa.Array]:
    column = table.column("prediction").chunk(0)
    kind = column.type
    rows = len(column)
    if pa.types.is_null(kind):
        return pa.nulls(rows, pa.float64()), pa.nulls(rows, pa.string())
    if pa.types.is_floating(kind):
        values = column.to_numpy(zero_copy_only=False)
        with np.errstate(invalid="ignore"):
            whole = np.isfinite(values) & (values == np.floor(values))
        if whole.any():
            # 1 and 1.0 both read as 1.0 here; line by line, 1 is also the class "1".
            raise NotColumnar
        return _nan_to_null(column), pa.nulls(rows, pa.string())
    if pa.types.is_int64(kind) or pa.types.is_boolean(kind):
        return column.cast(pa.float64()), column.cast(pa.string())
    if pa.types.is_string(kind):
        return pa.nulls(rows, pa.float64()), column
    raise NotColumnar


def _number(column: pa.Array) -> pa.Array:
    kind = column.type
    if pa.types.is_null(kind) or pa.types.is_int64(kind):
        return column.cast(pa.float64())
    if pa.types.is_floating(kind):
        return _nan_to_null(column)
    raise NotColumnar


def _features(column: pa.Array) -> list[tuple[str, pa.Array]]:
    kind = column.type
    if pa.types.is_null(kind):
        return []
    if not pa.types.is_struct(kind):
        raise NotColumnar
    out = []
    # flatten() folds the parent's nulls (a null or absent "features") into each child.
    for field, child in zip(kind, column.flatten()):
        child_kind = child.type
        if pa.types.is_floating(child_kind):
            out.append((field.name, child))  # NaN becomes null once per batch (unify_features)
        elif pa.types.is_int64(child_kind):
            out.append((field.name, child.cast(pa.float64())))
        elif pa.types.is_boolean(child_kind):
            out.append((field.name, child.cast(pa.string())))  # "true" / "false"
        elif pa.types.is_string(child_kind) or pa.types.is_null(child_kind):
            out.append((field.name, child))
        else:
            raise NotColumnar  # a nested value: refused per row, line by line
    return out


def _nan_to_null(column: pa.Array) -> pa.Array:
    nan = pc.is_nan(column)
    if not pc.any(nan).as_py():
        return column
    return pc.if_else(nan, pa.scalar(None, pa.float64()), column)


def unify_features(tables: list[pa.Table], base: int) -> pa.Table | None:
    """``tables`` (prediction columns, then features) as one table with the types a single
    line-by-line decode of all their rows would give, or None where that needs the
    line-by-line reading (a feature that is numeric in one and text in another).

    A feature is float64 when only numbers and nulls were seen, string when only text
    (booleans are text) and nulls, float64 when only nulls; columns appear in the order
    their names were first seen; a table without a feature has nulls there.
    """
    first = tables[0].schema
    if all(table.schema.equals(first) for table in tables[1:]) and not any(
        pa.types.is_null(t) for t in first.types[base:]
    ):
        combined = tables[0] if len(tables) == 1 else pa.concat_tables(tables).combine_chunks()
        return _nan_features_to_null(combined, base)
    kinds: dict[str, pa.DataType] = {}
    for table in tables:
        for field in list(table.schema)[base:]:
            seen = kinds.get(field.name)
            if seen is None or pa.types.is_null(seen):
                kinds[field.name] = field.type
            elif not pa.types.is_null(field.type) and field.type != seen:
                return None
    kinds = {name: pa.float64() if pa.types.is_null(kind) else kind for name, kind in kinds.items()}
    schema = pa.schema([*list(tables[0].schema)[:base], *(pa.field(name, kind) for name, kind in kinds.items())])
    parts = []
    for table in tables:
        present = set(table.column_names[base:])
        arrays = [*table.columns[:base]]
        for name, kind in kinds.items():
            arrays.append(table.column(name).cast(kind) if name in present else pa.nulls(table.num_rows, kind))
        parts.append(pa.Table.from_arrays(arrays, schema=schema))
    combined = parts[0] if len(parts) == 1 else pa.concat_tables(parts)
    return _nan_features_to_null(combined.combine_chunks(), base)


def _nan_features_to_null(table: pa.Table, base: int) -> pa.Table:
    """NaN is a missing value in a feature, as in the line-by-line reading."""
    for index in range(base, table.num_columns):
        column = table.column(index)
        if pa.types.is_floating(column.type) and column.null_count < len(column):
            array = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
            fixed = _nan_to_null(array)
            if fixed is not array:
                table = table.set_column(index, table.field(index), fixed)
    return table
