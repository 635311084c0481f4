"""Per-message format detection, and decoding of one message or a whole consumer batch.

Detection, cheapest test first (the order :data:`~exporter.decoders.formats.FORMATS` gives
its sniffs): a Seldon model topic name; CloudEvent headers
(``ce-``/``ce_``, or a structured or batched CloudEvents content type) mean KServe; the
Arrow IPC continuation marker or file magic means Arrow; a body starting with ``{`` or
``[`` is JSON — KServe when it is a structured CloudEvent (or an array of them), else a
native record, array or NDJSON. Anything else is refused as ``unknown_format``.

:func:`decode_batch` is the consumer's entry point: all messages of a poll go into one
sink, so many one-record JSON messages still make one table per model, and the join
buffers are swept once per batch. Given an ``expected`` format (``kafka.format``), a
message in any other is refused instead (see :mod:`~exporter.decoders.fixed_format`);
the labels topic is always detected.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from exporter.decoders.fixed_format import format_refusal
from exporter.decoders.formats import BY_FORMAT, SNIFFS
from exporter.decoders.join_state import export_joiner, import_joiner
from exporter.decoders.kserve import KServeJoiner
from exporter.decoders.message_headers import Headers, HeadersIn, normalise_headers
from exporter.decoders.seldon import SeldonJoiner
from exporter.decoders.sink import DecodeSink
from exporter.decoders.wire_formats import WireFormat
from exporter.records import Decoded

DEFAULT_LABELS_TOPIC = "model-labels"


@dataclass
class Joiners:
    """The join buffers a consumer keeps between messages, one per split format."""

    kserve: KServeJoiner = field(default_factory=KServeJoiner)
    seldon: SeldonJoiner = field(default_factory=SeldonJoiner)

    def configure(
        self, modes: Mapping[str, str], max_pending: int | None = None, ttl_seconds: float | None = None
    ) -> None:
        """Each model's payload-logger mode (:data:`~exporter.decoders.inference_pairs.LOGGER_MODES`),
        and the buffers' bounds when given."""
        for joiner in (self.kserve, self.seldon):
            joiner.configure(modes)
            joiner.halves.bound(max_pending, ttl_seconds)

    def expire_into(self, sink: DecodeSink, now: float) -> None:
        self.kserve.expire_into(sink, now)
        self.seldon.expire_into(sink, now)

    def expire(self, now: float) -> Decoded:
        """Rows and refusals of halves whose partner is overdue."""
        sink = DecodeSink()
        self.expire_into(sink, now)
        return sink.finish()

    def drain(self, now: float) -> Decoded:
        """Rows and refusals of every waiting half (at shutdown)."""
        sink = DecodeSink()
        self.kserve.drain_into(sink, now)
        self.seldon.drain_into(sink, now)
        return sink.finish()

    def export_state(self) -> dict[str, list[str]]:
        """Both buffers as JSON documents, for a checkpoint (see :mod:`~exporter.decoders.join_state`)."""
        return {"kserve": export_joiner(self.kserve), "seldon": export_joiner(self.seldon)}

    def import_state(self, state: Mapping[str, Sequence[str]]) -> None:
        import_joiner(self.kserve, state.get("kserve", ()))
        import_joiner(self.seldon, state.get("seldon", ()))


@dataclass(frozen=True)
class WireMessage:
    """One consumed message: what a Kafka record or an HTTP request body carries."""

    value: bytes | None
    topic: str
    headers: HeadersIn = ()
    key: bytes | None = None
    record_time: float | None = None  # the broker's timestamp, epoch seconds


class MessageDecoded(NamedTuple):
    format: WireFormat
    decoded: Decoded


class BatchDecoded(NamedTuple):
    decoded: Decoded
    formats: list[WireFormat]  # one per message, in order: the records_consumed_total labels


def detect_format(value: bytes, headers: Headers, topic: str) -> WireFormat:
    """The wire format of one message: the first format in :data:`~exporter.decoders.formats.FORMATS`'
    detection order whose sniff matches it, else unknown.

    >>> detect_format(b'{"model": "fraud"}', (), "model-predictions").value
    'json'
    >>> detect_format(b"\\xff\\xff\\xff\\xff\\x00", (), "model-predictions").value
    'arrow'
    >>> detect_format(b"", (("ce_id", b"1"),), "logs").value
    'kserve'
    """
    for sniff, wire_format in SNIFFS:
        if sniff(value, headers, topic):
            return wire_format
    return WireFormat.UNKNOWN


def decode_message(
    value: bytes | None,
    headers: HeadersIn,
    topic: str,
    now: float,
    joiners: Joiners,
    *,
    key: bytes | None = None,
    record_time: float | None = None,
    labels_topic: str = DEFAULT_LABELS_TOPIC,
) -> MessageDecoded:
    """Detect and decode one message; never raises."""
    batch = decode_batch(
        [WireMessage(value, topic, headers, key, record_time)], now, joiners, labels_topic=labels_topic
    )
    return MessageDecoded(batch.formats[0], batch.decoded)


def decode_batch(
    messages: Iterable[WireMessage],
    now: float,
    joiners: Joiners,
    *,
    labels_topic: str = DEFAULT_LABELS_TOPIC,
    expected: WireFormat | None = None,
) -> BatchDecoded:
    """Detect and decode a batch of messages into one :class:`Decoded`; never raises."""
    sink = DecodeSink()
    formats = [
        decode_into(sink, message, now, joiners, labels_topic=labels_topic, expected=expected) for message in messages
    ]
    joiners.expire_into(sink, now)
    return BatchDecoded(sink.finish(), formats)


def decode_into(
    sink: DecodeSink,
    message: WireMessage,
    now: float,
    joiners: Joiners,
    *,
    labels_topic: str = DEFAULT_LABELS_TOPIC,
    expected: WireFormat | None = None,
) -> WireFormat:
    """Add one message's rows and refusals to ``sink``; returns its format."""
    headers = normalise_headers(message.headers)
    value = bytes(message.value) if message.value is not None else b""
    wire_format = detect_format(value, headers, message.topic)
    labels_only = message.topic == labels_topic
    if expected is not None and not labels_only:
        refusal = format_refusal(expected, wire_format, value)
        if refusal is not None:
            sink.reject(refusal, value, headers)
            # JSON refused under kafka.format json can only be NDJSON: say what it was.
            return WireFormat.NDJSON if wire_format is WireFormat.JSON and expected is WireFormat.JSON else wire_format
    spec = BY_FORMAT[wire_format]
    with sink.guard(spec.refusal, value, headers):
        wire_format = spec.decode_into(sink, message, value, headers, now, joiners, labels_only) or wire_format
    return wire_format
