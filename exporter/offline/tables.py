"""Reading Parquet and CSV data sets into Arrow tables.

Every failure becomes a :class:`UserError` naming the file and column, because these
paths are fed by people typing commands.

A file is opened first (:func:`open_table`: its kind and column names, no data) and then
read for the columns a command uses (:meth:`DataFile.read`): ``model-health drift`` reads
only the features it compares. Parquet goes through :class:`pyarrow.parquet.ParquetFile`,
not ``pyarrow.parquet.read_table``, whose dataset layer imports pandas (half a second of a
command's start-up).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from detectors.columns import ColumnError, require_columns
from exporter.errors import UserError

PARQUET_MAGIC = b"PAR1"


def is_parquet(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4) == PARQUET_MAGIC


@dataclass(frozen=True)
class DataFile:
    """A Parquet or CSV file whose column names are known and whose data is not read yet."""

    path: Path
    parquet: bool
    schema: pa.Schema

    @property
    def column_names(self) -> list[str]:
        return list(self.schema.names)

    def require(self, names: Sequence[str]) -> None:
        """:class:`ColumnError` naming the columns the file lacks (and those it has)."""
        # Not schema.empty_table(): that imports pandas.
        require_columns(pa.Table.from_batches([], schema=self.schema), list(names))

    def read(self, columns: Sequence[str] | None = None) -> pa.Table:
        """The whole file, or only ``columns`` (in that order; each must exist)."""
        selected = None if columns is None else list(dict.fromkeys(columns))
        try:
            if self.parquet:
                table = pq.ParquetFile(self.path).read(columns=selected)
            else:
                options = pa_csv.ConvertOptions(strings_can_be_null=True, include_columns=selected)
                table = pa_csv.read_csv(self.path, convert_options=options)
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise _unreadable(self.path, self.parquet, exc) from None
        if table.num_rows == 0:
            raise UserError(f"{self.path}: no rows")
        return table


def _unreadable(path: Path, parquet: bool, exc: Exception) -> UserError:
    kind = "Parquet" if parquet else "CSV"
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return UserError(f"{path}: unreadable {kind}: {first_line}")


def open_table(path: str | Path) -> DataFile:
    """Open a Parquet or CSV file (chosen by content, then by suffix) and read its column names."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"{p}: no such file")
    if not p.is_file():
        raise UserError(f"{p}: not a file")
    try:
        parquet = is_parquet(p)
    except OSError as exc:
        raise UserError(f"{p}: cannot open: {exc.strerror or exc}") from None
    if not parquet and p.suffix.lower() in {".parquet", ".pq"}:
        raise UserError(f"{p}: not a Parquet file (no PAR1 header)")
    try:
        if parquet:
            file = pq.ParquetFile(p)
            schema, empty = file.schema_arrow, file.metadata.num_rows == 0
        else:
            # The header and the first block, parsed; the data is read later.
            with pa_csv.open_csv(p, convert_options=pa_csv.ConvertOptions(strings_can_be_null=True)) as reader:
                schema, empty = reader.schema, _no_batch(reader)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise _unreadable(p, parquet, exc) from None
    if empty:
        raise UserError(f"{p}: no rows")
    return DataFile(p, parquet, schema)


def _no_batch(reader: pa_csv.CSVStreamingReader) -> bool:
    try:
        while not reader.read_next_batch().num_rows:
            pass
    except StopIteration:
        return True
    return False


def read_table(path: str | Path, columns: Sequence[str] | None = None) -> pa.Table:
    """Read a Parquet or CSV file (chosen by content, then by suffix) into Arrow.

    ``columns``: only these; a column the file lacks is a :class:`ColumnError`.
    """
    data = open_table(path)
    if columns is not None:
        with column_errors(path):
            data.require(columns)
    return data.read(columns)


@contextmanager
def column_errors(source: str | Path) -> Iterator[None]:
    """Turn a :class:`ColumnError` into a :class:`UserError` naming the file."""
    try:
        yield
    except ColumnError as exc:
        raise UserError(f"{source}: {exc}") from None
