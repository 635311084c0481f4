"""Parquet and CSV files: opened for their column names first, then read for the columns used."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from detectors.columns import ColumnError
from exporter.errors import UserError
from exporter.offline.tables import open_table, read_table

TABLE = pa.table({"a": [1.5, None, 3.0], "b": ["x", "y", None], "c": [1, 2, 3]})


@pytest.fixture(params=["parquet", "csv"])
def path(request, tmp_path: Path) -> Path:
    if request.param == "parquet":
        pq.write_table(TABLE, tmp_path / "t.parquet")
        return tmp_path / "t.parquet"
    pa_csv.write_csv(TABLE, tmp_path / "t.csv")
    return tmp_path / "t.csv"


def test_only_the_named_columns_are_read_in_that_order(path: Path) -> None:
    data = open_table(path)
    assert data.column_names == ["a", "b", "c"]
    table = data.read(["c", "a"])
    assert table.column_names == ["c", "a"]
    assert table.column("a").to_pylist() == [1.5, None, 3.0]
    assert table.column("c").to_pylist() == [1, 2, 3]
    assert read_table(path).column("b").to_pylist() == ["x", "y", None]


def test_a_missing_column_is_named_with_the_columns_the_file_has(path: Path) -> None:
    with pytest.raises(ColumnError, match=r"no column 'z' \(has: a, b, c\)"):
        open_table(path).require(["a", "z"])
    with pytest.raises(UserError, match=rf"{path.name}: no column 'z' \(has: a, b, c\)"):
        read_table(path, ["z"])


def test_no_rows_is_reported_when_the_file_is_opened(tmp_path: Path) -> None:
    (tmp_path / "header.csv").write_text("a,b\n")
    pq.write_table(TABLE.slice(0, 0), tmp_path / "empty.parquet")
    for name in ("header.csv", "empty.parquet"):
        with pytest.raises(UserError, match=f"{name}: no rows"):
            open_table(tmp_path / name)


def test_a_ragged_csv_is_unreadable(tmp_path: Path) -> None:
    (tmp_path / "ragged.csv").write_text("a,b\n1,2\n" + "3,4\n" * 5000 + "5,6,7\n")
    with pytest.raises(UserError, match="ragged.csv: unreadable CSV: .*Expected 2 columns, got 3"):
        read_table(tmp_path / "ragged.csv", ["a"])
