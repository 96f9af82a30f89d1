"""Issue 23 item 1 in real Chromium: idle pages keep up with other sessions, and the live parts never blank a
page.

Two analysts (two browser contexts, so two Streamlit sessions; one account, as on a server without a gate)
work on one server. A imports branch A's file; B has branch B's file (no shipping mark, phone or e-mail in
common with A's) dry-run on the Import page, and a second tab of B's sits on Upload with the "Continue where
you left off" list. Without any click in B: the Import page says A's run is importing, then that it ended and
the dry run still holds (Import enabled again); the sidebar shows the new customer count; the workspace list
says A's file is being imported (no Open, no Discard) and drops it when the import ends.

Then page changes while the live parts tick (every second here), idle and with an import running: every
page still draws its heading and content (a whole-page timer once blanked the new page's main area).
"""

from __future__ import annotations

import re
from functools import lru_cache

import pytest
from playwright.sync_api import expect

from bench.workbook import customer_workbook
from importer.api import read_upload
from importer.settings import Settings
from schemas.customer import UNIQUE_FIELDS
from tests.e2e.conftest import TIMEOUT_MS, VIEWPORT, goto_page, save_screenshot, wait_idle
from tests.e2e.pg_servers import query
from tests.e2e.test_interrupt import upload_and_review, wait_for_rows, wait_for_status

pytestmark = pytest.mark.e2e

A_FILE, A_ROWS = "branch-a.xlsx", 6_000
B_FILE, B_ROWS = "branch-b.xlsx", 200
SLOW_BATCH = 10  # 600 chunks: A's import runs long enough (tens of seconds, also on an idle machine) for B's pages to show it running
LIVE_MS = 10_000  # the bound: what another session changed shows within 10 s, without a click
PAGES = [("1. Upload", "Upload a customer file"), ("2. Review and fix", "Review and fix"), ("3. Import", "Import"),
         ("History", "History"), ("Customers", "Customers")]


@lru_cache(maxsize=1)
def files() -> tuple[bytes, bytes]:
    """Branch A's and branch B's workbooks; checked here to share no key (else B's dry run would go stale)."""
    a, b = customer_workbook(A_ROWS, seed=3), customer_workbook(B_ROWS, seed=4, start=500_000)
    keys = []
    for data, name in ((a, A_FILE), (b, B_FILE)):
        normalised = read_upload(data, name, Settings()).checked.normalised
        keys.append({(f, v) for f in UNIQUE_FIELDS if f in normalised for v in normalised[f].dropna()})
    assert keys[0] and keys[1] and not keys[0] & keys[1]
    return a, b


def open_page(browser, server):
    """new_page, patient with a loaded machine: the dashboard's bundle may take a while to load."""
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    context.set_default_timeout(2 * TIMEOUT_MS)
    page = context.new_page()
    page.goto(server.url, wait_until="domcontentloaded", timeout=3 * TIMEOUT_MS)
    wait_idle(page, timeout=3 * TIMEOUT_MS)
    return page


def dry_run(page) -> None:
    """On Review: go to Import and run the dry run; returns once its Import button is enabled."""
    goto_page(page, "3. Import")
    page.get_by_role("button", name="Dry run (saves nothing)").click()
    expect(import_button(page)).to_be_enabled()


def import_button(page):
    return page.get_by_role("button", name=re.compile(r"^Import [\d,]+ customers$"))


def sidebar(page):
    return page.get_by_test_id("stSidebar")


def workspace_row(page, name: str):
    """The horizontal block of the Upload page's list that names the file."""
    return page.get_by_test_id("stHorizontalBlock").filter(has_text=name)


def test_idle_pages_show_another_sessions_import_without_a_click(browser, start_server, db_path) -> None:
    a_data, b_data = files()
    server = start_server(env={"BATCH_SIZE": str(SLOW_BATCH), "LIVE_REFRESH_SECONDS": "2"})
    a, b, b_upload = open_page(browser, server), open_page(browser, server), None
    try:
        upload_and_review(a, a_data, A_ROWS, A_FILE)
        dry_run(a)
        upload_and_review(b, b_data, B_ROWS, B_FILE)
        dry_run(b)
        expect(sidebar(b).get_by_text("0 customers in the database")).to_be_visible()
        b_upload = open_page(browser, server)  # B's second tab: Upload, nothing open, the list of saved files
        expect(b_upload.get_by_role("heading", name="Continue where you left off")).to_be_visible()
        expect(workspace_row(b_upload, A_FILE).get_by_role("button", name="Open")).to_be_visible()

        import_button(a).click()  # from here on, nothing is clicked in B's tabs
        wait_for_rows(db_path, timeout=120)
        expect(b.get_by_text(re.compile(rf"These counts are out of date\. Run #1 \(\w+\) is importing "
                                        rf"{re.escape(A_FILE)} now"))).to_be_visible(timeout=LIVE_MS)
        expect(import_button(b)).to_be_disabled()
        row = workspace_row(b_upload, A_FILE)
        expect(row.get_by_text(re.compile(r"Run #1 is importing it now"))).to_be_visible(timeout=LIVE_MS)
        expect(row.get_by_role("button")).to_have_count(0)  # no Open, no Discard on a file being imported
        expect(sidebar(b).get_by_text(re.compile(rf"^Run #1 · {re.escape(A_FILE)} · "))).to_be_visible(timeout=LIVE_MS)
        save_screenshot(b, "14-live-another-import.png")
        save_screenshot(b_upload, "15-live-list-importing.png")
        assert query(db_path, "select status from import_runs where id = 1")[0][0] == "running"

        wait_for_status(db_path, "completed", timeout=300)
        stored = query(db_path, "select count(*) from customers")[0][0]
        assert stored > 0
        # B's idle Import page: A's run ended and touched none of B's keys, so B's dry run holds.
        expect(b.get_by_text("These counts are out of date")).to_have_count(0, timeout=LIVE_MS)
        expect(import_button(b)).to_be_enabled(timeout=LIVE_MS)
        expect(b.get_by_text("The other import has finished and changed none of this file's customers")
               ).to_be_visible()
        save_screenshot(b, "16-live-dry-run-holds.png")
        expect(sidebar(b).get_by_text(f"{stored:,} customers in the database")).to_be_visible(timeout=LIVE_MS)
        expect(sidebar(b).get_by_text(re.compile(r"^Run #1 · "))).to_have_count(0, timeout=LIVE_MS)
        # The completed import's workspace leaves B's list; B's own file stays, with Open.
        expect(workspace_row(b_upload, A_FILE)).to_have_count(0, timeout=LIVE_MS)
        expect(workspace_row(b_upload, B_FILE).get_by_role("button", name="Open")).to_be_visible()
        expect(sidebar(b_upload).get_by_text(f"{stored:,} customers in the database")).to_be_visible()

        # B imports: the dry run it ran before A's import is what goes in.
        import_button(b).click()
        wait_for_status(db_path, "completed", timeout=300, run_id=2)
    finally:
        for page in (a, b, b_upload):
            if page is not None:
                page.context.close()


def assert_page_drawn(page, link: str, title: str, settle_ms: int) -> None:
    """Go to a page; its heading is there once the run ends, and still there after ticks have landed."""
    goto_page(page, link)
    main = page.get_by_test_id("stMain")
    expect(main.get_by_role("heading", name=title, exact=True)).to_be_visible()
    page.wait_for_timeout(settle_ms)  # a tick or two after the page change
    wait_idle(page)
    assert main.get_by_role("heading", name=title, exact=True).is_visible(), f"{link}: the main area went blank"
    assert main.get_by_test_id("stMarkdownContainer").count() + main.get_by_test_id("stAlert").count() > 0


def test_page_changes_while_the_live_parts_tick_never_blank_the_page(browser, start_server, db_path) -> None:
    a_data, b_data = files()
    server = start_server(env={"BATCH_SIZE": str(SLOW_BATCH), "LIVE_REFRESH_SECONDS": "1"})
    a, b = open_page(browser, server), open_page(browser, server)
    try:
        upload_and_review(a, a_data, A_ROWS, A_FILE)
        dry_run(a)
        upload_and_review(b, b_data, B_ROWS, B_FILE)
        dry_run(b)  # B's Import page has its live verdict; every page has the sidebar's
        # Idle: 12 page changes, some right after a tick, some later.
        for step in range(12):
            link, title = PAGES[(step * 2) % len(PAGES)]
            assert_page_drawn(b, link, title, settle_ms=300 + 400 * (step % 4))
        import_button(a).click()
        wait_for_rows(db_path, timeout=120)
        # With A's import running (the sidebar's progress ticks too): 12 more.
        for step in range(12):
            link, title = PAGES[(step * 3 + 1) % len(PAGES)]
            assert_page_drawn(b, link, title, settle_ms=300 + 400 * (step % 4))
    finally:
        a.context.close()
        b.context.close()
