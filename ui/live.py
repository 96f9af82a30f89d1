"""What the dashboard's live parts read on each tick: little, and only again when the run ledger changed.

Small parts of a page redraw themselves every few seconds (`st.fragment(run_every=refresh_seconds())`): the
sidebar's customer count and running imports (ui/jobs.py), the Import page's dry-run verdict and Import
button (views/load.py), Upload's workspace list (ui/workspace.py). Never the whole page: a whole-page timer
once blanked the new page's main area in Chromium after page changes.

A tick first reads the run ledger's fingerprint (importer.review.staleness.database_state: one aggregate
over the runs table, which any import, resume, undo or batch changes). What depends on the ledger (the
customer count, the running runs, a dry run's verdict) is read again only when the fingerprint moved, or
while a run goes on; otherwise the tick reuses what this session read last.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
import streamlit as st

from importer.database.ledger import count_customers
from importer.review.session import Readiness
from importer.review.staleness import DatabaseState, database_state
from importer.server import jobs
from importer.server.jobs import RunningRun
from ui.engine import engine, settings

# Session values.
STATUS = "live_status"  # (DatabaseState, DatabaseStatus) the session's last tick read
READY = "live_readiness"  # ((key, DatabaseState), Readiness) of the page's dry run, as last worked out
DRY_RUN_AGAIN = "live_dry_run_again"  # set by the banner's one-click "Run the dry run again": the page runs it
HELD = "live_dry_run_held"  # the verdict was stale while another run imported and is current again


def refresh_seconds() -> int:
    """Seconds between two ticks of a live part (LIVE_REFRESH_SECONDS, at least 1)."""
    return max(1, settings().live_refresh_seconds)


@dataclass(frozen=True)
class DatabaseStatus:
    """The sidebar's numbers: customers stored, and the runs importing now (any tab, any server)."""

    customers: int
    running: tuple[RunningRun, ...]


def database_status(db: sa.Engine | None = None) -> DatabaseStatus:
    """The customers stored and the runs importing now: read again only when the ledger's fingerprint
    changed since this session's last read, or a run was going on then."""
    db = db if db is not None else engine()
    now_state = database_state(db)
    last = st.session_state.get(STATUS)
    if last is not None and last[0] == now_state and not last[1].running:
        return last[1]
    status = DatabaseStatus(count_customers(db), tuple(jobs.running_runs(db)))
    st.session_state[STATUS] = (now_state, status)
    return status


def ledger_now() -> DatabaseState:
    return database_state(engine())


def remember_readiness(key: object, ready: Readiness, at: DatabaseState) -> Readiness:
    """The verdict the page worked out in its full run (`at`: the ledger's fingerprint before it did)."""
    st.session_state[READY] = ((key, at), ready)
    return ready


def readiness(key: object, work_out: Callable[[], Readiness]) -> Readiness:
    """The dry run's verdict on a tick: the last one while the ledger and `key` (workspace, version, choices)
    are as they were, else worked out again (`work_out`: the engine's readiness, which may compare the file's
    keys with the runs since: done once per change of the ledger, not once per tick)."""
    now_state = ledger_now()
    last = st.session_state.get(READY)
    if last is not None and last[0] == (key, now_state):
        ready: Readiness = last[1]
        return ready
    return remember_readiness(key, work_out(), now_state)
