"""Scale-out replicas over the in-memory Kafka, and the single-process run they must equal."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from exporter.aggregator.inputs import load_models
from exporter.aggregator.scaleout.routing import merge_group, progress_group, snapshot_group
from exporter.aggregator.scaleout.stage1 import PartialStage
from exporter.aggregator.scaleout.stage2 import MergeStage
from exporter.aggregator.single import Aggregator
from exporter.config import AggregatorConfig
from exporter.kafka import TopicPartition
from exporter.pipeline.decode import BatchDecoder
from exporter.pipeline.snapshot import Snapshot
from tests.exporter.aggregator.scaleout.fakes import FakeGroup, GroupConsumer, HookedProducer
from tests.exporter.aggregator.scaleout.traffic import WINDOWS, Traffic, models_config
from tests.support.fake_kafka import FakeConsumer, FakeLog, FakeProducer

PREDICTIONS, LABELS, SUMMARIES = "model-predictions", "model-labels", "model-health-summaries"
SUMMARY_PARTITIONS = 2


def make_config(paths, state_dir: Path, **kafka) -> AggregatorConfig:
    models = [{**m, "thresholds": {"min_samples": 100}} for m in models_config(paths)]
    return AggregatorConfig(
        kafka={"mode": "scale_out", "partial_flush_seconds": 1.0, **kafka},
        models=models,
        windows=WINDOWS,
        state={"dir": str(state_dir)},
        allowed_lateness_seconds=100_000,
    )


class Feeder:
    """Appends the traffic to unkeyed topics (round-robin over partitions), all or a bit at a time."""

    def __init__(
        self,
        log: FakeLog,
        traffic: Traffic,
        prediction_partitions: int = 4,
        label_partitions: int = 2,
        topics: tuple[str, str] = (PREDICTIONS, LABELS),
    ) -> None:
        self.log = log
        predictions, labels_topic = topics
        self.pending = [(predictions, i % prediction_partitions, m) for i, m in enumerate(traffic.predictions)]
        labels = [(labels_topic, i % label_partitions, m) for i, m in enumerate(traffic.labels)]
        # Labels interleaved with predictions, as they would arrive.
        step = max(1, len(self.pending) // max(1, len(labels)))
        for n, item in enumerate(labels):
            self.pending.insert(min(len(self.pending), (n + 1) * (step + 1)), item)
        for topic, count in (
            (predictions, prediction_partitions),
            (labels_topic, label_partitions),
            (SUMMARIES, SUMMARY_PARTITIONS),
        ):
            for p in range(count):
                log.partitions.setdefault(TopicPartition(topic, p), [])

    def feed(self, count: int | None = None) -> int:
        batch, self.pending = (self.pending, []) if count is None else (self.pending[:count], self.pending[count:])
        for topic, partition, message in batch:
            self.log.append(topic, message, partition=partition)
        return len(batch)


def fill(log: FakeLog, traffic: Traffic, topics: tuple[str, str] = (PREDICTIONS, LABELS)) -> None:
    Feeder(log, traffic, topics=topics).feed()


def single_run(config: AggregatorConfig, traffic: Traffic, now: float) -> Aggregator:
    """One single-mode aggregator that has consumed and evaluated the same traffic."""
    log = FakeLog()
    fill(log, traffic, (config.kafka.predictions_topic, config.kafka.labels_topic))
    aggregator = Aggregator(
        config,
        load_models(config),
        FakeConsumer(log, batch=7),
        FakeProducer(log),
        BatchDecoder(config.kafka.labels_topic),
        clock=lambda: now,
    )
    aggregator.subscribe()
    while aggregator.poll_once():
        pass
    aggregator.evaluate()
    return aggregator


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now
        self.ticks = 0.0

    def __call__(self) -> float:
        return self.now

    def monotonic(self) -> float:
        self.ticks += 0.25  # every reading moves on: flushes come due as polls go by
        return self.ticks


@dataclass
class Cluster:
    """Replicas (stage 1 + stage 2 each) sharing one FakeLog and three groups."""

    config: AggregatorConfig
    log: FakeLog
    clock: Clock
    models: dict = field(default_factory=dict)
    partial_group: FakeGroup | None = None
    merge_group: FakeGroup | None = None
    progress: FakeGroup | None = None
    replicas: list[Replica] = field(default_factory=list)
    snapshots: bool = False  # stage 2 publishes shared state snapshots (and a new owner restores them)

    def __post_init__(self) -> None:
        self.models = load_models(self.config)
        group = self.config.kafka.group_id
        self.partial_group = FakeGroup(self.log, group)
        self.merge_group = FakeGroup(self.log, merge_group(group))
        self.progress = FakeGroup(self.log, progress_group(group))
        self.snapshot_group = FakeGroup(self.log, snapshot_group(group))

    def start(self, state_dir: Path | None = None) -> Replica:
        config = (
            self.config
            if state_dir is None
            else self.config.model_copy(update={"state": self.config.state.model_copy(update={"dir": state_dir})})
        )
        producer = HookedProducer(self.log)
        partial = PartialStage(
            config,
            self.models,
            GroupConsumer(self.partial_group),
            producer,
            GroupConsumer(self.progress),
            BatchDecoder(config.kafka.labels_topic),
            SUMMARY_PARTITIONS,
            clock=self.clock,
            monotonic=self.clock.monotonic,
        )
        merge = MergeStage(
            config,
            self.models,
            GroupConsumer(self.merge_group),
            SUMMARY_PARTITIONS,
            clock=self.clock,
            extra_lag=lambda: dict(partial.lag),
            # Stage 2's producer: snapshots, and join shards' reports to their models' owners.
            dead_letters=HookedProducer(self.log) if self.snapshots or config.kafka.join_shards else None,
            snapshots=GroupConsumer(self.snapshot_group) if self.snapshots else None,
        )
        replica = Replica(self, partial, merge, producer)
        self.replicas.append(replica)
        partial.subscribe()
        merge.subscribe()
        return replica

    def drain(self, limit: int = 5_000) -> None:
        """Poll every replica until nothing moves and nothing is left unpublished."""
        for _ in range(limit):
            moved = 0
            for replica in self.replicas:
                moved += replica.partial.poll_once()
                moved += replica.merge.poll_once()
            if moved == 0:
                for replica in self.replicas:
                    replica.partial.flush()
                if all(not r.partial._open for r in self.replicas) and all(
                    r.merge.poll_once() == 0 for r in self.replicas
                ):
                    return
        raise AssertionError("the cluster never settled")

    def evaluate(self) -> list[Snapshot]:
        # Not named ``snapshots``: a method of that name was the field's default (always on).
        return [replica.merge.evaluate() for replica in self.replicas]


@dataclass
class Replica:
    cluster: Cluster
    partial: PartialStage
    merge: MergeStage
    producer: HookedProducer

    def kill(self) -> None:
        """kill -9: the group notices the member is gone; nothing of its memory survives."""
        self.cluster.partial_group.crash(self.partial.consumer)  # type: ignore[union-attr,arg-type]
        self.cluster.merge_group.crash(self.merge.consumer)  # type: ignore[union-attr,arg-type]
        self.cluster.replicas.remove(self)

    def step(self, polls: int = 1) -> None:
        for _ in range(polls):
            self.partial.poll_once()
            self.merge.poll_once()


# ---------------------------------------------------------------------------------------------
# Comparing what replicas export with what one process exports.

# Series every process has or whose value depends on timing, not on the data.
_PROCESS_SERIES = (
    "model_health_build_info",
    "model_health_consumer_lag_records",
    "model_health_evaluation_",
    "model_health_checkpoint_",
    "model_health_summaries_",
)


def exposition(snapshot: Snapshot, latency=None) -> dict[str, float]:
    """The samples a scrape of ``snapshot`` shows, ``name{labels}`` → value."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.exposition import generate_latest

    from exporter.aggregator.collector import SnapshotCollector

    registry = CollectorRegistry()
    registry.register(SnapshotCollector(lambda: snapshot, (lambda: latency or {})))
    return parse_exposition(generate_latest(registry).decode())


def parse_exposition(text: str) -> dict[str, float]:
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            if not name.startswith(_PROCESS_SERIES) and "_created" not in name:
                samples[name] = float(value)
    return samples


def combine(scrapes: list[dict[str, float]], summed=("_total", "_bucket", "_count", "_sum")) -> dict[str, float]:
    """One view of several replicas: counters add up; any other series must come from one replica."""
    out: dict[str, float] = {}
    for scrape in scrapes:
        for name, value in scrape.items():
            base = name.split("{", 1)[0]
            if name in out:
                assert base.endswith(summed), f"{name} is exported by more than one replica"
                out[name] += value
            else:
                out[name] = value
    return out


def assert_same_metrics(expected: dict[str, float], got: dict[str, float]) -> None:
    import math

    assert set(got) == set(expected), (sorted(set(expected) - set(got))[:10], sorted(set(got) - set(expected))[:10])
    different = {
        name: (expected[name], got[name])
        for name in expected
        # Latency sums add floats in another order: equal to rounding.
        if not math.isclose(expected[name], got[name], rel_tol=1e-12 if name.split("{")[0].endswith("_sum") else 0)
    }
    assert not different, dict(list(different.items())[:10])
