"""How detectors map independent rows of one computation: ``map`` unless the runtime says otherwise.

detectors/ starts no threads. Where one computation is rows that do not depend on each other —
the tail bound's grid of λ (:mod:`detectors.tail_bound`), each row its own FFTs and
exponentials, which release the GIL — the runtime may install a threaded map here
(:mod:`exporter.pipeline.column_fold` does, over the fold's cores). Results come back in
order, and each row is computed exactly as on one thread. No numpy or scipy here, so
installing a map loads no statistics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

RowMap = Callable[[Callable[[Any], Any], Iterable[Any]], Iterable[Any]]


class _Installed:
    row_map: RowMap = map
    parts: int = 1


def use_row_map(row_map: RowMap, parts: int) -> None:
    """Map rows in ``parts`` parts with ``row_map`` (results in order, as ``map``)."""
    _Installed.row_map, _Installed.parts = row_map, max(1, int(parts))


def row_map() -> tuple[RowMap, int]:
    """The installed map and how many parts to split rows into."""
    return _Installed.row_map, _Installed.parts
