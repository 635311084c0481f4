"""What every role's sections are built from: the section base, shared field types, the HTTP section.

The annotated types (``Topic``, ``Port``, ``Version``, ``BootstrapServers``, ``PromDuration`` …)
carry their own constraints, so the reference table can show them wherever they are used;
``unwrap`` sees through them (and through ``X | None``) for the error messages and the reference.
"""

from __future__ import annotations

import re
import types
from collections.abc import Iterable
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from detectors.decision import DriftRule

# Single source of the drift thresholds' defaults: the decision rule itself.
RULE_DEFAULTS = DriftRule()


class Section(BaseModel):
    """A config section: typos are errors and a loaded config never changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------------------------------------
# Field types shared by several sections.


def _version_text(value: object) -> object:
    """Accept ``version: 7`` but refuse ``version: 1.10``, which YAML has already turned into 1.1."""
    if isinstance(value, bool):
        return value  # left for str validation to refuse
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        raise ValueError(f"write the version as a quoted string, YAML read it as the number {value!r}")
    return value


def _join_servers(value: object) -> object:
    """A YAML list of brokers is as natural as kafka's comma-separated string; take both."""
    if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        return ",".join(value)
    return value


def split_servers(text: str) -> tuple[str, ...]:
    """``"a:9092, b:9092"`` → ``("a:9092", "b:9092")``."""
    return tuple(part.strip() for part in text.split(","))


def _check_servers(text: str) -> str:
    for server in split_servers(text):
        if not server:
            raise ValueError("empty entry in the comma-separated broker list")
        host, sep, port = server.rpartition(":")
        if sep and (not host or not port.isdigit() or not 1 <= int(port) <= 65535):
            raise ValueError(f"{server!r} is not host:port with a port in 1-65535")
    return text


def _check_http_url(text: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when asked
    except ValueError as exc:
        raise ValueError(f"bad port in URL: {exc}") from None
    return text


NonEmpty = Annotated[str, Field(min_length=1)]
Version = Annotated[str, BeforeValidator(_version_text), Field(min_length=1)]
BootstrapServers = Annotated[str, BeforeValidator(_join_servers), AfterValidator(_check_servers)]
# Kafka's own rule for topic names.
Topic = Annotated[str, Field(min_length=1, max_length=249, pattern=r"^[A-Za-z0-9._-]+$")]
# Window names end up as a label value and in dashboard variables: keep them plain.
WindowName = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")]
Port = Annotated[int, Field(ge=1, le=65535)]
HttpUrl = Annotated[str, AfterValidator(_check_http_url)]


# ---------------------------------------------------------------------------------------------
# Durations, written as Prometheus writes them.

# Prometheus's duration syntax: units in descending order, each at most once.
_DURATION = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
_DURATION_SECONDS = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)


def duration_seconds(text: str) -> float:
    """Seconds in a Prometheus duration such as ``1h30m``, ``30d`` or ``500ms``.

    >>> duration_seconds("1h30m"), duration_seconds("30d")
    (5400.0, 2592000.0)
    """
    match = _DURATION.match(text)
    if not text or match is None:
        raise ValueError(f"{text!r} is not a Prometheus duration such as 30s, 5m, 1h30m or 30d")
    total = sum(int(count) * unit for count, unit in zip(match.groups(), _DURATION_SECONDS) if count)
    if total <= 0:
        raise ValueError(f"{text!r} must be longer than 0")
    return float(total)


def _check_duration(text: str) -> str:
    duration_seconds(text)
    return text


PromDuration = Annotated[str, AfterValidator(_check_duration)]


# ---------------------------------------------------------------------------------------------
# The one section every role has.


class HttpConfig(Section):
    host: NonEmpty = Field("0.0.0.0", description="Address the HTTP server (`/metrics`, `/healthz`, `/readyz`) binds.")
    port: Port = Field(9877, description="Port of the HTTP server.")


# ---------------------------------------------------------------------------------------------
# Helpers of validators and of walkers over annotations.


def require_items(items: tuple[Any, ...]) -> None:
    # Checked after item validation, not as min_length: pydantic's tuple length check would
    # also fire, confusingly, whenever an item fails.
    if not items:
        raise ValueError("List should have at least 1 item")


def repeated(items: Iterable[str]) -> list[str]:
    """Items seen more than once, each listed once, in the order of their first repetition."""
    seen: set[str] = set()
    repeated: list[str] = []
    for item in items:
        if item in seen and item not in repeated:
            repeated.append(item)
        seen.add(item)
    return repeated


def unwrap(annotation: Any) -> Any:
    """Strip ``Annotated`` and ``X | None`` down to the type that holds fields or items."""
    while True:
        if get_origin(annotation) is Annotated:
            annotation = get_args(annotation)[0]
            continue
        if is_union(annotation):
            args = [arg for arg in get_args(annotation) if arg is not type(None)]
            if len(args) == 1:
                annotation = args[0]
                continue
        return annotation


def is_union(annotation: Any) -> bool:
    return get_origin(annotation) in (Union, types.UnionType)
