"""Scale-out benchmark: what the two stages cost against the single-process pipeline.

    python benchmarks/scaleout.py [--rows N] [--repeat 3] [--rate 100] [--format ndjson|arrow|kserve]
        [--join-shards N] [--flush-seconds S] [--flush-records R]

In one process, over the in-memory Kafka of ``tests/support/fake_kafka.py`` (so the figures
are the pipeline's own cost, not the broker's or the client's), the same traffic — three
model versions, 6 features each, ``--rows`` predictions per version in NDJSON messages of
25 records over four unkeyed partitions, ``--rate`` predictions a second per version (100 by default), every other
prediction labelled (two label partitions) — goes through:

* single: one ``Aggregator`` (``kafka.mode: single``), ``poll_once`` until everything is
  consumed, then one ``evaluate``;
* stage 1: one ``PartialStage`` (decode, fold into partials, publish with the progress
  protocol's commits) until everything is published;
* stage 2: one ``MergeStage`` over what stage 1 published (decode partials, merge, label
  join), then one ``evaluate``;
* replay: a second ``MergeStage`` rebuilding the same state from the summaries topic, as a
  replica does when it is assigned a summaries partition.

``--format kserve`` sends KServe's ``logger.mode: all`` traffic instead (a request and a response
half per inference, binary CloudEvents on an unkeyed topic, as
``tests/exporter/aggregator/scaleout/kserve_traffic.py`` builds it from KServe's logger;
``--rate`` inferences a second per version): its halves pair only in stage 2 — at the model's
owner, or with ``--join-shards`` at the shard of their pairing key — which decodes and folds them. ``--format arrow`` sends the same traffic as Arrow IPC instead (:func:`arrow_traffic`): the
same records, request ids and labels, regrouped as an Arrow producer writes them — one model
version's rows a message, up to 500 (a 25-row message of three models would be decoded and
folded one message at a time: single mode would pay ~4× per record, which flatters stage 2) —
the predictions with the native JSON record's columns and the features as ``f.<name>`` columns,
the labels as ``model``, ``request_id``, ``label``, ``timestamp``; the deliberately refused
messages stay the bytes they are in NDJSON. ``--format ndjson`` (the default) sends the NDJSON
of ``make_traffic``.

``--join-shards``, ``--flush-seconds`` and ``--flush-records`` set ``kafka.join_shards``,
``partial_flush_seconds`` and ``partial_flush_records``: how many shards a model's label join
and KServe pairing spread over, and how big stage 1's ranges grow (a hot model's reach the
records cap; each range sends every shard a ``join`` message, and each shard reports back per
message it merges, so the owner's cost per record falls as ranges grow).

Printed: records/s of each (median of ``--repeat`` runs; records = predictions + labels),
stage 1 + stage 2 against single, the summaries published (messages, bytes per prediction),
and that every variant ends with the same metrics.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from exporter.aggregator.inputs import load_models  # noqa: E402
from exporter.aggregator.scaleout import wire  # noqa: E402
from exporter.aggregator.scaleout.stage1 import PartialStage  # noqa: E402
from exporter.aggregator.scaleout.stage2 import MergeStage  # noqa: E402
from exporter.aggregator.single import Aggregator  # noqa: E402
from exporter.pipeline.decode import BatchDecoder  # noqa: E402
from exporter.records import ipc_bytes  # noqa: E402
from tests.exporter.aggregator.scaleout.fakes import FakeGroup, GroupConsumer  # noqa: E402
from tests.exporter.aggregator.scaleout.harness import (  # noqa: E402
    SUMMARIES,
    SUMMARY_PARTITIONS,
    assert_same_metrics,
    exposition,
    fill,
    make_config,
)
from tests.exporter.aggregator.scaleout.kserve_traffic import make_kserve_traffic  # noqa: E402
from tests.exporter.aggregator.scaleout.test_kserve_pairs import Topics, same_metrics  # noqa: E402
from tests.exporter.aggregator.scaleout.traffic import MODELS, Traffic, make_traffic, write_profiles  # noqa: E402
from tests.support.fake_kafka import FakeConsumer, FakeLog, FakeProducer  # noqa: E402

BASE = 1_000.0
FORMATS = ("ndjson", "arrow", "kserve")
PREDICTION_COLUMNS = ("model", "model_version", "request_id", "timestamp", "prediction", "latency_ms", "status")
LABEL_COLUMNS = ("model", "request_id", "label", "timestamp")


def _records(message: bytes) -> list[dict] | None:
    """The records of one of ``make_traffic``'s regular messages; None for the deliberately bad
    ones (not JSON, or a record that is not the traffic's: another model, a made-up request id)."""
    try:
        records = [json.loads(line) for line in message.splitlines()]
    except ValueError:
        return None
    for record in records:
        if not (
            isinstance(record, dict)
            and any(
                record.get("model") == model and str(record.get("request_id", "")).startswith(f"{model}-{version}-")
                for model, version in MODELS
            )
        ):
            return None
    return records


ARROW_ROWS = 500  # rows of one model version in an Arrow message


def _arrow_messages(
    messages: list[bytes], flat: list[list[dict] | None], columns: list[str]
) -> tuple[list[bytes], int]:
    """The regular messages' records regrouped as an Arrow producer writes them — one model
    version's rows a message, :data:`ARROW_ROWS` at most, the versions' messages interleaved
    in time order — as IPC streams of ``columns`` (one schema for all, the types those of the
    whole traffic's values); the deliberately bad messages as they are, near the start; and
    the rows written."""
    values = [record for records in flat if records for record in records]
    schema = pa.schema([(name, pa.array([r.get(name) for r in values]).type) for name in columns])
    groups: dict[tuple[object, object], list[dict]] = {}
    for record in values:
        groups.setdefault((record.get("model"), record.get("model_version")), []).append(record)
    chunked = [[rows[i : i + ARROW_ROWS] for i in range(0, len(rows), ARROW_ROWS)] for rows in groups.values()]
    out = [
        ipc_bytes(pa.Table.from_pylist(chunk, schema=schema))
        for position in range(max((len(c) for c in chunked), default=0))
        for chunks in chunked
        if position < len(chunks)
        for chunk in [chunks[position]]
    ]
    bad = [message for message, records in zip(messages, flat) if records is None]
    out[1:1] = bad
    return out, len(values)


def arrow_traffic(traffic: Traffic) -> Traffic:
    """``traffic`` as an Arrow producer writes it: the same records, request ids and labels, in
    IPC streams of one model version's rows each (:func:`_arrow_messages`); predictions with the
    native JSON record's columns, features as ``f.<name>`` (a feature a record leaves out, a NaN
    there, is null), a left-out ``model_version`` null; labels as ``model``, ``request_id``,
    ``label``, ``timestamp``. The deliberately bad messages stay the bytes they are (refused in
    either format)."""
    predictions = [_records(m) for m in traffic.predictions]
    for records in predictions:
        for record in records or ():
            for name, value in record.pop("features").items():
                record[f"f.{name}"] = value
    features = sorted({k for records in predictions for r in records or () for k in r if k.startswith("f.")})
    prediction_messages, prediction_rows = _arrow_messages(
        traffic.predictions, predictions, [*PREDICTION_COLUMNS, *features]
    )
    labels = [_records(m) for m in traffic.labels]
    label_messages, label_rows = _arrow_messages(traffic.labels, labels, list(LABEL_COLUMNS))
    # Every accepted record went over to Arrow, and nothing else.
    assert prediction_rows == sum(traffic.rows.values()), (prediction_rows, traffic.rows)
    assert label_rows == sum(traffic.labelled.values()), (label_rows, traffic.labelled)
    return Traffic(prediction_messages, label_messages, traffic.rows, traffic.labelled, traffic.refused)


def _traffic(format: str, rows: int, rate: float) -> tuple[Callable[[FakeLog], None], int, int, float]:
    """How to fill a log with the traffic; its records (messages for KServe's halves), its
    predictions, and the clock's reading once it is all in."""
    if format == "kserve":
        kserve = make_kserve_traffic(rows, BASE, spacing=1.0 / rate)  # ``rate`` inferences a second per version

        def send(log: FakeLog) -> None:
            topics = Topics(log)
            topics.send(topics.pending(kserve))

        return send, len(kserve.messages) + len(kserve.labels), kserve.pairs, BASE + rows / rate + 50
    spacing = 1.0 / rate
    traffic = make_traffic(rows, BASE, spacing=spacing)
    if format == "arrow":
        traffic = arrow_traffic(traffic)
    records = sum(traffic.rows.values()) + sum(traffic.labelled.values())
    return functools.partial(fill, traffic=traffic), records, sum(traffic.rows.values()), BASE + rows * spacing + 50


def run(
    rows: int,
    root: Path,
    rate: float = 100.0,
    format: str = "ndjson",
    join_shards: int = 0,
    flush_seconds: float = 1.0,
    flush_records: int = 20_000,
) -> dict[str, float]:
    """``rate``: predictions a second per model version. Stage 2's costs per bucket (decoding
    and merging a slot's summaries) spread over the records of the slot, so its cost per record
    falls as a model gets busier; at 100 a second a partial carries a few 30 s slots. ``format``:
    ``ndjson`` or ``arrow`` (the same traffic as Arrow IPC, :func:`arrow_traffic`)."""
    if format not in FORMATS:
        raise ValueError(f"format: expected one of {FORMATS}, got {format!r}")
    profiles = write_profiles(root / "profiles")
    load, records, predictions, now = _traffic(format, rows, rate)
    config = make_config(
        profiles,
        root / "state",
        join_shards=join_shards,
        partial_flush_seconds=flush_seconds,
        partial_flush_records=flush_records,
    )
    # The label join holds every prediction sent, so single mode and stage 2 join the same pairs
    # however their batches meet (past ``labels.max_pending`` they evict the oldest differently).
    labels = config.labels.model_copy(update={"max_pending": max(config.labels.max_pending, predictions)})
    config = config.model_copy(update={"labels": labels})
    models = load_models(config)

    log = FakeLog()
    load(log)
    single = Aggregator(
        config,
        models,
        FakeConsumer(log, batch=500),
        FakeProducer(log),
        BatchDecoder(config.kafka.labels_topic),
        clock=lambda: now,
    )
    single.subscribe()
    started = time.perf_counter()
    while single.poll_once():
        pass
    single_consume_s = time.perf_counter() - started
    single.evaluate()
    single_s = time.perf_counter() - started

    log = FakeLog()
    load(log)
    ticks = iter(range(10**9))  # monotonic readings: a flush comes due every few polls
    partial = PartialStage(
        config,
        models,
        GroupConsumer(FakeGroup(log, "g"), batch=500),
        FakeProducer(log),
        GroupConsumer(FakeGroup(log, "g-progress")),
        BatchDecoder(config.kafka.labels_topic),
        SUMMARY_PARTITIONS,
        clock=lambda: now,
        monotonic=lambda: float(next(ticks)),
    )
    partial.subscribe()
    started = time.perf_counter()
    while partial.poll_once():
        pass
    partial.flush()
    stage1_s = time.perf_counter() - started

    def merge() -> tuple[MergeStage, float]:
        stage = MergeStage(
            config,
            models,
            GroupConsumer(FakeGroup(log, f"m{time.perf_counter()}"), batch=500),
            SUMMARY_PARTITIONS,
            clock=lambda: now,
            dead_letters=FakeProducer(log) if join_shards else None,
        )
        # What merging each kind of message costs: with join shards, ``join`` messages are the
        # shards' work (spread over the partitions their keys route to), the rest the owners'.
        by_kind: dict[str, float] = {}
        merge_one = stage.merge

        def timed(state, message):  # type: ignore[no-untyped-def]
            began = time.perf_counter()
            merge_one(state, message)
            stage.after_merge(state, message.offset)
            kind = dict(message.headers).get(wire.KIND_HEADER, b"").decode()
            by_kind[kind] = by_kind.get(kind, 0.0) + time.perf_counter() - began

        send_one = stage._send_reports

        def sending(state):  # type: ignore[no-untyped-def]  # the shards' reports, encoded and sent
            began = time.perf_counter()
            sent = send_one(state)
            by_kind["send"] = by_kind.get("send", 0.0) + time.perf_counter() - began
            return sent

        stage.merge = timed  # type: ignore[method-assign]
        stage._send_reports = sending  # type: ignore[method-assign]
        stage.subscribe()
        began = time.perf_counter()
        while stage.poll_once():
            pass
        consumed = time.perf_counter() - began
        stage.evaluate()
        return stage, time.perf_counter() - began, consumed, by_kind

    stage2, stage2_s, stage2_consume_s, by_kind = merge()
    _, replay_s, _, _ = merge()
    same = same_metrics if format == "kserve" else assert_same_metrics
    same(exposition(single.snapshot(), single.latency()), exposition(stage2.snapshot(), stage2.latency()))
    summaries = log.messages(SUMMARIES)
    shards_s = by_kind.get(wire.JOIN_KIND, 0.0) + by_kind.get("send", 0.0)
    return {
        "records": records,
        "single": records / single_s,
        "stage1": records / stage1_s,
        "stage2": records / stage2_s,
        "both": records / (stage1_s + stage2_s),
        "replay": records / replay_s,
        # Per record of traffic, without the evaluation pass (a per-interval cost, not a per-record one).
        "single_us": single_consume_s / records * 1e6,
        "stage2_us": stage2_consume_s / records * 1e6,
        # The owners' share: all but the shards' joins and their reports (and, here, the poll
        # loop's own cost); the shards', spread over the partitions their join keys route to.
        "owner_us": (stage2_consume_s - shards_s) / records * 1e6,
        "shards_us": shards_s / records * 1e6,
        "messages": len(summaries),
        "bytes_per_prediction": sum(len(m.value) for m in summaries) / predictions,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000, help="predictions per model version")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--rate", type=float, default=100.0, help="predictions a second per model version (default 100)"
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="ndjson",
        help="the traffic: NDJSON messages of 25 records, the same as Arrow IPC, or KServe halves (default ndjson)",
    )
    parser.add_argument(
        "--join-shards",
        type=int,
        default=0,
        help="kafka.join_shards: spread each model's label join over this many shards (default 0: the owner joins)",
    )
    parser.add_argument(
        "--flush-seconds",
        type=float,
        default=1.0,
        help=(
            "kafka.partial_flush_seconds; stage 1's clock here reads one second later at every reading "
            "(a few a poll of 500 messages), so this sets how many polls a range spans (default 1: a "
            "range per poll or two; ranges end at 20,000 records whatever this is)"
        ),
    )
    parser.add_argument(
        "--flush-records",
        type=int,
        default=20_000,
        help="kafka.partial_flush_records: records in a range that publish it early (default 20,000)",
    )
    args = parser.parse_args()
    results = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as root:
            results.append(
                run(
                    args.rows,
                    Path(root),
                    args.rate,
                    args.format,
                    args.join_shards,
                    args.flush_seconds,
                    args.flush_records,
                )
            )
    median = {key: statistics.median(r[key] for r in results) for key in results[0]}
    wire = {
        "ndjson": "NDJSON messages of 25 records",
        "arrow": f"Arrow IPC messages of {ARROW_ROWS} rows of one version",
        "kserve": "KServe request and response halves (logger.mode all, unkeyed; records are messages)",
    }[args.format]
    print(
        f"{int(median['records']):,} records (predictions + labels) in {wire}, 3 model versions at {args.rate:,.0f} predictions/s each, 4 + 2 source partitions; "
        f"median of {args.repeat}; every variant ends with the same metrics"
    )
    print("| pipeline | records/s | vs single |")
    print("| --- | --- | --- |")
    for key, label in (
        ("single", "single mode (one Aggregator)"),
        ("stage1", "stage 1: decode, fold, publish partials"),
        ("stage2", "stage 2: merge partials, join labels, evaluate"),
        ("both", "stage 1 + stage 2"),
        ("replay", "stage 2 replay (rebuild a partition's state)"),
    ):
        print(f"| {label} | {median[key]:,.0f} | {median[key] / median['single']:.2f}× |")
    print(
        f"summaries published: {int(median['messages'])} messages, {median['bytes_per_prediction']:.1f} bytes per prediction"
    )
    print(
        f"per record of traffic, without the evaluation pass: single mode {median['single_us']:.2f} µs, "
        f"stage 2 {median['stage2_us']:.2f} µs — stage 2 costs {median['single_us'] / median['stage2_us']:.1f}× less"
    )
    if args.join_shards:
        print(
            f"with {args.join_shards} join shards: the model owners {median['owner_us']:.2f} µs per record "
            f"({median['single_us'] / median['owner_us']:.1f}× less than single mode), the shards' joins "
            f"{median['shards_us']:.2f} µs ({median['shards_us'] / args.join_shards:.2f} µs per shard, spread over "
            "the partitions their keys route to)"
        )


if __name__ == "__main__":
    main()
