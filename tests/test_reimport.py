"""Re-imports (issue 9): matching by keys, skip and update, blanks, the audit trail, undo of updates,
resume and dry runs of updates, and the races found by probing (undo vs resume, excluded rows, dry-run schema)."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from importer.checks.validate import exclude
from importer.database import ledger as runs
from importer.database.ledger import count_customers, undo, undo_preview
from importer.database.loader import Progress, run_import
from importer.database.schema import (
    IMPORTS_LOCK_KEY,
    RUN_LOCK_CLASS,
    customer_changes,
    customers,
    import_runs,
    make_engine,
)
from importer.errors import RunError
from importer.outcomes.row_errors import ErrorCode
from tests.support import SETTINGS, checked_of, person, ready_engine


def _import(engine, rows_or_checked, **kw):
    kw.setdefault("file_name", "customers.xlsx")
    kw.setdefault("sha256", "e" * 64)
    kw.setdefault("sheet", "Customers")
    checked = checked_of(rows_or_checked) if isinstance(rows_or_checked, list) else rows_or_checked
    return run_import(engine, checked, settings=SETTINGS, **kw)


def _stored(engine) -> dict[str, tuple]:
    with engine.connect() as conn:
        return {r.shipping_mark: tuple(r) for r in conn.execute(sa.select(customers).order_by(customers.c.id))}


def _counts(result) -> tuple[int, int, int, int, int]:
    return (result.total_attempted, result.total_created, result.total_updated, result.total_unchanged,
            result.total_failed)


def test_new_unchanged_changed_and_conflict(database_url: str) -> None:
    engine = ready_engine(database_url)
    _import(engine, [person(i, region="Ashanti", nickname="Nick") for i in range(1, 6)], sha256="a" * 64)
    rows = [
        person(5, region="Ashanti", nickname="Nick"),  # unchanged
        person(2, region="Volta", nickname="Nick"),  # changed: region
        person(3, region="", nickname=""),  # blanks keep the stored values: unchanged
        person(4, phone=person(1)["phone"]),  # mark -> customer 4, phone -> customer 1: conflict
        person(9),  # new
    ]
    skip = _import(engine, rows, sha256="b" * 64)
    assert _counts(skip) == (5, 1, 0, 2, 2)
    by_row = {r.source_row_number: r.errors for r in skip.failed}
    assert by_row[3][0].code is ErrorCode.ALREADY_EXISTS and by_row[3][0].field == "region"
    assert by_row[3][0].message.startswith("region differs: stored ASHANTI, file VOLTA (customer #2")
    assert {e.code for e in by_row[5]} == {ErrorCode.CONFLICT}
    message = " ".join(e.message for e in by_row[5])
    assert "customer #4" in message and "customer #1" in message
    assert {e.field for e in by_row[5]} == {"shipping_mark", "phone", "email"}  # email: customer 4 too

    update = _import(engine, rows, sha256="c" * 64, existing="update")
    assert _counts(update) == (5, 0, 1, 3, 1)  # person 9 was created by the skip run
    assert [r.to_json() for r in update.updated] == [
        {"source_row_number": 3, "customer_id": 2, "changes": {"region": ["ASHANTI", "VOLTA"]}}]
    assert _stored(engine)["PM2 KOFI"][6] == "VOLTA"
    with engine.connect() as conn:
        change = conn.execute(sa.select(customer_changes)).one()
    assert (change.customer_id, change.run_id, change.source_row_number) == (2, update.run_id, 3)
    assert change.before["region"] == "ASHANTI" and change.after["region"] == "VOLTA"

    cleared = _import(engine, [person(3, region="", nickname="")], sha256="d" * 64, existing="update",
                      blank="clear")
    assert [r.to_json()["changes"] for r in cleared.updated] == [
        {"region": ["ASHANTI", "GREATER_ACCRA"], "nickname": ["Nick", None]}]


def test_two_rows_matching_one_customer_do_not_both_update_it(database_url: str) -> None:
    engine = ready_engine(database_url)
    _import(engine, [person(1)], sha256="a" * 64)
    rows = [person(1, first_name="Kwame", email="", phone="0201111111"),
            person(1, shipping_mark="other mark", email=person(1)["email"], phone="0202222222")]
    result = _import(engine, rows, existing="update")
    assert _counts(result) == (2, 0, 1, 0, 1)
    (failed,) = list(result.failed)
    assert failed.errors[0].code is ErrorCode.CONFLICT and failed.errors[0].other_row is None
    assert "which row 2 of this file already matches" in failed.errors[0].message


def test_dry_run_of_updates_matches_the_real_run_and_changes_nothing(database_url: str) -> None:
    engine = ready_engine(database_url)
    _import(engine, [person(i) for i in range(20)], sha256="a" * 64)
    before = _stored(engine)
    rows = [person(i, last_name=f"New{i}") if i % 3 == 0 else person(i) for i in range(25)]
    dry = _import(engine, rows, existing="update", dry_run=True, batch_size=4)
    assert _stored(engine) == before
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(customer_changes)).scalar_one() == 0
    real = _import(engine, rows, existing="update", batch_size=4)
    assert _counts(dry) == _counts(real) == (25, 5, 7, 13, 0)
    assert [r.to_json() for r in dry.updated] == [r.to_json() for r in real.updated]


def test_resumed_update_run_neither_reapplies_nor_recounts(database_url: str) -> None:
    engine = ready_engine(database_url)
    _import(engine, [person(i) for i in range(30)], sha256="a" * 64)
    rows = [person(i, nickname=f"N{i}") if i % 2 else person(i) for i in range(30)] + [person(i) for i in range(30, 40)]
    checked = checked_of(rows)

    def die_after_two(p: Progress) -> None:
        if p.rows_done >= 20:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _import(engine, checked, existing="update", batch_size=10, progress=die_after_two)
    result = _import(engine, checked, batch_size=10)  # no flag: the resume keeps the run's --existing update
    assert result.resumed
    assert _counts(result) == (40, 10, 15, 15, 0)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(customer_changes)).scalar_one() == 15
        run = conn.execute(sa.select(import_runs).where(import_runs.c.id == result.run_id)).one()
    assert (run.total_created, run.total_updated, run.total_unchanged, run.status) == (10, 15, 15, "completed")
    assert [r.source_row_number for r in result.updated] == [i + 2 for i in range(1, 30, 2)]


def test_resume_after_excluding_rows_already_imported_keeps_the_invariant(database_url: str) -> None:
    """The interrupted run settled rows 2-21; the user excluded rows 2-6 before resuming: those still count."""
    engine = ready_engine(database_url)
    rows = [person(i) for i in range(49)] + [person(99, phone="5")]
    checked = checked_of(rows)

    def die_after_two(p: Progress) -> None:
        if p.rows_done >= 20:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _import(engine, checked, batch_size=10, progress=die_after_two)
    fewer = exclude(checked, [2, 3, 4, 5, 6])
    assert len(fewer.normalised) == 45
    result = _import(engine, fewer, batch_size=10)
    assert result.resumed
    assert (result.total_attempted, result.total_created, result.total_failed) == (50, 49, 1)
    assert count_customers(engine) == 49


def test_dry_run_on_an_empty_database_leaves_it_empty(database_url: str) -> None:
    engine = make_engine(database_url)  # no schema
    result = _import(engine, [person(1), person(2), person(3, phone="12")], dry_run=True)
    assert _counts(result) == (3, 2, 0, 0, 1)
    assert sa.inspect(make_engine(database_url)).get_table_names() == []


def test_undo_refuses_while_a_resume_of_that_run_is_running(database_url: str, monkeypatch) -> None:
    engine = ready_engine(database_url)
    monkeypatch.setattr(runs, "UNDO_WAIT_SECONDS", 1)
    rows = [person(i) for i in range(60)]
    checked = checked_of(rows)

    def die_after_one(p: Progress) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _import(engine, checked, batch_size=10, progress=die_after_one)
    run_id = runs.list_runs(engine)[0].id
    started = threading.Event()
    outcome: dict[str, object] = {}

    def slow(p: Progress) -> None:
        started.set()
        time.sleep(0.4)

    def resume() -> None:
        try:
            outcome["result"] = _import(make_engine(database_url), checked, batch_size=10, progress=slow)
        except BaseException as exc:  # noqa: BLE001 - reported below
            outcome["error"] = exc

    thread = threading.Thread(target=resume)
    thread.start()
    assert started.wait(30)
    with pytest.raises(RunError, match="running"):
        undo(engine, run_id)
    thread.join(60)
    assert "error" not in outcome, outcome.get("error")
    result = outcome["result"]
    assert result.resumed and result.run_id == run_id and _counts(result) == (60, 60, 0, 0, 0)
    assert runs.get_run(engine, run_id).status == "completed"
    assert undo(engine, run_id).deleted == 60  # once the resume is done, undo works
    assert count_customers(engine) == 0


def test_import_waits_while_undo_holds_the_lock_then_starts_a_new_run(pg_url: str) -> None:
    """PostgreSQL: an undo in progress (the imports lock held exclusively) makes an import wait; the
    interrupted run it would have resumed is undone by then, so the import is a fresh run."""
    engine = ready_engine(pg_url)
    checked = checked_of([person(i) for i in range(30)])

    def die_after_one(p: Progress) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _import(engine, checked, batch_size=10, progress=die_after_one)
    run_id = runs.list_runs(engine)[0].id
    holder = make_engine(pg_url).connect()
    holder.execute(sa.select(sa.func.pg_advisory_lock(RUN_LOCK_CLASS, IMPORTS_LOCK_KEY)))
    outcome: dict[str, object] = {}
    thread = threading.Thread(target=lambda: outcome.setdefault("r", _import(make_engine(pg_url), checked)))
    thread.start()
    # The import's session is seen queued on the imports lock (PostgreSQL's pg_locks), then not done.
    waiting = sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                      " AND classid = :c AND objid = :k AND objsubid = 2")
    deadline = time.monotonic() + 30
    while holder.execute(waiting, {"c": RUN_LOCK_CLASS, "k": IMPORTS_LOCK_KEY}).scalar() == 0:
        assert time.monotonic() < deadline, "the import never waited for the imports lock"
        assert thread.is_alive(), f"the import ended without waiting for the lock: {outcome}"
        time.sleep(0.05)
    assert "r" not in outcome  # waiting for the lock
    with engine.begin() as conn:  # what undo does under that lock
        conn.execute(sa.delete(customers).where(customers.c.import_run_id == run_id))
        conn.execute(sa.update(import_runs).where(import_runs.c.id == run_id).values(status="undone"))
    holder.execute(sa.select(sa.func.pg_advisory_unlock(RUN_LOCK_CLASS, IMPORTS_LOCK_KEY)))
    holder.commit()
    holder.close()
    thread.join(60)
    result = outcome["r"]
    assert not result.resumed and result.run_id != run_id and _counts(result) == (30, 30, 0, 0, 0)


def test_undo_restores_updates_and_names_later_runs(database_url: str) -> None:
    engine = ready_engine(database_url)
    first = _import(engine, [person(i) for i in range(5)], sha256="a" * 64)
    second = _import(engine, [person(1, nickname="Second")], sha256="b" * 64, existing="update")
    third = _import(engine, [person(1, nickname="Third")], sha256="c" * 64, existing="update")
    assert _stored(engine)["PM1 KOFI"][8] == "Third"
    preview = undo_preview(engine, second.run_id)
    assert (preview.to_delete, preview.to_restore, preview.blocking_runs) == (0, 1, (third.run_id,))
    with pytest.raises(RunError, match=f"undo run\\(s\\) {third.run_id} first"):
        undo(engine, second.run_id)
    with pytest.raises(RunError, match=f"later run\\(s\\) {second.run_id}, {third.run_id}"):
        undo(engine, first.run_id)
    assert (undo(engine, third.run_id).restored, _stored(engine)["PM1 KOFI"][8]) == (1, "Second")
    assert (undo(engine, second.run_id).restored, _stored(engine)["PM1 KOFI"][8]) == (1, None)
    assert undo(engine, first.run_id).deleted == 5
