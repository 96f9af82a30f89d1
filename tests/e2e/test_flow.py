"""The whole dashboard flow in real Chromium against the real server, and the login gate.

Upload a messy workbook -> review -> fix a cell in the grid (saved and checked at once) -> dry run -> import ->
download both failure reports and read them -> History -> undo -> the database holds none of the run.
SAVE_SCREENSHOTS=1 rewrites docs/screenshots/01-06 (the README's pictures of the flow).
"""

from __future__ import annotations

import csv
import io
import re
import subprocess
import sys
from urllib.parse import urljoin

import pytest
from openpyxl import Workbook, load_workbook
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect

from tests.e2e.conftest import (
    ROOT,
    TIMEOUT_MS,
    goto_page,
    new_page,
    save_screenshot,
    sqlite_rows,
    upload_file,
    wait_idle,
)

pytestmark = pytest.mark.e2e

HEADERS = ["S/Mark", "First Name", "Surname", "E-mail", "Mobile No.", "Region", "Company", "Notes"]
ROWS = 50
FIRST_DATA_ROW = 4  # title row, blank row, header row, then the data (Excel row numbers)
FIXED_ROW = 9  # "54123": fixed in the grid
BAD_PHONE_ROW = 24  # "12345": stays failing
BLANK_SURNAME_ROW = 34  # stays failing
DUPLICATE_ROW = 44  # repeats row 14's shipping mark: stays failing
DROPPED_ZERO_ROW = 19  # 241234567 as a number: valid (the lost zero is restored)
FIXED_PHONE = "0559876543"


def messy_workbook() -> bytes:
    """What an office export looks like: a title, a blank row, synonym headers, numbers as numbers."""
    book = Workbook()
    sheet = book.active
    sheet.title = "Customers"
    sheet.append(["Customer list - exported 3 March"])
    sheet.append([])
    sheet.append(HEADERS)
    first = ["Kofi", "Ama", "Kwame", "Abena", "Yaw"]
    regions = ["Greater Accra", "Ashanti Region", "volta", "", "Central"]
    for i in range(ROWS):
        row = FIRST_DATA_ROW + i
        sheet.append([
            f"PM{i:03d}  {first[i % 5].lower()}", first[i % 5], "Mensah", f"{first[i % 5].lower()}.{i}@example.com",
            f"024{1_000_000 + i:07d}", regions[i % 5], "Acme Trading" if i % 7 == 0 else "", "",
        ])
        del row
    sheet.cell(FIXED_ROW, 5, "54123")
    sheet.cell(BAD_PHONE_ROW, 5, "12345")
    sheet.cell(BLANK_SURNAME_ROW, 3, "")
    sheet.cell(DUPLICATE_ROW, 1, sheet.cell(14, 1).value)
    sheet.cell(DROPPED_ZERO_ROW, 5, 241234567)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def metric(page, label: str):
    """The value element of the st.metric labelled `label`."""
    return page.get_by_test_id("stMetric").filter(
        has=page.get_by_test_id("stMetricLabel").get_by_text(label, exact=True)
    ).get_by_test_id("stMetricValue")


def choose(page, label: str, option: str, attempts: int = 3, exact: bool = False) -> None:
    """Pick `option` in the st.selectbox labelled `label` (`exact`: the option's whole text).

    A rerun that redraws the select box while its list is open closes the list: open it again then."""
    for attempt in range(attempts):
        page.get_by_test_id("stSelectbox").filter(has_text=label).click()
        try:
            page.get_by_role("option", name=option, exact=exact).click(timeout=15_000 if attempt < attempts - 1 else TIMEOUT_MS)
            break
        except PlaywrightTimeoutError:
            if attempt == attempts - 1:
                raise
            page.keyboard.press("Escape")
            wait_idle(page)
    wait_idle(page)


def edit_grid_cell(page, reason: str, row: int, column: int, old: str, new: str, *, settle: bool = True) -> None:
    """Replace `old` by `new` in the data_editor cell at (row, column), 0-based, of the grid filtered by `reason`.

    The grid is a canvas: click the row's first cell, walk to the column with the arrow keys (the grid
    scrolls itself), open the cell editor with Enter (a real textarea), check it holds `old`, type `new`,
    commit with Enter. The page can still shift while charts draw, so the click is retried until the
    editor opens on the expected value. settle=False returns as soon as the editor has committed, without
    waiting for the rerun the edit starts: the next click races it, as an analyst's quick click does.
    """
    # The grid's key is review_grid_<version>_<reason>: wait for the one of this filter, not a stale one.
    grid = page.locator(f'[class*="st-key-review_grid_"][class*="_{reason} "]').get_by_test_id("stDataFrame")
    editor = page.locator("#portal textarea")
    for _attempt in range(5):
        wait_idle(page)
        grid.scroll_into_view_if_needed()
        box = _settled_box(page, grid)
        header, line = 35, 35  # Streamlit's default header and row heights
        page.mouse.click(box["x"] + 15, box["y"] + header + line * row + line / 2)
        for _ in range(column):
            page.keyboard.press("ArrowRight")
        page.keyboard.press("Enter")
        try:
            expect(editor).to_be_visible(timeout=5_000)
        except AssertionError:
            continue
        if editor.input_value() == old:
            editor.fill(new)
            editor.press("Enter")
            expect(editor).to_have_count(0)
            if settle:
                page.wait_for_timeout(500)  # the edit reruns the script; let that run start and end
                wait_idle(page)
            return
        editor.press("Escape")
    raise AssertionError(f"could not open the grid cell ({row}, {column}) holding {old!r}")


def _settled_box(page, locator) -> dict:
    """The element's bounding box once it stops moving."""
    last = None
    for _ in range(50):
        box = locator.bounding_box()
        if box is not None and box == last:
            return box
        last = box
        page.wait_for_timeout(100)
    assert last is not None
    return last


def click_until(page, button: str, shown, attempts: int = 3) -> None:
    """Click a button until `shown` appears: a click that lands while the page still moves can be lost."""
    for attempt in range(attempts):
        wait_idle(page)
        page.get_by_role("button", name=button).click()
        try:
            expect(shown).to_be_visible(timeout=20_000 if attempt < attempts - 1 else TIMEOUT_MS)
            return
        except AssertionError:
            if attempt == attempts - 1:
                raise


def download(page, button: str) -> bytes:
    """Click a download button: the server builds the file on its disk (ui.downloads), and the Save link
    under the button fetches it from the front door's route, in this browser's own session."""
    page.get_by_role("button", name=button).click()
    ending = ".csv" if "CSV" in button else ".xlsx"
    link = page.get_by_role("link", name=re.compile(r"^Save .*" + re.escape(ending)))
    expect(link).to_be_visible(timeout=TIMEOUT_MS)
    response = page.request.get(urljoin(page.url, link.get_attribute("href") or ""))
    assert response.ok and "attachment" in response.headers.get("content-disposition", ""), response.status
    return response.body()


def test_upload_fix_import_report_history_undo(page, server) -> None:
    expect(page.get_by_role("heading", name="Upload a customer file")).to_be_visible()
    upload_file(page, "march-customers.xlsx", messy_workbook())

    # Upload: the header under the title rows, the synonyms mapped, a preview.
    expect(page.get_by_text("rows read from sheet")).to_contain_text(f"{ROWS} rows read from sheet Customers")
    expect(page.get_by_text("Header found in row 3.")).to_be_visible()
    for header, field in [("S/Mark", "Shipping Mark"), ("Surname", "Last Name"), ("Mobile No.", "Phone"),
                          ("E-mail", "Email"), ("Company", "Company Name")]:
        expect(page.get_by_role("listitem").filter(has_text=f"{header} → {field}")).to_be_visible()
    expect(page.get_by_text("Ignored columns (not customer fields): Notes")).to_be_visible()
    save_screenshot(page, "01-upload.png")

    # Review: metrics, the chart, the failing rows only.
    page.get_by_role("button", name=f"Continue to review {ROWS} rows").click()
    expect(page.get_by_role("heading", name="Review and fix")).to_be_visible()
    expect(metric(page, "Rows")).to_have_text(str(ROWS))
    expect(metric(page, "Failing")).to_have_text("4")
    expect(metric(page, "Valid")).to_have_text(str(ROWS - 4))
    expect(metric(page, "Duplicates")).to_have_text("1")
    expect(page.get_by_role("heading", name="Why rows fail")).to_be_visible()
    wait_idle(page)
    save_screenshot(page, "02-review.png")

    # Fix row 9's phone in the grid (filtered to phone failures: row 9 is the first): committing the cell
    # edit saves and checks it at once.
    choose(page, "Show rows failing with", "Not a valid phone number")
    edit_grid_cell(page, "invalid_phone", 0, 7, "54123", FIXED_PHONE)  # Row, Exclude, Errors, Mark, First, Last, Email, Phone
    expect(page.get_by_text("Saved and checked 1 edited row(s): 1 now valid, 0 still failing.")).to_be_visible()
    expect(metric(page, "Failing")).to_have_text("3")
    expect(metric(page, "Valid")).to_have_text(str(ROWS - 3))
    save_screenshot(page, "03-fix.png")

    # Dry run, then the import.
    goto_page(page, "3. Import")
    page.get_by_role("button", name="Dry run (saves nothing)").click()
    expect(metric(page, "Would create")).to_have_text(str(ROWS - 3))
    expect(metric(page, "Would fail")).to_have_text("3")
    assert sqlite_rows(server.db_path, "select count(*) from customers") == [(0,)]
    page.get_by_role("button", name=f"Import {ROWS - 3} customers").click()
    # The import runs in a server-side worker; its result comes back to this page when it ends.
    expect(page.get_by_text(re.compile(r"^Run #1: "))).to_be_visible()
    expect(metric(page, "Created")).to_have_text(str(ROWS - 3))
    expect(metric(page, "Failed")).to_have_text("3")
    save_screenshot(page, "04-import.png")
    assert sqlite_rows(server.db_path, "select count(*) from customers where import_run_id = 1") == [(ROWS - 3,)]
    stored = sqlite_rows(server.db_path, "select phone from customers where source_row_number in (?, ?) "
                                         "order by source_row_number", (FIXED_ROW, DROPPED_ZERO_ROW))
    assert stored == [("+233559876543",), ("+233241234567",)]

    # The failure reports: the still-failing rows with their errors; not the fixed row.
    report = download(page, "Download failure report (CSV)")
    lines = list(csv.DictReader(io.StringIO(report.decode("utf-8-sig"))))
    by_row = {int(line["Row"]): line for line in lines}
    assert sorted(by_row) == [BAD_PHONE_ROW, BLANK_SURNAME_ROW, DUPLICATE_ROW]
    assert "12345 is not a valid phone number" in by_row[BAD_PHONE_ROW]["Errors"]
    assert by_row[BAD_PHONE_ROW]["Mobile No."] == "12345"
    assert "Last Name" in by_row[BLANK_SURNAME_ROW]["Errors"]
    assert "blank" in by_row[BLANK_SURNAME_ROW]["Errors"].lower()
    assert "row 14" in by_row[DUPLICATE_ROW]["Errors"].lower()
    book = load_workbook(io.BytesIO(download(page, "Download failure report (Excel, failing cells marked)")))
    sheet = book["Failed rows"]
    header = [cell.value for cell in sheet[1]]
    assert header[0] == "Row" and header[-1] == "Errors"
    rows = {row[0]: dict(zip(header, row, strict=True)) for row in sheet.iter_rows(min_row=2, values_only=True)}
    assert sorted(rows) == [BAD_PHONE_ROW, BLANK_SURNAME_ROW, DUPLICATE_ROW]
    assert rows[BAD_PHONE_ROW]["Errors"] == by_row[BAD_PHONE_ROW]["Errors"]
    phone_cell = sheet.cell(2, header.index("Mobile No.") + 1)
    assert phone_cell.value == "12345" and phone_cell.comment is not None  # failing cell marked

    # History: the run, its counts and status.
    goto_page(page, "History")
    expect(page.get_by_text("Run #1: 50 rows, 47 created, 3 failed. Status: Completed.")).to_be_visible()
    expect(page.get_by_role("combobox", name="Run")).to_have_value(re.compile(r"^#1 · march-customers\.xlsx · .* · Completed$"))
    save_screenshot(page, "05-history.png")

    # Undo, confirmed.
    page.get_by_role("button", name="Undo run #1").click()
    expect(page.get_by_text("Undo deletes the 47 customers that run #1 created.")).to_be_visible()
    page.get_by_role("button", name="Yes, undo the run").click()
    expect(page.get_by_text("Run #1 undone: deleted 47 customers.")).to_be_visible()
    expect(page.get_by_text("Status: Undone.")).to_be_visible()
    save_screenshot(page, "06-undo.png")
    assert sqlite_rows(server.db_path, "select count(*) from customers where import_run_id = 1") == [(0,)]
    assert sqlite_rows(server.db_path, "select count(*) from customers") == [(0,)]
    assert sqlite_rows(server.db_path, "select status from import_runs where id = 1") == [("undone",)]


PASSWORD = "e2e-gate-password"
SECRET_FILE = "confidential-customers.xlsx"


def test_gate_shows_nothing_before_sign_in(browser, start_server, db_path, tmp_path) -> None:
    # Something to hide: a run imported with the CLI (its file name would show in History).
    path = tmp_path / SECRET_FILE
    path.write_bytes(messy_workbook())
    subprocess.run([sys.executable, "-m", "importer", "import", str(path)], cwd=ROOT, check=False,
                   env={"DATABASE_URL": f"sqlite:///{db_path}", "PATH": "/usr/bin:/bin"}, capture_output=True,
                   timeout=120)
    assert sqlite_rows(db_path, "select count(*) from customers")[0][0] > 0
    server = start_server(env={"APP_PASSWORD": PASSWORD}, db_path=db_path)

    page = new_page(browser, server)
    try:
        for path_ in ["", "upload", "review", "import", "history"]:
            page.goto(f"{server.url}/{path_}")
            wait_idle(page)
            expect(page.get_by_role("button", name="Sign in")).to_be_visible()
            assert page.locator('input[type="file"]').count() == 0, path_
            assert page.get_by_test_id("stDataFrame").count() == 0, path_
            assert page.get_by_test_id("stSidebarNav").count() == 0, path_
            body = page.locator("body").inner_text()
            for secret in (SECRET_FILE, "customers in the database", "Run #", "Upload a customer file"):
                assert secret not in body, (path_, secret)

        page.get_by_role("textbox", name="Your name (recorded with your imports)").fill("Ama")
        page.get_by_role("textbox", name="Password").fill("not-the-password")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_text("Wrong password.")).to_be_visible()
        assert page.locator('input[type="file"]').count() == 0
        assert SECRET_FILE not in page.locator("body").inner_text()

        page.get_by_role("textbox", name="Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="History")).to_be_visible()  # the page the link asked for
        expect(page.get_by_role("combobox", name="Run")).to_have_value(re.compile(re.escape(SECRET_FILE)))
        goto_page(page, "1. Upload")
        expect(page.locator('input[type="file"]')).to_have_count(1)
    finally:
        page.context.close()
