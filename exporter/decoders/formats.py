"""Every wire format in one table: how it is told apart, what decodes it, why it is refused.

Adding a format is one row of :data:`FORMATS` (and its name in
:class:`~exporter.decoders.wire_formats.WireFormat`, which the import-time check below keeps
in step). Detection (:func:`~exporter.decoders.detect.detect_format`), the decode dispatch
(:func:`~exporter.decoders.detect.decode_into`), fixed-format mode
(:mod:`~exporter.decoders.fixed_format`) and the config's ``kafka.format`` choices all read it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from exporter.decoders.arrow_ipc import decode_arrow_ipc_into, looks_like_arrow
from exporter.decoders.kserve import decode_kserve_into, has_cloudevent_headers, is_structured_cloudevent
from exporter.decoders.message_headers import Headers
from exporter.decoders.native_json import decode_native_json_into
from exporter.decoders.record_error import RecordError
from exporter.decoders.seldon import decode_seldon_into, seldon_topic
from exporter.decoders.sink import DecodeSink
from exporter.decoders.wire_formats import WireFormat
from exporter.records import Reason

if TYPE_CHECKING:
    from exporter.decoders.detect import Joiners, WireMessage

# (value, headers, topic) → whether a message is in this format.
Sniff = Callable[[bytes, Headers, str], bool]
# Adds one message's rows and refusals to the sink; returns the format it turned out to be
# when decoding tells more than detection could (JSON that is NDJSON), else None.
DecodeInto = Callable[[DecodeSink, "WireMessage", bytes, Headers, float, "Joiners", bool], "WireFormat | None"]


@dataclass(frozen=True)
class Detection:
    """How :func:`~exporter.decoders.detect.detect_format` recognises a format."""

    order: int  # tried in this order, cheapest and most specific first; the first that matches wins
    by: str  # what is looked at, for people
    sniff: Sniff


@dataclass(frozen=True)
class WireFormatSpec:
    """One wire format: one row of :data:`FORMATS`."""

    wire_format: WireFormat  # its ``format`` label on records_consumed_total
    detection: Detection | None  # None: never detected directly (see ``detected_as``)
    detected_as: WireFormat  # what detection calls its messages: NDJSON is told apart only by its decoder
    decode_into: DecodeInto
    refusal: Reason  # why bytes in this format that its decoder cannot read are refused
    description: str  # completes "this message …" in a fixed-format refusal
    configurable: bool  # a value of ``kafka.format``

    @property
    def label(self) -> str:
        return self.wire_format.value


_JSON_START = re.compile(rb"[ \t\r\n]*[\[{]")


def _on_seldon_topic(value: bytes, headers: Headers, topic: str) -> bool:
    return seldon_topic(topic) is not None


def _is_cloudevent(value: bytes, headers: Headers, topic: str) -> bool:
    # A structured event's body is JSON too: it must be caught before the JSON row. It cannot
    # also start like Arrow IPC, so testing the body here, ahead of the Arrow row, decides the same.
    return has_cloudevent_headers(headers) or (
        _JSON_START.match(value) is not None and _is_structured_cloudevent_body(value)
    )


def _is_structured_cloudevent_body(value: bytes) -> bool:
    if b'"specversion"' not in value:  # spares parsing every native record twice
        return False
    try:
        document = json.loads(value)
    except (ValueError, RecursionError):
        return False
    return is_structured_cloudevent(document)


def _looks_like_arrow(value: bytes, headers: Headers, topic: str) -> bool:
    return looks_like_arrow(value)


def _starts_like_json(value: bytes, headers: Headers, topic: str) -> bool:
    return _JSON_START.match(value) is not None


def _decode_json(
    sink: DecodeSink,
    message: WireMessage,
    value: bytes,
    headers: Headers,
    now: float,
    joiners: Joiners,
    labels_only: bool,
) -> WireFormat:
    return decode_native_json_into(sink, value, headers, now, labels_only=labels_only)


def _decode_arrow(
    sink: DecodeSink,
    message: WireMessage,
    value: bytes,
    headers: Headers,
    now: float,
    joiners: Joiners,
    labels_only: bool,
) -> None:
    decode_arrow_ipc_into(sink, value, headers, now, labels_only=labels_only)


def _decode_kserve(
    sink: DecodeSink,
    message: WireMessage,
    value: bytes,
    headers: Headers,
    now: float,
    joiners: Joiners,
    labels_only: bool,
) -> None:
    decode_kserve_into(sink, value, headers, now, joiners.kserve)


def _decode_seldon(
    sink: DecodeSink,
    message: WireMessage,
    value: bytes,
    headers: Headers,
    now: float,
    joiners: Joiners,
    labels_only: bool,
) -> None:
    decode_seldon_into(
        sink, value, headers, message.topic, now, joiners.seldon, key=message.key, record_time=message.record_time
    )


def _refuse_unknown(
    sink: DecodeSink,
    message: WireMessage,
    value: bytes,
    headers: Headers,
    now: float,
    joiners: Joiners,
    labels_only: bool,
) -> None:
    detail = "empty message" if not value else f"not JSON, NDJSON, Arrow IPC or a CloudEvent (starts {value[:8]!r})"
    sink.reject(RecordError(Reason.UNKNOWN_FORMAT, detail), value, headers)


# In the order ``kafka.format`` lists its choices.
FORMATS: tuple[WireFormatSpec, ...] = (
    WireFormatSpec(
        WireFormat.JSON,
        detection=Detection(4, "body starts with { or [", _starts_like_json),
        detected_as=WireFormat.JSON,
        decode_into=_decode_json,
        refusal=Reason.INVALID_JSON,
        description="is native JSON",
        configurable=True,
    ),
    WireFormatSpec(
        WireFormat.NDJSON,
        detection=None,
        detected_as=WireFormat.JSON,
        decode_into=_decode_json,
        refusal=Reason.INVALID_JSON,
        description="is NDJSON",
        configurable=True,
    ),
    WireFormatSpec(
        WireFormat.ARROW,
        detection=Detection(3, "Arrow IPC stream continuation marker or file magic", _looks_like_arrow),
        detected_as=WireFormat.ARROW,
        decode_into=_decode_arrow,
        refusal=Reason.INVALID_ARROW,
        description="is Arrow IPC",
        configurable=True,
    ),
    WireFormatSpec(
        WireFormat.KSERVE,
        detection=Detection(
            2, "ce-/ce_ headers, a CloudEvents content type or a structured CloudEvent", _is_cloudevent
        ),
        detected_as=WireFormat.KSERVE,
        decode_into=_decode_kserve,
        refusal=Reason.INVALID_CLOUDEVENT,
        description="is a KServe CloudEvent",
        configurable=True,
    ),
    WireFormatSpec(
        WireFormat.SELDON,
        detection=Detection(1, "topic seldon.<namespace>.model.<model>.inputs|outputs", _on_seldon_topic),
        detected_as=WireFormat.SELDON,
        decode_into=_decode_seldon,
        refusal=Reason.INVALID_PROTOBUF,
        description="comes from a Seldon model topic",
        configurable=True,
    ),
    WireFormatSpec(
        WireFormat.UNKNOWN,
        detection=None,  # what no sniff matched
        detected_as=WireFormat.UNKNOWN,
        decode_into=_refuse_unknown,
        refusal=Reason.UNKNOWN_FORMAT,
        description="is not JSON, Arrow IPC or a CloudEvent",
        configurable=False,
    ),
)

BY_FORMAT: MappingProxyType[WireFormat, WireFormatSpec] = MappingProxyType({f.wire_format: f for f in FORMATS})
if set(BY_FORMAT) != set(WireFormat) or len(BY_FORMAT) != len(FORMATS):
    raise ImportError("exporter.decoders.formats: FORMATS needs exactly one row per WireFormat member")

# What detection tries, in order: (sniff, the format it finds).
SNIFFS: tuple[tuple[Sniff, WireFormat], ...] = tuple(
    (detection.sniff, spec.wire_format)
    for detection, spec in sorted(
        ((f.detection, f) for f in FORMATS if f.detection is not None), key=lambda pair: pair[0].order
    )
)

# The values of ``kafka.format`` besides ``auto``, in table order.
CONFIGURABLE: tuple[str, ...] = tuple(f.label for f in FORMATS if f.configurable)
