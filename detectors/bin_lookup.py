"""Exact fine-bin lookup through a uniform grid: ``searchsorted`` without the binary search.

The fine bin of a value ``v`` over sorted edges ``e`` is the number of edges at or below
it, ``searchsorted(e, v, side="right")`` — a binary search per value, about 10–20 ns.
Here a value is first mapped to one of ``K`` cells by a monotone map ``cell(v)``; every
edge ``e_j`` is mapped by the same map. Because the map never decreases,

    cell(e_j) < cell(v)  ⇒  e_j < v        and        cell(e_j) > cell(v)  ⇒  e_j > v

so the edges in lower cells are all counted, those in higher cells never are, and only
the few edges sharing ``v``'s cell need a comparison:

    index(v) = #{j : cell(e_j) < cell(v)} + #{j : cell(e_j) = cell(v), e_j ≤ v}

Both terms are table lookups and at most ``depth`` comparisons (the most edges in one
cell), so the result equals ``searchsorted`` exactly, whatever the rounding inside
``cell`` — only its monotonicity matters. Two maps are tried: linear in the value
(quantile edges of a bell-shaped reference) and linear in the float's bit pattern, which
is about logarithmic (a reference spread over many orders of magnitude). When neither
keeps ``depth`` small the lookup is not built and the caller searches.

>>> edges = np.array([0.0, 1.0, 2.5, 4.0])
>>> lookup = FineLookup.build(edges)
>>> values = np.array([-1.0, 0.0, 0.5, 1.0, 3.9, 4.0, 7.0])
>>> lookup.index(values).tolist() == np.searchsorted(edges, values, side="right").tolist()
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CELLS_PER_EDGE = 8  # 8 × 1,000 edges: a 64 KB table per feature
MAX_DEPTH = 3  # beyond this many comparisons per value, binary search is as quick
_MAGNITUDE = np.int64(0x7FFFFFFFFFFFFFFF)


def _ordered_bits(values: np.ndarray) -> np.ndarray:
    """Integers that order like the (finite, non-NaN) floats: sign-magnitude to two's complement.

    ``+0.0`` is added first so that -0.0 (equal to 0.0) gets 0.0's integer.
    """
    bits = (values + 0.0).view(np.int64)
    return bits ^ ((bits >> 63) & _MAGNITUDE)


@dataclass(frozen=True, eq=False)
class FineLookup:
    """The grid for one set of edges; see the module docstring."""

    edges: np.ndarray  # the sorted edges, padded with +inf for the comparisons
    below: np.ndarray  # int64, per cell: edges in lower cells
    depth: int  # the most edges in one cell
    bitwise: bool  # cells over the ordered bit patterns (else over the values)
    origin: float | tuple[int, int]  # the first edge's value, or the first and last edges' ordered bits
    scale: float | int  # value map: cells per unit; bit map: right shift
    cells: int

    @classmethod
    def build(cls, edges: np.ndarray) -> FineLookup | None:
        """The shallower of the two grids for ``edges`` (strictly increasing, finite), or None."""
        e = np.ascontiguousarray(edges, dtype=np.float64)
        if e.size < 2 or not np.isfinite(e).all():
            return None
        cells = CELLS_PER_EDGE * e.size
        best: FineLookup | None = None
        for candidate in (cls._linear(e, cells), cls._bitwise(e, cells)):
            if (
                candidate is not None
                and candidate.depth <= MAX_DEPTH
                and (best is None or candidate.depth < best.depth)
            ):
                best = candidate
        return best

    @classmethod
    def _linear(cls, e: np.ndarray, cells: int) -> FineLookup | None:
        with np.errstate(over="ignore"):
            scale = cells / (float(e[-1]) - float(e[0]))
        if not np.isfinite(scale) or scale <= 0:
            return None
        made = cls(e, np.empty(0, np.int64), 0, False, float(e[0]), scale, cells)
        return made._with_table()

    @classmethod
    def _bitwise(cls, e: np.ndarray, cells: int) -> FineLookup | None:
        keys = _ordered_bits(e)
        span = int(keys[-1]) - int(keys[0])
        if span >= 1 << 62:
            return None  # offsets from the first edge must not overflow int64
        shift = (span // cells).bit_length()  # span >> shift < cells
        made = cls(e, np.empty(0, np.int64), 0, True, (int(keys[0]), int(keys[-1])), shift, cells)
        return made._with_table()

    def _with_table(self) -> FineLookup:
        of_edges = self._cells(self.edges)
        below = np.searchsorted(of_edges, np.arange(self.cells), side="left").astype(np.int64)
        depth = int(np.bincount(of_edges, minlength=1).max())
        padded = np.concatenate((self.edges, np.full(depth, np.inf)))
        return FineLookup(padded, below, depth, self.bitwise, self.origin, self.scale, self.cells)

    def _cells(self, values: np.ndarray) -> np.ndarray:
        """The monotone map from values to cells ``0 … cells − 1``."""
        if self.bitwise:
            first, last = self.origin  # type: ignore[misc]
            offset = np.clip(_ordered_bits(values), first, last)  # outside the edges: the end cells
            offset -= np.int64(first)
            offset >>= self.scale
            return np.minimum(offset, self.cells - 1, out=offset)
        with np.errstate(over="ignore", invalid="ignore"):
            position = values - self.origin
            position *= self.scale
        np.clip(position, 0.0, float(self.cells - 1), out=position)  # also clips ±inf
        # Through int32: numpy's float64 → int64 cast is ten times slower than → int32 and on.
        return position.astype(np.int32).astype(np.int64)

    def index(self, values: np.ndarray) -> np.ndarray:
        """``searchsorted(edges, values, side="right")`` for finite float64 ``values``."""
        v = np.asarray(values, dtype=np.float64)
        # np.take with int64 indices: fancy indexing, or int32 indices, cost ten times as much.
        start = np.take(self.below, self._cells(v))
        out = start.copy()
        for step in range(self.depth):
            out += np.take(self.edges[step:], start) <= v  # edges[start + step], without the addition
        return out
