"""Message headers in the one shape decoders keep: a tuple of ``(name, bytes)`` pairs.

Kafka clients hand over lists of ``(str, bytes | None)``, HTTP frameworks mappings of
``str`` to ``str``; the dead-letter writer wants bytes back, so everything is turned
into the Kafka shape once, at the decoder's door.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

Headers = tuple[tuple[str, bytes], ...]
HeadersIn = Mapping[str, "str | bytes | None"] | Iterable[tuple[str, "str | bytes | None"]] | None


def normalise_headers(headers: HeadersIn) -> Headers:
    """Headers as ``(name, bytes)`` pairs, keeping order and repeats.

    >>> normalise_headers({"ce-id": "1", "x": None})
    (('ce-id', b'1'), ('x', b''))
    """
    if not headers:
        return ()
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    out: list[tuple[str, bytes]] = []
    for name, value in pairs:
        if isinstance(name, bytes):
            name = name.decode("latin-1")
        if value is None:
            value = b""
        elif isinstance(value, str):
            value = value.encode("utf-8", "surrogateescape")
        out.append((str(name), bytes(value)))
    return tuple(out)


def header_text(headers: Headers, name: str) -> str | None:
    """The first header called ``name`` (any case) as text, or None.

    >>> header_text((("Content-Type", b"application/json"),), "content-type")
    'application/json'
    """
    wanted = name.lower()
    for key, value in headers:
        if key.lower() == wanted:
            return value.decode("utf-8", "replace")
    return None
