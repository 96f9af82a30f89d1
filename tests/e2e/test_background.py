"""Imports in the server's worker thread, in the real dashboard: nothing the analyst did is lost.

- a server killed mid-import: History resumes the run from its saved workspace, no file to upload, the
  Review fixes kept;
- a tab closed right after Import: the import goes on to the end;
- Cancel in the sidebar: the run stops interrupted, and History resumes it to the end;
- two servers on one PostgreSQL database: a workspace started on one is continued and imported on the
  other (the address's ?ws=<id>), and the first server's sidebar shows the other's running import.

Each server imports with a small BATCH_SIZE, so a 30,000-row import commits 150-300 chunks; the tests poll
import_runs.rows_done and status in the database rather than waiting fixed times.
"""

from __future__ import annotations

import re
import time
from functools import lru_cache
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import expect

from bench.workbook import customer_workbook
from importer.api import read_upload
from importer.review.fixes import apply_fix, fill_region_fix
from importer.settings import Settings
from tests.e2e.conftest import goto_page, new_page, save_screenshot, wait_idle
from tests.e2e.pg_servers import kill_group, pg_env, query, sign_in
from tests.e2e.test_flow import choose
from tests.e2e.test_interrupt import (
    BATCH,
    FILE,
    ROWS,
    assert_exactly_valid_rows_once,
    big_file,
    press_import,
    run_state,
    upload_and_review,
    wait_for_rows,
    wait_for_run,
    wait_for_status,
)

pytestmark = pytest.mark.e2e

REGION, REGION_NAME = "ASHANTI", "Ashanti"
PG_BATCH = 100  # 300 chunks: the other server's sidebar has time to show the run
OTHER, OTHER_ROWS = "other-customers.xlsx", 500  # a second file, open while run #1 resumes
SLOW_BATCH = 25  # 1,200 chunks: time to look at the running import (a screenshot, Cancel, a closed session)


@lru_cache(maxsize=1)
def region_fixed() -> tuple[frozenset[int], dict[int, str]]:
    """What the engine makes of big_file() after "Fill blank regions with Ashanti" on every row: the rows
    whose region was blank, and {row: region code} of every valid row (what the database must hold)."""
    data, _ = big_file()
    checked = read_upload(data, FILE, Settings()).checked
    regions = checked.original["region"]
    blank = frozenset(int(row) for row in regions.index[regions.str.strip() == ""])
    fixed, changed = apply_fix(checked, fill_region_fix(REGION), Settings(), only_failing=False)
    assert changed == len(blank) > ROWS // 10
    valid = fixed.valid_index()
    return blank, {int(row): str(code) for row, code in fixed.normalised.loc[valid, "region"].items()}


def sidebar_run(page, run_id: int = 1, total: int = ROWS):
    """The sidebar's progress line of a running run: `Run #1 · file · 1,200 of 30,000 rows · ...`."""
    return page.get_by_test_id("stSidebar").get_by_text(
        re.compile(rf"^Run #{run_id} · {re.escape(FILE)} · [\d,]+ of {total:,} rows · "))


def fill_blank_regions(page) -> None:
    """On Review: Bulk fixes -> untick "Only change failing rows" (a blank region is valid: it would become
    Greater Accra) -> region Ashanti -> Apply on "Fill blank regions with Ashanti"."""
    blank, _ = region_fixed()
    only_failing = page.get_by_role("checkbox", name="Only change failing rows")
    page.get_by_test_id("stCheckbox").filter(has_text="Only change failing rows").locator("label").click()
    expect(only_failing).not_to_be_checked()
    wait_idle(page)
    # test_flow's choose opens the list again when a rerun closed it (under load, the list once never showed)
    choose(page, "Region for rows with a blank region", REGION_NAME, exact=True)
    apply = page.locator(".st-key-review_fix_region").get_by_role("button", name="Apply")
    expect(apply).to_be_enabled()
    apply.click()
    expect(page.get_by_text(f"Fill blank regions with {REGION_NAME}: changed {len(blank):,} row(s)")).to_be_visible()
    expect(page.get_by_text(f"Filled {len(blank):,} blank regions with {REGION_NAME}")).to_be_visible()
    wait_idle(page)


def resume_from_history(page, rows_done: int) -> None:
    """History of an interrupted workspace run: Resume, with no file to upload."""
    goto_page(page, "History")
    expect(page.get_by_text("Status: Interrupted (can resume).")).to_be_visible()
    expect(page.get_by_role("heading", name="Resume run #1")).to_be_visible()
    expect(page.get_by_text(f"It stopped after {rows_done:,} rows.")).to_be_visible()
    expect(page.get_by_text("there is nothing to upload")).to_be_visible()
    assert page.get_by_test_id("stFileUploader").count() == 0
    page.get_by_role("button", name="Resume run #1").click()
    expect(page.get_by_text("Run #1 resumes on the server with your fixes")).to_be_visible()


def assert_regions(db, total: int = ROWS, run_id: int = 1) -> None:
    """Every valid row once, with its region as the engine makes it after the fix: Ashanti where blank."""
    blank, expected = region_fixed()
    assert_exactly_valid_rows_once(db, len(expected), total, run_id)
    stored = dict(query(db, "select source_row_number, region from customers"))
    assert {row: stored[row] for row in blank if row in stored} == {row: REGION for row in blank if row in expected}
    assert stored == expected


def assert_workspace_done(db, timeout: float = 30) -> None:
    """A completed import's workspace is done with: off the analyst's "Continue where you left off" list
    (whether or not a tab was there to see the import end). The worker discards it just after the run is
    marked completed, so a poll that saw "completed" may come first: wait for it, a bounded time."""
    deadline = time.monotonic() + timeout
    while (left := query(db, "select id from workspaces where discarded_at is null")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left == [], (left, query(db, "select workspace_id, seq, undone from workspace_operations"))


def test_killed_server_resumes_from_history_without_upload_with_fixes(browser, start_server, db_path) -> None:
    data, _ = big_file()
    blank, expected = region_fixed()
    server = start_server(env={"BATCH_SIZE": str(BATCH)})
    page = new_page(browser, server)
    try:
        upload_and_review(page, data)
        fill_blank_regions(page)
        press_import(page)
        expect(sidebar_run(page)).to_be_visible()
        wait_for_rows(db_path)
        kill_group(server)
    finally:
        page.context.close()
    rows_done, status = run_state(db_path)
    assert status == "running" and 0 < rows_done < ROWS, (rows_done, status)
    assert query(db_path, "select count(*) from customers")[0][0] <= rows_done
    workspace = query(db_path, "select workspace_id from import_runs where id = 1")[0][0]
    assert workspace is not None
    # What was committed before the kill already has the fix.
    assert not [row for row, region in query(db_path, "select source_row_number, region from customers")
                if row in blank and region != REGION]

    restarted = start_server(env={"BATCH_SIZE": str(BATCH)})
    page = new_page(browser, restarted)
    try:
        resume_from_history(page, rows_done)
        wait_for_status(db_path, "completed")
        goto_page(page, "History")
        expect(page.get_by_text(f"Run #1: {ROWS:,} rows, {len(expected):,} created, {ROWS - len(expected):,} "
                                "failed. Status: Completed.")).to_be_visible()
    finally:
        page.context.close()
    assert_regions(db_path)
    assert_workspace_done(db_path)
    stored = dict(query(db_path, "select source_row_number, region from customers"))
    assert not [row for row in blank if stored.get(row) == "GREATER_ACCRA"]  # not the default region


def test_import_goes_on_after_its_tab_is_closed(browser, start_server, db_path) -> None:
    """The tab closes at once after Import; the server's janitor closes its session soon after (a 4 s
    disconnectedSessionTTL: 2 s of grace), and the worker imports every row all the same."""
    data, valid = big_file()
    server = start_server(env={"BATCH_SIZE": str(SLOW_BATCH), "STREAMLIT_SERVER_DISCONNECTED_SESSION_TTL": "4"})
    page = new_page(browser, server)
    try:
        upload_and_review(page, data)
        press_import(page)
    finally:
        page.close()
        page.context.close()
    at_close = run_state(db_path)
    assert at_close is None or (at_close[1] == "running" and at_close[0] < ROWS), at_close
    closed = time.monotonic()
    wait_for_status(db_path, "completed")
    print(f"imported the rest in {time.monotonic() - closed:.1f} s after the tab closed (at {at_close})")
    assert_exactly_valid_rows_once(db_path, valid)
    assert_workspace_done(db_path)

    page = new_page(browser, server)
    try:
        goto_page(page, "History")
        expect(page.get_by_text(f"Run #1: {ROWS:,} rows, {valid:,} created, {ROWS - valid:,} failed. "
                                "Status: Completed.")).to_be_visible()
    finally:
        page.context.close()


def test_cancel_in_the_sidebar_interrupts_and_history_resumes(browser, start_server, db_path) -> None:
    data, valid = big_file()
    server = start_server(env={"BATCH_SIZE": str(SLOW_BATCH)})
    page = new_page(browser, server)
    try:
        upload_and_review(page, data)
        press_import(page)
        line = sidebar_run(page)
        expect(line).to_be_visible()
        wait_for_rows(db_path, more_than=ROWS // 20)
        expect(line).not_to_have_text(re.compile(r" · 0 of "))
        save_screenshot(page, "13-background-import.png")
        page.get_by_test_id("stSidebar").get_by_role("button", name="Cancel").click()
        rows_done, _ = wait_for_status(db_path, "interrupted", timeout=120)
        assert 0 < rows_done < ROWS, rows_done
        expect(page.get_by_text(f"Run #1 of {FILE} was cancelled; the rows imported so far are saved.")).to_be_visible()
        expect(line).to_have_count(0)
        assert query(db_path, "select count(*) from customers")[0][0] <= rows_done
        assert run_state(db_path) == (rows_done, "interrupted"), "the run went on after it was cancelled"

        # The analyst moves on to another file, then resumes the cancelled run from History: when the run
        # ends, the file open in this tab is still there (the result goes to the toast and History).
        goto_page(page, "1. Upload")
        upload_and_review(page, customer_workbook(OTHER_ROWS, seed=3, start=ROWS), OTHER_ROWS, OTHER)
        other = int(parse_qs(urlparse(page.url).query)["ws"][0])
        resume_from_history(page, rows_done)
        wait_for_status(db_path, "completed")
        expect(page.get_by_text(re.compile(rf"^Run #1 of {re.escape(FILE)}: Created "))).to_be_visible()
        goto_page(page, "2. Review and fix")
        expect(page.get_by_text(f"{OTHER}, sheet Customers")).to_be_visible()
        assert parse_qs(urlparse(page.url).query)["ws"] == [str(other)]
    finally:
        page.context.close()
    assert_exactly_valid_rows_once(db_path, valid)
    assert query(db_path, "select id from workspaces where discarded_at is null") == [(other,)]


@pytest.mark.postgres
def test_two_servers_on_one_postgresql_share_the_workspace_and_the_import(browser, pg_url, start_server) -> None:
    """Server A: upload, fill blank regions. Server B, same ?ws=<id> address: the fix is there; exclude the
    rows failing on one reason, import. A's sidebar shows B's run (from the ledger) while it runs."""
    data, _ = big_file()
    blank, expected = region_fixed()
    env = pg_env(pg_url, BATCH_SIZE=str(PG_BATCH))
    server_a, server_b = start_server(env=env), start_server(env=env)
    page_a = new_page(browser, server_a)
    page_b = None
    try:
        sign_in(page_a)
        upload_and_review(page_a, data)
        fill_blank_regions(page_a)
        workspace = int(parse_qs(urlparse(page_a.url).query)["ws"][0])
        assert query(pg_url, "select id, file_name from workspaces") == [(workspace, FILE)]

        page_b = new_page(browser, server_b)
        page_b.goto(f"{server_b.url}/review?ws={workspace}")
        wait_idle(page_b)
        sign_in(page_b)
        expect(page_b.get_by_role("heading", name="Review and fix")).to_be_visible()
        expect(page_b.get_by_text("Your work on this file was restored")).to_be_visible()
        expect(page_b.get_by_text(re.compile(r"^What you did \(1 change\)"))).to_be_visible()
        expect(page_b.get_by_text(f"Filled {len(blank):,} blank regions with {REGION_NAME}")).to_be_visible()

        exclude = page_b.get_by_role("button", name=re.compile(r"^Exclude all [\d,]+ rows failing on "))
        label = exclude.inner_text()
        excluded = int(re.search(r"Exclude all ([\d,]+) rows", label).group(1).replace(",", ""))
        exclude.click()
        expect(page_b.get_by_text(f"Excluded {excluded:,} rows failing with")).to_be_visible()
        expect(page_b.get_by_text(re.compile(r"^What you did \(2 changes\)"))).to_be_visible()
        wait_idle(page_b)
        total = ROWS - excluded

        press_import(page_b)
        run = wait_for_run(pg_url)
        expect(sidebar_run(page_b, run, total)).to_be_visible()
        goto_page(page_a, "History")  # A was drawn before B's import: its next run reads it from the ledger
        expect(sidebar_run(page_a, run, total)).to_be_visible()
        wait_for_status(pg_url, "completed", run_id=run)
        expect(sidebar_run(page_a, run, total)).to_have_count(0)
        expect(page_b.get_by_text(re.compile(rf"^Run #{run}: Created {len(expected):,} customers"))).to_be_visible()
    finally:
        page_a.context.close()
        if page_b is not None:
            page_b.context.close()
    (took,), = query(pg_url, "select extract(epoch from finished_at - started_at) from import_runs")
    print(f"server B imported {total:,} rows in {float(took):.1f} s (batches of {PG_BATCH})")
    assert query(pg_url, "select workspace_id from import_runs") == [(workspace,)]
    assert_regions(pg_url, total, run)
    assert_workspace_done(pg_url)


@pytest.mark.postgres
def test_cancel_on_one_server_stops_the_other_servers_import_and_either_resumes_it(browser, pg_url,
                                                                                    start_server) -> None:
    """B imports; A's sidebar shows the run and its Cancel, which A can only pass on through the ledger (the
    worker is B's): B's worker stops, its page says so; A resumes the run from History in its own worker."""
    data, valid = big_file()
    env = pg_env(pg_url, BATCH_SIZE=str(PG_BATCH))
    server_a, server_b = start_server(env=env), start_server(env=env)
    page_a, page_b = new_page(browser, server_a), new_page(browser, server_b)
    try:
        sign_in(page_a)
        sign_in(page_b)
        upload_and_review(page_b, data)
        press_import(page_b)
        run = wait_for_run(pg_url)
        line_a = sidebar_run(page_a, run)
        goto_page(page_a, "History")  # drawn before B's import: the next run reads it from the ledger
        expect(line_a).to_be_visible()
        wait_for_rows(pg_url, run_id=run)
        page_a.get_by_test_id("stSidebar").get_by_role("button", name="Cancel").click()
        rows_done, _ = wait_for_status(pg_url, "interrupted", timeout=120, run_id=run)
        assert 0 < rows_done < ROWS, rows_done
        expect(page_b.get_by_text(f"Run #{run} of {FILE} was cancelled; the rows imported so far are saved.")
               ).to_be_visible()
        expect(line_a).to_have_count(0)
        expect(sidebar_run(page_b, run)).to_have_count(0)
        assert query(pg_url, "select count(*) from customers")[0][0] <= rows_done

        goto_page(page_a, "History")
        expect(page_a.get_by_text("Status: Interrupted (can resume).")).to_be_visible()
        page_a.get_by_role("button", name=f"Resume run #{run}").click()
        expect(page_a.get_by_text(f"Run #{run} resumes on the server with your fixes")).to_be_visible()
        goto_page(page_b, "History")  # B's page is idle: its next run reads A's resumed run from the ledger
        expect(sidebar_run(page_b, run)).to_be_visible()  # now A's worker, seen by B
        wait_for_status(pg_url, "completed", run_id=run)
    finally:
        page_a.context.close()
        page_b.context.close()
    assert_exactly_valid_rows_once(pg_url, valid, run_id=run)
    assert_workspace_done(pg_url)
