"""The bounded buffer between HTTP ingest and Kafka, counted in records.

Records count from the moment ingest accepts them until the forwarder has handed them to
Kafka (sent and flushed) or folded them into a summary, so a batch being sent still
takes room: the buffer never holds more than ``max_records`` plus one batch (a single
request larger than ``max_records`` is taken only into an empty buffer, so that it cannot be
refused forever, and the body size limit bounds it; KServe pairs, gathered after their
events were admitted, may overshoot by one batch of ``kafka.batch_max_records``). When the
buffer is full ingest answers 503.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

import pyarrow as pa

from exporter.records import Rejected


@dataclass(frozen=True)
class Outgoing:
    """One item for the forwarder: decoded records, or a refused record for the dead-letter topic."""

    table: pa.Table | None = None
    dead_letter: Rejected | None = None

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
                if left <= 0:
                    return []
                self._ready.wait(left)
            taken = [self._items.popleft()]
            records = taken[0].records
            while self._items and records + self._items[0].records <= max_records:
                item = self._items.popleft()
                taken.append(item)
                records += item.records
            return taken

    def release(self, records: int) -> None:
        """The forwarder is done with ``records`` records (sent, folded or dropped)."""
        with self._ready:
            self._held = max(self._held - records, 0)

    def pending(self) -> int:
        """Records queued and not yet taken."""
        with self._ready:
            return sum(item.records for item in self._items)
