"""importer.database.loader: stored values, accounting, dry runs, bisecting refused rows, races, resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from importer.database.ledger import count_customers
from importer.database.loader import Progress, effective_batch_size, run_import
from importer.database.schema import customers, import_failures, import_runs, make_engine
from importer.errors import DatabaseError
from importer.outcomes.row_errors import ErrorCode
from schemas.customer import FIELD_NAMES
from tests.support import SETTINGS, checked_of, import_cut_off, norm_row, person, raw_checked, ready_engine

ROOT = Path(__file__).resolve().parent.parent


def _import(engine, checked, **kw):
    kw.setdefault("file_name", "customers.xlsx")
    kw.setdefault("sha256", "f" * 64)
    kw.setdefault("sheet", "Customers")
    return run_import(engine, checked, settings=SETTINGS, **kw)


def _table_counts(engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return tuple(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                     for t in (customers, import_runs, import_failures))


def test_contract_examples_are_stored_normalised(database_url: str) -> None:
    engine = ready_engine(database_url)
    rows = [
        person(1, shipping_mark=" pm4   kofi ", phone="024 123 4567", email=" Kofi@Example.COM ",
               region="Ashanti Region", user_type="business", company_name=" Acme "),
        person(2, phone="+233 24 765 4321", email="", region="", user_type=""),
        person(3, phone="233201234567"),
        person(14, phone="541234567.0"),
    ]
    result = _import(engine, checked_of(rows))
    assert (result.total_attempted, result.total_created, result.total_failed) == (4, 4, 0)
    with engine.connect() as conn:
        stored = {r.source_row_number: r for r in conn.execute(sa.select(customers))}
    assert stored[2].shipping_mark == "PM4 KOFI"
    assert stored[2].phone == "+233241234567"
    assert stored[2].email == "kofi@example.com"
    assert stored[2].region == "ASHANTI"
    assert stored[2].user_type == "BUSINESS"
    assert stored[2].company_name == "Acme"
    assert stored[2].import_run_id == result.run_id
    assert stored[3].email is None and stored[3].region == "GREATER_ACCRA"
    assert stored[3].user_type == "INDIVIDUAL" and stored[3].nickname is None
    assert stored[4].phone == "+233201234567"
    assert stored[5].phone == "+233541234567"


def test_every_row_is_accounted_for_and_db_duplicates_named(database_url: str) -> None:
    engine = ready_engine(database_url)
    _import(engine, checked_of([person(1), person(2)]), sha256="a" * 64)
    rows = [person(1, phone="0201111111", email=""), person(3, phone="12345"),
            person(4, first_name=""), person(5), person(5, shipping_mark="other"),
            person(6, phone=person(2)["phone"], shipping_mark="new six", email="")]
    result = _import(engine, checked_of(rows), batch_size=2)
    assert result.total_created + result.total_failed == result.total_attempted == 6
    assert result.total_created == 1
    by_row = {r.source_row_number: r for r in result.failed}
    assert [r.source_row_number for r in result.failed] == sorted(by_row)
    # Rows matching one customer with other values fail under --existing skip, saying what differs.
    assert by_row[2].errors[0].code is ErrorCode.ALREADY_EXISTS
    assert by_row[2].errors[0].message.startswith(
        "phone differs: stored +233240000001, file +233201111111 (customer #1, shipping mark PM1 KOFI")
    # Another shipping mark on customer #2's phone: a possible different person (issue 22), never an update
    # of #2 unless confirmed on its own; it fails as a conflict naming the key that matched.
    assert by_row[7].errors[0].code is ErrorCode.CONFLICT
    assert by_row[7].errors[0].message.startswith(
        "possible different person: phone +233240000002 matched customer #2")
    assert {e.code for e in by_row[4].errors} == {ErrorCode.REQUIRED}
    assert by_row[6].errors[0].code is ErrorCode.DUPLICATE_IN_FILE
    assert by_row[4].customer_data == {k: v for k, v in rows[2].items() if v}
    assert count_customers(engine) == 3


def test_dry_run_leaves_nothing_and_matches_real_run(database_url: str) -> None:
    engine = ready_engine(database_url)
    _import(engine, checked_of([person(i) for i in range(5)]), sha256="b" * 64)
    before = _table_counts(engine)
    rows = [person(i) for i in range(3, 40)] + [person(50, phone="12")]
    checked = checked_of(rows)
    dry = _import(engine, checked, dry_run=True, batch_size=7)
    assert _table_counts(engine) == before
    assert dry.dry_run and dry.run_id is None
    real = _import(engine, checked, batch_size=7)
    assert (dry.total_attempted, dry.total_created, dry.total_unchanged, dry.total_failed) == (
        real.total_attempted, real.total_created, real.total_unchanged, real.total_failed) == (38, 35, 2, 1)
    assert [r.to_json() for r in dry.failed] == [r.to_json() for r in real.failed]


def test_rejected_row_is_bisected_out(database_url: str) -> None:
    engine = ready_engine(database_url)
    rows = [norm_row(i) for i in range(40)]
    rows[17]["user_type"] = "ALIEN"  # violates the CHECK constraint on both databases
    if engine.dialect.name == "postgresql":
        rows[5]["first_name"] = "x" * 51  # longer than VARCHAR(50)
        rows[30]["nickname"] = "nul\x00byte"
    result = _import(engine, raw_checked(rows), batch_size=16)
    bad = {r.source_row_number: r.errors[0] for r in result.failed}
    expected = {19} | ({7, 32} if engine.dialect.name == "postgresql" else set())
    assert set(bad) == expected
    assert all(e.code is ErrorCode.DATABASE_ERROR and "\n" not in e.message for e in bad.values())
    assert result.total_created == 40 - len(expected) == count_customers(engine)
    if engine.dialect.name == "postgresql":
        assert bad[7].field == "first_name" and "too long" in bad[7].message
        assert bad[32].field == "nickname"


def test_copy_method_matches_values_method(pg_url: str) -> None:
    engine = ready_engine(pg_url)
    _import(engine, checked_of([person(1)]), sha256="c" * 64)
    rows = [norm_row(i) for i in range(30)]
    rows[9]["user_type"] = "ALIEN"
    rows[12]["nickname"] = "tab\there\\back"
    result = _import(engine, raw_checked(rows), batch_size=10, insert_method="copy")
    assert (result.total_created, result.total_unchanged) == (28, 1)  # row 3 is person 1 as stored
    assert {r.source_row_number: r.errors[0].code for r in result.failed} == {11: ErrorCode.DATABASE_ERROR}
    with engine.connect() as conn:
        assert conn.execute(sa.select(customers.c.nickname).where(
            customers.c.source_row_number == 14)).scalar_one() == "tab\there\\back"


def test_a_key_taken_since_the_lookup_fails_its_row_and_the_chunk_still_loads(database_url: str) -> None:
    """Rows 4 and 7 share a shipping mark that no stored customer has: both look new to match_rows, so the
    chunk's first insert (PostgreSQL: COPY and a plain INSERT ... SELECT) is refused for the key, as for a
    key a concurrent import committed meanwhile; the halves skip it (ON CONFLICT DO NOTHING). Row 4 is
    created, row 7 fails as already_exists naming it, and every other row of the chunk is created."""
    engine = ready_engine(database_url)
    rows = [norm_row(i) for i in range(12)]
    rows[5]["shipping_mark"] = rows[2]["shipping_mark"]
    result = _import(engine, raw_checked(rows), batch_size=10)
    assert (result.total_created, result.total_failed) == (11, 1)
    (failed,) = result.failed
    assert failed.source_row_number == 7 and [e.code for e in failed.errors] == [ErrorCode.ALREADY_EXISTS]
    assert "PM2 KOFI" in failed.errors[0].message
    with engine.connect() as conn:
        stored = dict(conn.execute(sa.select(customers.c.source_row_number, customers.c.last_name)).all())
    assert sorted(stored) == [n for n in range(2, 14) if n != 7] and stored[4] == "Mensah2"


@pytest.mark.postgres
def test_a_key_committed_by_another_import_meanwhile_fails_a_one_row_chunk_as_already_exists(pg_url: str) -> None:
    """Another transaction holds PM2's key uncommitted: match_rows cannot see it, so row 3 (a chunk of one
    row) looks new and its insert waits for that transaction; it commits, the plain insert is refused for
    the key, and the row fails as already_exists (not as a database error) while the other rows load."""
    engine = ready_engine(pg_url)
    other = engine.connect()
    other.begin()
    other.execute(sa.insert(customers).values(**norm_row(2, first_name="Ama")))
    results: list = []
    worker = threading.Thread(target=lambda: results.append(
        _import(engine, raw_checked([norm_row(i) for i in range(1, 4)]), batch_size=1)))
    worker.start()
    try:
        waiting = sa.text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                          "AND query LIKE 'INSERT INTO customers%' AND pid <> pg_backend_pid()")
        with engine.connect() as watch:
            while watch.execute(waiting).scalar_one() == 0 and worker.is_alive():
                watch.rollback()
                threading.Event().wait(0.05)
    finally:
        other.commit()
        other.close()
    worker.join(60)
    (result,) = results
    assert (result.total_created, result.total_failed) == (2, 1)
    (failed,) = result.failed
    assert failed.source_row_number == 3 and {e.code for e in failed.errors} == {ErrorCode.ALREADY_EXISTS}


def test_batch_size_is_clamped_to_bind_limits() -> None:
    # The record's fields, the run and the source row: the bound parameters of one inserted row.
    per_row = len(FIELD_NAMES) + 2
    assert effective_batch_size("sqlite", 100_000) == 32_766 // per_row
    assert effective_batch_size("postgresql", 100_000) == 65_535 // per_row
    assert effective_batch_size("sqlite", 0) == 1


def test_progress_reports_each_chunk(database_url: str) -> None:
    engine = ready_engine(database_url)
    seen: list[Progress] = []
    _import(engine, checked_of([person(i) for i in range(25)]), batch_size=10, progress=seen.append)
    assert [p.rows_done for p in seen] == [10, 20, 25]
    assert seen[-1].total == 25 and seen[-1].seconds_left == 0


def test_parallel_overlapping_imports_create_no_duplicates(database_url: str) -> None:
    ready_engine(database_url)
    a = checked_of([person(i) for i in range(0, 300)])
    b = checked_of([person(i) for i in range(150, 450)][::-1])  # reversed: keys met in another order
    results: dict[str, object] = {}

    def go(name, checked, sha, method) -> None:
        results[name] = _import(make_engine(database_url), checked, sha256=sha, batch_size=40,
                                insert_method=method)

    # Both PostgreSQL insert methods race each other (SQLite always uses VALUES).
    threads = [threading.Thread(target=go, args=("a", a, "1" * 64, "copy")),
               threading.Thread(target=go, args=("b", b, "2" * 64, "values"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    ra, rb = results["a"], results["b"]
    # A row the other import created first is unchanged (seen) or already_exists (lost the race).
    assert all(r.total_created + r.total_unchanged + r.total_failed == 300 for r in (ra, rb))
    assert ra.total_created + rb.total_created == 450 == count_customers(make_engine(database_url))
    codes = {e.code for r in (*ra.failed, *rb.failed) for e in r.errors}
    assert codes <= {ErrorCode.ALREADY_EXISTS}


def test_resume_after_interruption_between_chunks(database_url: str) -> None:
    engine = ready_engine(database_url)
    rows = [person(i) for i in range(50)] + [person(99, phone="5")]
    checked = checked_of(rows)
    run_id = import_cut_off(engine, checked, sha256="f" * 64)  # after two chunks, as a dead process leaves it
    assert count_customers(engine) == 20
    result = _import(engine, checked, batch_size=10)
    assert result.resumed and result.run_id == run_id
    assert (result.total_attempted, result.total_created, result.total_failed) == (51, 50, 1)
    assert count_customers(engine) == 50
    with engine.connect() as conn:
        assert conn.execute(sa.select(import_runs.c.status)).scalar_one() == "completed"
    again = _import(engine, checked, batch_size=10)  # a completed run's file again: a new run
    assert not again.resumed and again.run_id != run_id and again.total_created == 0


_CHILD = """
import sys, time
from pathlib import Path
from importer.database.schema import make_engine
from importer.database.loader import run_import
from importer.api import read_upload
from importer.settings import Settings
path, url = sys.argv[1], sys.argv[2]
up = read_upload(Path(path).read_bytes(), Path(path).name, Settings())
def slow(p):
    print(p.rows_done, flush=True)
    time.sleep(0.3)
run_import(make_engine(url), up.checked, file_name=up.file_name, sha256=up.sha256, sheet=None,
           settings=Settings(), batch_size=20, progress=slow)
"""


def test_resume_after_sigkill(database_url: str, tmp_path) -> None:
    from importer.api import read_upload

    engine = ready_engine(database_url)
    lines = ["Shipping Mark,First Name,Last Name,Email,Phone"]
    lines += [f"pm{i} kofi,Kofi,Mensah,k{i}@x.com,024{i:07d}" for i in range(200)]
    lines.append("bad one,Ama,,,0241")
    path = tmp_path / "customers.csv"
    path.write_text("\n".join(lines) + "\n")
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(path), database_url], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "20"  # first chunk committed
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    partial = count_customers(engine)
    assert 20 <= partial < 200
    from importer.database.ledger import list_runs

    killed = list_runs(engine)[0]
    assert killed.status == "interrupted" and killed.rows_done == partial
    up = read_upload(path.read_bytes(), path.name, SETTINGS)
    result = run_import(engine, up.checked, file_name=up.file_name, sha256=up.sha256, sheet=None,
                        settings=SETTINGS, batch_size=50)
    assert result.resumed and result.run_id == killed.id
    assert (result.total_attempted, result.total_created, result.total_failed) == (201, 200, 1)
    assert count_customers(engine) == 200
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(import_runs)).scalar_one() == 1


def test_unreachable_database_raises_database_error() -> None:
    engine = make_engine("postgresql://postgres@127.0.0.1:1/x")
    with pytest.raises(DatabaseError) as info:
        _import(engine, checked_of([person(1)]))
    assert "\n" not in str(info.value)


@pytest.mark.postgres
def test_connection_lost_mid_run_is_database_error_then_resumes(pg_url: str) -> None:
    engine = ready_engine(pg_url)
    checked = checked_of([person(i) for i in range(30)])
    killer = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")

    def cut_connection(p: Progress) -> None:
        if p.rows_done == 10:
            with killer.connect() as conn:
                conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                     "WHERE datname = current_database() AND pid <> pg_backend_pid()"))

    with pytest.raises(DatabaseError) as info:
        _import(engine, checked, batch_size=10, progress=cut_connection)
    assert "\n" not in str(info.value)
    killer.dispose()
    engine = make_engine(pg_url)
    result = _import(engine, checked, batch_size=10)
    assert result.resumed and (result.total_created, result.total_failed) == (30, 0)
    assert count_customers(engine) == 30


def test_rejected_update_is_bisected_out(database_url: str) -> None:
    engine = ready_engine(database_url)
    _import(engine, raw_checked([norm_row(i) for i in range(40)]))
    changed = [norm_row(i, nickname=f"Nick {i}") for i in range(40)]
    changed[17]["user_type"] = "ALIEN"  # violates the CHECK constraint on both databases
    result = _import(engine, raw_checked(changed), batch_size=16, existing="update")
    bad = {r.source_row_number: r.errors[0] for r in result.failed}
    assert set(bad) == {19}
    assert bad[19].code is ErrorCode.DATABASE_ERROR and "refused this update of customer #18" in bad[19].message
    assert (result.total_updated, result.total_created, result.total_failed) == (39, 0, 1)
    with engine.connect() as conn:
        nicknames = dict(conn.execute(sa.select(customers.c.id, customers.c.nickname)).all())
    assert nicknames[18] is None and nicknames[1] == "Nick 0" and nicknames[40] == "Nick 39"
