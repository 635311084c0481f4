"""A hash table from 64-bit keys to 64-bit values, read and written a whole array at a time.

The label join looks up, adds and removes thousands of request keys per batch
(:mod:`~exporter.pipeline.request_keys`). A Python dict would touch each key in the
interpreter; this table works on numpy arrays: open addressing with linear probing, one
probing round for all pending keys at once, so the interpreter's cost is per round (a few per
batch), not per key.

Keys are already well mixed, so a key's home slot is its low bits. Key 0 marks an empty
slot and key 1 a removed one (*gone*: probing goes on past it); :mod:`request_keys` never
yields either. The table holds at most a quarter of its slots filled (live or gone), so a
probe ends after about 1.2 slots for a key present and 1.4 for one absent; past that it is rebuilt
with only its live keys, larger when they need it.
"""

from __future__ import annotations

import numpy as np

from exporter.pipeline.request_keys import EMPTY_KEY, GONE_KEY

_MIN_SLOTS = 1024
# At most a quarter of the slots filled (live or gone): probing rounds stay few (a round is
# one pass of numpy calls over the keys still probing, so their number is what costs).
_MAX_FILL = 4
_EMPTY = np.uint64(EMPTY_KEY)
_GONE = np.uint64(GONE_KEY)


class KeyIndex:
    """``key → value`` for uint64 keys ≥ 2 and int64 values.

    >>> index = KeyIndex()
    >>> index.insert(np.array([7, 9], np.uint64), np.array([0, 1]))
    >>> index.get(np.array([9, 8, 7], np.uint64)).tolist()
    [1, -1, 0]
    >>> index.remove(np.array([7], np.uint64)).tolist(), len(index)
    ([0], 1)
    """

    def __init__(self, slots: int = _MIN_SLOTS) -> None:
        size = _MIN_SLOTS
        while size < slots:
            size *= 2
        self.keys = np.zeros(size, dtype=np.uint64)
        self.values = np.zeros(size, dtype=np.int64)
        self.mask = np.uint64(size - 1)
        self.live = 0
        self.filled = 0  # live and gone slots

    def __len__(self) -> int:
        return self.live

    def _homes(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every key still to probe, and its home slot (its low bits)."""
        return np.arange(keys.size), (keys & self.mask).astype(np.int64)

    def slots_of(self, keys: np.ndarray) -> np.ndarray:
        """The slot holding each key; -1 where it is absent."""
        found = np.full(keys.size, -1, dtype=np.int64)
        pending, slots = self._homes(keys)
        table, last = self.keys, int(self.mask)
        while pending.size:
            held = table[slots]
            wanted = keys[pending]
            hit = held == wanted
            found[pending[hit]] = slots[hit]
            going = ~hit & (held != _EMPTY)
            pending, slots = pending[going], slots[going] + 1
            slots &= last
        return found

    def get(self, keys: np.ndarray) -> np.ndarray:
        """The value of each key; -1 where it is absent."""
        slots = self.slots_of(keys)
        return np.where(slots >= 0, self.values[slots], -1)

    def insert(self, keys: np.ndarray, values: np.ndarray) -> None:
        """Add keys that are distinct and absent (the caller knows) with their values."""
        if keys.size == 0:
            return
        if _MAX_FILL * (self.filled + keys.size) > self.keys.size:
            self._rebuild(self.live + keys.size)
        pending, slots = self._homes(keys)
        table, last = self.keys, int(self.mask)
        while pending.size:
            held = table[slots]
            free = held <= _GONE
            # Keys contending for one free slot: whichever write lands holds it, the rest probe on.
            wanted = keys[pending]
            table[slots[free]] = wanted[free]
            won = free & (table[slots] == wanted)
            self.values[slots[won]] = values[pending[won]]
            self.filled += int(np.count_nonzero(held[won] == _EMPTY))
            going = ~won
            pending, slots = pending[going], slots[going] + 1
            slots &= last
        self.live += keys.size

    def remove(self, keys: np.ndarray) -> np.ndarray:
        """Remove keys that are present (the caller knows); returns their values."""
        return self.remove_at(self.slots_of(keys))

    def remove_at(self, slots: np.ndarray) -> np.ndarray:
        """Remove the keys held in ``slots`` (from :meth:`slots_of`); returns their values."""
        values = self.values[slots]
        self.keys[slots] = _GONE
        self.live -= slots.size
        return values

    def _rebuild(self, live: int) -> None:
        held = self.keys > _GONE
        keys, values = self.keys[held], self.values[held]
        size = _MIN_SLOTS
        while 2 * _MAX_FILL * live > size:  # room to fill as much again before the next rebuild
            size *= 2
        self.__init__(size)  # type: ignore[misc]  # a fresh table of the new size
        self.insert(keys, values)

    def clear(self) -> None:
        self.__init__()  # type: ignore[misc]


def repeated(keys: np.ndarray) -> bool:
    """Whether any key occurs twice. Keys are well mixed: counted by their low bits first
    (no sort), so only the few that share low bits are compared exactly."""
    if keys.size < 2:
        return False
    width = 1 << max(int(keys.size * 8 - 1).bit_length(), 4)
    low = (keys & np.uint64(width - 1)).astype(np.intp)
    counts = np.bincount(low, minlength=width)
    if counts.max() < 2:
        return False
    shared = keys[counts[low] > 1]
    shared.sort()
    return bool((shared[1:] == shared[:-1]).any())
