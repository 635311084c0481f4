"""Capacity model: what a fleet of models costs in aggregator replicas, cores and memory.

    python benchmarks/fleet.py [--features 20] [--rows 60000] [--models 1000] [--rate 1000000]

Measured here, in one process on one core each, over the in-memory Kafka of
``tests/support/fake_kafka.py`` (the pipeline's own cost — no broker, no client):

* **stage 1**: records/s one replica's stage 1 decodes, folds and publishes, for NDJSON (500
  records a message) and Arrow IPC (1,000 rows a message) traffic of one model with
  ``--features`` numeric features and a score, one record in ten labelled;
* **stage 2**: what merging that model's partials costs its owner, per record and per partial
  message, with the label join; and one evaluation of one model (two windows: 1 h of 1-minute
  buckets, 1 d of 1-hour buckets), which an owner runs for each of its models every
  ``evaluation.interval_seconds``;
* **edge summaries**: one sidecar summary message (one model version, one bucket) merged by
  its owner;
* **memory**: one model version's windows, full (every bucket of both windows holding data),
  measured with tracemalloc.

Then the fleet (``--models`` models, ``--rate`` predictions a second in all, evaluated every
``--interval`` seconds, ``--sidecars`` sidecars in edge mode sending a summary every
``--summary-seconds``) is extrapolated from those ratios, with the assumptions printed next to
the answer. A Python process does CPU-bound work on about one core (the GIL): one replica is
counted as one core of pipeline work.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detectors.profile import build_profile  # noqa: E402
from exporter.aggregator.inputs import load_models  # noqa: E402
from exporter.aggregator.scaleout.stage1 import PartialStage  # noqa: E402
from exporter.aggregator.scaleout.stage2 import MergeStage  # noqa: E402
from exporter.config import AggregatorConfig  # noqa: E402
from exporter.demo.synthetic import label_log, prediction_log, synthetic_table  # noqa: E402
from exporter.pipeline import summary_wire  # noqa: E402
from exporter.pipeline.decode import BatchDecoder  # noqa: E402
from exporter.pipeline.windows import ModelWindows, WindowSpec  # noqa: E402
from exporter.profiles import save_profile  # noqa: E402
from tests.exporter.aggregator.scaleout.fakes import FakeGroup, GroupConsumer  # noqa: E402
from tests.support.fake_kafka import FakeLog, FakeProducer  # noqa: E402

MODEL, VERSION = "hot", "1"
WINDOWS = [{"name": "1h", "bucket_seconds": 60, "buckets": 60}, {"name": "1d", "bucket_seconds": 3600, "buckets": 24}]
BASE = 1_000_000.0
PARTITIONS = 4


@dataclass(frozen=True)
class Measured:
    stage1_ndjson: float  # records/s
    stage1_arrow: float
    stage2_record_us: float  # per record of a model's traffic, partial decode and join included
    stage2_message_ms: float  # per partial message, beyond its records
    evaluation_ms: float  # one model, both windows
    edge_message_ms: float  # one sidecar summary merged
    memory_mib: float  # one model version, both windows full


def _profile(root: Path, features: int) -> Path:
    table = synthetic_table(20_000, numeric=features, categorical=0, drifted=0, seed=1)
    profile = build_profile(
        table, model=MODEL, model_version=VERSION, prediction="prediction", label="label", created_at=BASE - 10
    )
    path = root / "profile.parquet"
    save_profile(profile, path)
    return path


def _config(root: Path, profile: Path) -> AggregatorConfig:
    return AggregatorConfig(
        kafka={"mode": "scale_out", "partial_flush_seconds": 1.0},
        models=[{"name": MODEL, "version": VERSION, "reference": str(profile)}],
        windows=WINDOWS,
        state={"dir": str(root / "state")},
        allowed_lateness_seconds=10**9,
    )


def _traffic(rows: int, features: int, spacing: float) -> tuple[pa.Table, pa.Table]:
    table = synthetic_table(rows, numeric=features, categorical=0, drifted=0, seed=2, drift=True)
    times = BASE + np.arange(rows) * spacing
    predictions = prediction_log(table, MODEL, VERSION, times)
    labelled = np.arange(0, rows, 10)
    labels = label_log(table.take(pa.array(labelled)), MODEL, times[labelled] + 1)
    labels = labels.set_column(1, "request_id", pa.array([f"r-{i}" for i in labelled], pa.string()))
    return predictions, labels


def _ndjson_messages(predictions: pa.Table, labels: pa.Table) -> tuple[list[bytes], list[bytes]]:
    def record(row: dict) -> str:
        features = {k[2:]: v for k, v in row.items() if k.startswith("f.") and v is not None}
        return json.dumps(
            {
                "model": row["model"],
                "model_version": row["model_version"],
                "request_id": row["request_id"],
                "timestamp": row["timestamp"],
                "features": features,
                "prediction": row["prediction_score"],
                "status": "ok",
            }
        )

    lines = [record(row) for row in predictions.to_pylist()]
    label_lines = [
        json.dumps(
            {"model": r["model"], "request_id": r["request_id"], "label": r["label_value"], "timestamp": r["timestamp"]}
        )
        for r in labels.to_pylist()
    ]
    return (
        ["\n".join(lines[i : i + 500]).encode() for i in range(0, len(lines), 500)],
        ["\n".join(label_lines[i : i + 500]).encode() for i in range(0, len(label_lines), 500)],
    )


def _arrow_messages(predictions: pa.Table, labels: pa.Table) -> tuple[list[bytes], list[bytes]]:
    def ipc(table: pa.Table) -> bytes:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return sink.getvalue().to_pybytes()

    # Labels as a producer writes them in Arrow: model, request_id, label, timestamp (the
    # decoded label_value / label_class pair is the decoder's output, not its input).
    wire_labels = pa.table(
        {
            "model": labels.column("model"),
            "request_id": labels.column("request_id"),
            "label": labels.column("label_value"),
            "timestamp": labels.column("timestamp"),
        }
    )
    return (
        [ipc(predictions.slice(i, 1_000)) for i in range(0, predictions.num_rows, 1_000)],
        [ipc(wire_labels.slice(i, 1_000)) for i in range(0, wire_labels.num_rows, 1_000)],
    )


def _stages(
    config: AggregatorConfig, messages: tuple[list[bytes], list[bytes]], now: float
) -> tuple[float, float, int, float]:
    """Stage 1 records/s; stage 2 seconds (merging only), partial messages, evaluation seconds."""
    log = FakeLog()
    for i, value in enumerate(messages[0]):
        log.append(config.kafka.predictions_topic, value, partition=i % PARTITIONS)
    for i, value in enumerate(messages[1]):
        log.append(config.kafka.labels_topic, value, partition=i % 2)
    log.partitions.setdefault(_tp(config.kafka.summaries_topic, 0), [])
    models = load_models(config)
    ticks = iter(range(10**9))
    stage1 = PartialStage(
        config,
        models,
        GroupConsumer(FakeGroup(log, "g"), batch=50),
        FakeProducer(log),
        GroupConsumer(FakeGroup(log, "g-progress")),
        BatchDecoder(config.kafka.labels_topic),
        1,
        clock=lambda: BASE,
        monotonic=lambda: float(next(ticks)),
    )
    stage1.subscribe()
    started = time.perf_counter()
    while stage1.poll_once():
        pass
    stage1.flush()
    stage1_s = time.perf_counter() - started
    records = sum(
        len(m.value.splitlines()) if m.value[:1] == b"{" else 0 for m in log.messages(config.kafka.predictions_topic)
    )
    if not records:  # Arrow: count rows
        records = sum(
            pa.ipc.open_stream(m.value).read_all().num_rows for m in log.messages(config.kafka.predictions_topic)
        )
    records += sum(
        len(m.value.splitlines()) if m.value[:1] == b"{" else pa.ipc.open_stream(m.value).read_all().num_rows
        for m in log.messages(config.kafka.labels_topic)
    )
    stage2 = MergeStage(config, models, GroupConsumer(FakeGroup(log, "m"), batch=500), 1, clock=lambda: now)
    stage2.subscribe()
    started = time.perf_counter()
    while stage2.poll_once():
        pass
    merge_s = time.perf_counter() - started
    started = time.perf_counter()
    stage2.evaluate()
    evaluation_s = time.perf_counter() - started
    return records / stage1_s, merge_s, len(log.messages(config.kafka.summaries_topic)), evaluation_s


def _tp(topic: str, partition: int):  # noqa: ANN202
    from exporter.kafka import TopicPartition

    return TopicPartition(topic, partition)


def _edge_message_ms(config: AggregatorConfig, predictions: pa.Table, repeats: int = 200) -> float:
    models = load_models(config)
    profile = models[(MODEL, VERSION)][1]
    store = ModelWindows(profile, [WindowSpec("s", 10, 1)], math.inf)
    store.fold_predictions(predictions.slice(0, 500))
    ((start, bucket),) = store.buckets["s"].items()
    log = FakeLog()
    for sequence in range(repeats):
        header = summary_wire.SummaryHeader(
            model=MODEL,
            model_version=VERSION,
            bucket_start=start + 10 * sequence,
            bucket_seconds=10,
            producer_id="bench",
            sequence=sequence,
            records=bucket.records,
            profile_created_at=profile.metadata.created_at,
        )
        log.append(
            config.kafka.summaries_topic,
            summary_wire.encode_summary(header, bucket),
            header.key,
            summary_wire.kafka_headers(header),
        )
    stage2 = MergeStage(config, models, GroupConsumer(FakeGroup(log, "e"), batch=500), 1, clock=lambda: BASE + 1e6)
    stage2.subscribe()
    started = time.perf_counter()
    while stage2.poll_once():
        pass
    return (time.perf_counter() - started) / repeats * 1e3


def _memory_mib(config: AggregatorConfig, features: int) -> float:
    models = load_models(config)
    profile = models[(MODEL, VERSION)][1]
    windows = [WindowSpec(w["name"], w["bucket_seconds"], w["buckets"]) for w in WINDOWS]
    table = synthetic_table(24 * 60 * 20, numeric=features, categorical=0, drifted=0, seed=3)
    times = BASE + np.arange(table.num_rows) * 3.0  # a day, 20 records a minute
    log = prediction_log(table, MODEL, VERSION, times)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    store = ModelWindows(profile, windows, 600)
    for start in range(0, log.num_rows, 5_000):
        store.fold_predictions(log.slice(start, 5_000))
        store.expire(float(times[min(start + 5_000, log.num_rows) - 1]))  # as evaluation does
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert len(store.buckets["1h"]) >= 60 and len(store.buckets["1d"]) >= 24
    return used / 2**20


def measure(features: int, rows: int, repeat: int) -> Measured:
    runs = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            config = _config(root, _profile(root, features))
            predictions, labels = _traffic(rows, features, spacing=0.001)  # one hot model: 1,000 a second
            now = BASE + rows * 0.001 + 1  # every window holds the traffic when it is evaluated
            ndjson = _stages(config, _ndjson_messages(predictions, labels), now)
            arrow = _stages(config, _arrow_messages(predictions, labels), now)
            records = rows + labels.num_rows
            # Stage 2 per record and per message: two traffic sizes separate the two.
            small = _stages(
                config, _arrow_messages(predictions.slice(0, rows // 4), labels.slice(0, labels.num_rows // 4)), now
            )
            per_record = (arrow[1] - small[1]) / (records - (rows // 4 + labels.num_rows // 4))
            per_message = max((small[1] - per_record * (rows // 4 + labels.num_rows // 4)) / max(small[2], 1), 0.0)
            runs.append(
                Measured(
                    stage1_ndjson=ndjson[0],
                    stage1_arrow=arrow[0],
                    stage2_record_us=max(per_record, 0.0) * 1e6,
                    stage2_message_ms=per_message * 1e3,
                    evaluation_ms=arrow[3] * 1e3,
                    edge_message_ms=_edge_message_ms(config, predictions),
                    memory_mib=_memory_mib(config, features),
                )
            )
    return Measured(**{f: statistics.median(getattr(r, f) for r in runs) for f in Measured.__dataclass_fields__})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--rows", type=int, default=60_000, help="predictions of the measured model")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--models", type=int, default=1_000)
    parser.add_argument("--rate", type=float, default=1_000_000, help="predictions per second, whole fleet")
    parser.add_argument("--labelled", type=float, default=0.1, help="share of predictions that get a label")
    parser.add_argument("--interval", type=float, default=60.0, help="evaluation interval, seconds")
    parser.add_argument("--flush", type=float, default=2.0, help="stage 1's partial_flush_seconds")
    parser.add_argument("--stage1-replicas-per-partition", type=int, default=1)
    parser.add_argument("--sidecars", type=int, default=5_000)
    parser.add_argument("--summary-seconds", type=float, default=10.0)
    args = parser.parse_args()
    m = measure(args.features, args.rows, args.repeat)
    print(f"measured on this machine, one core each, {args.features} numeric features + a score, 1 in 10 labelled:")
    print("| what | figure |")
    print("| --- | --- |")
    print(f"| stage 1, NDJSON (500 records/message) | {m.stage1_ndjson:,.0f} records/s |")
    print(f"| stage 1, Arrow IPC (1,000 rows/message) | {m.stage1_arrow:,.0f} records/s |")
    print(
        f"| stage 2, per record of a model's traffic (partial decode, merge, label join) | {m.stage2_record_us:.2f} µs |"
    )
    print(f"| stage 2, per partial message beyond its records | {m.stage2_message_ms:.2f} ms |")
    print(f"| stage 2, one evaluation of one model (1 h + 1 d windows) | {m.evaluation_ms:.1f} ms |")
    print(f"| stage 2, one sidecar summary message merged | {m.edge_message_ms:.2f} ms |")
    print(f"| memory, one model version, both windows full | {m.memory_mib:.1f} MiB |")

    # The fleet. Predictions spread evenly over models; every model is in every stage-1 range
    # (unkeyed topics): each stage-1 replica sends each model one partial per flush.
    labels = args.rate * args.labelled
    stage1_cores = (args.rate + labels) / m.stage1_arrow
    stage1_cores_ndjson = (args.rate + labels) / m.stage1_ndjson
    stage1_replicas = max(1, math.ceil(stage1_cores))
    partials_per_s = args.models * stage1_replicas / args.flush
    stage2_cores = (
        (args.rate + labels) * m.stage2_record_us / 1e6
        + partials_per_s * m.stage2_message_ms / 1e3
        + args.models * m.evaluation_ms / 1e3 / args.interval
    )
    per_model_rate = args.rate / args.models
    hot_model_ceiling = 1e6 / m.stage2_record_us  # records/s one owner core can merge for one model
    edge_cores = args.sidecars / args.summary_seconds * m.edge_message_ms / 1e3
    print()
    print(
        f"fleet: {args.models:,} models, {args.rate:,.0f} predictions/s ({per_model_rate:,.0f} per model), "
        f"{args.labelled:.0%} labelled, evaluated every {args.interval:g} s, stage 1 flushing every {args.flush:g} s:"
    )
    print("| what | figure |")
    print("| --- | --- |")
    print(f"| stage-1 cores, Arrow IPC traffic | {stage1_cores:,.1f} |")
    print(f"| stage-1 cores, NDJSON traffic | {stage1_cores_ndjson:,.1f} |")
    print(f"| stage-2 cores (merge + join + evaluation) | {stage2_cores:,.1f} |")
    print(f"| replicas (one core of pipeline work each), Arrow | {math.ceil(stage1_cores + stage2_cores):,} |")
    print(f"| replicas, NDJSON | {math.ceil(stage1_cores_ndjson + stage2_cores):,} |")
    print(f"| memory for the fleet's windows | {args.models * m.memory_mib / 1024:,.1f} GiB |")
    print(f"| one model's ceiling at its owner (records/s on one core) | {hot_model_ceiling:,.0f} |")
    print(
        f"| stage-1 replicas one model can spread over before its owner saturates (Arrow) | "
        f"{hot_model_ceiling / m.stage1_arrow:,.1f} |"
    )
    print(
        f"| {args.sidecars:,} sidecars in edge mode, a summary every {args.summary_seconds:g} s | "
        f"{edge_cores:,.2f} stage-2 cores |"
    )


if __name__ == "__main__":
    main()
