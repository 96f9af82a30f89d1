"""The Import page: nothing to import, dry run, import with progress, result and failure report downloads."""

from __future__ import annotations

import pytest

from tests.app_support import customers, good_xlsx, import_file, make_app, messy_xlsx, texts, to_review
from ui import keys


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_nothing_to_import(monkeypatch, sqlite_url):
    at = make_app(monkeypatch, sqlite_url)
    at.switch_page("views/load.py").run()
    assert not at.exception
    assert "There is nothing to import yet." in texts(at)


def test_import_needs_a_dry_run_first(monkeypatch, sqlite_url):
    at = make_app(monkeypatch, sqlite_url)
    to_review(at, "messy.xlsx", messy_xlsx())
    at.switch_page("views/load.py").run()
    assert not at.exception
    assert "Start with a dry run" in texts(at)
    assert keys.IMPORT_BUTTON not in [b.key for b in at.button]
    at.button(key=keys.DRY_RUN_BUTTON).click().run()
    assert metrics(at) == {"Rows attempted": "6", "Would create": "2", "Would fail": "4"}
    reasons = at.dataframe[0].value
    assert "Not a valid phone number" in reasons["Reason"].tolist()
    assert customers(sqlite_url) == 0
    assert at.button(key=keys.IMPORT_BUTTON).label == "Import 2 customers"


def test_import_then_result_and_downloads(monkeypatch, sqlite_url):
    at = make_app(monkeypatch, sqlite_url)
    import_file(at, "messy.xlsx", messy_xlsx())
    assert not at.exception
    assert "Run #1: Created 2 customers; 4 rows failed." in texts(at)
    assert metrics(at) == {"Rows attempted": "6", "Created": "2", "Failed": "4"}
    assert at.download_button(key=keys.IMPORT_CSV).label == "Download failure report (CSV)"
    assert at.download_button(key=keys.IMPORT_XLSX) is not None
    assert [link.label for link in at.get("page_link")][0] == "Upload the fixed report"
    assert customers(sqlite_url) == 2
    assert keys.UPLOAD not in at.session_state
    assert at.session_state[keys.RESULT].total_failed == 4
    at.run()
    assert "**2** customers in the database" in [m.value for m in at.sidebar.markdown]


def test_clean_import_has_no_report(monkeypatch, sqlite_url):
    at = make_app(monkeypatch, sqlite_url)
    import_file(at, "customers.xlsx", good_xlsx())
    assert "Created 3 customers" in texts(at)
    assert not at.get("download_button") or all(b.key == "upload_template" for b in at.get("download_button"))


@pytest.mark.postgres
def test_full_flow_on_postgresql(monkeypatch, pg_url):
    monkeypatch.setenv("APP_PASSWORD", "s3cret")
    at = make_app(monkeypatch, pg_url, password="s3cret").run()
    at.text_input(key=keys.LOGIN_PASSWORD).input("s3cret")
    at.get("form_submit_button")[0].click()
    at.run()
    import_file(at, "messy.xlsx", messy_xlsx())
    assert not at.exception
    assert "Created 2 customers; 4 rows failed" in texts(at)
    assert customers(pg_url) == 2
    at.switch_page("views/history.py").run()
    assert at.dataframe[0].value["Created"].tolist() == [2]


@pytest.mark.postgres
def test_shared_database_without_gate_refuses_writes(monkeypatch, pg_url):
    at = make_app(monkeypatch, pg_url).run()
    assert not at.exception
    assert "no login configured" in at.error[0].value
    assert not at.file_uploader
    at.switch_page("views/load.py").run()
    assert "no login configured" in at.error[0].value


def test_a_re_import_counts_unchanged_rows_in_the_boxes_and_in_history(monkeypatch, sqlite_url):
    at = make_app(monkeypatch, sqlite_url)
    import_file(at, "messy.xlsx", messy_xlsx())
    assert metrics(at) == {"Rows attempted": "6", "Created": "2", "Failed": "4"}
    import_file(at, "messy.xlsx", messy_xlsx())  # the same list again: its 2 customers exist unchanged
    assert not at.exception
    assert metrics(at) == {"Rows attempted": "6", "Created": "0", "Unchanged": "2", "Failed": "4"}
    at.switch_page("views/history.py").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert table[["Created", "Unchanged", "Failed"]].values.tolist() == [[0, 2, 4], [2, 0, 4]]
    assert "6 rows, 0 created, 2 unchanged, 4 failed" in texts(at)


def test_a_dry_run_made_stale_by_another_tabs_import_is_named(monkeypatch, sqlite_url):
    """Two tabs on one file: the second tab's dry run is out of date once the first imports; it says which
    run changed the database and the Import button waits for a new dry run."""
    first = make_app(monkeypatch, sqlite_url)
    second = make_app(monkeypatch, sqlite_url)
    data = messy_xlsx()
    to_review(second, "messy.xlsx", data)
    second.switch_page("views/load.py").run()
    second.button(key=keys.DRY_RUN_BUTTON).click().run()
    assert not second.button(key=keys.IMPORT_BUTTON).disabled
    import_file(first, "messy.xlsx", data)
    assert customers(sqlite_url) == 2
    second.run()
    assert not second.exception
    assert "These counts are out of date. Run \\#1 (" in texts(second)
    assert "imported this file just now; run the dry run again." in texts(second)
    assert second.button(key=keys.IMPORT_BUTTON).disabled
    second.button(key=keys.DRY_RUN_BUTTON).click().run()
    assert "out of date" not in texts(second)
    assert metrics(second)["Would create"] == "0"
