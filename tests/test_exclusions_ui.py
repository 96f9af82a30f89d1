"""ui/exclusions.py in Streamlit's AppTest: exclude by reason, the excluded list with Include again, and the
Import page's report with the excluded rows (a real import on SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import io

from streamlit.testing.v1 import AppTest

from tests.app_support import select_box
from ui import exclusions as section
from ui import keys

BRANCH = (
    "S/No,Mark,First Name,Surname,Mobile,Remarks\n"
    "1,PM1 KOFI,Kofi,Mensah,0241234567,ok\n"
    "2,PM2 AMA,Ama,Owusu,0277229773,left the company\n"
    "3,PM3 YAW,Yaw,Boateng,12345,typo in phone\n"
    "4,PM4 ABENA,,Owusu,0201234567,first name missing\n"
    "5,PM5 ESI,Esi,Mensah,0277,short number\n"
    "6,PM6 KWAME,Kwame,Darko,999,no number\n"
)


def review_page(data: str) -> None:
    """What views/review.py does with the sections (AppTest runs this function's body as the script)."""
    import streamlit as st

    from importer.api import read_upload
    from tests.support import SETTINGS
    from ui import state, workspace
    from ui.exclusions import show_exclude_by_reason, show_excluded

    if state.upload() is None:  # a saved workspace, as the Upload page makes it
        state.set_upload(read_upload(data.encode(), "kumasi.csv", SETTINGS))
        workspace.start(data.encode(), state.upload())
    if notice := state.pop_notice():
        st.success(notice)
    upload = state.upload()
    assert upload is not None
    st.text(f"rows: {upload.checked.total}, failing: {len(upload.checked.errors)}")
    new = show_exclude_by_reason(upload.checked, upload.checked.errors)
    if new is None:
        new = show_excluded(upload, SETTINGS)
    if new is not None:
        workspace.set_checked(new)
        st.rerun()


def texts(at: AppTest) -> str:
    return "\n".join(str(e.value) for kind in ("text", "success", "info", "caption", "subheader")
                     for e in getattr(at, kind))


def review(monkeypatch, url: str) -> AppTest:
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.delenv("APP_PASSWORD", raising=False)
    return AppTest.from_function(review_page, args=(BRANCH,), default_timeout=60).run()


def test_exclude_all_rows_failing_on_phone_then_include_them_again(monkeypatch, sqlite_url):
    at = review(monkeypatch, sqlite_url)
    assert not at.exception
    assert "rows: 6, failing: 4" in texts(at)
    assert select_box(at, "Exclude by reason").options == [
        "Phone: Not a valid phone number: 3 rows",
        "First Name: Required field is blank: 1 row"]
    assert at.button(key=section.EXCLUDE_REASON).label == "Exclude all 3 rows failing on phone"
    assert not at.data_editor  # nothing excluded yet
    at.button(key=section.EXCLUDE_REASON).click().run()
    assert not at.exception
    assert "rows: 3, failing: 1" in texts(at)
    assert "Excluded 3 rows failing with phone: not a valid phone number" in texts(at)
    grid = at.data_editor[0].value
    assert grid["Row"].tolist() == [4, 6, 7]
    assert grid["Phone"].tolist() == ["12345", "0277", "999"]
    assert set(grid["Why"]) == {"excluded by the analyst: Phone: Not a valid phone number"}
    # The reason has no rows left: the select moves on to the one left.
    assert at.button(key=section.EXCLUDE_REASON).label == "Exclude the 1 row failing on first name"

    at.session_state[at.data_editor[0].key] = {"edited_rows": {1: {section.INCLUDE_COLUMN: True}},
                                               "added_rows": [], "deleted_rows": []}
    at.run()
    at.button(key=section.INCLUDE_TICKED).click().run()
    assert not at.exception
    assert "Included 1 row again: 0 valid, 1 failing." in texts(at)
    assert "rows: 4, failing: 2" in texts(at)
    assert at.data_editor[0].value["Row"].tolist() == [4, 7]

    at.button(key=section.INCLUDE_ALL).click().run()
    assert "rows: 6, failing: 4" in texts(at)
    assert not at.data_editor and not at.session_state[keys.WORKSPACE_EXCLUDED][2]  # the workspace's list


def test_include_ticked_with_nothing_ticked_says_so(monkeypatch, sqlite_url):
    at = review(monkeypatch, sqlite_url)
    at.button(key=section.EXCLUDE_REASON).click().run()
    at.button(key=section.INCLUDE_TICKED).click().run()
    assert "No rows are ticked." in texts(at)
    assert "rows: 3, failing: 1" in texts(at)


def load_page(url: str, data: str) -> None:
    """What views/load.py does around its download buttons after a real import (the upload is dropped)."""
    import streamlit as st

    from importer.api import import_upload, read_upload
    from importer.checks.validate import exclude
    from importer.database.schema import make_engine
    from importer.output.failure_report import report_bytes
    from importer.review.operations import Exclude
    from tests.support import SETTINGS
    from ui import state, workspace
    from ui.exclusions import include_excluded_in_report, remember_for_report, report_with_excluded

    if state.import_result() is None:
        upload = read_upload(data.encode(), "kumasi.csv", SETTINGS)
        state.set_upload(upload)
        workspace.start(data.encode(), upload)
        workspace.set_checked(exclude(upload.checked, [3]), Exclude((3,)))  # "Exclude ticked rows" on Review
        upload = state.upload()
        assert upload is not None
        remember_for_report(upload)  # the Import button
        state.set_result(import_upload(make_engine(url), upload, SETTINGS))
    result = state.import_result()
    assert result is not None and state.upload() is None
    failed = result.failed
    if include_excluded_in_report(state.upload()):
        failed = report_with_excluded(failed, state.upload())
    st.text(f"report rows: {len(failed)}")
    st.code(report_bytes(failed, "csv").decode("utf-8-sig"))


def test_the_report_gets_the_excluded_rows_when_the_box_is_ticked(monkeypatch, database_url):
    from tests.support import ready_engine

    ready_engine(database_url).dispose()
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("APP_PASSWORD", raising=False)
    at = AppTest.from_function(load_page, args=(database_url, BRANCH), default_timeout=60).run()
    assert not at.exception
    assert "report rows: 4" in texts(at)
    box = at.checkbox(key=section.IN_REPORT)
    assert box.label == "Add the rows I excluded to the report, marked 'excluded by the analyst'"
    box.check().run()
    assert not at.exception
    assert "report rows: 5" in texts(at)
    rows = list(csv.reader(io.StringIO(at.code[0].value)))
    assert rows[0][:2] == ["Row", "S/No"] and rows[0][-1] == "Errors"
    assert rows[-1][:2] == ["3", "2"] and rows[-1][-1] == "Row: excluded by the analyst"
    assert "left the company" in rows[-1]


def test_keys_do_not_clash_with_the_pages():
    page_keys = {v for k, v in vars(keys).items() if k.isupper() and isinstance(v, str)}
    assert not page_keys & set(section.SESSION_KEYS)
    from ui import duplicates

    assert not {duplicates.PAIRS, duplicates.PICK, duplicates.CHOICE, duplicates.APPLY} & set(section.SESSION_KEYS)


def test_the_preview_line_says_fixes_apart_from_changes():
    assert section.show_fix_preview_line(0, 4776) == "fixes **0** failing rows · changes **4,776** rows"
    assert section.show_fix_preview_line(1, 1) == "fixes **1** failing row · changes **1** row"


# --- the dashboard itself: views/review.py and views/load.py call this module -------------------------------


def test_the_dashboard_excludes_by_reason_lists_includes_and_reports(monkeypatch, sqlite_url):
    from tests.app_support import finish_import, make_app, messy_xlsx, texts, to_review

    at = make_app(monkeypatch, sqlite_url)
    to_review(at, "messy.xlsx", messy_xlsx())
    labels = select_box(at, "Exclude by reason").options
    select_box(at, "Exclude by reason").set_value(
        next(i for i, label in enumerate(labels) if label.startswith("Phone: Not a valid phone number"))).run()
    assert at.button(key=section.EXCLUDE_REASON).label == "Exclude the 1 row failing on phone"
    at.button(key=section.EXCLUDE_REASON).click().run()
    assert not at.exception
    assert "Excluded 1 row failing with phone: not a valid phone number" in texts(at)
    grid = next(e for e in at.data_editor if e.key.startswith(section.EXCLUDED_GRID))
    assert grid.value["Row"].tolist() == [3]
    assert "fixes **0** failing rows · changes **" in texts(at)

    at.button(key=section.INCLUDE_ALL).click().run()
    assert "Included 1 row again: 0 valid, 1 failing." in texts(at)
    assert not any(e.key.startswith(section.EXCLUDED_GRID) for e in at.data_editor)
    at.button(key=section.EXCLUDE_REASON).click().run()  # the same reason, picked still

    at.switch_page("views/load.py").run()
    assert "1 row(s) you excluded on Review are not imported." in texts(at)
    at.button(key=keys.DRY_RUN_BUTTON).click().run()
    finish_import(at.button(key=keys.IMPORT_BUTTON).click().run())
    assert not at.exception
    assert "Run #1: Created 2 customers; 3 rows failed." in texts(at)
    box = at.checkbox(key=section.IN_REPORT)
    assert box.label == section.REPORT_LABEL and not box.value
    box.check().run()
    assert not at.exception and at.download_button(key=keys.IMPORT_CSV) is not None
