"""Columns out of Arrow: numpy values straight from the buffers, as pyarrow's to_numpy gives them."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from detectors.columns import numeric_values, primitive_values

FLOATS = pa.array([1.0, None, 3.0, 4.0, None, -0.0, np.nan, np.inf] * 9)
COLUMNS = {
    "one chunk": pa.chunked_array([FLOATS]),
    "sliced chunks": pa.chunked_array([FLOATS.slice(3, 40), pa.array([5.5, None])]),
    "no nulls": pa.chunked_array([pa.array(np.arange(100.0)).slice(13, 70)]),
    "all null": pa.chunked_array([pa.array([None] * 9, pa.float64())]),
    "no chunks": pa.chunked_array([], pa.float64()),
    "float32": pa.chunked_array([pa.array([1.5, 2.5], pa.float32())]),
    "int32 sliced": pa.chunked_array([pa.array([1, 2, 3], pa.int32()).slice(1)]),
    "uint8 chunks": pa.chunked_array([pa.array([1, 2, 3], pa.uint8()), pa.array([250], pa.uint8())]),
    "int64 with nulls": pa.chunked_array([pa.array([1, None], pa.int64())]),
}


@pytest.mark.parametrize("column", COLUMNS.values(), ids=COLUMNS.keys())
def test_primitive_values_are_what_to_numpy_gives(column: pa.ChunkedArray) -> None:
    expected = column.to_numpy(zero_copy_only=False)
    got = primitive_values(column)
    assert got.dtype == expected.dtype
    assert np.array_equal(got, expected, equal_nan=True)
    assert got.flags.writeable == expected.flags.writeable  # a view of Arrow memory stays read-only


def test_numeric_values_are_float64_with_nulls_as_nan() -> None:
    table = pa.table({"i": pa.array([1, None, 3], pa.int16()), "s": ["1.5", None, "2"]})
    assert np.array_equal(numeric_values(table, "i"), [1.0, np.nan, 3.0], equal_nan=True)
    assert np.array_equal(numeric_values(table, "s"), [1.5, np.nan, 2.0], equal_nan=True)
