"""The dashboard's side of background imports (importer.server.jobs): start one, show every running run, hand
the result to the page.

    job_id = jobs.start(upload, review.import_arguments(), workspace)   # views/load.py's Import button
    with st.sidebar:
        jobs.show_progress()                                            # app.py, on every page

The import runs in a server thread, so the analyst may change page or close the tab. `show_progress`
redraws itself every few seconds from the run ledger (so every tab and server instance sees every run) and,
when this session's job ends, hands its RunResult to the page (ui.state.set_result) with one rerun.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Sequence
from typing import Any

import streamlit as st

from importer.api import Upload
from importer.errors import DatabaseError, ImporterError, NotYours
from importer.identity import dashboard_actor
from importer.server import jobs
from importer.server.jobs import Job, JobState, RunningRun
from importer.workspace.store import discard_workspace
from ui import auth, live, state
from ui.engine import engine, settings
from ui.render import md_escape, progress_text

# Session values (ui/keys.py may take them over).
JOB = "import_job"  # id of this session's current importer.server.jobs.Job
OWNER = "import_job_owner"  # this session's owner token for importer.server.jobs
JOB_FOR = "import_job_for"  # (upload version, workspace) the session's job imports
OUTCOME = "import_job_outcome"  # (icon, text) of the job that just ended: shown once, as a toast
FAILURE = "import_job_failure"  # why this session's last job failed (one line), until the next starts
# Widget keys.
CANCEL_RUN = "jobs_cancel_run_"  # + run id
CANCEL_WAITING = "jobs_cancel_waiting"


# --- words (pure: tests/test_ui_jobs.py) ---------------------------------------------------------------


def run_line(run: RunningRun) -> str:
    """`Run #7 · kumasi.xlsx · 36,000 of 100,000 rows · 5,100 rows/s · about 13 s left` (Markdown-safe)."""
    line = f"Run #{run.run_id} · {md_escape(run.file_name)} · " + progress_text(
        run.rows_done, run.total, run.rows_per_second, run.seconds_left)
    return line + " · stopping..." if run.cancel_requested else line


def run_share(run: RunningRun) -> float:
    """How much of the run is done, for st.progress (0 to 1)."""
    return min(1.0, run.rows_done / run.total) if run.total else 1.0


def waiting_line(job: Job) -> str:
    """`Waiting for another import to finish (1 ahead of you)`, or that it is about to start."""
    if job.state is JobState.WAITING and job.waiting is not None:
        return job.waiting.message()
    if job.state is JobState.WAITING:
        return "Waiting for a turn to import"
    return f"Starting the import of {md_escape(job.file_name)}"


def outcome(job: Job) -> tuple[str, str]:
    """(icon, sentence) for a job that ended: what to tell the analyst, wherever they are."""
    name = md_escape(job.file_name)  # the analyst's file name: shown as text, never as Markdown
    if job.state is JobState.DONE and job.result is not None:
        kept = (f" {job.not_imported:,} change{'' if job.not_imported == 1 else 's'} made to its workspace after "
                "the import started were not imported; the workspace keeps them: open it from the Upload page "
                "to import them." if job.not_imported else "")
        return ":material/check_circle:", f"Run #{job.result.run_id} of {name}: {job.result.message}.{kept}"
    if job.state is JobState.CANCELLED:
        if job.run_id is None:
            return ":material/cancel:", f"The import of {name} was cancelled before it started."
        return ":material/cancel:", (f"Run #{job.run_id} of {name} was cancelled; the rows imported so far "
                                     "are saved. Import the same file again (or use History) to resume it.")
    return ":material/error:", md_escape(job.error) if job.error else f"The import of {name} failed."


# --- the session's job ---------------------------------------------------------------------------------


def _owner() -> str:
    if OWNER not in st.session_state:
        st.session_state[OWNER] = uuid.uuid4().hex
    return str(st.session_state[OWNER])


def my_job() -> Job | None:
    """This session's current job (waiting, running, or ended and not yet handed over), if any."""
    job_id = st.session_state.get(JOB)
    return None if job_id is None else jobs.get(job_id)


def failure() -> str | None:
    """Why this session's last import failed (one line), until another starts."""
    return st.session_state.get(FAILURE)


def start(upload: Upload, arguments: dict[str, Any], workspace: tuple[int, Sequence[int]] | None = None) -> str:
    """Start importing `upload` in the background for this session; its job id. `arguments`: the rest of
    import_upload's (existing, blank, rejected); `workspace`: (workspace id, active operation seqs) when the
    upload is a saved workspace's. While this session's job is still going, that job's id (a double click
    starts one import)."""
    current = my_job()
    if current is not None and not current.finished:
        return current.id
    config = settings()
    who = dashboard_actor(auth.user_name(config))
    job = jobs.start_import(engine(), upload, config, user_name=who.name, workspace=workspace, actor=who,
                            budget_mb=max(1, config.memory_budget_mb), owner_token=_owner(), **arguments)
    st.session_state[JOB] = job.id
    # The session's upload goes when the import ends only if it is the file imported (History resumes a run
    # from its own replay while another file may be open here: that one stays).
    mine = state.upload()
    imports_mine = mine is None or mine is upload or mine.sha256 == upload.sha256
    st.session_state[JOB_FOR] = (state.version() if imports_mine else None, workspace)
    st.session_state.pop(FAILURE, None)
    return job.id


def _hand_over(job: Job) -> None:
    """The session's job ended: its result becomes the page's, once, and the whole app reruns."""
    st.session_state.pop(JOB, None)
    jobs.forget(job.id)
    st.session_state[OUTCOME] = outcome(job)
    version, workspace = st.session_state.pop(JOB_FOR, (None, None))
    if job.state is JobState.DONE and workspace is not None:
        with contextlib.suppress(DatabaseError, ImporterError):  # done with: kept only while a run resumes from it
            discard_workspace(engine(), workspace[0])
    if job.state is JobState.DONE and job.result is not None and version == state.version():
        state.set_result(job.result)  # the upload imported is dropped (not one opened since)
    elif job.state is JobState.FAILED:
        st.session_state[FAILURE] = job.error
    st.rerun(scope="app")


def _cancel_waiting(job_id: str) -> None:
    jobs.cancel(job_id)


def _cancel_run(run_id: int) -> None:
    try:
        jobs.request_cancel(engine(), run_id, actor=dashboard_actor(auth.user_name(settings())))
    except (DatabaseError, NotYours) as exc:
        st.toast(f"{exc}", icon=":material/error:")


def _show_run(run: RunningRun, can_cancel: bool) -> None:
    st.progress(run_share(run), text=run_line(run))
    if run.user_name:
        st.caption(f"Imported by {md_escape(run.user_name)}")
    if can_cancel and not run.cancel_requested:
        st.button("Cancel", key=f"{CANCEL_RUN}{run.run_id}", icon=":material/stop_circle:",
                  on_click=_cancel_run, args=(run.run_id,),
                  help="Stops the import after its current batch. The rows imported so far stay; importing the "
                       "same file again resumes it.")


def show_progress() -> None:
    """The sidebar's live status on every page: the customers in the database, the imports running now (any
    tab, any instance) each with Cancel, and this session's waiting job. It is a fragment that redraws itself
    every few seconds (LIVE_REFRESH_SECONDS), whether or not an import runs, so an idle page shows another
    session's import, its end and the new count without a click. Each tick reads one small aggregate of the
    run ledger (ui.live.database_state); the count and the running runs are read again only when it changed
    or while a run goes on. Only this fragment redraws, never the page: a whole-page timer once blanked the
    new page's main area in Chromium after page changes (tests/e2e/test_live_view.py changes page with the
    fragments ticking and checks that every page still draws)."""
    _tell_outcome()
    st.fragment(_live_progress, run_every=_tick_seconds())()


def _tick_seconds() -> float:
    """How often the sidebar redraws: every second while this session's own import starts or runs (its
    progress bar moves with the import, and a short import is seen running), else LIVE_REFRESH_SECONDS. The
    job's hand-over reruns the whole app, which sets the slower tick again."""
    mine = my_job()
    return 1.0 if mine is not None and not mine.finished else float(live.refresh_seconds())


def _tell_outcome() -> None:
    """The session's job that just ended, once, as a toast (its hand-over reran the whole app)."""
    if (told := st.session_state.pop(OUTCOME, None)) is not None:
        icon, text = told
        st.toast(text, icon=icon)


def _live_progress() -> None:
    try:
        status = live.database_status(engine())
    except DatabaseError as exc:
        st.error(f"{exc}", icon=":material/error:")
        return
    st.markdown(f"**{status.customers:,}** customer{'' if status.customers == 1 else 's'} in the database")
    _progress(list(status.running))


def _progress(running: list[RunningRun]) -> None:
    mine = my_job()
    if mine is not None and mine.finished:
        _hand_over(mine)
    can_cancel = auth.write_refusal(settings()) is None
    for run in running:
        _show_run(run, can_cancel)
    if mine is None or (mine.run_id is not None and any(r.run_id == mine.run_id for r in running)):
        return
    st.info(waiting_line(mine), icon=":material/hourglass_top:")
    if mine.state is JobState.WAITING and not mine.cancel_requested:
        st.button("Cancel", key=CANCEL_WAITING, icon=":material/stop_circle:", on_click=_cancel_waiting,
                  args=(mine.id,), help="Leaves the queue; nothing is imported.")
