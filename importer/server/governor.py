"""One process, one memory budget: heavy steps take a slot of it, in first-come-first-served order.

The dashboard is one Python process shared by every analyst. A heavy step (reading an upload,
re-validating, a bulk fix, a dry run, an import) briefly needs 150-200 MB for 100,000 rows on top of
what the sessions already hold; two at once on a 512 MB host is an out-of-memory kill. So each heavy
step asks the process-wide `Governor` for a slot of its estimated cost (MB) and waits in a FIFO queue
until the running steps leave room:

    gov = shared(settings.memory_budget_mb)
    with gov.slot(cost_for_rows(100_000), "import", on_wait=show_position):
        run_import(...)

While waiting, `on_wait(Waiting)` is called at once, whenever the caller's place changes, and at least
every `heartbeat` seconds (a Streamlit page uses those calls to redraw its status, which is also where
Streamlit stops a script whose tab was closed: the exception leaves the queue cleanly). `give_up()`,
checked as often, lets a caller leave the queue (`GaveUp` is raised). A cost is clamped to the budget,
so a job bigger than the budget still runs, alone. Plain Python, no Streamlit: thread-safe, tested
with threads.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

# Measured with bench/bench_dashboard.py (docs/DASHBOARD.md "Memory"): a 100,000-row heavy step raises
# the server's RSS by 150-200 MB over the idle server, about 1.8 kB a row plus a fixed part.
BASE_COST_MB = 16.0
MB_PER_ROW = 0.0018
# Bytes a row takes in a file of each format, on the small side (so row estimates err high).
_BYTES_PER_ROW = {"xlsx": 36, "xlsm": 36, "xls": 90, "csv": 60}
_DEFAULT_BYTES_PER_ROW = 36


def cost_for_rows(rows: int) -> float:
    """Estimated extra memory (MB) a heavy step over `rows` rows needs while it runs."""
    return BASE_COST_MB + max(0, rows) * MB_PER_ROW


def estimate_rows(size_bytes: int, file_name: str, max_rows: int | None = None) -> int:
    """Rows a file of `size_bytes` probably holds (before reading it), at most `max_rows`."""
    extension = file_name.rsplit(".", 1)[-1].lower() if "." in file_name else ""
    rows = max(0, size_bytes) // _BYTES_PER_ROW.get(extension, _DEFAULT_BYTES_PER_ROW)
    return rows if max_rows is None else min(rows, max_rows)


class GaveUp(Exception):  # noqa: N818 - it is what happened, not an error of the caller
    """The caller's give_up() said so while it waited; it left the queue without running."""


@dataclass(frozen=True)
class Waiting:
    """What a waiting caller is told: how many are ahead of it, and what they are doing."""

    ahead: int  # steps that run or wait before this one: running holders + earlier waiters
    position: int  # 1-based place in the waiting queue
    holder: str | None  # label of the longest-running holder (what the caller mostly waits for)
    running: tuple[str, ...]  # labels of every running holder, oldest first
    waited_s: float  # seconds since this caller started waiting

    def message(self) -> str:
        """'Waiting for another import to finish (1 ahead of you)'."""
        what = self.holder or "step"
        return f"Waiting for another {what} to finish ({self.ahead} ahead of you)"


@dataclass
class _Ticket:
    id: int
    label: str
    cost_mb: float
    granted: bool = False
    started: float = 0.0


@dataclass(frozen=True)
class Status:
    """A snapshot of the governor: budget, MB taken, running labels, waiting labels (in order)."""

    budget_mb: float
    in_use_mb: float
    running: tuple[str, ...]
    waiting: tuple[str, ...]


class Governor:
    """A budget in MB shared by heavy steps; a FIFO queue for the ones that do not fit yet."""

    def __init__(self, budget_mb: float) -> None:
        if budget_mb <= 0:
            raise ValueError(f"memory budget must be positive, not {budget_mb}")
        self._budget = float(budget_mb)
        self._cond = threading.Condition(threading.Lock())
        self._holders: dict[int, _Ticket] = {}  # insertion order = start order
        self._queue: list[_Ticket] = []
        self._ids = itertools.count(1)

    @property
    def budget_mb(self) -> float:
        return self._budget

    def set_budget(self, budget_mb: float) -> None:
        """Change the budget (a new setting); waiters that now fit start."""
        if budget_mb <= 0:
            raise ValueError(f"memory budget must be positive, not {budget_mb}")
        with self._cond:
            self._budget = float(budget_mb)
            self._grant()

    def clamp(self, cost_mb: float) -> float:
        """The cost charged: at least 0, at most the whole budget (so any job can run alone)."""
        return min(max(0.0, float(cost_mb)), self._budget)

    def status(self) -> Status:
        with self._cond:
            return self._status()

    def wait_until(self, predicate: Callable[[Status], bool], timeout: float) -> bool:
        """Block until predicate(status()) holds (re-checked on every change) or timeout; whether it held."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if predicate(self._status()):
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(timeout=left)

    @contextmanager
    def slot(
        self, cost_mb: float, label: str, *, on_wait: Callable[[Waiting], None] | None = None,
        give_up: Callable[[], bool] | None = None, heartbeat: float = 1.0,
    ) -> Iterator[None]:
        """Hold `cost_mb` (clamped to the budget) of the budget for the body; wait in turn first.

        on_wait(Waiting) is called when the wait starts, when the place or the holder changes, and at
        least every `heartbeat` seconds; give_up() is checked as often (GaveUp when it returns True).
        An exception from on_wait leaves the queue and propagates. The slot is released however the
        body ends.
        """
        ticket = self._enter(label, cost_mb)
        try:
            if not ticket.granted:
                self._wait(ticket, on_wait, give_up, heartbeat)
            yield
        finally:
            self._leave(ticket)

    # --- internals (self._cond held where the name says so) ---------------------------------------

    def _status(self) -> Status:
        return Status(self._budget, self._in_use(), tuple(t.label for t in self._holders.values()),
                      tuple(t.label for t in self._queue))

    def _in_use(self) -> float:
        return sum(t.cost_mb for t in self._holders.values())

    def _grant(self) -> None:
        """Start waiters from the head of the queue while they fit (strict FIFO: no overtaking)."""
        changed = False
        while self._queue and self._in_use() + self._queue[0].cost_mb <= self._budget + 1e-9:
            ticket = self._queue.pop(0)
            ticket.granted = True
            ticket.started = time.monotonic()
            self._holders[ticket.id] = ticket
            changed = True
        if changed:
            self._cond.notify_all()

    def _enter(self, label: str, cost_mb: float) -> _Ticket:
        with self._cond:
            ticket = _Ticket(next(self._ids), label, self.clamp(cost_mb))
            self._queue.append(ticket)
            self._grant()
            self._cond.notify_all()  # the others' "ahead" did not change, but the queue did
            return ticket

    def _leave(self, ticket: _Ticket) -> None:
        with self._cond:
            if self._holders.pop(ticket.id, None) is None and ticket in self._queue:
                self._queue.remove(ticket)
            self._grant()
            self._cond.notify_all()

    def _where(self, ticket: _Ticket, since: float) -> Waiting:
        position = self._queue.index(ticket) + 1
        running = tuple(t.label for t in self._holders.values())
        return Waiting(ahead=len(running) + position - 1, position=position,
                       holder=running[0] if running else (self._queue[0].label if position > 1 else None),
                       running=running, waited_s=time.monotonic() - since)

    def _wait(self, ticket: _Ticket, on_wait: Callable[[Waiting], None] | None,
              give_up: Callable[[], bool] | None, heartbeat: float) -> None:
        since = time.monotonic()
        told: tuple[int, str | None] | None = None
        told_at = since
        while True:
            with self._cond:
                if ticket.granted:
                    return
                where = self._where(ticket, since)
            seen = (where.ahead, where.holder)
            now = time.monotonic()
            if on_wait is not None and (seen != told or now - told_at >= heartbeat):
                on_wait(where)  # outside the lock: it may draw a page, or raise to stop waiting
                told, told_at = seen, now
            if give_up is not None and give_up():
                raise GaveUp(f"{ticket.label}: gave up waiting with {where.ahead} ahead")
            with self._cond:
                if ticket.granted:
                    return
                now_where = self._where(ticket, since)
                if (now_where.ahead, now_where.holder) == seen:
                    # Until something changes (a release, a waiter leaving: notify wakes us at once)
                    # or the next heartbeat is due.
                    self._cond.wait(timeout=max(0.01, heartbeat))


_shared: Governor | None = None
_shared_lock = threading.Lock()


def shared(budget_mb: float) -> Governor:
    """The process-wide governor (created on first use); its budget follows the current setting."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Governor(budget_mb)
        elif _shared.budget_mb != budget_mb:
            _shared.set_budget(budget_mb)
        return _shared
