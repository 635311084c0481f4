"""KServe and Seldon request/response halves in scale-out: read in stage 1, paired in stage 2.

The two halves of one logged inference are two Kafka messages. On an unkeyed,
multi-partition topic they often land on partitions different stage-1 replicas hold, so
stage 1 does not pair them. It reads each half (:func:`read_halves`: the decoders' own
reading, up to the model's name) and ships it, unjoined and raw payload included, in its
model's partial to the model's one owner. There :class:`Pairing` — the join buffers of one
summaries partition — pairs them in the partition's log order, with the partition's
watermark (the newest publication time stage 1 stamped) as its clock. Pairs, expired
request halves (emitted with no prediction, status ``no_response``) and refusals
(``unmatched_response``, ``shape_mismatch``) come out as a :class:`~exporter.records.Decoded`
per source topic, which stage 2 folds with the same code stage 1 folds records with
(:mod:`exporter.pipeline.fold`). The join buffers are part of the partition's state, so
they are checkpointed with it and rebuilt the same by a replay: nothing here reads a wall
clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from exporter.aggregator.scaleout.wire import CarriedHalf
from exporter.decoders.detect import Joiners, detect_format
from exporter.decoders.formats import BY_FORMAT
from exporter.decoders.inference_pairs import InferenceHalf
from exporter.decoders.joiner import Side
from exporter.decoders.kserve import kserve_halves
from exporter.decoders.message_headers import normalise_headers
from exporter.decoders.seldon import seldon_half, topic_of
from exporter.decoders.sink import DecodeSink
from exporter.decoders.wire_formats import WireFormat
from exporter.kafka import Message
from exporter.records import Decoded

SPLIT_FORMATS = (WireFormat.KSERVE, WireFormat.SELDON)


def read_halves(
    sink: DecodeSink, message: Message, labels_topic: str, expected: WireFormat | None = None
) -> tuple[str, list[tuple[Side, InferenceHalf]]] | None:
    """The format and halves of a KServe or Seldon message, refusals into ``sink``; None
    for any other message (and for one the fixed ``kafka.format`` refuses: the decoder
    refuses it as single mode does)."""
    if message.topic == labels_topic:
        return None
    headers = normalise_headers(message.headers)
    value = bytes(message.value) if message.value is not None else b""
    wire_format = detect_format(value, headers, message.topic)
    if wire_format not in SPLIT_FORMATS or (expected is not None and expected is not wire_format):
        return None
    halves: list[tuple[Side, InferenceHalf]] = []
    with sink.guard(BY_FORMAT[wire_format].refusal, value, headers):
        if wire_format is WireFormat.KSERVE:
            halves = kserve_halves(sink, value, headers)
        else:
            record_time = message.timestamp_ms / 1000 if message.timestamp_ms else None
            read = seldon_half(sink, value, headers, message.topic, key=message.key, record_time=record_time)
            halves = [read] if read is not None else []
    return wire_format.value, halves


class Pairing:
    """One summaries partition's KServe and Seldon join buffers.

    What leaves a buffer unpaired is counted under the topic its half came from: the
    predictions topic for KServe, the model's inputs or outputs topic for Seldon.
    """

    def __init__(
        self,
        predictions_topic: str,
        logger_modes: Mapping[str, str] | None = None,
        max_pending: int | None = None,
        ttl_seconds: float | None = None,
    ) -> None:
        self.predictions_topic = predictions_topic
        self.joiners = Joiners()
        self.joiners.configure(logger_modes or {}, max_pending, ttl_seconds)

    def offer(self, halves: Iterable[tuple[CarriedHalf, Side, InferenceHalf]], now: float) -> dict[str, Decoded]:
        """Offer halves in log order; what they complete (or push out), per source topic."""
        sinks: dict[str, DecodeSink] = {}
        for carried, side, half in halves:
            sink = sinks.setdefault(carried.topic, DecodeSink())
            joiner = self.joiners.kserve if carried.format == WireFormat.KSERVE.value else self.joiners.seldon
            joiner.add_into(sink, side, half, now)
        return {topic: sink.finish() for topic, sink in sinks.items()}

    def expire(self, now: float) -> dict[str, Decoded]:
        """Halves whose partner is overdue at ``now``: requests as records without a
        prediction, responses refused; per source topic."""
        sinks: dict[str, DecodeSink] = {}
        if self.joiners.kserve.pending:
            sink = sinks.setdefault(self.predictions_topic, DecodeSink())
            self.joiners.kserve.expire_each_into(lambda side, half: sink, now)
        if self.joiners.seldon.pending:

            def seldon_sink(side: Side, half: InferenceHalf) -> DecodeSink:
                return sinks.setdefault(topic_of(side, half), DecodeSink())

            self.joiners.seldon.expire_each_into(seldon_sink, now)
        decoded = {topic: sink.finish() for topic, sink in sinks.items()}
        return {topic: d for topic, d in decoded.items() if d.predictions or d.rejected}

    def pending(self) -> int:
        return self.joiners.kserve.pending + self.joiners.seldon.pending

    def export_state(self) -> dict[str, list[str]]:
        return self.joiners.export_state()

    def import_state(self, state: Mapping[str, Sequence[str]]) -> None:
        self.joiners.import_state(state)
