"""A dashboard import cut off mid-way: the server killed (SIGKILL) and restarted, or the browser tab closed.

The server runs with a small BATCH_SIZE so a 30,000-row import commits many chunks; the test polls the
SQLite file's import_runs.rows_done and acts once some rows are committed but not all.
"""

from __future__ import annotations

import time
from functools import lru_cache

import pytest
from playwright.sync_api import expect

from bench.workbook import customer_workbook
from importer.pipeline import read_upload
from importer.settings import Settings
from tests.e2e.conftest import goto_page, new_page, sqlite_rows, upload_file, wait_idle

pytestmark = pytest.mark.e2e

ROWS = 30_000
BATCH = 200  # 150 chunks: a wide window between the first commit and the last
FILE = "big-customers.xlsx"


@lru_cache(maxsize=1)
def big_file() -> tuple[bytes, int]:
    """The workbook and how many of its rows are valid (as the engine itself reads them)."""
    data = customer_workbook(ROWS, seed=7)
    checked = read_upload(data, FILE, Settings()).checked
    return data, len(checked.valid_index())


def start_import(page, data: bytes, valid: int) -> None:
    """Upload -> review -> import page -> dry run -> press Import (does not wait for the end)."""
    upload_file(page, FILE, data)
    page.get_by_role("button", name=f"Continue to review {ROWS:,} rows").click()
    expect(page.get_by_role("heading", name="Review and fix")).to_be_visible()
    wait_idle(page)
    goto_page(page, "3. Import")
    page.get_by_role("button", name="Dry run (saves nothing)").click()
    button = page.get_by_role("button", name=f"Import {valid:,} customers")
    expect(button).to_be_visible()
    button.click()


def run_state(db_path) -> tuple[int, str] | None:
    """(rows_done, status) of run 1, or None before it exists."""
    try:
        rows = sqlite_rows(db_path, "select rows_done, status from import_runs where id = 1")
    except Exception:  # noqa: BLE001 - the table may not exist yet, or the file be locked a moment
        return None
    return rows[0] if rows else None


def wait_for_rows(db_path, timeout: float = 120) -> tuple[int, str]:
    """Poll until run 1 has committed some rows; returns (rows_done, status)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = run_state(db_path)
        if state and state[0] > 0:
            return state
        time.sleep(0.02)
    raise AssertionError(f"the import committed no rows in {timeout:.0f} s")


def assert_exactly_valid_rows_once(db_path, valid: int) -> None:
    assert sqlite_rows(db_path, "select count(*) from customers") == [(valid,)]
    assert sqlite_rows(db_path, "select count(distinct source_row_number), count(distinct phone), "
                                "count(distinct shipping_mark) from customers") == [(valid, valid, valid)]
    assert sqlite_rows(db_path, "select distinct import_run_id from customers") == [(1,)]
    assert sqlite_rows(db_path, "select id, status, total_attempted, total_created, total_failed "
                                "from import_runs") == [(1, "completed", ROWS, valid, ROWS - valid)]


def test_server_killed_mid_import_resumes_from_history(browser, start_server, db_path) -> None:
    data, valid = big_file()
    server = start_server(env={"BATCH_SIZE": str(BATCH)})
    page = new_page(browser, server)
    try:
        start_import(page, data, valid)
        wait_for_rows(db_path)
        server.kill()
    finally:
        page.context.close()
    rows_done, status = run_state(db_path)
    assert status == "running" and 0 < rows_done < ROWS, (rows_done, status)
    assert sqlite_rows(db_path, "select count(*) from customers")[0][0] <= rows_done

    restarted = start_server(env={"BATCH_SIZE": str(BATCH)})
    page = new_page(browser, restarted)
    try:
        goto_page(page, "History")
        expect(page.get_by_text("Status: Interrupted (can resume).")).to_be_visible()
        expect(page.get_by_role("heading", name="Resume run #1")).to_be_visible()
        expect(page.get_by_text(f"It stopped after {rows_done:,} rows.")).to_be_visible()
        upload_file(page, FILE, data, label="The same file as run #1")
        page.get_by_role("button", name="Resume run #1").click()
        expect(page.get_by_text("Run #1 resumed:")).to_be_visible()
        expect(page.get_by_text("Status: Completed.")).to_be_visible()
    finally:
        page.context.close()
    assert_exactly_valid_rows_once(db_path, valid)


def test_tab_closed_mid_import_ends_interrupted_and_resumes(browser, start_server, db_path) -> None:
    """What happens: when the browser goes away, Streamlit (1.67) asks the session's script to stop
    (WebsocketSessionManager.disconnect_session -> request_script_stop). The import stops at its next
    progress update, between two committed chunks; run_import marks the run interrupted at once. A new
    tab finds it in History as "Interrupted (can resume)" and resumes it to the same end state."""
    data, valid = big_file()
    server = start_server(env={"BATCH_SIZE": str(BATCH)})
    page = new_page(browser, server)
    try:
        start_import(page, data, valid)
        wait_for_rows(db_path)
    finally:
        page.close()
        page.context.close()

    deadline = time.monotonic() + 60
    while (state := run_state(db_path)) and state[1] == "running" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert state is not None and state[1] == "interrupted" and 0 < state[0] < ROWS, state
    stopped_at = state[0]
    assert sqlite_rows(db_path, "select count(*) from customers")[0][0] <= stopped_at
    time.sleep(1)
    assert run_state(db_path) == state, "the run went on after it was marked interrupted"

    page = new_page(browser, server)
    try:
        goto_page(page, "History")
        expect(page.get_by_text("Status: Interrupted (can resume).")).to_be_visible()
        expect(page.get_by_text(f"It stopped after {stopped_at:,} rows.")).to_be_visible()
        upload_file(page, FILE, data, label="The same file as run #1")
        page.get_by_role("button", name="Resume run #1").click()
        expect(page.get_by_text("Run #1 resumed:")).to_be_visible()
        expect(page.get_by_text(f"Run #1: {ROWS:,} rows, {valid:,} created, {ROWS - valid:,} failed. "
                                "Status: Completed.")).to_be_visible()
    finally:
        page.context.close()
    assert_exactly_valid_rows_once(db_path, valid)
