"""Chunked bulk loading with per-row accounting, the run ledger, resume and dry runs."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import sqlalchemy as sa

from importer.database import claim
from importer.database import ledger as runs
from importer.database.lookup import conflicts, records
from importer.database.matching import (
    BlankCells,
    BlankMode,
    ExistingMode,
    Match,
    Outcome,
    bulk_update,
    insert_many,
    match_rows,
    skip_errors,
)
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
    one_line,
    to_database_error,
    upgrade_in_transaction,
)
from importer.errors import DatabaseError
from importer.outcomes.error_table import ErrorTable
from importer.outcomes.failed_rows import (
    FailedRows,
    ReportColumn,
    UpdateColumns,
    UpdatedRows,
    changes_between,
    failed_rows_of,
    values_json_by_row,
)
from importer.outcomes.row_errors import ErrorCode, RowError, RunStatus, errors_json
from importer.outcomes.run_result import RunResult
from importer.settings import Settings
from schemas.customer import FIELD_NAMES

if TYPE_CHECKING:
    from importer.checks.validate import Checked

Record = tuple[int, dict[str, Any]]
InsertMethod = Literal["values", "copy"]
# The key of import_runs.settings that asks a running run to stop (importer.server.jobs.request_cancel); a run
# that is claimed again (resumed) drops it, so the request stops one execution, not every later one.
CANCEL_REQUEST = "cancel_requested"
# Bound-parameter ceilings per statement: a chunk must fit in one multi-row INSERT.
PARAM_LIMITS = {"sqlite": 32_766, "postgresql": 65_535}
_INSERT_COLUMNS = (*FIELD_NAMES, "import_run_id", "source_row_number")
# PostgreSQL: deadlock_detected, serialization_failure. Two imports touching the same keys in a
# different order can deadlock; the loser's chunk is simply retried.
_RETRY_CODES = {"40P01", "40001"}
_UNIQUE_VIOLATION = "23505"
_RETRIES = 5
# Measured in bench/RESULTS.md: COPY into a temp table + INSERT ... SELECT beat the multi-row
# INSERT ... VALUES ... RETURNING by ~1.4-1.9x on PostgreSQL; refused chunks still bisect via VALUES.
DEFAULT_PG_METHOD: InsertMethod = "copy"
_STAGE_DDL = (
    "CREATE TEMP TABLE IF NOT EXISTS import_stage ("
    + ", ".join(f"{name} text" for name in FIELD_NAMES)
    + ", import_run_id integer, source_row_number integer)"
)
_NULL = "\\N"  # NULL in COPY's text format
_stage = sa.Table(
    "import_stage", sa.MetaData(),
    *(sa.Column(name, sa.Text) for name in FIELD_NAMES),
    sa.Column("import_run_id", sa.Integer), sa.Column("source_row_number", sa.Integer),
)
# Every staged row, in row order (the text columns take the customers' types by assignment).
_STAGE_INSERT = sa.insert(customers).from_select(
    list(_INSERT_COLUMNS), sa.select(*(_stage.c[name] for name in _INSERT_COLUMNS)).order_by(_stage.c.source_row_number))


@dataclass(frozen=True)
class Progress:
    """How far a run is, for a progress bar."""

    rows_done: int
    total: int
    rows_per_second: float
    seconds_left: float | None


def effective_batch_size(dialect: str, requested: int) -> int:
    """The requested chunk size, clamped to what one statement may bind on this database."""
    ceiling = PARAM_LIMITS.get(dialect, 32_766) // len(_INSERT_COLUMNS)
    return max(1, min(int(requested), ceiling))


def _pending_chunks(checked: Checked, size: int, done: set[int]) -> tuple[int, Iterator[list[Record]]]:
    """How many rows are still to settle, and those rows in chunks of (source row, values), NaN as None.

    Records are built a chunk at a time: a 100,000-row run never holds them all as dicts at once.
    """
    frame = checked.normalised.reindex(columns=list(FIELD_NAMES)).sort_index()
    if done:
        frame = frame[~frame.index.isin(list(done))]

    def chunks() -> Iterator[list[Record]]:
        for start in range(0, len(frame), size):
            yield records(frame.iloc[start:start + size], FIELD_NAMES)

    return len(frame), chunks()


def _copy_text(value: Any) -> str:
    """A value in COPY's text format: a backslash, tab, newline or carriage return escaped (str.replace finds
    none in most values at C speed; str.translate with these two-character targets is several times slower)."""
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _guess_field(message: str, rec: dict[str, Any]) -> str:
    """Which field a database refusal is about, when the message lets us tell."""
    for name in FIELD_NAMES:
        if name in message:
            return name
    for name in FIELD_NAMES:
        value = rec.get(name)
        if isinstance(value, str) and "\x00" in value:
            return name
        if isinstance(value, str) and len(value) > (getattr(customers.c[name].type, "length", None) or 10**9):
            return name
    return "row"


def _retryable(exc: BaseException) -> bool:
    return getattr(getattr(exc, "orig", None), "pgcode", None) in _RETRY_CODES


class _Loader:
    """One execution of run_import on one connection (which holds the run's advisory lock on PG)."""

    def __init__(self, conn: sa.Connection, checked: Checked, *, file_name: str, sha256: str, sheet: str | None,
                 dry_run: bool, batch_size: int, progress: Callable[[Progress], None] | None,
                 user_name: str | None, settings_json: dict, method: InsertMethod,
                 existing: ExistingMode = ExistingMode.SKIP, blank: BlankMode = BlankMode.KEEP,
                 rejected: frozenset[int] = frozenset(), other_columns: pd.DataFrame | None = None,
                 report_columns: Sequence[ReportColumn] | None = None, fixes_run_id: int | None = None,
                 on_run: Callable[[int], None] | None = None, new_run: bool = False,
                 confirmed: frozenset[int] = frozenset()) -> None:
        self.conn, self.checked, self.dry_run = conn, checked, dry_run
        self.confirmed = confirmed
        self.new_run = new_run
        self.on_run = on_run
        self.rejected = rejected
        self.other_columns, self.report_columns, self.fixes_run_id = other_columns, report_columns, fixes_run_id
        self.file_name, self.sha256, self.sheet = file_name, sha256, sheet
        self.batch_size, self.progress, self.user_name = batch_size, progress, user_name
        self.settings_json, self.method = settings_json, method
        self.existing, self.blank = existing, blank
        self.blanks = BlankCells(checked.original)
        errors = checked.errors
        rows_of = getattr(errors, "rows", None)
        self.error_rows = (rows_of() if rows_of is not None
                           else np.fromiter(errors.keys(), dtype=np.int64, count=len(errors)))
        self.pg = is_postgres(conn)
        self.run_id: int | None = None
        self.owner = runs.this_owner()
        # This execution's failures, as its committed chunks settled them: the rows that failed validation
        # (their errors are checked.errors') and the loader's own failures (already_exists, conflict,
        # database_error) as small tables. The run's summary is made from them, not read back, unless
        # earlier attempts settled rows too. A chunk's part is kept only once its transaction committed.
        self.invalid_parts: list[np.ndarray] = []
        self.own_parts: list[ErrorTable] = []
        self.settled: tuple[np.ndarray, ErrorTable] | None = None

    def unit(self) -> AbstractContextManager:
        """A chunk's transaction: committed in a real run, a savepoint inside a dry run's outer one."""
        return self.conn.begin_nested() if self.dry_run else self.conn.begin()

    # -- the ledger ---------------------------------------------------------------------------
    def start(self) -> bool:
        """Claim a dead run of the same file (True = resumed) or create a new one."""
        conn, total = self.conn, len(self.checked.original)
        if self.pg:
            # Shared by every import (and dry run) for its whole session; undo takes it exclusively, so an
            # undo never runs while an import (or a resume of the run being undone) is under way.
            with self.unit():
                conn.execute(sa.select(sa.func.pg_advisory_lock_shared(RUN_LOCK_CLASS, IMPORTS_LOCK_KEY)))
        with runs.ACTIVE_LOCK, self.unit():
            for row in [] if self.new_run else runs.resumable_on(conn, self.sha256, self.sheet):
                if not claim.adopts(conn, self.settings_json, row):
                    continue
                if self.pg and not conn.execute(
                        sa.select(sa.func.pg_try_advisory_lock(RUN_LOCK_CLASS, row.id))).scalar():
                    continue
                owner_match = import_runs.c.owner.is_(None) if row.owner is None else import_runs.c.owner == row.owner
                recorded = dict(row.settings or {})
                # A cancel request stopped the execution it was made for; this one starts without it. Who resumes joins
                resumed = {"by": self.user_name, "via": self.settings_json.get("via"), "at": runs.now().isoformat()}
                resumes = [*recorded.get("resumes", ()), resumed]  # "resumes"; user_name stays who started it
                kept = {"settings": {k: v for k, v in recorded.items() if k != CANCEL_REQUEST} | {"resumes": resumes}}
                claimed = conn.execute(
                    sa.update(import_runs)
                    .where(import_runs.c.id == row.id, owner_match, import_runs.c.status.in_(runs.OPEN_STATUSES))
                    .values(owner=self.owner, status=RunStatus.RUNNING, heartbeat_at=runs.now(), finished_at=None,
                            **kept)
                ).rowcount
                if claimed == 1:
                    self.run_id = row.id
                    # A resume finishes the run as it began: same --existing and --blank (a resume from
                    # the dashboard, or a CLI call without the flags, must not turn updates into failures).
                    self.existing = ExistingMode(recorded.get("existing", self.existing))
                    self.blank = BlankMode(recorded.get("blank", self.blank))
                    self.rejected = frozenset(int(n) for n in recorded.get("rejected", self.rejected))
                    self.confirmed = frozenset(int(n) for n in recorded.get("confirmed", self.confirmed))
                    runs.mark_active(row.id, True)
                    return True
                if self.pg:
                    conn.execute(sa.select(sa.func.pg_advisory_unlock(RUN_LOCK_CLASS, row.id)))
            fixes = self.fixes_run_id
            if fixes is not None and not (0 < fixes < 2**31 and conn.execute(
                    sa.select(import_runs.c.id).where(import_runs.c.id == fixes)).first() is not None):
                fixes = None  # the report of a run this database does not have
            self.run_id = conn.execute(
                sa.insert(import_runs).values(
                    file_name=self.file_name, sha256=self.sha256, sheet=self.sheet, status=RunStatus.RUNNING,
                    total_attempted=total, started_at=runs.now(), heartbeat_at=runs.now(),
                    owner=self.owner, user_name=self.user_name, settings=self.settings_json, fixes_run_id=fixes,
                    via=self.settings_json.get("via"),
                    workspace_id=self.settings_json.get("workspace_id"),
                    workspace_seq=self.settings_json.get("workspace_seq"),
                ).returning(import_runs.c.id)
            ).scalar_one()
            if self.pg:  # taken before the row is committed, so nobody sees it unlocked
                conn.execute(sa.select(sa.func.pg_advisory_lock(RUN_LOCK_CLASS, self.run_id)))
            runs.mark_active(self.run_id, True)
        return False

    def done_rows(self) -> set[int]:
        """Source rows a resumed run already settled (created, updated, unchanged or failed)."""
        assert self.run_id is not None  # claimed
        with self.unit():
            return claim.settled_rows(self.conn, self.run_id)

    # -- one chunk ----------------------------------------------------------------------------
    def chunk(self, rows: list[Record]) -> tuple[int, int]:
        """Settle every row of a chunk in one transaction; returns (created, failed)."""
        numbers = np.fromiter((n for n, _ in rows), dtype=np.int64, count=len(rows))
        invalid = np.sort(numbers[np.isin(numbers, self.error_rows)])
        bad = set(invalid.tolist())
        # The loader's own failures; the rows that failed validation keep their errors in checked.errors.
        failures: dict[int, tuple[RowError, ...]] = {}
        candidates = [(n, rec) for n, rec in rows if n not in bad]
        matches = match_rows(self.conn, candidates, self.blanks.of([n for n, _ in candidates]),
                             clear=self.blank is BlankMode.CLEAR,
                             lock=self.pg and self.existing is ExistingMode.UPDATE, confirmed=self.confirmed)
        new: list[Record] = []
        changed: list[tuple[int, Match]] = []
        unchanged: list[tuple[int, Match]] = []
        for n, rec in candidates:
            match = matches[n]
            if match.outcome is Outcome.NEW:
                new.append((n, rec))
            elif match.outcome is Outcome.UNCHANGED:
                unchanged.append((n, match))
            elif match.outcome is Outcome.CONFLICT:
                failures[n] = match.errors
            elif self.existing is ExistingMode.SKIP or n in self.rejected:
                failures[n] = skip_errors(match)
            else:
                changed.append((n, match))
        updated, refused = self.update_rows(changed)
        failures.update(refused)
        inserted, refused = self.insert_rows(new, first=True)
        failures.update(refused)
        lost = [(n, rec) for n, rec in new if n not in inserted and n not in refused]
        # ON CONFLICT DO NOTHING skipped these: their keys exist (from before, or from a concurrent
        # import). Looking up only the skipped rows names the key without a query per key for the rest.
        if lost:
            raced = conflicts(self.conn, lost)
            for n, rec in lost:
                failures[n] = raced.get(n) or (RowError(
                    "shipping_mark", ErrorCode.ALREADY_EXISTS,
                    f"a customer with this shipping mark ({rec['shipping_mark']}), phone or email was "
                    "created by another import at the same time"),)
        if failures or len(invalid):
            self.insert_failures(invalid, failures)
        if updated:
            insert_many(self.conn, customer_changes.name,
                        ("customer_id", "run_id", "source_row_number", "before", "after"),
                        [(m.customer_id, self.run_id, n, json.dumps(m.before), json.dumps(m.after))
                         for n, m in changed if n in updated])
        if unchanged:
            insert_many(self.conn, import_unchanged.name, ("run_id", "source_row_number", "customer_id"),
                        [(self.run_id, n, m.customer_id) for n, m in unchanged])
        self.conn.execute(
            sa.update(import_runs).where(import_runs.c.id == self.run_id).values(
                rows_done=import_runs.c.rows_done + len(rows),
                total_created=import_runs.c.total_created + len(inserted),
                total_updated=import_runs.c.total_updated + len(updated),
                total_unchanged=import_runs.c.total_unchanged + len(unchanged),
                total_failed=import_runs.c.total_failed + len(invalid) + len(failures),
                heartbeat_at=runs.now(),
            )
        )
        self.settled = (invalid, ErrorTable.from_pairs(
            ((n, e) for n, errs in sorted(failures.items()) for e in errs), field_order=False))
        return len(inserted), len(invalid) + len(failures)

    def insert_failures(self, invalid: np.ndarray, failures: dict[int, tuple[RowError, ...]]) -> None:
        """Write a chunk's failed rows: those that failed validation (`invalid`, ascending) and the loader's
        own `failures`, each with its errors, its values as typed and the file's other columns, as JSON."""
        errors = self.checked.errors
        texts = dict(zip(invalid.tolist(), errors.errors_json(invalid), strict=True)) \
            if isinstance(errors, ErrorTable) else {n: errors_json(errors[n]) for n in invalid.tolist()}
        texts.update((n, errors_json(errs)) for n, errs in failures.items())
        numbers = sorted(texts)
        typed = values_json_by_row(self.checked.original, numbers, list(FIELD_NAMES))
        own = values_json_by_row(self.other_columns, numbers)
        # Multi-row INSERTs of JSON text, like the audit trail below: SQLAlchemy's executemany with
        # its JSON processors took a quarter of a 100%-invalid import on PostgreSQL. The text is
        # json.dumps' own, put together column by column (results.errors_json, values_json_by_row).
        insert_many(self.conn, import_failures.name,
                    ("run_id", "source_row_number", "errors", "customer_data", "other_columns"),
                    [(self.run_id, n, texts[n], typed[n], own.get(n)) for n in numbers])

    def update_rows(self, rows: list[tuple[int, Match]]) -> tuple[set[int], dict[int, tuple[RowError, ...]]]:
        """Apply changed rows in one bulk UPDATE; a refused batch is halved until each refused row is alone."""
        def apply(part: list[tuple[int, Match]]) -> set[int]:
            bulk_update(self.conn, [(m.customer_id, m.after) for _, m in part])  # type: ignore[misc]
            return {n for n, _ in part}

        def refusal(row: tuple[int, Match], message: str) -> RowError:
            match = row[1]
            assert match.after is not None
            return RowError(_guess_field(message, match.after), ErrorCode.DATABASE_ERROR,
                            f"the database refused this update of customer #{match.customer_id}: {message}")

        return self.halving(rows, apply, apply, refusal)

    def insert_rows(self, rows: list[Record], first: bool = False) -> tuple[set[int], dict[int, tuple[RowError, ...]]]:
        """Insert rows; a refused batch is halved until each refused row is alone (database_error)."""
        def refusal(row: Record, message: str) -> RowError:
            return RowError(_guess_field(message, row[1]), ErrorCode.DATABASE_ERROR,
                            f"the database refused this row: {message}")

        attempt = self.copy_insert if first and self.pg and self.method == "copy" else self.values_insert
        return self.halving(rows, attempt, self.values_insert, refusal)

    def halving(self, rows: list[Any], attempt: Callable[[list[Any]], set[int]],
                halves: Callable[[list[Any]], set[int]], refusal: Callable[[Any, str], RowError],
                ) -> tuple[set[int], dict[int, tuple[RowError, ...]]]:
        """Write rows with `attempt` in a savepoint: (source rows written, {source row: its refusal}).

        A batch the database refuses for a row's own data is halved (each half written with `halves`)
        until each refused row is alone and `refusal` names why; a lost connection or a bug surfaces.
        """
        if not rows:
            return set(), {}
        try:
            with self.conn.begin_nested():
                return attempt(rows), {}
        except (sa.exc.IntegrityError, sa.exc.DataError, sa.exc.StatementError, ValueError) as exc:
            if isinstance(exc, sa.exc.DBAPIError) and not isinstance(exc, sa.exc.IntegrityError | sa.exc.DataError):
                raise
            if len(rows) == 1:
                return set(), {rows[0][0]: (refusal(rows[0], one_line(exc)),)}
            mid = len(rows) // 2
            ok_a, bad_a = self.halving(rows[:mid], halves, halves, refusal)
            ok_b, bad_b = self.halving(rows[mid:], halves, halves, refusal)
            return ok_a | ok_b, {**bad_a, **bad_b}

    def values_insert(self, rows: list[Record]) -> set[int]:
        """One multi-row INSERT ... ON CONFLICT DO NOTHING RETURNING source_row_number.

        Written at the driver level with bound parameters: SQLAlchemy's per-row parameter processing
        cost more than the insert itself (SQLite, 100,000 rows: about 1 s of 3).
        """
        mark = "%s" if self.pg else "?"
        one_row = "(" + ", ".join([mark] * len(_INSERT_COLUMNS)) + ")"
        sql = (f"INSERT INTO customers ({', '.join(_INSERT_COLUMNS)}) VALUES "  # noqa: S608 - fixed names
               + ", ".join([one_row] * len(rows)) + " ON CONFLICT DO NOTHING RETURNING source_row_number")
        params = tuple(value for n, rec in rows for value in (*(rec[f] for f in FIELD_NAMES), self.run_id, n))
        return {n for (n,) in self.conn.exec_driver_sql(sql, params)}

    def copy_insert(self, rows: list[Record]) -> set[int]:
        """PostgreSQL: COPY into a temp table, then one plain INSERT ... SELECT of every row.

        match_rows found none of the rows' keys stored, so the plain INSERT (no ON CONFLICT, no RETURNING:
        a quarter less of the database's work per row, bench/RESULTS.md) writes them all. A key that is
        there after all (a concurrent import committed it since, or two rows of the chunk share it) fails
        the statement in its savepoint; the same rows then go through values_insert, whose ON CONFLICT DO
        NOTHING skips them (the chunk names them already_exists, as before). Any other refusal (a row's
        own data) goes up to halving.
        """
        try:
            with self.conn.begin_nested():
                return self._copy_plain(rows)
        except sa.exc.IntegrityError as exc:
            if getattr(exc.orig, "pgcode", None) != _UNIQUE_VIOLATION:
                raise
        return self.values_insert(rows)

    def _copy_plain(self, rows: list[Record]) -> set[int]:
        import psycopg2

        self.conn.exec_driver_sql(_STAGE_DDL)
        self.conn.exec_driver_sql("TRUNCATE import_stage")
        run = str(self.run_id)
        buf = io.StringIO("".join(
            "\t".join([*(_NULL if rec[f] is None else _copy_text(rec[f]) for f in FIELD_NAMES), run, str(n)]) + "\n"
            for n, rec in rows))
        dbapi = self.conn.connection.dbapi_connection
        assert dbapi is not None  # an open connection's
        cursor = dbapi.cursor()
        try:
            cursor.copy_expert(f"COPY import_stage ({', '.join(_INSERT_COLUMNS)}) FROM STDIN", buf)
        except psycopg2.Error as exc:  # raw driver error: give it SQLAlchemy's class for the bisect
            raise sa.exc.DBAPIError.instance("COPY import_stage", None, exc, psycopg2.Error) from exc
        finally:
            cursor.close()
        self.conn.execute(_STAGE_INSERT)
        return {n for n, _ in rows}

    # -- the whole run ------------------------------------------------------------------------
    def run(self) -> RunResult:
        """Start or resume, load every pending chunk, finish, and summarise the whole file."""
        resumed = self.start()
        if self.on_run is not None:
            assert self.run_id is not None  # start() claimed or created it
            self.on_run(self.run_id)
        done = self.done_rows() if resumed else set()
        pending, chunks = _pending_chunks(self.checked, self.batch_size, done)
        # The rows settled by earlier attempts (even ones excluded from the upload since) plus those
        # pending now: every settled row counts once, so the totals add up.
        total = len(done) + pending
        rows_done = total - pending
        started, processed = time.monotonic(), 0
        for rows in chunks:
            for attempt in range(_RETRIES + 1):
                try:
                    self.settled = None
                    with self.unit():
                        self.chunk(rows)
                    break
                except sa.exc.OperationalError as exc:
                    if not _retryable(exc) or attempt == _RETRIES:
                        raise
                    time.sleep(0.05 * (attempt + 1))
            assert self.settled is not None  # chunk() settled the rows and its transaction committed
            self.invalid_parts.append(self.settled[0])
            self.own_parts.append(self.settled[1])
            processed += len(rows)
            rows_done += len(rows)
            if self.progress is not None:
                rate = processed / max(time.monotonic() - started, 1e-9)
                left = (total - rows_done) / rate if rate > 0 else None
                self.progress(Progress(rows_done, total, rate, left))
        run_id = self.run_id
        assert run_id is not None  # start() claimed or created it
        with self.unit():
            # Counted in the database, so a resumed run's summary covers the chunks of earlier attempts.
            n_failed = runs.failed_count_on(self.conn, run_id)
            errors = self.failures() if not done else None
            if errors is None or len(errors) != n_failed:
                # Earlier attempts settled rows too: their failures are read back.
                errors = runs.error_table_on(self.conn, run_id)
            created = runs.created_on(self.conn, run_id)
            n_updated = runs.updated_on(self.conn, run_id)
            n_unchanged = runs.unchanged_on(self.conn, run_id)
            finished = self.conn.execute(
                sa.update(import_runs).where(import_runs.c.id == run_id, import_runs.c.owner == self.owner,
                                             import_runs.c.status == RunStatus.RUNNING).values(
                    status=RunStatus.COMPLETED, finished_at=runs.now(), heartbeat_at=runs.now(), rows_done=total,
                    total_attempted=total, total_created=created, total_failed=len(errors),
                    total_updated=n_updated, total_unchanged=n_unchanged,
                )
            ).rowcount
            if finished != 1:
                raise DatabaseError(f"run {run_id} was taken over or undone while it ran; see History")
            if self.dry_run:  # read back before the rollback, held as columns
                held = UpdateColumns()
                for number, customer_id, before, after in runs.stream(self.conn, runs.changes_query(run_id)):
                    held.add(number, customer_id, changes_between(before, after))
                updated = held.freeze()
        if self.dry_run:
            # Rolled back with the dry run: the rows are the upload's own, looked up by row number.
            original, others = self.checked.original, self.other_columns
            failed = FailedRows(len(errors), lambda: failed_rows_of(errors, original, FIELD_NAMES, others=others),
                                columns=self.report_columns)
        else:
            engine = self.conn.engine
            failed = FailedRows(len(errors), lambda: runs.iter_failures(engine, run_id),
                                columns=self.report_columns, run_id=run_id)
            updated = UpdatedRows(n_updated, lambda: runs.iter_updates(engine, run_id))
        return RunResult(
            run_id=None if self.dry_run else run_id, dry_run=self.dry_run, resumed=resumed,
            file=self.file_name, sheet=self.sheet, total_attempted=total, total_created=created,
            failed=failed, failure_codes=errors.by_code(), updated=updated, total_unchanged=n_unchanged,
        )

    def failures(self) -> ErrorTable:
        """This execution's failures as the run stores them (field, code, message of each error, a row's
        errors in their stored order), put together from its chunks' parts, not read back."""
        errors = self.checked.errors
        invalid = np.concatenate(self.invalid_parts) if self.invalid_parts else np.zeros(0, dtype=np.int64)
        if isinstance(errors, ErrorTable):
            checked = errors.only_rows(invalid)
        else:
            checked = ErrorTable.from_pairs(((n, e) for n in invalid.tolist() for e in errors[n]), field_order=False)
        return ErrorTable.concat([checked, *self.own_parts], field_order=False).as_stored()

    def give_up(self) -> None:
        """After a non-database exception: mark the run interrupted so a retry resumes it at once."""
        if self.dry_run or self.run_id is None:
            return
        try:
            if self.conn.in_transaction():
                self.conn.rollback()
            with self.conn.begin():
                self.conn.execute(sa.update(import_runs).where(
                    import_runs.c.id == self.run_id, import_runs.c.status == RunStatus.RUNNING,
                    import_runs.c.owner == self.owner).values(status=RunStatus.INTERRUPTED))
        except Exception:  # noqa: BLE001, S110 - best effort; a dead owner is detected anyway
            pass


def run_import(
    engine: sa.Engine, checked: Any, *, file_name: str, sha256: str, sheet: str | None, settings: Settings,
    dry_run: bool = False, batch_size: int | None = None, progress: Callable[[Progress], None] | None = None,
    user_name: str | None = None, run_settings: dict | None = None, insert_method: InsertMethod | None = None,
    existing: ExistingMode | str = ExistingMode.SKIP, blank: BlankMode | str = BlankMode.KEEP,
    rejected: Collection[int] = (), other_columns: pd.DataFrame | None = None,
    report_columns: Sequence[ReportColumn] | None = None, fixes_run_id: int | None = None,
    on_run: Callable[[int], None] | None = None, new_run: bool = False, confirmed: Collection[int] = (),
) -> RunResult:
    """Import checked rows: every row ends created, updated, unchanged or failed; see CONTRACT.md
    "Runs are crash-safe". `existing`: what a row matching a customer with other values does (skip: fails
    as already_exists; update: updates it); `blank`: whether a blank optional cell keeps (keep) or clears
    (clear) a matched customer's value; `rejected`: source rows whose change to a customer the analyst
    rejected in review: under update they fail as already_exists, as every changed row does under skip.
    `confirmed`: rows the analyst confirmed one by one as the customer their keys point to although its
    mark or whole name differs; any other such row fails as a conflict (a possible different person).
    For the failure report that goes back to the branch: `other_columns` (the file's own columns that feed
    no field, by report header, indexed by source row) are kept with each failed row, `report_columns`
    is the report's layout, and `fixes_run_id` the run whose report this file is (recorded when that run
    exists). `on_run(run_id)` is called once the run is created or claimed, before its first chunk.
    A run_settings "workspace_id" and "workspace_seq" are also written to their import_runs columns; a dead
    run of the same file is resumed unless `new_run` (_Loader.adopts: a workspace's run only by its workspace).

    A dry run executes the same path inside one transaction that is rolled back (the schema too, when the
    database has none yet: a dry run leaves the database as it found it); its run_id is None.
    """
    existing, blank = ExistingMode(existing), BlankMode(blank)
    size = effective_batch_size(engine.dialect.name, batch_size or settings.batch_size)
    method: InsertMethod = insert_method or (DEFAULT_PG_METHOD if engine.dialect.name == "postgresql" else "values")
    settings_json = {
        "batch_size": size, "insert_method": method, "default_phone_region": settings.default_phone_region,
        "default_customer_region": settings.default_customer_region, "existing": existing.value,
        "blank": blank.value, **(run_settings or {}),
    }
    if rejected:  # a resume must reject the same rows
        settings_json["rejected"] = sorted(int(n) for n in rejected)
    if confirmed:  # and confirm the same rows
        settings_json["confirmed"] = sorted(int(n) for n in confirmed)
    with db_errors(engine):
        conn = engine.connect()
    loader = _Loader(conn, checked, file_name=file_name, sha256=sha256, sheet=sheet, dry_run=dry_run,
                     batch_size=size, progress=progress, user_name=user_name, settings_json=settings_json,
                     method=method, existing=existing, blank=blank,
                     rejected=frozenset(int(n) for n in rejected), other_columns=other_columns,
                     report_columns=report_columns, fixes_run_id=fixes_run_id, on_run=on_run, new_run=new_run,
                     confirmed=frozenset(int(n) for n in confirmed))
    outer = conn.begin() if dry_run else None
    try:
        if dry_run:
            upgrade_in_transaction(conn)  # rolled back with the dry run
        return loader.run()
    except (sa.exc.SQLAlchemyError, DatabaseError) as exc:
        # The run stays "running" under this (exiting) owner: list_runs shows it interrupted.
        raise (exc if isinstance(exc, DatabaseError) else to_database_error(exc, engine)) from exc
    except BaseException:
        loader.give_up()
        raise
    finally:
        _release(conn, outer, loader.run_id)


def _release(conn: sa.Connection, outer: sa.RootTransaction | None, run_id: int | None) -> None:
    """Roll back a dry run, drop the run's advisory lock, and return the connection."""
    if run_id is not None:
        runs.mark_active(run_id, False)
    try:
        if outer is not None and outer.is_active:
            outer.rollback()
        if conn.in_transaction():
            conn.rollback()
        if is_postgres(conn) and not conn.invalidated:
            conn.execute(sa.select(sa.func.pg_advisory_unlock_all()))
            conn.commit()
    except Exception:  # noqa: BLE001 - a broken connection: make sure the pool never reuses it
        conn.invalidate()
    finally:
        conn.close()


__all__ = ["CANCEL_REQUEST", "InsertMethod", "Progress", "effective_batch_size", "run_import"]
