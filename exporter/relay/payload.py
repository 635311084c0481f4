"""Alertmanager's webhook notification (payload version "4"), parsed and validated.

Alertmanager posts one notification per alert group: the group's labels, the common labels and
annotations, and the alerts themselves, each with its ``status``, ``labels``, ``annotations``,
``startsAt``, ``endsAt``, ``generatorURL`` and ``fingerprint``. Unknown extra fields are
ignored, so a newer Alertmanager that adds fields still gets through; a missing or mistyped
field the relay relies on is a 400 naming the field.

``startsAt`` is kept as the string Alertmanager sent (validated as RFC 3339) because the
de-duplication key is (fingerprint, startsAt) exactly as Alertmanager repeats it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

SUPPORTED_VERSION = "4"


_DATETIME = TypeAdapter(datetime)


def _rfc3339(text: str) -> str:
    # Validated as a timestamp, kept as text: it is part of the de-duplication key.
    _DATETIME.validate_python(text)
    return text


Timestamp = Annotated[str, AfterValidator(_rfc3339)]


def parse_time(text: str) -> datetime:
    """An RFC 3339 timestamp the payload already validated, as an aware datetime."""
    return _DATETIME.validate_python(text)


class PayloadError(ValueError):
    """A notification the relay refuses; ``reason`` is the rejected-requests label."""

    def __init__(self, reason: Literal["bad_json", "bad_payload"], message: str) -> None:
        super().__init__(message)
        self.reason = reason


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Alert(_Lenient):
    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: Timestamp  # noqa: N815 - Alertmanager's field names
    endsAt: str = ""  # noqa: N815
    generatorURL: str = ""  # noqa: N815
    fingerprint: str = Field(min_length=1)

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "")


class Notification(_Lenient):
    version: str
    groupKey: str = ""  # noqa: N815
    truncatedAlerts: int = Field(0, ge=0)  # noqa: N815
    status: Literal["firing", "resolved"]
    receiver: str = ""
    groupLabels: dict[str, str] = Field(default_factory=dict)  # noqa: N815
    commonLabels: dict[str, str] = Field(default_factory=dict)  # noqa: N815
    commonAnnotations: dict[str, str] = Field(default_factory=dict)  # noqa: N815
    externalURL: str = ""  # noqa: N815
    alerts: tuple[Alert, ...]


def parse_notification(body: bytes) -> Notification:
    """``body`` as a version-4 notification, or ``PayloadError`` saying what is wrong."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError("bad_json", f"body is not JSON: {exc}") from None
    except RecursionError:  # nesting deeper than the parser's stack: no notification is that deep
        raise PayloadError("bad_json", "body is not JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise PayloadError("bad_payload", "expected a JSON object (Alertmanager webhook notification)")
    version = data.get("version")
    if version != SUPPORTED_VERSION:
        raise PayloadError(
            "bad_payload", f"version: expected {SUPPORTED_VERSION!r} (Alertmanager webhook payload), got {version!r}"
        )
    try:
        return Notification.model_validate(data)
    except ValidationError as exc:
        raise PayloadError("bad_payload", _describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(part) for part in error["loc"])
        parts.append(f"{where}: {error['msg']}")
    if exc.error_count() > 5:
        parts.append(f"and {exc.error_count() - 5} more")
    return "; ".join(parts)
