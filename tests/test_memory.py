"""release_free_memory returns freed heap to the operating system."""

from __future__ import annotations

import gc
import sys
import time
from pathlib import Path

import pytest

from importer.server.memory import release_free_memory


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
        "from importer.server.memory import tune_allocators_for_a_server as tune\n"
        "print(before, tune(), pa.default_memory_pool().backend_name, tune())\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    before, tuned, after, again = out.stdout.split()
    assert before != "system"  # Arrow's own pool by default (mimalloc or jemalloc)
    assert (tuned, after, again) == ("True", "system", "True")  # once per process (cached)


def test_the_dashboard_launcher_starts_streamlit_with_the_server_s_memory_settings(tmp_path) -> None:
    """python -m importer.server.serve becomes `python -m streamlit` in the same process, with SERVER_ENV set."""
    import os
    import subprocess

    from importer.server.serve import SERVER_ENV

    env = {k: v for k, v in os.environ.items() if k not in SERVER_ENV}
    proc = subprocess.run([sys.executable, "-m", "importer.server.serve", "version"], capture_output=True, text=True,
                          env=env, timeout=120, check=True)
    assert proc.stdout.startswith("Streamlit, version")
    # A real server: after the exec, the same pid is streamlit, with the settings in its environment.
    server = subprocess.Popen([sys.executable, "-m", "importer.server.serve", "run", "app.py", "--server.headless", "true",
                               "--server.port", "0", "--server.address", "127.0.0.1"],
                              cwd=Path(__file__).resolve().parent.parent, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while b"--in-process" not in Path(f"/proc/{server.pid}/cmdline").read_bytes():  # exec'd: the front door, then streamlit
            assert time.monotonic() < deadline and server.poll() is None
            time.sleep(0.05)
        environ = dict(item.split("=", 1) for item in
                       Path(f"/proc/{server.pid}/environ").read_text().split("\0") if "=" in item)
    finally:
        server.kill()
        server.wait(timeout=30)
    assert {k: environ.get(k) for k in SERVER_ENV} == SERVER_ENV


_BIG_BLOCKS = """
import sys
from importer.server.memory import fix_mmap_threshold
if sys.argv[1] == "fixed":
    assert fix_mmap_threshold()
def rss_mb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024
first = bytearray(8 << 20)  # a big block freed: glibc's dynamic threshold rises past 2 MB
first[:] = bytes(len(first))
del first
before = rss_mb()
kept, big = [], []
for _ in range(40):  # a step's 2 MB buffers, each followed by a small block that outlives it
    buffer = bytearray(2 << 20)
    buffer[:] = b"x" * len(buffer)
    big.append(buffer)
    kept.append(bytes(1000) + bytes([len(kept)]))  # over pymalloc's 512 bytes: from malloc
del big, buffer
print(round(rss_mb() - before))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux-only")
def test_with_the_mmap_threshold_fixed_a_step_s_big_buffers_go_back_to_the_os_when_freed() -> None:
    """fix_mmap_threshold: 80 MB of 2 MB buffers, freed under small objects allocated after them, stay resident
    with glibc's dynamic threshold (they were put in the heap) and are handed back at once with it fixed."""
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    held = {how: int(subprocess.run([sys.executable, "-c", _BIG_BLOCKS, how], capture_output=True, text=True,
                                    env=env, timeout=60, check=True).stdout) for how in ("dynamic", "fixed")}
    assert held["dynamic"] > 60, held
    assert held["fixed"] < 10, held
