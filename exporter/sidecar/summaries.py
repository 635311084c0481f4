"""Edge mode (``kafka.mode: summaries``): one mergeable summary per model and time bucket.

Records are folded, as they arrive, into the reference profile's frozen bins by the
aggregator's own fold (:class:`~exporter.pipeline.fold.Folder`, slots of
``kafka.summary_bucket_seconds``), so the sidecar holds a few fixed-size summaries instead
of records. A bucket is published to ``kafka.summaries_topic`` once the clock has passed
its end by ``batch_max_seconds`` (records are logged with a small delay), as one
:mod:`exporter.pipeline.summary_wire` message keyed by model. Records that arrive for a bucket
already published go out in a later message for the same bucket: messages are deltas
and the consumer adds them. No more than :data:`MAX_OPEN_BUCKETS` buckets are held: far
out-of-order event times flush the oldest early rather than grow memory.

Every producer of a model's summaries must write them to the same partition of the
summaries topic (:mod:`exporter.aggregator.scaleout.routing`: the Java client's murmur2 rule on the
model name), whatever its client's default partitioner: the partition is computed here
from the topic's partition count, read once from the broker.

Records of another model or version than the profile's cannot be folded into its bins:
they are counted as ``unknown_model`` and dropped (the one model-identity rule,
:mod:`exporter.pipeline.model_versions`), as are rows whose numeric features hold text
(``bad_feature_value``).
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable, Iterable

import pyarrow as pa

from detectors.profile import ReferenceProfile
from exporter.aggregator.scaleout.routing import summary_partition
from exporter.kafka import KafkaIOError, Producer
from exporter.pipeline.buckets import Bucket, add_into
from exporter.pipeline.fold import Folder, Partials
from exporter.pipeline.summary_wire import FORMAT_VERSION, SummaryHeader, encode_summary, kafka_headers
from exporter.records import Rejected
from exporter.sidecar.forwarder import Flushed
from exporter.sidecar.serving import ServingStats

log = logging.getLogger(__name__)

MAX_OPEN_BUCKETS = 8


def new_producer_id() -> str:
    """Unique per process start: host, pid and a random part."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:12]}"


class SummaryStage:
    """The summaries mode stage of the forwarder."""

    def __init__(
        self,
        profile: ReferenceProfile,
        topic: str,
        bucket_seconds: int,
        grace_seconds: float,
        stats: ServingStats,
        *,
        namespace: str | None = None,
        producer_id: str | None = None,
        stats_topic: str | None = None,
        partition_count: Callable[[str], int | None] | None = None,
        summary_format: int = FORMAT_VERSION,
    ) -> None:
        self.profile = profile
        self.summary_format = summary_format
        self.topic = topic
        self.bucket_seconds = bucket_seconds
        self.grace_seconds = grace_seconds
        self.stats = stats
        self.stats_topic = stats_topic or topic
        self.namespace = namespace
        self.producer_id = producer_id or new_producer_id()
        self.sequence = 0
        self.model = profile.metadata.model
        self.version = profile.metadata.model_version
        # No lateness here: every record counts; how late is too late is the consumer's call.
        # Serving counters are the ingest's (ServingStats): the fold's are not used.
        self.folder = Folder({(self.model, self.version): profile}, bucket_seconds, latency_bounds=())
        self.open: dict[int, Bucket] = {}  # bucket start → what was folded since its last message
        self.sent_messages = 0
        self.sent_records = 0
        self._partition_count = partition_count
        self._partition: int | None = None

    def _target_partition(self) -> int | None:
        """The summaries partition that owns this model; None leaves it to the key."""
        if self._partition is None and self._partition_count is not None:
            count = self._partition_count(self.topic)
            if count:
                self._partition = summary_partition(self.model, count)
        return self._partition

    @property
    def held(self) -> int:
        return 0  # records are folded at once; what is held is summaries, bounded in size

    def room(self) -> int:
        return 10_000

    def wait_seconds(self) -> float:
        return 0.5

    def add(self, tables: list[pa.Table], now: float) -> int:
        """Fold records into their buckets; all of them may leave the queue right away."""
        records = 0
        partials: Partials = {}
        for table in tables:
            records += table.num_rows
            self.folder.fold_predictions(partials, self.stats_topic, table, self._refuse)
        for partial in partials.values():
            for part in partial.versions.values():
                for start, bucket in part.predictions.items():
                    assert isinstance(bucket, Bucket)  # folded here: packed slots only come off the wire
                    add_into(self.open, start, bucket)
        return records

    def _refuse(self, topic: str, rejected: Iterable[Rejected], rows: int | None = None) -> None:
        for item in rejected:
            self.stats.records_refused(topic, item.reason.value, 1 if rows is None else rows)

    def due(self, now: float) -> bool:
        ring = self.open
        if len(ring) > MAX_OPEN_BUCKETS:
            return True
        return any(start + self.bucket_seconds + self.grace_seconds <= now for start in ring)

    def flush(self, producer: Producer, now: float, final: bool = False) -> Flushed:
        """Publish closed buckets (every bucket when ``final``); no records were held."""
        ring = self.open
        starts = sorted(ring)
        closed = [s for s in starts if final or s + self.bucket_seconds + self.grace_seconds <= now]
        overflow = len(starts) - MAX_OPEN_BUCKETS
        if overflow > 0:
            closed = sorted(set(closed) | set(starts[:overflow]))
        if not closed:
            return Flushed(0, delivered=True)
        buckets = [(start, ring.pop(start)) for start in closed]
        records = 0
        try:
            partition = self._target_partition()
            for start, bucket in buckets:
                header = SummaryHeader(
                    model=self.model,
                    model_version=self.version,
                    model_namespace=self.namespace,
                    bucket_start=int(start),
                    bucket_seconds=self.bucket_seconds,
                    producer_id=self.producer_id,
                    sequence=self.sequence,
                    records=bucket.records,
                    profile_created_at=self.profile.metadata.created_at,
                    format_version=self.summary_format,
                )
                self.sequence += 1
                records += bucket.records
                value = encode_summary(header, bucket)
                producer.send(self.topic, value, key=header.key, headers=kafka_headers(header), partition=partition)
            producer.flush()
        except KafkaIOError as error:
            log.warning("dropped summaries of %d records bound for %s: %s", records, self.topic, error)
            self.stats.records_refused(self.stats_topic, "produce_failed", records)
            return Flushed(0, delivered=False)
        self.sent_messages += len(buckets)
        self.sent_records += records
        return Flushed(0, delivered=True)
