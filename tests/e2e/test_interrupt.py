"""A dashboard import cut off mid-way by killing the server (SIGKILL), then resumed by uploading the file again.

The import runs in a worker thread of the server (importer.server.jobs): the Import page's button starts it and
the sidebar shows its progress. The server runs with a small BATCH_SIZE so a 30,000-row import commits
many chunks; the test polls the database's import_runs.rows_done and acts once some rows are committed
but not all. tests/e2e/test_background.py has the rest: resuming from History without a file, a closed
tab, Cancel, and two servers on one PostgreSQL database. The helpers here are shared with it.
"""

from __future__ import annotations

import re
import time
from functools import lru_cache
from pathlib import Path

import pytest
from playwright.sync_api import expect

from bench.workbook import customer_workbook
from importer.api import read_upload
from importer.settings import Settings
from tests.e2e.conftest import goto_page, new_page, upload_file, wait_idle
from tests.e2e.pg_servers import kill_group, query

pytestmark = pytest.mark.e2e

ROWS = 30_000
BATCH = 50  # 600 chunks: a wide window between the first commit and the last, on a busy machine too
FILE = "big-customers.xlsx"


@lru_cache(maxsize=1)
def big_file() -> tuple[bytes, int]:
    """The workbook and how many of its rows are valid (as the engine itself reads them)."""
    data = customer_workbook(ROWS, seed=7)
    checked = read_upload(data, FILE, Settings()).checked
    return data, len(checked.valid_index())


def upload_and_review(page, data: bytes, rows: int = ROWS, name: str = FILE) -> None:
    """Upload -> Continue to review (the upload becomes a saved workspace: the address gets ?ws=<id>)."""
    upload_file(page, name, data)
    page.get_by_role("button", name=f"Continue to review {rows:,} rows").click()
    expect(page.get_by_role("heading", name="Review and fix")).to_be_visible()
    wait_idle(page)


def press_import(page, name: str = FILE) -> None:
    """On Review: go to Import, dry run, press Import; returns once the page says the import runs on the
    server (the worker has the job; it may still wait for its first batch)."""
    goto_page(page, "3. Import")
    page.get_by_role("button", name="Dry run (saves nothing)").click()
    button = page.get_by_role("button", name=re.compile(r"^Import [\d,]+ customers$"))
    expect(button).to_be_visible()
    button.click()
    expect(page.get_by_text(f"Importing {name}")).to_be_visible()
    expect(page.get_by_text("on the server: you can go to another page or close this tab")).to_be_visible()


def start_import(page, data: bytes) -> None:
    """Upload -> review -> import page -> dry run -> press Import (does not wait for the end)."""
    upload_and_review(page, data)
    press_import(page)


def run_state(db: Path | str, run_id: int = 1) -> tuple[int, str] | None:
    """(rows_done, status) of a run, or None before it exists."""
    try:
        rows = query(db, "select id, rows_done, status from import_runs")
    except Exception:  # noqa: BLE001 - the table may not exist yet, or the file be locked a moment
        return None
    return next(((done, status) for found, done, status in rows if found == run_id), None)


def wait_for_rows(db: Path | str, timeout: float = 180, more_than: int = 0, run_id: int = 1) -> tuple[int, str]:
    """Poll until the run has committed more than `more_than` rows; returns (rows_done, status)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = run_state(db, run_id)
        if state and state[0] > more_than:
            return state
        time.sleep(0.02)
    raise AssertionError(f"run {run_id} did not commit more than {more_than:,} rows in {timeout:.0f} s: "
                         f"{run_state(db, run_id)}")


def wait_for_status(db: Path | str, wanted: str, timeout: float = 300, run_id: int = 1) -> tuple[int, str]:
    """Poll until the run's status is `wanted`; returns (rows_done, status)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = run_state(db, run_id)
        if state and state[1] == wanted:
            return state
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} was not {wanted} after {timeout:.0f} s: {run_state(db, run_id)}")


def wait_for_run(db: Path | str, timeout: float = 180) -> int:
    """Poll until the ledger has a run; its id (on PostgreSQL a dry run before it may have used id 1)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = query(db, "select id from import_runs")
        except Exception:  # noqa: BLE001 - the table may not exist yet, or the file be locked a moment
            found = []
        if found:
            return int(found[0][0])
        time.sleep(0.02)
    raise AssertionError(f"no run started in {timeout:.0f} s")


def assert_exactly_valid_rows_once(db: Path | str, valid: int, total: int = ROWS, run_id: int = 1) -> None:
    assert query(db, "select count(*) from customers") == [(valid,)]
    assert query(db, "select count(distinct source_row_number), count(distinct phone), "
                     "count(distinct shipping_mark) from customers") == [(valid, valid, valid)]
    assert query(db, "select distinct import_run_id from customers") == [(run_id,)]
    assert query(db, "select id, status, total_attempted, total_created, total_failed "
                     "from import_runs") == [(run_id, "completed", total, valid, total - valid)]


def test_server_killed_mid_import_resumes_by_uploading_again(browser, start_server, db_path) -> None:
    """The worker thread dies with its server: the run stays 'running' in the ledger with a dead owner, so
    a new server shows it interrupted; uploading the same file again (a new workspace) and importing it
    resumes run #1, and no row is created twice."""
    data, valid = big_file()
    server = start_server(env={"BATCH_SIZE": str(BATCH)})
    page = new_page(browser, server)
    try:
        start_import(page, data)
        expect(page.get_by_test_id("stSidebar").get_by_text(re.compile(rf"^Run #1 · {FILE} · "))).to_be_visible()
        wait_for_rows(db_path)
        kill_group(server)
    finally:
        page.context.close()
    rows_done, status = run_state(db_path)
    assert status == "running" and 0 < rows_done < ROWS, (rows_done, status)
    assert query(db_path, "select count(*) from customers")[0][0] <= rows_done

    restarted = start_server(env={"BATCH_SIZE": str(BATCH)})
    page = new_page(browser, restarted)
    try:
        goto_page(page, "History")
        expect(page.get_by_text("Status: Interrupted (can resume).")).to_be_visible()
        expect(page.get_by_role("heading", name="Resume run #1")).to_be_visible()
        expect(page.get_by_text(f"It stopped after {rows_done:,} rows.")).to_be_visible()
        # The analyst uploads the file again instead (History could resume it without): the import resumes run #1.
        goto_page(page, "1. Upload")
        upload_and_review(page, data)
        goto_page(page, "3. Import")
        expect(page.get_by_text(f"Run #1 of this file was cut off after {rows_done:,} rows. Importing resumes it")
               ).to_be_visible()
        press_import(page)
        wait_for_status(db_path, "completed")
        expect(page.get_by_text(re.compile(r"^Run #1: .*\(resumed run\)\.$"))).to_be_visible()
    finally:
        page.context.close()
    assert_exactly_valid_rows_once(db_path, valid)
    # Both workspaces (the killed import's, and the new upload's that resumed it) are done with.
    assert query(db_path, "select id from workspaces where discarded_at is null") == []
