"""Review's changes to existing customers (issue 9): the classification Review shows agrees with what the
import does, and a change the analyst rejects fails as already_exists while the accepted ones update."""

from __future__ import annotations

import sqlalchemy as sa

from importer.database.customers import classify_upload
from importer.database.loader import run_import
from importer.database.schema import customers
from importer.outcomes.row_errors import ErrorCode
from tests.support import SETTINGS, checked_of, person, ready_engine


def _import(engine, rows, **kw):
    return run_import(engine, checked_of(rows), file_name="customers.xlsx", sha256=kw.pop("sha256"),
                      sheet="Customers", settings=SETTINGS, **kw)


def _regions(engine) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(customers.c.shipping_mark, customers.c.region)).all())


def test_classification_carries_conflict_and_skip_messages(database_url: str) -> None:
    engine = ready_engine(database_url)
    _import(engine, [person(i, region="Ashanti") for i in range(1, 5)], sha256="a" * 64)
    checked = checked_of([person(1, region="Ashanti"), person(2, region="Volta"),  # rows 2 and 3
                          person(3, region="Ashanti", phone=person(4)["phone"]), person(7)])  # rows 4 and 5
    found = classify_upload(engine, checked)
    assert found.counts() == {"new": 1, "unchanged": 1, "changed": 1, "conflict": 1}
    assert [e.code for e in found.conflicts[4]] and all(e.code is ErrorCode.CONFLICT for e in found.conflicts[4])
    assert {"customer #3", "customer #4"} <= {w for e in found.conflicts[4] for w in
                                              (f"customer #{n}" for n in (3, 4)) if w in e.message}
    (skip,) = found.skipped[3]
    assert skip.code is ErrorCode.ALREADY_EXISTS and skip.field == "region"
    assert "stored ASHANTI" in skip.message and "file VOLTA" in skip.message
    assert set(found.skipped) == {3} and set(found.conflicts) == {4}


def test_rejected_changes_fail_and_accepted_ones_update(database_url: str) -> None:
    engine = ready_engine(database_url)
    _import(engine, [person(i, region="Ashanti") for i in range(1, 5)], sha256="a" * 64)
    rows = [person(1, region="Volta"), person(2, region="Volta"), person(3, region="Volta"), person(4, region="Ashanti")]
    # rows 2-5 of the file; the analyst rejects row 4's change (person 3)
    dry = _import(engine, rows, sha256="b" * 64, existing="update", rejected=[4], dry_run=True)
    real = _import(engine, rows, sha256="b" * 64, existing="update", rejected=[4])
    for result in (dry, real):
        assert (result.total_updated, result.total_unchanged, result.total_failed) == (2, 1, 1)
        (row,) = list(result.failed)
        assert row.source_row_number == 4 and row.errors[0].code is ErrorCode.ALREADY_EXISTS
    stored = _regions(engine)
    assert [stored[person(i)["shipping_mark"].upper()] for i in (1, 2, 3, 4)] == [
        "VOLTA", "VOLTA", "ASHANTI", "ASHANTI"]


def test_undo_refuses_to_restore_a_key_another_customer_took(database_url: str) -> None:
    import pytest

    from importer.database.ledger import undo
    from importer.errors import RunError

    engine = ready_engine(database_url)
    _import(engine, [person(1)], sha256="a" * 64)  # customer #1 with person(1)'s phone
    moved = _import(engine, [person(1, phone="0209990001")], sha256="b" * 64, existing="update")
    assert moved.total_updated == 1
    taken = _import(engine, [person(2, phone=person(1)["phone"])], sha256="c" * 64)  # the old phone, reused
    assert taken.total_created == 1
    with pytest.raises(RunError, match=r"customer #1's phone would go back to \+233\d+, which customer #\d+ now "
                                       rf"has, created by run {taken.run_id}"):
        undo(engine, moved.run_id)
    with engine.connect() as conn:  # nothing was undone
        phones = dict(conn.execute(sa.select(customers.c.id, customers.c.phone)).all())
    assert phones[1] == "+233209990001" and len(phones) == 2
    undo(engine, taken.run_id)  # once the later customer is gone, the restore goes through
    assert undo(engine, moved.run_id).restored == 1
