"""A workspace's runs: what a run started from it records, resuming it at exactly that state, and the
changes made after it started (kept in the workspace, never imported by that run).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import sqlalchemy as sa

from importer.api import Upload
from importer.database import ledger
from importer.database.ledger import check_workspace, get_run, owner_alive
from importer.database.schema import (
    reading,
)
from importer.errors import (
    FileMismatch,
    RunError,
    WorkspaceError,
)
from importer.identity import Actor
from importer.outcomes.row_errors import RunStatus
from importer.settings import Settings
from importer.workspace.replay import Handed, replay_operations
from importer.workspace.store import _RESUMABLE, Opened, _changes_after, _recorded_seqs, _runs, load_workspace


def changes_after_run(engine: sa.Engine, workspace_id: int, run_id: int) -> int:
    """How many changes were made to the workspace after the run started (so are not in it): "N changes
    made after the import started were not imported"."""
    with reading(engine) as conn:
        return _changes_after(conn, workspace_id, run_id)


def workspace_run_settings(opened: Opened) -> dict[str, Any]:
    """What a run records (in import_runs.settings, beside the mapping; the id and seq also in their columns)
    to resume from this workspace."""
    return {"workspace_id": opened.info.id, "workspace_operations": list(opened.seqs),
            "workspace_seq": opened.version}


def run_of_workspace(engine: sa.Engine, workspace_id: int) -> int | None:
    """The newest run a workspace's import would resume (running with its owner gone, or interrupted)."""
    with reading(engine) as conn:
        rows = conn.execute(sa.select(_runs.c.id, _runs.c.status, _runs.c.owner, _runs.c.heartbeat_at)
                            .where(_runs.c.workspace_id == workspace_id, _runs.c.status.in_(_RESUMABLE))
                            .order_by(_runs.c.id.desc())).all()
        for row in rows:
            if row.status == RunStatus.INTERRUPTED.value or not owner_alive(conn, row.id, row.owner, row.heartbeat_at):
                return int(row.id)
    return None


def check_resume(engine: sa.Engine, upload: Upload, workspace: tuple[int, Sequence[int]] | None,
                 settings: Settings, *, actor: Actor | None = None) -> tuple[Upload, tuple[int, Sequence[int]] | None]:
    """The upload and workspace an import of `upload` from `workspace` must import: while the workspace's
    interrupted run began at an earlier state, that state replayed (upload_for_workspace_resume), so the
    resume imports exactly what the run started with and the changes made since stay in the workspace
    (changes_after_run); else what was given. The loader refuses the other state (ResumeRefused).
    actor: who imports; NotYours (naming the owner) unless the workspace is theirs or they are an admin."""
    if workspace is None:
        return upload, None
    check_workspace(engine, int(workspace[0]), actor, "import (or resume the run of)")
    run_id = run_of_workspace(engine, int(workspace[0]))
    if run_id is None:
        return upload, workspace
    with reading(engine) as conn:
        seq, recorded = _recorded_seqs(conn, run_id)
    seqs = [int(n) for n in workspace[1]]
    if recorded == seqs if recorded is not None else (seq is None or seq == max(seqs, default=0)):
        return upload, workspace
    resumed = upload_for_workspace_resume(engine, run_id, settings, actor=actor)
    assert resumed.workspace is not None  # upload_for_workspace_resume names it
    return resumed, resumed.workspace


def upload_for_workspace_resume(engine: sa.Engine, run_id: int, settings: Settings, *,
                                actor: Actor | None = None) -> Upload:
    """The upload an interrupted run was importing, replayed from its workspace: no re-upload, fixes kept.

    RunError when the run is not interrupted, has no workspace, or its workspace is gone or changed.
    actor: who resumes; NotYours unless the workspace (else the run) is theirs or they are an admin."""
    run = get_run(engine, run_id)
    if run.status is not RunStatus.INTERRUPTED:
        raise RunError(f"run {run_id} is {run.status.value}; only an interrupted run can be resumed")
    with reading(engine) as conn:
        workspace_id = conn.execute(sa.select(_runs.c.workspace_id).where(_runs.c.id == run_id)).scalar()
        seq = conn.execute(sa.select(_runs.c.workspace_seq).where(_runs.c.id == run_id)).scalar()
    workspace_id = workspace_id or run.settings.get("workspace_id")
    again = f"upload {run.file_name} again to resume it"
    if workspace_id is None:
        raise RunError(f"run #{run_id} was not imported from a saved workspace; {again}")
    if actor is not None:
        ledger.check_owner(engine, actor, ledger.workspace_owner(engine, int(workspace_id)) or run.user_name,
                    f"resume run #{run_id} (workspace {workspace_id})")
    seqs = run.settings.get("workspace_operations")
    try:
        stored = load_workspace(engine, int(workspace_id), settings, seqs=seqs, discarded=True)
    except WorkspaceError as exc:
        raise RunError(f"run #{run_id} cannot be resumed from its workspace: {exc}") from exc
    if seqs is None and seq is not None:  # the seq alone: the operations up to it that are active
        stored = replace(stored, operations=tuple((n, op) for n, op in stored.operations if n <= int(seq)))
    if seqs is not None and len(stored.operations) != len(seqs):
        raise RunError(f"the workspace of run #{run_id} changed since the run started (operations it used were "
                       f"undone and replaced); {again}")
    snapshot, stored = Handed(stored.snapshot), replace(stored, snapshot=None)
    upload = replay_operations(stored.data, stored.info.file_name, settings, stored.info.sheet, stored.mapping,
                               [op for _, op in stored.operations], snapshot=snapshot)
    if upload.sha256 != run.sha256:
        raise FileMismatch(f"the workspace of run #{run_id} holds another file than {run.file_name}; {again}")
    return replace(upload, workspace=(int(workspace_id), tuple(n for n, _ in stored.operations)))
