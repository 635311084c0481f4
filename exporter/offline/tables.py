"""Reading Parquet and CSV data sets into Arrow tables.

Every failure becomes a :class:`UserError` naming the file and column, because these
paths are fed by people typing commands.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from detectors.columns import ColumnError
from exporter.errors import UserError

PARQUET_MAGIC = b"PAR1"


def is_parquet(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4) == PARQUET_MAGIC


def read_table(path: str | Path) -> pa.Table:
    """Read a Parquet or CSV file (chosen by content, then by suffix) into Arrow."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"{p}: no such file")
    if not p.is_file():
        raise UserError(f"{p}: not a file")
    try:
        parquet = is_parquet(p)
    except OSError as exc:
        raise UserError(f"{p}: cannot open: {exc.strerror or exc}") from None
    try:
        if parquet:
            table = pq.read_table(p)
        elif p.suffix.lower() in {".parquet", ".pq"}:
            raise UserError(f"{p}: not a Parquet file (no PAR1 header)")
        else:
            table = pa_csv.read_csv(p, convert_options=pa_csv.ConvertOptions(strings_can_be_null=True))
    except UserError:
        raise
    except (pa.ArrowException, OSError, ValueError) as exc:
        kind = "Parquet" if parquet else "CSV"
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{p}: unreadable {kind}: {first_line}") from None
    if table.num_rows == 0:
        raise UserError(f"{p}: no rows")
    return table


# Rows per batch when a Parquet file is read batch by batch: each batch's buffers are freed
# before the next is read, so the file never sits in fresh memory whole.
BATCH_ROWS = 1 << 17  # detectors.exact_sum.CHUNK: one chunk of the fold per batch


def read_batches(path: str | Path, columns: list[str] | None = None) -> tuple[pa.Schema, int, Iterable[pa.RecordBatch]]:
    """A Parquet file's schema, row count and record batches, read lazily (CSV: read whole).

    The same checks and one-line errors as :func:`read_table`; reading the batches raises
    :class:`UserError` too.
    """
    p = Path(path)
    try:
        parquet = p.is_file() and is_parquet(p)
    except OSError:
        parquet = False
    if not parquet:
        table = read_table(p)
        return table.schema, table.num_rows, table.to_batches()
    try:
        source = pq.ParquetFile(p, pre_buffer=False, buffer_size=1 << 20)
        rows = source.metadata.num_rows
        schema = source.schema_arrow
    except (pa.ArrowException, OSError, ValueError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{p}: unreadable Parquet: {first_line}") from None
    if rows == 0:
        raise UserError(f"{p}: no rows")
    wanted = None if columns is None else [c for c in columns if c in schema.names]

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            yield from source.iter_batches(batch_size=BATCH_ROWS, columns=wanted)
        except (pa.ArrowException, OSError, ValueError) as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"{p}: unreadable Parquet: {first_line}") from None

    return schema, rows, batches()


@contextmanager
def column_errors(source: str | Path) -> Iterator[None]:
    """Turn a :class:`ColumnError` into a :class:`UserError` naming the file."""
    try:
        yield
    except ColumnError as exc:
        raise UserError(f"{source}: {exc}") from None
