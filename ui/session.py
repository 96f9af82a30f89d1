"""The page's handle on the engine's review session (importer.review.session) of the upload it shows.

The session state holds which workspace and version the page shows (ui/workspace.py); the session itself,
its decisions and its dry run live in the engine and the database.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from importer.api import Upload
from importer.database.ledger import now
from importer.review.session import DryRunSeen, Readiness, ReviewSession, choices_of, counts_of, verdict
from importer.review.staleness import database_state
from importer.workspace import store as ws
from ui import keys, state, workspace
from ui.engine import engine, settings


def current(upload: Upload | None) -> ReviewSession | None:
    """The review session of the upload the page shows; None when it is not saved as a workspace."""
    found = workspace.meta()
    if found is None or upload is None:
        return None
    info, version, seqs = found
    return ReviewSession(engine(), settings(), workspace.actor(),
                         ws.Opened(info, upload, version, seqs, workspace.excluded()))


def readiness(session: ReviewSession | None, upload: Upload, arguments: dict[str, Any]) -> Readiness:
    """May the import start, and why not: the engine's rule, on the workspace's stored dry run; an upload that
    could not be saved as a workspace keeps its dry run in this tab only."""
    if session is not None:
        ready = session.readiness(arguments)
        if ready.dry_run is not None:
            return ready
        version = session.version  # the workspace went (another tab imported it): this tab's copy tells why
    else:
        version = state.version()
    seen = st.session_state.get(keys.DRY_RUN_SAW)
    seen = seen if isinstance(seen, DryRunSeen) else None
    return Readiness(seen, verdict(engine(), seen, version, choices_of(arguments), upload.sha256,
                                   upload.checked.normalised))


def keep_dry_run(seen: DryRunSeen | None) -> None:
    """This tab's copy of the dry run it ran (the workspace's own copy goes with the workspace)."""
    st.session_state[keys.DRY_RUN_SAW] = seen


def remember_unsaved_dry_run(seen_before: Any, result: Any, arguments: dict[str, Any]) -> None:
    """A dry run of an upload without a workspace: what it saw, kept in this tab."""
    st.session_state[keys.DRY_RUN_SAW] = DryRunSeen(state.version(), choices_of(arguments), seen_before,
                                                    counts_of(result), now())


def database_now() -> Any:
    return database_state(engine())
