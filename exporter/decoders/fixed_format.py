"""A configured wire format (``kafka.format`` other than ``auto``): refuse every other one.

With a fixed format a message is decoded only by that format's decoder. A message in any
other format is refused whole, under the reason the configured format's decoder gives
for bytes it cannot read (``invalid_json``, ``invalid_arrow``, ``invalid_cloudevent``,
``invalid_protobuf``), with a detail saying what the message is instead — so a producer
writing the wrong format shows up in the dead-letter topic and the rejected counter
instead of being quietly decoded some other way.

``json`` means one JSON document per message (a record, or an array of records): a
message of several JSON lines is NDJSON and refused. ``ndjson`` means one record per
line; a one-line message is one record.
"""

from __future__ import annotations

import json

from exporter.decoders.formats import BY_FORMAT, CONFIGURABLE
from exporter.decoders.record_error import RecordError
from exporter.decoders.wire_formats import WireFormat
from exporter.records import Reason


def fixed_format(setting: str) -> WireFormat | None:
    """The format a ``kafka.format`` value fixes, or None for ``auto``.

    >>> fixed_format("auto") is None, fixed_format("arrow")
    (True, <WireFormat.ARROW: 'arrow'>)
    """
    if setting == "auto":
        return None
    if setting not in CONFIGURABLE:
        raise ValueError(f"unknown wire format {setting!r}; choose auto or one of {', '.join(sorted(CONFIGURABLE))}")
    return WireFormat(setting)


def format_refusal(expected: WireFormat, detected: WireFormat, value: bytes) -> RecordError | None:
    """Why a message detected as ``detected`` cannot be read as ``expected``; None when it can.

    >>> format_refusal(WireFormat.ARROW, WireFormat.JSON, b'{"model": "fraud"}').detail
    'kafka.format is arrow, but this message is native JSON'
    >>> format_refusal(WireFormat.JSON, WireFormat.JSON, b'{"a": 1}\\n{"a": 2}').reason.value
    'invalid_json'
    >>> format_refusal(WireFormat.NDJSON, WireFormat.JSON, b'{"a": 1}\\n{"a": 2}') is None
    True
    """
    wanted = BY_FORMAT[expected]
    if detected is not wanted.detected_as:
        what = "is empty" if not value else BY_FORMAT[detected].description
        return RecordError(wanted.refusal, f"kafka.format is {expected.value}, but this message {what}")
    if expected is WireFormat.JSON and _several_documents(value):
        return RecordError(
            Reason.INVALID_JSON,
            "kafka.format is json (one JSON document per message), but this message holds several lines "
            "of JSON documents: NDJSON needs kafka.format ndjson",
        )
    return None


def _several_documents(value: bytes) -> bool:
    # Only a message with an inner line break can be NDJSON; only then is it parsed twice.
    if b"\n" not in value.strip():
        return False
    try:
        json.loads(value)
    except RecursionError:
        return False  # one document nested too deeply; its decoder says so
    except ValueError:
        return any(_is_json(line) for line in value.split(b"\n") if line.strip())
    return False


def _is_json(line: bytes) -> bool:
    try:
        json.loads(line)
    except (ValueError, RecursionError):
        return False
    return True
