"""Imports that run in a worker thread of the server, not in a page's script run.

A page's script dies with its tab (or when the analyst opens another page), and an import inside it died
too. Here an import is a `Job`: a daemon thread that waits its turn for the process's memory budget
(importer.server.governor), then runs import_upload, keeping the upload alive itself. The page only keeps the
job's id:

    job = start_import(engine, upload, settings, user_name="ama", budget_mb=450, owner_token=session)
    get(job.id).progress      # rows done, rows/s, time left (None before the first batch)
    cancel(job.id)            # stops at the next batch: the run ends interrupted, resumable as ever

Every page, tab and server instance reads what is running from the run ledger (`running_runs`), and asks
a run to stop through it (`request_cancel`): the worker looks at the ledger at most once a second.
Plain Python and threads, no Streamlit.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from importer.api import Upload, import_upload
from importer.database.ledger import aware, check_owner, now, owner_alive
from importer.database.loader import CANCEL_REQUEST, Progress
from importer.database.schema import db_errors, import_runs, reading
from importer.errors import ImporterError, NotYours
from importer.identity import Actor
from importer.outcomes.row_errors import RunStatus
from importer.outcomes.run_result import RunResult
from importer.server import governor
from importer.server.governor import GaveUp, Waiting
from importer.settings import Settings
from importer.workspace.resume import check_resume
from importer.workspace.store import discard_workspace

_LOG = logging.getLogger(__name__)

# Finished jobs are kept this long (for the page that started them to pick up the result), and at most
# this many: a RunResult is small, but a server runs for weeks.
KEEP_FINISHED_SECONDS = 600.0
KEEP_FINISHED = 50
# How often a running job looks in the ledger for a cancel request from another tab or instance.
CANCEL_POLL_SECONDS = 1.0


class JobState(StrEnum):
    WAITING = "waiting"  # for a slot of the memory budget
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED = (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


class Cancelled(Exception):  # noqa: N818 - it is what happened, not an error of the caller
    """The import was asked to stop; raised between batches, so its run ends interrupted and resumable."""


@dataclass(eq=False)
class Job:
    """One background import: where it is (state, queue place, progress), and how it ended."""

    id: str
    owner_token: str  # whose it is (a browser session); jobs_for finds them by it
    file_name: str
    rows: int
    user_name: str | None
    state: JobState = JobState.WAITING
    waiting: Waiting | None = None  # the governor's latest word while it waits
    progress: Progress | None = None  # the latest batch's
    run_id: int | None = None  # once the run is created or claimed
    result: RunResult | None = None  # when done
    error: str | None = None  # one line for people, when failed
    # Changes made to the workspace after the run started (so not imported): the workspace was kept for them.
    not_imported: int = 0
    created_at: datetime = field(default_factory=now)
    started_at: datetime | None = None  # when it got its slot and began importing
    finished_at: datetime | None = None
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _ended: float | None = field(default=None, repr=False)  # time.monotonic() when it finished

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    @property
    def position(self) -> int | None:
        """Its 1-based place in the queue for the memory budget while it waits, else None."""
        return self.waiting.position if self.state is JobState.WAITING and self.waiting else None

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job has finished (or timeout); whether it has."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.finished

    def _finish(self, state: JobState, *, result: RunResult | None = None, error: str | None = None) -> None:
        self.result, self.error, self.waiting = result, error, None
        self.finished_at, self._ended = now(), time.monotonic()
        self.state = state  # last: a reader that sees a finished state sees its result too


_jobs: dict[str, Job] = {}
_lock = threading.Lock()


def _prune() -> None:
    """Drop finished jobs older than KEEP_FINISHED_SECONDS, and the oldest beyond KEEP_FINISHED."""
    with _lock:
        clock = time.monotonic()
        done = sorted((j for j in _jobs.values() if j.finished and j._ended is not None), key=lambda j: j._ended or 0)
        old = [j for j in done if clock - (j._ended or clock) > KEEP_FINISHED_SECONDS]
        extra = done[:max(0, len(done) - KEEP_FINISHED)]
        for job in (*old, *extra):
            _jobs.pop(job.id, None)


def start_import(
    engine: sa.Engine, upload: Upload, settings: Settings, *, user_name: str | None, existing: str = "skip",
    blank: str = "keep", rejected: Collection[int] = (), workspace: tuple[int, Sequence[int]] | None = None,
    budget_mb: float, owner_token: str, batch_size: int | None = None,
    on_progress: Callable[[Job, Progress], None] | None = None, cancel_poll_seconds: float = CANCEL_POLL_SECONDS,
    actor: Actor | None = None, confirmed: Collection[int] = (),
) -> Job:
    """Start importing `upload` in a daemon thread (import_upload's arguments); returns its Job at once.

    The thread waits for a slot of the process's memory budget (`budget_mb`, FIFO), then imports. The
    caller may drop the upload: the thread holds it until it ends. `on_progress(job, progress)` runs in
    the thread after each batch (before the cancel checks). `actor`: who imports (importer.identity.Actor):
    an import of another's workspace (or a resume of its run) is refused (NotYours, the job fails with the
    refusal) unless the actor is an admin; the run records the actor's name and how (via).
    """
    _prune()
    job = Job(id=str(uuid.uuid4()), owner_token=owner_token, file_name=upload.file_name,
              rows=int(upload.checked.total), user_name=user_name)
    arguments: dict[str, Any] = {"user_name": user_name, "existing": existing, "blank": blank,
                                 "rejected": tuple(rejected), "workspace": workspace, "batch_size": batch_size,
                                 "via": None if actor is None else actor.via, "confirmed": tuple(confirmed)}
    job._thread = threading.Thread(
        target=_work, args=(job, engine, upload, settings, arguments, max(1.0, float(budget_mb)), on_progress,
                            cancel_poll_seconds, actor),
        name=f"import-{job.id[:8]}", daemon=True)
    with _lock:
        _jobs[job.id] = job
    job._thread.start()
    return job


def _work(job: Job, engine: sa.Engine, upload: Upload, settings: Settings, arguments: dict[str, Any],
          budget_mb: float, on_progress: Callable[[Job, Progress], None] | None, poll: float,
          actor: Actor | None = None) -> None:
    """The thread: a governor slot, then the import; every ending is recorded on the job, never raised."""
    last_poll = [float("-inf")]

    def told(waiting: Waiting) -> None:
        job.waiting = waiting

    def on_run(run_id: int) -> None:
        job.run_id = run_id

    def progress(step: Progress) -> None:
        job.progress = step
        if on_progress is not None:
            on_progress(job, step)
        if job._cancel.is_set():
            raise Cancelled(f"the import of {job.file_name} was cancelled")
        clock = time.monotonic()
        if job.run_id is not None and clock - last_poll[0] >= poll:
            last_poll[0] = clock
            if cancel_requested(engine, job.run_id):
                job._cancel.set()
                raise Cancelled(f"the import of {job.file_name} was cancelled")

    try:
        gov = governor.shared(budget_mb)
        # Charged by the frames' bytes, not their rows: 100,000 rows of long fields cost ten times short ones.
        cost = governor.cost_of_frames(governor.frames_bytes(upload.checked.original, upload.checked.normalised))
        with gov.slot(governor.mb(cost), "import", on_wait=told, give_up=job._cancel.is_set):
            job.waiting, job.started_at = None, now()
            job.state = JobState.RUNNING
            # The workspace's interrupted run resumes with the state it began with (its later changes stay).
            upload, arguments["workspace"] = check_resume(engine, upload, arguments["workspace"], settings,
                                                          actor=actor)
            result = import_upload(engine, upload, settings, progress=progress, on_run=on_run, **arguments)
        job.not_imported = _done_with_workspaces(engine, result.run_id, arguments["workspace"])
        job._finish(JobState.DONE, result=result)
    except (Cancelled, GaveUp):
        job._finish(JobState.CANCELLED)
    except NotYours as exc:  # another's workspace: the refusal says whose and whom to ask; nothing was imported
        job._finish(JobState.FAILED, error=str(exc))
    except ImporterError as exc:  # DatabaseError, RunError...: one line that says what to do
        _LOG.warning("background import %s of %s failed: %s", job.id, job.file_name, exc)
        job._finish(JobState.FAILED, error=f"{exc} The rows imported so far are saved: import the same file "
                                           "again to resume where it stopped.")
    except Exception as exc:  # a bug: the log has the traceback, the analyst a sentence
        _LOG.exception("background import %s of %s failed", job.id, job.file_name)
        job._finish(JobState.FAILED, error=f"The import of {job.file_name} stopped on an unexpected error "
                                           f"({type(exc).__name__}). The rows imported so far are saved: import "
                                           "the same file again to resume; tell the administrator if it recurs.")


def _done_with_workspaces(engine: sa.Engine, run_id: int | None, workspace: tuple[int, Sequence[int]] | None) -> int:
    """A completed run's workspaces are done with: the one it imported, and the one the ledger names (a run
    resumed from History imports its workspace's replay without naming it). Here, not in the page: no tab
    may be left to see the import end (closed, or the run resumed after a restart). A failure only leaves
    the workspace on the analyst's list, and so does a change made after the run started (not imported:
    discard_workspace keeps the workspace and says how many; returned)."""
    ids = {int(workspace[0])} if workspace is not None else set()
    kept = 0
    try:
        if run_id is not None:
            with reading(engine) as conn:
                recorded = conn.execute(sa.select(import_runs.c.workspace_id)
                                        .where(import_runs.c.id == run_id)).scalar()
            if recorded is not None:
                ids.add(int(recorded))
        for workspace_id in sorted(ids):
            kept += discard_workspace(engine, workspace_id)
    except ImporterError as exc:
        _LOG.warning("the workspace(s) %s of completed run %s were not discarded: %s", sorted(ids), run_id, exc)
    return kept


def get(job_id: str) -> Job | None:
    """The job with this id, while the registry keeps it."""
    _prune()
    with _lock:
        return _jobs.get(job_id)


def jobs_for(owner_token: str) -> list[Job]:
    """The jobs an owner (a session) started that the registry keeps, newest first."""
    _prune()
    with _lock:
        mine = [j for j in _jobs.values() if j.owner_token == owner_token]
    return sorted(mine, key=lambda j: j.created_at, reverse=True)


def cancel(job_id: str) -> bool:
    """Ask a job of this process to stop: it leaves the queue, or stops at its next batch. Whether it was
    still going."""
    job = get(job_id)
    if job is None or job.finished:
        return False
    job._cancel.set()
    return True


def forget(job_id: str) -> None:
    """Drop a finished job (its page has taken the result); a job still going is kept."""
    with _lock:
        job = _jobs.get(job_id)
        if job is not None and job.finished:
            del _jobs[job_id]


# --- the ledger: what any tab or instance sees and does ------------------------------------------------


def _valid_id(run_id: int) -> bool:
    return 0 < run_id < 2**31


def cancel_requested(engine: sa.Engine, run_id: int) -> bool:
    """Whether someone asked this run to stop (request_cancel) since it was last started or resumed."""
    if not _valid_id(run_id):
        return False
    with reading(engine) as conn:
        recorded = conn.execute(sa.select(import_runs.c.settings).where(import_runs.c.id == run_id)).scalar()
    return bool(recorded and recorded.get(CANCEL_REQUEST))


def request_cancel(engine: sa.Engine, run_id: int, *, by: str | None = None, actor: Actor | None = None) -> bool:
    """Ask a running run to stop, from any tab or server instance: its worker stops at its next batch
    (within about a second) and the run ends interrupted, resumable. False when it is not running.
    actor: who asks (recorded as `by`); NotYours unless the run is theirs or they are an admin."""
    if actor is not None and _valid_id(run_id):
        with reading(engine) as conn:
            started_by = conn.execute(sa.select(import_runs.c.user_name).where(import_runs.c.id == run_id)).scalar()
        check_owner(engine, actor, started_by, f"cancel run #{run_id}")
        by = by or actor.label
    if not record_cancel_request(engine, run_id, by=by):
        return False
    with _lock:  # a job of this process stops without waiting for its next look at the ledger
        for job in _jobs.values():
            if job.run_id == run_id and not job.finished:
                job._cancel.set()
    return True


def record_cancel_request(engine: sa.Engine, run_id: int, *, by: str | None = None) -> bool:
    """The ledger half of request_cancel (all that another instance's worker sees): whether the run was
    running, so that its worker will find the request."""
    if not _valid_id(run_id):
        return False
    with db_errors(engine), engine.begin() as conn:
        row = conn.execute(sa.select(import_runs.c.status, import_runs.c.settings, import_runs.c.owner,
                                     import_runs.c.heartbeat_at)
                           .where(import_runs.c.id == run_id).with_for_update()).first()
        if row is None or row.status != RunStatus.RUNNING or not owner_alive(conn, run_id, row.owner, row.heartbeat_at):
            return False
        recorded = dict(row.settings or {})
        recorded[CANCEL_REQUEST] = {"at": now().isoformat(), "by": by}
        conn.execute(sa.update(import_runs).where(import_runs.c.id == run_id,
                                                  import_runs.c.status == RunStatus.RUNNING).values(settings=recorded))
    return True


@dataclass(frozen=True)
class RunningRun:
    """A run the ledger says is running, and how fast it goes (from its start and rows done)."""

    run_id: int
    file_name: str
    sha256: str
    sheet: str | None
    user_name: str | None
    rows_done: int
    total: int
    started_at: datetime
    rows_per_second: float
    seconds_left: float | None
    workspace_id: int | None
    cancel_requested: bool


def pace(rows_done: int, total: int, seconds: float) -> tuple[float, float | None]:
    """(rows per second, seconds left) of a run that did rows_done of total in `seconds`."""
    if rows_done <= 0 or seconds <= 0:
        return 0.0, None
    rate = rows_done / seconds
    return rate, max(0, total - rows_done) / rate


def running_runs(engine: sa.Engine) -> list[RunningRun]:
    """The runs running now, on any instance, oldest first: one query (and, on PostgreSQL, one lock probe a
    running run). A run whose owner died is interrupted, so not listed. A resumed run's pace counts from
    its first start, so it reads slow."""
    columns = (import_runs.c.id, import_runs.c.file_name, import_runs.c.sha256, import_runs.c.sheet, import_runs.c.user_name,
               import_runs.c.rows_done, import_runs.c.total_attempted, import_runs.c.started_at,
               import_runs.c.owner, import_runs.c.heartbeat_at, import_runs.c.workspace_id, import_runs.c.settings)
    stmt = sa.select(*columns).where(import_runs.c.status == RunStatus.RUNNING).order_by(import_runs.c.id)
    out: list[RunningRun] = []
    with reading(engine) as conn:
        for row in conn.execute(stmt).all():
            if not owner_alive(conn, row.id, row.owner, row.heartbeat_at):
                continue
            started = aware(row.started_at)
            assert started is not None  # NOT NULL
            rate, left = pace(row.rows_done, row.total_attempted, (now() - started).total_seconds())
            out.append(RunningRun(row.id, row.file_name, row.sha256, row.sheet, row.user_name, row.rows_done,
                                  row.total_attempted, started, rate, left, row.workspace_id,
                                  bool((row.settings or {}).get(CANCEL_REQUEST))))
    return out


__all__ = ["Cancelled", "Job", "JobState", "RunningRun", "cancel", "cancel_requested", "forget", "get",
           "jobs_for", "pace", "record_cancel_request", "request_cancel", "running_runs", "start_import"]
