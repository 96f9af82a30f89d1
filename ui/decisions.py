"""The analyst's decisions as the pages read and make them: from and into the session's workspace.

Accept or reject a change to a stored customer, the blank-cell mode and "keep both" on look-alikes are
operations of the workspace (importer.review.decisions), so a refresh, another tab, a restart and the CLI see
them. `current()` reads the decisions in force (read once per workspace version, kept with that version as a
derived value); `decide(op)` saves one. The session holds no decision of its own.
"""

from __future__ import annotations

from typing import Any

from importer.errors import DatabaseError
from importer.review.decisions import Decisions, load_decisions
from ui import keys, state, workspace
from ui.engine import engine


def current() -> Decisions:
    """The decisions of the session's workspace (none without one, or while the database cannot be read)."""
    found = workspace.meta()
    if found is None:
        return Decisions()
    token = (found[0].id, found[1])
    known = state.cached(keys.WORKSPACE_DECISIONS, token)
    if known is None:
        try:
            known = load_decisions(engine(), found[0].id)
        except DatabaseError:
            return Decisions()
        state.store(keys.WORKSPACE_DECISIONS, token, known)
    return known


def decide(*ops: Any) -> bool:
    """Save decisions in the session's workspace, in order; False (and a notice saying why) if one was not."""
    return all(workspace.decide(op) for op in ops)
