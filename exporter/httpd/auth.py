"""Bearer tokens: read from a file at start, checked in constant time on each request.

A token lives in a file, not a config value, so a Kubernetes Secret can be mounted and the
config file stays shareable. It is read once at start; a missing, empty or malformed file
fails the start with the config field that names it. The relay's Alertmanager token and the
aggregator's ``http.token_file`` (``/metrics`` and the drift report) use the same rules.
"""

from __future__ import annotations

import hmac
from pathlib import Path

from exporter.errors import UserError


def read_secret(path: Path, field: str) -> str:
    """The file's text without surrounding whitespace (editors and ``echo`` add a newline)."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise UserError(f"{field}: cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UserError(f"{field}: {path} is not UTF-8 text") from None
    if not text:
        raise UserError(f"{field}: {path} is empty")
    if any(char.isspace() or not char.isprintable() for char in text):
        raise UserError(f"{field}: {path} must hold one token without spaces or control characters")
    return text


def bearer_token(header: str) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None for any other header."""
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def token_problem(header: str, expected: str) -> str | None:
    """None when ``header`` carries ``expected``; else why not (for the 401 body and the log).

    ``compare_digest``: the time taken must not reveal how much of a guess was right.
    """
    given = bearer_token(header)
    if given is None:
        return "missing bearer token"
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return "wrong bearer token"
    return None
