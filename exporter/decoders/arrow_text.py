"""Text columns from Python strings, including strings UTF-8 cannot hold.

JSON may escape lone surrogates (``"\\ud800"``); Python keeps them, Arrow refuses them.
They are replaced with U+FFFD so one odd character costs a character, not the batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa


def utf8_safe(text: str) -> str:
    """``text`` with anything UTF-8 cannot encode replaced.

    >>> utf8_safe("a\\ud800b")
    'a\\ufffdb'
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text)
    return text


def text_array(values: Sequence[str | None]) -> pa.Array:
    """A string array of ``values`` (None is null)."""
    try:
        return pa.array(values, type=pa.string())
    except (UnicodeEncodeError, pa.ArrowInvalid):
        return pa.array([None if v is None else utf8_safe(v) for v in values], type=pa.string())
