"""The real dashboard in real Chromium: a `streamlit run app.py` server per test, and helpers to drive it.

The server is started exactly as a user starts it (`python -m importer.server.serve run app.py`, which becomes
`streamlit run app.py` in the same process: the venv's python itself is the server process, so its pid
is the one to signal or measure), on a free port, with
DATABASE_URL pointing at a temporary SQLite file. Fixtures always stop what they start.

Chromium is Debian's /usr/bin/chromium (Playwright cannot download browsers here); set CHROMIUM to use
another binary. bench/bench_dashboard.py reuses `Server`, `launch_chromium` and the page helpers.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 900}
TIMEOUT_MS = 60_000  # generous: CI machines are slow, and a 100,000-row step takes seconds
SCREENSHOTS = ROOT / "docs" / "screenshots"
# Env vars of the developer's shell that would change what the server does.
_SERVER_ENV_DROP = ("DATABASE_URL", "APP_PASSWORD", "BATCH_SIZE", "MAX_ROWS", "MAX_UPLOAD_MB",
                    "DEFAULT_PHONE_REGION", "DEFAULT_CUSTOMER_REGION")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """One `streamlit run app.py` process on 127.0.0.1, writing to `db_path` (SQLite)."""

    def __init__(self, db_path: Path, log_path: Path, env: dict[str, str] | None = None,
                 port: int | None = None) -> None:
        self.db_path = Path(db_path)
        self.log_path = Path(log_path)
        self.extra_env = dict(env or {})
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        # What runs `streamlit run`: the deployed launcher (allocators set for a shared server); a
        # diagnostic wrapper may replace it.
        self.launcher = ["-m", "importer.server.serve"]
        self.script = "app.py"  # what it runs (bench/bench_512mb.py's baseline runs bench/bare_app.py)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 90) -> Server:
        env = {k: v for k, v in os.environ.items() if k not in _SERVER_ENV_DROP}
        env.update({"DATABASE_URL": f"sqlite:///{self.db_path}", "PYTHONUNBUFFERED": "1"})
        env.update(self.extra_env)
        command = [
            sys.executable, *self.launcher, "run", self.script,
            "--server.headless", "true", "--server.port", str(self.port), "--server.address", "127.0.0.1",
            "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
        ]
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps writing to it
        try:
            self.proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            log.close()
        self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"the dashboard server exited at start:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as response:
                    if response.status == 200 and response.read().strip() == b"ok":
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the dashboard server was not healthy after {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def kill(self) -> None:
        """SIGKILL, as a crash or an out-of-memory kill would do it."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()

    def status(self, field: str) -> int:
        """A `kB` line of /proc/<pid>/status, e.g. VmHWM (peak RSS) or VmRSS, in kB."""
        text = Path(f"/proc/{self.pid}/status").read_text()
        match = re.search(rf"^{field}:\s+(\d+) kB$", text, re.MULTILINE)
        assert match, f"{field} not in /proc/{self.pid}/status"
        return int(match.group(1))


def launch_chromium(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def new_page(browser, server: Server):
    """A fresh browser context (its own Streamlit session) on the dashboard."""
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(server.url)
    wait_idle(page)
    return page


def session_ids(page) -> list[str]:
    """A list that receives the page's Streamlit session ids, read from its websocket's new_session messages
    (call before the page loads the dashboard)."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    sessions: list[str] = []

    def on_frame(payload) -> None:
        if isinstance(payload, bytes):
            msg = ForwardMsg()
            try:
                msg.ParseFromString(payload)
            except Exception:  # noqa: BLE001 - not every frame is a ForwardMsg
                return
            if msg.WhichOneof("type") == "new_session" and msg.new_session.initialize.session_id:
                sessions.append(msg.new_session.initialize.session_id)

    page.on("websocket", lambda ws: ws.on("framereceived", on_frame))
    return sessions


def wait_idle(page, timeout: float = TIMEOUT_MS) -> None:
    """Until the app's script run has finished (Streamlit marks it on the app's root element)."""
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout)


def save_screenshot(page, name: str, top: bool = True) -> None:
    """docs/screenshots/<name> when SAVE_SCREENSHOTS=1 (CI does not rewrite the committed ones).

    The page is scrolled to its top first unless top=False."""
    if os.environ.get("SAVE_SCREENSHOTS") != "1":
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    wait_idle(page)
    if top:
        page.evaluate("""() => { for (const el of document.querySelectorAll('[data-testid="stMain"], '
                      + '[data-testid="stAppViewContainer"], [data-testid="stAppScrollToBottomContainer"]'))
                      el.scrollTo(0, 0); window.scrollTo(0, 0); }""")
    page.wait_for_timeout(500)  # let charts and the grid finish drawing
    page.screenshot(path=str(SCREENSHOTS / name))


def upload_file(page, name: str, data: bytes, label: str = "Customer file (.xlsx, .xls or .csv)") -> None:
    """Give the file uploader labelled `label` a file."""
    uploader = page.locator('[data-testid="stFileUploader"]').filter(has_text=label)
    mime = "text/csv" if name.endswith(".csv") else \
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    uploader.locator('input[type="file"]').set_input_files(files=[{"name": name, "mimeType": mime, "buffer": data}])


def goto_page(page, link_text: str) -> None:
    """Follow a sidebar link ("1. Upload", "2. Review and fix", "3. Import", "History")."""
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=link_text, exact=True).click()
    wait_idle(page)


def sqlite_rows(db_path: Path, sql: str, params: tuple = ()) -> list[tuple]:
    """Rows of a read-only query on the server's SQLite file (a fresh connection: sees committed data)."""
    with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)) as conn:
        return conn.execute(sql, params).fetchall()


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"Chromium is required in CI but there is none at {CHROMIUM}")
        pytest.skip(f"no Chromium at {CHROMIUM} (./test.sh installs Debian's chromium)")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def db_path() -> Iterator[Path]:
    """A SQLite file in a short temporary folder (the sidebar shows its path, screenshots too)."""
    folder = Path(tempfile.mkdtemp(prefix="dashboard-"))
    try:
        yield folder / "customers.db"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def start_server(tmp_path, db_path) -> Iterator:
    """start_server(env=None, db_path=None) -> a started Server; every one is stopped after the test.

    The server log is in the test's tmp_path; a failing test prints its tail."""
    started: list[Server] = []

    def start(env: dict[str, str] | None = None, db_path: Path = db_path, port: int | None = None) -> Server:
        server = Server(db_path, tmp_path / f"server-{len(started)}.log", env, port)
        started.append(server)
        return server.start()

    try:
        yield start
    finally:
        for server in started:
            server.stop()
        for server in started:
            print(f"--- {server.log_path.name} ---\n{server.log_tail(15)}")


@pytest.fixture
def server(start_server) -> Server:
    """The dashboard on a fresh SQLite file, no login gate (the SQLite default opens directly)."""
    return start_server()


@pytest.fixture
def page(browser, server):
    page = new_page(browser, server)
    try:
        yield page
    finally:
        page.context.close()
