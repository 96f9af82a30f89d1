"""Where a run's rows came from: the file as it is, or a saved workspace at a recorded operation.

A run started from a workspace records the workspace and the last operation it imports (import_runs
.workspace_id, 0004, and .workspace_seq, 0008; the operations' seqs also in its settings). Only an import of
that workspace at that state resumes it (importer.database.loader); the file as it is is refused with what
the workspace did and what to do (ResumeRefused), since resuming it from the raw bytes would import rows the
analyst excluded and undo their edits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from importer.database.schema import workspace_operations
from importer.errors import ResumeRefused


def run_workspace(row: Any) -> tuple[int | None, int | None]:
    """(workspace id, workspace seq) an import_runs row recorded, from its columns or else its settings."""
    recorded = row.settings or {}
    workspace_id = row.workspace_id if row.workspace_id is not None else recorded.get("workspace_id")
    seq = row.workspace_seq if row.workspace_seq is not None else recorded.get("workspace_seq")
    return (None if workspace_id is None else int(workspace_id)), (None if seq is None else int(seq))


def unreviewed(row: Any) -> bool:
    """Whether a workspace's run imported the file as it is: it recorded no operation (nothing excluded, edited
    or decided), so any import of the same bytes and sheet may resume it, as a run of the plain file."""
    recorded = (row.settings or {}).get("workspace_operations")
    _, seq = run_workspace(row)
    return recorded == [] or (recorded is None and not seq)


def _plural(count: int, one: str) -> str:
    return f"{count:,} {one if count == 1 else one + 's'}"


def describe_operations(conn: sa.Connection, workspace_id: int, seqs: Sequence[int] | None) -> str:
    """What a workspace's operations `seqs` (None: the active ones) do, in a few words: "3,000 rows excluded,
    12 edits, 2 other changes" (rows excluded net of those included again; edits are cells)."""
    ops = workspace_operations
    where = ops.c.undone == sa.false() if seqs is None else ops.c.seq.in_([int(n) for n in seqs])
    excluded: set[int] = set()
    edits = other = 0
    for kind, payload in conn.execute(sa.select(ops.c.kind, ops.c.payload)
                                      .where(ops.c.workspace_id == workspace_id, where).order_by(ops.c.seq)):
        if kind == "exclude":
            excluded.update(int(r) for r in payload.get("rows", ()))
        elif kind == "include":
            excluded.difference_update(int(r) for r in payload.get("rows", ()))
        elif kind == "edit":
            edits += len(payload.get("edits", ()))
        else:
            other += 1
    parts = [_plural(len(excluded), "row") + " excluded"] if excluded else []
    parts += [_plural(edits, "edit")] if edits else []
    parts += [_plural(other, "other change")] if other else []
    return ", ".join(parts) or "no changes"


def refusal(conn: sa.Connection, row: Any, own_workspace: int | None) -> ResumeRefused:
    """Why an import may not resume (nor silently pass by) the interrupted run `row` of a workspace: the
    file as it is (own_workspace None), or the same workspace at another state."""
    workspace_id, _ = run_workspace(row)
    assert workspace_id is not None  # only a workspace's run is refused
    recorded = (row.settings or {}).get("workspace_operations")
    what = describe_operations(conn, workspace_id, recorded)
    if own_workspace is None:
        message = (f"Run #{row.id} was started from a reviewed workspace ({what}) and was cut off after "
                   f"{row.rows_done:,} rows: importing {row.file_name} as it is would not resume it (the fixes are "
                   f"in workspace {workspace_id}, not in the file). Resume it in the dashboard or with "
                   f"`--workspace {workspace_id}`; `--new-run` imports the file as it is (a new run; run #{row.id} "
                   "stays resumable)")
    else:
        message = (f"Run #{row.id} was started from this workspace at an earlier state ({what}) and was cut off "
                   f"after {row.rows_done:,} rows: resume it (History, or `--workspace {workspace_id}`), which "
                   "imports that state; the changes made since stay in the workspace")
    return ResumeRefused(message, run_id=int(row.id), workspace_id=workspace_id)


def reviewed_run(engine: sa.Engine, sha256: str, sheet: str | None,
                 own_workspace: int | None = None) -> tuple[int, int, str] | None:
    """The newest interrupted run of this file that came from a workspace other than `own_workspace`:
    (run id, its workspace, what the workspace did), for the Upload page's offer to resume it with its fixes."""
    from importer.database.ledger import resumable_on
    from importer.database.schema import reading

    with reading(engine) as conn:
        for row in resumable_on(conn, sha256, sheet):
            workspace_id, _ = run_workspace(row)
            if workspace_id is not None and workspace_id != own_workspace and not unreviewed(row):
                recorded = (row.settings or {}).get("workspace_operations")
                return int(row.id), workspace_id, describe_operations(conn, workspace_id, recorded)
    return None
