"""importer.database.lookup: which keys already belong to customers, by set queries."""

from __future__ import annotations

from importer.database.loader import run_import
from importer.database.lookup import conflicts, existing_customers, records
from importer.database.schema import reading
from importer.outcomes.row_errors import ErrorCode
from tests.support import SETTINGS, checked_of, person, ready_engine


def _existing(engine, upload, chunk: int = 5_000):
    """Every row of the upload whose keys already belong to a customer (a chunk of rows per query)."""
    found = {}
    normalised = upload.normalised
    with reading(engine) as conn:
        for start in range(0, len(normalised), chunk):
            found.update(conflicts(conn, records(normalised.iloc[start:start + chunk], ("shipping_mark", "phone", "email"))))
    return found


def test_conflicts_names_field_and_customer(database_url: str) -> None:
    engine = ready_engine(database_url)
    run_import(
        engine,
        checked_of([person(i) for i in range(3)]),
        file_name="a.csv",
        sha256="a" * 64,
        sheet=None,
        settings=SETTINGS,
    )
    upload = checked_of(
        [
            person(1),
            person(7, phone="0240000002", email=""),
            person(8),
            person(9, email="KOFI0@example.com", shipping_mark="zz top"),
        ]
    )
    found = _existing(engine, upload)
    assert set(found) == {2, 3, 5}
    assert [e.field for e in found[2]] == ["shipping_mark", "phone", "email"]
    assert found[3] == found[3][:1] and found[3][0].code is ErrorCode.ALREADY_EXISTS
    assert (
        found[3][0].message
        == "a customer with this phone (+233240000002) already exists: shipping mark PM2 KOFI"
    )
    assert found[5][0].field == "email"


def test_conflicts_many_keys_and_empty_db(database_url: str) -> None:
    engine = ready_engine(database_url)
    upload = checked_of([person(i) for i in range(6_000)])  # more than one key chunk
    assert _existing(engine, upload) == {}
    run_import(engine, upload, file_name="a.csv", sha256="a" * 64, sheet=None, settings=SETTINGS)
    assert len(_existing(engine, upload)) == 6_000


def test_existing_customers_rows(database_url: str) -> None:
    engine = ready_engine(database_url)
    run_import(
        engine,
        checked_of([person(1), person(2)]),
        file_name="a.csv",
        sha256="a" * 64,
        sheet=None,
        settings=SETTINGS,
    )
    rows = existing_customers(engine, "phone", ["+233240000002", "+233999", None])
    assert len(rows) == 1 and rows[0]["shipping_mark"] == "PM2 KOFI" and rows[0]["source_row_number"] == 3
    assert existing_customers(engine, "email", []) == []
