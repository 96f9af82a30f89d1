"""importer.database.ledger: history, failures of a run, rebuilt summaries, undo, resumable runs."""

from __future__ import annotations

import socket

import pytest
import sqlalchemy as sa

from importer.database.ledger import (
    count_customers,
    customers_in_run,
    find_resumable,
    get_run,
    list_runs,
    run_failures,
    undo_run,
)
from importer.database.loader import run_import
from importer.database.schema import import_runs
from importer.errors import RunError
from tests.support import SETTINGS, checked_of, person, ready_engine


def _import(engine, rows, sha="d" * 64, **kw):
    return run_import(
        engine,
        checked_of(rows),
        file_name="c.xlsx",
        sha256=sha,
        sheet="S",
        settings=SETTINGS,
        user_name="ama",
        run_settings={"mapping": {"Mark": "shipping_mark"}},
        **kw,
    )


def test_history_newest_first_with_counts(database_url: str) -> None:
    engine = ready_engine(database_url)
    first = _import(engine, [person(1), person(2, phone="99")])
    second = _import(engine, [person(3)], sha="e" * 64)
    runs = list_runs(engine)
    assert [r.id for r in runs] == [second.run_id, first.run_id]
    rec = get_run(engine, first.run_id)
    assert (rec.status, rec.total_attempted, rec.total_created, rec.total_failed, rec.rows_done) == (
        "completed",
        2,
        1,
        1,
        2,
    )
    assert rec.user_name == "ama" and rec.settings["mapping"] == {"Mark": "shipping_mark"}
    assert rec.duration_seconds is not None and rec.duration_seconds >= 0
    assert rec.to_json()["started_at"].startswith(str(rec.started_at.year))
    assert list_runs(engine, limit=1)[0].id == second.run_id
    with pytest.raises(RunError):
        get_run(engine, 999)


def test_failures_stream_from_the_ledger(database_url: str) -> None:
    engine = ready_engine(database_url)
    result = _import(engine, [person(1), person(2, phone="99"), person(3, last_name="")])
    failures = run_failures(engine, result.run_id)
    assert len(failures) == 2
    assert list(failures) == list(result.failed)
    assert [f.source_row_number for f in failures] == [3, 4]
    # Each iteration reads the ledger afresh.
    assert [r.to_json() for r in failures] == result.to_json()["failed_customers"]
    assert result.failure_codes == {"invalid_phone": 1, "required": 1}


def test_undo_deletes_only_that_runs_customers(database_url: str) -> None:
    engine = ready_engine(database_url)
    keep = _import(engine, [person(1)])
    gone = _import(engine, [person(2), person(3)], sha="9" * 64)
    assert customers_in_run(engine, gone.run_id) == 2
    assert undo_run(engine, gone.run_id) == 2
    assert count_customers(engine) == 1 and customers_in_run(engine, keep.run_id) == 1
    assert get_run(engine, gone.run_id).status == "undone"
    assert get_run(engine, gone.run_id).total_created == 2  # the ledger still tells
    with pytest.raises(RunError, match="already undone"):
        undo_run(engine, gone.run_id)
    with pytest.raises(RunError):
        undo_run(engine, 12345)
    with pytest.raises(RunError, match="there is no import run"):
        undo_run(engine, 99999999999999999999)
    again = _import(engine, [person(2), person(3)], sha="9" * 64)  # undone rows can be imported again
    assert again.total_created == 2


def test_running_run_with_live_owner_cannot_be_undone_or_resumed(sqlite_url: str) -> None:
    engine = ready_engine(sqlite_url)
    result = _import(engine, [person(1)])
    with engine.begin() as conn:  # pid 1 (init) is alive on this host
        conn.execute(sa.update(import_runs).values(status="running", owner=f"{socket.gethostname()}:1"))
    assert get_run(engine, result.run_id).status == "running"
    assert find_resumable(engine, "d" * 64, "S") is None
    with pytest.raises(RunError, match="still running"):
        undo_run(engine, result.run_id)
    with engine.begin() as conn:
        conn.execute(sa.update(import_runs).values(owner=f"{socket.gethostname()}:999999"))
    assert get_run(engine, result.run_id).status == "interrupted"
    assert find_resumable(engine, "d" * 64, "S").id == result.run_id
    assert find_resumable(engine, "d" * 64, "other sheet") is None
    assert undo_run(engine, result.run_id) == 1


def test_other_host_is_judged_by_heartbeat(sqlite_url: str) -> None:
    engine = ready_engine(sqlite_url)
    result = _import(engine, [person(1)])
    with engine.begin() as conn:
        conn.execute(
            sa.update(import_runs).values(
                status="running", owner="elsewhere:42", heartbeat_at=sa.func.current_timestamp()
            )
        )
    assert get_run(engine, result.run_id).status == "running"
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE import_runs SET heartbeat_at = datetime('now', '-10 minutes')"))
    assert get_run(engine, result.run_id).status == "interrupted"
