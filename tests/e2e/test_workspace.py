"""Issue 10 in real Chromium: never lose the analyst's work.

Each test drives the real dashboard (a `streamlit run app.py` server on SQLite) through one promise:
a refresh mid-review brings every change back; an edit typed just before a filter or page change is kept;
undo and redo walk the list of what was done; a dry run made stale by another tab's import says so and
blocks the import; a confirmed mapping is remembered for the next file with the same headers; a new
session lists the open workspace and reopens it.
SAVE_SCREENSHOTS=1 rewrites docs/screenshots/11-workspace-history.png and 12-stale-dry-run.png.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import (
    goto_page,
    new_page,
    save_screenshot,
    sqlite_rows,
    upload_file,
    wait_idle,
)
from tests.e2e.test_flow import (
    BAD_PHONE_ROW,
    FIXED_PHONE,
    FIXED_ROW,
    ROWS,
    choose,
    edit_grid_cell,
    messy_workbook,
    metric,
)
from tests.fixtures import corpus

pytestmark = pytest.mark.e2e

FILE = "march-customers.xlsx"
SECOND_PHONE = "0201234567"  # row 24's "12345" fixed (no other row has it)
PHONE_COLUMN = 7  # Row, Exclude, Errors, Mark, First, Last, Email, Phone
INVALID_PHONE = "Not a valid phone number"
BLANK_REGION_ROWS = 10  # messy_workbook: every fifth row (sheet rows 7, 12, ..., 52) has no region
# As saved in workspace_operations.summary; the page's Markdown shows "->" as an arrow (shown()).
FIRST_EDIT = f"Row {FIXED_ROW}: phone 54123 -> {FIXED_PHONE}"
SECOND_EDIT = f"Row {BAD_PHONE_ROW}: phone 12345 -> {SECOND_PHONE}"
REGION_FILL = f"Filled {BLANK_REGION_ROWS} blank regions with Ashanti"


# --- helpers -----------------------------------------------------------------------------------------


def shown(summary: str) -> str:
    """A history line as the page shows it (Streamlit's Markdown turns -> into an arrow)."""
    return summary.replace(" -> ", " → ")


def open_review(page) -> None:
    """Upload the messy workbook (tests.e2e.test_flow) and go on to Review: 50 rows, 4 failing."""
    upload_file(page, FILE, messy_workbook())
    expect(page.get_by_text("rows read from sheet")).to_contain_text(f"{ROWS} rows read from sheet Customers")
    page.get_by_role("button", name=f"Continue to review {ROWS} rows").click()
    expect(page.get_by_role("heading", name="Review and fix")).to_be_visible()
    expect_metrics(page, rows=ROWS, failing=4)


def expect_metrics(page, *, rows: int, failing: int) -> None:
    expect(metric(page, "Rows")).to_have_text(f"{rows:,}")
    expect(metric(page, "Failing")).to_have_text(f"{failing:,}")
    expect(metric(page, "Valid")).to_have_text(f"{rows - failing:,}")


def history(page):
    """Review's "What you did (N changes) · saved as you go" expander."""
    return page.get_by_test_id("stExpander").filter(has_text="saved as you go")


def expect_history_title(page, title: str) -> None:
    """The list's title says `title` ("2 changes, 1 undone"); once (a rerun may show the old one a moment)."""
    wait_idle(page)
    expect(page.get_by_test_id("stExpander").locator("summary").filter(
        has_text=f"What you did ({title}) · saved as you go")).to_have_count(1)


def expect_history_line(page, summary: str) -> None:
    """The list of what was done shows `summary` once."""
    wait_idle(page)
    expect(history(page).get_by_text(shown(summary), exact=True)).to_have_count(1)


def fix_phone(page, old: str, new: str) -> None:
    """Edit the first phone-failing row's phone and wait for the edit's notice (saved and checked at once)."""
    choose(page, "Show rows failing with", INVALID_PHONE)
    edit_grid_cell(page, "invalid_phone", 0, PHONE_COLUMN, old, new)
    expect(page.get_by_text("Saved and checked 1 edited row(s): 1 now valid, 0 still failing.")).to_be_visible()


def fill_blank_regions(page, region: str = "Ashanti", rows: int = BLANK_REGION_ROWS) -> None:
    """Bulk fix "Fill blank regions" over every row (the blank regions of messy_workbook are on valid rows)."""
    only_failing = page.get_by_role("checkbox", name="Only change failing rows")
    if only_failing.is_checked():
        page.get_by_text("Only change failing rows").click()
        wait_idle(page)
    expect(only_failing).not_to_be_checked()
    choose(page, "Region for rows with a blank region", region, exact=True)
    expect(region_fix_line(page, region)).to_contain_text(f"changes {rows} rows")
    region_fix_line(page, region).get_by_role("button", name="Apply").click()
    expect(page.get_by_text(f"Fill blank regions with {region}: changed {rows} row(s)")).to_be_visible()
    wait_idle(page)


def region_fix_line(page, region: str = "Ashanti"):
    """The Bulk fixes line of "Fill blank regions with <region>": its preview counts and Apply button."""
    return page.get_by_test_id("stHorizontalBlock").filter(has_text=f"Fill blank regions with {region}").filter(
        has=page.get_by_role("button", name="Apply")).last


def click_key(page, key: str) -> None:
    """Click the button whose widget key is `key` (Undo, Redo, Open...: names shared with other buttons)."""
    wait_idle(page)
    page.locator(f".st-key-{key}").locator("button:visible").click()
    wait_idle(page)


def dry_run(page, would_create: int) -> None:
    goto_page(page, "3. Import")
    page.get_by_role("button", name="Dry run (saves nothing)").click()
    expect(metric(page, "Would create")).to_have_text(f"{would_create:,}")


# --- the tests ---------------------------------------------------------------------------------------


def test_a_refresh_mid_review_restores_every_edit(page, server) -> None:
    open_review(page)
    fix_phone(page, "54123", FIXED_PHONE)
    expect_metrics(page, rows=ROWS, failing=3)
    fix_phone(page, "12345", SECOND_PHONE)
    expect_metrics(page, rows=ROWS, failing=2)
    fill_blank_regions(page)
    expect_history_title(page, "3 changes")
    assert re.search(r"[?&]ws=\d+", page.url), page.url

    page.reload()
    wait_idle(page)
    expect(page.get_by_text("Your work on this file was restored: every change you made is back.")).to_be_visible()
    expect(page.get_by_role("heading", name="Review and fix")).to_be_visible()
    expect_metrics(page, rows=ROWS, failing=2)
    expect_history_title(page, "3 changes")
    for line in (FIRST_EDIT, SECOND_EDIT, REGION_FILL):
        expect_history_line(page, line)
    save_screenshot(page, "11-workspace-history.png")
    # The bulk fixes' settings came back with the address (issue 23): "Only change failing rows" stays unticked.
    expect(page.get_by_role("checkbox", name="Only change failing rows")).not_to_be_checked()
    # The restored frame holds the edited text: no blank region is left to fill, and the rows import as edited.
    choose(page, "Region for rows with a blank region", "Ashanti", exact=True)
    expect(region_fix_line(page)).to_contain_text("changes 0 rows")
    dry_run(page, ROWS - 2)
    expect(metric(page, "Would fail")).to_have_text("2")
    page.get_by_role("button", name=f"Import {ROWS - 2} customers").click()
    expect(page.get_by_text(re.compile(r"^Run #1: "))).to_be_visible()
    assert sqlite_rows(server.db_path, "select source_row_number, phone from customers where source_row_number "
                                       "in (?, ?) order by source_row_number", (FIXED_ROW, BAD_PHONE_ROW)) == [
        (FIXED_ROW, "+233559876543"), (BAD_PHONE_ROW, "+233201234567")]
    assert sqlite_rows(server.db_path, "select count(*) from customers where source_row_number % 5 = 2 "
                                       "and region = 'ASHANTI'") == [(BLANK_REGION_ROWS,)]
    assert sqlite_rows(server.db_path, "select count(*) from customers where coalesce(region, '') = ''") == [(0,)]


def test_b_an_edit_survives_a_filter_change(page, server) -> None:
    open_review(page)
    choose(page, "Show rows failing with", INVALID_PHONE)
    # Type the fix and at once change the filter: the edit must be saved all the same.
    edit_grid_cell(page, "invalid_phone", 0, PHONE_COLUMN, "54123", FIXED_PHONE, settle=False)
    choose(page, "Show rows failing with", "Required field is blank")
    expect_metrics(page, rows=ROWS, failing=3)
    expect_history_line(page, FIRST_EDIT)
    assert sqlite_rows(server.db_path, "select summary from workspace_operations where undone = 0") == [(FIRST_EDIT,)]
    # The Import page counts it too.
    goto_page(page, "3. Import")
    expect(page.get_by_text(re.compile(rf"{ROWS} rows; .*{ROWS - 3} pass the checks, .*\b3 fail"))).to_be_visible()
    page.get_by_role("button", name="Dry run (saves nothing)").click()
    expect(metric(page, "Would create")).to_have_text(str(ROWS - 3))


def test_c_undo_and_redo_three_operations(page, server) -> None:
    open_review(page)
    fill_line = region_fix_line(page)
    fix_phone(page, "54123", FIXED_PHONE)  # 1: an edit
    expect_metrics(page, rows=ROWS, failing=3)
    fill_blank_regions(page)  # 2: a bulk fix
    expect(fill_line).to_contain_text("changes 0 rows")
    choose(page, "Exclude by reason", "Required field is blank: 1 row")  # 3: an exclusion (row 34's blank surname)
    page.get_by_role("button", name="Exclude the 1 row failing on last name").click()
    expect(page.get_by_text("Excluded 1 row failing with")).to_be_visible()
    wait_idle(page)
    expect_metrics(page, rows=ROWS - 1, failing=2)
    expect_history_title(page, "3 changes")

    for title in ("2 changes, 1 undone", "1 change, 2 undone", "0 changes, 3 undone"):
        click_key(page, "workspace_undo")
        expect_history_title(page, title)
    expect_metrics(page, rows=ROWS, failing=4)  # back to the file as uploaded
    expect(fill_line).to_contain_text(f"changes {BLANK_REGION_ROWS} rows")
    expect(page.locator(".st-key-workspace_undo").locator("button:visible")).to_be_disabled()

    for title in ("1 change, 2 undone", "2 changes, 1 undone"):
        click_key(page, "workspace_redo")
        expect_history_title(page, title)
    expect_metrics(page, rows=ROWS, failing=3)  # the edit and the fill, not the exclusion
    expect(fill_line).to_contain_text("changes 0 rows")
    expect(history(page).get_by_text("(undone)")).to_have_count(1)
    assert sqlite_rows(server.db_path, "select kind, undone from workspace_operations order by seq") == [
        ("edit", 0), ("fix", 0), ("exclude", 1)]


def test_d_a_dry_run_made_stale_by_another_tab_is_named(page, server) -> None:
    open_review(page)
    first = page
    second = page.context.new_page()  # a second tab on the same workspace (its address)
    second.goto(first.url)
    wait_idle(second)
    expect(second.get_by_text("Your work on this file was restored")).to_be_visible()
    expect_metrics(second, rows=ROWS, failing=4)
    dry_run(second, ROWS - 4)
    import_button = second.get_by_role("button", name=f"Import {ROWS - 4} customers")
    expect(import_button).to_be_enabled()

    first.bring_to_front()
    dry_run(first, ROWS - 4)
    first.get_by_role("button", name=f"Import {ROWS - 4} customers").click()
    expect(first.get_by_text(re.compile(r"^Run #1: "))).to_be_visible()
    assert sqlite_rows(server.db_path, "select count(*) from customers") == [(ROWS - 4,)]

    second.bring_to_front()
    goto_page(second, "2. Review and fix")  # any interaction reruns the page
    goto_page(second, "3. Import")
    warning = second.get_by_text(re.compile(r"These counts are out of date\. Run #1\b.* imported this file "
                                            r".*; run the dry run again\."))
    expect(warning).to_be_visible()
    expect(import_button).to_be_disabled()
    save_screenshot(second, "12-stale-dry-run.png")
    # A new dry run is current again: nothing left to create, the warning gone.
    second.get_by_role("button", name="Dry run (saves nothing)").click()
    expect(metric(second, "Would create")).to_have_text("0")
    expect(warning).to_have_count(0)
    assert sqlite_rows(server.db_path, "select count(*) from customers") == [(ROWS - 4,)]


MAPPED_HEADERS = ["Shipping Mark", "First Name", "Last Name", "Email", "Numero", "Region"]


def numero_workbook(first: int, count: int) -> bytes:
    """A branch's list whose phone column is headed "Numero" (no synonym of Phone: the detector misses it)."""
    rows = [MAPPED_HEADERS] + [[f"ACC-{i:04d}", "Ama", f"Owusu{i}", f"ama{i}@example.com", f"0244{i:06d}", "Volta"]
                               for i in range(first, first + count)]
    return corpus.xlsx({"Customers": rows})


def test_e_a_remembered_mapping_reads_the_next_file_with_the_same_headers(browser, page, server) -> None:
    upload_file(page, "accra-oct.xlsx", numero_workbook(1, 10))
    expect(page.get_by_text("Missing required column(s): Phone.", exact=False)).to_be_visible()
    expect(page.get_by_role("heading", name="Fix the column mapping")).to_be_visible()
    choose(page, "Numero (column 5)", "Phone", exact=True)
    page.get_by_role("textbox", name=re.compile("Remember this mapping as")).fill("Accra branch")
    page.get_by_role("button", name="Use this mapping").click()
    expect(page.get_by_text("Mapping remembered as 'Accra branch': the next file with these headers is mapped "
                            "the same way.")).to_be_visible()
    expect(page.get_by_role("listitem").filter(has_text="Numero → Phone")).to_be_visible()
    assert sqlite_rows(server.db_path, "select name, file_name from mapping_profiles") == [
        ("Accra branch", "accra-oct.xlsx")]

    other = new_page(browser, server)  # another session: nothing of the first is in it
    try:
        upload_file(other, "accra-nov.xlsx", numero_workbook(101, 12))
        expect(other.get_by_text(re.compile(r"^Mapping 'Accra branch' \(from accra-oct\.xlsx\), saved \d+ \w+.*: "
                                            r"this file has the same headers, so its columns are mapped the same "
                                            r"way\."))).to_be_visible()
        expect(other.get_by_text("rows read from sheet")).to_contain_text("12 rows read from sheet Customers")
        expect(other.get_by_role("listitem").filter(has_text="Numero → Phone")).to_be_visible()
        expect(other.get_by_text("Missing required column", exact=False)).to_have_count(0)
        expect(other.get_by_role("button", name="Don't use it")).to_be_visible()
        other.get_by_role("button", name="Continue to review 12 rows").click()
        expect(other.get_by_role("heading", name="Review and fix")).to_be_visible()
        expect_metrics(other, rows=12, failing=0)
    finally:
        other.context.close()


def test_f_a_new_session_continues_where_the_analyst_left_off(browser, page, server) -> None:
    open_review(page)
    fix_phone(page, "54123", FIXED_PHONE)
    expect_metrics(page, rows=ROWS, failing=3)

    other = new_page(browser, server)  # a new session on the Upload page, no ?ws= in its address
    try:
        assert "ws=" not in other.url
        expect(other.get_by_role("heading", name="Continue where you left off")).to_be_visible()
        expect(other.get_by_text(re.compile(rf"{re.escape(FILE)} · {ROWS} rows · 1 change · "))).to_be_visible()
        click_key(other, "workspace_open_1")
        expect(other.get_by_role("heading", name="Review and fix")).to_be_visible()
        expect(other.get_by_text(f"Reopened {FILE} with your 1 change(s).")).to_be_visible()
        expect_metrics(other, rows=ROWS, failing=3)
        expect_history_title(other, "1 change")
        expect_history_line(other, FIRST_EDIT)
        assert re.search(r"[?&]ws=1\b", other.url), other.url
    finally:
        other.context.close()
