"""Issue 9's November case in real Chromium: a monthly list re-sent with most customers already stored.

October's 683 customers are imported first. November's list has 5,061 rows: 682 of October's customers
unchanged, KSI-00101 with a new phone, and 4,378 new customers. Review shows 682 unchanged and the one
change with its diff; the analyst accepts it and imports; the Customers page finds KSI-00101 with its new
phone and the update in its history; undoing the run restores the old phone.
"""

from __future__ import annotations

import io
import re

import pytest
from openpyxl import Workbook
from playwright.sync_api import expect

from tests.e2e.conftest import goto_page, save_screenshot, sqlite_rows, upload_file, wait_idle
from tests.e2e.test_flow import choose, metric

pytestmark = pytest.mark.e2e

HEADERS = ["Shipping Mark", "First Name", "Last Name", "Email", "Phone", "Region"]
OCTOBER = 683
NEW = 4_378
CHANGED_MARK = "KSI-00101"
OLD_PHONE, NEW_PHONE = "0240000101", "0551234101"
REGIONS = ["Greater Accra", "Ashanti", "Volta", "Central", "Eastern"]


def customer(i: int) -> list[str]:
    return [f"KSI-{i:05d}", ["Kofi", "Ama", "Kwame", "Abena", "Yaw"][i % 5], f"Mensah{i}",
            f"customer{i}@example.com", f"024{i:07d}", REGIONS[i % 5]]


def workbook(rows: list[list[str]]) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = "Customers"
    sheet.append(HEADERS)
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def import_october_rows(server, rows: list[list[str]]) -> None:
    """Customers stored before the test, through the same engine the dashboard uses (the CLI's import)."""
    from importer.api import import_upload, read_upload
    from importer.database.schema import make_engine
    from importer.settings import Settings

    settings = Settings.from_env({"DATABASE_URL": f"sqlite:///{server.db_path}"})
    engine = make_engine(settings.database_url)
    try:
        result = import_upload(engine, read_upload(workbook(rows), "october.xlsx", settings), settings,
                               user_name="october")
    finally:
        engine.dispose()
    assert result.total_created == len(rows)


def import_october(server) -> None:
    import_october_rows(server, [customer(i) for i in range(1, OCTOBER + 1)])


def november() -> bytes:
    rows = [customer(i) for i in range(1, OCTOBER + 1)]
    changed = next(r for r in rows if r[0] == CHANGED_MARK)
    changed[4] = NEW_PHONE
    rows += [customer(i) for i in range(10_001, 10_001 + NEW)]
    return workbook(rows)


def test_november_reimport_accept_change_customers_page_and_undo(page, server) -> None:
    import_october(server)
    assert sqlite_rows(server.db_path, "select phone from customers where shipping_mark = ?",
                       (CHANGED_MARK,)) == [("+233240000101",)]
    page.reload()
    wait_idle(page)
    upload_file(page, "november.xlsx", november())
    page.get_by_role("button", name=f"Continue to review {OCTOBER + NEW:,} rows").click()
    expect(page.get_by_role("heading", name="Review and fix")).to_be_visible()

    # Review: 682 unchanged, the one change with its diff (rejected until accepted), the new rows.
    expect(metric(page, "Unchanged")).to_have_text("682")
    expect(metric(page, "Changed")).to_have_text("1")
    expect(metric(page, "New")).to_have_text(f"{NEW:,}")
    expect(metric(page, "Conflict")).to_have_text("0")
    expect(metric(page, "Failing")).to_have_text("1")
    expect(page.get_by_role("heading", name="Changes to existing customers")).to_be_visible()
    changes = page.locator('[class*="st-key-existing_changes_grid_"]')
    expect(changes.get_by_test_id("stDataFrame")).to_be_visible()
    save_screenshot(page, "07-changes.png", top=False)
    page.get_by_role("button", name="Accept the change shown").click()
    expect(page.get_by_text("1 accepted (the import updates these customers), 0 rejected.")).to_be_visible()
    wait_idle(page)
    expect(metric(page, "Failing")).to_have_text("0")

    # Import: the same counts, then the import creates the new rows and updates the one customer.
    goto_page(page, "3. Import")
    expect(page.get_by_text("682 unchanged (already stored as they are; not failures)", exact=False)).to_be_visible()
    page.get_by_role("button", name="Dry run (saves nothing)").click()
    expect(metric(page, "Would create")).to_have_text(f"{NEW:,}")
    page.get_by_role("button", name=f"Import: create {NEW:,}, update 1 customers").click()
    expect(page.get_by_text(re.compile(r"^Run #2: "))).to_be_visible()
    wait_idle(page)
    expect(metric(page, "Created")).to_have_text(f"{NEW:,}")
    expect(metric(page, "Updated")).to_have_text("1")
    expect(metric(page, "Unchanged")).to_have_text("682")
    assert sqlite_rows(server.db_path, "select phone from customers where shipping_mark = ?",
                       (CHANGED_MARK,)) == [("+233551234101",)]

    # Customers: KSI-00101 found by its mark, with the update in its history.
    find_on_customers_page(page)
    expect(page.get_by_text("Updated by 1 import:")).to_be_visible()
    expect(page.get_by_text("run #2 (november.xlsx, row 102)", exact=False)).to_be_visible()
    save_screenshot(page, "08-customer-history.png", top=False)

    # History: undo run #2 restores the old phone and deletes the new customers.
    goto_page(page, "History")
    expect(page.get_by_text("Run #2: 5,061 rows, 4,378 created, 1 updated, 682 unchanged, 0 failed.",
                            exact=False)).to_be_visible()
    page.get_by_role("button", name="Undo run #2").click()
    expect(page.get_by_text(f"Undo deletes the {NEW:,} customers that run #2 created and restores the 1 "
                            "customer it updated to what they were before.")).to_be_visible()
    page.get_by_role("button", name="Yes, undo the run").click()
    expect(page.get_by_text(f"Run #2 undone: deleted {NEW:,} customers, restored 1.")).to_be_visible()
    assert sqlite_rows(server.db_path, "select phone from customers where shipping_mark = ?",
                       (CHANGED_MARK,)) == [("+233240000101",)]
    assert sqlite_rows(server.db_path, "select count(*) from customers") == [(OCTOBER,)]
    find_on_customers_page(page)
    expect(page.get_by_text(", since undone", exact=False)).to_be_visible()


def find_on_customers_page(page) -> None:
    goto_page(page, "Customers")
    search = page.get_by_placeholder("Mark, name, phone or email")
    search.fill(CHANGED_MARK)
    search.press("Enter")
    wait_idle(page)
    expect(page.get_by_text("of 1 customer", exact=False)).to_be_visible()
    choose(page, "Customer on this page", f"{CHANGED_MARK} · Ama Mensah101 (ID 101)")
