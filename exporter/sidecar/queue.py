"""The bounded buffer between HTTP ingest and Kafka, counted in records.

Records count from the moment ingest accepts them until the forwarder has handed them to
Kafka (sent and flushed) or folded them into a summary, so a batch being sent still
takes room: the buffer never holds more than ``max_records`` plus one batch (a single
request larger than ``max_records`` is taken only into an empty buffer, so that it cannot be
refused forever, and the body size limit bounds it; KServe pairs, gathered after their
events were admitted, may overshoot by one batch of ``kafka.batch_max_records``). When the
buffer is full ingest answers 503.

A :class:`Receipt` rides with the tables of one request (or of one batch of KServe pairs):
with ``queue.acknowledge: delivered`` the request is answered only once the forwarder has
settled every one of its tables — delivered to Kafka, or dropped — so a 2xx means Kafka
has the records and a ``kill -9`` of the sidecar loses none that were answered for.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from enum import Enum

import pyarrow as pa

from exporter.records import Rejected


class Outcome(Enum):
    """Where a receipt's tables ended up."""

    PENDING = "pending"  # not all settled yet
    DELIVERED = "delivered"  # every table is in Kafka
    DROPPED = "dropped"  # Kafka refused at least one table (counted as ``produce_failed``)
    WITHDRAWN = "withdrawn"  # the request stopped waiting before any table was sent


class Receipt:
    """What a request waits on: its tables, each settled once by the forwarder.

    ``expect`` arms it with the number of tables queued; until then it is pending (a KServe
    pair batch is still gathering rows). A request that gives up waiting may ``withdraw``
    while the forwarder has started on none of its tables: they are then skipped, never
    sent, so the client's retry cannot duplicate them. A ``shared`` receipt (one batch of
    pairs answered to many requests) cannot be withdrawn.
    """

    def __init__(self, shared: bool = False) -> None:
        self.shared = shared
        self._changed = threading.Condition()
        self._armed = False
        self._open = 0
        self._started = 0
        self._dropped = 0
        self._withdrawn = False

    def expect(self, tables: int) -> None:
        with self._changed:
            self._armed = True
            self._open += tables
            self._changed.notify_all()

    def start(self) -> bool:
        """The forwarder is about to send one table; False when it was withdrawn (skip it)."""
        with self._changed:
            if self._withdrawn:
                return False
            self._started += 1
            return True

    def settle(self, delivered: bool) -> None:
        with self._changed:
            self._open -= 1
            self._dropped += not delivered
            self._changed.notify_all()

    def withdraw(self) -> bool:
        """Take the tables back if none has been started on; True when withdrawn."""
        with self._changed:
            if self.shared or self._started or self._open == 0 and self._armed:
                return False
            self._withdrawn = True
            return True

    @property
    def outcome(self) -> Outcome:
        if self._withdrawn:
            return Outcome.WITHDRAWN
        if not self._armed or self._open:
            return Outcome.PENDING
        return Outcome.DROPPED if self._dropped else Outcome.DELIVERED

    def wait(self, timeout_s: float) -> Outcome:
        """The outcome once settled, or PENDING after ``timeout_s``."""
        with self._changed:
            self._changed.wait_for(lambda: self.outcome is not Outcome.PENDING, timeout_s)
            return self.outcome


@dataclass(frozen=True)
class Outgoing:
    """One item for the forwarder: decoded records, or a refused record for the dead-letter topic.

    ``receipt``, when set, is settled once the table is delivered or dropped.
    """

    table: pa.Table | None = None
    dead_letter: Rejected | None = None
    receipt: Receipt | None = None

    @property
    def records(self) -> int:
        return self.table.num_rows if self.table is not None else 1


class RecordQueue:
    """A FIFO of :class:`Outgoing` items holding at most ``max_records`` records."""

    def __init__(self, max_records: int) -> None:
        if max_records < 1:
            raise ValueError("max_records must be at least 1")
        self.max_records = max_records
        self._items: deque[Outgoing] = deque()
        self._held = 0  # queued plus taken but not yet released
        self._ready = threading.Condition()
        self._woken = False

    @property
    def held(self) -> int:
        """Records accepted and not yet released by the forwarder."""
        return self._held

    def full(self) -> bool:
        return self._held >= self.max_records

    def offer(self, items: list[Outgoing], force: bool = False) -> bool:
        """Queue all of ``items`` or none of them; False when they do not fit.

        ``force`` queues them anyway: for records already answered for (KServe pairs
        gathered into one batch after their requests were admitted), which may overshoot
        ``max_records`` by that one batch.
        """
        records = sum(item.records for item in items)
        if records == 0:
            return True
        with self._ready:
            if not force and self._held and self._held + records > self.max_records:
                return False
            self._items.extend(items)
            self._held += records
            self._ready.notify()
        return True

    def take(self, max_records: int, timeout_s: float) -> list[Outgoing]:
        """Items totalling up to ``max_records`` (at least one item if any arrives in time).

        The records stay held until :meth:`release`: the caller still has them in memory.
        """
        deadline = time.monotonic() + timeout_s
        with self._ready:
            while not self._items:
                left = deadline - time.monotonic()
                if left <= 0 or self._woken:
                    self._woken = False
                    return []
                self._ready.wait(left)
            self._woken = False
            taken = [self._items.popleft()]
            records = taken[0].records
            while self._items and records + self._items[0].records <= max_records:
                item = self._items.popleft()
                taken.append(item)
                records += item.records
            return taken

    def wake(self) -> None:
        """End the forwarder's wait in :meth:`take` now, items or not (a pair batch wants out)."""
        with self._ready:
            self._woken = True
            self._ready.notify()

    def release(self, records: int) -> None:
        """The forwarder is done with ``records`` records (sent, folded or dropped)."""
        with self._ready:
            self._held = max(self._held - records, 0)

    def empty(self) -> bool:
        """Nothing queued and not yet taken (asked on every turn of the forwarder: O(1))."""
        with self._ready:
            return not self._items
