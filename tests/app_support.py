"""Shared helpers of the dashboard's AppTest tests (no tests here): the app, files, clicks."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from tests.fixtures import corpus
from ui import keys

APP = str(Path(__file__).resolve().parent.parent / "app.py")
HEADER = corpus.HEADER
GOOD_ROWS = corpus.ROWS
# Row numbers as Excel shows them: header is row 1.
MESSY_ROWS = [
    ["PM1 KOFI", "Kofi", "Mensah", "kofi@example.com", "0241234567", "Ashanti"],  # 2 valid
    ["PM2 AMA", "Ama", "Owusu", "", "5412345", "greater accra"],  # 3 invalid phone
    ["PM3 YAW", "", "Boateng", "yaw@example.com", "+233 24 765 4321", ""],  # 4 first name blank
    ["PM4 ESI", "Esi", "Asante", "", "0241234567", "Volta"],  # 5 same phone as row 2
    ["PM5 KWAME", "Kwame", "Darko", "", "0501234567", "Atlantis"],  # 6 unknown region
    ["PM6 ABENA", "Abena", "Osei", "", "0551234567", ""],  # 7 valid
]


def make_app(monkeypatch, database_url: str, password: str | None = None) -> AppTest:
    """The dashboard against database_url, optionally behind APP_PASSWORD, after its first run.

    AppTest maps views/*.py to st.navigation's pages only after a first run, so switch_page needs one.
    """
    monkeypatch.setenv("DATABASE_URL", database_url)
    if password is None:
        monkeypatch.delenv("APP_PASSWORD", raising=False)
    else:
        monkeypatch.setenv("APP_PASSWORD", password)
    return AppTest.from_file(APP, default_timeout=90).run()


def good_xlsx() -> bytes:
    return corpus.xlsx({"Customers": [HEADER, *GOOD_ROWS]})


def messy_xlsx() -> bytes:
    return corpus.xlsx({"Customers": [HEADER, *MESSY_ROWS]})


def upload(at: AppTest, name: str, data: bytes) -> AppTest:
    """Choose a file in the Upload page's uploader and run."""
    at.switch_page("views/upload.py").run()
    at.file_uploader(key=f"{keys.UPLOADER}_{at.session_state[keys.UPLOADER_NONCE]}"
                     if keys.UPLOADER_NONCE in at.session_state else f"{keys.UPLOADER}_0").upload(name, data)
    return at.run()


def to_review(at: AppTest, name: str, data: bytes) -> AppTest:
    upload(at, name, data)
    at.button(key=keys.CONTINUE).click().run()
    # The button's st.switch_page moves the browser; AppTest keeps its own page, so follow it.
    return at.switch_page("views/review.py").run()


def grid_key(at: AppTest, code: str | None = None) -> str:
    return f"{keys.GRID}_{at.session_state[keys.VERSION]}_{code or 'any'}"


def import_file(at: AppTest, name: str, data: bytes) -> AppTest:
    """Upload, continue, dry run, import: the whole happy path."""
    to_review(at, name, data)
    at.switch_page("views/load.py").run()
    at.button(key=keys.DRY_RUN_BUTTON).click().run()
    at.button(key=keys.IMPORT_BUTTON).click()
    return finish_import(at.run())


def finish_import(at: AppTest, timeout: float = 120) -> AppTest:
    """The import runs on the server (importer.server.jobs): wait for the session's job, then run the page once more,
    as the sidebar's progress fragment would, so the result comes back to the session."""
    from importer.server import jobs
    from ui import jobs as ui_jobs

    job_id = at.session_state[ui_jobs.JOB] if ui_jobs.JOB in at.session_state else None  # noqa: SIM401 - AppTest's state has no get
    job = jobs.get(job_id) if job_id else None
    if job is not None:
        assert job.wait(timeout), f"the import job did not finish in {timeout} s"
        at.run()
    return at


def texts(at: AppTest) -> str:
    """Every text-ish element of the page, joined: for `in` checks."""
    parts = [e.value for kind in ("title", "subheader", "markdown", "caption", "info", "success", "warning",
                                  "error") for e in getattr(at, kind)]
    return "\n".join(str(p) for p in parts)


def customers(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("select count(*) from customers")).scalar_one())
    finally:
        engine.dispose()


def select_box(at: AppTest, label: str):
    """The select box with this label. A ui.render.pick select box's widget key changes with its labels (so a
    browser never keeps a stale one), so tests find it by its label."""
    found = [s for s in at.selectbox if s.label == label]
    assert len(found) == 1, f"{len(found)} select boxes labelled {label!r}"
    return found[0]


class Browser:
    """What a browser shows in a page's select boxes, as Streamlit's frontend keeps them between runs.

    AppTest sends the value the server holds and reads labels from the newest run, so it cannot see a stale
    label. The frontend keeps a select box's own value (the label the analyst saw or chose) for as long as its
    widget id stays the same, unless the server sets one (set_value); a new id is a new widget, showing its
    default. `look(at)` after each run: select box label -> the option text on screen.
    """

    def __init__(self) -> None:
        self.shown: dict[str, str] = {}  # widget id -> option text on screen

    def look(self, at: AppTest) -> dict[str, str]:
        shown = {}
        for box in at.selectbox:
            proto = box.proto
            if proto.set_value and proto.HasField("raw_value"):
                text = proto.raw_value
            elif box.id in self.shown:
                text = self.shown[box.id]
            else:
                text = box.options[proto.default] if proto.HasField("default") and box.options else ""
            shown[box.id] = text
        self.shown = shown
        return {box.label: shown[box.id] for box in at.selectbox}

    def choose(self, at: AppTest, label: str, option: str) -> AppTest:
        """The analyst picks `option` (its text) in the select box `label`, and the page runs."""
        box = select_box(at, label)
        self.shown[box.id] = option
        box.set_value(box.options.index(option) if isinstance(box.value, int) else option).run()
        self.look(at)
        return at
