"""Whether a dry run is still true: the database state it saw, against the state now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from importer.database.ledger import aware, get_run, now
from importer.database.schema import (
    current_revision,
    reading,
)
from importer.outcomes.row_errors import RunStatus
from importer.review.operations import _plural
from importer.workspace.store import _runs


@dataclass(frozen=True)
class DatabaseState:
    """A cheap fingerprint of the import history: any import, resume or undo changes it."""

    runs: int = 0
    last_run_id: int = 0
    last_finished_at: datetime | None = None
    last_undone_at: datetime | None = None
    rows_done: int = 0


def database_state(engine: sa.Engine) -> DatabaseState:
    """The state a dry run saw (record it with the dry run's result; see stale_reason)."""
    if current_revision(engine) is None:
        return DatabaseState()
    with reading(engine) as conn:
        row = conn.execute(sa.select(sa.func.count(), sa.func.max(_runs.c.id), sa.func.max(_runs.c.finished_at),
                                     sa.func.max(_runs.c.undone_at), sa.func.sum(_runs.c.rows_done))).one()
    return DatabaseState(int(row[0]), int(row[1] or 0), aware(row[2]), aware(row[3]), int(row[4] or 0))


def ago(when: datetime | None) -> str:
    """`just now`, `2 minutes ago`, `3 hours ago`, `5 days ago`."""
    seconds = max(0, int((now() - (aware(when) or now())).total_seconds()))
    for size, unit in ((86_400, "day"), (3_600, "hour"), (60, "minute")):
        if seconds >= size:
            return f"{_plural(seconds // size, unit)} ago"
    return "just now"


def stale_reason(engine: sa.Engine, seen: DatabaseState, sha256: str) -> str | None:
    """Why a dry run's counts are out of date, naming the run that changed the database since; None if not.

    `Run #3 imported this file 2 minutes ago; run the dry run again.`
    """
    if database_state(engine) == seen:
        return None
    changed = sa.or_(_runs.c.id > seen.last_run_id, _runs.c.status == RunStatus.RUNNING.value,
                     _runs.c.finished_at > seen.last_finished_at if seen.last_finished_at
                     else _runs.c.finished_at.is_not(None),
                     _runs.c.undone_at > seen.last_undone_at if seen.last_undone_at else _runs.c.undone_at.is_not(None))
    with reading(engine) as conn:
        rows = conn.execute(sa.select(_runs).where(changed)).all()
    if not rows:
        return "The import history changed since the dry run; run the dry run again."

    def moment(row: Any) -> datetime:
        return max(t for t in (aware(row.undone_at), aware(row.finished_at), aware(row.started_at)) if t)

    row = max(rows, key=moment)
    what = "this file" if row.sha256 == sha256 else row.file_name
    who = f" ({row.user_name})" if row.user_name else ""
    undone_at = aware(row.undone_at)
    if undone_at is not None and (seen.last_undone_at is None or undone_at > seen.last_undone_at):
        return f"Run #{row.id}{who} of {what} was undone {ago(row.undone_at)}; run the dry run again."
    status = get_run(engine, row.id).status
    if status is RunStatus.RUNNING:
        return (f"Run #{row.id}{who} is importing {what} now ({_plural(row.rows_done, 'row')} so far); "
                "wait for it to finish, then run the dry run again.")
    if status is RunStatus.INTERRUPTED:
        return (f"Run #{row.id}{who} imported {_plural(row.rows_done, 'row')} of {what} before it stopped "
                f"{ago(row.finished_at or row.started_at)}; run the dry run again.")
    return f"Run #{row.id}{who} imported {what} {ago(row.finished_at or row.started_at)}; run the dry run again."
