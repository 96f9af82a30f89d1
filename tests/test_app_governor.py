"""Two analysts on one server: a page's heavy step waits for the other's, and closed tabs are freed.

The real Upload page (AppTest) reads a file while another thread holds the whole memory budget as an
"import": the page waits in the queue, then reads the file as soon as the import ends, and says what
it waited for. Threads are synchronised with Events and the governor's wait_until, never sleeps.
"""

from __future__ import annotations

import threading

from importer.server import governor
from importer.settings import Settings
from tests.app_support import good_xlsx, make_app, texts, upload
from ui import keys
from ui.heavy import Janitor

TIMEOUT = 60


def test_upload_waits_for_another_analysts_import_then_reads_the_file(monkeypatch, sqlite_url):
    at = make_app(monkeypatch, sqlite_url)
    gov = governor.shared(Settings.from_env().memory_budget_mb)
    holding, release = threading.Event(), threading.Event()

    def other_analyst() -> None:
        with gov.slot(gov.budget_mb, "import"):
            holding.set()
            assert release.wait(TIMEOUT)

    holder = threading.Thread(target=other_analyst, daemon=True)
    holder.start()
    assert holding.wait(TIMEOUT)
    page_done = threading.Event()
    page = threading.Thread(target=lambda: (upload(at, "customers.xlsx", good_xlsx()), page_done.set()), daemon=True)
    try:
        page.start()
        # The page's read is queued behind the import, and stays there while the import runs.
        assert gov.wait_until(lambda s: s.waiting == ("upload",) and s.running == ("import",), TIMEOUT)
        assert not page_done.is_set()
    finally:
        release.set()
    holder.join(TIMEOUT)
    page.join(TIMEOUT)
    assert page_done.is_set()
    assert not at.exception
    page_text = texts(at)
    assert "**3** rows read from sheet **Customers**" in page_text
    assert any(c.value.startswith("Waited ") and c.value.endswith(" s for another import to finish.")
               for c in at.caption)
    assert at.session_state[keys.UPLOAD].checked.total == 3
    assert gov.status().in_use_mb == 0 and gov.status().waiting == ()


def test_upload_does_not_wait_when_the_budget_is_free(monkeypatch, sqlite_url):
    at = make_app(monkeypatch, sqlite_url)
    upload(at, "customers.xlsx", good_xlsx())
    assert not at.exception
    assert "**3** rows read" in texts(at)
    assert not any(c.value.startswith("Waited ") for c in at.caption)


class Sessions:
    """Streamlit's Runtime as the janitor sees it: which sessions are connected, and what it was asked."""

    def __init__(self) -> None:
        self.active: set[str] = set()
        self.marked: list[str] = []
        self.closed: list[str] = []

    def is_active_session(self, session_id: str) -> bool:
        return session_id in self.active

    def mark_session_nonresumable(self, session_id: str) -> None:
        self.marked.append(session_id)

    def clear_user_info_for_session(self, session_id: str) -> None:
        assert session_id not in self.active, "would log out a connected session"
        self.closed.append(session_id)


def test_janitor_closes_a_closed_tab_after_the_grace_and_keeps_connected_ones():
    runtime, now = Sessions(), [0.0]
    janitor = Janitor(runtime, grace=30, clock=lambda: now[0])
    runtime.active |= {"a", "b"}
    janitor.watch("a")
    janitor.watch("b")
    assert janitor.sweep() == []

    runtime.active.discard("a")  # tab a closed at t=0
    assert janitor.sweep() == []
    now[0] = 29
    assert janitor.sweep() == []  # within the grace a reconnect keeps everything
    now[0] = 31
    assert janitor.sweep() == ["a"]
    assert runtime.marked == ["a"] and runtime.closed == ["a"]
    assert janitor.watched() == ["b"]

    runtime.active.discard("b")  # b drops out, then reconnects within the grace: kept
    now[0] = 40
    assert janitor.sweep() == []
    runtime.active.add("b")
    now[0] = 100
    assert janitor.sweep() == []
    assert runtime.closed == ["a"] and janitor.watched() == ["b"]
