"""Producers benchmark: the issue's scenario at full size, each producer side by side, and the
cost of dropping duplicates.

    python benchmarks/producers.py [--inferences 25000] [--json PATH]

Broker: one ``exporter.kafka.embedded.EmbeddedBroker`` (tansu, in memory, loopback). Model:
``hidden`` version ``"1"``, configured with nothing else (the issue's configuration), its
profile built from ``tests.exporter.decoders.corpus.traffic.reference_table()`` (4 numeric and
2 categorical features). Traffic: ``--inferences`` drifted rows (2 features drifted), written
once per producer to fresh topics (not timed), as the conformance corpus builds them:

* ``native``        native JSON, one inference per message (the baseline);
* ``kserve``        KServe's agent through a KafkaSink, ``logger.mode: all``, ``--endpoint
  default``, V1 bodies, unkeyed on 3 partitions: two messages per inference;
* ``kserve-request`` the same with ``logger.mode: request`` (the model's ``logger_mode: request``);
* ``seldon``        Seldon Core 2's gateways on ``seldon.<ns>.model.hidden.inputs|outputs``
  (2 partitions, composite keys, pandas-codec tensors), two messages per inference;
* ``seldon-framed`` the same in Confluent's schema-registry framing.

Per producer: a single-mode ``Aggregator`` in this process (kafka-python), ``poll_once()``
until its predictions counter holds every inference, then ``evaluate()``. Timed from the first
poll that returned messages (the group join is excluded) to the end of the evaluation. Reported:
inferences counted, serving errors, refusals, duplicates, the drifted features found against
the two expected, and inferences/s with the ratio to ``native``.

Dedup cost (no broker): ``Folder.fold_predictions`` over ``--inferences`` native rows in tables
of 500, with and without a ``RecentRequestIds`` (default bounds), best of 5; and the same when
every table holds one copy (the per-batch slow path).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyarrow as pa  # noqa: E402

from exporter.aggregator.inputs import load_models  # noqa: E402
from exporter.aggregator.single import Aggregator  # noqa: E402
from exporter.config import DEFAULT_LATENCY_BUCKETS, AggregatorConfig  # noqa: E402
from exporter.kafka import ConsumerSettings, ProducerSettings, open_consumer, open_producer  # noqa: E402
from exporter.kafka.embedded import EmbeddedBroker  # noqa: E402
from exporter.pipeline.decode import BatchDecoder  # noqa: E402
from exporter.pipeline.dedup import RecentRequestIds  # noqa: E402
from exporter.pipeline.fold import Folder  # noqa: E402
from exporter.profiles import load_profile  # noqa: E402
from tests.exporter.decoders.corpus import kserve, seldon, traffic  # noqa: E402

PRODUCERS = ("native", "kserve", "kserve-request", "seldon", "seldon-framed")
KEY = (traffic.MODEL, "1")


def messages_for(producer: str, count: int, base: float, topic: str, namespace: str) -> list[tuple]:
    """(topic, value, key, headers, partition) of ``count`` inferences."""
    if producer == "native":
        out = []
        for i, row in enumerate(traffic.current_rows(count)):
            record = {
                "model": traffic.MODEL,
                "request_id": f"n-{i}",
                "timestamp": base + i * 0.1,
                "features": {name: row[name] for name in traffic.FEATURES},
                "prediction": row["prediction"],
                "status": "ok",
            }
            out.append((topic, json.dumps(record).encode(), None, (), None))
        return out
    if producer.startswith("kserve"):
        mode = "request" if producer == "kserve-request" else "all"
        agent = kserve.Agent(service=traffic.MODEL, namespace="ml", log_mode=mode)
        return [(topic, e.value, e.key, e.headers, None) for e in traffic.kserve_events(agent, count, base)]
    gateway = seldon.Gateway(namespace=namespace, schema_ids=(41, 42) if producer == "seldon-framed" else None)
    return [(m.topic, m.value, m.key, m.headers, m.partition) for m in traffic.seldon_messages(gateway, count)]


def run_producer(broker: EmbeddedBroker, producer: str, count: int, profile: Path, state: Path) -> dict[str, Any]:
    namespace = f"ns-{uuid.uuid4().hex[:8]}"
    topic = f"bench-{producer}-{uuid.uuid4().hex[:6]}"
    base = time.time() - 6 * 3600
    messages = messages_for(producer, count, base, topic, namespace)
    topics = sorted({m[0] for m in messages})
    broker.create_topics(topics, partitions=2 if producer.startswith("seldon") else 3)
    broker.create_topics([f"{topic}-labels", f"{topic}-dead"], partitions=1)
    sender = open_producer(ProducerSettings(bootstrap_servers=broker.bootstrap_servers, linger_ms=5))
    for name, value, key, headers, partition in messages:
        sender.send(name, value, key=key, headers=headers, partition=partition)
    sender.flush()
    sender.close()
    model: dict[str, Any] = {"name": traffic.MODEL, "version": "1", "reference": str(profile)}
    kafka: dict[str, Any] = {"labels_topic": f"{topic}-labels", "deadletter_topic": f"{topic}-dead"}
    if producer.startswith("seldon"):
        kafka["format"] = "seldon"
        model["namespace"] = namespace
    else:
        kafka["predictions_topic"] = topic
    if producer == "kserve-request":
        model["logger_mode"] = "request"
    config = AggregatorConfig(
        kafka={
            "bootstrap_servers": broker.bootstrap_servers,
            "session_timeout_ms": 2000,
            "heartbeat_interval_ms": 500,
            **kafka,
        },
        models=[model],
        windows=[{"name": "1d", "bucket_seconds": 3600, "buckets": 24}],
        allowed_lateness_seconds=100_000,
        state={"dir": str(state / producer)},
    )
    consumer = open_consumer(
        ConsumerSettings(
            broker.bootstrap_servers,
            f"bench-{uuid.uuid4().hex[:8]}",
            session_timeout_ms=2000,
            heartbeat_interval_ms=500,
        )
    )
    aggregator = Aggregator(
        config,
        load_models(config),
        consumer,
        open_producer(ProducerSettings(broker.bootstrap_servers)),
        BatchDecoder(config.kafka.labels_topic, config.kafka.format),
    )
    aggregator.subscribe()
    started = None
    deadline = time.monotonic() + 600
    try:
        while aggregator.counters.predictions[KEY] < count and time.monotonic() < deadline:
            if aggregator.poll_once() and started is None:
                started = time.perf_counter()
        snapshot = aggregator.evaluate()
        seconds = time.perf_counter() - (started or time.perf_counter())
    finally:
        aggregator.consumer.close()
        aggregator.producer.close()
    pipeline = snapshot.pipeline
    [result] = snapshot.models
    window = result.windows["1d"]
    return {
        "producer": producer,
        "messages": len(messages),
        "counted": pipeline.predictions.get(KEY, 0),
        "errors": pipeline.prediction_errors.get(KEY, 0),
        "refused": sum(pipeline.rejected.values()),
        "duplicates": sum(pipeline.duplicates.values()),
        "samples": window.samples,
        "drifted": sorted(name for name, drift in window.features.items() if drift.drift),
        "seconds": seconds,
        "per_second": count / seconds if seconds else float("nan"),
    }


def dedup_cost(count: int, profile_path: Path) -> dict[str, float]:
    profile = load_profile(profile_path)
    base = time.time()
    rows = traffic.current_rows(count)
    records = pa.table(
        {
            "model": [traffic.MODEL] * count,
            "model_version": ["1"] * count,
            "deployment_slot": pa.nulls(count, pa.string()),
            "model_namespace": pa.nulls(count, pa.string()),
            "request_id": [f"r-{i}" for i in range(count)],
            "timestamp": [base + i * 0.01 for i in range(count)],
            "prediction_score": [r["prediction"] for r in rows],
            "prediction_class": pa.nulls(count, pa.string()),
            "latency_ms": pa.nulls(count, pa.float64()),
            "status": ["ok"] * count,
            **{f"f.{name}": [r[name] for r in rows] for name in traffic.FEATURES},
        }
    )
    tables = [records.slice(i, 500) for i in range(0, count, 500)]
    with_copy = [pa.concat_tables([t, t.slice(0, 1)]) for t in tables]

    def fold(batches: list[pa.Table], dedup: RecentRequestIds | None) -> float:
        folder = Folder({KEY: profile}, 60, DEFAULT_LATENCY_BUCKETS)
        start = time.perf_counter()
        partials: dict = {}
        for table in batches:
            folder.fold_predictions(partials, "t", table, lambda *a: None, dedup)
        return time.perf_counter() - start

    best = {
        name: min(fold(b, d()) for _ in range(5))
        for name, b, d in (
            ("without", tables, lambda: None),
            ("with", tables, RecentRequestIds),
            ("with_copies", with_copy, RecentRequestIds),
        )
    }
    return {
        "rows": count,
        "without_s": best["without"],
        "with_s": best["with"],
        "with_copies_s": best["with_copies"],
        "with_ratio": best["without"] / best["with"],
        "with_copies_ratio": best["without"] / best["with_copies"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inferences", type=int, default=25_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    wall = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        state = Path(scratch)
        profile = traffic.save_reference_profile(state)
        with EmbeddedBroker() as broker:
            results = [run_producer(broker, p, args.inferences, profile, state) for p in PRODUCERS]
        cost = dedup_cost(args.inferences, profile)
    baseline = results[0]["per_second"]
    print(f"producers benchmark, {datetime.now(UTC):%Y-%m-%d}, {platform.node()}, python {platform.python_version()}")
    print(f"{args.inferences} inferences each; drift expected on {sorted(traffic.DRIFTED)}")
    header = f"{'producer':<15} {'msgs':>7} {'counted':>8} {'errors':>6} {'refused':>7} {'dups':>5} {'drifted':<20} {'inf/s':>8} {'× native':>8}"
    print(header)
    for r in results:
        print(
            f"{r['producer']:<15} {r['messages']:>7} {r['counted']:>8} {r['errors']:>6} {r['refused']:>7} "
            f"{r['duplicates']:>5} {','.join(r['drifted']):<20} {r['per_second']:>8.0f} {r['per_second'] / baseline:>8.2f}"
        )
    print(
        f"dedup: fold of {cost['rows']} rows in tables of 500: {cost['without_s'] * 1000:.1f} ms without, "
        f"{cost['with_s'] * 1000:.1f} ms with (×{cost['with_ratio']:.2f} the rate), "
        f"{cost['with_copies_s'] * 1000:.1f} ms with one copy in every table (×{cost['with_copies_ratio']:.2f})"
    )
    print(f"wall time {time.perf_counter() - wall:.1f} s")
    if args.json is not None:
        args.json.write_text(json.dumps({"results": results, "dedup": cost}, indent=2))
    exact = all(r["counted"] == args.inferences and r["errors"] == 0 and r["refused"] == 0 for r in results)
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
