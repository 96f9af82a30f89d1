"""importer.database.customers: the dashboard's read-only engine calls (classify an upload, search, detail, export)."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from importer.database.customers import (
    classify_upload,
    customer_detail,
    iter_customers,
    search_customers,
    search_terms,
    search_text,
)
from importer.database.loader import run_import
from importer.database.schema import HEAD_REVISION, current_revision, customers, make_engine
from tests.support import SETTINGS, checked_of, person, ready_engine


def _import(engine, rows, sha, **kw):
    return run_import(engine, checked_of(rows), file_name=f"{sha}.xlsx", sha256=sha * 64, sheet="S",
                      settings=SETTINGS, **kw)


def test_classify_upload_counts_and_diffs_without_writing(database_url: str) -> None:
    engine = ready_engine(database_url)
    _import(engine, [person(i) for i in range(6)], "a")
    rows = [person(0), person(1, last_name="Changed"), person(2, nickname="Kay"),
            person(3, phone=person(4)["phone"], email=""), person(9), person(10, phone="12")]
    checked = checked_of(rows)
    result = classify_upload(engine, checked, chunk=2)
    assert result.counts() == {"new": 1, "unchanged": 1, "changed": 2, "conflict": 1}
    assert list(result.rows["row"]) == [2, 3, 4, 5, 6]  # row 7 has its own error
    assert result.diffs_of(3) == {"last_name": ("Mensah1", "Changed")}
    assert result.diffs_of(4) == {"nickname": (None, "Kay")}
    assert set(result.changes["customer_id"]) == {2, 3}
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM customer_changes")).scalar_one() == 0
    dry = _import(engine, rows, "b", dry_run=True, existing="update")
    assert (dry.total_created, dry.total_updated, dry.total_unchanged) == (1, 2, 1)


def test_classify_on_a_database_without_schema_is_all_new(database_url: str) -> None:
    engine = make_engine(database_url)
    result = classify_upload(engine, checked_of([person(1), person(2)]))
    assert result.counts() == {"new": 2, "unchanged": 0, "changed": 0, "conflict": 0}
    assert sa.inspect(make_engine(database_url)).get_table_names() == []


def test_classify_on_a_database_with_no_customer_is_all_new_without_looking_keys_up(database_url: str) -> None:
    """A first import into a new database: nothing stored, so no key of any row is looked up (each chunk's
    lookups made records of every valid row for nothing)."""
    engine = ready_engine(database_url)
    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    rows = [person(1), person(2), person(1, first_name="Again"), person(3, phone="12")]
    result = classify_upload(engine, checked_of(rows), chunk=1)
    assert result.counts() == {"new": 2, "unchanged": 0, "changed": 0, "conflict": 0}
    assert list(result.rows["row"]) == [2, 3] and len(result.conflicts) == 0
    lookups = [s for s in statements if "customers" in s and "WHERE" in s.upper()]
    assert not lookups, lookups
    _import(engine, [person(9)], "a")
    statements.clear()
    assert classify_upload(engine, checked_of(rows), chunk=1).counts()["new"] == 2
    assert [s for s in statements if "customers" in s and "WHERE" in s.upper()]  # now it looks the keys up


def test_search_pages_filters_and_export(database_url: str) -> None:
    engine = ready_engine(database_url)
    first = _import(engine, [person(i, region="Volta" if i % 2 else "Ashanti") for i in range(25)], "a")
    second = _import(engine, [person(3, nickname="Three"), person(30)], "b", existing="update")
    page = search_customers(engine, limit=10, offset=20)
    assert page.total == 26 and [r["id"] for r in page.rows] == list(range(21, 27))
    assert search_customers(engine, "PM1").total == 11  # PM1, PM10..PM19 (marks are stored upper case)
    assert search_customers(engine, "kofi3@EXAMPLE").total == 1
    assert search_customers(engine, "0000003").rows[0]["shipping_mark"] == "PM3 KOFI"  # phone digits
    assert search_customers(engine, "50%").total == 0  # LIKE wildcards are literal
    assert search_customers(engine, region="VOLTA").total == 12
    by_run = search_customers(engine, run_id=second.run_id)
    assert {r["shipping_mark"] for r in by_run.rows} == {"PM3 KOFI", "PM30 KOFI"}
    assert search_customers(engine, run_id=first.run_id).total == 25
    exported = list(iter_customers(engine, region="ASHANTI", batch=4))
    assert len(exported) == 13 and [r["id"] for r in exported] == sorted(r["id"] for r in exported)


def _marks_found(engine, term: str) -> set[str]:
    """The shipping marks a search finds; on PostgreSQL also through the trigram index alone (sequential
    scans off), which must agree: an index entry left stale by an import or an undo would show here."""
    marks = {r["shipping_mark"] for r in search_customers(engine, term, limit=1_000).rows}
    if engine.dialect.name == "postgresql":
        query = sa.select(customers.c.shipping_mark).where(search_text().like(f"%{term.lower()}%"))
        with engine.connect() as conn:
            conn.execute(sa.text("SET enable_seqscan = off"))
            assert set(conn.execute(query).scalars()) == marks, term
    return marks


def test_search_follows_imports_updates_and_undos(database_url: str) -> None:
    from importer.database.ledger import undo

    engine = ready_engine(database_url)
    first = _import(engine, [person(i) for i in range(1, 6)], "a")
    assert _marks_found(engine, "mensah3") == {"PM3 KOFI"}  # right after the import
    update = _import(engine, [person(3, last_name="Owusu", email="ama3@example.com"), person(40)], "b",
                     existing="update")
    assert (update.total_updated, update.total_created) == (1, 1)
    assert _marks_found(engine, "mensah3") == set()  # the old name is no longer found
    assert _marks_found(engine, "owusu") == {"PM3 KOFI"} == _marks_found(engine, "ama3@")
    assert _marks_found(engine, "pm40") == {"PM40 KOFI"}
    undo(engine, update.run_id)  # the update's before-image back, its new customer gone
    assert _marks_found(engine, "mensah3") == {"PM3 KOFI"}
    assert _marks_found(engine, "owusu") == set() == _marks_found(engine, "pm40")
    undo(engine, first.run_id)
    assert _marks_found(engine, "kofi") == set()
    again = _import(engine, [person(3)], "c")  # the same customer imported again after the undo
    assert again.total_created == 1 and _marks_found(engine, "mensah3") == {"PM3 KOFI"}


def test_customer_detail_has_creating_run_and_each_update(database_url: str) -> None:
    engine = ready_engine(database_url)
    first = _import(engine, [person(1)], "a")
    second = _import(engine, [person(1, nickname="Nick")], "b", existing="update")
    detail = customer_detail(engine, 1)
    assert detail is not None
    assert detail["customer"]["nickname"] == "Nick"
    assert detail["created_by"]["id"] == first.run_id and detail["created_by"]["file_name"] == "a.xlsx"
    assert [(c["run_id"], c["source_row_number"], c["changes"]) for c in detail["changes"]] == [
        (second.run_id, 2, {"nickname": (None, "Nick")})]
    assert customer_detail(engine, 999) is None


def test_search_terms_read_phone_numbers_as_typed() -> None:
    assert search_terms("  Kofi   MENSAH ") == ["kofi mensah"]
    assert search_terms("024 000 0003") == ["024 000 0003", "0240000003", "240000003"]
    assert search_terms("+233 (24) 000-0003") == ["+233 (24) 000-0003", "+233240000003"]
    assert search_terms("0000003") == ["0000003"]  # a fragment keeps its zeros
    assert search_terms("   ") == []


def test_search_by_full_name_typed_phone_and_combined_filters(database_url: str) -> None:
    engine = ready_engine(database_url)
    first = _import(engine, [person(i, region="Volta" if i % 2 else "Ashanti") for i in range(25)], "a")
    second = _import(engine, [person(3, nickname="Three"), person(4, nickname="Four"), person(30, region="Volta")],
                     "b", existing="update")
    assert [r["shipping_mark"] for r in search_customers(engine, "kofi mensah12").rows] == ["PM12 KOFI"]
    assert [r["shipping_mark"] for r in search_customers(engine, "024 000 0007").rows] == ["PM7 KOFI"]
    assert [r["shipping_mark"] for r in search_customers(engine, "+233 24 000 0007").rows] == ["PM7 KOFI"]
    assert search_customers(engine, "KOFI", region="VOLTA").total == 13
    by_run = search_customers(engine, "pm3", region="VOLTA", run_id=second.run_id)
    assert [r["shipping_mark"] for r in by_run.rows] == ["PM3 KOFI", "PM30 KOFI"]
    assert search_customers(engine, "pm3", region="ASHANTI", run_id=second.run_id).total == 0
    assert search_customers(engine, "pm4", run_id=first.run_id).total == 1
    assert search_customers(engine, run_id=999).total == 0


def test_keyset_pages_walk_every_customer_once_and_counts_can_stop(database_url: str) -> None:
    engine = ready_engine(database_url)
    _import(engine, [person(i) for i in range(23)], "a")
    _import(engine, [person(5, nickname="Five")], "b", existing="update")
    seen, after = [], None
    while True:
        page = search_customers(engine, "kofi", limit=5, after_id=after, count_cap=10)
        assert (page.total, page.capped) == (10, True)  # 23 match; counting stopped past 10
        if not page.rows:
            break
        assert page.after_id == after and page.offset == 0
        seen += [r["id"] for r in page.rows]
        after = page.last_id
    assert seen == list(range(1, 24))
    assert search_customers(engine, "kofi", count_cap=23).capped is False
    assert search_customers(engine, "kofi", count_cap=23).total == 23
    exact = search_customers(engine, "kofi1", count_cap=11)  # kofi1, kofi10..kofi19 in the emails: 11, not more
    assert (exact.total, exact.capped) == (11, False)
    assert search_customers(engine, limit=5, after_id=20).rows[0]["id"] == 21
    assert search_customers(engine, limit=5).last_id == 5 and search_customers(engine, "zz").last_id is None


def test_export_stream_by_run_includes_updated_customers_in_id_order(database_url: str) -> None:
    engine = ready_engine(database_url)
    _import(engine, [person(i) for i in range(10)], "a")
    second = _import(engine, [person(20), person(2, nickname="Two"), person(7, nickname="Seven")], "b",
                     existing="update")
    assert [c["shipping_mark"] for c in iter_customers(engine, run_id=second.run_id, batch=1)] == [
        "PM2 KOFI", "PM7 KOFI", "PM20 KOFI"]


@pytest.mark.postgres
def test_search_uses_the_trigram_index_on_postgresql(pg_url: str) -> None:
    """The query's expression is the index's (migration 0006): with sequential scans off, the plan uses it."""
    engine = ready_engine(pg_url)
    _import(engine, [person(i) for i in range(5)], "a")
    query = sa.select(customers.c.id).where(search_text().like("%mensah3%"))
    with engine.connect() as conn:
        conn.execute(sa.text("SET enable_seqscan = off"))
        plan = "\n".join(conn.execute(sa.text("EXPLAIN " + str(query.compile(
            engine, compile_kwargs={"literal_binds": True})).replace("%", "%%"))).scalars())
    assert "ix_customers_search_trgm" in plan


@pytest.mark.postgres
def test_without_pg_trgm_the_schema_migrates_and_search_reads_the_table(pg_admin, pg_url: str) -> None:
    """A role that may not create extensions (nor own the database): the migration goes on without the
    trigram index, and searching still finds customers."""
    role = f"no_ext_{uuid.uuid4().hex[:8]}"
    database = pg_url.rsplit("/", 1)[1]
    with pg_admin.connect() as conn:
        conn.execute(sa.text(f'CREATE ROLE "{role}" LOGIN'))
    owner = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    try:
        with owner.connect() as conn:
            conn.execute(sa.text(f'REVOKE CREATE ON DATABASE "{database}" FROM PUBLIC'))
            conn.execute(sa.text(f'GRANT CONNECT ON DATABASE "{database}" TO "{role}"'))
            conn.execute(sa.text(f'GRANT USAGE, CREATE ON SCHEMA public TO "{role}"'))
        url = pg_url.replace("postgres@", f"{role}@", 1)
        engine = ready_engine(url)
        assert current_revision(engine) == HEAD_REVISION
        with engine.connect() as conn:
            indexes = set(conn.execute(sa.text("SELECT indexname FROM pg_indexes WHERE tablename = 'customers'"))
                          .scalars())
            assert conn.execute(sa.text("SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'")).scalar() == 0
        assert "ix_customers_search_trgm" not in indexes and "ix_customers_region" in indexes
        _import(engine, [person(i) for i in range(5)], "a")
        assert [r["shipping_mark"] for r in search_customers(engine, "mensah3").rows] == ["PM3 KOFI"]
        engine.dispose()
    finally:
        with pg_admin.connect() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = :r"),
                         {"r": role})
        with owner.connect() as conn:  # its tables and grants, so that the role can go
            conn.execute(sa.text(f'DROP OWNED BY "{role}"'))
        owner.dispose()
        with pg_admin.connect() as conn:
            conn.execute(sa.text(f'DROP ROLE "{role}"'))
