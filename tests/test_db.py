"""importer.database.schema: engines, migrations, concurrent start-up, one-line database errors."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from importer.database.schema import (
    HEAD_REVISION,
    current_revision,
    customers,
    describe_url,
    ensure_schema,
    make_engine,
    metadata,
    normalise_url,
    upgrade,
)
from importer.errors import DatabaseError
from schemas.customer import FIELDS, UNIQUE_FIELDS
from tests.support import ready_engine

ROOT = Path(__file__).resolve().parent.parent


def test_url_normalised_for_render() -> None:
    assert normalise_url("postgres://u:p@h/db") == "postgresql+psycopg2://u:p@h/db"
    assert normalise_url("postgresql://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert normalise_url("sqlite:///x.db") == "sqlite:///x.db"


def test_describe_url_never_shows_password(tmp_path) -> None:
    assert describe_url("postgres://me:s3cret@db.example.com:5433/shop") == "PostgreSQL shop@db.example.com:5433"
    assert "s3cret" not in describe_url("postgresql://me:s3cret@h/shop")
    assert describe_url(f"sqlite:///{tmp_path}/c.db") == f"SQLite file {tmp_path}/c.db"


def test_migrate_empty_database_to_head(database_url: str) -> None:
    engine = make_engine(database_url)
    assert current_revision(engine) is None
    ensure_schema(engine)
    ensure_schema(engine)  # idempotent
    assert current_revision(engine) == HEAD_REVISION
    insp = sa.inspect(engine)
    assert {"customers", "import_runs", "import_failures", "customer_changes", "import_unchanged"} <= set(insp.get_table_names())
    assert "user_name" in {c["name"] for c in insp.get_columns("import_runs")}


def test_migrate_from_previous_revision(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade(engine, "0001")
    assert current_revision(engine) == "0001"
    assert "user_name" not in {c["name"] for c in sa.inspect(engine).get_columns("import_runs")}
    with engine.begin() as conn:  # data written under 0001 survives the upgrade
        conn.execute(sa.text(
            "INSERT INTO import_runs (file_name, sha256, status, started_at) "
            "VALUES ('a.xlsx', 'abc', 'completed', CURRENT_TIMESTAMP)"))
    ensure_schema(engine)
    assert current_revision(engine) == HEAD_REVISION
    insp = sa.inspect(make_engine(database_url))
    assert "user_name" in {c["name"] for c in insp.get_columns("import_runs")}
    assert "ix_import_runs_sha256" in {i["name"] for i in insp.get_indexes("import_runs")}
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT file_name FROM import_runs")).scalar_one() == "a.xlsx"


def test_ensure_schema_from_two_processes_at_once(database_url: str) -> None:
    code = "import sys; from importer.database.schema import make_engine, ensure_schema; ensure_schema(make_engine(sys.argv[1]))"
    procs = [subprocess.Popen([sys.executable, "-c", code, database_url], cwd=ROOT,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    assert current_revision(make_engine(database_url)) == HEAD_REVISION


def test_column_lengths_are_real(database_url: str) -> None:
    cols = {c["name"]: c for c in sa.inspect(ready_engine(database_url)).get_columns("customers")}
    assert cols["shipping_mark"]["type"].length == 100
    assert cols["phone"]["type"].length == 20
    assert cols["email"]["type"].length == 254


def test_tables_declared_in_code_match_what_the_migrations_create(database_url: str) -> None:
    """importer.database.schema's tables (the customers' field columns derived from schemas.customer.FIELDS) are what
    migrations/versions built: Alembic's autogenerate finds no difference, lengths and NULLs included."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    import importer.mapping.profiles
    import importer.workspace.store  # noqa: F401 - their tables are declared on importer.database.schema.metadata

    def declared_anywhere(name: str | None, kind: str, _parent: object) -> bool:
        # The search's trigram index exists only on PostgreSQL with pg_trgm (migration 0006 skips it otherwise).
        return not (kind == "index" and name == "ix_customers_search_trgm")

    engine = ready_engine(database_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": declared_anywhere})
            assert compare_metadata(context, metadata) == []
            migrated = {c["name"]: (getattr(c["type"], "length", None), c["nullable"])
                        for c in sa.inspect(conn).get_columns("customers")}
            checks = {c["name"] for c in sa.inspect(conn).get_check_constraints("customers")}
            uniques = {u["name"]: u["column_names"] for u in sa.inspect(conn).get_unique_constraints("customers")}
    finally:
        engine.dispose()
    declared = {c.name: (getattr(c.type, "length", None), c.nullable) for c in customers.columns}
    assert migrated == declared
    assert {f.name: migrated[f.name] for f in FIELDS} == {
        "shipping_mark": (100, False), "first_name": (50, False), "last_name": (50, False), "email": (254, True),
        "phone": (20, False), "region": (32, False), "company_name": (100, True), "nickname": (50, True),
        "user_type": (16, False), "other_phones": (500, True), "other_emails": (500, True)}
    assert checks == {"ck_customers_user_type", "ck_customers_shipping_mark_len"}
    assert uniques == {f"uq_customers_{name}": [name] for name in UNIQUE_FIELDS} | {
        "uq_customers_run_row": ["import_run_id", "source_row_number"]}


def test_customers_table_ddl_is_the_migrations_own(sqlite_url: str) -> None:
    """On SQLite the migrated CREATE TABLE is stored verbatim: the declared table compiles to the same lines,
    CHECK constraints (user types, the shipping mark's minimum length) included. Columns added later by
    ALTER TABLE ADD COLUMN (0005) come last in the stored text, so the lines are compared as sets."""
    from sqlalchemy.schema import CreateTable

    engine = ready_engine(sqlite_url)
    try:
        with engine.connect() as conn:
            migrated = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 'customers'").scalar_one()
        declared = str(CreateTable(customers).compile(dialect=engine.dialect)).strip()
    finally:
        engine.dispose()
    def parts(sql: str) -> tuple[str, set[str]]:
        """The CREATE TABLE line, and each column and constraint (ADD COLUMN appends to a line: split on ", \n"
        and on the ", " an ADD COLUMN leaves between columns)."""
        head, _, body = sql.strip().partition("(\n")
        items = re.split(r", \n|, (?=[a-z_]+ [A-Z])", body.removesuffix("\n)"))
        return head, {item.strip() for item in items}

    assert parts(migrated) == parts(declared)
    assert "CHECK (user_type IN ('INDIVIDUAL', 'BUSINESS'))" in declared
    assert "CHECK (length(shipping_mark) >= 2)" in declared


def test_closed_port_is_one_line_database_error() -> None:
    engine = make_engine("postgres://postgres:pw@127.0.0.1:1/nowhere")
    with pytest.raises(DatabaseError) as info:
        current_revision(engine)  # the first thing every command asks the database
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("Cannot reach the database at PostgreSQL nowhere@127.0.0.1:1")
    assert "pw" not in message
    with pytest.raises(DatabaseError):
        ensure_schema(engine)


def test_unopenable_sqlite_is_database_error(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/no/such/dir/c.db")
    with pytest.raises(DatabaseError) as info:
        ensure_schema(engine)
    assert "\n" not in str(info.value)


def test_sqlite_pragmas(sqlite_url: str) -> None:
    with make_engine(sqlite_url).connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


def test_head_revision_constant_matches_the_migrations() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from importer.database.schema import HEAD_REVISION, MIGRATIONS_DIR

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD_REVISION


def test_ensure_schema_skips_alembic_when_current(sqlite_url: str) -> None:
    from importer.database.schema import HEAD_REVISION, ensure_schema, make_engine

    engine = make_engine(sqlite_url)
    assert current_revision(engine) is None
    ensure_schema(engine)
    assert current_revision(engine) == HEAD_REVISION
    ensure_schema(engine)
    engine.dispose()
