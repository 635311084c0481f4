"""Event times as epoch seconds, from the forms producers actually send.

Numbers are epoch seconds; text is RFC 3339 (a ``Z`` or an offset; a time without an
offset is read as UTC, which is what loggers that drop the offset mean). A missing time
is the caller's ``now`` — decoders never read the clock themselves.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from exporter.decoders.record_error import RecordError
from exporter.records import Reason


def epoch_seconds(value: object, now: float) -> float:
    """``value`` as epoch seconds; None means ``now``.

    >>> epoch_seconds(1795889160.5, 0.0)
    1795889160.5
    >>> epoch_seconds("2026-11-28T18:06:00Z", 0.0)
    1795889160.0
    >>> epoch_seconds(None, 42.0)
    42.0
    """
    if value is None:
        return now
    kind = type(value)
    if kind is float or kind is int:
        return finite_seconds(value)  # type: ignore[arg-type]
    if kind is str:
        return rfc3339_seconds(value)  # type: ignore[arg-type]
    if isinstance(value, datetime):
        return datetime_seconds(value)
    raise RecordError(Reason.BAD_TIMESTAMP, f"timestamp: expected epoch seconds or RFC 3339 text, got {kind.__name__}")


def finite_seconds(value: float | int) -> float:
    try:
        seconds = float(value)
    except OverflowError:
        raise RecordError(Reason.BAD_TIMESTAMP, "timestamp: number out of range") from None
    if not math.isfinite(seconds):
        raise RecordError(Reason.BAD_TIMESTAMP, f"timestamp: {seconds} is not a time")
    return seconds


def rfc3339_seconds(text: str) -> float:
    # Go's RFC3339Nano (KServe, Knative) carries nine fraction digits; fromisoformat
    # keeps the first six, which is all a float of epoch seconds can hold anyway.
    try:
        parsed = datetime.fromisoformat(text.strip().upper())
    except ValueError:
        raise RecordError(Reason.BAD_TIMESTAMP, f"timestamp: {text[:64]!r} is not RFC 3339") from None
    return datetime_seconds(parsed)


def datetime_seconds(moment: datetime) -> float:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.timestamp()
    except (OverflowError, ValueError, OSError):
        raise RecordError(Reason.BAD_TIMESTAMP, f"timestamp: {moment} out of range") from None
