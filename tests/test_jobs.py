"""importer.server.jobs: imports in a worker thread, their progress in the ledger, cancel (here and from another
instance), resume after it, the queue for the memory budget, and workspaces; on real SQLite and PostgreSQL.

Threads are paused at a batch with Events (the job's on_progress hook), never sleeps; every wait is bounded.
"""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa

from importer.api import Upload, import_upload, read_upload
from importer.database.ledger import find_resumable, get_run
from importer.database.loader import Progress
from importer.database.schema import make_engine
from importer.outcomes.row_errors import RunStatus
from importer.outcomes.run_result import RunResult
from importer.review import operations as op_kinds
from importer.server import jobs
from importer.server.jobs import Job, JobState
from importer.workspace import resume as ws_resume
from importer.workspace import store as ws
from tests.support import SETTINGS, ready_engine

TIMEOUT = 60
ROWS = 60
BATCH = 10
HEADERS = ["Shipping Mark", "First Name", "Last Name", "Email", "Phone", "Region"]


def csv_file(count: int = ROWS, first: int = 0, region: str = "Ashanti") -> bytes:
    """A branch list with two bad phones and one mark repeated, so some rows fail."""
    rows = [[f"pm{i} kofi", "Kofi", f"Mensah{i}", f"kofi{i}@example.com", f"024{i:07d}", region]
            for i in range(first, first + count)]
    rows[3][4] = "54123"
    rows[8][4] = "12"
    rows[5][0] = rows[1][0]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADERS)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def upload_of(data: bytes, name: str = "kumasi.csv") -> Upload:
    return read_upload(data, name, SETTINGS)


class Pause:
    """An on_progress hook that holds the worker after the batch that reaches `at` rows, until released."""

    def __init__(self, at: int) -> None:
        self.at = at
        self.reached = threading.Event()
        self.go = threading.Event()

    def __call__(self, job: Job, progress: Progress) -> None:
        if progress.rows_done == self.at:
            self.reached.set()
            assert self.go.wait(TIMEOUT), "the test never let the worker go"

    def hold(self) -> None:
        assert self.reached.wait(TIMEOUT), f"the import never reached {self.at} rows"


def start(engine: sa.Engine, upload: Upload, *, on_progress: Callable[[Job, Progress], None] | None = None,
          budget_mb: float = 10_000, owner: str = "tab-1", **kwargs) -> Job:
    return jobs.start_import(engine, upload, SETTINGS, user_name="ama", budget_mb=budget_mb, owner_token=owner,
                             batch_size=BATCH, on_progress=on_progress, **kwargs)


def finished(job: Job) -> Job:
    assert job.wait(TIMEOUT), f"job {job.id} ({job.state}) did not finish"
    return job


def until(condition: Callable[[], bool]) -> None:
    """Wait (bounded) for a condition another thread makes true."""
    tick = threading.Event()
    for _ in range(int(TIMEOUT / 0.01)):
        if condition():
            return
        tick.wait(0.01)
    raise AssertionError("the condition never held")


def counts(result: RunResult) -> tuple:
    return (result.total_attempted, result.total_created, result.total_failed, result.total_updated,
            result.total_unchanged, dict(result.failure_codes))


def customers(engine: sa.Engine) -> tuple[int, int]:
    """(customers, distinct shipping marks)."""
    with engine.connect() as conn:
        return tuple(conn.execute(sa.text("SELECT count(*), count(DISTINCT shipping_mark) FROM customers")).one())


@pytest.fixture(autouse=True)
def _no_jobs_left() -> Iterator[None]:
    yield
    with jobs._lock:
        left = [j for j in jobs._jobs.values() if not j.finished]
    for job in left:
        job._cancel.set()
        job.wait(TIMEOUT)
    assert not left, "a test left a job running"


def test_a_background_import_counts_like_a_foreground_one(database_url: str) -> None:
    engine = ready_engine(database_url)
    upload = upload_of(csv_file())
    dry = import_upload(engine, upload, SETTINGS, dry_run=True, batch_size=BATCH)
    job = finished(start(engine, upload))
    assert job.state is JobState.DONE and job.error is None
    assert job.result is not None and counts(job.result) == counts(dry)
    assert job.run_id == job.result.run_id and get_run(engine, job.run_id).status is RunStatus.COMPLETED
    assert job.result.total_failed == 3 and customers(engine) == (ROWS - 3,) * 2
    assert job.progress is not None and job.progress.rows_done == job.progress.total == ROWS
    assert job.started_at is not None and job.finished_at is not None and job.created_at <= job.started_at
    assert jobs.get(job.id) is job and jobs.jobs_for("tab-1")[0] is job and jobs.jobs_for("tab-2") == []
    assert jobs.running_runs(engine) == []


def test_progress_is_read_from_the_ledger_by_another_engine(database_url: str) -> None:
    engine = ready_engine(database_url)
    pause = Pause(at=20)
    upload = upload_of(csv_file())
    job = start(engine, upload, on_progress=pause)
    pause.hold()
    other = make_engine(database_url)  # another tab's session or another server instance
    try:
        (run,) = jobs.running_runs(other)
        assert (run.run_id, run.file_name, run.sha256, run.user_name, run.rows_done, run.total) == (
            job.run_id, "kumasi.csv", upload.sha256, "ama", 20, ROWS)
        assert run.rows_per_second > 0 and run.seconds_left is not None and not run.cancel_requested
        assert job.state is JobState.RUNNING and job.progress is not None and job.progress.rows_done == 20
        pause.go.set()
        assert finished(job).state is JobState.DONE
        assert jobs.running_runs(other) == []
    finally:
        pause.go.set()
        other.dispose()


@pytest.mark.parametrize("how", ["this process", "the ledger"])
def test_a_cancelled_run_is_interrupted_and_resuming_it_accounts_for_every_row(database_url: str, how: str) -> None:
    engine = ready_engine(database_url)
    upload = upload_of(csv_file())
    dry = import_upload(engine, upload, SETTINGS, dry_run=True, batch_size=BATCH)
    pause = Pause(at=20)
    job = start(engine, upload, on_progress=pause, cancel_poll_seconds=0)
    pause.hold()
    other = make_engine(database_url)
    try:
        if how == "this process":
            assert jobs.cancel(job.id) and job.cancel_requested
        else:  # what another instance does: the worker finds the request at its next look
            assert jobs.record_cancel_request(other, job.run_id, by="kwame")
            assert not job.cancel_requested and jobs.running_runs(other)[0].cancel_requested
        pause.go.set()
        assert finished(job).state is JobState.CANCELLED and job.result is None and job.error is None
    finally:
        pause.go.set()
        other.dispose()
    assert job.run_id is not None
    run = get_run(engine, job.run_id)
    assert (run.status, run.rows_done) == (RunStatus.INTERRUPTED, 20)
    assert jobs.request_cancel(engine, job.run_id) is False  # not running any more
    resumable = find_resumable(engine, upload.sha256, upload.run_sheet)
    assert resumable is not None and resumable.id == job.run_id

    again = finished(start(engine, upload))  # the same upload, as the page would send it again
    assert again.state is JobState.DONE and again.result is not None
    assert again.result.resumed and again.result.run_id == job.run_id
    assert counts(again.result) == counts(dry)
    assert again.result.total_created + again.result.total_failed == ROWS
    assert customers(engine) == (again.result.total_created,) * 2  # nobody created twice
    assert not jobs.cancel_requested(engine, job.run_id)  # the resume dropped the request
    assert get_run(engine, job.run_id).status is RunStatus.COMPLETED


def test_a_second_job_waits_for_the_memory_budget_and_says_where_it_is(database_url: str) -> None:
    engine = ready_engine(database_url)
    pause = Pause(at=10)
    first = start(engine, upload_of(csv_file()), on_progress=pause, budget_mb=1)  # any import takes it all
    pause.hold()
    try:
        second = start(engine, upload_of(csv_file(first=1000), "tema.csv"), budget_mb=1, owner="tab-2")
        third = start(engine, upload_of(csv_file(first=2000), "accra.csv"), budget_mb=1, owner="tab-3")
        until(lambda: second.waiting is not None and third.waiting is not None and third.waiting.ahead == 2)
        assert (second.state, second.position, second.run_id) == (JobState.WAITING, 1, None)
        assert second.waiting is not None and second.waiting.message() == (
            "Waiting for another import to finish (1 ahead of you)")
        assert third.position == 2
        assert jobs.cancel(third.id)  # leaves the queue without a run
        assert finished(third).state is JobState.CANCELLED and third.run_id is None and third.started_at is None
        assert second.state is JobState.WAITING
    finally:
        pause.go.set()
    assert finished(first).state is JobState.DONE
    assert finished(second).state is JobState.DONE and second.position is None
    assert second.result is not None and second.result.total_created == ROWS - 3
    assert not jobs.cancel(second.id)  # finished: nothing to cancel


def test_a_run_from_a_workspace_records_it_and_resumes_from_it(database_url: str) -> None:
    engine = ready_engine(database_url)
    data = csv_file(region="")
    read = upload_of(data)
    workspace_id = ws.create_workspace(engine, "ama", data, "kumasi.csv", SETTINGS, read.sheet, read.mapping,
                                       rows=read.checked.total)
    opened = ws.perform(engine, ws.open_workspace(engine, workspace_id, SETTINGS), op_kinds.BulkFix("region", "VOLTA"),
                        SETTINGS)
    pause = Pause(at=20)
    job = start(engine, opened.upload, on_progress=pause, workspace=(opened.info.id, opened.seqs))
    pause.hold()
    jobs.cancel(job.id)
    pause.go.set()
    assert finished(job).state is JobState.CANCELLED and job.run_id is not None

    def recorded() -> tuple:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT workspace_id FROM import_runs WHERE id = :r"), {"r": job.run_id}).one()

    assert recorded() == (workspace_id,)
    assert get_run(engine, job.run_id).settings["workspace_operations"] == list(opened.seqs) == [1]
    upload = ws_resume.upload_for_workspace_resume(engine, job.run_id, SETTINGS)  # no file needed
    again = finished(start(engine, upload, workspace=(opened.info.id, opened.seqs)))
    assert again.result is not None and again.result.resumed and again.result.run_id == job.run_id
    assert recorded() == (workspace_id,)
    with engine.connect() as conn:
        regions = dict(conn.execute(sa.text("SELECT region, count(*) FROM customers GROUP BY region")).all())
    assert regions == {"VOLTA": again.result.total_created}


def test_a_failed_job_says_why_in_one_line(tmp_path) -> None:
    upload = upload_of(csv_file())
    engine = make_engine(f"sqlite:///{tmp_path / 'no such folder' / 'customers.db'}")
    job = finished(start(engine, upload))
    assert job.state is JobState.FAILED and job.result is None and job.error is not None
    assert "\n" not in job.error and "Traceback" not in job.error
    assert job.error.startswith("Cannot reach the database at SQLite file ")
    assert "import the same file again to resume" in job.error


def test_finished_jobs_are_dropped_after_a_while(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = ready_engine(sqlite_url)
    job = finished(start(engine, upload_of(csv_file(12))))
    assert jobs.get(job.id) is job
    monkeypatch.setattr(jobs, "KEEP_FINISHED", 0)
    assert jobs.get(job.id) is None and jobs.jobs_for("tab-1") == []
    monkeypatch.setattr(jobs, "KEEP_FINISHED", 50)
    kept = finished(start(engine, upload_of(csv_file(12, first=500), "tema.csv")))
    jobs.forget(kept.id)
    assert jobs.get(kept.id) is None


def test_a_running_row_whose_owner_is_gone_is_not_shown_as_running(database_url: str) -> None:
    engine = ready_engine(database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO import_runs (file_name, sha256, status, started_at, heartbeat_at, owner, "
                             "total_attempted, rows_done) VALUES ('old.csv', 'x', 'running', :t, :t, :o, 10, 4)"),
                     {"t": "2020-01-01 00:00:00", "o": "a-host-that-is-gone:1"})
        run_id = conn.execute(sa.text("SELECT max(id) FROM import_runs")).scalar_one()
    assert jobs.running_runs(engine) == []
    assert jobs.request_cancel(engine, run_id) is False
    assert jobs.request_cancel(engine, 2**40) is False and not jobs.cancel_requested(engine, -1)


@pytest.mark.parametrize(("rows_done", "total", "seconds", "expected"), [
    (36_000, 100_000, 7.0, (36_000 / 7, 64_000 / (36_000 / 7))),
    (100, 100, 2.0, (50.0, 0.0)),
    (0, 100, 5.0, (0.0, None)),
    (10, 100, 0.0, (0.0, None)),
])
def test_pace(rows_done: int, total: int, seconds: float, expected: tuple) -> None:
    rate, left = jobs.pace(rows_done, total, seconds)
    assert rate == pytest.approx(expected[0])
    assert left == (None if expected[1] is None else pytest.approx(expected[1]))
