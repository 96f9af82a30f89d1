"""Workspaces: an upload kept in the database as its file plus an ordered, undoable list of operations.

What the analyst sees is replay(file, operations) (OpenRefine's project model): deterministic, so a refresh,
another tab, a restart or another dashboard instance against the same database rebuilds the same frame.
A live operation is applied at once to the frame in hand (perform); replay folds all of them, with the text
changes batched and the rows validated once at the end, so 1,000 operations cost about one read of the file.
Also here: the database state a dry run saw (stale_reason), and resuming a run from its workspace.
"""

from __future__ import annotations

import hashlib
import logging
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any, NamedTuple

import sqlalchemy as sa

from importer.api import Upload
from importer.checks.validate import Checked
from importer.database.ledger import aware, check_workspace, now, owner_alive
from importer.database.schema import (
    current_revision,
    db_errors,
    reading,
    workspace_operations,
    workspaces,
)
from importer.errors import (
    LimitExceeded,
    WorkspaceBusy,
    WorkspaceChanged,
    WorkspaceError,
)
from importer.identity import Actor
from importer.intake.zip_guard import MB
from importer.mapping.columns import ColumnMapping
from importer.outcomes.row_errors import RunStatus
from importer.review.exclusions import excluded_after
from importer.review.operations import applier, kind_of, operation_from_dict, summary_of
from importer.settings import Settings
from importer.workspace.replay import Handed, replay_operations
from importer.workspace.shared import SharedFrames, state_key

# import_runs.workspace_id (migration 0004), named here so this module needs nothing new in importer.database.schema.
_runs = sa.table("import_runs", sa.column("id", sa.Integer), sa.column("status", sa.String),
                 sa.column("workspace_id", sa.Integer), sa.column("workspace_seq", sa.Integer),
                 sa.column("file_name", sa.String), sa.column("owner", sa.String),
                 sa.column("heartbeat_at", sa.DateTime(timezone=True)), sa.column("settings", sa.JSON),
                 sa.column("sha256", sa.String), sa.column("user_name", sa.String),
                 sa.column("rows_done", sa.Integer), sa.column("started_at", sa.DateTime(timezone=True)),
                 sa.column("finished_at", sa.DateTime(timezone=True)),
                 sa.column("undone_at", sa.DateTime(timezone=True)))
_RESUMABLE = (RunStatus.RUNNING.value, RunStatus.INTERRUPTED.value)
_AUDIT = logging.getLogger("importer.audit")


# --- storage -------------------------------------------------------------------------------------------------


class HistoryEntry(NamedTuple):
    """One line of a workspace's history: undone entries are the ones redo would bring back."""

    seq: int
    summary: str
    undone: bool


@dataclass(frozen=True)
class WorkspaceInfo:
    """A workspace as the Upload page lists it."""

    id: int
    owner: str
    file_name: str
    sha256: str
    file_size: int
    sheet: str | None
    rows: int
    operations: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class StoredWorkspace:
    """A workspace as stored: its file and its active operations, (seq, operation) in order."""

    info: WorkspaceInfo
    data: bytes
    mapping: ColumnMapping | None
    operations: tuple[tuple[int, Any], ...]
    snapshot: bytes | None = None

    @property
    def version(self) -> int:
        """The last active seq (0 for none): the same version means the same frame."""
        return self.operations[-1][0] if self.operations else 0


@dataclass(frozen=True)
class Opened:
    """A workspace's frame as replayed (or kept up to date by perform), and the version it shows."""

    info: WorkspaceInfo
    upload: Upload
    version: int
    seqs: tuple[int, ...]
    excluded: tuple[Any, ...] = ()  # importer.review.exclusions.Excluded records of the rows left out


def _active_count() -> Any:
    ops = workspace_operations
    return (sa.select(sa.func.count()).where(ops.c.workspace_id == workspaces.c.id, ops.c.undone == sa.false())
            .scalar_subquery())


def _info(row: Any) -> WorkspaceInfo:
    return WorkspaceInfo(row.id, row.owner, row.file_name, row.sha256, row.file_size, row.sheet, row.rows,
                         row.operations, aware(row.created_at) or now(), aware(row.updated_at) or now())


_INFO_COLUMNS = (workspaces.c.id, workspaces.c.owner, workspaces.c.file_name, workspaces.c.sha256,
                 workspaces.c.file_size, workspaces.c.sheet, workspaces.c.rows, workspaces.c.created_at,
                 workspaces.c.updated_at, _active_count().label("operations"))


def create_workspace(engine: sa.Engine, owner: str, data: bytes, file_name: str, settings: Settings,
                     sheet: str | None = None, mapping: ColumnMapping | None = None, *, rows: int = 0,
                     snapshot: bytes | None = None) -> int:
    """Keep an upload (its bytes compressed, sheet and mapping) as a new workspace; returns its id.

    Pass the sheet and mapping the upload was read with (upload.sheet, upload.mapping), so that a later
    version of the header detection cannot read the file differently. Expired workspaces go at the same time.
    """
    if len(data) > settings.max_upload_mb * MB:
        raise LimitExceeded(f"{file_name} is {len(data) / MB:.1f} MB; the limit is {settings.max_upload_mb} MB "
                            "(MAX_UPLOAD_MB)", setting="MAX_UPLOAD_MB", limit=settings.max_upload_mb)
    expire_workspaces(engine, settings.workspace_days)
    stamp = now()
    compressed = zlib.compress(data, 6)
    with db_errors(engine), engine.begin() as conn:
        # The file and the snapshot are written after the row, each by _write_blob, in the same transaction:
        # one statement that held both (psycopg2 sends bytea as hex text in the query) made the save step's
        # peak 56 MB on PostgreSQL at 100,000 rows (3.8 MB file, 3.1 MB snapshot).
        workspace_id = int(conn.execute(workspaces.insert().returning(workspaces.c.id).values(
            owner=owner[:255], file_name=file_name[:255], sha256=hashlib.sha256(data).hexdigest(),
            file_size=len(data), data=b"", sheet=sheet, mapping=mapping.to_dict() if mapping else None,
            rows=rows, created_at=stamp, updated_at=stamp)).scalar_one())
        _write_blob(conn, workspaces.c.data, compressed, workspaces.c.id == workspace_id)
        del compressed
        if snapshot is not None:
            _write_blob(conn, workspaces.c.snapshot, snapshot, workspaces.c.id == workspace_id)
        return workspace_id


def list_workspaces(engine: sa.Engine, owner: str) -> list[WorkspaceInfo]:
    """The owner's open workspaces, the most recently changed first."""
    stmt = (sa.select(*_INFO_COLUMNS).where(workspaces.c.owner == owner, workspaces.c.discarded_at.is_(None))
            .order_by(workspaces.c.updated_at.desc(), workspaces.c.id.desc()))
    with reading(engine) as conn:
        return [_info(row) for row in conn.execute(stmt).all()]


def _decompress(blob: bytes, limit_mb: int) -> bytes:
    inflater = zlib.decompressobj()
    data = inflater.decompress(blob, limit_mb * MB + 1)
    if len(data) > limit_mb * MB or inflater.unconsumed_tail:
        raise WorkspaceError(f"the stored file is over {limit_mb} MB, the largest upload allowed; upload it again",
                             detail="The limit is the MAX_UPLOAD_MB setting.")
    return data


def _operations(conn: sa.Connection, workspace_id: int, seqs: Sequence[int] | None = None) -> list[tuple[int, Any]]:
    ops = workspace_operations
    where = ops.c.undone == sa.false() if seqs is None else ops.c.seq.in_(list(seqs))
    rows = conn.execute(sa.select(ops.c.seq, ops.c.kind, ops.c.payload)
                        .where(ops.c.workspace_id == workspace_id, where).order_by(ops.c.seq)).all()
    return [(row.seq, operation_from_dict(row.kind, row.payload)) for row in rows]


def _gone(workspace_id: int, settings: Settings) -> WorkspaceError:
    return WorkspaceError(f"workspace {workspace_id} is gone: it was discarded, or expired after "
                          f"{settings.workspace_days} days untouched; upload the file again",
                          detail="The days are the WORKSPACE_DAYS setting.")


def load_workspace(engine: sa.Engine, workspace_id: int, settings: Settings | None = None, *,
                   seqs: Sequence[int] | None = None, discarded: bool = False, file: bool = True,
                   snapshot: bool = True, actor: Actor | None = None) -> StoredWorkspace:
    """A workspace's file and active operations (or the operations `seqs`); WorkspaceError if it is gone.
    file=False: without the file (`data` is empty; stored_file reads it when it is needed); snapshot=False:
    without the snapshot.
    actor: who opens it; NotYours unless it is the owner or an admin (None: the engine itself)."""
    settings = settings or Settings()
    check_workspace(engine, workspace_id, actor, "open")
    with reading(engine) as conn:
        data = (workspaces.c.data,) if file else ()
        row = conn.execute(sa.select(*_INFO_COLUMNS, *data, workspaces.c.mapping,
                                     workspaces.c.discarded_at).where(workspaces.c.id == workspace_id)).first()
        if row is None or (row.discarded_at is not None and not discarded):
            raise _gone(workspace_id, settings)
        operations = _operations(conn, workspace_id, seqs)
        blob = _read_blob(conn, workspaces.c.snapshot, workspace_id) if snapshot else None
    return StoredWorkspace(_info(row), _decompress(row.data, settings.max_upload_mb) if file else b"",
                           ColumnMapping.from_dict(row.mapping) if row.mapping else None, tuple(operations),
                           blob)


BLOB_CHUNK = 1 << 20
"""Bytes of a stored blob read per query (_read_blob)."""


def _read_blob(conn: sa.Connection, column: sa.Column, workspace_id: int) -> bytes | None:
    """A workspace's blob column (the snapshot: 8 MB when most rows fail), read a megabyte at a time.
    Read whole, PostgreSQL sends it as hex text: its driver held the hex (twice the blob), the blob and a
    copy at once, and libpq's input buffer stayed at the hex's size for as long as the pooled connection
    lived (15 MB more for the rest of a replay)."""
    size = conn.execute(sa.select(sa.func.length(column)).where(workspaces.c.id == workspace_id)).scalar()
    if size is None:
        return None
    part = sa.func.substr(column, sa.bindparam("start"), BLOB_CHUNK, type_=sa.LargeBinary())
    query = sa.select(part).where(workspaces.c.id == workspace_id)
    parts = [conn.execute(query, {"start": start + 1}).scalar_one() for start in range(0, int(size), BLOB_CHUNK)]
    return b"".join(parts)


BLOB_WRITES = 8
"""At most this many statements write a blob on PostgreSQL (_write_blob). Each appends to what the ones
before it wrote, and PostgreSQL writes the whole value again each time: n parts write about n/2 times the
blob, so a blob over 8 MB goes in eighths rather than megabytes."""


def _write_blob(conn: sa.Connection, column: sa.Column, blob: bytes | None, *where: Any) -> None:
    """Set a blob column of the workspace row `where` selects. On PostgreSQL a megabyte (at least an eighth
    of the blob) per statement, appended: psycopg2 sends bytea as hex text inside the query, so one
    statement held the hex (twice the blob), the query around it and libpq's output buffer at once, and
    that buffer stayed the hex's size for as long as the pooled connection lived (_read_blob's reverse)."""
    target = workspaces.update().where(*where)
    if blob is None or conn.dialect.name != "postgresql" or len(blob) <= BLOB_CHUNK:
        conn.execute(target.values({column.name: blob}))
        return
    step = max(BLOB_CHUNK, -(-len(blob) // BLOB_WRITES))
    view = memoryview(blob)
    conn.execute(target.values({column.name: view[:step].tobytes()}))
    append = target.values({column.name: column.op("||")(sa.bindparam("part", type_=sa.LargeBinary()))})
    for start in range(step, len(blob), step):
        conn.execute(append, {"part": view[start:start + step].tobytes()})


def stored_file(engine: sa.Engine, workspace_id: int, settings: Settings) -> bytes:
    """A workspace's file, alone (a replay that starts from the snapshot never reads it)."""
    with reading(engine) as conn:
        blob = _read_blob(conn, workspaces.c.data, workspace_id)
    if blob is None:
        raise _gone(workspace_id, settings)
    return _decompress(blob, settings.max_upload_mb)


def store_snapshot(engine: sa.Engine, workspace_id: int, sha256: str, blob: bytes) -> None:
    """Keep a replay's snapshot of the file as read (after a mapping change: with that mapping), so the
    next replay starts from it. load_snapshot checks what it was read with, so a stale one is only unused."""
    with db_errors(engine), engine.begin() as conn:
        _write_blob(conn, workspaces.c.snapshot, blob, workspaces.c.id == workspace_id, workspaces.c.sha256 == sha256)


def replay(engine: sa.Engine, workspace_id: int, settings: Settings, actor: Actor | None = None) -> Upload:
    """The workspace's upload: its file read again and its active operations applied in order."""
    return open_workspace(engine, workspace_id, settings, actor=actor).upload


SHARED: SharedFrames[Upload, tuple[int, tuple[int, ...], tuple[Any, ...]]] = SharedFrames()
"""The replayed uploads sessions hold, shared by state (importer.workspace.shared): memory per workspace, not per tab."""


def _state_key(engine: sa.Engine, stored: StoredWorkspace, settings: Settings) -> tuple[Any, ...]:
    info = stored.info
    return state_key(engine.url.render_as_string(hide_password=True), info.id, info.sha256, info.sheet,
                     None if stored.mapping is None else stored.mapping.to_dict(),
                     ((seq, kind_of(op), op.to_dict()) for seq, op in stored.operations), settings)


def open_workspace(engine: sa.Engine, workspace_id: int, settings: Settings, *, actor: Actor | None = None) -> Opened:
    """Replay a workspace: what a new session, a refresh or another instance shows; the same state another
    session of this process holds is shared, not replayed (SHARED). actor: who opens it (NotYours, naming
    the owner, unless it is the owner or an admin; None: the engine itself)."""
    stored = load_workspace(engine, workspace_id, settings, file=False, snapshot=False, actor=actor)
    upload, (version, seqs, excluded) = SHARED.shared(_state_key(engine, stored, settings),
                                                      partial(_replayed, engine, stored, settings))
    return Opened(stored.info, upload, version, seqs, excluded)


def shared_workspace(engine: sa.Engine, workspace_id: int, settings: Settings, *,
                     actor: Actor | None = None) -> Opened | None:
    """The workspace as another session of this process holds it now (no replay), else None."""
    stored = load_workspace(engine, workspace_id, settings, file=False, snapshot=False, actor=actor)
    found = SHARED.get(_state_key(engine, stored, settings))
    return None if found is None else Opened(stored.info, found[0], *found[1])


def share(engine: sa.Engine, opened: Opened, settings: Settings) -> None:
    """Offer a session's frame of a workspace (read on Upload, or changed there and saved) to the sessions
    that open the same state next (a refresh, another tab): shared only while it is the workspace's state."""
    stored = load_workspace(engine, opened.info.id, settings, file=False, snapshot=False)
    if tuple(seq for seq, _ in stored.operations) == opened.seqs:
        SHARED.offer(_state_key(engine, stored, settings), opened.upload,
                     (opened.version, opened.seqs, opened.excluded))


def _replayed(engine: sa.Engine, stored: StoredWorkspace,
              settings: Settings) -> tuple[Upload, tuple[int, tuple[int, ...], tuple[Any, ...]]]:
    workspace_id = stored.info.id
    with reading(engine) as conn:
        snapshot = Handed(_read_blob(conn, workspaces.c.snapshot, workspace_id))
    excluded: list[Any] = []
    upload = replay_operations(partial(stored_file, engine, workspace_id, settings), stored.info.file_name, settings, stored.info.sheet, stored.mapping,
                               [op for _, op in stored.operations], excluded, snapshot=snapshot,
                               on_snapshot=partial(store_snapshot, engine, workspace_id, stored.info.sha256))
    return upload, (stored.version, tuple(seq for seq, _ in stored.operations), tuple(excluded))


def _lock(conn: sa.Connection, workspace_id: int) -> None:
    """Serialise changes to one workspace (SQLite: the write lock BEGIN IMMEDIATE took already), and refuse
    them while a run imports it: the run reads the operations it started with, so a change made now would not
    be in it, and the workspace would be discarded under it when the run completes."""
    found = conn.execute(sa.select(workspaces.c.id).where(workspaces.c.id == workspace_id,
                                                          workspaces.c.discarded_at.is_(None))
                         .with_for_update()).first()
    if found is None:
        raise WorkspaceError(f"workspace {workspace_id} is gone: it was discarded or expired; upload the file again")
    running = importing_run(conn, workspace_id)
    if running is not None:
        raise WorkspaceBusy(f"Run #{running} is importing this file; your change would not be in it. "
                            "Wait for it to finish.")


def importing_run(conn: sa.Connection, workspace_id: int) -> int | None:
    """The run importing this workspace right now (its owner alive, on any instance), else None."""
    rows = conn.execute(sa.select(_runs.c.id, _runs.c.owner, _runs.c.heartbeat_at).where(
        _runs.c.workspace_id == workspace_id, _runs.c.status == RunStatus.RUNNING.value)).all()
    for row in rows:
        if owner_alive(conn, row.id, row.owner, row.heartbeat_at):
            return int(row.id)
    return None


def _needed_seq(conn: sa.Connection, workspace_id: int) -> int:
    """The last operation a run that may still resume from this workspace imports (0 for none): operations
    up to it are kept even when undone, since its resume replays them."""
    found = conn.execute(sa.select(sa.func.max(_runs.c.workspace_seq)).where(
        _runs.c.workspace_id == workspace_id, _runs.c.status.in_(_RESUMABLE))).scalar()
    return int(found or 0)


def _versions(conn: sa.Connection, workspace_id: int) -> tuple[int, int]:
    """(last active seq, last seq) of a workspace, 0 when none."""
    ops = workspace_operations
    active = sa.func.max(sa.case((ops.c.undone == sa.false(), ops.c.seq)))
    row = conn.execute(sa.select(sa.func.coalesce(active, 0), sa.func.coalesce(sa.func.max(ops.c.seq), 0))
                       .where(ops.c.workspace_id == workspace_id)).one()
    return int(row[0]), int(row[1])


def append_operation(engine: sa.Engine, workspace_id: int, op: Any, *, summary: str | None = None,
                     expected_version: int | None = None, rows: int | None = None,
                     actor: Actor | None = None) -> int:
    """Add an operation after the active ones (the redo stack is cleared); returns its seq.

    WorkspaceChanged when `expected_version` is given and the workspace moved on since (another tab).
    actor: who makes it, recorded with it; NotYours unless the owner or an admin.
    """
    kind, payload = kind_of(op), op.to_dict()
    check_workspace(engine, workspace_id, actor, "change")
    with db_errors(engine), engine.begin() as conn:
        _lock(conn, workspace_id)
        version, last = _versions(conn, workspace_id)
        if expected_version is not None and version != expected_version:
            raise WorkspaceChanged(f"workspace {workspace_id} was changed in another tab or window; "
                                   "it has been reloaded, so check the change and make it again")
        ops = workspace_operations
        conn.execute(ops.delete().where(ops.c.workspace_id == workspace_id, ops.c.undone == sa.true(),
                                        ops.c.seq > _needed_seq(conn, workspace_id)))
        stamp = now()
        conn.execute(ops.insert().values(workspace_id=workspace_id, seq=last + 1, kind=kind, payload=payload,
                                         summary=summary or summary_of(op), created_at=stamp, undone=False,
                                         actor=None if actor is None else actor.name[:255]))
        values: dict[str, Any] = {"updated_at": stamp} | ({} if rows is None else {"rows": rows})
        conn.execute(workspaces.update().where(workspaces.c.id == workspace_id).values(**values))
    return last + 1


def record(engine: sa.Engine, opened: Opened, op: Any, after: Checked, settings: Settings, *,
           actor: Actor | None = None) -> Opened:
    """Save an operation the page already applied live (`after`: the frame it gave). If another tab changed
    the workspace meanwhile, its state is replayed and the operation applied to that instead."""
    try:
        seq = append_operation(engine, opened.info.id, op, summary=summary_of(op, opened.upload.checked, after),
                               expected_version=opened.version, rows=after.total, actor=actor)
    except WorkspaceChanged:
        return perform(engine, open_workspace(engine, opened.info.id, settings, actor=actor), op, settings,
                       actor=actor)
    return replace(opened, upload=replace(opened.upload, checked=after), version=seq, seqs=(*opened.seqs, seq),
                   info=replace(opened.info, rows=after.total, updated_at=now(), operations=len(opened.seqs) + 1),
                   excluded=excluded_after(opened.excluded, opened.upload.checked, after, getattr(op, "reason", ""),
                                           opened.upload.other_columns))


def restart_workspace(engine: sa.Engine, workspace_id: int, sheet: str | None, mapping: ColumnMapping | None,
                      rows: int, snapshot: bytes | None = None, *, actor: Actor | None = None) -> None:
    """The file read again with another sheet or mapping on the Upload page: what was done on the old read
    is dropped (its row numbers may not hold), as the page drops it. Refused while an interrupted run still
    resumes from those operations."""
    check_workspace(engine, workspace_id, actor, "change")
    with db_errors(engine), engine.begin() as conn:
        _lock(conn, workspace_id)
        needed = _needed_seq(conn, workspace_id)
        if needed:
            run = conn.execute(sa.select(sa.func.max(_runs.c.id)).where(
                _runs.c.workspace_id == workspace_id, _runs.c.status.in_(_RESUMABLE))).scalar()
            raise WorkspaceBusy(f"Run #{run} was cut off while importing this file and resumes from its changes; "
                                "resume it (History) before reading the file with another sheet or mapping")
        conn.execute(workspace_operations.delete().where(workspace_operations.c.workspace_id == workspace_id))
        conn.execute(workspaces.update().where(workspaces.c.id == workspace_id).values(
            sheet=sheet, mapping=mapping.to_dict() if mapping else None, rows=rows, updated_at=now()))
        _write_blob(conn, workspaces.c.snapshot, snapshot, workspaces.c.id == workspace_id)


def perform(engine: sa.Engine, opened: Opened, op: Any, settings: Settings, *,
            actor: Actor | None = None) -> Opened:
    """Apply an operation to the frame in hand and save it, in that order, so the history line can say what
    it did; a mapping change or an include-again replays the workspace. If another tab changed the
    workspace meanwhile, its current state is replayed first and the operation applied to that."""
    for attempt in range(2):
        try:
            if getattr(op, "rebuild", False):
                append_operation(engine, opened.info.id, op, summary=summary_of(op), expected_version=opened.version,
                                 actor=actor)
                rebuilt = open_workspace(engine, opened.info.id, settings, actor=actor)
                if rebuilt.upload.checked.total != rebuilt.info.rows:
                    with db_errors(engine), engine.begin() as conn:
                        conn.execute(workspaces.update().where(workspaces.c.id == opened.info.id)
                                     .values(rows=rebuilt.upload.checked.total))
                    rebuilt = replace(rebuilt, info=replace(rebuilt.info, rows=rebuilt.upload.checked.total))
                return rebuilt
            before = opened.upload.checked
            after = applier(op)(before, settings)
            seq = append_operation(engine, opened.info.id, op, summary=summary_of(op, before, after),
                                   expected_version=opened.version, rows=after.total, actor=actor)
            return replace(opened, upload=replace(opened.upload, checked=after), version=seq,
                           seqs=(*opened.seqs, seq), info=replace(opened.info, rows=after.total, updated_at=now(),
                                                                  operations=len(opened.seqs) + 1),
                           excluded=excluded_after(opened.excluded, before, after, getattr(op, "reason", ""),
                                                   opened.upload.other_columns))
        except WorkspaceChanged:
            if attempt:
                raise
            opened = open_workspace(engine, opened.info.id, settings, actor=actor)
    raise AssertionError("unreachable")


def _go_to(engine: sa.Engine, workspace_id: int, pick: str, actor: Actor | None) -> HistoryEntry | None:
    ops = workspace_operations
    check_workspace(engine, workspace_id, actor, pick)
    with db_errors(engine), engine.begin() as conn:
        _lock(conn, workspace_id)
        undone = pick == "undo"
        where = ops.c.undone == (sa.false() if undone else sa.true())
        if not undone:  # the next undone one after the active ones (not one an interrupted run keeps: _needed_seq)
            active = sa.select(sa.func.coalesce(sa.func.max(ops.c.seq), 0)).where(
                ops.c.workspace_id == workspace_id, ops.c.undone == sa.false()).scalar_subquery()
            where = sa.and_(where, ops.c.seq > active)
        seq = conn.execute(sa.select((sa.func.max if undone else sa.func.min)(ops.c.seq))
                           .where(ops.c.workspace_id == workspace_id, where)).scalar()
        if seq is None:
            return None
        conn.execute(ops.update().where(ops.c.workspace_id == workspace_id, ops.c.seq == seq).values(undone=undone))
        conn.execute(workspaces.update().where(workspaces.c.id == workspace_id).values(updated_at=now()))
        summary = conn.execute(sa.select(ops.c.summary).where(ops.c.workspace_id == workspace_id,
                                                              ops.c.seq == seq)).scalar_one()
        return HistoryEntry(int(seq), summary, undone)


def undo(engine: sa.Engine, workspace_id: int, actor: Actor | None = None) -> HistoryEntry | None:
    """Step back the last active operation (None when there is none); replay shows the result."""
    return _go_to(engine, workspace_id, "undo", actor)


def redo(engine: sa.Engine, workspace_id: int, actor: Actor | None = None) -> HistoryEntry | None:
    """Bring back the first undone operation (None when there is none)."""
    return _go_to(engine, workspace_id, "redo", actor)


def go_to(engine: sa.Engine, workspace_id: int, seq: int, actor: Actor | None = None) -> None:
    """Step back (or forward) to just after operation `seq` (0 = the file as read): a click in the history."""
    ops = workspace_operations
    check_workspace(engine, workspace_id, actor, "change")
    with db_errors(engine), engine.begin() as conn:
        _lock(conn, workspace_id)
        conn.execute(ops.update().where(ops.c.workspace_id == workspace_id).values(undone=ops.c.seq > seq))
        conn.execute(workspaces.update().where(workspaces.c.id == workspace_id).values(updated_at=now()))


def history(engine: sa.Engine, workspace_id: int) -> list[HistoryEntry]:
    """The workspace's operations in order: (seq, summary, undone)."""
    ops = workspace_operations
    with reading(engine) as conn:
        rows = conn.execute(sa.select(ops.c.seq, ops.c.summary, ops.c.undone)
                            .where(ops.c.workspace_id == workspace_id).order_by(ops.c.seq)).all()
    return [HistoryEntry(int(row.seq), row.summary, bool(row.undone)) for row in rows]


def _resumable_ids(conn: sa.Connection) -> set[int]:
    """Workspaces a running or interrupted run imports from: kept until the run ends, for its resume."""
    return set(conn.execute(sa.select(_runs.c.workspace_id).where(
        _runs.c.workspace_id.is_not(None), _runs.c.status.in_(_RESUMABLE))).scalars())


def _delete(conn: sa.Connection, ids: list[int]) -> None:
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        conn.execute(workspace_operations.delete().where(workspace_operations.c.workspace_id.in_(chunk)))
        conn.execute(workspaces.delete().where(workspaces.c.id.in_(chunk)))


def discard_workspace(engine: sa.Engine, workspace_id: int, actor: Actor | str | None = None) -> int:
    """Drop a workspace from its owner's list; deleted at once unless an interrupted run resumes from it.

    Without `actor` this is the discard after an import: a workspace changed after its latest run started
    (operations newer than the run's recorded seq, or ones it imported undone since) is kept, and the count
    of those changes returned (else 0). With `actor` (an Actor, or a dashboard account's name: an analyst's
    Discard) it goes whatever it holds, if the actor owns it or is an admin (else NotYours); who discarded
    it is recorded (discarded_by while it is kept for a resume; the importer.audit log).
    """
    if isinstance(actor, str):
        actor = Actor(actor)
    if actor is not None:
        check_workspace(engine, workspace_id, actor, "discard")
    with db_errors(engine), engine.begin() as conn:
        row = conn.execute(sa.select(workspaces.c.owner).where(workspaces.c.id == workspace_id)).first()
        if row is None:
            return 0
        if actor is None:
            latest = conn.execute(sa.select(sa.func.max(_runs.c.id)).where(_runs.c.workspace_id == workspace_id)).scalar()
            later = 0 if latest is None else _changes_after(conn, workspace_id, int(latest))
            if later:
                return later
        by = None if actor is None else actor.name[:255]
        if workspace_id in _resumable_ids(conn):
            conn.execute(workspaces.update().where(workspaces.c.id == workspace_id)
                         .values(discarded_at=now(), discarded_by=by))
        else:
            _delete(conn, [workspace_id])
    if actor is not None:
        _AUDIT.info("workspace %s of %s discarded by %s", workspace_id, row.owner, actor.label)
    return 0


def _recorded_seqs(conn: sa.Connection, run_id: int) -> tuple[int | None, list[int] | None]:
    """(workspace_seq, the operation seqs) a run recorded of its workspace; None for what it did not record."""
    row = conn.execute(sa.select(_runs.c.workspace_seq, _runs.c.settings).where(_runs.c.id == run_id)).first()
    if row is None:
        return None, None
    seqs = (row.settings or {}).get("workspace_operations")
    return (None if row.workspace_seq is None else int(row.workspace_seq),
            None if seqs is None else [int(n) for n in seqs])


def _changes_after(conn: sa.Connection, workspace_id: int, run_id: int) -> int:
    """How many changes of the workspace the run does not hold: active operations it did not import, and
    operations it imported that are undone now. 0 when the run recorded neither its seq nor its operations."""
    seq, seqs = _recorded_seqs(conn, run_id)
    if seq is None and seqs is None:
        return 0
    ops = workspace_operations
    active = set(conn.execute(sa.select(ops.c.seq).where(ops.c.workspace_id == workspace_id,
                                                         ops.c.undone == sa.false())).scalars())
    imported = set(seqs) if seqs is not None else {n for n in active if n <= (seq or 0)}
    return len(active - imported) + len(imported - active)


def expire_workspaces(engine: sa.Engine, days: int) -> int:
    """Delete workspaces untouched for `days` days (WORKSPACE_DAYS) and discarded ones, except those an
    interrupted run still resumes from; returns how many went."""
    if current_revision(engine) is None:
        return 0
    cutoff = now() - timedelta(days=days)
    with db_errors(engine), engine.begin() as conn:
        old = conn.execute(sa.select(workspaces.c.id).where(
            sa.or_(workspaces.c.updated_at < cutoff, workspaces.c.discarded_at.is_not(None)))).scalars().all()
        ids = sorted(set(old) - _resumable_ids(conn))
        _delete(conn, ids)
    return len(ids)


# --- runs: what they import from, what a dry run saw -------------------------------------------------------
