"""Columns folded over threads: the same summaries as on one, whatever the split or the batching."""

import numpy as np
import pyarrow as pa

from detectors.binning import NumericBins
from detectors.profile import build_profile
from detectors.summary import NumericSummary
from exporter.demo.synthetic import synthetic_table
from exporter.pipeline.allocator import keep_freed_memory
from exporter.pipeline.column_fold import (
    PARALLEL_FROM,
    fold_numeric_arrays,
    fold_numeric_columns,
    fold_table,
    fold_threads,
)


def test_threads_give_the_summaries_of_one_thread():
    rng = np.random.default_rng(3)
    bins = [NumericBins.from_reference(rng.normal(size=2_000) * (i + 1)) for i in range(5)]
    rows = PARALLEL_FROM // 4 + 17  # 5 columns: past the parallel threshold
    matrix = rng.normal(size=(5, rows)) * 3
    matrix[1, ::7] = np.nan
    bounds = np.array([0, 1_000, rows // 2, rows])
    one = fold_numeric_columns(bins, matrix.copy(), bounds, threads=1)
    for threads in (2, 3, 8):
        assert fold_numeric_columns(bins, matrix.copy(), bounds, threads=threads) == one
        assert fold_numeric_arrays(bins, list(matrix.copy()), bounds, threads=threads) == one
    small = matrix[:, :100].copy()  # under the threshold: stacked, folded on the calling thread
    assert fold_numeric_arrays(bins, list(small), np.array([0, 100]), threads=4) == [
        NumericSummary.fold_groups(b, c, np.array([0, 100])) for b, c in zip(bins, small)
    ]


def test_a_table_folds_the_same_in_batches():
    table = synthetic_table(30_000, seed=4, numeric=4, categorical=2, drifted=2)
    profile = build_profile(
        synthetic_table(5_000, seed=1, numeric=4, categorical=2, drifted=2),
        model="m",
        model_version="1",
        created_at=0.0,
    )
    references = {name: profile.features[name] for name in profile.metadata.features}
    rows, whole = fold_table([table], references)
    batches = pa.Table.from_batches(table.to_batches(max_chunksize=7_000)).to_batches()
    assert len(batches) > 1
    assert (rows, whole) == fold_table(batches, references)
    assert rows == 30_000 and all(summary.rows == 30_000 for summary in whole.values())


def test_the_allocator_thresholds_are_set_once():
    first = keep_freed_memory()
    assert keep_freed_memory() is first


def test_tail_bounds_over_threads_equal_one_thread_bit_for_bit():
    """Importing the fold installs a threaded map for the tail bound's λ rows
    (detectors.tail_bound.use_row_map); every row must come back as one thread computes it."""
    from concurrent.futures import ThreadPoolExecutor

    from detectors import tail_bound
    from detectors.row_map import row_map, use_row_map

    shares = np.random.default_rng(5).dirichlet(np.ones(12))
    installed = row_map()
    try:
        use_row_map(map, 1)
        one = tail_bound._log_mgf("js", shares, 2_000, 1e-4, 0.5)
        with ThreadPoolExecutor(3) as pool:
            use_row_map(pool.map, 3)
            three = tail_bound._log_mgf("js", shares, 2_000, 1e-4, 0.5)
    finally:
        use_row_map(*installed)
    assert np.array_equal(one[0], three[0]) and np.array_equal(one[1], three[1])
    assert installed[1] == fold_threads()
