"""Refused records go to the dead-letter topic whole, with why and where in headers.

Someone reading the dead-letter topic should be able to tell from the headers alone why a
record was refused and where it came from, then replay it by hand once the cause is fixed.
"""

from __future__ import annotations

from collections.abc import Sequence

from exporter.kafka.types import Header, Message, Producer
from exporter.records import Rejected

DEFAULT_TOPIC = "model-health-deadletter"
REASON_HEADER = "model-health-reason"
DETAIL_HEADER = "model-health-detail"
SOURCE_TOPIC_HEADER = "model-health-source-topic"
SOURCE_PARTITION_HEADER = "model-health-source-partition"
SOURCE_OFFSET_HEADER = "model-health-source-offset"
OUR_HEADERS = frozenset(
    {REASON_HEADER, DETAIL_HEADER, SOURCE_TOPIC_HEADER, SOURCE_PARTITION_HEADER, SOURCE_OFFSET_HEADER}
)
# Details can quote a whole bad payload; the payload itself is already in the value.
MAX_DETAIL_BYTES = 1024


def _clip(text: str, limit: int) -> bytes:
    data = text.encode("utf-8")
    if len(data) <= limit:
        return data
    return data[: limit - 3].decode("utf-8", errors="ignore").encode("utf-8") + b"..."


def dead_letter_headers(rejected: Rejected, source: Message | None = None) -> tuple[Header, ...]:
    """The original headers, then ours; a record refused twice keeps only the newest reason."""
    headers: list[Header] = [(name, value) for name, value in rejected.headers if name not in OUR_HEADERS]
    headers.append((REASON_HEADER, rejected.reason.value.encode()))
    headers.append((DETAIL_HEADER, _clip(rejected.detail, MAX_DETAIL_BYTES)))
    if source is not None:
        headers.append((SOURCE_TOPIC_HEADER, source.topic.encode()))
        headers.append((SOURCE_PARTITION_HEADER, str(source.partition).encode()))
        headers.append((SOURCE_OFFSET_HEADER, str(source.offset).encode()))
    return tuple(headers)


class DeadLetter:
    """Writes :class:`~exporter.records.Rejected` records through a :class:`Producer`.

    Sends batch like any other; call the producer's ``flush`` before committing the source
    offsets, or a crash in between loses the refused records.
    """

    def __init__(self, producer: Producer, topic: str = DEFAULT_TOPIC) -> None:
        self._producer = producer
        self.topic = topic

    def write(self, rejected: Rejected, source: Message | None = None) -> None:
        """``source`` is the Kafka message the record came in (None for HTTP ingest)."""
        self._producer.send(
            self.topic,
            rejected.payload,
            key=source.key if source is not None else None,
            headers=dead_letter_headers(rejected, source),
        )

    def write_all(self, rejected: Sequence[Rejected], source: Message | None = None) -> None:
        for record in rejected:
            self.write(record, source)
