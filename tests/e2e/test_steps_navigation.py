"""Steps that survive navigation (issue 23): a 100,000-row workbook is read on the server, so an analyst who
clicks to Review and to Import during the read sees "Still reading customers_100000.xlsx (45%)" there, not
"There is no file to review yet", and gets her review without another click once the file is read.
"""

from __future__ import annotations

import re
from functools import lru_cache

import pytest
from playwright.sync_api import expect

from bench.workbook import customer_workbook
from importer.api import read_upload
from importer.settings import Settings
from tests.e2e.conftest import save_screenshot, upload_file
from tests.e2e.test_flow import metric

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROWS = 100_000
FILE = "customers_100000.xlsx"


@lru_cache(maxsize=1)
def big_file() -> tuple[bytes, int, int]:
    """The workbook, and its valid and failing rows as the engine reads them."""
    data = customer_workbook(ROWS, seed=23)
    checked = read_upload(data, FILE, Settings()).checked
    valid = len(checked.valid_index())
    return data, valid, ROWS - valid


def follow(page, link_text: str) -> None:
    """A sidebar link, clicked without waiting for the page's run to end (the read goes on meanwhile)."""
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=link_text, exact=True).click()


def still_reading(page):
    return page.get_by_text(re.compile(rf"^Still reading {re.escape(FILE)} \(\d+%\)"))


def test_clicking_to_review_and_import_during_the_read_keeps_it(page):
    data, valid, failing = big_file()
    upload_file(page, FILE, data)
    expect(page.get_by_text(re.compile(rf"^Reading and checking {re.escape(FILE)}"))).to_be_visible()

    follow(page, "2. Review and fix")
    expect(page.get_by_role("heading", name="Review and fix")).to_be_visible()
    expect(still_reading(page)).to_be_visible()
    expect(page.get_by_text("There is no file to review yet")).to_have_count(0)
    save_screenshot(page, "still-reading.png")

    follow(page, "3. Import")
    expect(page.get_by_role("heading", name="Import", exact=True)).to_be_visible()
    expect(still_reading(page)).to_be_visible()
    expect(page.get_by_text("There is nothing to import yet")).to_have_count(0)

    follow(page, "2. Review and fix")
    expect(page.get_by_role("heading", name="Review and fix")).to_be_visible()
    # No more clicks: the read ends, the page reruns by itself, compares the rows with the (empty)
    # database, and shows the review's counts.
    expect(metric(page, "Rows")).to_have_text(f"{ROWS:,}")
    expect(metric(page, "Valid")).to_have_text(f"{valid:,}")
    expect(metric(page, "Failing")).to_have_text(f"{failing:,}")
    expect(still_reading(page)).to_have_count(0)
    expect(page.get_by_text("There is no file to review yet")).to_have_count(0)
    # The file became the session's workspace on the way: the address names it, so a refresh keeps it.
    expect(page).to_have_url(re.compile(r"[?&]ws=\d+"))
