"""The History page: no runs, the run table and chart, failure reports, undo with confirmation, resume."""

from __future__ import annotations

import datetime as dt
import hashlib

import sqlalchemy as sa

from tests.app_support import (
    customers,
    finish_import,
    good_xlsx,
    import_file,
    make_app,
    messy_xlsx,
    select_box,
    texts,
)
from ui import keys


def pick_run(at, prefix: str) -> None:
    box = select_box(at, "Run")
    box.set_value(next(i for i, label in enumerate(box.options) if label.startswith(prefix))).run()


def test_no_runs_yet(monkeypatch, sqlite_url):
    at = make_app(monkeypatch, sqlite_url)
    at.switch_page("views/history.py").run()
    assert not at.exception
    assert "No imports yet." in texts(at)


def test_runs_table_chart_and_reports(monkeypatch, sqlite_url):
    at = make_app(monkeypatch, sqlite_url)
    import_file(at, "messy.xlsx", messy_xlsx())
    at.switch_page("views/history.py").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert table.loc[0, ["Run", "File", "Rows", "Created", "Failed", "Status"]].tolist() == [
        1, "messy.xlsx [Customers]", 6, 2, 4, "Completed"]
    assert len(at.get("vega_lite_chart")) == 1
    assert at.download_button(key=keys.HISTORY_CSV).label == "Download this run's failure report (CSV)"
    assert at.download_button(key=keys.HISTORY_XLSX) is not None


def test_undo_asks_with_the_count_then_deletes(monkeypatch, sqlite_url):
    at = make_app(monkeypatch, sqlite_url)
    import_file(at, "customers.xlsx", good_xlsx())
    at.switch_page("views/history.py").run()
    at.button(key=keys.UNDO).click().run()
    assert "Undo deletes the **3** customers that run #1 created." in texts(at)
    assert customers(sqlite_url) == 3
    at.button(key=keys.UNDO_NO).click().run()
    assert keys.UNDO_YES not in [b.key for b in at.button]
    at.button(key=keys.UNDO).click().run()
    at.button(key=keys.UNDO_YES).click().run()
    assert not at.exception
    assert "Run #1 undone: deleted 3 customers." in texts(at)
    assert customers(sqlite_url) == 0
    assert at.dataframe[0].value.loc[0, "Status"] == "Undone"
    assert keys.UNDO not in [b.key for b in at.button]


def test_undo_of_updates_says_what_it_restores_and_which_runs_block_it(monkeypatch, sqlite_url):
    from tests.app_support import GOOD_ROWS, HEADER, to_review
    from tests.fixtures import corpus

    at = make_app(monkeypatch, sqlite_url)
    import_file(at, "customers.xlsx", good_xlsx())
    to_review(at, "again.xlsx", corpus.xlsx({"Customers": [HEADER, *[[*r[:5], "Volta"] for r in GOOD_ROWS]]}))
    at.button(key=keys.ACCEPT_ALL).click().run()
    at.switch_page("views/load.py").run()
    at.button(key=keys.DRY_RUN_BUTTON).click().run()
    at.button(key=keys.IMPORT_BUTTON).click()
    finish_import(at.run())  # the import runs on the server: wait for it, as import_file does
    assert at.session_state[keys.RESULT].total_updated == len(GOOD_ROWS)
    at.switch_page("views/history.py").run()
    table = at.dataframe[0].value.set_index("Run")
    assert table.loc[2, ["Created", "Updated", "Unchanged", "Failed"]].tolist() == [0, len(GOOD_ROWS), 0, 0]
    pick_run(at, "#1")
    at.button(key=keys.UNDO).click().run()
    assert "later run(s) #2 changed customers it created or updated. Undo run(s) #2 first." in texts(at)
    assert at.button(key=keys.UNDO_YES).disabled
    at.button(key=keys.UNDO_NO).click().run()
    pick_run(at, "#2")
    at.button(key=keys.UNDO).click().run()
    assert (f"Undo deletes the **0** customers that run #2 created and restores the **{len(GOOD_ROWS)}** "
            "customers it updated to what they were before.") in texts(at)
    at.button(key=keys.UNDO_YES).click().run()
    assert f"Run #2 undone: deleted 0 customers, restored {len(GOOD_ROWS)}." in texts(at)
    engine = sa.create_engine(sqlite_url)
    with engine.connect() as conn:
        regions = {r for (r,) in conn.execute(sa.text("select region from customers"))}
    engine.dispose()
    assert "VOLTA" not in regions


def _interrupted_run(url: str, data: bytes) -> None:
    """A run of data cut off before its first chunk: status running, its owner long gone."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "insert into import_runs (file_name, sha256, sheet, status, started_at, owner, heartbeat_at) "
            "values ('customers.xlsx', :sha, 'Customers', 'running', :t, 'gone-host:1', :t)"),
            {"sha": hashlib.sha256(data).hexdigest(), "t": dt.datetime(2020, 1, 1)})
    engine.dispose()


def test_resume_an_interrupted_run(monkeypatch, sqlite_url):
    data = good_xlsx()
    at = make_app(monkeypatch, sqlite_url).run()  # creates the schema
    _interrupted_run(sqlite_url, data)
    at.switch_page("views/history.py").run()
    assert not at.exception
    assert at.dataframe[0].value.loc[0, "Status"] == "Interrupted (can resume)"
    resume = at.file_uploader(key=f"{keys.RESUME_FILE}_1")
    resume.upload("other.xlsx", messy_xlsx())
    at.run()
    # Markdown-escaped as a whole (the file name is the user's text): "\\#" renders as "#".
    assert "is not the file run #1 was importing" in at.error[0].value.replace("\\#", "#")
    at.file_uploader(key=f"{keys.RESUME_FILE}_1").upload("customers.xlsx", data)
    at.run()
    at.button(key=keys.RESUME_BUTTON).click().run()
    assert not at.exception
    assert "Run #1 resumes on the server" in texts(at)
    finish_import(at)
    assert [t.value for t in at.toast] == ["Run #1 of customers.xlsx: Created 3 customers."]
    assert customers(sqlite_url) == 3
    assert at.dataframe[0].value.loc[0, "Status"] == "Completed"


def test_a_run_lists_what_reading_changed(monkeypatch, sqlite_url):
    """History shows the changes record a run stored (issue 22): here a phone extension kept in Other Phones."""
    from tests.app_support import HEADER
    from tests.fixtures import corpus

    rows = [["PM1 KOFI", "Kofi", "Mensah", "kofi@example.com", "024-123-4567 ext 12", "Ashanti"]]
    at = make_app(monkeypatch, sqlite_url)
    import_file(at, "extensions.xlsx", corpus.xlsx({"Customers": [HEADER, *rows]}))
    at.switch_page("views/history.py").run()
    assert not at.exception
    expanders = [e.label for e in at.expander]
    assert any(label.startswith("Changed while reading (1 rule") for label in expanders), expanders
    assert "extension" in texts(at).lower()
