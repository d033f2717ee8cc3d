"""A long-running process's memory kept flat: two requests to glibc's allocator.

Every thread that allocates gets a malloc arena of its own (up to eight per core), and
memory freed in one arena is not reused by another, so a pool of fetch threads slowly raises
the resident size of a daemon that does the same work all day: `limit_arenas` caps them.
Freed memory goes back to the system only when it lies at the top of the heap; `release`
asks for the rest back (malloc_trim) after a pass. Where the C library has neither call
(musl, macOS) both do nothing.
"""

from __future__ import annotations

import ctypes
import functools
from typing import Any

M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h
ARENAS = 2


@functools.cache
def _glibc() -> Any | None:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def limit_arenas(count: int = ARENAS) -> None:
    """Cap glibc's malloc arenas; threads started afterwards share them."""
    libc = _glibc()
    if libc is not None and hasattr(libc, "mallopt"):
        libc.mallopt(M_ARENA_MAX, count)


def release() -> None:
    """Hand freed heap memory back to the system."""
    libc = _glibc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)
