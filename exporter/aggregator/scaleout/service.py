"""Running both stages of scale-out in one ``model-health aggregator`` process.

Each stage has its own consumer and its own thread, so each stays inside ``poll`` (a
kafka-python consumer that stays out of it can lose a finished group join): stage 1 in
``kafka.group_id``, stage 2 in ``<group_id>-merge``. A third, member-less consumer only
reads and writes stage 1's progress offsets. Evaluation runs on the scheduler as in single
mode and renders the models this replica owns; ``/metrics`` also shows the merge counters
(:class:`MergeCollector`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import Metric
from prometheus_client.registry import CollectorRegistry

from exporter.aggregator.inputs import Models, consumer_settings
from exporter.aggregator.loop import run_poll_loop
from exporter.aggregator.readiness import BrokerWatch, Readiness
from exporter.aggregator.scaleout.routing import merge_group, progress_group, snapshot_group
from exporter.aggregator.scaleout.stage1 import PartialStage
from exporter.aggregator.scaleout.stage2 import MergeStage, MergeStats
from exporter.aggregator.service import NotReady, connect_with_backoff, start_scheduler
from exporter.aggregator.trained_times import TrainedTimes
from exporter.config import AggregatorConfig
from exporter.exposition import CatalogueCollector
from exporter.kafka import (
    KafkaIOError,
    ProducerSettings,
    open_consumer,
    open_producer,
)
from exporter.pipeline.decode import Decode

log = logging.getLogger(__name__)


class MergeCollector(CatalogueCollector):
    """``model_health_summaries_{merged,duplicates,overlaps}_total`` from the last evaluation;
    registered beside the aggregator's :class:`~exporter.aggregator.collector.SnapshotCollector`."""

    METRICS = (
        "model_health_summaries_merged_total",
        "model_health_summaries_duplicates_total",
        "model_health_summaries_overlaps_total",
    )

    def __init__(self, stats: Callable[[], MergeStats]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self._stats()
        out = self.families()
        out.add("model_health_summaries_merged_total", [], stats.merged)
        out.add("model_health_summaries_duplicates_total", [], stats.duplicates)
        out.add("model_health_summaries_overlaps_total", [], stats.overlaps)
        yield from out


def summaries_partitions(config: AggregatorConfig) -> int | None:
    """The partition count of the summaries topic, or None while it does not exist."""
    from exporter.kafka.kafka_python import topic_partitions

    try:
        count = topic_partitions(config.kafka.bootstrap_servers).get(config.kafka.summaries_topic, 0)
    except Exception as error:  # noqa: BLE001 - the broker may still be starting; retried
        raise KafkaIOError(f"cannot read the topics: {error}") from error
    return count or None


def connect(
    config: AggregatorConfig,
    decode: Decode,
    models: Models,
    readiness: Readiness,
    stop: threading.Event,
    trained: TrainedTimes | None,
) -> tuple[PartialStage, MergeStage] | None:
    """Both stages, connected; retried with backoff until the broker and the topic are there."""
    kafka = config.kafka

    def build() -> tuple[PartialStage, MergeStage]:
        partitions = summaries_partitions(config)
        if partitions is None:
            raise NotReady(
                f"summaries topic {kafka.summaries_topic!r} does not exist; "
                "create it with at least one partition per replica"
            )
        log.info("scale-out: %d summaries partition(s) on %s", partitions, kafka.summaries_topic)
        producer = open_producer(
            ProducerSettings(kafka.bootstrap_servers, client_id="model-health-partials"), kafka.client
        )
        partial = PartialStage(
            config,
            models,
            open_consumer(consumer_settings(config, kafka.group_id, "model-health-partials"), kafka.client),
            producer,
            open_consumer(
                consumer_settings(config, progress_group(kafka.group_id), "model-health-progress"), kafka.client
            ),
            decode,
            partitions,
        )
        merge = MergeStage(
            config,
            models,
            open_consumer(consumer_settings(config, merge_group(kafka.group_id), "model-health-merge"), kafka.client),
            partitions,
            trained_times=trained.current if trained is not None else None,
            extra_lag=lambda: dict(partial.lag),
            # Its own producer (pairing's dead letters, state snapshots): stage 1's flushes must not
            # wait on (or fail for) these.
            dead_letters=open_producer(
                ProducerSettings(kafka.bootstrap_servers, client_id="model-health-merge"), kafka.client
            ),
            snapshots=open_consumer(
                consumer_settings(config, snapshot_group(kafka.group_id), "model-health-snapshots"), kafka.client
            ),
        )
        return partial, merge

    return connect_with_backoff(config, readiness, stop, build)


def run_scale_out(
    config: AggregatorConfig,
    decode: Decode,
    models: Models,
    readiness: Readiness,
    stop: threading.Event,
    holder: dict[str, Any],
    registry: CollectorRegistry,
    trained: TrainedTimes | None = None,
) -> None:
    """Consume, merge and evaluate until ``stop`` is set; ``holder["a"]`` serves /metrics."""
    stages = connect(config, decode, models, readiness, stop, trained)
    if stages is None:
        return
    partial, merge = stages
    holder["a"] = merge
    registry.register(MergeCollector(merge.stats))
    merge.evaluate()
    scheduler = start_scheduler(merge.evaluate, config, trained)
    healthy = {"stage 1": False, "stage 2": False}
    watch = BrokerWatch(config.kafka.bootstrap_servers)

    def report(stage: str, ok: bool, broker_up: bool, why: str) -> None:
        healthy[stage] = ok
        if not broker_up:
            readiness.set(False, why)
        elif all(healthy.values()):
            readiness.set(True, "consuming (scale-out)")
        else:
            readiness.set(False, why or "starting")

    def run(name: str, stage: PartialStage | MergeStage, checkpoint: Callable[[bool], None] | None) -> None:
        run_poll_loop(
            name,
            stage,
            stop,
            watch,
            on_poll=lambda broker_up, why: report(name, True, broker_up, why),
            on_error=lambda why: report(name, False, True, f"{name}: {why}"),
            checkpoint=checkpoint,
            checkpoint_seconds=config.state.checkpoint_interval_seconds,
        )

    threads = [
        threading.Thread(target=run, args=("stage 1", partial, None), name="partial", daemon=True),
        threading.Thread(
            target=run,
            args=("stage 2", merge, lambda commit: merge.checkpoint(commit=commit)),
            name="merge",
            daemon=True,
        ),
    ]
    try:
        for thread in threads:
            thread.start()
        while not stop.is_set() and all(t.is_alive() for t in threads):
            stop.wait(1.0)
        if not stop.is_set():
            log.error("a scale-out stage stopped unexpectedly; stopping the process")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        scheduler.shutdown(wait=False)
