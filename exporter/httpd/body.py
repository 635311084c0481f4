"""Reading a POST body inside a size limit, for every endpoint that takes one.

A body announced larger than the limit is refused from ``Content-Length`` before a byte
of it is read; a chunked body (no length announced) is read up to one byte past the
limit and refused as soon as it gets there, so neither kind can make the process hold
more than ``max_bytes``. The server (:mod:`exporter.httpd.connection`) has already
bounded and de-chunked ``wsgi.input``.
"""

from __future__ import annotations

from typing import Any

from exporter.httpd.connection import CHUNKED_KEY, BadChunking


class BodyError(Exception):
    """A body that cannot be taken: ``status`` is the HTTP answer, ``reason`` its counter label."""

    def __init__(self, status: str, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


def too_large(max_bytes: int) -> BodyError:
    return BodyError("413 Content Too Large", "too_large", f"body larger than {max_bytes} bytes")


def announced_length(environ: dict[str, Any]) -> int | None:
    """The ``Content-Length`` of the request, None when the body is chunked."""
    if environ.get(CHUNKED_KEY):
        return None
    text = environ.get("CONTENT_LENGTH") or "0"
    try:
        length = int(text)
    except ValueError:
        raise BodyError("400 Bad Request", "bad_body", f"Content-Length {text[:20]!r} is not a number") from None
    if length < 0:
        raise BodyError("400 Bad Request", "bad_body", "Content-Length is negative")
    return length


def check_length(environ: dict[str, Any], max_bytes: int) -> None:
    """Refuse, before reading, a body announced larger than ``max_bytes``."""
    length = announced_length(environ)
    if length is not None and length > max_bytes:
        raise too_large(max_bytes)


def read_body(environ: dict[str, Any], max_bytes: int) -> bytes:
    """The whole request body, at most ``max_bytes`` of it; raises :class:`BodyError`.

    >>> import io
    >>> read_body({"CONTENT_LENGTH": "3", "wsgi.input": io.BytesIO(b"abc")}, 10)
    b'abc'
    >>> read_body({"model_health.chunked": True, "wsgi.input": io.BytesIO(b"x" * 11)}, 10)
    Traceback (most recent call last):
    ...
    exporter.httpd.body.BodyError: body larger than 10 bytes
    """
    length = announced_length(environ)
    stream = environ["wsgi.input"]
    if length is not None:
        if length > max_bytes:
            raise too_large(max_bytes)
        want = length
    else:
        want = max_bytes + 1
    try:
        data = _read_up_to(stream, want)
    except BadChunking as error:
        raise BodyError("400 Bad Request", "bad_body", f"broken chunked encoding: {error}") from None
    except (ConnectionError, TimeoutError, OSError) as error:
        raise BodyError("400 Bad Request", "bad_body", f"body ended early: {error}") from None
    if length is None and len(data) > max_bytes:
        raise too_large(max_bytes)
    if length is not None and len(data) < length:
        raise BodyError("400 Bad Request", "bad_body", f"body ended after {len(data)} of {length} bytes")
    return data


def _read_up_to(stream: Any, limit: int) -> bytes:
    parts: list[bytes] = []
    got = 0
    while got < limit:
        part = stream.read(limit - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)
