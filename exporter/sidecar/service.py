"""``model-health sidecar``: ingest, serving metrics, GPU and forwarding, wired together.

Start-up order: the config (and, in edge mode, the reference profile) is checked first,
so a mistake fails the start naming the field or file; then the GPU collector starts
(when ``gpu.mode`` is not ``off``), then the HTTP server (ingest, ``/metrics``,
``/healthz``, ``/readyz``), then the forwarder, which connects to Kafka on its own thread
and keeps retrying while Kafka is away.

``/readyz`` answers 200 as soon as the server is up, with the Kafka state in its text: the
sidecar shares its pod with the model server, and a failing readiness probe would take
the *model* out of service because Kafka is down. Backpressure is the queue's job (503
once full), not the probe's.

Stopping (SIGTERM/SIGINT from the CLI, or :meth:`Sidecar.stop`): the HTTP server stops
taking requests, requests still waiting for their response are settled (forwarded without
a prediction), the queue is drained to Kafka and flushed, and the GPU collector stops.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry

from exporter import __version__
from exporter.config import SidecarConfig
from exporter.errors import UserError
from exporter.exposition import BuildInfoCollector
from exporter.httpd.server import HttpServer, health_app
from exporter.kafka import Producer, ProducerSettings, open_producer
from exporter.sidecar.batches import RecordBatches
from exporter.sidecar.forwarder import Forwarder, Stage
from exporter.sidecar.ingest import Ingest, count_other_refusals
from exporter.sidecar.queue import RecordQueue
from exporter.sidecar.serving import ServingStats, SidecarCollector
from exporter.sidecar.summaries import SummaryStage

log = logging.getLogger(__name__)

ProducerFactory = Callable[[SidecarConfig], Producer]
# How long one connection attempt waits for a broker before the forwarder backs off.
CONNECT_TIMEOUT_SECONDS = 5.0


def kafka_producer(config: SidecarConfig) -> Producer:
    kafka = config.kafka
    settings = ProducerSettings(
        kafka.bootstrap_servers,
        client_id=f"model-health-sidecar-{config.model.name}",
        bootstrap_timeout_s=CONNECT_TIMEOUT_SECONDS,
    )
    return open_producer(settings, kafka.client)


def topic_partition_count(bootstrap_servers: str, topic: str) -> int | None:
    """Partitions of ``topic``, None when it does not exist yet or the broker cannot say."""
    from exporter.kafka.kafka_python import topic_partitions

    try:
        return topic_partitions(bootstrap_servers).get(topic) or None
    except Exception as error:  # noqa: BLE001 - the key then routes the message instead
        log.warning("cannot read the partitions of %s (%s); summaries are routed by key", topic, error)
        return None


def start_gpu(config: SidecarConfig, registry: CollectorRegistry, nvml: object | None = None) -> Any:
    """The GPU collector's runtime (``.stop()``, ``.ready()``), or None when ``gpu.mode`` is ``off``.

    A node without a driver or GPU does not fail the start: the collector reports
    ``model_health_gpu_collector_up 0``. ``nvml`` is the real library when None.
    """
    if config.gpu.mode == "off":
        return None
    # Imported here: pynvml and the sampler are loaded only when GPUs are watched.
    from exporter.gpu import ModelRef, start_gpu_collector

    # The pod's GPUs are its model's: their energy and time are exported under its name.
    model = ModelRef(config.model.name, config.model.version)
    return start_gpu_collector(config.gpu, registry, nvml=nvml, model=model)


class Sidecar:
    """The running sidecar; :meth:`start` returns once it is serving."""

    def __init__(
        self,
        config: SidecarConfig,
        *,
        producer_factory: ProducerFactory = kafka_producer,
        clock: Callable[[], float] = time.time,
        registry: CollectorRegistry | None = None,
        partition_count: Callable[[str], int | None] | None = None,
        nvml: object | None = None,
    ) -> None:
        self.config = config
        self._nvml = nvml
        self._partition_count = partition_count or (
            lambda topic: topic_partition_count(config.kafka.bootstrap_servers, topic)
        )
        self.clock = clock
        self.registry = registry or CollectorRegistry()
        model = config.model
        self.stats = ServingStats(config.latency.buckets, (model.name, model.version))
        self.queue = RecordQueue(config.queue.max_records)
        self.ingest = Ingest(config, self.queue, self.stats, clock, kafka_ready=lambda: self.forwarder.status.connected)
        self.stage = self._stage()
        waits = self.ingest.waits_for_delivery
        self.forwarder = Forwarder(
            self.queue,
            self.stage,
            lambda: producer_factory(config),
            config.kafka.deadletter_topic,
            ticks=(self.ingest.expire,),
            gather=self.ingest.flush_pairs if waits else None,
            eager=waits,
            clock=clock,
        )
        self.registry.register(BuildInfoCollector(__version__))
        self.registry.register(SidecarCollector(self.stats, lambda: self.queue.held))
        self.gpu: Any = None
        self.server: HttpServer | None = None

    def _stage(self) -> Stage:
        kafka = self.config.kafka
        if kafka.mode == "summaries":
            from exporter.profiles import load_profile

            assert self.config.model.reference is not None  # the config validator saw to it
            profile = load_profile(self.config.model.reference)
            meta = profile.metadata
            if (meta.model, meta.model_version) != (self.config.model.name, self.config.model.version):
                raise UserError(
                    f"{self.config.model.reference}: profile of {meta.model} v{meta.model_version}, "
                    f"but model is {self.config.model.name} v{self.config.model.version}"
                )
            return SummaryStage(
                profile,
                kafka.summaries_topic,
                kafka.summary_bucket_seconds,
                kafka.batch_max_seconds,
                self.stats,
                namespace=self.config.model.namespace,
                partition_count=self._partition_count,
                summary_format=kafka.summary_format,
            )
        return RecordBatches(
            kafka.predictions_topic, kafka.format, kafka.batch_max_records, kafka.batch_max_seconds, self.stats
        )

    def ready(self) -> tuple[bool, str]:
        status = self.forwarder.status
        text = f"serving; kafka {status.detail}; {self.queue.held} records queued"
        if self.gpu is not None:
            text += f"; {self.gpu.ready()[1]}"
        return True, text

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.port

    def start(self) -> Sidecar:
        self.gpu = start_gpu(self.config, self.registry, self._nvml)
        routes = self.ingest.routes()
        app = count_other_refusals(health_app(self.registry, self.ready, routes), self.stats, routes)
        http = self.config.http
        try:
            self.server = HttpServer(app, http.host, http.port).start()
        except OSError as error:
            self._stop_gpu()
            raise UserError(f"http: cannot listen on {http.host}:{http.port}: {error.strerror or error}") from None
        self.forwarder.start()
        log.info(
            "sidecar for %s v%s serving on %s:%d (POST / for KServe, POST /v1/predictions); %s mode to %s",
            self.config.model.name,
            self.config.model.version,
            http.host,
            self.server.port,
            self.config.kafka.mode,
            self.config.kafka.bootstrap_servers,
        )
        return self

    def stop(self, drain_timeout_s: float = 10.0) -> None:
        if self.server is not None:
            self.server.stop()
        self.ingest.drain(self.clock())
        self.forwarder.stop(drain_timeout_s)
        self._stop_gpu()
        log.info("sidecar stopped")

    def _stop_gpu(self) -> None:
        if self.gpu is not None:
            try:
                self.gpu.stop()
            except Exception:  # noqa: BLE001 - shutting down regardless
                log.warning("stopping the GPU collector failed", exc_info=True)
            self.gpu = None


def serve(config: SidecarConfig, stop: threading.Event, on_ready: Callable[[int], None] | None = None) -> None:
    """Run until ``stop`` is set (SIGTERM/SIGINT set it when run from the CLI)."""
    sidecar = Sidecar(config).start()
    if on_ready is not None:
        on_ready(sidecar.port)
    try:
        while not stop.wait(1.0):  # a timed wait lets signal handlers run promptly
            pass
    finally:
        sidecar.stop()
