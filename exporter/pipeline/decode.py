"""The decode stage: a poll's Kafka messages → decoded tables, in every mode.

:class:`BatchDecoder` hands a whole poll to :func:`~exporter.decoders.detect.decode_batch`
(format detection, or one fixed format, ``kafka.format``), so many one-record messages still
make one table per model and folding cost is paid per table, not per message. The decoders'
KServe request/response and Seldon inputs/outputs join buffers live here between polls and
are checkpointed with the aggregator's state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from exporter.decoders.detect import Joiners, WireMessage, decode_batch
from exporter.decoders.fixed_format import fixed_format
from exporter.kafka import Message
from exporter.records import Decoded

# One topic's messages of a poll, now → what they decoded to, and each message's format label.
Decode = Callable[[list[Message], float], tuple[Decoded, list[str]]]


class BatchDecoder:
    """Decodes a poll's messages, keeping the join buffers between polls."""

    def __init__(self, labels_topic: str, wire_format: str = "auto") -> None:
        self.labels_topic = labels_topic
        self.expected = fixed_format(wire_format)
        self.joiners = Joiners()

    def configure(
        self, logger_modes: Mapping[str, str], max_pending: int | None = None, ttl_seconds: float | None = None
    ) -> None:
        """The configured payload-logger mode of each model and the join buffers' bounds (the
        aggregator sets them at start)."""
        self.joiners.configure(logger_modes, max_pending, ttl_seconds)

    def __call__(self, messages: list[Message], now: float) -> tuple[Decoded, list[str]]:
        wire = [
            WireMessage(m.value, m.topic, m.headers, m.key, m.timestamp_ms / 1000 if m.timestamp_ms else None)
            for m in messages
        ]
        batch = decode_batch(wire, now, self.joiners, labels_topic=self.labels_topic, expected=self.expected)
        return batch.decoded, [f.value for f in batch.formats]

    # Checkpointed with the windows: a half waiting at a checkpoint came from a message
    # before the checkpoint's offsets, so after a crash only the state brings it back.
    def export_state(self) -> dict[str, list[str]]:
        return self.joiners.export_state()

    def import_state(self, state: dict[str, list[str]]) -> None:
        self.joiners.import_state(state)
