"""The dry run belongs to the review session, not to the tab (issue 19): a second tab on the same workspace
shows it and may import; a change in either tab makes it out of date in both."""

from __future__ import annotations

import re

from tests.app_support import messy_xlsx
from tests.e2e.conftest import TIMEOUT_MS, goto_page, new_page, upload_file, wait_idle


def test_a_second_tab_sees_the_dry_run_and_its_verdict(browser, server, page):
    upload_file(page, "messy.xlsx", messy_xlsx())
    page.get_by_text("6 rows").first.wait_for(timeout=TIMEOUT_MS)
    goto_page(page, "3. Import")
    page.get_by_role("button", name="Dry run (saves nothing)").click()
    page.get_by_text("Dry run: what the import would do").wait_for(timeout=TIMEOUT_MS)
    page.get_by_role("button", name="Import 2 customers").wait_for(timeout=TIMEOUT_MS)
    # The page's address names the workspace once the browser has applied the page's query parameters
    # (they follow the script's messages, a moment after the button is drawn on a loaded machine).
    page.wait_for_url(re.compile(r"[?&]ws=\d+"), timeout=TIMEOUT_MS)
    address = page.url
    assert "ws=" in address

    other = new_page(browser, server)
    try:
        other.goto(address)
        other.get_by_text("Dry run: what the import would do").wait_for(timeout=TIMEOUT_MS)
        other.get_by_text("This dry run was run from another tab or before a refresh").wait_for(timeout=TIMEOUT_MS)
        button = other.get_by_role("button", name="Import 2 customers")
        button.wait_for(timeout=TIMEOUT_MS)
        assert button.is_enabled()

        # The first tab excludes a row on Review: the dry run is out of date, in the other tab too.
        goto_page(page, "2. Review and fix")
        wait_idle(page)
        page.get_by_text("Exclude by reason").first.wait_for(timeout=TIMEOUT_MS)
        page.get_by_role("button", name="Exclude the 1 row failing on", exact=False).first.click()
        wait_idle(page)
        other.reload()
        other.get_by_text("These counts are out of date. You changed the file since the dry run").wait_for(
            timeout=TIMEOUT_MS)
        assert other.get_by_role("button", name="Import 2 customers").is_disabled()
    finally:
        other.context.close()
