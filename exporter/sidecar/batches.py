"""Records mode: batches of records to the predictions topic.

Records gather until ``batch_max_records`` of them are waiting or the oldest has waited
``batch_max_seconds``; then they go out as NDJSON or Arrow IPC messages
(:mod:`exporter.sidecar.encoding`) of at most ``batch_max_records`` records, keyed by
model, and the producer is flushed so that the records leave the buffer only once Kafka
has them. Kafka clients retry on their own (``delivery_timeout_ms``); a batch that still
fails is dropped, logged and counted as ``produce_failed``, rather than retried into
duplicates.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pyarrow as pa

from exporter.kafka import KafkaIOError, Producer
from exporter.sidecar.encoding import Format, encode
from exporter.sidecar.forwarder import Flushed
from exporter.sidecar.serving import ServingStats

log = logging.getLogger(__name__)


class RecordBatches:
    """The records mode stage of the forwarder."""

    def __init__(
        self,
        topic: str,
        fmt: Format,
        max_records: int,
        max_seconds: float,
        stats: ServingStats,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.topic = topic
        self.format = fmt
        self.max_records = max_records
        self.max_seconds = max_seconds
        self.stats = stats
        self.monotonic = monotonic
        self._tables: list[pa.Table] = []
        self._records = 0
        self._since: float | None = None
        self.sent_messages = 0
        self.sent_records = 0

    @property
    def held(self) -> int:
        return self._records

    def room(self) -> int:
        """Records to take from the queue before the batch is full."""
        return max(self.max_records - self._records, 1)

    def add(self, tables: list[pa.Table], now: float) -> int:
        """Take records; returns how many the queue may release now (none: they wait here)."""
        for table in tables:
            if table.num_rows:
                self._tables.append(table)
                self._records += table.num_rows
        if self._records and self._since is None:
            self._since = self.monotonic()
        return 0

    def wait_seconds(self) -> float:
        """How long the forwarder may block before this stage is due."""
        if self._since is None:
            return self.max_seconds
        return max(self.max_seconds - (self.monotonic() - self._since), 0.0)

    def due(self, now: float) -> bool:
        return self._records >= self.max_records or (self._records > 0 and self.wait_seconds() <= 0)

    def flush(self, producer: Producer, now: float, final: bool = False) -> Flushed:
        """Send what waits: every record held is done with, delivered or dropped."""
        if not self._records:
            return Flushed(0, delivered=True)
        tables, records = self._tables, self._records
        self._tables, self._records, self._since = [], 0, None
        messages = encode(tables, self.format, self.max_records)
        try:
            for message in messages:
                producer.send(self.topic, message.value, key=message.key)
            producer.flush()
        except KafkaIOError as error:
            log.warning("dropped %d records bound for %s: %s", records, self.topic, error)
            self.stats.records_refused(self.topic, "produce_failed", records)
            return Flushed(records, delivered=False)
        self.sent_messages += len(messages)
        self.sent_records += records
        return Flushed(records, delivered=True)
