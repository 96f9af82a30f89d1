"""Giving freed memory back to the operating system after a big step (a 512 MB host counts RSS)."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys
from functools import lru_cache


@lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


M_ARENA_MAX = -8  # glibc's mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
SERVER_ARENAS = 2
MMAP_THRESHOLD = 128 * 1024  # importer.server.serve.SERVER_ENV sets it from the process start


@lru_cache(maxsize=1)
def tune_allocators_for_a_server() -> bool:
    """Fewer malloc arenas, and Arrow's buffers on the system allocator: for a process serving many analysts.

    Streamlit runs each browser session's script in its own thread, and glibc gives busy threads their
    own arenas (up to 8 per core), each keeping its freed pages; Arrow's default pool (mimalloc) keeps
    its own. With two arenas and Arrow on malloc, what one session frees the next one reuses, and
    malloc_trim (release_free_memory) can hand it all back. Measured with bench/bench_dashboard.py
    (two analysts, 100,000 rows each, at once): 561 MB peak without, 495 MB with. Call it once, early;
    returns False where glibc's mallopt is unavailable (Arrow's pool is switched anyway).
    """
    import pyarrow

    pyarrow.set_memory_pool(pyarrow.system_memory_pool())
    libc = _libc()
    if libc is None or not hasattr(libc, "mallopt"):
        return False
    return bool(libc.mallopt(M_ARENA_MAX, SERVER_ARENAS)) and fix_mmap_threshold()


def fix_mmap_threshold() -> bool:
    """Every block of MMAP_THRESHOLD bytes or more on a mapping of its own, handed back to the OS when freed.

    glibc starts there but raises the threshold each time such a block is freed (up to 32 MB), so the big
    buffers of a later step (Arrow columns, a COPY's text, a sheet's cells) land in the heap, where they stay
    resident under the small objects allocated after them. Fixed, a 100,000-row flow's server peaked at 298
    MB instead of 325-331 (bench/bench_512mb.py), at the same speed (bench/bench_load.py, bench_steps.py).
    False where glibc's mallopt is unavailable."""
    libc = _libc()
    if libc is None or not hasattr(libc, "mallopt"):
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))


def trim_heap() -> bool:
    """Give glibc's free heap pages back to the OS (malloc_trim), without a garbage collection: cheap
    enough between the steps of a long computation. False where malloc_trim is unavailable."""
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True


def release_free_memory() -> bool:
    """Collect garbage, then return free pages to the OS: Arrow's pool, then glibc's heap (malloc_trim).

    pandas' string columns live in Arrow's memory pool (mimalloc), which keeps freed pages, and glibc
    keeps freed heap: after a 100,000-row upload is replaced that was over 100 MB of resident memory
    the next upload did not reuse. Returns False where malloc_trim is unavailable.
    """
    gc.collect()
    arrow = sys.modules.get("pyarrow")
    if arrow is not None:
        arrow.default_memory_pool().release_unused()
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
