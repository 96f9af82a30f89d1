"""importer.customers: the dashboard's read-only engine calls (classify an upload, search, detail, export)."""

from __future__ import annotations

import sqlalchemy as sa

from importer.customers import classify_upload, customer_detail, iter_customers, search_customers
from importer.db import make_engine
from importer.load import run_import
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
