"""Issue 21 (2) in Chromium against the real server: ama's workspace link opened by kofi's signed-in session
shows the engine's refusal (the owner, and whom to ask), never ama's work. Own accounts, not the shared
password."""

from __future__ import annotations

from playwright.sync_api import expect

from importer.api import read_upload
from importer.database import accounts
from importer.database.schema import ensure_schema, make_engine
from importer.workspace import store as ws
from tests.e2e.conftest import TIMEOUT_MS, VIEWPORT, wait_idle
from tests.support import SETTINGS
from tests.test_workspace import csv_file

PASSWORD = "a long enough password"


def test_kofi_cannot_open_amas_workspace_link(browser, start_server, db_path) -> None:
    engine = make_engine(f"sqlite:///{db_path}")
    ensure_schema(engine)
    accounts.add_account(engine, "ama", PASSWORD)
    accounts.add_account(engine, "kofi", PASSWORD)
    accounts.add_account(engine, "esi", PASSWORD, is_admin=True)
    data = csv_file()
    upload = read_upload(data, "amas-branch.csv", SETTINGS)
    wid = ws.create_workspace(engine, "ama", data, "amas-branch.csv", SETTINGS, upload.sheet, upload.mapping,
                              rows=upload.checked.total)
    engine.dispose()
    server = start_server(env={"APP_PASSWORD": "shared-password-unused"}, db_path=db_path)

    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        page.goto(f"{server.url}/?ws={wid}")
        wait_idle(page)
        expect(page.get_by_text("Sign in with your own name and password")).to_be_visible()
        page.get_by_role("textbox", name="Name").fill("kofi")
        page.get_by_role("textbox", name="Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        wait_idle(page)
        refusal = page.get_by_text(f"Cannot open workspace {wid}: it belongs to ama, and you are signed in as kofi")
        expect(refusal).to_be_visible()
        expect(page.get_by_text("Ask ama to do it, or an admin: esi")).to_be_visible()
        expect(page.get_by_text("Your work on this file was restored")).to_have_count(0)
        expect(page.get_by_text("amas-branch.csv")).to_have_count(0)
        assert f"ws={wid}" not in page.url  # the address no longer names ama's workspace
    finally:
        context.close()
