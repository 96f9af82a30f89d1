"""Issue 11 in real Chromium: a branch list as branches send it, cleaned in the dashboard, its report sent
back and imported again.

The Kumasi list has one "Cust. Name" column, a Location column with abbreviations and town names
(Gt. Accra, G/A, Tema, Kumasi, B/A, a typo, an unknown place), one cell with two phones, S/No and
Remarks columns of the branch's own, and a TOTAL footer and a Prepared-by row under the data. The
analyst converts the Location values, imports, downloads the report, fixes the one unknown place in it
and uploads it again: the second run keeps the branch's row numbers and says it fixes run #1.
"""

from __future__ import annotations

import csv
import io
import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import goto_page, save_screenshot, sqlite_rows, upload_file, wait_idle
from tests.e2e.test_flow import download, metric
from tests.fixtures import corpus
from tests.fixtures.branch_files import TOTAL_ROW, kumasi_rows

pytestmark = pytest.mark.e2e

COUNT = 40
TWO_PHONES_ROW = 6  # sheet row (header is row 1): the fifth customer
UNKNOWN = "Somewhere Else"


def kumasi_workbook() -> bytes:
    rows = kumasi_rows(COUNT, full_name=True)
    rows[TWO_PHONES_ROW - 1][3] = "0277229773, 0248503716"  # S/No, Mark, Cust. Name, Phone, Location, Remarks
    return corpus.xlsx({"Customers": rows})


def test_kumasi_list_converted_imported_and_its_report_round_trip(page, server) -> None:
    upload_file(page, "kumasi-nov.xlsx", kumasi_workbook())
    expect(page.get_by_role("listitem").filter(has_text="Cust. Name → Full name → First Name + Last Name")).to_be_visible()
    expect(page.get_by_role("listitem").filter(has_text="Location → Region")).to_be_visible()
    expect(page.get_by_text("2 rows skipped as footers or notes", exact=False)).to_be_visible()
    save_screenshot(page, "09-branch-upload.png")
    page.get_by_role("button", name=f"Continue to review {COUNT} rows").click()
    expect(page.get_by_role("heading", name="Review and fix")).to_be_visible()

    # Convert the failing Location values with the gazetteer's suggestions: only the unknown place stays.
    expect(page.get_by_role("heading", name="Convert values")).to_be_visible()
    page.get_by_role("heading", name="Convert values").scroll_into_view_if_needed()
    save_screenshot(page, "10-convert-values.png", top=False)
    unknown = sum(1 for row in kumasi_rows(COUNT)[1:COUNT + 1] if row[4] == UNKNOWN)
    assert unknown == 4
    page.get_by_role("button", name="Apply conversion").click()
    expect(page.get_by_text(re.compile(r"fixed \d+ failing rows?, changed \d+"))).to_be_visible()
    wait_idle(page)
    expect(metric(page, "Failing")).to_have_text(str(unknown))

    goto_page(page, "3. Import")
    page.get_by_role("button", name="Dry run (saves nothing)").click()
    page.get_by_role("button", name=f"Import {COUNT - unknown} customers").click()
    expect(page.get_by_text(re.compile(r"^Run #1: "))).to_be_visible()
    assert sqlite_rows(server.db_path, "select count(*) from customers") == [(COUNT - unknown,)]
    assert sqlite_rows(server.db_path, "select region from customers where shipping_mark = 'KSI-5'") == [("ASHANTI",)]
    assert sqlite_rows(server.db_path, "select phone, other_phones from customers where source_row_number = ?",
                       (TWO_PHONES_ROW,)) == [("+233277229773", "+233248503716")]
    assert sqlite_rows(server.db_path, "select count(*) from import_failures where errors like ?",
                       (f"%{TOTAL_ROW}%",)) == [(0,)]

    # The report keeps the branch's columns and rows; fix the unknown place in it and send it back.
    report = download(page, "Download failure report (CSV)")
    lines = list(csv.DictReader(io.StringIO(report.decode("utf-8-sig"))))
    assert len(lines) == unknown
    assert {"S/No", "Remarks", "Report of run"} <= set(lines[0])
    rows = sorted(int(line["Row"]) for line in lines)
    assert [int(line["S/No"]) + 1 for line in sorted(lines, key=lambda line: int(line["Row"]))] == rows
    fixed = io.StringIO()
    writer = csv.DictWriter(fixed, fieldnames=list(lines[0]))
    writer.writeheader()
    for line in lines:
        writer.writerow({**line, "Region": "Volta"} if "Region" in line else {**line, "Location": "Volta"})
    goto_page(page, "1. Upload")
    upload_file(page, "failed-rows-run-1.csv", fixed.getvalue().encode("utf-8"))
    expect(page.get_by_text("The failure report of run #1", exact=False)).to_be_visible()
    page.get_by_role("button", name=f"Continue to review {unknown} rows").click()
    expect(metric(page, "Failing")).to_have_text("0")
    goto_page(page, "3. Import")
    page.get_by_role("button", name="Dry run (saves nothing)").click()
    page.get_by_role("button", name=f"Import {unknown} customers").click()
    expect(page.get_by_text(re.compile(r"^Run #2: "))).to_be_visible()
    assert sorted(n for (n,) in sqlite_rows(server.db_path, "select source_row_number from customers "
                                                             "where import_run_id = 2")) == rows
    assert sqlite_rows(server.db_path, "select fixes_run_id from import_runs where id = 2") == [(1,)]
    goto_page(page, "History")
    expect(page.get_by_text("(fixes for run #1)", exact=False)).to_be_visible()


def test_a_possible_duplicate_of_a_stored_customer_is_excluded(page, server) -> None:
    from tests.e2e.test_november import import_october_rows

    import_october_rows(server, [["PM1 KOFI", "Kofi", "Mensah", "kofi@example.com", "0241234567", "Ashanti"]])
    rows = [["Shipping Mark", "First Name", "Last Name", "Email", "Phone", "Region"],
            ["PM9 NEW", "Kofi", "Mensah", "", "0241234568", "Ashanti"],  # one digit from customer #1's phone
            ["PM10 AMA", "Ama", "Owusu", "", "0201112233", "Volta"]]
    page.reload()
    wait_idle(page)
    upload_file(page, "december.xlsx", corpus.xlsx({"Customers": rows}))
    page.get_by_role("button", name="Continue to review 2 rows").click()
    page.get_by_text("Look for possible duplicates", exact=False).click()
    expect(page.get_by_role("heading", name="Possible duplicates")).to_be_visible()
    expect(page.get_by_text("Similarity", exact=False)).to_be_visible()
    page.get_by_text("Exclude this row from the import").click()
    wait_idle(page)
    page.locator('[class*="st-key-possible_duplicate_apply"]').get_by_role("button", name="Apply").click()
    expect(page.get_by_text("Excluded row 2: it will not be imported.")).to_be_visible()
    wait_idle(page)
    expect(metric(page, "Rows")).to_have_text("1")
    goto_page(page, "3. Import")
    page.get_by_role("button", name="Dry run (saves nothing)").click()
    page.get_by_role("button", name="Import 1 customers").click()
    expect(page.get_by_text(re.compile(r"^Run #2: "))).to_be_visible()
    assert sqlite_rows(server.db_path, "select shipping_mark from customers order by id") == [("PM1 KOFI",), ("PM10 AMA",)]
