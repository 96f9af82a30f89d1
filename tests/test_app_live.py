"""Issue 23 item 1 in Streamlit's AppTest on a real SQLite file: what the live parts show (the sidebar's words,
the workspace list of a file being imported, the Import page's one-click dry run again, the cached reads).
The timed redraws themselves are driven in Chromium: tests/e2e/test_live_view.py."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
import sqlalchemy as sa

from importer.database.schema import describe_for_people, describe_url
from tests.app_support import make_app, messy_xlsx, texts, to_review
from ui import keys


def test_the_database_in_plain_words_without_a_path_or_password() -> None:
    assert describe_for_people("sqlite:////srv/data/customers.db") == "the local SQLite database"
    assert describe_for_people("sqlite://") == "a temporary in-memory database"
    words = describe_for_people("postgres://me:s3cret@db.example.com:5433/shop")
    assert words == "PostgreSQL database shop"
    assert "s3cret" not in words and "example.com" not in words
    assert describe_for_people("postgresql://me@h") == "the PostgreSQL database"


def test_the_sidebar_shows_a_plain_label_and_the_path_only_in_details(monkeypatch, sqlite_url) -> None:
    at = make_app(monkeypatch, sqlite_url)
    assert not at.exception
    path = sqlite_url.removeprefix("sqlite:///")
    shown = [m.value for m in at.sidebar.markdown]
    assert "**the local SQLite database**" in shown
    assert "**0** customers in the database" in shown
    details = [e for e in at.sidebar.expander if e.label == "Details"]
    assert len(details) == 1
    inside = " ".join(str(c.value) for c in details[0].caption)
    assert describe_url(sqlite_url) in inside.replace("\\", "")
    outside = [str(m.value) for m in (*at.sidebar.markdown, *at.sidebar.caption) if m not in details[0].caption]
    assert not any(path in text or "SQLite file" in text for text in outside)


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(url)


def _workspace_ids(url: str) -> list[int]:
    engine = _engine(url)
    with engine.connect() as conn:
        found = [int(i) for (i,) in conn.execute(sa.text("select id from workspaces order by id"))]
    engine.dispose()
    return found


def _run(url: str, sha256: str, status: str, workspace_id: int | None = None) -> int:
    """A run another server is doing (status running, its owner beating) or has done."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    engine = _engine(url)
    with engine.begin() as conn:
        run_id = conn.execute(sa.text(
            "insert into import_runs (file_name, sha256, sheet, status, started_at, finished_at, owner, "
            "heartbeat_at, rows_done, total_attempted, user_name, workspace_id) values ('other.xlsx', :sha, "
            "'Customers', :status, :t, :done, 'other-host:1', :t, 40, 100, 'kofi', :ws) returning id"),
            {"sha": sha256, "status": status, "t": now, "done": None if status == "running" else now,
             "ws": workspace_id}).scalar_one()
    engine.dispose()
    return int(run_id)


def _finish(url: str, run_id: int) -> None:
    engine = _engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("update import_runs set status = 'completed', finished_at = :t, rows_done = 100 "
                             "where id = :id"), {"t": dt.datetime.now(dt.UTC).replace(tzinfo=None), "id": run_id})
    engine.dispose()


def _row_buttons(at) -> dict[str, bool]:
    return {b.key: True for b in at.button if b.key and b.key.startswith((keys.WORKSPACE_OPEN, keys.WORKSPACE_DISCARD))}


@pytest.mark.slow
def test_a_file_being_imported_is_listed_as_importing_without_open_or_discard(monkeypatch, sqlite_url) -> None:
    first = make_app(monkeypatch, sqlite_url)
    to_review(first, "messy.xlsx", messy_xlsx())  # saved as a workspace
    (workspace,) = _workspace_ids(sqlite_url)
    other = make_app(monkeypatch, sqlite_url)  # a second session of the same analyst, on Upload
    assert f"{keys.WORKSPACE_OPEN}{workspace}" in _row_buttons(other)
    assert "Unused ones go after 14 days." in texts(other) and "WORKSPACE_DAYS" not in texts(other)

    run_id = _run(sqlite_url, hashlib.sha256(messy_xlsx()).hexdigest(), "running", workspace)
    other.run()
    assert not other.exception
    assert _row_buttons(other) == {}
    assert f"Run #{run_id} is importing it now by kofi (40 of 100 rows)" in texts(other)
    assert "40 of 100 rows" in texts(other)  # the sidebar's progress line too

    _finish(sqlite_url, run_id)  # (the server discards a completed run's workspace; this fake one did not)
    other.run()
    assert f"{keys.WORKSPACE_OPEN}{workspace}" in _row_buttons(other)
    assert "is importing it now" not in texts(other)


@pytest.mark.slow
def test_a_stale_dry_run_is_run_again_in_one_click(monkeypatch, sqlite_url) -> None:
    at = make_app(monkeypatch, sqlite_url)
    to_review(at, "messy.xlsx", messy_xlsx())
    at.switch_page("views/load.py").run()
    at.button(key=keys.DRY_RUN_BUTTON).click().run()
    assert not at.button(key=keys.IMPORT_BUTTON).disabled

    run_id = _run(sqlite_url, hashlib.sha256(b"another file").hexdigest(), "running")
    at.run()
    assert f"Run #{run_id} (kofi) is importing other.xlsx now" in texts(at).replace("\\", "")
    assert at.button(key=keys.IMPORT_BUTTON).disabled
    again = keys.DRY_RUN_BUTTON + "_again"
    assert again not in [b.key for b in at.button]  # wait for it to finish first

    # It ends having imported this very file's bytes (so it concerns this file): one click runs the dry run again.
    engine = _engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(sa.text("update import_runs set sha256 = :sha where id = :id"),
                     {"sha": at.session_state[keys.UPLOAD].sha256, "id": run_id})
    engine.dispose()
    _finish(sqlite_url, run_id)
    at.run()
    assert f"Run #{run_id} (kofi) imported this file just now; run the dry run again." in texts(at).replace("\\", "")
    assert at.button(key=keys.IMPORT_BUTTON).disabled
    at.button(key=again).click().run()
    assert not at.exception
    assert "These counts are out of date" not in texts(at)
    assert not at.button(key=keys.IMPORT_BUTTON).disabled
