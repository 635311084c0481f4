"""``model-health aggregator``: wiring the aggregator to Kafka, HTTP and signals.

Start-up order matters to an operator: the config and every profile are checked first
(a mistake fails the start, naming the field or file); then /metrics, /healthz and
/readyz come up, with /readyz false until the broker answers; then consumption begins.
An unreachable broker is retried with exponential backoff and logged once per attempt,
never crashing the process. When the broker goes away mid-stream the client keeps
reconnecting by itself; a probe every 2 s (:mod:`exporter.aggregator.broker_watch`) turns /readyz
false and logs the outage once, and its end with how long it lasted; so does a consumer
left holding no partitions for over half a minute (:mod:`exporter.aggregator.assignment_watch`). With ``mlflow``
configured, trained times are looked up in the registry on the scheduler's thread.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import datetime

from prometheus_client import CollectorRegistry

from exporter import __version__
from exporter.aggregator.assignment_watch import AssignmentWatch
from exporter.aggregator.broker_watch import BrokerWatch
from exporter.aggregator.collector import SnapshotCollector
from exporter.aggregator.single import Aggregator, Decode, load_models
from exporter.aggregator.trained_times import MlflowRegistry, TrainedTimes
from exporter.config import AggregatorConfig
from exporter.httpd.server import HttpServer, health_app
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


class Readiness:
    """What /readyz reports; written by the consuming thread, read by HTTP threads."""

    def __init__(self) -> None:
        self._state = (False, "starting")

    def set(self, ready: bool, why: str) -> None:
        self._state = (ready, why)

    def __call__(self) -> tuple[bool, str]:
        return self._state


def _connect(
    config: AggregatorConfig, decode: Decode, models, readiness: Readiness, stop: threading.Event
) -> Aggregator | None:  # type: ignore[no-untyped-def]
    kafka = config.kafka
    backoff = Backoff(initial_s=0.5, max_s=30.0)
    for delay in backoff.delays():
        if stop.is_set():
            return None
        try:
            wait_for_broker(kafka.bootstrap_servers, timeout_s=5.0)
            consumer = open_consumer(
                ConsumerSettings(
                    kafka.bootstrap_servers,
                    kafka.group_id,
                    session_timeout_ms=kafka.session_timeout_ms,
                    heartbeat_interval_ms=kafka.heartbeat_interval_ms,
                    max_poll_interval_ms=kafka.max_poll_interval_ms,
                ),
                kafka.client,
            )
            producer = open_producer(ProducerSettings(kafka.bootstrap_servers), kafka.client)
            return Aggregator(config, models, consumer, producer, decode)
        except KafkaIOError as error:
            readiness.set(False, f"broker unreachable: {error}")
            log.warning("broker %s unreachable (%s); retrying in %.1fs", kafka.bootstrap_servers, error, delay)
            stop.wait(delay)
    return None


def serve(
    config: AggregatorConfig,
    decode: Decode,
    stop: threading.Event | None = None,
    on_ready: Callable[[int], None] | None = None,
    assignment: AssignmentWatch | None = None,
) -> None:
    """Run until ``stop`` is set (SIGTERM/SIGINT set it when run from the CLI).

    ``assignment`` watches for a consumer left without partitions (single mode); the
    default waits :data:`~exporter.aggregator.assignment_watch.GRACE_SECONDS`.
    """
    stop = stop or threading.Event()
    models = load_models(config)
    trained = trained_times(config)
    readiness = Readiness()
    registry = CollectorRegistry()
    holder: dict[str, Aggregator] = {}
    from exporter.pipeline.snapshot import Snapshot

    empty = Snapshot(evaluated_at=0.0)
    registry.register(
        SnapshotCollector(
            lambda: holder["a"].snapshot() if "a" in holder else empty,
            __version__,
            lambda: holder["a"].latency() if "a" in holder else {},
        )
    )
    server = HttpServer(health_app(registry, readiness), config.http.host, config.http.port).start()
    log.info("serving /metrics on %s:%d", config.http.host, server.port)
    if on_ready is not None:
        on_ready(server.port)
    try:
        if config.kafka.mode == "scale_out":
            from exporter.aggregator.scaleout.service import run_scale_out

            run_scale_out(config, decode, models, readiness, stop, holder, registry, trained)
            return
        aggregator = _connect(config, decode, models, readiness, stop)
        if aggregator is None:
            return
        holder["a"] = aggregator
        if trained is not None:
            aggregator.trained_times = trained.current
        aggregator.restore()
        aggregator.evaluate()
        _consume(aggregator, readiness, stop, trained, assignment)
    finally:
        server.stop()


def trained_times(config: AggregatorConfig) -> TrainedTimes | None:
    """The MLflow registry lookups of trained times, when ``mlflow`` is configured."""
    if config.mlflow is None:
        return None
    registry = MlflowRegistry.with_credentials(config.mlflow.tracking_uri, config.mlflow.timeout_seconds, os.environ)
    log.info("mlflow: trained times from %s every %gs", registry.base, config.mlflow.refresh_interval_seconds)
    return TrainedTimes(registry, [(m.name, m.version) for m in config.models], config.mlflow.model_name_map)


def _consume(
    aggregator: Aggregator,
    readiness: Readiness,
    stop: threading.Event,
    trained: TrainedTimes | None = None,
    assignment: AssignmentWatch | None = None,
) -> None:
    from apscheduler.schedulers.background import BackgroundScheduler

    scheduler = BackgroundScheduler(daemon=True)
    scheduler.add_job(
        aggregator.evaluate_safely,
        "interval",
        seconds=aggregator.config.evaluation.interval_seconds,
        max_instances=1,
        coalesce=True,
    )
    if trained is not None and aggregator.config.mlflow is not None:
        # The first lookup runs at once, in the scheduler's thread: a slow or absent
        # registry never holds up consuming, and a scrape never waits on it.
        scheduler.add_job(
            trained.refresh,
            "interval",
            seconds=aggregator.config.mlflow.refresh_interval_seconds,
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(),
        )
    scheduler.start()
    watch = BrokerWatch(aggregator.config.kafka.bootstrap_servers)
    assignment = assignment or AssignmentWatch()
    backoff = Backoff(initial_s=0.5, max_s=30.0)
    delays = backoff.delays()
    try:
        aggregator.subscribe()
        last_checkpoint = time.monotonic()
        while not stop.is_set():
            try:
                aggregator.poll_once()
                due = time.monotonic() - last_checkpoint >= aggregator.config.state.checkpoint_interval_seconds
                # The client keeps polling quietly while the broker is away: only a probe tells,
                # and a fresh one before a checkpoint, whose group commit would block on it.
                broker_up, why = watch.state(fresh=due)
                unassigned = assignment.check(len(aggregator.consumer.assignment())) if broker_up else None
                readiness.set(broker_up and unassigned is None, why if not broker_up else unassigned or "consuming")
                delays = backoff.delays()
                if due:
                    aggregator.checkpoint(commit=broker_up)
                    last_checkpoint = time.monotonic()
            except KafkaIOError as error:
                delay = next(delays)
                readiness.set(False, f"broker error: {error}")
                log.warning("Kafka error (%s); retrying in %.1fs", error, delay)
                stop.wait(delay)
        aggregator.checkpoint(commit=watch.up)
    finally:
        scheduler.shutdown(wait=False)
        aggregator.consumer.close()
