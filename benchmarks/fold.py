"""The fold alone, side by side: sorting against not sorting, one thread against several, chunk sizes.

    python benchmarks/fold.py [--rows 1000000] [--repeat 3] [--json PATH]

Data: ``--rows`` × 20 numeric columns of the drifted synthetic table
(``synthetic_table(rows, numeric=20, categorical=0, drifted=6, drift=True)``) in memory, folded
into the bins of a profile of 100,000 reference rows (1,000 fine bins per column) as one batch.
Every variant runs in a fresh process (so each pays its own first touches of memory), the
variants alternating, ``--repeat`` times; printed are the medians of CPU seconds (the process's
user + system, all threads) and wall seconds, values per CPU second, and each variant's speed
against the sorting fold. Every variant's summaries are checked equal to the sorting fold's.

Variants:

* ``sorting`` — :meth:`NumericSummary._fold_groups_sorted` per column (one sort of the column,
  bin counts from the edges' positions, exact sums over sorted runs): the fold before
  2026-12-07, for every batch size;
* ``unsorted, 1 thread`` — :func:`exporter.pipeline.column_fold.fold_numeric_arrays` on one
  thread: grid lookup + ``bincount``, exact sums by float levels, chunks of
  ``detectors.exact_sum.CHUNK`` values;
* ``unsorted, N threads`` — the same over this machine's cores (at most 4);
* ``… without the allocator thresholds`` — ``unsorted, 1 thread`` without
  ``exporter.pipeline.allocator.keep_freed_memory`` (glibc's defaults: fresh pages per chunk);
* ``chunk 2**k`` — ``unsorted, 1 thread`` with another chunk size.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
COLUMNS, DRIFTED, REFERENCE_ROWS = 20, 6, 100_000
CHUNKS = (15, 16, 18)


def _inner(data: str, profile_path: str, variant: str, threads: int, chunk: int, allocator: bool) -> dict[str, Any]:
    import numpy as np
    import pyarrow.parquet as pq

    import detectors.exact_sum as exact_sum
    import detectors.summary as summary
    from exporter.pipeline import allocator as allocator_module
    from exporter.pipeline import column_fold
    from exporter.profiles import load_profile

    profile = load_profile(profile_path)
    table = pq.read_table(data)
    names = list(profile.metadata.features)
    arrays = [table.column(n).to_numpy() for n in names]
    bins = [profile.features[n].bins for n in names]
    bounds = np.array([0, table.num_rows], dtype=np.int64)
    exact_sum.CHUNK = summary.CHUNK = chunk
    if not allocator:
        allocator_module._applied = False  # type: ignore[attr-defined]  # as if mallopt were unavailable
    started, cpu = time.perf_counter(), time.process_time()
    if variant == "sorting":
        folded = [summary.NumericSummary._fold_groups_sorted(b, a.copy(), bounds) for b, a in zip(bins, arrays)]
    else:
        folded = column_fold.fold_numeric_arrays(bins, arrays, bounds, threads)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    digest = [
        [s.counts.tolist()[:50], s.missing, s.total.numerator % 1_000_003, s.total_squares.numerator % 1_000_003]
        for (s,) in folded
    ]
    return {"seconds": seconds, "cpu_seconds": cpu, "values": table.num_rows * len(names), "digest": digest}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--inner", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        data, profile, variant, threads, chunk, allocator = args.inner
        print(json.dumps(_inner(data, profile, variant, int(threads), int(chunk), allocator == "1")))
        return 0

    import pyarrow.parquet as pq

    from detectors.exact_sum import CHUNK
    from detectors.profile import build_profile
    from exporter.demo.synthetic import synthetic_table
    from exporter.pipeline.column_fold import fold_threads
    from exporter.profiles import save_profile

    cores = fold_threads()
    variants: list[tuple[str, str, int, int, bool]] = [
        ("sorting", "sorting", 1, CHUNK, True),
        ("unsorted, 1 thread", "unsorted", 1, CHUNK, True),
        (f"unsorted, {cores} threads", "unsorted", cores, CHUNK, True),
        ("unsorted, 1 thread, without the allocator thresholds", "unsorted", 1, CHUNK, False),
        *((f"unsorted, 1 thread, chunk 2**{k}", "unsorted", 1, 1 << k, True) for k in CHUNKS),
    ]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, *_ in variants}
    with tempfile.TemporaryDirectory(prefix="fold-bench-") as tmpname:
        tmp = Path(tmpname)
        shape = {"numeric": COLUMNS, "categorical": 0, "drifted": DRIFTED}
        reference = synthetic_table(REFERENCE_ROWS, seed=1, **shape).drop_columns(["prediction", "label"])
        profile = save_profile(
            build_profile(reference, model="m", model_version="1", created_at=1.0e9), tmp / "p.parquet"
        )
        data = tmp / "current.parquet"
        pq.write_table(
            synthetic_table(args.rows, seed=2, drift=True, **shape).drop_columns(["prediction", "label"]), data
        )
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        for _ in range(args.repeat):
            for name, variant, threads, chunk, allocator in variants:
                command = [sys.executable, __file__, "--inner", str(data), str(profile), variant, str(threads)]
                command += [str(chunk), "1" if allocator else "0"]
                done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
                runs[name].append(json.loads(done.stdout))
    reference_digest = runs["sorting"][0]["digest"]
    for name, results in runs.items():
        assert all(r["digest"] == reference_digest for r in results), f"{name}: summaries differ from the sorting fold"
    base = statistics.median(r["cpu_seconds"] for r in runs["sorting"])
    print(f"fold of {args.rows:,} × {COLUMNS} values, medians of {args.repeat} fresh processes; {cores} cores")
    print(f"{'variant':<55} {'CPU s':>7} {'wall s':>7} {'M values/CPU-s':>15} {'vs sorting (CPU)':>17}")
    for name, results in runs.items():
        cpu = statistics.median(r["cpu_seconds"] for r in results)
        wall = statistics.median(r["seconds"] for r in results)
        values = results[0]["values"]
        print(f"{name:<55} {cpu:>7.3f} {wall:>7.3f} {values / cpu / 1e6:>15.1f} {base / cpu:>16.1f}×")
    if args.json:
        for results in runs.values():
            for r in results:
                r.pop("digest")
        args.json.write_text(json.dumps({"rows": args.rows, "cores": cores, "runs": runs}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
