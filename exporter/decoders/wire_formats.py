"""The wire formats a message can arrive in; each value is a ``format`` metric label.

Only the names: everything about each format (its sniff, decoder, refusal reason, whether
``kafka.format`` can fix it) is its row in :data:`exporter.decoders.formats.FORMATS`, which
refuses to import unless it has exactly one row per member here. The names stay in this leaf
module because the decoders themselves name formats (native JSON says when it was NDJSON).
"""

from __future__ import annotations

from enum import Enum


class WireFormat(str, Enum):
    JSON = "json"
    NDJSON = "ndjson"
    ARROW = "arrow"
    KSERVE = "kserve"
    SELDON = "seldon"
    UNKNOWN = "unknown"
