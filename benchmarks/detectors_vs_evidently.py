"""Side-by-side drift benchmark: Evidently 0.7's DataDriftPreset against our detectors.

    python benchmarks/detectors_vs_evidently.py [--rows N] [--repeats 3] [--process-repeats 5]
                                                [--startup-repeats 20] [--baseline DIR] [--json PATH]

Data: ``exporter.demo.synthetic.synthetic_table`` — ``--rows`` reference rows (seed S) and
``--rows`` current rows (seed S+1, ``drift=True``), 20 numeric + 5 categorical columns,
6 of them drifted (``exporter.demo.synthetic.drifted_columns(20, 5, 6)``); the ``prediction``
and ``label`` columns are dropped. Both tables are written to Parquet once, before any
contender runs.

Contenders (each in its own fresh ``spawn``-ed process, one after another):

* ``evidently-psi``   ``Report([DataDriftPreset(method="psi")]).run(current, reference)``.
  Timed: ``Dataset.from_pandas`` for both frames + ``Report.run``. The pandas frames
  are read from the Parquet files before the timed region.
* ``evidently-ks``    the same with ``method="ks", cat_method="chisquare"``: Evidently
  refuses KS on categorical columns (StatTestInvalidFeatureTypeError), so categorical
  columns get its chi-square test, the p-value test for categories.
* ``ours-evidently``  ``exporter.offline.drift.run_drift(ref, cur, binning="evidently")``.
* ``ours-reference``  ``exporter.offline.drift.run_drift(ref, cur, binning="reference")`` (exact KS).
  For both offline modes the timed region includes reading both Parquet files, since
  reading is part of what ``model-health drift`` does.
* ``ours-streaming``  the profile is built once from the reference (not timed); timed:
  ``summarise_current`` + ``compare`` for every feature on the current Arrow table,
  which is read from Parquet before the timed region.

Time: ``time.perf_counter`` around each repeat; median, min and max of ``--repeats``
repeats (no warm-up unless ``--warmup``, so a first-call cost in a fresh process shows
in the max).

Memory, per contender, in its own process:

* RSS Δ peak: before every repeat the kernel's RSS high-water mark is reset
  (``/proc/self/clear_refs`` ← 5) and VmRSS read; after it, VmHWM − VmRSS-before. The
  largest over the repeats is reported. This counts every allocation (numpy, pandas,
  Arrow's allocator, C extensions) that became resident; it does not count memory freed
  and reused inside the region, and the allocator may keep pages from setup that the
  region reuses (so it can under-count, e.g. under --malloc-env). Where clear_refs is
  not writable the script falls back to the ``ru_maxrss`` delta, which is only a lower
  bound (it stays at the setup's peak until the run exceeds it) and says so.
* tracemalloc peak: one extra, untimed run under ``tracemalloc`` — Python and numpy
  allocations only; Arrow buffers (allocated by Arrow's own pool) are invisible to it.
* CPU s: process CPU time of a repeat, all threads (OpenBLAS spin-waits count too).
* process peak RSS: the child's whole-process high-water mark (imports, inputs, runs).
* page faults/run: minor page faults (``ru_minflt``) inside a timed repeat. glibc gives
  blocks above its mmap threshold back to the kernel on free, so numpy temporaries of a
  100k-row column are faulted in afresh on every run; ``--malloc-env`` raises glibc's
  mmap and trim thresholds for every contender alike, to show that cost. Off by default.

Checks in the same run: Evidently's per-column PSI (from the ``ValueDrift`` metrics of
the snapshot) against ours in ``binning="evidently"`` mode, max abs difference
(target ≤ 1e-9); the features each contender flags against the 6 injected.

Whole processes (what a user waits for, from the shell prompt back to it), after the
contenders above, on the same files. Each command is a fresh ``python`` process, run
``--process-repeats`` times round-robin (one untimed warm-up each first, so every side
finds its files in the page cache); wall time around ``subprocess.run``, CPU time
(user + sys) from ``RUSAGE_CHILDREN``:

* ``evidently-process``   ``python -c EVIDENTLY_SCRIPT ref.parquet cur.parquet``: imports
  Evidently, reads both files into pandas, ``DataDriftPreset(method="psi")``, prints each
  column's PSI and the flagged columns as JSON.
* ``ours-profile``        ``model-health drift --reference profile.parquet --current
  cur.parquet --format json`` (the profile built once beforehand by ``model-health
  reference build``, not timed).
* ``ours-evidently``      ``model-health drift --reference ref.parquet --current
  cur.parquet --binning evidently --format json``.
* ``ours-reference``      the same in reference mode (exact KS), for information.

Start-up, in the same run: ``python -c pass``, ``model-health --help`` and ``model-health
drift --help``, ``--startup-repeats`` times round-robin. ``model-health`` is its console
script's body (``python -c "import sys; from exporter.cli import main; sys.exit(main())"``)
run from this checkout with it first on ``PYTHONPATH``, so it is this tree's code whatever
is installed; ``--baseline DIR`` adds the same commands with another checkout's code (say,
the commit before a change) to the same rounds, for before/after figures from one run. Every process may write and read bytecode (in a temporary
``PYTHONPYCACHEPREFIX``, filled by the warm-up), as an installed package ships it: with
``PYTHONDONTWRITEBYTECODE`` set, only this checkout's modules would be compiled afresh
on every run while site-packages keep theirs. Targets: ``--help`` within 10× of ``python -c pass``; whole
process ≥ 10× Evidently's with a profile and ≥ 5× in Evidently mode.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import multiprocessing as mp
import os
import platform
import queue
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# This checkout's code, not whatever ``exporter`` is installed (spawned children inherit sys.path).
sys.path.insert(0, str(ROOT))

NUMERIC = 20
CATEGORICAL = 5
DRIFTED = 6
PSI_PARITY_TOLERANCE = 1e-9
STREAMING_TARGET = 50.0
EVIDENTLY_MODE_TARGET = 10.0
STARTUP_TARGET = 10.0  # --help within this many times a bare interpreter
PROCESS_PROFILE_TARGET = 10.0  # whole process, with a profile, vs Evidently's whole process
PROCESS_EVIDENTLY_MODE_TARGET = 5.0  # whole process, --binning evidently, vs Evidently's

CONTENDERS: dict[str, dict[str, str]] = {
    "evidently-psi": {
        "label": "Evidently PSI",
        "what": "DataDriftPreset(method='psi'); Dataset.from_pandas ×2 + Report.run (DataFrames ready)",
    },
    "evidently-ks": {
        "label": "Evidently KS",
        "what": "DataDriftPreset(method='ks', cat_method='chisquare'); Dataset.from_pandas ×2 + Report.run",
    },
    "ours-evidently": {
        "label": "ours evidently-mode",
        "what": "run_drift(ref.parquet, cur.parquet, binning='evidently'); includes reading both Parquet files",
    },
    "ours-reference": {
        "label": "ours reference-mode",
        "what": "run_drift(ref.parquet, cur.parquet, binning='reference'), exact KS; includes reading both Parquet files",
    },
    "ours-streaming": {
        "label": "ours streaming",
        "what": "summarise_current + compare per feature on the in-memory current Arrow table; profile prebuilt",
    },
}
EVIDENTLY_KWARGS: dict[str, dict[str, str]] = {
    "evidently-psi": {"method": "psi"},
    "evidently-ks": {"method": "ks", "cat_method": "chisquare"},
}
# How Evidently decides drift from a ValueDrift score (its stattest modules): distances
# drift at or above the threshold, KS's p-value at or below it, chi-square's strictly below.
_DRIFTED = {
    "psi": lambda score, threshold: score >= threshold,
    "ks": lambda score, threshold: score <= threshold,
    "chisquare": lambda score, threshold: score < threshold,
}
# glibc settings for --malloc-env: keep freed memory in the heap instead of returning it
# to the kernel, so repeated large numpy temporaries stop page-faulting.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(64 * 2**20), "MALLOC_TRIM_THRESHOLD_": str(256 * 2**20)}


# --------------------------------------------------------------------------- memory


def _proc_status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _maxrss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


class PeakRss:
    """Peak resident memory added by one region, as described in the module docstring."""

    def __init__(self) -> None:
        self.exact = _reset_hwm() and _proc_status_kib("VmHWM") is not None
        self.method = (
            "VmHWM after resetting it via /proc/self/clear_refs, minus VmRSS before"
            if self.exact
            else "ru_maxrss delta (lower bound: only counts growth above the setup's peak)"
        )
        self.process_peak_kib = 0

    def __enter__(self) -> PeakRss:
        gc.collect()
        self._note_process_peak()
        if self.exact:
            _reset_hwm()
            self._before = _proc_status_kib("VmRSS") or 0
        else:
            self._before = _maxrss_kib()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.exact:
            peak = _proc_status_kib("VmHWM") or 0
        else:
            peak = _maxrss_kib()
        self.delta_kib = max(peak - self._before, 0)
        self.process_peak_kib = max(self.process_peak_kib, peak)

    def _note_process_peak(self) -> None:
        current = _proc_status_kib("VmHWM") if self.exact else _maxrss_kib()
        self.process_peak_kib = max(self.process_peak_kib, current or 0, _maxrss_kib())


# ------------------------------------------------------------------ the contenders


def _flag_summary_ours(features: dict[str, Any]) -> dict[str, Any]:
    return {
        "flagged": [name for name, result in features.items() if result.drift],
        "psi": {name: float(result.psi) for name, result in features.items()},
    }


def _setup_evidently(
    name: str, ref_path: str, cur_path: str, notes: dict[str, Any]
) -> tuple[Callable[[], Any], Callable[[Any], dict[str, Any]]]:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    ref_table, cur_table = pq.read_table(ref_path), pq.read_table(cur_path)
    numerical = [f.name for f in ref_table.schema if pa.types.is_floating(f.type) or pa.types.is_integer(f.type)]
    categorical = [f.name for f in ref_table.schema if f.name not in numerical]
    reference, current = ref_table.to_pandas(), cur_table.to_pandas()
    del ref_table, cur_table
    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
    kwargs = EVIDENTLY_KWARGS[name]
    notes["evidently_kwargs"] = kwargs
    if name == "evidently-ks":
        # Show, in the run itself, what plain method="ks" does to a categorical column.
        from evidently.legacy.calculations.stattests.registry import get_registered_stattest
        from evidently.legacy.core import ColumnType

        try:
            get_registered_stattest("ks", ColumnType.Categorical)
            notes["ks_on_categorical"] = "accepted"
        except Exception as exc:  # noqa: BLE001 - we report whatever Evidently raises
            notes["ks_on_categorical"] = f"{type(exc).__name__}: {exc}"

    split = notes.setdefault("dataset_seconds", [])

    def run() -> Any:
        start = time.perf_counter()
        ref_ds = Dataset.from_pandas(reference, data_definition=definition)
        cur_ds = Dataset.from_pandas(current, data_definition=definition)
        split.append(time.perf_counter() - start)
        return Report([DataDriftPreset(**kwargs)]).run(cur_ds, ref_ds)

    def extract(snapshot: Any) -> dict[str, Any]:
        scores: dict[str, float] = {}
        flagged: list[str] = []
        count = None
        for metric in snapshot.dict()["metrics"]:
            config = metric["config"]
            if config.get("type", "").endswith("ValueDrift"):
                column, method, threshold = config["column"], config["method"], config["threshold"]
                value = float(metric["value"])
                scores[column] = value
                if _DRIFTED[method](value, threshold):
                    flagged.append(column)
            elif config.get("type", "").endswith("DriftedColumnsCount"):
                count = int(metric["value"]["count"])
        out: dict[str, Any] = {"flagged": flagged, "drifted_columns_count": count}
        out["psi" if kwargs["method"] == "psi" else "scores"] = scores
        return out

    return run, extract


def _setup_offline(
    name: str, ref_path: str, cur_path: str, notes: dict[str, Any]
) -> tuple[Callable[[], Any], Callable[[Any], dict[str, Any]]]:
    from exporter.offline.drift import run_drift

    binning = "evidently" if name == "ours-evidently" else "reference"

    def run() -> Any:
        return run_drift(ref_path, cur_path, binning=binning)

    return run, lambda report: _flag_summary_ours(report.features)


def _setup_streaming(
    name: str, ref_path: str, cur_path: str, notes: dict[str, Any]
) -> tuple[Callable[[], Any], Callable[[Any], dict[str, Any]]]:
    import pyarrow.parquet as pq

    from detectors.compare import compare
    from detectors.decision import DriftRule
    from detectors.profile import build_profile, summarise_current

    reference = pq.read_table(ref_path)
    start = time.perf_counter()
    profile = build_profile(reference, model="benchmark", model_version="1", created_at=0.0)
    notes["profile_build_seconds"] = time.perf_counter() - start
    del reference
    current = pq.read_table(cur_path)
    rule = DriftRule()
    epsilon = profile.metadata.settings.epsilon
    features = profile.features

    def run() -> Any:
        return {
            name: compare(summary, summarise_current(current, name, summary), rule, epsilon)
            for name, summary in features.items()
        }

    return run, _flag_summary_ours


SETUPS = {
    "evidently-psi": _setup_evidently,
    "evidently-ks": _setup_evidently,
    "ours-evidently": _setup_offline,
    "ours-reference": _setup_offline,
    "ours-streaming": _setup_streaming,
}


def _worker(name: str, ref_path: str, cur_path: str, options: dict[str, Any], out: Any) -> None:
    """Runs in a fresh spawned process: set up, time the repeats, measure memory."""
    try:
        import warnings

        warnings.filterwarnings("ignore")
        notes: dict[str, Any] = {}
        start = time.perf_counter()
        run, extract = SETUPS[name](name, ref_path, cur_path, notes)
        notes["setup_seconds"] = time.perf_counter() - start
        out.put(("step", name, "set up"))
        for _ in range(options["warmup"]):
            run()
        out.put(("step", name, f"warm-up ×{options['warmup']}" if options["warmup"] else "no warm-up"))
        peak = PeakRss()
        times: list[float] = []
        rss: list[int] = []
        faults: list[int] = []
        cpu: list[float] = []
        result = None
        for i in range(options["repeats"]):
            result = None
            with peak:
                f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                c0 = time.process_time()
                t0 = time.perf_counter()
                result = run()
                times.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
                faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
            rss.append(peak.delta_kib)
            out.put(("step", name, f"repeat {i + 1}/{options['repeats']}: {times[-1]:.3f} s"))
        summary = extract(result)
        result = None
        traced = None
        if options["tracemalloc"]:
            import tracemalloc

            gc.collect()
            tracemalloc.start()
            tracemalloc.reset_peak()
            kept = run()
            traced = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            del kept
        out.put(("step", name, "tracemalloc run" if options["tracemalloc"] else "tracemalloc skipped"))
        profile_text = None
        if options["cprofile"] and name.startswith("ours-"):
            import cProfile
            import io
            import pstats

            profiler = cProfile.Profile()
            profiler.enable()
            kept = run()
            profiler.disable()
            del kept
            buffer = io.StringIO()
            stats = pstats.Stats(profiler, stream=buffer).strip_dirs()
            stats.sort_stats("tottime").print_stats(options["cprofile"])
            stats.sort_stats("cumulative").print_stats(options["cprofile"])
            profile_text = buffer.getvalue()
        out.put(("step", name, "cProfile run" if profile_text else "done"))
        out.put(
            (
                "result",
                name,
                {
                    "times": times,
                    "rss_delta_kib": rss,
                    "minor_faults": faults,
                    "cpu_times": cpu,
                    "rss_method": peak.method,
                    "process_peak_kib": max(peak.process_peak_kib, _maxrss_kib()),
                    "tracemalloc_peak_bytes": traced,
                    "notes": notes,
                    "profile": profile_text,
                    **summary,
                },
            )
        )
    except BaseException:  # noqa: BLE001 - everything goes back to the parent
        out.put(("error", name, traceback.format_exc()))


# ---------------------------------------------------------------------- the parent


def _make_data(rows: int, seed: int, folder: Path) -> tuple[str, str, list[str], dict[str, Any]]:
    import pyarrow.parquet as pq

    from exporter.demo.synthetic import drifted_columns, synthetic_table

    start = time.perf_counter()
    reference = synthetic_table(rows, numeric=NUMERIC, categorical=CATEGORICAL, drifted=DRIFTED, drift=False, seed=seed)
    current = synthetic_table(
        rows, numeric=NUMERIC, categorical=CATEGORICAL, drifted=DRIFTED, drift=True, seed=seed + 1
    )
    reference = reference.drop_columns(["prediction", "label"])
    current = current.drop_columns(["prediction", "label"])
    ref_path, cur_path = folder / "reference.parquet", folder / "current.parquet"
    pq.write_table(reference, ref_path)
    pq.write_table(current, cur_path)
    info = {
        "rows": rows,
        "columns": reference.num_columns,
        "reference_seed": seed,
        "current_seed": seed + 1,
        "parquet_bytes": {"reference": ref_path.stat().st_size, "current": cur_path.stat().st_size},
        "generate_and_write_seconds": time.perf_counter() - start,
    }
    return str(ref_path), str(cur_path), drifted_columns(NUMERIC, CATEGORICAL, DRIFTED), info


def _run_contenders(
    names: list[str], ref_path: str, cur_path: str, options: dict[str, Any], console: Any
) -> dict[str, Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    context = mp.get_context("spawn")
    steps = 4 + options["repeats"]  # set up, warm-up, repeats, tracemalloc, cProfile/done
    results: dict[str, Any] = {}
    columns = (
        SpinnerColumn(),
        TextColumn("[bold]{task.fields[contender]:<15}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        for name in names:
            task = progress.add_task("starting a fresh process", total=steps, contender=name)
            out = context.Queue()
            process = context.Process(target=_worker, args=(name, ref_path, cur_path, options, out), daemon=True)
            process.start()
            while True:
                try:
                    kind, _, payload = out.get(timeout=1.0)
                except queue.Empty:
                    if not process.is_alive():
                        results[name] = {"error": f"worker exited with code {process.exitcode} without a result"}
                        break
                    continue
                if kind == "step":
                    progress.update(task, advance=1, description=payload)
                    continue
                results[name] = payload if kind == "result" else {"error": payload}
                break
            process.join()
            progress.update(
                task, completed=steps, description="done" if "error" not in results[name] else "[red]failed"
            )
    return results


def _stats(times: list[float]) -> dict[str, float]:
    return {"median": statistics.median(times), "min": min(times), "max": max(times)}


def _mib(kib: float | None) -> str:
    return "—" if kib is None else f"{kib / 1024:,.0f} MiB"


def _speedup(reference: float | None, ours: float) -> float | None:
    return None if reference is None or ours <= 0 else reference / ours


def _fmt_x(value: float | None) -> str:
    return "—" if value is None else f"{value:,.1f}×"


def _flag_text(flagged: list[str], injected: list[str]) -> tuple[str, bool]:
    extra = [c for c in flagged if c not in injected]
    missing = [c for c in injected if c not in flagged]
    if not extra and not missing:
        return f"{len(flagged)} = the injected", True
    parts = [f"{len(flagged)}"]
    if extra:
        parts.append("+" + ",".join(extra))
    if missing:
        parts.append("−" + ",".join(missing))
    return " ".join(parts), False


def _report(
    results: dict[str, Any], injected: list[str], info: dict[str, Any], options: dict[str, Any], console: Any
) -> dict[str, Any]:
    from rich.table import Table

    medians = {name: _stats(r["times"])["median"] for name, r in results.items() if "times" in r}
    ev_psi, ev_ks = medians.get("evidently-psi"), medians.get("evidently-ks")

    table = Table(
        title=f"Drift: {info['rows']:,} reference × {info['rows']:,} current rows, "
        f"{NUMERIC} numeric + {CATEGORICAL} categorical, {DRIFTED} drifted "
        f"(median of {options['repeats']}, each contender in a fresh process)"
    )
    for header, justify in (
        ("contender", "left"),
        ("median s", "right"),
        ("min / max s", "right"),
        ("CPU s", "right"),
        ("RSS Δ peak", "right"),
        ("page faults/run", "right"),
        ("tracemalloc peak", "right"),
        ("vs Evidently PSI", "right"),
        ("vs Evidently KS", "right"),
        ("flagged drifted", "left"),
    ):
        table.add_column(header, justify=justify)  # type: ignore[arg-type]

    out: dict[str, Any] = {}
    for name, r in results.items():
        label = CONTENDERS[name]["label"]
        if "error" in r:
            table.add_row(label, "[red]failed", "", "", "", "", "", "", "", "")
            out[name] = {"error": r["error"]}
            continue
        s = _stats(r["times"])
        flag_text, exact = _flag_text(r["flagged"], injected)
        vs_psi, vs_ks = _speedup(ev_psi, s["median"]), _speedup(ev_ks, s["median"])
        traced = r["tracemalloc_peak_bytes"]
        table.add_row(
            label,
            f"{s['median']:.3f}",
            f"{s['min']:.3f} / {s['max']:.3f}",
            f"{statistics.median(r['cpu_times']):.3f}",
            _mib(max(r["rss_delta_kib"])),
            f"{statistics.median(r['minor_faults']):,.0f}",
            "—" if traced is None else f"{traced / 2**20:,.0f} MiB",
            _fmt_x(vs_psi),
            _fmt_x(vs_ks),
            ("[green]" if exact else "[yellow]") + flag_text,
        )
        out[name] = {
            "what_is_timed": CONTENDERS[name]["what"],
            "seconds": s,
            "times": r["times"],
            "cpu_seconds_per_repeat": r["cpu_times"],
            "rss_delta_peak_mib": max(r["rss_delta_kib"]) / 1024,
            "rss_delta_per_repeat_mib": [k / 1024 for k in r["rss_delta_kib"]],
            "rss_method": r["rss_method"],
            "minor_page_faults_per_repeat": r["minor_faults"],
            "process_peak_rss_mib": r["process_peak_kib"] / 1024,
            "tracemalloc_peak_mib": None if traced is None else traced / 2**20,
            "speedup_vs_evidently_psi": vs_psi,
            "speedup_vs_evidently_ks": vs_ks,
            "flagged": r["flagged"],
            "flagged_exactly_injected": exact,
            "notes": r["notes"],
        }
        for key in ("psi", "scores", "drifted_columns_count"):
            if key in r:
                out[name][key] = r[key]
    console.print(table)

    console.print("[bold]What each row times[/bold]")
    for name in results:
        console.print(f"  {CONTENDERS[name]['label']:<32} {CONTENDERS[name]['what']}")
    notes = {name: r.get("notes", {}) for name, r in results.items()}
    if "evidently-ks" in notes and "ks_on_categorical" in notes["evidently-ks"]:
        console.print(
            "  Evidently with method='ks' alone on a categorical column: "
            f"{notes['evidently-ks']['ks_on_categorical']} → categorical columns use cat_method='chisquare' (drift at p < 0.05); "
            "numeric columns KS (p ≤ 0.05)."
        )
    for name in ("evidently-psi", "evidently-ks"):
        split = notes.get(name, {}).get("dataset_seconds")
        if split:
            console.print(
                f"  {CONTENDERS[name]['label']}: Dataset.from_pandas ×2 took median {statistics.median(split):.3f} s of that."
            )
    if "profile_build_seconds" in notes.get("ours-streaming", {}):
        console.print(
            f"  Streaming profile build (one-off, not timed): {notes['ours-streaming']['profile_build_seconds']:.3f} s."
        )
    method = next((r["rss_method"] for r in results.values() if "rss_method" in r), "—")
    console.print(
        f"  Memory: RSS Δ peak = {method}; largest over the repeats. tracemalloc = one extra untimed run, "
        "Python/numpy allocations only (Arrow's own pool is invisible to it)."
    )
    console.print(
        "  CPU s: median process CPU time (all threads) of the timed repeats; above the wall time when a "
        "contender keeps more than one core busy (Arrow threads, or OpenBLAS worker threads spinning after "
        "a BLAS call)."
    )
    console.print(
        "  page faults/run: minor page faults (ru_minflt) inside a timed repeat, median — pages freshly "
        "mapped for large temporaries; glibc returns big blocks to the kernel on free, so each run faults them in "
        "again (see --malloc-env)."
    )
    if options.get("malloc_env"):
        console.print(
            "  [yellow]--malloc-env: glibc keeps freed memory resident, so a region that reuses it adds no RSS; "
            "RSS Δ then under-counts (tracemalloc still sees Python/numpy allocations)."
        )
    console.print(
        "  Process peak RSS (imports + inputs + runs): "
        + ", ".join(
            f"{CONTENDERS[n]['label']} {_mib(r['process_peak_kib'])}"
            for n, r in results.items()
            if "process_peak_kib" in r
        )
    )
    console.print(
        f"  Injected drift: {', '.join(injected)}. Evidently flags by its own thresholds "
        "(PSI ≥ 0.1; KS p ≤ 0.05; chi-square p < 0.05); ours by DriftRule (effect size and null quantile, α = 0.01)."
    )

    busy = [
        f"{CONTENDERS[n]['label']} (wall {statistics.median(r['times']):.2f} s, CPU {statistics.median(r['cpu_times']):.2f} s)"
        for n, r in results.items()
        if "cpu_times" in r and statistics.median(r["times"]) > 1.2 * statistics.median(r["cpu_times"])
    ]
    if busy:
        console.print(
            "[yellow]  Warning: wall time exceeds this process's CPU time by > 20% for "
            + "; ".join(busy)
            + " — other work on the machine may have inflated these timings."
        )
    verdicts: dict[str, Any] = {}
    parity = None
    if "psi" in results.get("evidently-psi", {}) and "psi" in results.get("ours-evidently", {}):
        theirs, ours = results["evidently-psi"]["psi"], results["ours-evidently"]["psi"]
        common = sorted(set(theirs) & set(ours))
        diffs = {c: abs(theirs[c] - ours[c]) for c in common}
        if diffs:
            worst = max(diffs, key=lambda c: diffs[c]) if diffs else None
            max_diff = diffs[worst] if worst else math.nan
        else:
            worst, max_diff = None, math.nan
        missing = sorted(set(theirs) ^ set(ours))
        ok = bool(diffs) and not missing and max_diff <= PSI_PARITY_TOLERANCE
        parity = {
            "max_abs_diff": max_diff,
            "column": worst,
            "columns_compared": len(common),
            "columns_missing_on_one_side": missing,
            "tolerance": PSI_PARITY_TOLERANCE,
            "pass": ok,
            "per_column_abs_diff": diffs,
        }
        colour = "green" if ok else "red"
        console.print(
            f"[{colour}]PSI parity (ours binning=evidently vs Evidently's ValueDrift PSI, {len(common)} columns): "
            f"max |Δ| = {max_diff:.3e} ({worst}) → {'PASS' if ok else 'FAIL'} (tolerance {PSI_PARITY_TOLERANCE:g})"
            + (f"; missing on one side: {missing}" if missing else "")
        )

    fastest_evidently = min((v for v in (ev_psi, ev_ks) if v is not None), default=None)
    if "ours-streaming" in medians and fastest_evidently is not None:
        x = fastest_evidently / medians["ours-streaming"]
        ok = x >= STREAMING_TARGET
        verdicts["streaming_vs_evidently"] = {
            "speedup": x,
            "target": STREAMING_TARGET,
            "pass": ok,
            "against": "faster of Evidently PSI / KS",
        }
        console.print(
            f"[{'green' if ok else 'red'}]Verdict: streaming is {x:,.1f}× faster than the faster Evidently run "
            f"(PSI {_fmt_x(_speedup(ev_psi, medians['ours-streaming']))}, KS {_fmt_x(_speedup(ev_ks, medians['ours-streaming']))}) "
            f"— target ≥ {STREAMING_TARGET:g}×: {'MET' if ok else 'MISSED'}"
        )
    if "ours-evidently" in medians and ev_psi is not None:
        x = ev_psi / medians["ours-evidently"]
        ok = x >= EVIDENTLY_MODE_TARGET
        verdicts["evidently_mode_vs_evidently_psi"] = {"speedup": x, "target": EVIDENTLY_MODE_TARGET, "pass": ok}
        console.print(
            f"[{'green' if ok else 'red'}]Verdict: Evidently-compatible mode is {x:,.1f}× faster than Evidently PSI "
            f"(same statistic) — target ≥ {EVIDENTLY_MODE_TARGET:g}×: {'MET' if ok else 'MISSED'}"
        )
    for name, r in results.items():
        if r.get("profile"):
            console.rule(f"cProfile: {CONTENDERS[name]['label']} (one extra untimed run)")
            console.file.flush()
            print(r["profile"], flush=True)
    return {"contenders": out, "psi_parity": parity, "verdicts": verdicts}


# ------------------------------------------------------------------ whole processes

# What a user of Evidently runs on two Parquet files: the counterpart of `model-health drift`.
EVIDENTLY_SCRIPT = """
import json, sys, warnings
warnings.filterwarnings("ignore")
import pyarrow as pa, pyarrow.parquet as pq
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset
ref, cur = pq.read_table(sys.argv[1]), pq.read_table(sys.argv[2])
numerical = [f.name for f in ref.schema if pa.types.is_floating(f.type) or pa.types.is_integer(f.type)]
categorical = [f.name for f in ref.schema if f.name not in numerical]
definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
snapshot = Report([DataDriftPreset(method="psi")]).run(
    Dataset.from_pandas(cur.to_pandas(), data_definition=definition),
    Dataset.from_pandas(ref.to_pandas(), data_definition=definition),
)
drift = [m for m in snapshot.dict()["metrics"] if m["config"].get("type", "").endswith("ValueDrift")]
print(json.dumps({
    "psi": {m["config"]["column"]: float(m["value"]) for m in drift},
    "flagged": [m["config"]["column"] for m in drift if float(m["value"]) >= m["config"]["threshold"]],
}))
"""
# The body of the installed ``model-health`` console script.
CONSOLE_SCRIPT = "import sys; from exporter.cli import main; sys.exit(main())"

STARTUP = ("bare", "help", "drift-help")
PROCESSES = ("evidently-process", "ours-profile", "ours-evidently", "ours-reference")
OURS = ("help", "drift-help", "ours-profile", "ours-evidently", "ours-reference")
PROCESS_LABELS = {
    "bare": "python -c pass",
    "help": "model-health --help",
    "drift-help": "model-health drift --help",
    "evidently-process": "Evidently 0.7 PSI script",
    "ours-profile": "model-health drift, profile",
    "ours-evidently": "model-health drift --binning evidently",
    "ours-reference": "model-health drift, raw reference (exact KS)",
}
BASELINE = "@baseline"


def _child_env(root: Path, folder: Path) -> dict[str, str]:
    """The environment of a timed process: ``root``'s code first on the import path, and
    bytecode cached (in ``folder``) as an installed package has it. Where
    PYTHONDONTWRITEBYTECODE is set, a source checkout would otherwise recompile its own
    modules on every run, while site-packages (Evidently, scipy…) keep their bytecode."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH", "")) if p)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(folder / "pycache")
    return env


def _process_commands(ref_path: str, cur_path: str, profile_path: str) -> dict[str, list[str]]:
    python = sys.executable
    model_health = [python, "-c", CONSOLE_SCRIPT]
    drift = [*model_health, "drift", "--reference"]
    current = ["--current", cur_path, "--format", "json"]
    return {
        "bare": [python, "-c", "pass"],
        "help": [*model_health, "--help"],
        "drift-help": [*model_health, "drift", "--help"],
        "evidently-process": [python, "-c", EVIDENTLY_SCRIPT, ref_path, cur_path],
        "ours-profile": [*drift, profile_path, *current],
        "ours-evidently": [*drift, ref_path, *current, "--binning", "evidently"],
        "ours-reference": [*drift, ref_path, *current],
    }


def _shown(argv: list[str], folder: Path) -> str:
    """A command as the report prints it: ``python``, ``model-health``, ``$TMP`` for the data folder."""
    words = " ".join(
        "python" if a == sys.executable else "EVIDENTLY_SCRIPT" if a == EVIDENTLY_SCRIPT else a for a in argv
    )
    return words.replace(f"python -c {CONSOLE_SCRIPT}", "model-health").replace(str(folder), "$TMP")


# This project's VMs hand freed guest memory back to their host (virtio-balloon free page
# reporting, a couple of seconds after it is freed): the first process to touch memory after a
# large one has exited pays for faulting it back. Measured 2026-12-07: `model-health drift` on
# 1,000,000 × 20 rows took 0.80–0.88 s of system time right after whylogs's job (even 5 s
# later), 0.12–0.19 s right after another run. So every timed process starts right after an
# untimed one that touches 2 GiB: each contender runs on memory the guest holds, whatever ran
# before it.
_TOUCH_MEMORY = "import numpy; numpy.ones(1 << 28)"


def touch_memory() -> None:
    """Fault 2 GiB into this VM and free it, just before a timed process (see above)."""
    subprocess.run([sys.executable, "-c", _TOUCH_MEMORY], check=True, capture_output=True)


def _run_once(argv: list[str], root: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """Wall and CPU (user + sys) seconds of one whole process, and its stdout."""
    touch_memory()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=root, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])} … exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout


class _Runs:
    """The timed commands: each of this checkout, and of the ``--baseline`` checkout where one is given."""

    def __init__(self, commands: dict[str, list[str]], folder: Path, baseline: Path | None) -> None:
        self.commands, self.folder = commands, folder
        self.roots = {"": ROOT, **({BASELINE: baseline} if baseline else {})}
        self.envs = {key: _child_env(root, folder) for key, root in self.roots.items()}

    def keys(self, names: tuple[str, ...]) -> list[str]:
        """Every name, and after each of ours its baseline twin."""
        return [name + suffix for name in names for suffix in self.roots if not suffix or name in OURS]

    def run(self, key: str) -> tuple[float, float, str]:
        name, _, suffix = key.partition("@")
        suffix = "@" + suffix if suffix else ""
        return _run_once(self.commands[name], self.roots[suffix], self.envs[suffix])

    def round_robin(self, names: tuple[str, ...], repeats: int, console: Any, what: str) -> dict[str, Any]:
        """Each command once untimed (it fills the bytecode cache), then ``repeats`` rounds of all in turn."""
        keys = self.keys(names)
        results: dict[str, Any] = {key: {"times": [], "cpu_times": []} for key in keys}
        with console.status(f"{what}: warm-up") as status:
            for key in keys:
                results[key]["stdout"] = self.run(key)[2]
            for i in range(repeats):
                for key in keys:
                    status.update(f"{what}: round {i + 1}/{repeats}, {key}")
                    wall, cpu, _ = self.run(key)
                    results[key]["times"].append(wall)
                    results[key]["cpu_times"].append(cpu)
        return results

    @staticmethod
    def label(key: str) -> str:
        name, _, baseline = key.partition("@")
        return PROCESS_LABELS[name] + (" — baseline" if baseline else "")


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else math.nan


def _table(title: str, headers: tuple[tuple[str, str], ...]) -> Any:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for header, justify in headers:
        table.add_column(header, justify=justify)  # type: ignore[arg-type]
    return table


def _startup(runs: _Runs, repeats: int, console: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    results = runs.round_robin(STARTUP, repeats, console, "start-up")
    bare = statistics.median(results["bare"]["times"])
    table = _table(
        f"Start-up: median of {repeats} fresh processes each, round-robin",
        (
            ("command", "left"),
            ("median ms", "right"),
            ("min / max ms", "right"),
            ("CPU ms", "right"),
            ("× python -c pass", "right"),
        ),
    )
    figures: dict[str, Any] = {}
    for key, r in results.items():
        times, cpu = r["times"], r["cpu_times"]
        x = _ratio(statistics.median(times), bare)
        table.add_row(
            runs.label(key),
            f"{statistics.median(times) * 1e3:.0f}",
            f"{min(times) * 1e3:.0f} / {max(times) * 1e3:.0f}",
            f"{statistics.median(cpu) * 1e3:.0f}",
            f"{x:.1f}×",
        )
        figures[key] = {
            "command": _shown(runs.commands[key.partition("@")[0]], runs.folder),
            "seconds": _stats(times),
            "times": times,
            "cpu_seconds": cpu,
            "times_bare": x,
        }
    console.print(table)
    verdicts = {}
    for name in ("help", "drift-help"):
        x = figures[name]["times_bare"]
        ok = x <= STARTUP_TARGET
        verdicts[f"startup_{name}"] = {"times_bare": x, "target": STARTUP_TARGET, "pass": ok}
        console.print(
            f"[{'green' if ok else 'red'}]Verdict: {PROCESS_LABELS[name]} takes {x:.1f}× python -c pass "
            f"— target ≤ {STARTUP_TARGET:g}×: {'MET' if ok else 'MISSED'}"
        )
    return figures, verdicts


def _processes(runs: _Runs, repeats: int, injected: list[str], console: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    results = runs.round_robin(PROCESSES, repeats, console, "whole processes")
    evidently = results["evidently-process"]
    ev_wall, ev_cpu = statistics.median(evidently["times"]), statistics.median(evidently["cpu_times"])
    table = _table(
        f"Whole process: median of {repeats} fresh processes each, round-robin (one untimed warm-up each); "
        "same files as above",
        (
            ("command", "left"),
            ("median s", "right"),
            ("min / max s", "right"),
            ("CPU s", "right"),
            ("vs Evidently (wall)", "right"),
            ("vs Evidently (CPU)", "right"),
            ("flagged drifted", "left"),
        ),
    )
    figures: dict[str, Any] = {}
    psi: dict[str, dict[str, float]] = {}
    for key, r in results.items():
        times, cpu = r["times"], r["cpu_times"]
        output = json.loads(r["stdout"])
        if key == "evidently-process":
            flagged, psi[key] = output["flagged"], output["psi"]
        else:
            flagged = [c for c, f in output["features"].items() if f["drift"]]
            psi[key] = {c: f["psi"] for c, f in output["features"].items()}
        flag_text, exact = _flag_text(flagged, injected)
        x_wall, x_cpu = _ratio(ev_wall, statistics.median(times)), _ratio(ev_cpu, statistics.median(cpu))
        table.add_row(
            runs.label(key),
            f"{statistics.median(times):.3f}",
            f"{min(times):.3f} / {max(times):.3f}",
            f"{statistics.median(cpu):.3f}",
            f"{x_wall:,.1f}×",
            f"{x_cpu:,.1f}×",
            ("[green]" if exact else "[yellow]") + flag_text,
        )
        figures[key] = {
            "command": _shown(runs.commands[key.partition("@")[0]], runs.folder),
            "seconds": _stats(times),
            "times": times,
            "cpu_seconds": cpu,
            "speedup_vs_evidently_wall": x_wall,
            "speedup_vs_evidently_cpu": x_cpu,
            "flagged": flagged,
            "flagged_exactly_injected": exact,
        }
    console.print(table)
    console.print("[bold]What each row runs[/bold] (model-health = its console script, run from the checkout)")
    for name in PROCESSES:
        console.print(f"  {PROCESS_LABELS[name]:<46} {_shown(runs.commands[name], runs.folder)}", highlight=False)
    if BASELINE in runs.roots:
        console.print(f"  — baseline: the same command with the code of {runs.roots[BASELINE]}", highlight=False)
    verdicts: dict[str, Any] = {}
    theirs, ours = psi["evidently-process"], psi["ours-evidently"]
    diff = max((abs(theirs[c] - ours[c]) for c in theirs if c in ours), default=math.nan)
    parity = set(theirs) == set(ours) and diff <= PSI_PARITY_TOLERANCE
    verdicts["process_psi_parity"] = {"max_abs_diff": diff, "tolerance": PSI_PARITY_TOLERANCE, "pass": parity}
    console.print(
        f"[{'green' if parity else 'red'}]PSI parity, whole processes (ours --binning evidently vs Evidently): "
        f"max |Δ| = {diff:.3e} → {'PASS' if parity else 'FAIL'} (tolerance {PSI_PARITY_TOLERANCE:g})"
    )
    for name, target in (("ours-profile", PROCESS_PROFILE_TARGET), ("ours-evidently", PROCESS_EVIDENTLY_MODE_TARGET)):
        entry = figures[name]
        ok = entry["speedup_vs_evidently_wall"] >= target
        verdicts[f"process_{name}"] = {
            "speedup_wall": entry["speedup_vs_evidently_wall"],
            "speedup_cpu": entry["speedup_vs_evidently_cpu"],
            "target": target,
            "pass": ok,
        }
        console.print(
            f"[{'green' if ok else 'red'}]Verdict: whole-process {PROCESS_LABELS[name]} is "
            f"{entry['speedup_vs_evidently_wall']:,.1f}× faster than Evidently's whole process "
            f"(CPU time {entry['speedup_vs_evidently_cpu']:,.1f}×) — target ≥ {target:g}×: {'MET' if ok else 'MISSED'}"
        )
    busy = [
        runs.label(key)
        for key, r in results.items()
        if statistics.median(r["times"]) > 1.2 * statistics.median(r["cpu_times"])
    ]
    if busy:
        console.print(
            "[yellow]  Warning: wall time exceeds CPU time by > 20% for "
            + "; ".join(busy)
            + " — other work on the machine may have inflated these timings (the CPU column is steadier)."
        )
    return figures, verdicts


def _whole_process(
    ref_path: str, cur_path: str, folder: Path, injected: list[str], options: dict[str, Any], console: Any
) -> dict[str, Any]:
    """Start-up and whole-process figures, side by side in this run; printed and returned."""
    profile_path = str(folder / "profile.parquet")
    runs = _Runs(_process_commands(ref_path, cur_path, profile_path), folder, options["baseline"])
    figures: dict[str, Any] = {"baseline": str(options["baseline"]) if options["baseline"] else None}
    verdicts: dict[str, Any] = {}
    if options["startup_repeats"]:
        figures["startup"], found = _startup(runs, options["startup_repeats"], console)
        verdicts.update(found)
    if options["process_repeats"]:
        build = [sys.executable, "-c", CONSOLE_SCRIPT, "reference", "build", ref_path]
        _run_once([*build, "--model", "benchmark", "--model-version", "1", "--out", profile_path], ROOT, runs.envs[""])
        figures["whole_process"], found = _processes(runs, options["process_repeats"], injected, console)
        verdicts.update(found)
    return {**figures, "verdicts": verdicts}


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("evidently", "pandas", "numpy", "pyarrow", "scipy", "model-health-exporter"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows in reference and in current (default 100000)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per contender; the median is reported")
    parser.add_argument("--warmup", type=int, default=0, help="untimed runs before the repeats (default 0)")
    parser.add_argument("--seed", type=int, default=0, help="reference seed; current uses seed + 1")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument(
        "--contenders", default=",".join(CONTENDERS), help="comma-separated subset of " + ", ".join(CONTENDERS)
    )
    parser.add_argument("--no-tracemalloc", action="store_true", help="skip the extra tracemalloc run")
    parser.add_argument(
        "--malloc-env",
        action="store_true",
        help="run every contender with glibc "
        + " ".join(f"{k}={v}" for k, v in MALLOC_ENV.items())
        + " (fewer page faults from large temporaries); default: the allocator's defaults",
    )
    parser.add_argument(
        "--cprofile",
        type=int,
        default=0,
        metavar="N",
        help="after timing, profile one extra run of our contenders and print the top N functions",
    )
    parser.add_argument(
        "--process-repeats",
        type=int,
        default=5,
        help="whole-process runs of Evidently and of model-health drift, round-robin (default 5; 0 skips them)",
    )
    parser.add_argument(
        "--startup-repeats",
        type=int,
        default=20,
        help="runs of python -c pass, model-health --help and drift --help, round-robin (default 20; 0 skips them)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another checkout of this repository (e.g. a worktree of the commit before a change): its "
        "model-health runs too, in the same rounds, as extra '— baseline' rows",
    )
    parser.add_argument(
        "--no-in-process",
        action="store_true",
        help="skip the in-process contenders (whole processes and start-up only)",
    )
    args = parser.parse_args(argv)
    names = [] if args.no_in_process else [n.strip() for n in args.contenders.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONTENDERS]
    if (
        unknown
        or not (names or args.process_repeats or args.startup_repeats)
        or args.rows < 1
        or args.repeats < 1
        or args.warmup < 0
        or args.process_repeats < 0
        or args.startup_repeats < 0
    ):
        parser.error(f"bad arguments (unknown contenders: {unknown})" if unknown else "rows and repeats must be ≥ 1")

    from rich.console import Console

    # Piped output would otherwise be squeezed to 80 columns.
    console = Console() if sys.stdout.isatty() else Console(width=170)
    wall = time.perf_counter()
    options = {
        "repeats": args.repeats,
        "warmup": args.warmup,
        "tracemalloc": not args.no_tracemalloc,
        "cprofile": args.cprofile,
        "malloc_env": args.malloc_env,
        "process_repeats": args.process_repeats,
        "startup_repeats": args.startup_repeats,
        "baseline": args.baseline.resolve() if args.baseline else None,
    }
    versions = _versions()
    if args.malloc_env:
        os.environ.update(MALLOC_ENV)  # spawned children inherit it at start-up, when glibc reads it
    load_before = os.getloadavg()[0]
    console.print(
        f"[bold]detectors vs Evidently[/bold] — Python {platform.python_version()}, "
        + ", ".join(f"{k} {v}" for k, v in versions.items())
        + f"; {os.cpu_count()} CPUs; allocator: "
        + (" ".join(f"{k}={v}" for k, v in MALLOC_ENV.items()) if args.malloc_env else "glibc defaults")
    )
    with tempfile.TemporaryDirectory(prefix="mh-bench-") as folder:
        with console.status(f"generating {args.rows:,} + {args.rows:,} rows and writing Parquet"):
            ref_path, cur_path, injected, info = _make_data(args.rows, args.seed, Path(folder))
        console.print(
            f"data: {info['rows']:,} rows × {info['columns']} columns each, Parquet {info['parquet_bytes']['reference'] / 2**20:.1f} + "
            f"{info['parquet_bytes']['current'] / 2**20:.1f} MiB, generated and written in {info['generate_and_write_seconds']:.2f} s (not timed)"
        )
        results = _run_contenders(names, ref_path, cur_path, options, console) if names else {}
        for name, r in results.items():
            if "error" in r:
                console.print(f"[red]{name} failed:[/red]\n{r['error']}", markup=True, highlight=False)
        figures = _report(results, injected, info, options, console) if results else {}
        try:
            processes = _whole_process(ref_path, cur_path, Path(folder), injected, options, console)
        except (RuntimeError, OSError, ValueError, KeyError) as exc:
            console.print(f"[red]whole-process runs failed:[/red] {exc}", markup=True, highlight=False)
            processes = {"error": str(exc)}
    figures["processes"] = processes
    elapsed = time.perf_counter() - wall
    console.print(
        f"benchmark wall time: {elapsed:.1f} s (1-min load average {load_before:.2f} at start, {os.getloadavg()[0]:.2f} at end)"
    )
    if args.json:
        payload = {
            "data": info,
            "injected": injected,
            "repeats": args.repeats,
            "warmup": args.warmup,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "versions": versions,
            "malloc_env": MALLOC_ENV if args.malloc_env else None,
            "wall_seconds": elapsed,
            **figures,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(_json_ready(payload), indent=2, allow_nan=False) + "\n")
        console.print(f"figures written to {args.json}")
    return 0 if all("error" not in r for r in (*results.values(), processes)) else 1


def _json_ready(value: Any) -> Any:
    """NaN and ±inf become None; numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


if __name__ == "__main__":
    sys.exit(main())
