"""Whether a dry run is still true: the database state it saw, against the state now.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from importer.database.ledger import aware, get_run, now
from importer.database.lookup import lookup
from importer.database.schema import current_revision, customer_changes, reading
from importer.outcomes.row_errors import RunStatus
from importer.review.operations import _plural
from importer.workspace.store import _runs
from schemas.customer import UNIQUE_FIELDS


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


def rows_touched(engine: sa.Engine, run_ids: Sequence[int], normalised: pd.DataFrame) -> int:
    """How many of the file's rows share a key (shipping mark, phone, e-mail) with a customer these runs
    created or updated, before or after the update: set queries by key, a few thousand keys per query."""
    ids = {int(i) for i in run_ids}
    touched: set[int] = set()
    with reading(engine) as conn:
        for field in UNIQUE_FIELDS:
            if field not in normalised:
                continue
            column = normalised[field].dropna()
            if column.empty:
                continue
            hits = lookup(conn, field, column.unique().tolist(), ("id", field, "import_run_id"))
            if not hits:
                continue
            changed = {int(r) for r in conn.execute(
                sa.select(customer_changes.c.customer_id).where(
                    customer_changes.c.run_id.in_(ids),
                    customer_changes.c.customer_id.in_([row.id for row in hits.values()])))
                .scalars()} if hits else set()
            keys = {value for value, row in hits.items() if row.import_run_id in ids or row.id in changed}
            touched.update(int(r) for r in column.index[column.isin(keys)])
        # An update that moved a key away from a value of this file touched it too (the before-image).
        before: dict[str, set[str]] = {field: set() for field in UNIQUE_FIELDS}
        for record in conn.execute(sa.select(customer_changes.c.before)
                                   .where(customer_changes.c.run_id.in_(ids))).scalars():
            for field in UNIQUE_FIELDS:
                if (record or {}).get(field):
                    before[field].add(str(record[field]))
    for field, values in before.items():
        if values and field in normalised:
            column = normalised[field].dropna()
            touched.update(int(r) for r in column.index[column.isin(values)])
    return len(touched)


def _undone_since(row: Any, seen: DatabaseState) -> bool:
    undone_at = aware(row.undone_at)
    return undone_at is not None and (seen.last_undone_at is None or undone_at > seen.last_undone_at)


def stale_reason(engine: sa.Engine, seen: DatabaseState, sha256: str,
                 normalised: pd.DataFrame | None = None) -> str | None:
    """Why a dry run's counts are out of date, naming the run that changed the database since; None if not.

    `Run #3 imported this file 2 minutes ago; run the dry run again.` With the file's rows (`normalised`), a
    finished run of another file that touched none of their keys leaves the dry run true (two branches
    importing different customers); a run still importing, or an undo, always makes it stale.
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

    touched = 0
    if normalised is not None and all(
            row.sha256 != sha256 and row.status != RunStatus.RUNNING.value and not _undone_since(row, seen)
            for row in rows):
        touched = rows_touched(engine, [row.id for row in rows], normalised)
        if touched == 0:
            return None
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
    shares = f", touching {_plural(touched, 'row')} of this file" if touched else ""
    return (f"Run #{row.id}{who} imported {what} {ago(row.finished_at or row.started_at)}{shares}; run the dry "
            "run again.")
