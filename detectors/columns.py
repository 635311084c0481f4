"""Typed columns out of Arrow tables: numeric values as float64, categories as strings.

Arrow is the data plane here, not I/O. Errors name the column and the first offending
row; callers add the file name. ``pyarrow.compute`` (about 30 ms to import) is imported by
the text paths that call it: numeric columns never need it.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa


class ColumnError(ValueError):
    """A column that is absent or cannot be read as the kind it is used as."""


def require_columns(table: pa.Table, names: list[str]) -> None:
    missing = [n for n in names if n not in table.column_names]
    if missing:
        listed = ", ".join(repr(n) for n in missing)
        raise ColumnError(f"no column {listed} (has: {', '.join(table.column_names)})")


def is_categorical_type(kind: pa.DataType) -> bool:
    return (
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_dictionary(kind)
    )


def is_numeric_type(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)


def numeric_values(table: pa.Table, name: str) -> np.ndarray:
    """float64 values of a numeric column; nulls become NaN (counted as missing later)."""
    column = table.column(name)
    if pa.types.is_float64(column.type):  # as it is: a cast would import pyarrow.compute
        return primitive_values(column)
    if is_numeric_type(column.type):
        return primitive_values(column.cast(pa.float64()))
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        try:
            return primitive_values(column.cast(pa.float64()))
        except pa.ArrowInvalid:
            raise ColumnError(_first_non_numeric(column, name)) from None
    raise ColumnError(f"column {name!r} must be numeric, but its type is {column.type}")


def primitive_values(column: pa.ChunkedArray) -> np.ndarray:
    """An integer or float column as numpy, nulls as NaN (floats only), read off the Arrow buffers.

    What ``column.to_numpy(zero_copy_only=False)`` returns (a read-only view where one chunk
    holds no null), without pyarrow's pandas conversion layer: it imports pandas on first
    use, a quarter of a second of ``model-health drift``'s start-up.
    """
    kind = column.type
    if pa.types.is_floating(kind):
        dtype = np.dtype(f"f{kind.bit_width // 8}")
    elif pa.types.is_integer(kind) and column.null_count == 0:
        dtype = np.dtype(f"{'i' if pa.types.is_signed_integer(kind) else 'u'}{kind.bit_width // 8}")
    else:
        return column.to_numpy(zero_copy_only=False)
    parts = [_chunk_values(chunk, dtype) for chunk in column.chunks]
    if len(parts) == 1:
        return parts[0]
    return np.concatenate(parts) if parts else np.empty(0, dtype=dtype)


def _chunk_values(chunk: pa.Array, dtype: np.dtype) -> np.ndarray:
    validity, data = chunk.buffers()[:2]
    if data is None:
        values = np.zeros(len(chunk), dtype=dtype)
    else:
        values = np.frombuffer(data, dtype=dtype, count=chunk.offset + len(chunk))[chunk.offset :]
        values.flags.writeable = False  # a view of the table's memory
    if chunk.null_count:
        bits = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), bitorder="little")
        values = np.where(bits[chunk.offset : chunk.offset + len(chunk)].astype(bool), values, np.nan)
    return values


def non_numeric_rows(column: pa.ChunkedArray) -> list[int]:
    """Rows of a text column whose value is present but not a number."""
    bad = []
    for row, value in enumerate(column.to_pylist()):
        if value is None:
            continue
        try:
            float(value)
        except ValueError:
            bad.append(row)
    return bad


def _first_non_numeric(column: pa.ChunkedArray, name: str) -> str:
    bad = non_numeric_rows(column)
    if bad:
        return f"column {name!r} must be numeric, but row {bad[0] + 1} holds {column[bad[0]].as_py()!r}"
    return f"column {name!r} must be numeric"


def as_strings(table: pa.Table, name: str) -> pa.ChunkedArray:
    """A column as Arrow strings: the one text form categories are keyed by."""
    column = table.column(name)
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if pa.types.is_floating(column.type):
        import pyarrow.compute as pc

        # NaN/inf in a float column used as categorical count as missing.
        column = pc.if_else(pc.is_finite(column), column, pa.scalar(None, column.type))
    try:
        return column.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise ColumnError(f"column {name!r} of type {column.type} cannot be used as categorical") from None


def category_counts(table: pa.Table, name: str) -> tuple[list[str], list[int], int]:
    """Distinct values, their counts, and the number of missing values of a column."""
    import pyarrow.compute as pc

    strings = as_strings(table, name)
    counted = pc.value_counts(strings.drop_null())
    names = counted.field("values").to_pylist() if len(counted) else []
    counts = counted.field("counts").to_pylist() if len(counted) else []
    return names, counts, strings.null_count
