"""Giving freed memory back to the operating system after a big step (a 512 MB host counts RSS)."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from functools import lru_cache


@lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


def release_free_memory() -> bool:
    """Collect garbage, then ask glibc to return free heap pages (malloc_trim); False where unsupported.

    glibc keeps freed memory for reuse, and after a 100,000-row upload is replaced that can be over
    100 MB of resident memory that the next upload does not reuse.
    """
    gc.collect()
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
