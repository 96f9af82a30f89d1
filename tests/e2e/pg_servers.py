"""Dashboard servers on a shared PostgreSQL database, and reading whichever database a test's server uses.

    server = start_server(env=pg_env(pg_url, BATCH_SIZE="100"))  # conftest's start_server; pg_url: tests/conftest.py
    page = new_page(browser, server)
    sign_in(page, "Ama")                                         # PostgreSQL pages need the login gate
    query(pg_url, "select count(*) from customers")              # or query(db_path, ...) for a SQLite file
    kill_group(server)                                           # SIGKILL, as a crash would

pg_url (tests/conftest.py) makes a brand-new database per test and drops it after; it fails in CI (CI=true)
when PostgreSQL is unreachable, and skips only outside CI.
"""

from __future__ import annotations

import os
import signal
from functools import lru_cache
from pathlib import Path

import sqlalchemy as sa
from playwright.sync_api import expect
from sqlalchemy.pool import NullPool

from tests.e2e.conftest import Server, sqlite_rows, wait_idle

# A shared database without a login in front refuses writes (ui.auth.write_refusal): PostgreSQL servers
# get a password, and every page signs in with the same name (a workspace belongs to its owner's name).
PASSWORD = "e2e-pg-password"
ANALYST = "Ama"


def pg_env(url: str, **extra: str) -> dict[str, str]:
    """A server's env for the PostgreSQL database at `url` (with the login gate), plus `extra` settings."""
    return {"DATABASE_URL": url, "APP_PASSWORD": PASSWORD, **extra}


def sign_in(page, name: str = ANALYST, password: str = PASSWORD) -> None:
    """Pass the login gate of a page showing it; the page asked for comes next (its address is kept)."""
    page.get_by_role("textbox", name="Your name (recorded with your imports)").fill(name)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("stSidebarNav")).to_be_visible()
    wait_idle(page)


@lru_cache(maxsize=8)
def _engine(url: str) -> sa.Engine:
    # NullPool: no connection stays open, so pg_url's DROP DATABASE after the test is never held up.
    return sa.create_engine(url, poolclass=NullPool)


def query(db: Path | str, sql: str) -> list[tuple]:
    """Rows of a read-only query: `db` a SQLite file's path or a database URL (a fresh connection each time,
    so it sees what is committed)."""
    if isinstance(db, Path):
        return sqlite_rows(db, sql)
    with _engine(db).connect() as conn:
        return [tuple(row) for row in conn.execute(sa.text(sql)).all()]


def kill_group(server: Server) -> None:
    """SIGKILL the server's whole process group (it was started in a session of its own), as an
    out-of-memory kill or a power cut would end it; returns once it is gone."""
    if server.proc is not None and server.proc.poll() is None:
        os.killpg(server.proc.pid, signal.SIGKILL)
        server.proc.wait(timeout=30)
