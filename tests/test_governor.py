"""importer.server.governor: heavy steps share one memory budget, in FIFO order, with live positions.

Threads are synchronised with Events (the governor's own on_wait calls and wait_until), never sleeps;
every wait is bounded.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from importer.server import governor
from importer.server.governor import GaveUp, Governor, Waiting, cost_for_rows, estimate_rows
from importer.settings import Settings

TIMEOUT = 20


class Step(threading.Thread):
    """A thread that takes a slot, records every Waiting it is told, then runs until `finish` is set."""

    def __init__(self, gov: Governor, label: str, cost: float, *, log: list[str] | None = None,
                 give_up: Callable[[], bool] | None = None) -> None:
        super().__init__(daemon=True)
        self.gov, self.label, self.cost, self.log, self.give_up_check = gov, label, cost, log, give_up
        self.told: list[Waiting] = []
        self.waiting = threading.Event()  # told at least once
        self.running = threading.Event()  # inside the slot
        self.finish = threading.Event()  # the test lets it leave the slot
        self.told_ahead: dict[int, threading.Event] = {n: threading.Event() for n in range(10)}
        self.error: BaseException | None = None

    def on_wait(self, waiting: Waiting) -> None:
        self.told.append(waiting)
        self.told_ahead[waiting.ahead].set()
        self.waiting.set()

    def run(self) -> None:
        try:
            with self.gov.slot(self.cost, self.label, on_wait=self.on_wait, give_up=self.give_up_check,
                               heartbeat=5):
                if self.log is not None:
                    self.log.append(self.label)
                self.running.set()
                assert self.finish.wait(TIMEOUT), f"{self.label} was never let go"
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            self.error = exc

    def begin(self) -> Step:
        self.start()
        return self

    def end(self) -> None:
        self.finish.set()
        self.join(TIMEOUT)
        assert not self.is_alive(), f"{self.label} did not end"


def waiting_count(n: int) -> Callable[[governor.Status], bool]:
    return lambda status: len(status.waiting) == n


def test_cost_of_rows_and_rows_of_a_file():
    assert cost_for_rows(0) == governor.BASE_COST_MB
    assert 150 <= cost_for_rows(100_000) <= 220  # measured: a 100,000-row step adds 150-200 MB
    assert cost_for_rows(10_000) < cost_for_rows(100_000) / 4
    assert estimate_rows(4_000_000, "customers.xlsx") >= 100_000  # the bench's 100,000-row workbook is 4.0 MB
    assert estimate_rows(4_000_000, "customers.XLSX", max_rows=100_000) == 100_000
    assert estimate_rows(60_000, "c.csv") == 1_000
    assert estimate_rows(0, "c.csv") == 0


def test_setting_default_and_from_env():
    assert Settings().memory_budget_mb == 250
    assert Settings.from_env({}).memory_budget_mb == 250
    assert Settings.from_env({"MEMORY_BUDGET_MB": "600"}).memory_budget_mb == 600
    with pytest.raises(Exception, match="MEMORY_BUDGET_MB"):  # noqa: B017 - ValueError or UsageError
        Settings.from_env({"MEMORY_BUDGET_MB": "lots"})


def test_a_job_bigger_than_the_budget_is_clamped_and_runs_alone():
    gov = Governor(100)
    assert gov.clamp(500) == 100
    assert gov.clamp(-3) == 0
    with gov.slot(500, "import"):
        assert gov.status().in_use_mb == 100
        assert gov.status().running == ("import",)
    assert gov.status().in_use_mb == 0
    with pytest.raises(ValueError):
        Governor(0)


def test_steps_that_fit_run_together_and_one_that_does_not_waits():
    gov = Governor(100)
    with gov.slot(40, "upload"), gov.slot(40, "re-validation"):
        assert gov.status().running == ("upload", "re-validation")
        third = Step(gov, "bulk fix", 40).begin()
        assert third.waiting.wait(TIMEOUT)
        assert not third.running.is_set()
        assert third.told[0].ahead == 2 and third.told[0].holder == "upload"
        assert third.told[0].running == ("upload", "re-validation")
    assert third.running.wait(TIMEOUT)
    third.end()
    assert third.error is None


def test_fifo_order_and_live_positions_with_the_holder_label():
    gov = Governor(100)
    order: list[str] = []
    holder = Step(gov, "import", 100, log=order).begin()
    assert holder.running.wait(TIMEOUT)
    first = Step(gov, "upload", 100, log=order).begin()
    assert first.waiting.wait(TIMEOUT)
    second = Step(gov, "dry run", 100, log=order).begin()
    assert second.waiting.wait(TIMEOUT)
    third = Step(gov, "bulk fix", 100, log=order).begin()
    assert third.waiting.wait(TIMEOUT)
    assert gov.status().waiting == ("upload", "dry run", "bulk fix")

    assert first.told[0].message() == "Waiting for another import to finish (1 ahead of you)"
    assert (second.told[0].ahead, second.told[0].position) == (2, 2)
    assert third.told[0].message() == "Waiting for another import to finish (3 ahead of you)"

    holder.end()  # the import ends: the upload starts, the others move up one place
    assert first.running.wait(TIMEOUT)
    assert third.told_ahead[2].wait(TIMEOUT)
    assert third.told[-1].message() == "Waiting for another upload to finish (2 ahead of you)"
    first.end()
    assert second.running.wait(TIMEOUT)
    assert third.told_ahead[1].wait(TIMEOUT)
    assert third.told[-1].message() == "Waiting for another dry run to finish (1 ahead of you)"
    second.end()
    assert third.running.wait(TIMEOUT)
    third.end()

    assert order == ["import", "upload", "dry run", "bulk fix"]
    assert list(dict.fromkeys(w.ahead for w in third.told)) == [3, 2, 1]  # heartbeats repeat a place
    assert all(step.error is None for step in (holder, first, second, third))
    assert gov.status().in_use_mb == 0 and gov.status().waiting == ()


def test_no_overtaking_a_small_step_waits_behind_a_big_one():
    gov = Governor(100)
    holder = Step(gov, "import", 60).begin()
    assert holder.running.wait(TIMEOUT)
    big = Step(gov, "bulk fix", 60).begin()
    assert big.waiting.wait(TIMEOUT)
    small = Step(gov, "upload", 10).begin()  # 60 + 10 would fit, but the bulk fix came first
    assert small.waiting.wait(TIMEOUT)
    assert small.told[0].ahead == 2
    assert not small.running.is_set()
    holder.end()
    assert big.running.wait(TIMEOUT)
    assert small.running.wait(TIMEOUT)  # 60 + 10 fits now, in turn
    big.end()
    small.end()


def test_the_slot_is_released_when_the_body_raises():
    gov = Governor(100)
    with pytest.raises(ZeroDivisionError), gov.slot(80, "import"):
        _ = 1 / 0
    assert gov.status().in_use_mb == 0
    waiter_done = []
    with gov.slot(80, "upload"):
        waiter_done.append(True)
    assert waiter_done == [True]


def test_a_waiter_that_gives_up_leaves_the_queue_and_the_next_moves_up():
    gov = Governor(100)
    holder = Step(gov, "import", 100).begin()
    assert holder.running.wait(TIMEOUT)
    gone = threading.Event()
    quitter = Step(gov, "upload", 100, give_up=gone.is_set).begin()
    assert quitter.waiting.wait(TIMEOUT)
    behind = Step(gov, "dry run", 100).begin()
    assert behind.waiting.wait(TIMEOUT)
    assert behind.told[0].ahead == 2

    gone.set()  # its session went away
    assert gov.wait_until(waiting_count(1), TIMEOUT)
    quitter.join(TIMEOUT)
    assert isinstance(quitter.error, GaveUp)
    assert not quitter.running.is_set()
    assert gov.status().waiting == ("dry run",)
    assert behind.told_ahead[1].wait(TIMEOUT)  # told it moved up, while the import still runs

    holder.end()
    assert behind.running.wait(TIMEOUT)
    behind.end()
    assert gov.status().in_use_mb == 0


def test_an_exception_from_on_wait_leaves_the_queue():
    gov = Governor(100)
    holder = Step(gov, "import", 100).begin()
    assert holder.running.wait(TIMEOUT)

    class TabClosed(Exception):
        pass

    def stop(_: Waiting) -> None:
        raise TabClosed  # what Streamlit's StopException does when the page redraws

    with pytest.raises(TabClosed), gov.slot(100, "upload", on_wait=stop):
        pytest.fail("must not run")
    assert gov.status().waiting == ()
    holder.end()
    assert gov.status().in_use_mb == 0


def test_many_threads_never_exceed_the_budget_and_all_run():
    gov = Governor(3)
    lock = threading.Lock()
    now = {"in": 0, "max": 0}
    barrier = threading.Barrier(3, timeout=TIMEOUT)  # three at once must be possible
    done: list[int] = []

    def work(i: int) -> None:
        with gov.slot(1, f"step {i}"):
            with lock:
                now["in"] += 1
                now["max"] = max(now["max"], now["in"])
                assert gov.status().in_use_mb <= 3
            barrier.wait()
            with lock:
                now["in"] -= 1
                done.append(i)

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    assert not any(t.is_alive() for t in threads)
    assert sorted(done) == list(range(12))
    assert now["max"] == 3
    assert gov.status() == governor.Status(3.0, 0.0, (), ())


def test_shared_is_one_governor_whose_budget_follows_the_setting():
    first = governor.shared(250)
    assert governor.shared(250) is first
    try:
        assert governor.shared(400) is first and first.budget_mb == 400
    finally:
        governor.shared(250)


def test_raising_the_budget_starts_waiters_that_now_fit():
    gov = Governor(100)
    holder = Step(gov, "import", 100).begin()
    assert holder.running.wait(TIMEOUT)
    waiter = Step(gov, "upload", 50).begin()
    assert waiter.waiting.wait(TIMEOUT)
    gov.set_budget(150)
    assert waiter.running.wait(TIMEOUT)
    waiter.end()
    holder.end()
