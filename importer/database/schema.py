"""SQLAlchemy engine factory, the tables, Alembic migrations and one-line database errors."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url

from importer.errors import DatabaseError
from schemas.customer import FIELDS, SPECS, UNIQUE_FIELDS

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
# Arbitrary application key for pg_advisory_lock: one for migrations, one namespace for runs.
SCHEMA_LOCK_KEY = 7_321_001
RUN_LOCK_CLASS = 7_321
# (RUN_LOCK_CLASS, IMPORTS_LOCK_KEY): held shared by every import for its session, exclusively by undo.
# Run ids start at 1, so key 0 of the class is free.
IMPORTS_LOCK_KEY = 0

metadata = sa.MetaData()

# The field columns come from schemas.customer.FIELDS (lengths, NULL or NOT NULL, uniqueness, choices);
# the migrations in migrations/versions created them (tests/test_db.py checks the two agree).
customers = sa.Table(
    "customers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    *(sa.Column(spec.name, sa.String(spec.stored_length), nullable=spec.stored_nullable) for spec in FIELDS),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("import_run_id", sa.Integer, sa.ForeignKey("import_runs.id"), nullable=True),
    sa.Column("source_row_number", sa.Integer, nullable=True),
    *(sa.UniqueConstraint(name, name=f"uq_customers_{name}") for name in UNIQUE_FIELDS),
    sa.UniqueConstraint("import_run_id", "source_row_number", name="uq_customers_run_row"),
    sa.CheckConstraint("user_type IN ({})".format(", ".join(f"'{t}'" for t in SPECS["user_type"].choices)),
                       name="ck_customers_user_type"),
    sa.CheckConstraint(f"length(shipping_mark) >= {SPECS['shipping_mark'].min_length}",
                       name="ck_customers_shipping_mark_len"),
    # The Customers page's filters (migration 0006; its trigram search index is PostgreSQL's alone).
    sa.Index("ix_customers_region", "region"),
    sa.Index("ix_customers_run_id", "import_run_id", "id"),
)

import_runs = sa.Table(
    "import_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("file_name", sa.String(255), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False, index=True),
    sa.Column("sheet", sa.String(255)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("total_attempted", sa.Integer, nullable=False, server_default="0"),
    sa.Column("total_created", sa.Integer, nullable=False, server_default="0"),
    sa.Column("total_failed", sa.Integer, nullable=False, server_default="0"),
    sa.Column("total_updated", sa.Integer, nullable=False, server_default="0"),
    sa.Column("total_unchanged", sa.Integer, nullable=False, server_default="0"),
    sa.Column("rows_done", sa.Integer, nullable=False, server_default="0"),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("heartbeat_at", sa.DateTime(timezone=True)),
    sa.Column("owner", sa.String(255)),
    sa.Column("user_name", sa.String(255)),
    sa.Column("settings", sa.JSON),
    sa.Column("undone_at", sa.DateTime(timezone=True)),
    # The run whose failure report this run's file was (a fixed report uploaded again).
    sa.Column("fixes_run_id", sa.Integer),
    sa.Column("workspace_id", sa.Integer),  # the saved workspace the run imported (0004; importer.workspace.store)
    # The last operation of that workspace the run imports (0008): a resume replays up to it, no further.
    sa.Column("workspace_seq", sa.Integer),
    # Who did what (0010): how the run was started ("dashboard", "command line"; user_name says who), and
    # who undid it, how (importer.identity.Actor).
    sa.Column("via", sa.String(32)),
    sa.Column("undone_by", sa.String(255)),
    sa.Column("undone_via", sa.String(32)),
    sa.CheckConstraint(
        "status IN ('running', 'completed', 'interrupted', 'undone')", name="ck_import_runs_status"
    ),
)

import_failures = sa.Table(
    "import_failures",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("import_runs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("source_row_number", sa.Integer, nullable=False),
    sa.Column("errors", sa.JSON, nullable=False),
    sa.Column("customer_data", sa.JSON, nullable=False),
    # The file's own columns that feed no field ({header: text}), for the report that goes back to the branch.
    sa.Column("other_columns", sa.JSON),
    sa.UniqueConstraint("run_id", "source_row_number", name="uq_import_failures_run_row"),
)

# The customers' audit trail: each update by an import, with the full record before and after it.
customer_changes = sa.Table(
    "customer_changes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.id", ondelete="CASCADE"), nullable=False,
              index=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("import_runs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("source_row_number", sa.Integer, nullable=False),
    sa.Column("before", sa.JSON, nullable=False),
    sa.Column("after", sa.JSON, nullable=False),
    sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.UniqueConstraint("run_id", "source_row_number", name="uq_customer_changes_run_row"),
)

# Rows a run settled as unchanged (so a resumed run neither redoes nor recounts them).
import_unchanged = sa.Table(
    "import_unchanged",
    metadata,
    sa.Column("run_id", sa.Integer, sa.ForeignKey("import_runs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("source_row_number", sa.Integer, primary_key=True),
    sa.Column("customer_id", sa.Integer, nullable=False),
)

workspaces = sa.Table(
    "workspaces",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("owner", sa.String(255), nullable=False, index=True),
    sa.Column("file_name", sa.String(255), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("file_size", sa.Integer, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),  # the file, zlib-compressed
    sa.Column("sheet", sa.String(255)),
    sa.Column("mapping", sa.JSON),
    sa.Column("rows", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("discarded_at", sa.DateTime(timezone=True)),
    sa.Column("snapshot", sa.LargeBinary),  # the file as read and checked (snapshot_bytes; migration 0007)
    sa.Column("discarded_by", sa.String(255)),  # who discarded it (0010), while it is kept for a resume
    sa.Column("dry_run", sa.JSON),  # the dry run the review session last ran (importer.review.session; 0011)
)

# Active operations are a prefix of seq; the undone ones after them are the redo stack (a new operation
# deletes them), so the last active seq names the state: it is the workspace's version.
workspace_operations = sa.Table(
    "workspace_operations",
    metadata,
    sa.Column("workspace_id", sa.Integer, sa.ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("undone", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("actor", sa.String(255)),  # the account that made it (0010): its owner, or an admin
)

mapping_profiles = sa.Table(
    "mapping_profiles",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("signature", sa.String(64), nullable=False),
    sa.Column("name", sa.String(255), nullable=False, server_default=""),  # "" = saved by signature only
    sa.Column("headers", sa.JSON, nullable=False),
    sa.Column("mapping", sa.JSON, nullable=False),  # {"fields": [field or null per column]}
    sa.Column("file_name", sa.String(255)),
    sa.Column("saved_by", sa.String(255)),
    sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("signature", "name", name="uq_mapping_profiles_signature_name"),
)

# The dashboard's accounts (migration 0009; importer.database.accounts): name_key is the trimmed, case-folded
# name that lookups and uniqueness use; password_hash an Argon2id hash.
accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("name_key", sa.String(255), nullable=False),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("is_admin", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("disabled_at", sa.DateTime(timezone=True)),
    sa.UniqueConstraint("name_key", name="uq_accounts_name_key"),
)



def normalise_url(url: str) -> str:
    """`postgres://` (Render) and bare `postgresql://` -> the psycopg2 driver URL."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix):]
    return url


def describe_url(url: str) -> str:
    """A safe label for people: `SQLite file /abs/customers.db` or `PostgreSQL db@host:port`."""
    try:
        parsed = make_url(normalise_url(url))
    except Exception:  # noqa: BLE001 - a malformed URL still needs a label, never the password
        return "an unparseable database URL"
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database or ""
        if not db or db == ":memory:":
            return "SQLite in memory"
        return f"SQLite file {Path(db).resolve()}"
    if parsed.get_backend_name() == "postgresql":
        host = parsed.host or "localhost"
        port = f":{parsed.port}" if parsed.port else ""
        return f"PostgreSQL {parsed.database or ''}@{host}{port}"
    return f"{parsed.get_backend_name()} {parsed.database or ''}@{parsed.host or ''}"


def describe_for_people(url: str) -> str:
    """The database in an analyst's words, without a path, host or password: `the local SQLite database`,
    `PostgreSQL database customers` (describe_url has the detail, for an administrator)."""
    try:
        parsed = make_url(normalise_url(url))
    except Exception:  # noqa: BLE001 - a malformed URL still needs a label
        return "a database the dashboard cannot read the address of"
    backend, name = parsed.get_backend_name(), parsed.database or ""
    if backend == "sqlite":
        return "a temporary in-memory database" if not name or name == ":memory:" else "the local SQLite database"
    kind = "PostgreSQL" if backend == "postgresql" else backend
    return f"{kind} database {name}" if name else f"the {kind} database"


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    """Per connection: WAL (readers never block), enforced FKs, 30 s wait on a locked file."""
    # Driver-level autocommit: SQLAlchemy's "begin" event below emits BEGIN itself, so
    # SAVEPOINTs work and every transaction takes the write lock up front.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    # Switching a new file to WAL needs an exclusive lock and does not wait on the busy
    # handler, so two processes opening a fresh file at once can see "locked": retry briefly.
    for attempt in range(100):
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError:
            if attempt == 99:
                raise
            time.sleep(0.05)
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


READ_ONLY = "importer_read_only"  # execution option of a connection that only reads (see reading())


def _sqlite_begin(conn: sa.Connection) -> None:
    # IMMEDIATE: a deferred transaction that later writes can fail with SQLITE_BUSY at once
    # (no busy wait) when another writer got in between; IMMEDIATE waits up to busy_timeout.
    # A connection that only reads begins deferred: in WAL mode it never waits for a writer (an import
    # or a dry run holding the write lock), and never makes one wait.
    read_only = conn.get_execution_options().get(READ_ONLY, False)
    conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def make_engine(url: str) -> sa.Engine:
    """An engine for the URL, with SQLite set up for concurrent use."""
    url = normalise_url(url)
    try:
        parsed = make_url(url)
    except Exception as exc:  # noqa: BLE001
        raise DatabaseError(f"DATABASE_URL is not a valid database URL: {one_line(exc)}") from exc
    if parsed.get_backend_name() == "sqlite":
        # No statement cache: the sqlite3 module keeps up to 128 prepared statements per connection, and
        # a bulk INSERT of a few thousand rows is a multi-megabyte program; the pool's connections held
        # ~95 MB of them after one 100,000-row import (bench/RESULTS.md, "SQLite's statement cache").
        # Preparing a statement again costs less than that memory: the import got faster, not slower.
        engine = sa.create_engine(url, pool_pre_ping=True, connect_args={"timeout": 30, "cached_statements": 0})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    try:
        return sa.create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 10})
    except Exception as exc:  # noqa: BLE001 - e.g. a driver that is not installed
        raise DatabaseError(f"Cannot use the database {describe_url(url)}: {one_line(exc)}") from exc


def is_postgres(engine_or_conn: sa.Engine | sa.Connection) -> bool:
    """True for PostgreSQL, False for SQLite."""
    return engine_or_conn.dialect.name == "postgresql"


def one_line(exc: BaseException) -> str:
    """The first meaningful line of an exception's message, driver noise stripped."""
    orig = getattr(exc, "orig", None) or exc
    for line in str(orig).splitlines():
        line = line.strip()
        if line and not line.startswith("(Background on this error"):
            return line.rstrip(".")
    return type(orig).__name__


def _unreachable(exc: BaseException) -> bool:
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    text = str(getattr(exc, "orig", exc)).lower()
    needles = ("could not connect", "connection refused", "connection to server", "unable to open",
               "could not translate host", "timeout expired", "server closed the connection",
               "does not exist", "password authentication failed")
    return isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError) and any(n in text for n in needles)


def to_database_error(exc: BaseException, engine: sa.Engine | sa.Connection) -> DatabaseError:
    """A one-line DatabaseError for any SQLAlchemy/DBAPI failure."""
    where = describe_url(engine.engine.url.render_as_string(hide_password=False))
    if _unreachable(exc):
        return DatabaseError(
            f"Cannot reach the database at {where}: {one_line(exc)}. "
            "Check DATABASE_URL and that the server is running."
        )
    return DatabaseError(f"The database at {where} failed: {one_line(exc)}")


@contextlib.contextmanager
def db_errors(engine: sa.Engine | sa.Connection) -> Iterator[None]:
    """Turn SQLAlchemy/DBAPI exceptions raised inside into one-line DatabaseErrors."""
    try:
        yield
    except DatabaseError:
        raise
    except (sa.exc.SQLAlchemyError, OSError) as exc:
        raise to_database_error(exc, engine) from exc


@contextlib.contextmanager
def reading(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection for queries that only read: off SQLite's write lock; errors as DatabaseError."""
    with db_errors(engine), engine.connect() as conn:
        conn.execution_options(**{READ_ONLY: True})
        yield conn


def _alembic_config(conn: sa.Connection):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = conn
    return cfg


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Run Alembic to `revision` under a cross-process lock (advisory on PG, write lock on SQLite)."""
    from alembic import command

    with db_errors(engine), engine.connect() as conn:
        if is_postgres(conn):
            with conn.begin():
                # Transaction-scoped: released at commit, after the new schema is visible.
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(SCHEMA_LOCK_KEY)))
                command.upgrade(_alembic_config(conn), revision)
        else:
            with conn.begin():  # BEGIN IMMEDIATE: the second process waits here
                command.upgrade(_alembic_config(conn), revision)


def upgrade_in_transaction(conn: sa.Connection) -> None:
    """Bring the schema to the newest migration inside the connection's open transaction (a dry run's,
    so the tables vanish with its rollback); nothing happens when it is current."""
    from alembic import command

    if _revision_on(conn) == HEAD_REVISION:
        return
    if is_postgres(conn):
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(SCHEMA_LOCK_KEY)))
    command.upgrade(_alembic_config(conn), "head")


def _revision_on(conn: sa.Connection) -> str | None:
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
    return versions[0] if len(versions) == 1 else None


# The newest migration in migrations/versions (tests/test_db.py checks it against Alembic's head).
HEAD_REVISION = "0011"


def current_revision(engine: sa.Engine) -> str | None:
    """The migration the database is at (None when empty), read without importing Alembic (a CLI start-up cost)."""
    with reading(engine) as conn:
        return _revision_on(conn)


def ensure_schema(engine: sa.Engine) -> None:
    """Create or upgrade the schema to the newest migration; safe from two processes at once."""
    if current_revision(engine) != HEAD_REVISION:
        upgrade(engine, "head")
