"""What the process-level reliability tests share: the aggregator as a process, steady traffic, RSS.

The aggregator's config, start, readiness and metrics helpers are the ones
``tests/exporter/aggregator/test_broker*.py`` use (imported, not copied); this adds what a
long, faulty run needs: a process handle that knows how to die (``kill -9``) and what it
weighs (RSS from ``/proc``), a producer thread that writes uniquely numbered records at a
steady pace until told to stop and says exactly which ones the broker acknowledged, and
a reader that counts what a topic holds.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from exporter.demo.synthetic import synthetic_table
from exporter.kafka import KafkaIOError, open_consumer, open_producer
from exporter.kafka.embedded import EmbeddedBroker
from tests.exporter.aggregator.test_broker import SHAPE, metrics, samples  # noqa: F401 - samples re-exported
from tests.exporter.aggregator.test_broker import stop as stop_process
from tests.exporter.aggregator.test_broker_outage import ready, start, write_config  # noqa: F401 - re-exported
from tests.support.broker import group_settings, producer_settings

MODEL_KEY = 'model="fraud",model_version="7"'
PREDICTIONS_TOTAL = f"model_health_predictions_total{{{MODEL_KEY}}}"
# A killed member never leaves the group: the next one joins after its session (2 s) ends,
# as a restarted pod would (see the README's known issue with kafka-python on tansu).
SESSION_EXPIRY_S = 2.5


def rss_bytes(pid: int) -> int | None:
    """Resident set size of ``pid`` from /proc (None once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


class AggregatorProcess:
    """``model-health aggregator --config`` as a child process that can be killed and restarted."""

    def __init__(self, deployment: dict) -> None:
        self.deployment = deployment
        self.port: int = deployment["port"]
        self.process: subprocess.Popen | None = None
        self.starts = 0
        self.kills = 0

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None and self.process.poll() is None else None

    def start(self) -> AggregatorProcess:
        self.process = start(self.deployment)
        self.starts += 1
        return self

    def kill(self) -> None:
        """SIGKILL: no checkpoint, no goodbye to the group."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.kills += 1

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            stop_process(self.process)

    def metrics(self) -> dict[str, float]:
        return metrics(self.port)

    def counted(self) -> float | None:
        return self.metrics().get(PREDICTIONS_TOTAL)

    def log(self) -> str:
        path = self.deployment["dir"] / "aggregator.log"
        return path.read_text(errors="replace") if path.exists() else ""


def records(first: int, count: int, seed: int) -> list[dict]:
    """Records ``first … first+count-1`` of model fraud v7 (request ids ``r<n>``), without event times."""
    table = synthetic_table(count, seed=seed + first, drift=True, **SHAPE).to_pylist()
    out = []
    for offset, row in enumerate(table):
        features = {k: v for k, v in row.items() if k not in ("prediction", "label") and v == v}
        out.append(
            {
                "model": "fraud",
                "model_version": "7",
                "request_id": f"r{first + offset}",
                "features": features,
                "prediction": row["prediction"],
                "latency_ms": 10.0,
                "_label": row["label"],
            }
        )
    return out


@dataclass
class SteadyProducer:
    """A thread producing ``per_message``-record NDJSON messages at ``records_per_second``.

    Stops after ``total`` records or when :meth:`stop` is called. Every message is flushed on
    its own; one whose flush fails (the broker away past the delivery timeout) is counted in
    ``unacknowledged`` — it may or may not be in the log. ``acknowledged`` are in it for sure.

    Event times: spread evenly over the hour before the start, so any number of records
    stays inside a 1-day window; or, with ``live``, the time of sending, as in production
    (windows then turn over). With ``labels_topic``, every other record's label follows it.
    """

    broker: EmbeddedBroker
    topic: str
    total: int
    records_per_second: float
    per_message: int = 20
    seed: int = 7
    live: bool = False
    labels_topic: str | None = None
    acknowledged: int = 0
    unacknowledged: int = 0
    labels_sent: int = 0
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> SteadyProducer:
        self._thread = threading.Thread(target=self._run, name="steady-producer", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.join()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def done(self) -> bool:
        return self._thread is not None and not self._thread.is_alive()

    @property
    def sent(self) -> int:
        return self.acknowledged + self.unacknowledged

    def _run(self) -> None:
        # Long delivery timeouts: a broker restart is ridden out by the client's own retries.
        producer = open_producer(
            producer_settings(
                self.broker, delivery_timeout_ms=300_000, request_timeout_ms=10_000, bootstrap_timeout_s=60.0
            )
        )
        started = time.monotonic()
        base = time.time() - 3_660.0
        try:
            pending: list[dict] = []
            n = 0
            while n < self.total and not self._stop.is_set():
                if not pending:
                    pending = records(n, min(2_000, self.total - n), self.seed)
                count = min(self.per_message, len(pending))
                batch, pending = pending[:count], pending[count:]
                due = started + (n + count) / self.records_per_second
                if (wait := due - time.monotonic()) > 0:
                    self._stop.wait(wait)
                now = time.time()
                lines, labels = [], []
                for offset, record in enumerate(batch):
                    label = record.pop("_label")
                    record["timestamp"] = now if self.live else base + 3_600.0 * (n + offset) / max(self.total, 1)
                    lines.append(json.dumps(record))
                    if self.labels_topic is not None and (n + offset) % 2 == 0:
                        labels.append(
                            json.dumps(
                                {
                                    "model": "fraud",
                                    "request_id": record["request_id"],
                                    "label": label,
                                    "timestamp": record["timestamp"],
                                }
                            )
                        )
                try:
                    producer.send(self.topic, "\n".join(lines).encode(), key=str(n).encode())
                    if labels:
                        producer.send(self.labels_topic, "\n".join(labels).encode(), key=str(n).encode())
                    producer.flush(timeout_s=300)
                    self.acknowledged += count
                    self.labels_sent += len(labels)
                except KafkaIOError as error:
                    self.unacknowledged += count
                    self.errors.append(str(error)[:200])
                n += count
        finally:
            producer.close()


def records_in_topic(
    broker: EmbeddedBroker, topic: str, expected_at_least: int, timeout_s: float = 120.0
) -> tuple[int, int]:
    """(records, distinct request ids) the topic holds, read from the start by a fresh group."""
    records, ids = request_ids_in_topic(broker, topic, expected_at_least, timeout_s)
    return records, len(ids)


def request_ids_in_topic(
    broker: EmbeddedBroker, topic: str, expected_at_least: int, timeout_s: float = 120.0
) -> tuple[int, set[str]]:
    """(records, their request ids) in the topic, read from the start until it is quiet."""
    consumer = open_consumer(group_settings(broker))
    seen: set[str] = set()
    records = 0
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + timeout_s
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            messages = consumer.poll(1.0, max_records=1_000)
            for message in messages:
                for line in message.value.splitlines():
                    records += 1
                    seen.add(json.loads(line)["request_id"])
            if messages:
                quiet_since = time.monotonic()
            elif records >= expected_at_least and time.monotonic() - quiet_since > 3.0:
                break
    finally:
        consumer.close()
    return records, seen


def poll_until(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.25) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]
