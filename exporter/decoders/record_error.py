"""The one exception decoders raise internally for a record they refuse.

It never leaves a decoder: the message or row it belongs to becomes a
:class:`~exporter.records.Rejected` with the same reason and detail.
"""

from __future__ import annotations

from exporter.records import Reason


class RecordError(Exception):
    """A record (or a whole message) that cannot be decoded, and why."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
