"""Ingest benchmark: the aggregator's end-to-end rate next to the Kafka client's raw rate.

(The client only hands over bytes, so their ratio is context, not a target; what monitoring
costs against what users would run instead is ``benchmarks/versus_whylogs.py``, and memory
per model ``benchmarks/memory.py``.)

    python benchmarks/ingest.py [--records N] [--clients kafka-python,confluent] [--json PATH]

Broker: one ``exporter.kafka.embedded.EmbeddedBroker`` (tansu, in memory, loopback). Model: one
reference profile of 20 features (``synthetic_table(20_000, numeric=16, categorical=4,
drifted=4)`` → ``build_profile(prediction="prediction", label="label")``, saved with
``save_profile``). Current data: ``--records`` rows of the drifted synthetic table, event
times spread over the last 50 minutes, so both windows (``1h`` = 60 × 60 s, ``1d`` = 24 ×
3600 s) hold every record.

Wire formats, each produced once to its own fresh 3-partition topic (not timed):

* ``json``    native JSON, one record per Kafka message;
* ``ndjson``  native NDJSON, 500 records per message;
* ``arrow``   Arrow IPC stream, one 500-row record batch per message (features as ``f.<name>``);
* ``kserve``  KServe binary-mode CloudEvents (``ce-*`` headers), one instance per event, a
  request event and a response event per record, keyed by ``ce-id``.

Per format and client, two measurements, each with a fresh consumer group:

* raw: ``open_consumer(...)`` polls (``max_records`` = the aggregator's ``max_poll_records``,
  both set by ``poll_size``: the largest divisor of the message count up to 500 messages, 50
  for batched formats, since confluent-kafka's ``consume`` waits out the whole poll timeout
  for a poll it cannot fill) until every message is read; records/s counts records, not messages (a KServe record is
  two messages).
* ours: an ``Aggregator`` built directly (``open_consumer``/``open_producer`` for the client,
  ``BatchDecoder``, ``load_models``), ``poll_once()`` until its offsets cover every message
  (and ``counters.predictions`` holds every record), then one ``evaluate()``. Timed: every
  ``poll_once`` (fetch + decode + route + fold + label-join buffering + lag) and the
  ``evaluate``. No checkpoint is taken (interval 1e6 s; the loop is ours, not the service's).

Group join is excluded from both: each consumer polls until its first messages arrive
(the join is then done), seeks every assigned partition back to offset 0, and only then
does the clock start. Consumer settings are the tests' tansu-friendly ones (session 2000 ms,
heartbeat 500 ms, max_poll_interval 60 s).

Also measured, in the same process, after the broker runs:

* scrape: an ``Aggregator`` over 10 models × 100 features (80 numeric + 20 categorical) and
  2 windows, 5,000 rows folded per model, evaluated; the median of 20 timings of
  ``prometheus_client.generate_latest`` over a registry holding only ``SnapshotCollector``.
``--cprofile`` (default on): each batched format (ndjson, arrow) is run once more under
cProfile and its hottest functions are printed.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import platform
import pstats
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's code, as benchmarks/scaleout.py

NUMERIC, CATEGORICAL, DRIFTED = 16, 4, 4
BATCH = 500
PARTITIONS = 3
FORMATS = ("json", "ndjson", "arrow", "kserve")
BATCHED = ("ndjson", "arrow")
FORMAT_LABELS = {
    "json": "JSON, 1 rec/msg",
    "ndjson": f"NDJSON, {BATCH} rec/msg",
    "arrow": f"Arrow IPC, {BATCH} rows/msg",
    "kserve": "KServe binary CE, req+resp",
}
MODEL, VERSION = "fraud", "7"
SESSION_TIMEOUT_MS, HEARTBEAT_MS, MAX_POLL_INTERVAL_MS = 2_000, 500, 60_000
WINDOWS = [{"name": "1h", "bucket_seconds": 60, "buckets": 60}, {"name": "1d", "bucket_seconds": 3600, "buckets": 24}]
SCRAPE_MODELS, SCRAPE_NUMERIC, SCRAPE_CATEGORICAL, SCRAPE_ROWS, SCRAPES = 10, 80, 20, 5_000, 20


# ---------------------------------------------------------------------------------------------
# Messages


@dataclass
class Produced:
    fmt: str
    topic: str
    messages: int
    records: int
    bytes: int


def _feature_rows(table: pa.Table) -> list[dict[str, Any]]:
    names = [c for c in table.column_names if c not in ("prediction", "label")]
    columns = {n: table.column(n).to_pylist() for n in names}
    rows = []
    for i in range(table.num_rows):
        # NaN is not JSON; a missing numeric value is an absent key (as the broker test does).
        rows.append({n: columns[n][i] for n in names if columns[n][i] == columns[n][i]})
    return rows


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def build_messages(fmt: str, table: pa.Table, times: np.ndarray, rows: list[dict[str, Any]] | None):
    """(value, key, headers) triples for ``fmt``."""
    scores = table.column("prediction").to_pylist()
    n = table.num_rows
    if fmt in ("json", "ndjson"):
        docs = [
            json.dumps(
                {
                    "model": MODEL,
                    "model_version": VERSION,
                    "request_id": f"r-{i}",
                    "timestamp": float(times[i]),
                    "features": rows[i],
                    "prediction": scores[i],
                    "latency_ms": 12.5,
                    "status": "ok",
                }
            )  # type: ignore[index]
            for i in range(n)
        ]
        if fmt == "json":
            return [(d.encode(), str(i).encode(), ()) for i, d in enumerate(docs)]
        return [("\n".join(docs[i : i + BATCH]).encode() + b"\n", str(i).encode(), ()) for i in range(0, n, BATCH)]
    if fmt == "arrow":
        feats = table.drop_columns(["prediction", "label"])
        feats = feats.rename_columns([f"f.{c}" for c in feats.column_names])
        out = []
        for start in range(0, n, BATCH):
            part = feats.slice(start, BATCH)
            m = part.num_rows
            head = pa.table(
                {
                    "model": pa.array([MODEL] * m),
                    "model_version": pa.array([VERSION] * m),
                    "request_id": pa.array([f"r-{i}" for i in range(start, start + m)]),
                    "timestamp": pa.array(times[start : start + m], pa.float64()),
                    "prediction": table.column("prediction").slice(start, m).combine_chunks(),
                    "latency_ms": pa.array([12.5] * m),
                    "status": pa.array(["ok"] * m),
                }
            )
            for name in part.column_names:
                head = head.append_column(name, part.column(name))
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, head.schema) as writer:
                writer.write_table(head)
            out.append((sink.getvalue().to_pybytes(), str(start).encode(), ()))
        return out
    if fmt == "kserve":
        out = []
        for i in range(n):
            event_id = f"id-{i}"
            common = [
                ("content-type", b"application/json"),
                ("ce-specversion", b"1.0"),
                ("ce-id", event_id.encode()),
                ("ce-source", b"http://localhost:9081/"),
                ("ce-inferenceservicename", MODEL.encode()),
                ("ce-namespace", b"prod"),
                ("ce-component", b"predictor"),
                ("ce-endpoint", b"default"),
                ("ce-modelversion", VERSION.encode()),
                ("ce-time", _iso(float(times[i])).encode()),
            ]
            request = json.dumps({"instances": [rows[i]]}).encode()  # type: ignore[index]
            response = json.dumps({"predictions": [scores[i]]}).encode()
            out.append((request, event_id.encode(), (*common, ("ce-type", b"org.kubeflow.serving.inference.request"))))
            out.append(
                (response, event_id.encode(), (*common, ("ce-type", b"org.kubeflow.serving.inference.response")))
            )
        return out
    raise ValueError(fmt)


# ---------------------------------------------------------------------------------------------
# Measurements


def consumer_settings(broker, group: str):  # type: ignore[no-untyped-def]
    from exporter.kafka import ConsumerSettings

    return ConsumerSettings(
        broker.bootstrap_servers,
        group,
        session_timeout_ms=SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=HEARTBEAT_MS,
        max_poll_interval_ms=MAX_POLL_INTERVAL_MS,
        bootstrap_timeout_s=10.0,
    )


def _join_and_rewind(consumer, timeout_s: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    """Poll until the group is joined and data flows, then seek every partition to 0."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if consumer.poll(1.0, 1):
            break
    else:
        raise RuntimeError("no messages within the join deadline")
    for tp in consumer.assignment():
        consumer.seek(tp.topic, tp.partition, 0)


def measure_raw(broker, client: str, produced: Produced, max_records: int, timeout_s: float) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    from exporter.kafka import open_consumer

    consumer = open_consumer(consumer_settings(broker, f"raw-{uuid.uuid4().hex[:8]}"), client)
    try:
        consumer.subscribe([produced.topic])
        _join_and_rewind(consumer)
        seen = 0
        started = time.perf_counter()
        deadline = time.monotonic() + timeout_s
        while seen < produced.messages and time.monotonic() < deadline:
            seen += len(consumer.poll(1.0, max_records))
        elapsed = time.perf_counter() - started
    finally:
        consumer.close()
    return {
        "seconds": elapsed,
        "messages": seen,
        "records_per_s": produced.records * min(seen, produced.messages) / produced.messages / elapsed,
        "complete": seen == produced.messages,
    }


def poll_size(fmt: str, messages: int) -> int:
    """Messages per poll: the largest divisor of ``messages`` up to 500 (batched formats: up to 50,
    i.e. 25,000 records). confluent-kafka's consume() waits the whole poll timeout for a poll it
    cannot fill, so a count that does not divide the topic would add a 1 s tail wait to both
    sides of every confluent measurement."""
    cap = 50 if fmt in BATCHED else 500
    return max(d for d in range(1, min(cap, messages) + 1) if messages % d == 0)


def make_config(
    broker, topic: str, labels: str, deadletter: str, profile: Path, state: Path, client: str, max_poll: int
):  # type: ignore[no-untyped-def]
    from exporter.config import AggregatorConfig

    return AggregatorConfig(
        kafka={
            "bootstrap_servers": broker.bootstrap_servers,
            "group_id": f"agg-{uuid.uuid4().hex[:8]}",
            "predictions_topic": topic,
            "labels_topic": labels,
            "deadletter_topic": deadletter,
            "client": client,
            "session_timeout_ms": SESSION_TIMEOUT_MS,
            "heartbeat_interval_ms": HEARTBEAT_MS,
            "max_poll_interval_ms": MAX_POLL_INTERVAL_MS,
            "max_poll_records": max_poll,
        },
        models=[{"name": MODEL, "version": VERSION, "reference": str(profile)}],
        windows=WINDOWS,
        allowed_lateness_seconds=100_000,
        state={"dir": str(state), "checkpoint_interval_seconds": 1e6},
    )


def measure_ours(
    broker,
    client: str,
    produced: Produced,
    topics: dict[str, str],
    profile: Path,
    tmp: Path,  # type: ignore[no-untyped-def]
    timeout_s: float,
    profiler: cProfile.Profile | None = None,
) -> dict[str, Any]:
    from exporter.aggregator.inputs import load_models
    from exporter.aggregator.single import Aggregator
    from exporter.kafka import ProducerSettings, open_consumer, open_producer
    from exporter.pipeline.decode import BatchDecoder

    state = Path(tempfile.mkdtemp(dir=tmp, prefix="state-"))
    config = make_config(
        broker,
        produced.topic,
        topics["labels"],
        topics["deadletter"],
        profile,
        state,
        client,
        poll_size(produced.fmt, produced.messages),
    )
    consumer = open_consumer(consumer_settings(broker, config.kafka.group_id), client)
    producer = open_producer(ProducerSettings(broker.bootstrap_servers, linger_ms=5, bootstrap_timeout_s=10.0), client)
    aggregator = Aggregator(config, load_models(config), consumer, producer, BatchDecoder(config.kafka.labels_topic))
    key = (MODEL, VERSION)
    try:
        aggregator.subscribe()
        _join_and_rewind(consumer)  # the join's first fetch is thrown away; the aggregator starts at 0
        polls = 0
        deadline = time.monotonic() + timeout_s
        if profiler is not None:
            profiler.enable()
        started = time.perf_counter()
        while time.monotonic() < deadline:
            aggregator.poll_once()
            polls += 1
            if aggregator.counters.predictions[key] >= produced.records:
                break
            if sum(aggregator.offsets.values()) >= produced.messages:
                break  # every message handled; what is not folded was rejected (reported)
        folded_at = time.perf_counter()
        snapshot = aggregator.evaluate()
        ended = time.perf_counter()
        if profiler is not None:
            profiler.disable()
    finally:
        consumer.close()
        producer.close()
    samples = {w: r.samples for m in snapshot.models for w, r in m.windows.items()}
    folded = aggregator.counters.predictions[key]
    return {
        "seconds": ended - started,
        "fold_seconds": folded_at - started,
        "evaluate_seconds": ended - folded_at,
        "polls": polls,
        "folded": folded,
        "rejected": dict((f"{t}:{r}", c) for (t, r), c in aggregator.counters.rejected.items()),
        "window_samples": samples,
        "records_per_s": folded / (ended - started),
        "complete": folded == produced.records,
        "drifted": sorted(
            {f for m in snapshot.models for r in m.windows.values() for f, d in r.features.items() if d.drift}
        ),
    }


def measure_scrape(tmp: Path) -> dict[str, Any]:
    from prometheus_client import CollectorRegistry, generate_latest

    from detectors.profile import build_profile
    from exporter import __version__
    from exporter.aggregator.collector import SnapshotCollector
    from exporter.aggregator.single import Aggregator
    from exporter.config import AggregatorConfig
    from exporter.demo.synthetic import prediction_log, synthetic_table
    from exporter.exposition import BuildInfoCollector
    from exporter.profiles import save_profile

    shape = {"numeric": SCRAPE_NUMERIC, "categorical": SCRAPE_CATEGORICAL, "drifted": 10}
    reference = synthetic_table(SCRAPE_ROWS, seed=11, **shape)
    current = synthetic_table(SCRAPE_ROWS, seed=12, drift=True, **shape)
    models = []
    for i in range(SCRAPE_MODELS):
        path = tmp / f"scrape-{i}.parquet"
        save_profile(
            build_profile(
                reference,
                model=f"model-{i}",
                model_version="1",
                created_at=time.time(),
                prediction="prediction",
                label="label",
            ),
            path,
        )
        models.append({"name": f"model-{i}", "version": "1", "reference": str(path)})
    config = AggregatorConfig(
        models=models, windows=WINDOWS, allowed_lateness_seconds=100_000, state={"dir": str(tmp / "scrape-state")}
    )

    class _NoProducer:
        def send(self, *a: Any, **k: Any) -> None: ...
        def flush(self, timeout_s: float = 30.0) -> None: ...
        def close(self) -> None: ...

    from exporter.aggregator.inputs import load_models

    aggregator = Aggregator(config, load_models(config), None, _NoProducer(), lambda m, now: None)  # type: ignore[arg-type]
    now = time.time()
    times = now - 3000 + np.arange(SCRAPE_ROWS) * (3000 / SCRAPE_ROWS)
    for i in range(SCRAPE_MODELS):
        aggregator.stores[(f"model-{i}", "1")].fold_predictions(prediction_log(current, f"model-{i}", "1", times))
    evaluate_started = time.perf_counter()
    aggregator.evaluate()
    evaluate_seconds = time.perf_counter() - evaluate_started
    registry = CollectorRegistry()
    registry.register(BuildInfoCollector(__version__))
    registry.register(SnapshotCollector(aggregator.snapshot, aggregator.latency))
    body = generate_latest(registry)
    timings = []
    for _ in range(SCRAPES):
        started = time.perf_counter()
        generate_latest(registry)
        timings.append(time.perf_counter() - started)
    series = sum(1 for line in body.decode().splitlines() if line and not line.startswith("#"))
    return {
        "median_s": statistics.median(timings),
        "min_s": min(timings),
        "max_s": max(timings),
        "series": series,
        "bytes": len(body),
        "evaluate_s": evaluate_seconds,
    }


def hot_functions(profiler: cProfile.Profile, limit: int = 15) -> str:
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("tottime").print_stats(limit)
    text = out.getvalue()
    return text[text.find("   ncalls") :] if "   ncalls" in text else text


# ---------------------------------------------------------------------------------------------
# Main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000, help="records per wire format (default 100000)")
    parser.add_argument("--clients", default="kafka-python,confluent", help="comma-separated clients (default both)")
    parser.add_argument("--formats", default=",".join(FORMATS), help="comma-separated subset of " + ", ".join(FORMATS))
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--no-cprofile", action="store_true", help="skip profiling the batched formats")
    parser.add_argument("--timeout", type=float, default=120.0, help="longest consume loop, seconds (default 120)")
    args = parser.parse_args()
    clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    n = args.records - args.records % BATCH if args.records >= BATCH else args.records

    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from detectors.profile import build_profile
    from exporter.demo.synthetic import drifted_columns, synthetic_table
    from exporter.kafka import ProducerSettings, open_producer
    from exporter.kafka.embedded import EmbeddedBroker
    from exporter.profiles import save_profile

    console = Console() if sys.stdout.isatty() else Console(width=170)
    wall_started = time.perf_counter()
    results: dict[str, Any] = {
        "records": n,
        "clients": clients,
        "formats": formats,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "runs": [],
        "produced": {},
    }
    profiles_text: dict[str, str] = {}
    steps = 2 + len(formats) * (1 + 2 * len(clients)) + 1
    with (
        tempfile.TemporaryDirectory(prefix="ingest-bench-") as tmpname,
        Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as progress,
    ):
        tmp = Path(tmpname)
        task = progress.add_task("profile + data", total=steps)
        profile_path = save_profile(
            build_profile(
                synthetic_table(20_000, seed=1, numeric=NUMERIC, categorical=CATEGORICAL, drifted=DRIFTED),
                model=MODEL,
                model_version=VERSION,
                created_at=time.time(),
                prediction="prediction",
                label="label",
            ),
            tmp / "fraud-7.parquet",
        )
        current = synthetic_table(n, seed=2, drift=True, numeric=NUMERIC, categorical=CATEGORICAL, drifted=DRIFTED)
        times = time.time() - 3000 + np.arange(n) * (2900 / max(n, 1))
        rows = _feature_rows(current) if {"json", "ndjson", "kserve"} & set(formats) else None
        progress.advance(task)
        progress.update(task, description="starting broker")
        with EmbeddedBroker() as broker:
            topics = {"labels": f"labels-{uuid.uuid4().hex[:6]}", "deadletter": f"dlq-{uuid.uuid4().hex[:6]}"}
            broker.create_topics(list(topics.values()), partitions=1)
            producer = open_producer(
                ProducerSettings(broker.bootstrap_servers, linger_ms=20, bootstrap_timeout_s=10.0),
                "confluent" if "confluent" in clients else "kafka-python",
            )
            progress.advance(task)
            for fmt in formats:
                progress.update(task, description=f"{fmt}: build + produce {n:,} records")
                messages = build_messages(fmt, current, times, rows)
                topic = f"bench-{fmt}-{uuid.uuid4().hex[:6]}"
                broker.create_topics([topic], partitions=PARTITIONS)
                for value, key, headers in messages:
                    producer.send(topic, value, key=key, headers=headers)
                producer.flush(120.0)
                produced = Produced(fmt, topic, len(messages), n, sum(len(v) for v, _, _ in messages))
                results["produced"][fmt] = produced.__dict__
                del messages
                gc.collect()
                progress.advance(task)
                for client in clients:
                    progress.update(task, description=f"{fmt} / {client}: raw consume")
                    raw = measure_raw(broker, client, produced, poll_size(fmt, produced.messages), args.timeout)
                    progress.advance(task)
                    progress.update(task, description=f"{fmt} / {client}: aggregator")
                    ours = measure_ours(broker, client, produced, topics, profile_path, tmp, args.timeout)
                    progress.advance(task)
                    ratio = ours["records_per_s"] / raw["records_per_s"]
                    run = {"format": fmt, "client": client, "raw": raw, "ours": ours, "ratio": ratio}
                    if fmt in BATCHED and not args.no_cprofile:
                        progress.update(task, description=f"{fmt} / {client}: cProfile")
                        profiler = cProfile.Profile()
                        measure_ours(broker, client, produced, topics, profile_path, tmp, args.timeout, profiler)
                        profiles_text[f"{fmt} / {client}"] = hot_functions(profiler)
                        run["cprofile_top"] = profiles_text[f"{fmt} / {client}"]
                    results["runs"].append(run)
            producer.close()
        progress.update(task, description="scrape: 10 models x 100 features x 2 windows")
        results["scrape"] = measure_scrape(tmp)
        progress.advance(task)
        progress.update(task, description="done")
    results["wall_seconds"] = time.perf_counter() - wall_started

    table = Table(title=f"Ingest, {n:,} records × 20 features per format (tansu, loopback, {PARTITIONS} partitions)")
    for column, justify in (
        ("format", "left"),
        ("client", "left"),
        ("MB", "right"),
        ("raw rec/s", "right"),
        ("ours rec/s", "right"),
        ("ours/raw", "right"),
        ("fold+decode s", "right"),
        ("evaluate s", "right"),
        ("folded", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for run in results["runs"]:
        fmt, ratio = run["format"], run["ratio"]
        ratio_text = f"{ratio:.0%}"
        ok = "" if run["ours"]["complete"] and run["raw"]["complete"] else " [red]incomplete[/red]"
        table.add_row(
            FORMAT_LABELS[fmt],
            run["client"],
            f"{results['produced'][fmt]['bytes'] / 1e6:.0f}",
            f"{run['raw']['records_per_s']:,.0f}",
            f"{run['ours']['records_per_s']:,.0f}",
            ratio_text,
            f"{run['ours']['fold_seconds']:.2f}",
            f"{run['ours']['evaluate_seconds']:.3f}",
            f"{run['ours']['folded']:,}{ok}",
        )
    console.print(table)
    expected = set(drifted_columns(NUMERIC, CATEGORICAL, DRIFTED))
    for run in results["runs"]:
        flagged = set(run["ours"]["drifted"])
        if flagged != expected or run["ours"]["rejected"]:
            console.print(
                f"[yellow]{run['format']} / {run['client']}: flagged {sorted(flagged)} (injected {sorted(expected)}),"
                f" rejected {run['ours']['rejected']}, window samples {run['ours']['window_samples']}[/yellow]"
            )
    scrape = results["scrape"]
    extra = Table(title="Scrape")
    extra.add_column("measure")
    extra.add_column("value", justify="right")
    extra.add_column("method")
    extra.add_row(
        "scrape, 10 models × 100 features × 2 windows",
        f"{scrape['median_s'] * 1e3:.1f} ms",
        f"median of {SCRAPES} generate_latest (min {scrape['min_s'] * 1e3:.1f}, max {scrape['max_s'] * 1e3:.1f} ms);"
        f" {scrape['series']:,} series, {scrape['bytes'] / 1e6:.2f} MB",
    )
    extra.add_row("evaluate, same 10 models", f"{scrape['evaluate_s']:.2f} s", "one Aggregator.evaluate()")
    console.print(extra)
    for name, text in profiles_text.items():
        console.rule(f"cProfile, ours: {name} (by tottime)")
        console.print(text, markup=False, highlight=False, soft_wrap=True)
    console.print(f"wall time {results['wall_seconds']:.1f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
        console.print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
