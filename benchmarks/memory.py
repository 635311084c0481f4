"""Memory per model: one model's windows full, packed as they are kept against unpacked.

    python benchmarks/memory.py [--rates 200,6000,60000] [--json PATH]

Model: one reference profile of 100 features (80 numeric, 20 categorical; ``synthetic_table(5_000,
numeric=80, categorical=20, drifted=10)`` → ``build_profile(prediction="prediction",
label="label")``), 1,000 fine bins per numeric feature. Windows: ``1h`` = 60 × 60 s and ``1d`` =
24 × 3600 s, both full (60 + 24 buckets after ``expire``).

Traffic: for each rate (predictions per minute), 60 one-minute tables of the drifted synthetic
data (a new seed each) are folded with the aggregator's own fold
(:func:`~exporter.pipeline.buckets.prediction_buckets`) before measuring. Then, measured, a
:class:`~exporter.pipeline.windows.ModelWindows` takes those 60 minute buckets for the current
hour and again for each of the 23 hours before it, through ``add_predictions`` (the path every
mode uses), and expires what no window reaches. So each 1-hour bucket of ``1d`` holds 60 × the
rate predictions, as at that steady rate.

Measured per rate, each in ``tracemalloc`` current bytes from before the store is built to
after it is filled (the profile and the folded minute buckets exist before and are not
counted):

* packed — the store as it is kept (:mod:`exporter.pipeline.packed`);
* unpacked — every bucket of both windows read back as :class:`~exporter.pipeline.buckets.Bucket`
  (int64 counts, Python-integer exact sums): what the windows held before packing;
* the bytes in the packed arrays alone (``ModelWindows.nbytes``), and each window's read
  (``window()``, the sum an evaluation takes) timed, its result checked equal to the
  unpacked buckets' sum;
* a checkpoint of the store: its file size (``save_checkpoint``, format 2, zstd Parquet), next
  to the same buckets in format 1's layout (one row per summary, counts as int64 lists, sums as
  text — what the aggregator wrote before 2026-12-07), written the same way;
* one summary message (``exporter.pipeline.summary_wire``) of a 1-minute and of a 1-hour
  bucket, in format 2 and in format 1.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's code, as benchmarks/scaleout.py

NUMERIC, CATEGORICAL, DRIFTED = 80, 20, 10
REFERENCE_ROWS = 5_000
WINDOWS = (("1h", 60, 60), ("1d", 3600, 24))
MIB = 2**20


def _profile():  # type: ignore[no-untyped-def]
    from detectors.profile import build_profile
    from exporter.demo.synthetic import synthetic_table

    reference = synthetic_table(REFERENCE_ROWS, seed=21, numeric=NUMERIC, categorical=CATEGORICAL, drifted=DRIFTED)
    return build_profile(
        reference, model="m", model_version="1", created_at=1.0e9, prediction="prediction", label="label"
    )


def minute_buckets(profile, per_minute: int) -> list[Any]:  # type: ignore[no-untyped-def]
    """60 one-minute buckets of ``per_minute`` drifted records each, folded as the aggregator folds."""
    from exporter.demo.synthetic import prediction_log, synthetic_table
    from exporter.pipeline.buckets import prediction_buckets

    out = []
    for minute in range(60):
        data = synthetic_table(
            per_minute, seed=1_000 + minute, drift=True, numeric=NUMERIC, categorical=CATEGORICAL, drifted=DRIFTED
        )
        times = minute * 60 + np.linspace(0.0, 59.0, per_minute)
        (bucket,) = prediction_buckets(profile, prediction_log(data, "m", "1", times), 60).buckets.values()
        out.append(bucket)
    return out


def measure(profile, minutes: list[Any], hour: int) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    from exporter.aggregator.checkpoint import Checkpoint, save_checkpoint
    from exporter.pipeline.buckets import Bucket
    from exporter.pipeline.summary_wire import SummaryHeader, encode_summary
    from exporter.pipeline.windows import ModelWindows, WindowSpec

    now = float(hour + 3600)  # the end of the current hour: 60 minute buckets, 24 hour buckets
    gc.collect()
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    store = ModelWindows(profile, [WindowSpec(*w) for w in WINDOWS], 0)
    for back in range(23, -1, -1):
        start = hour - back * 3600
        for minute, bucket in enumerate(minutes):
            slot = start + minute * 60
            store.add_predictions(60, {slot: bucket}, {slot: slot + 59.0})
    store.expire(now)
    gc.collect()
    packed_bytes, _ = tracemalloc.get_traced_memory()
    unpacked = {name: dict(ring.items()) for name, ring in store.buckets.items()}
    gc.collect()
    both, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    reads = {}
    for name, _, _ in WINDOWS:
        started = time.perf_counter()
        window = store.window(name, now)
        reads[name] = time.perf_counter() - started
        assert window == Bucket.sum(list(unpacked[name].values())), f"{name}: packed window differs"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "state.parquet"
        save_checkpoint(path, {("m", "1"): store}, Checkpoint())
        checkpoint_bytes = path.stat().st_size
        old = Path(tmp) / "format-1.parquet"
        _write_format_1(old, unpacked)
        checkpoint_1_bytes = old.stat().st_size
    messages = {}
    for name, _, _ in WINDOWS:
        start, bucket = max(unpacked[name].items())
        for version in (1, 2):
            header = SummaryHeader("m", "1", start, 60, "bench", 0, bucket.records, format_version=version)
            messages[f"{name} v{version}"] = len(encode_summary(header, bucket))
    return {
        "packed_bytes": packed_bytes - base,
        "unpacked_bytes": both - packed_bytes,
        "array_bytes": store.nbytes,
        "buckets": {name: len(ring) for name, ring in store.buckets.items()},
        "records_per_hour_bucket": int(sum(b.records for b in minutes)),
        "window_read_seconds": reads,
        "checkpoint_bytes": checkpoint_bytes,
        "checkpoint_format_1_bytes": checkpoint_1_bytes,
        "summary_message_bytes": messages,
    }


def _write_format_1(path: Path, rings: dict[str, dict[int, Any]]) -> None:
    """The buckets in checkpoint format 1's rows: one per bucket and one per summary."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from detectors.profile import SUMMARY_COUNT_FIELDS, summary_counts

    rows = []
    for window, ring in rings.items():
        for start, bucket in ring.items():
            base = {"model": "m", "model_version": "1", "window": window, "bucket_start": start}
            rows.append({**base, "part": "bucket", "name": "", "records": bucket.records, "labels": bucket.labels})
            parts = [("feature", name, s) for name, s in bucket.features.items()]
            parts += [(p, "", getattr(bucket, p)) for p in ("prediction", "label", "loss") if getattr(bucket, p)]
            rows += [{**base, "part": p, "name": n, **summary_counts(s)} for p, n, s in parts]
    schema = pa.schema(
        [
            ("model", pa.string()),
            ("model_version", pa.string()),
            ("window", pa.string()),
            ("bucket_start", pa.int64()),
            ("part", pa.string()),
            ("name", pa.string()),
            ("records", pa.int64()),
            ("labels", pa.int64()),
            *SUMMARY_COUNT_FIELDS,
            ("payload", pa.string()),
        ]
    )
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path, compression="zstd")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="200,6000,60000", help="predictions per minute, comma-separated")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",") if r.strip()]
    profile = _profile()
    hour = int(time.time() // 3600 * 3600)
    results: dict[str, Any] = {"features": len(profile.features), "windows": WINDOWS, "rates": {}}
    print(f"{len(profile.features)} features ({NUMERIC} numeric, {CATEGORICAL} categorical), windows 1h + 1d full")
    print(f"{'per minute':>10} {'per second':>10} {'packed MiB':>11} {'unpacked MiB':>13} {'ratio':>6}", end="")
    print(f" {'arrays MiB':>11} {'read 1h ms':>10} {'read 1d ms':>10} {'checkpoint MiB (fmt 1)':>23}", end="")
    print(f" {'message KiB 1 min (fmt 1)':>26} {'message KiB 1 h (fmt 1)':>24}")
    for rate in rates:
        figures = measure(profile, minute_buckets(profile, rate), hour)
        results["rates"][rate] = figures
        print(
            f"{rate:>10,} {rate / 60:>10,.1f} {figures['packed_bytes'] / MIB:>11.2f}"
            f" {figures['unpacked_bytes'] / MIB:>13.2f} {figures['unpacked_bytes'] / figures['packed_bytes']:>5.1f}×"
            f" {figures['array_bytes'] / MIB:>11.2f} {figures['window_read_seconds']['1h'] * 1e3:>10.1f}"
            f" {figures['window_read_seconds']['1d'] * 1e3:>10.1f}"
            f" {figures['checkpoint_bytes'] / MIB:>11.2f} ({figures['checkpoint_format_1_bytes'] / MIB:>7.2f})",
            end="",
        )
        m = figures["summary_message_bytes"]
        print(
            f" {m['1h v2'] / 1024:>14.0f} ({m['1h v1'] / 1024:>7.0f}) {m['1d v2'] / 1024:>12.0f} ({m['1d v1'] / 1024:>7.0f})"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
