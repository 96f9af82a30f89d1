"""The run ledger: history, failures of a run, undo, and whether a run's owner is still alive."""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from importer.database.schema import (
    IMPORTS_LOCK_KEY,
    RUN_LOCK_CLASS,
    customer_changes,
    customers,
    db_errors,
    import_failures,
    import_runs,
    import_unchanged,
    is_postgres,
    reading,
    workspaces,
)
from importer.errors import RunError
from importer.identity import Actor, by_label
from importer.outcomes.error_table import ErrorTable
from importer.outcomes.failed_rows import (
    FailedRow,
    FailedRows,
    ReportColumn,
    UpdatedRow,
    changes_between,
)
from importer.outcomes.row_errors import RowError, RunStatus
from schemas.customer import FIELD_NAMES, UNIQUE_FIELDS, label_of

# A run on another host (SQLite on a shared disk) is presumed dead after this long without a beat.
HEARTBEAT_TIMEOUT_SECONDS = 120
OPEN_STATUSES = (RunStatus.RUNNING, RunStatus.INTERRUPTED)
# Rows a streamed query fetches at a time (a server-side cursor on PostgreSQL).
STREAM_ROWS = 2_000
# How long undo waits for running imports to finish (PostgreSQL) before it refuses.
UNDO_WAIT_SECONDS = 10

# Runs this process is executing right now: an owner equal to this process but not listed here
# was abandoned by an earlier call (an exception), so a retry in the same process may resume it.
_ACTIVE: set[int] = set()
ACTIVE_LOCK = threading.RLock()


@dataclass(frozen=True)
class RunRecord:
    """One row of the run history, with the effective status."""

    id: int
    file_name: str
    sha256: str
    sheet: str | None
    status: RunStatus
    total_attempted: int
    total_created: int
    total_failed: int
    rows_done: int
    started_at: datetime
    finished_at: datetime | None
    duration_seconds: float | None
    user_name: str | None
    settings: dict
    total_updated: int = 0
    total_unchanged: int = 0
    fixes_run_id: int | None = None  # the run whose failure report this run's file was
    via: str | None = None  # how it was started: "dashboard", "command line" (None: before migration 0010)
    undone_by: str | None = None  # who undid it (the account, or the OS user for the command line)
    undone_via: str | None = None
    undone_at: datetime | None = None

    @property
    def by(self) -> str | None:
        """Who started it, as History names them: "ama", "kofi (command line)"."""
        return by_label(self.user_name, self.via)

    @property
    def undone_by_label(self) -> str | None:
        """Who undid it, as History names them (None: not undone, or undone before it was recorded)."""
        return by_label(self.undone_by, self.undone_via)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (times as ISO 8601)."""
        data = asdict(self)
        data["status"] = self.status.value
        for key in ("started_at", "finished_at", "undone_at"):
            data[key] = data[key].isoformat() if data[key] else None
        return data


def now() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands datetimes back naive; they were stored in UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def this_owner() -> str:
    """`host:pid` of this process: what a run records as its owner."""
    return f"{socket.gethostname()}:{os.getpid()}"


def check_owner(engine: sa.Engine, actor: Actor | None, owner: str | None, what: str) -> None:
    """The ownership rule (importer.database.accounts.check_may_act) for an actor about to act on what
    `owner` owns: NotYours, naming the owner and whom to ask, unless the actor owns it or is an admin.
    actor None is the engine itself (no one to check). The accounts module (and its hasher) is loaded
    only when someone acts on what another owns."""
    if actor is None or not owner or not owner.strip() or actor.name.strip().casefold() == owner.strip().casefold():
        return
    from importer.database.accounts import check_actor

    check_actor(engine, actor, owner, what)


def workspace_owner(engine: sa.Engine, workspace_id: int) -> str | None:
    """Whose a workspace is (None when there is no such workspace)."""
    with reading(engine) as conn:
        return conn.execute(sa.select(workspaces.c.owner).where(workspaces.c.id == workspace_id)).scalar()


def check_workspace(engine: sa.Engine, workspace_id: int, actor: Actor | None, what: str) -> None:
    """check_owner against a workspace's owner: "Cannot {what} workspace N: it belongs to ama, ..."."""
    if actor is not None:
        check_owner(engine, actor, workspace_owner(engine, workspace_id), f"{what} workspace {workspace_id}")


def mark_active(run_id: int, active: bool) -> None:
    """Record that this process is (or no longer is) executing a run."""
    with ACTIVE_LOCK:
        (_ACTIVE.add if active else _ACTIVE.discard)(run_id)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True


def owner_alive(conn: sa.Connection, run_id: int, owner: str | None, heartbeat: datetime | None) -> bool:
    """Whether the process that owns a running run is still working on it."""
    if is_postgres(conn):
        # The owner holds a session advisory lock for the run's whole duration, on any host.
        got = conn.execute(sa.select(sa.func.pg_try_advisory_lock(RUN_LOCK_CLASS, run_id))).scalar()
        if got:
            conn.execute(sa.select(sa.func.pg_advisory_unlock(RUN_LOCK_CLASS, run_id)))
        return not got
    host, _, pid = (owner or "").rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        if owner == this_owner():
            with ACTIVE_LOCK:
                return run_id in _ACTIVE
        return _pid_alive(int(pid))
    beat = aware(heartbeat)
    return beat is not None and (now() - beat).total_seconds() < HEARTBEAT_TIMEOUT_SECONDS


def _record(conn: sa.Connection, row: sa.Row) -> RunRecord:
    status = RunStatus(row.status)
    if status is RunStatus.RUNNING and not owner_alive(conn, row.id, row.owner, row.heartbeat_at):
        status = RunStatus.INTERRUPTED
    started, finished = aware(row.started_at), aware(row.finished_at)
    assert started is not None  # NOT NULL
    return RunRecord(
        id=row.id, file_name=row.file_name, sha256=row.sha256, sheet=row.sheet, status=status,
        total_attempted=row.total_attempted, total_created=row.total_created,
        total_failed=row.total_failed, rows_done=row.rows_done, started_at=started, finished_at=finished,
        duration_seconds=(finished - started).total_seconds() if finished and started else None,
        user_name=row.user_name, settings=dict(row.settings or {}),
        total_updated=row.total_updated, total_unchanged=row.total_unchanged, fixes_run_id=row.fixes_run_id,
        via=row.via, undone_by=row.undone_by, undone_via=row.undone_via, undone_at=aware(row.undone_at),
    )


def list_runs(engine: sa.Engine, limit: int | None = None) -> list[RunRecord]:
    """Past runs, newest first."""
    stmt = sa.select(import_runs).order_by(import_runs.c.id.desc()).limit(limit)
    with reading(engine) as conn:
        return [_record(conn, row) for row in conn.execute(stmt).all()]


def _run_row(conn: sa.Connection, run_id: int) -> sa.Row:
    if not 0 < run_id < 2**31:  # an id no run can have (and SQLite cannot even bind past 2**63)
        raise RunError(f"there is no import run {run_id}")
    row = conn.execute(sa.select(import_runs).where(import_runs.c.id == run_id)).first()
    if row is None:
        raise RunError(f"there is no import run {run_id}")
    return row


def get_run(engine: sa.Engine, run_id: int) -> RunRecord:
    """One run (RunError if there is none)."""
    with reading(engine) as conn:
        return _record(conn, _run_row(conn, run_id))


def _failures_query(run_id: int, *columns: sa.ColumnElement) -> sa.Select:
    return (sa.select(import_failures.c.source_row_number, *columns)
            .where(import_failures.c.run_id == run_id).order_by(import_failures.c.source_row_number))


def _stream(conn: sa.Connection, stmt: sa.Select) -> sa.CursorResult:
    """Rows a few thousand at a time: a server-side cursor on PostgreSQL, SQLite's own cursor otherwise."""
    return conn.execute(stmt.execution_options(stream_results=True, yield_per=STREAM_ROWS))


stream = _stream


def changes_query(run_id: int) -> sa.Select:
    """A run's updates: source row, customer id, before- and after-image, by source row."""
    return (sa.select(customer_changes.c.source_row_number, customer_changes.c.customer_id,
                      customer_changes.c.before, customer_changes.c.after)
            .where(customer_changes.c.run_id == run_id).order_by(customer_changes.c.source_row_number))


def iter_updates(engine: sa.Engine, run_id: int) -> Iterator[UpdatedRow]:
    """A run's updated rows with their diffs, by source row, streamed from customer_changes."""
    with reading(engine) as conn:
        for number, customer_id, before, after in _stream(conn, changes_query(run_id)):
            yield UpdatedRow(number, customer_id, changes_between(before, after))


def _count(conn: sa.Connection, run_column: sa.Column, run_id: int) -> int:
    """How many rows of run_column's table belong to a run."""
    stmt = sa.select(sa.func.count()).select_from(run_column.table).where(run_column == run_id)
    return int(conn.execute(stmt).scalar_one())


def updated_on(conn: sa.Connection, run_id: int) -> int:
    """How many rows of a run updated a customer, on an open connection."""
    return _count(conn, customer_changes.c.run_id, run_id)


def unchanged_on(conn: sa.Connection, run_id: int) -> int:
    """How many rows of a run were equal to their customer, on an open connection."""
    return _count(conn, import_unchanged.c.run_id, run_id)


def _as_text(column: sa.Column) -> sa.ColumnElement:
    """A JSON column as its stored text: decoded a batch of rows at a time by `_decoded`, not a value at
    a time by the driver (PostgreSQL) or SQLAlchemy's result processor (SQLite)."""
    return sa.cast(column, sa.Text).label(column.name)


def _decoded(texts: Sequence[str | None]) -> list[Any]:
    """json.loads of each text (None stays None), in one call for the batch."""
    return json.loads("[" + ",".join(["null" if t is None else t for t in texts]) + "]")


def _batches(conn: sa.Connection, stmt: sa.Select) -> Iterator[Sequence[sa.Row]]:
    """A streamed query's rows, STREAM_ROWS at a time."""
    return _stream(conn, stmt).partitions()


def _row_errors(batch: list[Any]) -> Iterator[tuple[RowError, ...]]:
    """Each row's stored errors as RowErrors; equal errors (one message for many rows) are one object."""
    made: dict[tuple[str, str, str], RowError] = {}
    for errors in batch:
        out = []
        for error in errors:
            key = (error["field"], error["code"], error["message"])
            found = made.get(key)
            if found is None:
                found = made[key] = RowError.from_dict(error)
            out.append(found)
        yield tuple(out)


def error_table_on(conn: sa.Connection, run_id: int) -> ErrorTable:
    """A run's errors as columns, streamed from import_failures on an open connection."""
    stmt = _failures_query(run_id, _as_text(import_failures.c.errors))

    def pairs() -> Iterator[tuple[int, RowError]]:
        for batch in _batches(conn, stmt):
            numbers = [row[0] for row in batch]
            for number, errors in zip(numbers, _row_errors(_decoded([row[1] for row in batch])), strict=True):
                for error in errors:
                    yield number, error

    return ErrorTable.from_pairs(pairs(), field_order=False)  # as stored


def failed_count_on(conn: sa.Connection, run_id: int) -> int:
    """How many rows of a run failed, on an open connection."""
    return _count(conn, import_failures.c.run_id, run_id)


def iter_failures(engine: sa.Engine, run_id: int) -> Iterator[FailedRow]:
    """A run's failed rows by source row number, streamed from the database (decoded a batch at a time)."""
    stmt = _failures_query(run_id, _as_text(import_failures.c.errors), _as_text(import_failures.c.customer_data),
                           _as_text(import_failures.c.other_columns))
    with reading(engine) as conn:
        for batch in _batches(conn, stmt):
            numbers, errors, data, own = zip(*batch, strict=True)
            for number, row_errors, values, others in zip(numbers, _row_errors(_decoded(errors)), _decoded(data),
                                                          _decoded(own), strict=True):
                yield FailedRow(number, row_errors, values, others or {})


def report_columns_of(settings: dict) -> tuple[ReportColumn, ...] | None:
    """The failure report's layout a run recorded (None for a run from before reports kept the file's columns)."""
    recorded = settings.get("report_columns")
    return None if not recorded else tuple(ReportColumn.from_json(c) for c in recorded)


def run_failures(engine: sa.Engine, run_id: int) -> FailedRows:
    """A run's failed rows, with their errors and original values, streamed each time they are read; with
    the run's report layout (the file's own columns in their places) and its id, for the report."""
    with reading(engine) as conn:
        row = _run_row(conn, run_id)
        count = failed_count_on(conn, run_id)
    return FailedRows(count, lambda: iter_failures(engine, run_id),
                      columns=report_columns_of(dict(row.settings or {})), run_id=run_id)


def created_on(conn: sa.Connection, run_id: int) -> int:
    """How many customers a run created, on an open connection."""
    return _count(conn, customers.c.import_run_id, run_id)


@dataclass(frozen=True)
class UndoResult:
    """What an undo did: customers deleted (the run created them) and restored (the run updated them)."""

    run_id: int
    deleted: int
    restored: int


def _later_runs(conn: sa.Connection, run_id: int) -> list[int]:
    """Runs (not undone) that changed, after this run, a customer this run created or updated."""
    later, mine = customer_changes.alias("later"), customer_changes.alias("mine")
    created = sa.select(customers.c.id).where(customers.c.import_run_id == run_id)
    after_mine = sa.exists().where(mine.c.run_id == run_id, mine.c.customer_id == later.c.customer_id,
                                   later.c.id > mine.c.id)
    stmt = (sa.select(later.c.run_id).distinct()
            .join(import_runs, import_runs.c.id == later.c.run_id)
            .where(import_runs.c.status != RunStatus.UNDONE, later.c.run_id != run_id,
                   sa.or_(later.c.customer_id.in_(created), after_mine))
            .order_by(later.c.run_id))
    return [int(n) for n in conn.execute(stmt).scalars()]


def _restore_clashes(conn: sa.Connection, batch: list[tuple[int, dict]], shown: int = 3) -> list[str]:
    """Why restoring these before-images would break a unique key: another customer holds the value now
    (a later run gave it to a new customer). At most `shown` reasons."""
    from importer.database.lookup import one_of

    ids = {cid for cid, _ in batch}
    out: list[str] = []
    for f in UNIQUE_FIELDS:
        wanted = {rec[f]: cid for cid, rec in batch if rec.get(f) is not None}
        if not wanted:
            continue
        holders = conn.execute(sa.select(customers.c.id, customers.c[f], customers.c.import_run_id)
                               .where(one_of(conn, customers.c[f], list(wanted))))
        for other, value, other_run in holders:
            if other not in ids and len(out) < shown:
                by = f", created by run {other_run}" if other_run is not None else ""
                out.append(f"customer #{wanted[value]}'s {label_of(f).lower()} would go back to {value}, which "
                           f"customer #{other} now has{by}")
    return out


def _before_images(conn: sa.Connection, run_id: int) -> Iterator[list[tuple[int, dict]]]:
    """The record each customer had before this run first updated it, a few thousand customers at a time."""
    from importer.database.matching import UPDATE_CHUNK

    stmt = (sa.select(customer_changes.c.customer_id, customer_changes.c.before)
            .where(customer_changes.c.run_id == run_id)
            .order_by(customer_changes.c.customer_id, customer_changes.c.id))
    batch: list[tuple[int, dict]] = []
    last = None
    for customer_id, before in conn.execute(stmt):
        if customer_id == last:  # a later update by the same run: the first before-image wins
            continue
        last = customer_id
        batch.append((customer_id, {f: before.get(f) for f in FIELD_NAMES}))
        if len(batch) >= UPDATE_CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


def undo(engine: sa.Engine, run_id: int, actor: Actor | None = None) -> UndoResult:
    """Delete the customers a run created, restore the before-images of those it updated, and mark it
    undone, in one transaction; `actor` is recorded as who undid it (undone_by, undone_via).

    actor: who undoes it; NotYours (naming the run's account and whom to ask) unless the run is theirs
    (its user_name) or they are an admin. None: the engine itself (nothing checked, nobody recorded).

    Refuses (RunError) when the run is running, already undone, or when a later run changed any of its
    customers (naming the runs to undo first). On PostgreSQL it takes the imports lock exclusively, so it
    waits (up to UNDO_WAIT_SECONDS) for running imports and no import starts meanwhile; on SQLite the
    write lock serialises it with every import's chunks.
    """
    from importer.database.matching import bulk_update

    if actor is not None:  # before any lock: the run's account never changes
        check_owner(engine, actor, get_run(engine, run_id).user_name, f"undo run #{run_id}")
    with db_errors(engine), engine.connect() as conn:
        try:
            with conn.begin():
                if is_postgres(conn):
                    # SET LOCAL, with the value bound (SET itself takes no parameters).
                    conn.execute(sa.select(sa.func.set_config("lock_timeout", f"{UNDO_WAIT_SECONDS}s", True)))
                    try:
                        with conn.begin_nested():
                            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(RUN_LOCK_CLASS, IMPORTS_LOCK_KEY)))
                    except sa.exc.OperationalError:
                        raise RunError(f"an import is running; undo run {run_id} when it has finished") from None
                row = _run_row(conn, run_id)
                if row.status == RunStatus.UNDONE:
                    raise RunError(f"run {run_id} was already undone")
                if row.status == RunStatus.RUNNING:
                    if is_postgres(conn):
                        # Held until the end of this call, so the run cannot be resumed meanwhile.
                        got = conn.execute(
                            sa.select(sa.func.pg_try_advisory_lock(RUN_LOCK_CLASS, run_id))).scalar()
                        alive = not got
                    else:
                        alive = owner_alive(conn, run_id, row.owner, row.heartbeat_at)
                    if alive:
                        raise RunError(f"run {run_id} is still running; wait for it to finish")
                later = _later_runs(conn, run_id)
                if later:
                    names = ", ".join(str(n) for n in later)
                    raise RunError(f"run {run_id} cannot be undone: later run(s) {names} changed customers it "
                                   f"created or updated; undo run(s) {names} first")
                # Deleted first: a key the run's new customers hold is free again for a restored one.
                deleted = conn.execute(sa.delete(customers).where(customers.c.import_run_id == run_id)).rowcount
                restored = 0
                for batch in _before_images(conn, run_id):
                    clashes = _restore_clashes(conn, batch)
                    if clashes:
                        raise RunError(f"run {run_id} cannot be undone: {'; '.join(clashes)}. Change or undo "
                                       "those customers first; nothing was undone")
                    restored += bulk_update(conn, batch)
                conn.execute(
                    sa.update(import_runs).where(import_runs.c.id == run_id)
                    .values(status=RunStatus.UNDONE, undone_at=now(), total_created=deleted,
                            undone_by=None if actor is None else actor.name[:255],
                            undone_via=None if actor is None else actor.via)
                )
        finally:
            if is_postgres(conn):
                if conn.in_transaction():
                    conn.rollback()
                conn.execute(sa.select(sa.func.pg_advisory_unlock_all()))
                conn.commit()
    return UndoResult(run_id, int(deleted), restored)


def undo_run(engine: sa.Engine, run_id: int, actor: Actor | None = None) -> int:
    """Undo a run (see `undo`); returns how many customers it deleted."""
    return undo(engine, run_id, actor).deleted


@dataclass(frozen=True)
class UndoPreview:
    """What undoing a run would do, for a confirmation: delete, restore, or refuse because of later runs."""

    run_id: int
    to_delete: int
    to_restore: int
    blocking_runs: tuple[int, ...]


def undo_preview(engine: sa.Engine, run_id: int) -> UndoPreview:
    """How many customers undoing this run would delete and restore, and which later runs block it."""
    with reading(engine) as conn:
        _run_row(conn, run_id)
        restore = sa.select(sa.func.count(sa.distinct(customer_changes.c.customer_id))).where(
            customer_changes.c.run_id == run_id)
        return UndoPreview(run_id, created_on(conn, run_id), int(conn.execute(restore).scalar_one()),
                           tuple(_later_runs(conn, run_id)))


def count_customers(engine: sa.Engine) -> int:
    """How many customers the database holds."""
    with reading(engine) as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(customers)).scalar_one())


def customers_in_run(engine: sa.Engine, run_id: int) -> int:
    """How many customers a run created (and still has)."""
    with reading(engine) as conn:
        return created_on(conn, run_id)


def resumable_on(conn: sa.Connection, sha256: str, sheet: str | None) -> list[sa.Row]:
    """Open runs of this file and sheet whose owner is gone, newest first."""
    sheet_match = import_runs.c.sheet.is_(None) if sheet is None else import_runs.c.sheet == sheet
    stmt = (
        sa.select(import_runs)
        .where(import_runs.c.sha256 == sha256, sheet_match, import_runs.c.status.in_(OPEN_STATUSES))
        .order_by(import_runs.c.id.desc())
    )
    # "interrupted" was written by an owner that gave up on the run (an exception): claimable at once.
    return [row for row in conn.execute(stmt).all()
            if row.status == RunStatus.INTERRUPTED or not owner_alive(conn, row.id, row.owner, row.heartbeat_at)]


def find_resumable(engine: sa.Engine, sha256: str, sheet: str | None) -> RunRecord | None:
    """The run that importing this file again would resume, if any."""
    with reading(engine) as conn:
        rows = resumable_on(conn, sha256, sheet)
        return _record(conn, rows[0]) if rows else None
