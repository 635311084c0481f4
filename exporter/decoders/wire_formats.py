"""The wire formats a message can arrive in; each value is a ``format`` metric label."""

from __future__ import annotations

from enum import Enum


class WireFormat(str, Enum):
    JSON = "json"
    NDJSON = "ndjson"
    ARROW = "arrow"
    KSERVE = "kserve"
    SELDON = "seldon"
    UNKNOWN = "unknown"
