"""Start the dashboard as it is deployed: `python -m importer.server.serve run app.py [streamlit options]`.

It sets the memory allocators up for a server that many analysts share, then becomes `streamlit run`
(the same process: a supervisor's pid and signals reach Streamlit itself), with importer.server.front_door
in front of Streamlit's routes: the client's address counted TRUSTED_PROXY_HOPS from the right of
X-Forwarded-For (uvicorn's own proxy-header handling off), no metrics, and no upload into a session that
has not signed in. run.sh, render.yaml, the browser tests and bench/bench_dashboard.py all start the
dashboard through it; `streamlit run app.py` alone runs without that front door.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from importer.server.memory import MMAP_THRESHOLD  # ctypes and gc only: nothing heavy before the exec

# Read by glibc and by Arrow when the process starts, so they must be in the environment before it does.
# Two malloc arenas instead of up to 8 per core (Streamlit runs each session in its own thread, and each
# arena keeps its own freed pages), and Arrow's buffers on malloc rather than its own pool, so that what
# one session frees the next reuses and malloc_trim (importer.server.memory) hands back. Measured with
# bench/bench_dashboard.py --parallel 2 (docs/DASHBOARD.md).
# And a fixed mmap threshold: glibc serves every block of 128 KiB or more (Arrow buffers, the COPY text, a
# sheet's cells) with its own mapping, given back to the OS when freed. Left dynamic, glibc raises the threshold
# each time such a block is freed (to 32 MB at most), and later big blocks land in the heap, where a step's
# freed buffers stay resident under the next step's small objects: one 100,000-row flow peaked at 325-331 MB
# with it dynamic and at 298 with it fixed, and the server rested 30 MB lower (bench/bench_512mb.py).
# (app.py sets the same with mallopt, importer.server.memory.fix_mmap_threshold, for `streamlit run app.py`;
# the CLI does not.)
SERVER_ENV = {"MALLOC_ARENA_MAX": "2", "ARROW_DEFAULT_MEMORY_POOL": "system",
              "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD)}
_CHILD = "--in-process"  # the exec'd process: allocators set, now install the front door and run Streamlit


def install_front_door(hops: int) -> None:
    """Puts front_door.FrontDoor outermost in Streamlit's middleware and turns uvicorn's proxy headers off.

    Streamlit 1.67 builds its Starlette app with starlette_app.create_streamlit_middleware() and uvicorn's
    options with starlette_server._get_uvicorn_config_kwargs(); both are wrapped. If a Streamlit upgrade
    renames them, the server refuses to start rather than run without the guard (tests/test_front_door.py
    starts a real one).
    """
    from starlette.middleware import Middleware
    from streamlit.web.server.starlette import starlette_app, starlette_server

    from importer.server.front_door import FrontDoor, mark_serving

    middleware = getattr(starlette_app, "create_streamlit_middleware", None)
    uvicorn_kwargs = getattr(starlette_server, "_get_uvicorn_config_kwargs", None)
    if middleware is None or uvicorn_kwargs is None:
        raise RuntimeError("this Streamlit version has no create_streamlit_middleware / _get_uvicorn_config_kwargs: "
                           "importer.server.serve cannot put its front door before it")

    def with_front_door() -> list[Any]:
        mark_serving()  # the pages link their downloads to the front door's route
        return [Middleware(FrontDoor, hops=hops), *middleware()]

    def without_proxy_headers() -> dict[str, Any]:
        return {**uvicorn_kwargs(), "proxy_headers": False}

    starlette_app.create_streamlit_middleware = with_front_door
    starlette_server._get_uvicorn_config_kwargs = without_proxy_headers


def main(argv: list[str]) -> None:
    if argv[:1] == [_CHILD]:
        from streamlit.web.cli import main as streamlit_main

        from importer.settings import Settings

        install_front_door(Settings.from_env().trusted_proxy_hops)
        streamlit_main(args=argv[1:], prog_name="streamlit")
        return
    env = {**SERVER_ENV, **os.environ}  # a value set on purpose in the environment wins
    os.execve(sys.executable, [sys.executable, "-m", "importer.server.serve", _CHILD, *argv], env)


if __name__ == "__main__":
    main(sys.argv[1:])
