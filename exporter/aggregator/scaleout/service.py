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
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from prometheus_client.core import Metric
from prometheus_client.registry import CollectorRegistry

from exporter.aggregator.broker_watch import BrokerWatch
from exporter.aggregator.scaleout.routing import merge_group, progress_group
from exporter.aggregator.scaleout.stage1 import PartialStage
from exporter.aggregator.scaleout.stage2 import MergeStage, MergeStats
from exporter.aggregator.single import Decode
from exporter.config import AggregatorConfig
from exporter.exposition import CatalogueCollector
from exporter.kafka import (
    Backoff,
    ConsumerSettings,
    KafkaIOError,
    ProducerSettings,
    open_consumer,
    open_producer,
    wait_for_broker,
)

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


def _settings(config: AggregatorConfig, group: str, client_id: str) -> ConsumerSettings:
    kafka = config.kafka
    return ConsumerSettings(
        kafka.bootstrap_servers,
        group,
        client_id=client_id,
        session_timeout_ms=kafka.session_timeout_ms,
        heartbeat_interval_ms=kafka.heartbeat_interval_ms,
        max_poll_interval_ms=kafka.max_poll_interval_ms,
    )


def connect(
    config: AggregatorConfig, decode: Decode, models: Any, readiness: Any, stop: threading.Event, trained: Any
) -> tuple[PartialStage, MergeStage] | None:
    """Both stages, connected; retried with backoff until the broker and the topic are there."""
    kafka = config.kafka
    for delay in Backoff(initial_s=0.5, max_s=30.0).delays():
        if stop.is_set():
            return None
        try:
            wait_for_broker(kafka.bootstrap_servers, timeout_s=5.0)
            partitions = summaries_partitions(config)
            if partitions is None:
                why = f"summaries topic {kafka.summaries_topic!r} does not exist; create it with at least one partition per replica"
                readiness.set(False, why)
                log.warning("%s; retrying in %.1fs", why, delay)
                stop.wait(delay)
                continue
            log.info("scale-out: %d summaries partition(s) on %s", partitions, kafka.summaries_topic)
            producer = open_producer(
                ProducerSettings(kafka.bootstrap_servers, client_id="model-health-partials"), kafka.client
            )
            partial = PartialStage(
                config,
                models,
                open_consumer(_settings(config, kafka.group_id, "model-health-partials"), kafka.client),
                producer,
                open_consumer(_settings(config, progress_group(kafka.group_id), "model-health-progress"), kafka.client),
                decode,
                partitions,
            )
            merge = MergeStage(
                config,
                models,
                open_consumer(_settings(config, merge_group(kafka.group_id), "model-health-merge"), kafka.client),
                partitions,
                trained_times=trained.current if trained is not None else None,
                extra_lag=lambda stage=partial: dict(stage.lag),  # this replica's stage 1
                # Its own producer: stage 1's flushes must not wait on (or fail for) these.
                dead_letters=open_producer(
                    ProducerSettings(kafka.bootstrap_servers, client_id="model-health-merge"), kafka.client
                ),
            )
            return partial, merge
        except KafkaIOError as error:
            readiness.set(False, f"broker unreachable: {error}")
            log.warning("broker %s unreachable (%s); retrying in %.1fs", kafka.bootstrap_servers, error, delay)
            stop.wait(delay)
    return None


def run_scale_out(
    config: AggregatorConfig,
    decode: Decode,
    models: Any,
    readiness: Any,
    stop: threading.Event,
    holder: dict[str, Any],
    registry: CollectorRegistry,
    trained: Any = None,
) -> None:
    """Consume, merge and evaluate until ``stop`` is set; ``holder["a"]`` serves /metrics."""
    stages = connect(config, decode, models, readiness, stop, trained)
    if stages is None:
        return
    partial, merge = stages
    holder["a"] = merge
    registry.register(MergeCollector(merge.stats))
    merge.evaluate()

    from apscheduler.schedulers.background import BackgroundScheduler

    scheduler = BackgroundScheduler(daemon=True)
    scheduler.add_job(
        merge.evaluate_safely, "interval", seconds=config.evaluation.interval_seconds, max_instances=1, coalesce=True
    )
    if trained is not None and config.mlflow is not None:
        scheduler.add_job(
            trained.refresh,
            "interval",
            seconds=config.mlflow.refresh_interval_seconds,
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(),
        )
    scheduler.start()
    healthy = {"partial": False, "merge": False}
    watch = BrokerWatch(config.kafka.bootstrap_servers)

    def report(stage: str, ok: bool, why: str = "") -> None:
        healthy[stage] = ok
        broker_up, broker_why = watch.state()
        if not broker_up:
            readiness.set(False, broker_why)
        elif all(healthy.values()):
            readiness.set(True, "consuming (scale-out)")
        else:
            readiness.set(False, why or "starting")

    def run_partial() -> None:
        delays = Backoff(initial_s=0.5, max_s=30.0).delays()
        try:
            partial.subscribe()
            while not stop.is_set():
                try:
                    partial.poll_once()
                    report("partial", True)
                    delays = Backoff(initial_s=0.5, max_s=30.0).delays()
                except KafkaIOError as error:
                    delay = next(delays)
                    report("partial", False, f"stage 1: {error}")
                    log.warning("stage 1: Kafka error (%s); retrying in %.1fs", error, delay)
                    stop.wait(delay)
        finally:
            partial.close()

    def run_merge() -> None:
        delays = Backoff(initial_s=0.5, max_s=30.0).delays()
        try:
            merge.subscribe()
            last_checkpoint = time.monotonic()
            while not stop.is_set():
                try:
                    merge.poll_once()
                    report("merge", True)
                    delays = Backoff(initial_s=0.5, max_s=30.0).delays()
                    if time.monotonic() - last_checkpoint >= config.state.checkpoint_interval_seconds:
                        merge.checkpoint(commit=watch.up)
                        last_checkpoint = time.monotonic()
                except KafkaIOError as error:
                    delay = next(delays)
                    report("merge", False, f"stage 2: {error}")
                    log.warning("stage 2: Kafka error (%s); retrying in %.1fs", error, delay)
                    stop.wait(delay)
        finally:
            merge.close()

    threads = [
        threading.Thread(target=run, name=name, daemon=True)
        for name, run in (("partial", run_partial), ("merge", run_merge))
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
