"""``model-health aggregator``: wiring the aggregator to Kafka, HTTP and its schedule.

Start-up order matters to an operator: the config and every profile are checked first
(a mistake fails the start, naming the field or file); then /metrics, /healthz and
/readyz come up, with /readyz false until the broker answers; then consumption begins,
in single mode (:mod:`~exporter.aggregator.single`) or scale-out
(:mod:`~exporter.aggregator.scaleout`). An unreachable broker is retried with exponential
backoff and logged once per attempt, never crashing the process. When the broker goes away
mid-stream the client keeps reconnecting by itself; a probe every 2 s turns /readyz false
and logs the outage once, and its end with how long it lasted; so does a single-mode
consumer left holding no partitions for over half a minute
(:mod:`~exporter.aggregator.readiness`). Evaluation runs on a scheduler thread; with
``mlflow`` configured, trained times are looked up in the registry on that thread too.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from prometheus_client import CollectorRegistry

from exporter import __version__
from exporter.aggregator.collector import SnapshotCollector
from exporter.aggregator.inputs import Models, consumer_settings, load_models
from exporter.aggregator.loop import reconnect_backoff, run_poll_loop
from exporter.aggregator.readiness import AssignmentWatch, BrokerWatch, Readiness
from exporter.aggregator.single import Aggregator
from exporter.aggregator.trained_times import MlflowRegistry, TrainedTimes
from exporter.config import AggregatorConfig
from exporter.exposition import BuildInfoCollector
from exporter.httpd.auth import read_secret
from exporter.httpd.server import HttpServer, WSGIApp, health_app
from exporter.kafka import KafkaIOError, ProducerSettings, open_consumer, open_producer, wait_for_broker
from exporter.pipeline.decode import Decode
from exporter.pipeline.snapshot import Snapshot

if TYPE_CHECKING:
    from apscheduler.schedulers.background import BackgroundScheduler

from exporter.report.routes import ScrapeGate

log = logging.getLogger(__name__)
T = TypeVar("T")


class NotReady(Exception):
    """The broker answers, but something the aggregator needs is not there yet (retried)."""


def connect_with_backoff(
    config: AggregatorConfig, readiness: Readiness, stop: threading.Event, build: Callable[[], T]
) -> T | None:
    """``build()`` once the broker answers, retried with backoff; None when stopped first."""
    kafka = config.kafka
    for delay in reconnect_backoff().delays():
        if stop.is_set():
            return None
        try:
            wait_for_broker(kafka.bootstrap_servers, timeout_s=5.0)
            return build()
        except NotReady as why:
            readiness.set(False, str(why))
            log.warning("%s; retrying in %.1fs", why, delay)
        except KafkaIOError as error:
            readiness.set(False, f"broker unreachable: {error}")
            log.warning("broker %s unreachable (%s); retrying in %.1fs", kafka.bootstrap_servers, error, delay)
        stop.wait(delay)
    return None


def start_scheduler(
    evaluate: Callable[[], object], config: AggregatorConfig, trained: TrainedTimes | None
) -> BackgroundScheduler:
    """Evaluation every ``evaluation.interval_seconds`` (and MLflow lookups), on one background thread."""
    from apscheduler.schedulers.background import BackgroundScheduler

    def evaluate_safely() -> None:
        try:
            evaluate()
        except Exception:  # noqa: BLE001 - a failed pass must not stop the schedule
            log.exception("evaluation failed; the previous snapshot stays")

    scheduler = BackgroundScheduler(daemon=True)
    scheduler.add_job(
        evaluate_safely, "interval", seconds=config.evaluation.interval_seconds, max_instances=1, coalesce=True
    )
    if trained is not None and config.mlflow is not None:
        # The first lookup runs at once, in the scheduler's thread: a slow or absent
        # registry never holds up consuming, and a scrape never waits on it.
        scheduler.add_job(
            trained.refresh,
            "interval",
            seconds=config.mlflow.refresh_interval_seconds,
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(),
        )
    scheduler.start()
    return scheduler


def serve(
    config: AggregatorConfig,
    decode: Decode,
    stop: threading.Event | None = None,
    on_ready: Callable[[int], None] | None = None,
    assignment: AssignmentWatch | None = None,
) -> None:
    """Run until ``stop`` is set (SIGTERM/SIGINT set it when run from the CLI).

    ``assignment`` watches for a consumer left without partitions (single mode); the
    default waits :data:`~exporter.aggregator.readiness.GRACE_SECONDS`.
    """
    stop = stop or threading.Event()
    models = load_models(config)
    trained = trained_times(config)
    readiness = Readiness()
    registry = CollectorRegistry()
    holder: dict[str, Any] = {}  # "a": the running mode's stage that evaluates (snapshot(), latency())
    empty = Snapshot(evaluated_at=0.0)

    def current() -> Snapshot:
        return holder["a"].snapshot() if "a" in holder else empty

    registry.register(BuildInfoCollector(__version__))
    registry.register(SnapshotCollector(current, lambda: holder["a"].latency() if "a" in holder else {}))
    server = HttpServer(http_app(config, registry, readiness, current), config.http.host, config.http.port).start()
    log.info("serving /metrics and the drift report (/report) on %s:%d", config.http.host, server.port)
    if on_ready is not None:
        on_ready(server.port)
    try:
        if config.kafka.mode == "scale_out":
            from exporter.aggregator.scaleout.service import run_scale_out

            run_scale_out(config, decode, models, readiness, stop, holder, registry, trained)
        else:
            run_single(config, decode, models, readiness, stop, holder, trained, assignment)
    finally:
        server.stop()


def http_app(
    config: AggregatorConfig,
    registry: CollectorRegistry,
    readiness: Readiness,
    snapshot: Callable[[], Snapshot],
    gate: ScrapeGate | None = None,
) -> WSGIApp:
    """``/metrics``, ``/healthz``, ``/readyz`` and the drift report over ``snapshot()``; with
    ``http.token_file``, ``/metrics`` and the report ask for its bearer token. ``gate``
    counts scrapes in flight for the report's renders to step aside (a fresh one by default)."""
    from exporter.report.peers import Peers
    from exporter.report.routes import ReportRoutes, ScrapeGate

    token = read_secret(config.http.token_file, "http.token_file") if config.http.token_file is not None else None
    gate = gate or ScrapeGate()
    peers = Peers(config.http.peers, token) if config.http.peers else None
    report = ReportRoutes(snapshot, gate, peers)
    return health_app(registry, readiness, report.routes(), token=token, wrap_metrics=gate.wrap)


def run_single(
    config: AggregatorConfig,
    decode: Decode,
    models: Models,
    readiness: Readiness,
    stop: threading.Event,
    holder: dict[str, Any],
    trained: TrainedTimes | None = None,
    assignment: AssignmentWatch | None = None,
) -> None:
    """Single mode: consume every partition in this thread until ``stop`` is set."""
    kafka = config.kafka

    def build() -> Aggregator:
        consumer = open_consumer(consumer_settings(config, kafka.group_id), kafka.client)
        producer = open_producer(ProducerSettings(kafka.bootstrap_servers), kafka.client)
        return Aggregator(
            config, models, consumer, producer, decode, trained_times=trained.current if trained else None
        )

    aggregator = connect_with_backoff(config, readiness, stop, build)
    if aggregator is None:
        return
    holder["a"] = aggregator
    aggregator.restore()
    aggregator.evaluate()
    scheduler = start_scheduler(aggregator.evaluate, config, trained)
    watch = BrokerWatch(kafka.bootstrap_servers)
    assignment = assignment or AssignmentWatch()

    def on_poll(broker_up: bool, why: str) -> None:
        unassigned = assignment.check(len(aggregator.consumer.assignment())) if broker_up else None
        readiness.set(broker_up and unassigned is None, why if not broker_up else unassigned or "consuming")

    try:
        run_poll_loop(
            "aggregator",
            aggregator,
            stop,
            watch,
            on_poll=on_poll,
            on_error=lambda why: readiness.set(False, f"broker error: {why}"),
            checkpoint=lambda commit: aggregator.checkpoint(commit=commit),
            checkpoint_seconds=config.state.checkpoint_interval_seconds,
        )
    finally:
        scheduler.shutdown(wait=False)


def trained_times(config: AggregatorConfig) -> TrainedTimes | None:
    """The MLflow registry lookups of trained times, when ``mlflow`` is configured."""
    if config.mlflow is None:
        return None
    registry = MlflowRegistry.with_credentials(config.mlflow.tracking_uri, config.mlflow.timeout_seconds, os.environ)
    log.info("mlflow: trained times from %s every %gs", registry.base, config.mlflow.refresh_interval_seconds)
    return TrainedTimes(registry, [(m.name, m.version) for m in config.models], config.mlflow.model_name_map)
