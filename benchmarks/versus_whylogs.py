"""Ours against whylogs 1.6, side by side in one run: the CPU that monitoring takes.

    python benchmarks/versus_whylogs.py [--rows 1000000] [--records 100000] [--repeat 3] [--json PATH]

(``make bench-whylogs`` builds whylogs's own environment first: ``benchmarks/whylogs_env.py``.)

Every contender runs in a fresh process, the two alternating, ``--repeat`` times (ours with its
bytecode cached, as whylogs's installed package has it, after one untimed run); the medians
are printed with the ratio whylogs ÷ ours of CPU seconds (user + system of the process, all its
threads: the cost per core) and of wall time. Every timed process starts right after an
untimed one that touches 2 GiB (``touch_memory``): on this project's VMs the first process
after a large one pays for faulting freed memory back from the host. whylogs runs under ``benchmarks/whylogs_job.py``
in ``.venv-whylogs`` (numpy 1.26, pandas 2.2, pyarrow 19), its usage statistics switched off.

1. **The Parquet job, whole process** — ``--rows`` × 20 numeric columns of the drifted
   synthetic data (``synthetic_table(rows, numeric=20, categorical=0, drifted=6, drift=True)``,
   Parquet, snappy): ours is ``model-health drift --reference PROFILE --current FILE --format
   json`` against a profile of 100,000 reference rows (start-up, reading, folding and the
   comparison included); whylogs is ``pandas.read_parquet`` + ``why.log(df).view()``, start-up
   included. Then the same pair again, each **pinned to one core** (``sched_setaffinity``):
   the cost per core without the thread pools, whose overhead on a small machine is CPU
   spent to save wall time.
2. **Profiling the table in memory** — the same table already read: ours folds it
   (``exporter.pipeline.column_fold.fold_table``: fine bins, exact sums, extremes; the columns
   over this machine's cores, and again on one thread), whylogs profiles it (``why.log``).
   Values per second (rows × columns).
3. **Ingest, Arrow IPC and NDJSON** — ``--records`` records of 20 features (16 numeric,
   4 categorical) and a score, 500 per message, built by ``benchmarks/ingest.py``'s own
   ``build_messages``, in polls of 50 messages: ours is single mode's ``Aggregator`` consuming
   them from the in-memory Kafka of ``tests/support/fake_kafka.py`` (decode, validate, fold
   into the 1-hour and 1-day windows, label-join buffering) and one ``evaluate`` (drift of
   every feature against the profile) — so the broker's and the client's cost is left out of
   both; whylogs decodes each poll into one DataFrame (``json.loads`` per line, or Arrow IPC
   → pandas), profiles it and merges the profile into the running one.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
HERE = Path(__file__).resolve().parent
JOB = HERE / "whylogs_job.py"
NUMERIC_COLUMNS, DRIFTED = 20, 6
INGEST_NUMERIC, INGEST_CATEGORICAL, INGEST_DRIFTED = 16, 4, 4
REFERENCE_ROWS = 100_000
POLL = 50
MODEL, VERSION = "fraud", "7"


# ---------------------------------------------------------------------------------------------
# Children: what runs in the fresh processes on our side.


def _inner_fold(parquet: str, profile_path: str, threads: int) -> dict[str, Any]:
    import pyarrow.parquet as pq

    from exporter.pipeline import column_fold
    from exporter.profiles import load_profile

    profile = load_profile(profile_path)
    table = pq.read_table(parquet)
    references = {name: profile.features[name] for name in profile.metadata.features}
    column_fold.fold_threads = lambda: threads  # type: ignore[assignment]
    started, cpu = time.perf_counter(), time.process_time()
    rows, folded = column_fold.fold_table([table], references)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert rows == table.num_rows and all(s.rows == rows for s in folded.values())
    return {"seconds": seconds, "cpu_seconds": cpu, "values": table.num_rows * len(references)}


def _inner_ingest(fmt: str, frames_path: str, profile_path: str, records: int) -> dict[str, Any]:
    from exporter.aggregator.inputs import load_models
    from exporter.aggregator.single import Aggregator
    from exporter.config import AggregatorConfig
    from exporter.pipeline.decode import BatchDecoder
    from tests.support.fake_kafka import FakeConsumer, FakeLog, FakeProducer

    config = AggregatorConfig(
        kafka={"bootstrap_servers": "127.0.0.1:9", "group_id": "bench", "max_poll_records": POLL},
        models=[{"name": MODEL, "version": VERSION, "reference": profile_path}],
        windows=[
            {"name": "1h", "bucket_seconds": 60, "buckets": 60},
            {"name": "1d", "bucket_seconds": 3600, "buckets": 24},
        ],
        allowed_lateness_seconds=100_000,
        state={"dir": tempfile.mkdtemp(prefix="versus-whylogs-"), "checkpoint_interval_seconds": 1e6},
    )
    log = FakeLog()
    for value in _read_frames(Path(frames_path)):
        log.append(config.kafka.predictions_topic, value)
    consumer = FakeConsumer(log, batch=POLL)
    aggregator = Aggregator(
        config, load_models(config), consumer, FakeProducer(log), BatchDecoder(config.kafka.labels_topic)
    )
    aggregator.subscribe()
    total = sum(len(m) for m in log.partitions.values())
    started, cpu = time.perf_counter(), time.process_time()
    while sum(aggregator.offsets.values()) < total:
        if not aggregator.poll_once():
            raise RuntimeError("the aggregator stopped consuming before the end")
    consumed_cpu = time.process_time() - cpu
    snapshot = aggregator.evaluate()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    folded = aggregator.counters.predictions[(MODEL, VERSION)]
    assert folded == records, f"folded {folded} of {records}"
    drifted = sorted({f for m in snapshot.models for r in m.windows.values() for f, d in r.features.items() if d.drift})
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "evaluate_cpu_seconds": cpu - consumed_cpu,
        "records": folded,
        "drifted": drifted,
    }


# ---------------------------------------------------------------------------------------------
# The parent: data, alternating runs, the table.


def _write_frames(path: Path, values: list[bytes]) -> None:
    with path.open("wb") as out:
        for value in values:
            out.write(struct.pack(">I", len(value)))
            out.write(value)


def _read_frames(path: Path) -> list[bytes]:
    data, out, at = path.read_bytes(), [], 0
    while at < len(data):
        (size,) = struct.unpack_from(">I", data, at)
        out.append(data[at + 4 : at + 4 + size])
        at += 4 + size
    return out


def _one_core() -> Callable[[], None]:
    """A ``preexec_fn`` that pins the child to the first core this process may use: per-core
    cost without the thread pools' overhead (on this 2-core VM, splitting the fold and the tail
    bounds over two threads cost ~0.15 CPU s to save ~0.1 s of wall time)."""
    core = min(os.sched_getaffinity(0))
    return lambda: os.sched_setaffinity(0, {core})


def _run(command: list[str], env: dict[str, str], pin: Callable[[], None] | None = None) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (the child's user + system, all threads) and stdout; the
    process starts on memory the VM holds (``touch_memory``: after whylogs's job, the next
    process would pay ~0.7 s of system time faulting freed memory back from the host)."""
    from benchmarks.detectors_vs_evidently import touch_memory

    touch_memory()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=1800, preexec_fn=pin)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])}… failed ({done.returncode}):\n{done.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout


_BYTECODE = Path(tempfile.gettempdir()) / "versus-whylogs-bytecode"


def _ours_env() -> dict[str, str]:
    """Our processes' environment: this checkout on the path, its bytecode cached as an
    installed package (whylogs's, in its environment) has it — where PYTHONDONTWRITEBYTECODE is
    set, a checkout would otherwise compile its own modules again in every run."""
    from benchmarks.detectors_vs_evidently import _child_env

    return _child_env(ROOT, _BYTECODE)


def _median(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the Parquet job (default 1,000,000)")
    parser.add_argument("--records", type=int, default=100_000, help="records per ingest format (default 100,000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each contender (default 3)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--inner", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        kind, *rest = args.inner
        if kind == "fold":
            print(json.dumps(_inner_fold(rest[0], rest[1], int(rest[2]))))
        else:
            print(json.dumps(_inner_ingest(rest[0], rest[1], rest[2], int(rest[3]))))
        return 0

    import numpy as np
    import pyarrow.parquet as pq

    from benchmarks.whylogs_env import ensure_env, run_environment
    from detectors.profile import build_profile
    from exporter.demo.synthetic import drifted_columns, synthetic_table
    from exporter.pipeline.column_fold import fold_threads
    from exporter.profiles import save_profile

    whylogs = str(ensure_env())
    wl_env = run_environment()
    results: dict[str, Any] = {
        "rows": args.rows,
        "records": args.records,
        "repeat": args.repeat,
        "cores": fold_threads(),
    }
    with tempfile.TemporaryDirectory(prefix="versus-whylogs-") as tmpname:
        tmp = Path(tmpname)
        shape = {"numeric": NUMERIC_COLUMNS, "categorical": 0, "drifted": DRIFTED}
        reference = synthetic_table(REFERENCE_ROWS, seed=1, **shape).drop_columns(["prediction", "label"])
        profile_path = save_profile(
            build_profile(reference, model="job", model_version="1", created_at=1.0e9), tmp / "job.profile.parquet"
        )
        parquet = tmp / "current.parquet"
        pq.write_table(
            synthetic_table(args.rows, seed=2, drift=True, **shape).drop_columns(["prediction", "label"]), parquet
        )

        # 1. The Parquet job, whole process.
        ours_cmd = [
            sys.executable,
            "-c",
            "from exporter.cli import main; main()",
            "drift",
            "--reference",
            str(profile_path),
            "--current",
            str(parquet),
            "--format",
            "json",
        ]
        job: dict[str, list[dict[str, float]]] = {"ours": [], "whylogs": []}
        _run(ours_cmd, _ours_env())  # untimed: fills the bytecode cache, as an install would
        for _ in range(args.repeat):
            wall, cpu, out = _run(ours_cmd, _ours_env())
            report = json.loads(out)
            flagged = {n for n, f in report["features"].items() if f["drift"]}
            assert flagged == set(drifted_columns(NUMERIC_COLUMNS, 0, DRIFTED)), flagged
            job["ours"].append({"seconds": wall, "cpu_seconds": cpu})
            wall, cpu, out = _run([whylogs, str(JOB), "parquet", str(parquet)], wl_env)
            job["whylogs"].append({"seconds": wall, "cpu_seconds": cpu})
        results["parquet_job"] = job

        # 1b. The same, each contender pinned to one core.
        pinned: dict[str, list[dict[str, float]]] = {"ours": [], "whylogs": []}
        for _ in range(args.repeat):
            wall, cpu, out = _run(ours_cmd, _ours_env(), _one_core())
            assert {n for n, f in json.loads(out)["features"].items() if f["drift"]} == set(
                drifted_columns(NUMERIC_COLUMNS, 0, DRIFTED)
            )
            pinned["ours"].append({"seconds": wall, "cpu_seconds": cpu})
            wall, cpu, out = _run([whylogs, str(JOB), "parquet", str(parquet)], wl_env, _one_core())
            pinned["whylogs"].append({"seconds": wall, "cpu_seconds": cpu})
        results["parquet_job_one_core"] = pinned

        # 2. Profiling the table in memory.
        fold: dict[str, list[dict[str, float]]] = {"ours": [], "ours, 1 thread": [], "whylogs": []}
        for _ in range(args.repeat):
            for name, threads in (("ours", fold_threads()), ("ours, 1 thread", 1)):
                _, _, out = _run(
                    [sys.executable, __file__, "--inner", "fold", str(parquet), str(profile_path), str(threads)],
                    _ours_env(),
                )
                fold[name].append(json.loads(out))
            _, _, out = _run([whylogs, str(JOB), "profile", str(parquet)], wl_env)
            fold["whylogs"].append(json.loads(out))
        results["fold"] = fold

        # 3. Ingest: Arrow IPC and NDJSON.
        sys.path.insert(0, str(HERE))
        from ingest import _feature_rows, build_messages

        n = args.records - args.records % 500
        ingest_shape = {"numeric": INGEST_NUMERIC, "categorical": INGEST_CATEGORICAL, "drifted": INGEST_DRIFTED}
        ingest_profile = save_profile(
            build_profile(
                synthetic_table(20_000, seed=1, **ingest_shape),
                model=MODEL,
                model_version=VERSION,
                created_at=1.0e9,
                prediction="prediction",
                label="label",
            ),
            tmp / "fraud-7.parquet",
        )
        current = synthetic_table(n, seed=2, drift=True, **ingest_shape)
        times = time.time() - 3000 + np.arange(n) * (2900 / n)
        rows = _feature_rows(current)
        ingest: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for fmt in ("arrow", "ndjson"):
            frames = tmp / f"{fmt}.frames"
            _write_frames(frames, [value for value, _, _ in build_messages(fmt, current, times, rows)])
            ingest[fmt] = {"ours": [], "whylogs": []}
            for _ in range(args.repeat):
                _, _, out = _run(
                    [sys.executable, __file__, "--inner", "ingest", fmt, str(frames), str(ingest_profile), str(n)],
                    _ours_env(),
                )
                ingest[fmt]["ours"].append(json.loads(out))
                _, _, out = _run([whylogs, str(JOB), "ingest", fmt, str(frames), str(POLL)], wl_env)
                ingest[fmt]["whylogs"].append(json.loads(out))
        results["ingest"] = ingest

    _print(results)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def _print(results: dict[str, Any]) -> None:
    rows, records = results["rows"], results["records"]
    print(f"ours against whylogs 1.6.4, medians of {results['repeat']} fresh processes each; {results['cores']} cores")
    print(f"{'measure':<52} {'wall s':>8} {'CPU s':>8} {'rate':>16} {'whylogs ÷ ours (CPU, wall)':>28}")

    def line(label: str, runs: list[dict[str, float]], rate: str, against: list[dict[str, float]] | None) -> None:
        wall, cpu = _median(runs, "seconds"), _median(runs, "cpu_seconds")
        ratio = ""
        if against is not None:
            ratio = f"{_median(against, 'cpu_seconds') / cpu:.1f}× , {_median(against, 'seconds') / wall:.1f}×"
        print(f"{label:<52} {wall:>8.2f} {cpu:>8.2f} {rate:>16} {ratio:>28}")

    values = rows * NUMERIC_COLUMNS
    for key, where in (("parquet_job", "whole process"), ("parquet_job_one_core", "one core")):
        job = results[key]
        for name in ("ours", "whylogs"):
            runs = job[name]
            line(
                f"Parquet job {rows:,} × {NUMERIC_COLUMNS}, {where}: {name}",
                runs,
                f"{values / _median(runs, 'cpu_seconds') / 1e6:.1f} M val/CPU-s",
                job["whylogs"] if name == "ours" else None,
            )
    fold = results["fold"]
    for name in ("ours", "ours, 1 thread", "whylogs"):
        runs = fold[name]
        line(
            f"profile the table in memory: {name}",
            runs,
            f"{values / _median(runs, 'seconds') / 1e6:.1f} M val/s",
            fold["whylogs"] if name != "whylogs" else None,
        )
    for fmt, label in (("arrow", "Arrow IPC"), ("ndjson", "NDJSON")):
        for name in ("ours", "whylogs"):
            runs = results["ingest"][fmt][name]
            line(
                f"ingest {label}, {records:,} records × 21: {name}",
                runs,
                f"{records / _median(runs, 'cpu_seconds'):,.0f} rec/CPU-s",
                results["ingest"][fmt]["whylogs"] if name == "ours" else None,
            )


if __name__ == "__main__":
    sys.exit(main())
