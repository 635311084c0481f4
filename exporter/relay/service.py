"""``model-health relay``: wiring the state, the delivery worker, HTTP and signals together.

Start-up order: the config and every secret file are checked first (a bad one fails the start,
naming the field); then the state database opens and deliveries left pending by the last run
(even one killed with ``kill -9``) are picked up again with their original ``webhook-id``;
then the HTTP server comes up with ``/v1/alertmanager``, ``/metrics``, ``/healthz`` and
``/readyz``. On SIGTERM/SIGINT it stops taking notifications, lets attempts in flight finish
and closes the database; pending deliveries wait in it for the next start.
"""

from __future__ import annotations

import logging
import random
import ssl
import threading
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry

from exporter import __version__
from exporter.config import RelayConfig
from exporter.errors import UserError
from exporter.exposition import BuildInfoCollector
from exporter.httpd.server import HttpServer, health_app
from exporter.relay.credentials import load_credentials
from exporter.relay.endpoint import PATH, alertmanager_endpoint
from exporter.relay.intake import Intake
from exporter.relay.retry import RetryPolicy
from exporter.relay.stats import RelayCollector, RelayStats
from exporter.relay.store import RelayStore, StoreError
from exporter.relay.targets import Target
from exporter.relay.worker import DeliveryWorker

log = logging.getLogger(__name__)
# Longest a stop waits for an attempt in flight beyond its own timeouts.
STOP_GRACE_SECONDS = 5.0


def _ssl_context(config: RelayConfig) -> ssl.SSLContext | None:
    ca_file = config.target.ca_file
    if ca_file is None:
        return None
    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise UserError(f"target.ca_file: cannot load {ca_file}: {exc}") from None


def serve(
    config: RelayConfig,
    stop: threading.Event | None = None,
    on_ready: Callable[[int], None] | None = None,
    clock: Callable[[], float] = time.time,
) -> None:
    """Run the relay until ``stop`` is set (SIGTERM/SIGINT set it when run from the CLI).

    ``clock`` stamps admissions and measures cooldowns; deliveries and their signatures always
    use wall time (receivers refuse a ``webhook-timestamp`` more than five minutes off).
    """
    stop = stop or threading.Event()
    credentials = load_credentials(config)
    ssl_context = _ssl_context(config)
    try:
        store = RelayStore(config.state.dir)
    except StoreError as exc:
        raise UserError(f"state.dir: {exc}") from None
    target_config = config.target
    stats = RelayStats(target_config.kind)
    state = config.state

    def maintain(now: float) -> None:
        store.prune(
            now, state.dedup_retention_seconds, state.history_retention_seconds, config.retrain.cooldown_seconds
        )

    worker = DeliveryWorker(
        store,
        Target(target_config, credentials),
        RetryPolicy.from_config(target_config.retry),
        stats,
        connect_timeout=target_config.timeouts.connect_seconds,
        read_timeout=target_config.timeouts.read_seconds,
        concurrency=target_config.concurrency,
        ssl_context=ssl_context,
        rng=random.SystemRandom(),
        maintenance=maintain,
    )
    server: HttpServer | None = None
    try:
        pending = store.pending_count()
        if pending:
            log.info("resuming %d pending deliver%s from %s", pending, "y" if pending == 1 else "ies", store.path)
        worker.start()
        intake = Intake(store, config.retrain, stats, worker.wake, clock)
        registry = CollectorRegistry()
        registry.register(BuildInfoCollector(__version__))
        registry.register(RelayCollector(stats))

        def ready() -> tuple[bool, str]:
            return (True, "ready") if worker.alive else (False, "delivery worker stopped")

        routes = {PATH: alertmanager_endpoint(intake, credentials.auth_token, config.http.max_body_bytes, stats)}
        try:
            server = HttpServer(health_app(registry, ready, routes), config.http.host, config.http.port).start()
        except OSError as exc:
            raise UserError(
                f"http: cannot listen on {config.http.host}:{config.http.port}: {exc.strerror or exc}"
            ) from None
        log.info(
            "relay listening on %s:%d (%s); %s target, alert %s, cooldown %gs",
            config.http.host,
            server.port,
            PATH,
            target_config.kind,
            config.retrain.alert_name,
            config.retrain.cooldown_seconds,
        )
        if on_ready is not None:
            on_ready(server.port)
        stop.wait()
        log.info("stopping: no new notifications; waiting for deliveries in flight")
    finally:
        if server is not None:
            server.stop()
        worker.stop(target_config.timeouts.connect_seconds + target_config.timeouts.read_seconds + STOP_GRACE_SECONDS)
        store.close()
