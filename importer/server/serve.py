"""Start the dashboard as it is deployed: `python -m importer.server.serve run app.py [streamlit options]`.

It sets the memory allocators up for a server that many analysts share, then becomes `streamlit`
(the same process: a supervisor's pid and signals reach Streamlit itself). run.sh, render.yaml, the
browser tests and bench/bench_dashboard.py all start the dashboard through it.
"""

from __future__ import annotations

import os
import sys

# Read by glibc and by Arrow when the process starts, so they must be in the environment before it does.
# Two malloc arenas instead of up to 8 per core (Streamlit runs each session in its own thread, and each
# arena keeps its own freed pages), and Arrow's buffers on malloc rather than its own pool, so that what
# one session frees the next reuses and malloc_trim (importer.server.memory) hands back. Measured with
# bench/bench_dashboard.py --parallel 2 (docs/DASHBOARD.md).
SERVER_ENV = {"MALLOC_ARENA_MAX": "2", "ARROW_DEFAULT_MEMORY_POOL": "system"}


def main(argv: list[str]) -> None:
    env = {**SERVER_ENV, **os.environ}  # a value set on purpose in the environment wins
    os.execve(sys.executable, [sys.executable, "-m", "streamlit", *argv], env)


if __name__ == "__main__":
    main(sys.argv[1:])
