"""The forwarder thread: the queue's records out to Kafka, through one stage.

One loop, on its own thread, does everything that talks to Kafka: it connects (retrying
with backoff, logged once per attempt, never crashing), takes records from the
:class:`~exporter.sidecar.queue.RecordQueue`, hands them to its stage —
:class:`~exporter.sidecar.batches.RecordBatches` or
:class:`~exporter.sidecar.summaries.SummaryStage` — writes refused records to the
dead-letter topic, and calls the tick callbacks (the KServe join buffer's expiry) at
least every :data:`TICK_SECONDS`. While Kafka is away records stay in the queue, so
ingest answers 503 once it is full instead of growing.

On :meth:`Forwarder.stop` the loop takes what is left in the queue, sends it (publishes
every open summary) and flushes, within ``drain_timeout_s``.

Each flush settles the :class:`~exporter.sidecar.queue.Receipt` of every table it carried,
delivered or dropped. When requests wait on their receipts (``eager``, for ``queue.acknowledge:
delivered``), a batch goes out as soon as the queue has nothing more to add to it rather
than after ``batch_max_seconds``: requests that arrive while one flush is on the wire make
up the next batch, so a client waiting for its answer costs one round trip to Kafka, and
many clients share it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa

from exporter.kafka import Backoff, DeadLetter, KafkaIOError, Producer
from exporter.records import Rejected
from exporter.sidecar.queue import Outgoing, Receipt, RecordQueue

log = logging.getLogger(__name__)

TICK_SECONDS = 0.5


@dataclass(frozen=True)
class Flushed:
    """What one flush of a stage did."""

    records: int  # records the queue may release now
    delivered: bool  # False: Kafka refused what the flush carried, and it was dropped


class Stage(Protocol):
    @property
    def held(self) -> int: ...

    def room(self) -> int: ...

    def wait_seconds(self) -> float: ...

    def add(self, tables: list[pa.Table], now: float) -> int: ...

    def due(self, now: float) -> bool: ...

    def flush(self, producer: Producer, now: float, final: bool = False) -> Flushed: ...


class KafkaStatus:
    """What /readyz and the logs say about Kafka; written by the forwarder thread."""

    def __init__(self) -> None:
        self.connected = False
        self.detail = "connecting"

    def set(self, connected: bool, detail: str) -> None:
        self.connected, self.detail = connected, detail


class Forwarder:
    def __init__(
        self,
        queue: RecordQueue,
        stage: Stage,
        connect: Callable[[], Producer],
        deadletter_topic: str,
        *,
        ticks: tuple[Callable[[float], None], ...] = (),
        gather: Callable[[], None] | None = None,
        eager: bool = False,
        clock: Callable[[], float] = time.time,
        backoff: Backoff = Backoff(initial_s=0.5, max_s=30.0),
    ) -> None:
        self.queue = queue
        self.stage = stage
        self._connect = connect
        self.deadletter_topic = deadletter_topic
        self.ticks = ticks
        # Called each turn before taking from the queue: queues what gathered elsewhere (KServe pairs).
        self.gather = gather
        self.eager = eager
        self._awaiting: list[Receipt] = []  # one per table handed to the stage and not yet flushed
        self.clock = clock
        self.backoff = backoff
        self.status = KafkaStatus()
        self.producer: Producer | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sidecar-forwarder", daemon=True)
        self._drain_deadline = 0.0
        self.failed: BaseException | None = None

    def start(self) -> Forwarder:
        self._thread.start()
        return self

    def stop(self, drain_timeout_s: float = 10.0) -> None:
        """Send what is left (within ``drain_timeout_s``), flush and close the producer."""
        self._drain_deadline = time.monotonic() + drain_timeout_s
        self._stop.set()
        self._thread.join(timeout=drain_timeout_s + 5.0)

    # ------------------------------------------------------------------ the loop

    def _run(self) -> None:
        try:
            self._loop()
            self._drain()
        except BaseException as error:  # noqa: BLE001 - logged; ingest keeps answering (503 when full)
            self.failed = error
            self.status.set(False, f"forwarder stopped: {error}")
            log.exception("the forwarder stopped")
        finally:
            if self.producer is not None:
                try:
                    self.producer.close()
                except Exception:  # noqa: BLE001 - closing is best effort
                    log.warning("closing the Kafka producer failed", exc_info=True)

    def _loop(self) -> None:
        delays = self.backoff.delays()
        next_attempt = 0.0
        last_tick = 0.0
        while not self._stop.is_set():
            if time.monotonic() - last_tick >= TICK_SECONDS:
                self._tick()
                last_tick = time.monotonic()
            if self.producer is None:
                if time.monotonic() >= next_attempt:
                    if self._try_connect():
                        delays = self.backoff.delays()
                    else:
                        next_attempt = time.monotonic() + next(delays)
                self._stop.wait(min(TICK_SECONDS, max(next_attempt - time.monotonic(), 0.05)))
                continue
            if self.gather is not None:
                self.gather()
            wait = 0.0 if self.eager and self.stage.held else min(self.stage.wait_seconds(), TICK_SECONDS)
            self._take(self.queue.take(self.stage.room(), wait))
            now = self.clock()
            if self._due(now):
                self._flush(now)

    def _due(self, now: float) -> bool:
        if self.stage.due(now):
            return True
        # Requests are waiting on what the stage holds, and nothing else is queued to join it.
        return self.eager and self.stage.held > 0 and self.queue.empty()

    def _flush(self, now: float, final: bool = False) -> None:
        assert self.producer is not None
        flushed = self.stage.flush(self.producer, now, final)
        self.queue.release(flushed.records)
        awaiting, self._awaiting = self._awaiting, []
        for receipt in awaiting:
            receipt.settle(flushed.delivered)

    def _try_connect(self) -> bool:
        try:
            self.producer = self._connect()
        except KafkaIOError as error:
            self.status.set(False, f"unreachable: {error}")
            log.warning("Kafka unreachable (%s); %d records waiting", error, self.queue.held)
            return False
        self.status.set(True, "connected")
        log.info("connected to Kafka")
        return True

    def _tick(self) -> None:
        now = self.clock()
        for tick in self.ticks:
            try:
                tick(now)
            except Exception:  # noqa: BLE001 - one failed tick must not stop forwarding
                log.exception("periodic task failed")

    def _take(self, items: list[Outgoing]) -> None:
        if not items:
            return
        tables: list[pa.Table] = []
        withdrawn = 0
        for item in items:
            if item.table is None:
                continue
            if item.receipt is not None:
                if not item.receipt.start():
                    withdrawn += item.records  # its request gave up waiting and told its client so
                    continue
                self._awaiting.append(item.receipt)
            tables.append(item.table)
        self.queue.release(withdrawn)
        letters: list[Rejected] = [item.dead_letter for item in items if item.dead_letter is not None]
        if letters:
            self._dead_letters(letters)
        if tables:
            self.queue.release(self.stage.add(tables, self.clock()))

    def _dead_letters(self, letters: list[Rejected]) -> None:
        assert self.producer is not None
        writer = DeadLetter(self.producer, self.deadletter_topic)
        try:
            writer.write_all(letters)
        except KafkaIOError as error:
            log.warning("could not dead-letter %d refused records: %s", len(letters), error)
        # Small and already counted as refused: they leave the buffer once handed over.
        self.queue.release(len(letters))

    def _drain(self) -> None:
        """At stop: whatever the queue holds goes out, then everything is flushed."""
        self._tick()
        if self.producer is None:
            if not self._try_connect():
                log.warning("stopping without Kafka: %d records not forwarded", self.queue.held)
                return
        assert self.producer is not None
        while time.monotonic() < self._drain_deadline:
            if self.gather is not None:
                self.gather()
            items = self.queue.take(self.stage.room(), 0.0)
            if not items:
                break
            self._take(items)
            if self.stage.due(self.clock()):
                self._flush(self.clock())
        self._flush(self.clock(), final=True)
        try:
            self.producer.flush()
        except KafkaIOError as error:
            log.warning("final flush failed: %s", error)
        if self.queue.held:
            log.warning("stopped with %d records not forwarded", self.queue.held)
