"""Issue 21 in Chromium against the real server (python -m importer.server.serve, so with the front door):
own accounts at the gate, nothing stored or told before login."""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request

from playwright.sync_api import expect

from tests.e2e.conftest import ROOT, TIMEOUT_MS, VIEWPORT, session_ids, wait_idle

PASSWORD = "ama's long password"

PUT_FILE = """async (sid) => {
  const xsrf = (document.cookie.split('; ').find(c => c.startsWith('_streamlit_xsrf=')) || '').split('=')[1];
  const form = new FormData();
  form.append('file', new Blob(['PM1 SECRET,Secret,Customer']), 'secret.csv');
  const response = await fetch(`/_stcore/upload_file/${sid}/e2e-file`,
                               {method: 'PUT', body: form, headers: xsrf ? {'X-Xsrftoken': xsrf} : {}});
  return [response.status, await response.text()];
}"""


def _session_page(browser, server):
    """A page on the dashboard and a list that receives its Streamlit session id (from the websocket)."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    sessions = session_ids(page)
    page.goto(server.url)
    wait_idle(page)
    return page, sessions


def test_own_account_and_nothing_before_login(browser, start_server, db_path) -> None:
    added = subprocess.run([sys.executable, "-m", "importer", "users", "add", "Ama", "--password-stdin"],
                           input=PASSWORD + "\n", text=True, cwd=ROOT, capture_output=True, timeout=120,
                           env={"DATABASE_URL": f"sqlite:///{db_path}", "PATH": "/usr/bin:/bin"})
    assert added.returncode == 0, added.stderr
    server = start_server(env={"APP_PASSWORD": "shared-password-unused"}, db_path=db_path)

    try:
        urllib.request.urlopen(f"{server.url}/_stcore/metrics", timeout=10)
        raise AssertionError("metrics answered")
    except urllib.error.HTTPError as exc:
        assert exc.code == 404

    page, sessions = _session_page(browser, server)
    try:
        expect(page.get_by_text("Sign in with your own name and password")).to_be_visible()
        assert sessions, "no session id seen on the websocket"
        assert page.evaluate(PUT_FILE, sessions[-1]) == [403, "Sign in first\n"]

        page.get_by_role("textbox", name="Name").fill(" ama ")
        page.get_by_role("textbox", name="Password").fill("shared-password-unused")  # APP_PASSWORD: not here
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_text("Wrong name or password.")).to_be_visible()
        assert page.evaluate(PUT_FILE, sessions[-1])[0] == 403

        page.get_by_role("textbox", name="Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator('input[type="file"]')).to_have_count(1)
        status, _ = page.evaluate(PUT_FILE, sessions[-1])
        assert status == 204  # signed in: Streamlit's own endpoint takes the file
    finally:
        page.context.close()
