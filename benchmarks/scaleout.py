"""Scale-out benchmark: what the two stages cost against the single-process pipeline.

    python benchmarks/scaleout.py [--rows N] [--repeat 3]

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

Printed: records/s of each (median of ``--repeat`` runs; records = predictions + labels),
stage 1 + stage 2 against single, the summaries published (messages, bytes per prediction),
and that every variant ends with the same metrics.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from exporter.aggregator.inputs import load_models  # noqa: E402
from exporter.aggregator.scaleout.stage1 import PartialStage  # noqa: E402
from exporter.aggregator.scaleout.stage2 import MergeStage  # noqa: E402
from exporter.aggregator.single import Aggregator  # noqa: E402
from exporter.pipeline.decode import BatchDecoder  # noqa: E402
from tests.exporter.aggregator.scaleout.fakes import FakeGroup, GroupConsumer  # noqa: E402
from tests.exporter.aggregator.scaleout.harness import (  # noqa: E402
    SUMMARIES,
    SUMMARY_PARTITIONS,
    assert_same_metrics,
    exposition,
    fill,
    make_config,
)
from tests.exporter.aggregator.scaleout.traffic import make_traffic, write_profiles  # noqa: E402
from tests.support.fake_kafka import FakeConsumer, FakeLog, FakeProducer  # noqa: E402

BASE = 1_000.0


def run(rows: int, root: Path, rate: float = 100.0) -> dict[str, float]:
    """``rate``: predictions a second per model version. Stage 2's costs per bucket (decoding
    and merging a slot's summaries) spread over the records of the slot, so its cost per record
    falls as a model gets busier; at 100 a second a partial carries a few 30 s slots."""
    profiles = write_profiles(root / "profiles")
    spacing = 1.0 / rate
    traffic = make_traffic(rows, BASE, spacing=spacing)
    now = BASE + rows * spacing + 50
    records = sum(traffic.rows.values()) + sum(traffic.labelled.values())
    config = make_config(profiles, root / "state")
    models = load_models(config)

    log = FakeLog()
    fill(log, traffic)
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
    fill(log, traffic)
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
        )
        stage.subscribe()
        began = time.perf_counter()
        while stage.poll_once():
            pass
        consumed = time.perf_counter() - began
        stage.evaluate()
        return stage, time.perf_counter() - began, consumed

    stage2, stage2_s, stage2_consume_s = merge()
    _, replay_s, _ = merge()
    assert_same_metrics(
        exposition(single.snapshot(), single.latency()), exposition(stage2.snapshot(), stage2.latency())
    )
    summaries = log.messages(SUMMARIES)
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
        "messages": len(summaries),
        "bytes_per_prediction": sum(len(m.value) for m in summaries) / sum(traffic.rows.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000, help="predictions per model version")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--rate", type=float, default=100.0, help="predictions a second per model version (default 100)"
    )
    args = parser.parse_args()
    results = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as root:
            results.append(run(args.rows, Path(root), args.rate))
    median = {key: statistics.median(r[key] for r in results) for key in results[0]}
    print(
        f"{int(median['records']):,} records (predictions + labels), 3 model versions at {args.rate:,.0f} predictions/s each, 4 + 2 source partitions; "
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


if __name__ == "__main__":
    main()
