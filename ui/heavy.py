"""Sharing the one server's memory between analysts: heavy steps in turn, closed tabs freed promptly.

`heavy_step(label, rows)` wraps whatever computes over a whole upload (reading it, re-validating, bulk
fixes, a dry run, an import). It takes a slot of the process-wide `importer.server.governor` budget
(MEMORY_BUDGET_MB), charged by bytes where they are known: `heavy_step(label, checked)` by the checked
frames' size, `cost_mb=` by an estimate such as `heavy_cost_for_file(data, name)` (the workbook's declared
inflated sizes); an int of rows is charged as rows of ordinary width. While another analyst's step holds
the budget, the page shows
"Waiting for another import to finish (1 ahead of you)", redrawn as the queue moves, then runs the body:

    with heavy_step("import", checked.total):
        result = run_import(...)

`watch_session()` (app.py calls it on every run) registers the browser session with a janitor thread
that closes a session whose tab went away once it has been disconnected for half of
`server.disconnectedSessionTTL` (60 s in .streamlit/config.toml, so 30 s). Streamlit alone keeps such a
session until the TTL, then only hides it: it stays in memory, with its uploaded files, until another
tab disconnects, and a close after the TTL no longer finds it (hence half). Closing removes its uploaded
bytes, and the janitor empties its session state (the upload's frames: Streamlit's own loop can keep
the last session object referenced), then hands the freed memory back to the OS.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import streamlit as st

from importer.intake.readers import estimated_read_mb
from importer.output.downloads import discard_owners
from importer.server import governor, steps
from importer.server.governor import GaveUp, Waiting
from importer.server.memory import release_free_memory
from ui.engine import settings

WAIT_ICON = ":material/hourglass_top:"
_LOG = logging.getLogger(__name__)


def _session_gone(session_id: str | None) -> bool:
    """True once the browser session running this script is disconnected (its tab closed)."""
    from streamlit.runtime import Runtime

    return session_id is not None and Runtime.exists() and not Runtime.instance().is_active_session(session_id)


def _show_wait(placeholder, told: list[Waiting], waiting: Waiting) -> None:
    told.append(waiting)
    del told[1:-1]  # the first and the latest are enough
    placeholder.info(f"{waiting.message()}. This server runs big steps one at a time so that it keeps "
                     f"within its memory; yours starts by itself. Waiting {waiting.waited_s:.0f} s.", icon=WAIT_ICON)


def _session_id() -> str | None:
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return None if ctx is None else ctx.session_id


def _session_state() -> object | None:
    """This session's SessionState (the object behind st.session_state that lives as long as the session)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return None if ctx is None else getattr(ctx.session_state, "_state", None)


def _cost_mb(rows: Any, cost_mb: float | None) -> float:
    """The MB a step is charged: cost_mb if given, else the checked frames' bytes (an object with `original`
    and `normalised` frames), else `rows` rows of ordinary width."""
    if cost_mb is not None:
        return cost_mb
    if hasattr(rows, "original") and hasattr(rows, "normalised"):
        return governor.mb(governor.cost_of_frames(governor.frames_bytes(rows.original, rows.normalised)))
    return governor.cost_for_rows(int(rows))


@contextmanager
def heavy_step(label: str, rows: Any = 0, *, cost_mb: float | None = None) -> Iterator[None]:
    """Run the body when the memory budget has room for the step; show the wait.

    The step is charged `cost_mb` if given, else by the size of `rows` when it is a Checked upload (its
    frames' bytes), else as `rows` rows of ordinary width (importer.server.governor.cost_for_rows).

    `label` says what the step does, as a noun ("upload", "re-validation", "bulk fix", "dry run",
    "import"): a waiting analyst reads "Waiting for another <label> to finish (N ahead of you)".
    A tab closed while waiting leaves the queue (Streamlit stops the script at the next redraw).
    """
    gov = governor.shared(max(1, settings().memory_budget_mb))
    placeholder = st.empty()
    told: list[Waiting] = []
    try:
        with gov.slot(_cost_mb(rows, cost_mb), label, on_wait=partial(_show_wait, placeholder, told),
                      give_up=partial(_session_gone, _session_id())):
            if told:  # it waited: say so (the page may take a while to show why it was slow)
                placeholder.caption(f"Waited {told[-1].waited_s:.0f} s for another {told[0].holder or 'step'} "
                                    "to finish.")
            yield
    except GaveUp:
        st.stop()


def server_slot(label: str, rows: int = 0, *, cost_mb: float | None = None) -> Callable[..., Any]:
    """The slot heavy_step takes, for a step run in a server thread (importer.server.steps's `slot`), charged
    `cost_mb` if given, else `rows` rows of ordinary width."""
    return partial(governor.shared(max(1, settings().memory_budget_mb)).slot, _cost_mb(rows, cost_mb), label)


def session_owner() -> str | None:
    """This browser session's id: the owner of its server steps (freed when the janitor closes it)."""
    return _session_id()


def heavy_cost_for_file(data: bytes, file_name: str) -> float:
    """MB to charge for reading a file not yet parsed (importer.intake.readers.estimated_read_mb)."""
    return estimated_read_mb(data, file_name, settings())


# --- closed tabs ----------------------------------------------------------------------------------


class Janitor:
    """Closes sessions that stay disconnected for `grace` seconds; then hands freed memory back.

    `runtime` is Streamlit's Runtime (is_active_session, mark_session_nonresumable and
    clear_user_info_for_session, all safe from any thread). A closed session is marked non-resumable
    first, so a reconnect cannot adopt it while it is being closed (the browser gets a new session);
    then its session state (if watch() was given it) is emptied.
    """

    def __init__(self, runtime, grace: float, interval: float = 2.0,
                 on_closed: Callable[[list[str]], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.runtime, self.grace, self.interval = runtime, grace, interval
        self.on_closed = on_closed
        self.clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, float | None] = {}  # session id -> when it was first seen disconnected
        # session id -> its SessionState (no weak references to it; dropped when the session is closed)
        self._states: dict[str, object] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, session_id: str, state: object | None = None) -> None:
        with self._lock:
            self._sessions.setdefault(session_id, None)
            if state is not None:
                self._states.setdefault(session_id, state)

    def watched(self) -> list[str]:
        with self._lock:
            return list(self._sessions)

    def sweep(self) -> list[str]:
        """One pass: close the sessions disconnected for `grace` seconds or more; their ids."""
        now = self.clock()
        due: list[tuple[str, Any]] = []
        with self._lock:
            for session_id, since in list(self._sessions.items()):
                if self.runtime.is_active_session(session_id):
                    self._sessions[session_id] = None
                elif since is None:
                    self._sessions[session_id] = now
                elif now - since >= self.grace:
                    due.append((session_id, self._states.pop(session_id, None)))
                    del self._sessions[session_id]
        closed = []
        for session_id, state in due:
            self.runtime.mark_session_nonresumable(session_id)
            if self.runtime.is_active_session(session_id):
                continue  # reconnected just now: leave it (its next disconnect ends it at once)
            self.runtime.clear_user_info_for_session(session_id)  # inactive: closed on the event loop
            _empty(state)
            closed.append(session_id)
        if closed and self.on_closed is not None:
            self.on_closed(closed)
        return closed

    def _run(self) -> None:
        freed_pending = False
        while not self._stop.wait(self.interval):
            if freed_pending:
                # The closes ran on the event loop since the last pass: return their memory to the OS.
                release_free_memory()
                freed_pending = False
            try:
                freed_pending = bool(self.sweep())
            except Exception:  # the janitor must outlive one bad pass
                _LOG.exception("closing disconnected sessions failed")

    def start(self) -> Janitor:
        self._thread = threading.Thread(target=self._run, name="session-janitor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


def _empty(state) -> None:
    """Delete every key of a closed session's SessionState (no script runs for it any more)."""
    if state is None:
        return
    keys = state.filtered_state
    for key in list(keys() if callable(keys) else keys):
        try:
            del state[key]
        except Exception:  # noqa: BLE001, S112 - a key the session state refuses to drop: keep going
            continue


_janitor: Janitor | None = None


def _closed(session_ids: list[str]) -> None:
    """Closed sessions: their server steps are dropped and their downloads deleted."""
    steps.drop_owners(session_ids)
    discard_owners(session_ids)


_janitor_lock = threading.Lock()


def watch_session() -> None:
    """Register this run's browser session with the process's janitor (started on first use)."""
    global _janitor
    from streamlit import config
    from streamlit.runtime import Runtime

    session_id = _session_id()
    if session_id is None or not Runtime.exists():
        return  # AppTest or bare mode: no server sessions to clean up
    try:
        with _janitor_lock:
            if _janitor is None:
                grace = max(1.0, float(config.get_option("server.disconnectedSessionTTL")) / 2)
                _janitor = Janitor(Runtime.instance(), grace, on_closed=_closed).start()
        _janitor.watch(session_id, _session_state())
    except Exception:  # never let the clean-up break a page
        _LOG.exception("watching the session failed")
