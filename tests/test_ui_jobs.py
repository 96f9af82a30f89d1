"""ui.jobs: the words of the progress sidebar, and (AppTest, real SQLite) a running import shown and cancelled
from the sidebar, and a session's import started in the background and handed to the page when it ends."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from streamlit.testing.v1 import AppTest

from importer.database.ledger import get_run
from importer.identity import current_user
from importer.outcomes.row_errors import RunStatus
from importer.server import jobs
from importer.server.governor import Waiting
from importer.server.jobs import Job, JobState, RunningRun
from tests.support import SETTINGS, ready_engine
from tests.test_jobs import ROWS, TIMEOUT, Pause, csv_file, finished, until, upload_of
from ui import jobs as ui_jobs
from ui import keys

STARTED = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


def running(**over) -> RunningRun:
    values = {"run_id": 7, "file_name": "kumasi.xlsx", "sha256": "ab" * 32, "sheet": "Customers", "user_name": "ama", "rows_done": 36_000,
              "total": 100_000, "started_at": STARTED, "rows_per_second": 5_100.0, "seconds_left": 13.0,
              "workspace_id": None, "cancel_requested": False}
    return RunningRun(**(values | over))


def test_a_running_run_in_one_line() -> None:
    assert ui_jobs.run_line(running()) == "Run #7 · kumasi.xlsx · 36,000 of 100,000 rows · 5,100 rows/s · about 13 s left"
    assert ui_jobs.run_line(running(rows_done=0, rows_per_second=0.0, seconds_left=None)) == (
        "Run #7 · kumasi.xlsx · 0 of 100,000 rows · 0 rows/s")
    assert ui_jobs.run_line(running(cancel_requested=True)).endswith("about 13 s left · stopping...")
    assert ui_jobs.run_line(running(file_name="**big** <b>.csv")).startswith(r"Run #7 · \*\*big\*\* \<b\>.csv · ")
    assert ui_jobs.run_share(running()) == pytest.approx(0.36)
    assert ui_jobs.run_share(running(total=0, rows_done=0)) == 1.0


def job(state: JobState = JobState.WAITING, **over) -> Job:
    made = Job(id="j1", owner_token="tab", file_name="kumasi.csv", rows=60, user_name="ama", state=state)
    for name, value in over.items():
        setattr(made, name, value)
    return made


def test_a_waiting_or_ended_job_in_words() -> None:
    told = Waiting(ahead=1, position=1, holder="import", running=("import",), waited_s=3.0)
    assert ui_jobs.waiting_line(job(waiting=told)) == "Waiting for another import to finish (1 ahead of you)"
    assert ui_jobs.waiting_line(job()) == "Waiting for a turn to import"
    assert ui_jobs.waiting_line(job(JobState.RUNNING)) == "Starting the import of kumasi.csv"
    assert ui_jobs.outcome(job(JobState.CANCELLED)) == (
        ":material/cancel:", "The import of kumasi.csv was cancelled before it started.")
    icon, text = ui_jobs.outcome(job(JobState.CANCELLED, run_id=4))
    assert text.startswith("Run #4 of kumasi.csv was cancelled; the rows imported so far are saved.")
    assert ui_jobs.outcome(job(JobState.FAILED, error="The database at x failed: disk full.")) == (
        ":material/error:", "The database at x failed: disk full.")


def sidebar() -> None:
    from ui import jobs

    jobs.show_progress()


def import_page() -> None:
    import streamlit as st

    from ui import jobs, state

    if st.button("Import", key="go"):
        jobs.start(state.upload(), {"existing": "skip", "blank": "keep", "rejected": ()})
    jobs.show_progress()


@pytest.fixture
def app_db(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.delenv("APP_PASSWORD", raising=False)
    return sqlite_url


def test_the_sidebar_shows_a_running_import_and_cancels_it(app_db: str) -> None:
    engine = ready_engine(app_db)
    pause = Pause(at=20)
    # The session's own run (no login: the session is the server's OS user): the engine refuses to cancel
    # another account's run (tests/test_ownership.py).
    me = current_user()
    running_job = jobs.start_import(engine, upload_of(csv_file()), SETTINGS, user_name=me, budget_mb=10_000,
                                    owner_token="another tab", batch_size=10, on_progress=pause)
    try:
        pause.hold()
        at = AppTest.from_function(sidebar, default_timeout=TIMEOUT).run()
        (bar,) = at.progress
        assert bar.text.startswith(f"Run #{running_job.run_id} · kumasi.csv · 20 of {ROWS} rows · ")
        assert bar.value == 33 and at.caption[0].value == f"Imported by {me}"
        at.button(key=f"{ui_jobs.CANCEL_RUN}{running_job.run_id}").click().run()
        assert at.progress[0].text.endswith("stopping...") and not at.button
    finally:
        pause.go.set()
    assert finished(running_job).state is JobState.CANCELLED
    assert get_run(engine, running_job.run_id).status is RunStatus.INTERRUPTED
    at.run()
    assert not at.progress and not at.info and not at.button  # nothing runs: nothing shown


def test_an_import_started_from_a_page_is_handed_to_the_session_when_it_ends(app_db: str) -> None:
    ready_engine(app_db)
    at = AppTest.from_function(import_page, default_timeout=TIMEOUT)
    at.session_state[keys.UPLOAD] = upload_of(csv_file())
    at.run()
    at.button(key="go").click().run()
    job_id = at.session_state[ui_jobs.JOB]
    started = jobs.get(job_id)
    assert started is not None and started.owner_token == at.session_state[ui_jobs.OWNER]
    assert started.user_name  # whoever runs the tests (no login configured)
    finished(started)
    at.run()  # the fragment sees the job ended: the result becomes the session's, and the app reruns
    assert ui_jobs.JOB not in at.session_state and jobs.get(job_id) is None
    result = at.session_state[keys.RESULT]
    assert result is started.result and result.total_created == ROWS - 3
    assert keys.UPLOAD not in at.session_state  # a real import drops the upload
    assert [t.value for t in at.toast] == [f"Run #{result.run_id} of kumasi.csv: {result.message}."]
    at.run()
    assert not at.toast  # once



def test_a_waiting_import_says_where_it_is_and_can_leave_the_queue(app_db: str) -> None:
    engine = ready_engine(app_db)
    pause = Pause(at=10)
    first = jobs.start_import(engine, upload_of(csv_file()), SETTINGS, user_name="kwame", budget_mb=1,
                              owner_token="another tab", batch_size=10, on_progress=pause)
    try:
        pause.hold()
        mine = jobs.start_import(engine, upload_of(csv_file(first=1000), "tema.csv"), SETTINGS, user_name="ama",
                                 budget_mb=1, owner_token="this tab")
        until(lambda: mine.waiting is not None)
        at = AppTest.from_function(sidebar, default_timeout=TIMEOUT)
        at.session_state[ui_jobs.JOB] = mine.id
        at.run()
        assert len(at.progress) == 1  # the other tab's run
        assert [i.value for i in at.info] == ["Waiting for another import to finish (1 ahead of you)"]
        at.button(key=ui_jobs.CANCEL_WAITING).click().run()
        assert finished(mine).state is JobState.CANCELLED
        at.run()
        assert [t.value for t in at.toast] == ["The import of tema.csv was cancelled before it started."]
        assert not at.info and ui_jobs.JOB not in at.session_state
    finally:
        pause.go.set()
    assert finished(first).state is JobState.DONE
