"""Side-by-side drift benchmark: Evidently 0.7's DataDriftPreset against our detectors.

    python benchmarks/detectors_vs_evidently.py [--rows N] [--repeats 3] [--json PATH]

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
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

NUMERIC = 20
CATEGORICAL = 5
DRIFTED = 6
PSI_PARITY_TOLERANCE = 1e-9
STREAMING_TARGET = 50.0
EVIDENTLY_MODE_TARGET = 10.0

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
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.contenders.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONTENDERS]
    if unknown or not names or args.rows < 1 or args.repeats < 1 or args.warmup < 0:
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
        results = _run_contenders(names, ref_path, cur_path, options, console)
    for name, r in results.items():
        if "error" in r:
            console.print(f"[red]{name} failed:[/red]\n{r['error']}", markup=True, highlight=False)
    figures = _report(results, injected, info, options, console)
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
    return 0 if all("error" not in r for r in results.values()) else 1


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
