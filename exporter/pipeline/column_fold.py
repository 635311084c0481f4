"""Numeric columns folded on several cores: the columns of a batch split between threads.

The fold itself (:meth:`detectors.summary.NumericSummary.fold_columns`) is numpy calls
that release the GIL, so a small pool of threads folds a batch's columns side by side (one
task per column for a large batch, one per share of the columns for a matrix). Each
column is folded whole by one thread and the results are put back in column order, so the
summaries are the same, bit for bit, whatever the threads' timing; batches under
:data:`PARALLEL_FROM` values stay on the calling thread (handing them over costs more).

:func:`fold_table` folds a stream of record batches (a Parquet file read batch by batch)
into one summary per column, as the offline comparison needs.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa

from detectors.binning import NumericBins
from detectors.columns import numeric_values
from detectors.profile import summarise_current
from detectors.row_map import use_row_map
from detectors.summary import UNSORTED_FROM, ColumnSummary, NumericSummary
from exporter.pipeline.allocator import keep_freed_memory

PARALLEL_FROM = 1 << 18  # values in a batch (rows × numeric columns)
MAX_THREADS = 4

_pool_lock = threading.Lock()
_pools: dict[str, ThreadPoolExecutor] = {}


def fold_threads() -> int:
    """Threads for one fold: the cores this process may run on, at most :data:`MAX_THREADS`."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(MAX_THREADS, cores))


def _pool(name: str) -> ThreadPoolExecutor:
    """The process's pool called ``name``, made on first use with :func:`fold_threads` threads.
    The fold and the tail bound have one each: neither's tasks ever wait on the other's."""
    with _pool_lock:
        pool = _pools.get(name)
        if pool is None:
            pool = _pools[name] = ThreadPoolExecutor(fold_threads(), thread_name_prefix=name)
        return pool


def _shared_pool() -> ThreadPoolExecutor:
    return _pool("fold")


def _map_tail_bound_rows(task: Callable[[np.ndarray], np.ndarray], parts: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    return _pool("tail-bound").map(task, parts)


# A drifted categorical column's tail bound (detectors.tail_bound) is FFTs and exponentials
# over a grid of independent rows: split over the same cores as the fold, bit for bit the same.
use_row_map(_map_tail_bound_rows, fold_threads())


def fold_numeric_columns(
    bins: Sequence[NumericBins], matrix: np.ndarray, bounds: np.ndarray, threads: int | None = None
) -> list[list[NumericSummary]]:
    """``NumericSummary.fold_columns(bins, matrix, bounds)``, its columns split over threads.

    ``matrix`` is (columns × rows) float64 and may be reordered in place.
    """
    keep_freed_memory()
    threads = fold_threads() if threads is None else threads
    columns = matrix.shape[0]
    if threads <= 1 or columns < 2 or matrix.size < PARALLEL_FROM:
        return NumericSummary.fold_columns(bins, matrix, bounds)
    shares = np.array_split(np.arange(columns), min(threads, columns))
    futures = [
        _shared_pool().submit(
            NumericSummary.fold_columns, [bins[i] for i in share.tolist()], matrix[share[0] : share[-1] + 1], bounds
        )
        for share in shares
    ]
    return [column for future in futures for column in future.result()]


def fold_numeric_arrays(
    bins: Sequence[NumericBins], arrays: Sequence[np.ndarray], bounds: np.ndarray, threads: int | None = None
) -> list[list[NumericSummary]]:
    """:func:`fold_numeric_columns` over separate float64 arrays of one length: a large batch
    is folded column by column as it is (no copy into one matrix), a small one stacked."""
    rows = arrays[0].size if arrays else 0
    if rows < UNSORTED_FROM:
        return fold_numeric_columns(bins, np.vstack(arrays) if arrays else np.empty((0, 0)), bounds, threads)
    keep_freed_memory()
    threads = fold_threads() if threads is None else threads
    if threads <= 1 or len(arrays) < 2 or rows * len(arrays) < PARALLEL_FROM:
        return [NumericSummary.fold_groups(b, a, bounds) for b, a in zip(bins, arrays)]
    pool = _shared_pool()
    futures = [pool.submit(NumericSummary.fold_groups, b, a, bounds) for b, a in zip(bins, arrays)]
    return [future.result() for future in futures]


def fold_table(
    batches: Iterable[pa.RecordBatch | pa.Table], references: Mapping[str, ColumnSummary]
) -> tuple[int, dict[str, ColumnSummary]]:
    """The rows of ``batches`` and each named column folded into its reference's bins.

    Numeric columns go through :func:`fold_numeric_columns` batch by batch, categorical
    ones through :func:`~detectors.profile.summarise_current`; batches add as summaries do.
    A column that is not numeric raises :class:`~detectors.columns.ColumnError`, as
    :func:`~detectors.columns.numeric_values` does.
    """
    rows = 0
    folded: dict[str, ColumnSummary] = {}
    numeric = [name for name, reference in references.items() if isinstance(reference, NumericSummary)]
    for batch in batches:
        table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
        rows += table.num_rows
        parts: dict[str, ColumnSummary] = {}
        if numeric and table.num_rows:
            arrays = [np.asarray(numeric_values(table, name), dtype=np.float64) for name in numeric]
            bins = [reference.bins for name in numeric if isinstance(reference := references[name], NumericSummary)]
            bounds = np.array([0, table.num_rows], dtype=np.int64)
            for name, (numeric_summary,) in zip(numeric, fold_numeric_arrays(bins, arrays, bounds)):
                parts[name] = numeric_summary
        for name, reference in references.items():
            if name not in parts:
                parts[name] = summarise_current(table, name, reference)
        for name, summary in parts.items():
            known = folded.get(name)
            folded[name] = summary if known is None else known + summary  # type: ignore[operator]
    return rows, folded
