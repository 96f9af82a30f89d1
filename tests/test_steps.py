"""importer.server.steps and importer.server.reading: server steps in real threads, on real files and a real
SQLite database: progress as it goes, the result handed over once to its owner, cancel (also while queued for
the memory budget), errors kept for the page, steps of a closed session freed.

Threads are held with Events, never sleeps; every wait is bounded.
"""

from __future__ import annotations

import csv
import io
import logging
import threading
from functools import partial

import pytest

from bench.workbook import customer_workbook
from importer.api import import_upload
from importer.database.customers import classify_upload
from importer.database.schema import make_engine
from importer.errors import MissingColumns
from importer.mapping.profiles import save_profile
from importer.server import governor, reading, steps
from importer.server.reading import read_for_review
from importer.server.steps import Cancelled, Step, StepState
from importer.workspace import store as ws
from tests.support import SETTINGS, ready_engine

TIMEOUT = 60


@pytest.fixture(autouse=True)
def _no_steps_left():
    yield
    going = [s for owner in ("a", "b") for s in steps.steps_for(owner)]
    steps.drop_owners(["a", "b"])
    for step in going:
        step.wait(TIMEOUT)


class Gate:
    """A work function that reports a step's progress, then holds until released; returns `result`."""

    def __init__(self, result: object = "done", fraction: float = 0.45, phrase: str = "checking the rows") -> None:
        self.result, self.fraction, self.phrase = result, fraction, phrase
        self.reached, self.go, self.ran = threading.Event(), threading.Event(), threading.Event()
        self.returned = threading.Event()

    def __call__(self, step: Step) -> object:
        self.ran.set()
        step.report(self.fraction, self.phrase)
        self.reached.set()
        assert self.go.wait(TIMEOUT)
        step.report(0.9)  # where a cancelled step stops
        self.returned.set()
        return self.result


def test_a_step_runs_in_a_thread_reports_progress_and_hands_its_result_over_once():
    gate = Gate(result={"rows": 100_000})
    step = steps.start("a", "read", gate, subject="customers.xlsx")
    assert gate.reached.wait(TIMEOUT)
    assert step.state is StepState.RUNNING and not step.finished
    assert (step.fraction, step.percent, step.phrase) == (0.45, 45, "checking the rows")
    assert steps.current("a", "read") is step and steps.steps_for("a") == [step]
    assert steps.take("a", "read") is None  # still going: nothing to hand over
    assert steps.current("b", "read") is None and steps.steps_for("b") == []  # another session sees none
    gate.go.set()
    assert step.wait(TIMEOUT)
    assert step.state is StepState.DONE and step.fraction == 1.0
    assert steps.take("b", "read") is None  # not its owner's
    taken = steps.take("a", "read")
    assert taken is step and taken.result == {"rows": 100_000}
    assert steps.take("a", "read") is None and steps.current("a", "read") is None  # once, then forgotten


def test_only_one_of_two_pages_taking_at_once_gets_the_result():
    for _ in range(20):
        step = steps.start("a", "read", lambda s: "result")
        assert step.wait(TIMEOUT)
        got: list[Step | None] = []
        together = threading.Barrier(2)

        def take(into: list[Step | None] = got, barrier: threading.Barrier = together) -> None:
            barrier.wait(TIMEOUT)
            into.append(steps.take("a", "read"))

        threads = [threading.Thread(target=take) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIMEOUT)
        assert sorted(g is not None for g in got) == [False, True]


def test_take_by_id_leaves_a_newer_step_alone():
    old = steps.start("a", "compare", lambda s: "old", token=1)
    assert old.wait(TIMEOUT)
    gate = Gate()
    new = steps.start("a", "compare", gate, token=2)
    assert gate.reached.wait(TIMEOUT)
    assert steps.take("a", "compare", old.id) is None and steps.current("a", "compare") is new
    gate.go.set()
    assert new.wait(TIMEOUT) and steps.take("a", "compare", new.id) is new


def test_cancel_stops_the_work_at_its_next_report_and_drops_the_step():
    gate = Gate()
    step = steps.start("a", "read", gate)
    assert gate.reached.wait(TIMEOUT)
    assert steps.cancel("a", "read") is True
    assert steps.current("a", "read") is None  # forgotten at once: a page sees nothing going
    gate.go.set()
    assert step.wait(TIMEOUT)
    assert step.state is StepState.CANCELLED and step.result is None and not gate.returned.is_set()
    assert steps.cancel("a", "read") is False


def test_a_new_step_of_the_same_kind_replaces_and_cancels_the_first():
    first, second = Gate(result="first"), Gate(result="second")
    one = steps.start("a", "read", first)
    assert first.reached.wait(TIMEOUT)
    two = steps.start("a", "read", second)
    first.go.set()
    assert one.wait(TIMEOUT) and one.state is StepState.CANCELLED
    second.go.set()
    assert two.wait(TIMEOUT)
    assert steps.take("a", "read") is two and two.result == "second"


def test_a_step_waits_its_turn_for_the_memory_budget_and_can_leave_the_queue():
    gov = governor.Governor(100)
    holding, release = threading.Event(), threading.Event()

    def other_analyst() -> None:
        with gov.slot(100, "import"):
            holding.set()
            assert release.wait(TIMEOUT)

    holder = threading.Thread(target=other_analyst, daemon=True)
    holder.start()
    assert holding.wait(TIMEOUT)
    try:
        gate, told = Gate(), threading.Event()

        def slot(on_wait, give_up):  # governor.Governor.slot, noting when the step was told its place
            return gov.slot(50, "upload", on_wait=lambda w: (on_wait(w), told.set()), give_up=give_up)

        queued = steps.start("a", "read", gate, slot=slot)
        assert told.wait(TIMEOUT) and gov.status().waiting == ("upload",)
        assert queued.state is StepState.WAITING and not gate.ran.is_set()
        # The queue's word reaches the step (the page shows it); then it leaves the queue without running.
        assert queued.waiting is not None
        assert queued.waiting.message() == "Waiting for another import to finish (1 ahead of you)"
        steps.cancel("a", "read")
        assert queued.wait(TIMEOUT) and queued.state is StepState.CANCELLED and not gate.ran.is_set()
        assert gov.status().waiting == ()
        # A step queued behind the import runs as soon as it ends, and says how long it waited.
        waiting = steps.start("b", "read", lambda s: "read", slot=partial(gov.slot, 50, "upload"))
        assert gov.wait_until(lambda s: s.waiting == ("upload",), TIMEOUT)
    finally:
        release.set()
    holder.join(TIMEOUT)
    assert waiting.wait(TIMEOUT) and waiting.state is StepState.DONE
    assert waiting.waited is not None and waiting.waited[0].holder == "import"
    assert gov.status().in_use_mb == 0


def test_errors_are_kept_for_the_page_and_only_bugs_are_logged(caplog):
    caplog.set_level(logging.ERROR, logger="importer.server.steps")
    refused = MissingColumns("The file has no Phone column", sheet="Customers")

    def refuse(step: Step) -> None:
        raise refused

    def bug(step: Step) -> None:
        raise KeyError("phone")

    one = steps.start("a", "read", refuse, subject="customers.xlsx")
    two = steps.start("a", "compare", bug, subject="customers.xlsx")
    assert one.wait(TIMEOUT) and two.wait(TIMEOUT)
    assert one.state is StepState.FAILED and one.error is refused
    assert two.state is StepState.FAILED and isinstance(two.error, KeyError)
    logged = [r for r in caplog.records if r.name == "importer.server.steps"]
    assert len(logged) == 1 and logged[0].exc_info is not None and "compare of customers.xlsx" in logged[0].getMessage()


def test_a_closed_sessions_steps_are_cancelled_and_freed():
    mine, theirs = Gate(), Gate()
    step = steps.start("a", "read", mine)
    other = steps.start("b", "read", theirs)
    done = steps.start("a", "compare", lambda s: "a big result")
    assert mine.reached.wait(TIMEOUT) and theirs.reached.wait(TIMEOUT) and done.wait(TIMEOUT)
    steps.drop_owners(["a"])
    assert steps.steps_for("a") == [] and steps.take("a", "compare") is None
    assert steps.current("b", "read") is other
    mine.go.set()
    theirs.go.set()
    assert step.wait(TIMEOUT) and step.state is StepState.CANCELLED
    assert other.wait(TIMEOUT) and other.state is StepState.DONE


def test_report_never_goes_back_and_share_maps_a_part_onto_the_step():
    step = Step(id="s", owner="a", kind="compare")
    step.report(0.5, "reading")
    step.report(0.2)
    assert (step.fraction, step.phrase) == (0.5, "reading")
    part = step.share(0.5, 1.0, "comparing")
    part(50, 100)
    assert (step.fraction, step.phrase) == (0.75, "comparing")
    part(100, 0)
    assert step.fraction == 1.0
    step._cancel.set()
    with pytest.raises(Cancelled):
        step.report(1.0)


# --- reading a file as one step: real files, real SQLite ------------------------------------------------


class Recorded(Step):
    """A step that keeps every report (fraction, phrase)."""

    def __init__(self) -> None:
        super().__init__(id="r", owner="a", kind="read", subject="customers.xlsx")
        self.seen: list[tuple[float, str]] = []

    def report(self, fraction: float, phrase: str | None = None) -> None:
        super().report(fraction, phrase)
        self.seen.append((self.fraction, self.phrase))


def test_reading_a_workbook_checks_it_keeps_it_as_a_workspace_and_reports_as_it_goes(sqlite_url):
    engine = ready_engine(sqlite_url)
    data = customer_workbook(400, seed=5)
    step = Recorded()
    outcome = read_for_review(engine, data, "customers.xlsx", SETTINGS, owner="ama", step=step)
    assert outcome.refused is None and outcome.upload is not None and outcome.not_saved is None
    assert outcome.upload.checked.total == 400 and 0 < len(outcome.upload.checked.errors) < 40
    fractions = [f for f, _ in step.seen]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] >= reading.CHECK_END
    assert [p for _, p in step.seen][:3] == ["reading the file", "checking 400 rows", "checked 400 rows"]
    assert outcome.workspace is not None and outcome.workspace.owner == "ama"
    stored = ws.load_workspace(engine, outcome.workspace.id, SETTINGS, seqs=())
    assert stored.info.rows == 400 and stored.info.sha256 == outcome.upload.sha256


def test_a_file_without_a_required_column_is_refused_with_its_detected_mapping(sqlite_url):
    engine = ready_engine(sqlite_url)
    outcome = read_for_review(engine, _csv(["Shipping Mark", "First Name", "Surname", "Region"],
                                           [["PM1 KOFI", "Kofi", "Mensah", "Ashanti"]]),
                              "customers.csv", SETTINGS, owner="ama")
    assert outcome.upload is None and isinstance(outcome.refused, MissingColumns)
    assert outcome.refused.mapping is not None and outcome.workspace is None
    assert ws.list_workspaces(engine, "ama") == []


def test_a_remembered_mapping_is_used_and_named(sqlite_url):
    engine = ready_engine(sqlite_url)
    headers = ["Mark", "Given", "Family", "Mail", "Cell", "Area"]
    rows = [["PM1 KOFI", "Kofi", "Mensah", "kofi@example.com", "0241234567", "Ashanti"]]
    first = read_for_review(engine, _csv(headers, rows), "kumasi.csv", SETTINGS, owner="ama")
    assert isinstance(first.refused, MissingColumns)  # these headers are not recognised...
    mapping = first.refused.mapping
    assert mapping is not None
    profile = save_profile(engine, mapping.with_fields(
        ("shipping_mark", "first_name", "last_name", "email", "phone", "region")), name="Kumasi branch")
    again = read_for_review(engine, _csv(headers, rows), "kumasi-nov.csv", SETTINGS, owner="ama")
    assert again.upload is not None and again.upload.checked.total == 1 and not again.upload.checked.errors
    assert again.profile is not None and again.profile.id == profile.id
    assert again.detected is not None and again.detected.fields == mapping.fields  # ...until one is saved
    assert again.workspace is not None


def test_a_database_that_cannot_be_reached_leaves_the_file_read_but_not_saved():
    gone = make_engine("postgresql+psycopg2://root@127.0.0.1:9/nowhere?connect_timeout=2")  # nothing listens
    outcome = read_for_review(gone, customer_workbook(50), "customers.xlsx", SETTINGS, owner="ama")
    assert outcome.upload is not None and outcome.upload.checked.total == 50
    assert outcome.workspace is None and outcome.not_saved


def test_a_read_step_cancelled_before_it_starts_reads_nothing(sqlite_url):
    engine = ready_engine(sqlite_url)
    step = Step(id="r", owner="a", kind="read")
    step._cancel.set()
    with pytest.raises(Cancelled):
        read_for_review(engine, customer_workbook(50), "customers.xlsx", SETTINGS, owner="ama", step=step)


def test_classify_upload_reports_each_chunk_and_stops_when_its_step_is_cancelled(sqlite_url):
    engine = ready_engine(sqlite_url)
    checked = read_for_review(engine, customer_workbook(500), "c.xlsx", SETTINGS, owner="ama").upload
    assert checked is not None
    import_upload(engine, checked, SETTINGS)  # a database with customers: the chunked path
    seen: list[tuple[int, int]] = []
    classify_upload(engine, checked.checked, chunk=100, progress=lambda done, total: seen.append((done, total)))
    valid = len(checked.checked.valid_index())
    assert seen == [(min(n, valid), valid) for n in range(100, valid + 100, 100)]
    step = Step(id="c", owner="a", kind="compare")

    def stop_after_two(done: int, total: int) -> None:
        step.share(0.0, 1.0)(done, total)
        if done >= 200:
            step._cancel.set()

    with pytest.raises(Cancelled):
        classify_upload(engine, checked.checked, chunk=100, progress=stop_after_two)
    assert 0.0 < step.fraction < 1.0


def _csv(headers: list[str], rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(headers)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def test_the_pages_words_for_a_step_as_it_goes():
    from ui.steps import COMPARE, READ, line, waited_line

    step = Step(id="r", owner="a", kind=READ, subject="customers_100000.xlsx")
    assert line(step) == r"Still reading customers\_100000.xlsx: waiting for a turn. It starts by itself."
    step.waiting = governor.Waiting(ahead=1, position=1, holder="import", running=("import",), waited_s=3.0)
    step.waited = (step.waiting, step.waiting)
    assert line(step) == (r"Still reading customers\_100000.xlsx: waiting for another import to finish (1 ahead "
                          "of you). It starts by itself.")
    step.state = StepState.RUNNING
    step.report(0.456, "checking 100,000 rows")
    assert line(step) == r"Still reading customers\_100000.xlsx (45%): checking 100,000 rows"
    assert line(step, here=True) == r"Reading and checking customers\_100000.xlsx (45%): checking 100,000 rows"
    assert waited_line(step) == "Waited 3 s for another import to finish."
    compare = Step(id="c", owner="a", kind=COMPARE, subject="c.xlsx", state=StepState.RUNNING, fraction=0.5)
    assert line(compare) == "Still comparing the rows of c.xlsx with the customers already in the database (50%)"
    assert waited_line(compare) is None
