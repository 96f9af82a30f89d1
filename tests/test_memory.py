"""release_free_memory returns freed heap to the operating system."""

from __future__ import annotations

import gc
import sys

import pytest

from importer.memory import release_free_memory


def _rss_kb() -> int:
    with open("/proc/self/status") as status:
        return int(status.read().split("VmRSS:")[1].split()[0])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim is Linux-only")
def test_freed_memory_goes_back_to_the_system() -> None:
    # Big blocks with small live ones between them, as a replaced upload leaves the heap: glibc cannot
    # shrink the heap's top past the live blocks, so without malloc_trim the freed pages stay resident.
    pairs = [(bytearray(8_000), bytearray(600)) for _ in range(15_000)]
    pins = [pin for _, pin in pairs]
    grown = _rss_kb()
    del pairs
    gc.collect()
    assert _rss_kb() > grown - 20_000  # KB: freeing alone gives (almost) nothing back
    assert release_free_memory() is True
    assert _rss_kb() < grown - 50_000  # KB: trimming hands back most of the ~120 MB
    assert len(pins) == 15_000


def test_arrow_pool_pages_go_back_to_the_system() -> None:
    import pandas as pd

    # pandas' string columns are Arrow arrays; their pool keeps freed pages unless asked to release.
    columns = {f"c{i}": pd.array([f"value {n} of column {i}" for n in range(100_000)], dtype="str")
               for i in range(6)}
    grown = _rss_kb()
    del columns
    gc.collect()
    freed_only = _rss_kb()
    release_free_memory()
    assert _rss_kb() < min(grown, freed_only) - 20_000  # KB


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux-only")
def test_a_server_process_puts_arrow_on_malloc_and_limits_arenas() -> None:
    import subprocess

    script = (
        "import pyarrow as pa\n"
        "before = pa.default_memory_pool().backend_name\n"
        "from importer.memory import tune_allocators_for_a_server as tune\n"
        "print(before, tune(), pa.default_memory_pool().backend_name, tune())\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    before, tuned, after, again = out.stdout.split()
    assert before != "system"  # Arrow's own pool by default (mimalloc or jemalloc)
    assert (tuned, after, again) == ("True", "system", "True")  # once per process (cached)
