"""Decoders: wire formats in, the Arrow tables of :mod:`exporter.records` out.

One module per format — :mod:`~exporter.decoders.native_json`,
:mod:`~exporter.decoders.arrow_ipc`, :mod:`~exporter.decoders.kserve`,
:mod:`~exporter.decoders.seldon` — and :mod:`~exporter.decoders.detect`, which tells
them apart per message and decodes whole consumer batches. No decoder raises: every
record it cannot read comes back as a :class:`~exporter.records.Rejected` with a reason.
Decoders never read the clock; callers pass ``now``.
"""

from exporter.decoders.arrow_ipc import decode_arrow_ipc
from exporter.decoders.detect import (
    BatchDecoded,
    Joiners,
    MessageDecoded,
    WireMessage,
    decode_batch,
    decode_message,
    detect_format,
)
from exporter.decoders.kserve import KServeJoiner, decode_kserve
from exporter.decoders.native_json import decode_native_json
from exporter.decoders.seldon import SeldonJoiner, decode_seldon
from exporter.decoders.wire_formats import WireFormat

__all__ = [
    "BatchDecoded",
    "Joiners",
    "KServeJoiner",
    "MessageDecoded",
    "SeldonJoiner",
    "WireFormat",
    "WireMessage",
    "decode_arrow_ipc",
    "decode_batch",
    "decode_kserve",
    "decode_message",
    "decode_native_json",
    "decode_seldon",
    "detect_format",
]
