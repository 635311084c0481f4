"""Freed heap memory kept for reuse, so numpy temporaries cost no page faults.

glibc serves an allocation from 128 KiB up (a threshold it raises as such blocks are freed)
with a fresh ``mmap``, and hands the top of the heap back to the kernel once more than
twice that is free. Folding allocates and frees temporaries of that size per chunk and per
column, so by default many of them are fresh pages — each first touch a page fault, which
on this project's virtual machines cost more than the arithmetic (`docs/benchmarks.md`,
"Fold"). Raising both thresholds keeps freed blocks in the heap for the next chunk.

This is glibc's ``mallopt``; elsewhere (musl, macOS) nothing changes. Arrow's buffers come
from its own pool (mimalloc) and are not affected.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# Arrays up to this size come from the heap (glibc's ceiling for the threshold on 64-bit).
MMAP_THRESHOLD = 32 * 1024 * 1024
# At most this much freed memory stays mapped at the top of the heap.
TRIM_THRESHOLD = 128 * 1024 * 1024

_lock = threading.Lock()
_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Apply the thresholds once per process; True where glibc took them."""
    global _applied
    with _lock:
        if _applied is None:
            _applied = _mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) and _mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
        return _applied


def _mallopt(option: int, value: int) -> bool:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(option, value))
