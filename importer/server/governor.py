"""One process, one memory budget: heavy steps take a slot of it, in first-come-first-served order.

The dashboard is one Python process shared by every analyst. A heavy step (reading an upload,
re-validating, a bulk fix, a dry run, an import) briefly needs 150-200 MB for 100,000 rows on top of
what the sessions already hold; two at once on a 512 MB host is an out-of-memory kill. So each heavy
step asks the process-wide `Governor` for a slot of its estimated cost (MB) and waits in a FIFO queue
until the running steps leave room:

    gov = shared(settings.memory_budget_mb)
    with gov.slot(mb(cost_of_frames(frame_bytes)), "import", on_wait=show_position):
        run_import(...)

A step is charged by its bytes, estimated before it allocates: reading from the workbook's inflated sizes,
cells and shared strings (cost_to_read), an import, a dry run or a re-check from its frames' size,
their cells' lengths included (cost_of_frames). A read that cannot fit the budget at all is refused before it
allocates, with a message (importer.intake.read_limits), rather than run alone.

While waiting, `on_wait(Waiting)` is called at once, whenever the caller's place changes, and at least
every `heartbeat` seconds (a Streamlit page uses those calls to redraw its status, which is also where
Streamlit stops a script whose tab was closed: the exception leaves the queue cleanly). `give_up()`,
checked as often, lets a caller leave the queue (`GaveUp` is raised). A cost is clamped to the budget,
so a step the budget cannot refuse (an import of frames already read) still runs, alone. Plain Python, no Streamlit: thread-safe, tested
with threads.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

MB = 1024 * 1024
# Measured with bench/bench_dashboard.py (docs/DASHBOARD.md "Memory"): a 100,000-row heavy step raises
# the server's RSS by 150-200 MB over the idle server, about 1.8 kB a row plus a fixed part. The fallback
# for a step that knows only its rows; the costs below are charged by bytes (issue 20: memory grows with
# bytes, a row of 2,000-character cells costs ten times an ordinary one).
BASE_COST_MB = 16.0
MB_PER_ROW = 0.0018
# Bytes a row takes in a file of each format, on the small side (so row estimates err high).
_BYTES_PER_ROW = {"xlsx": 36, "xlsm": 36, "xls": 90, "csv": 60}
_DEFAULT_BYTES_PER_ROW = 36

# Reading a workbook (open, choose the sheet, map, check), measured with bench/hostile_files.py's files and
# bench/workbook.py's (bench/RESULTS.md, "Limits read as the file streams"): python-calamine holds the shared
# strings (about 50 bytes an entry beside its text) and a 32-byte entry a cell; each cell becomes a Python
# string, a row of the table, a value of the frame and of its checked copy. Per cell about 100 bytes beside
# its text, and each byte of text is held about 6.5 times at the peak. The estimate errs high (a cell's text
# is taken as the average shared string's, whatever the cell holds).
READ_BASE_BYTES = 40 * MB
READ_BYTES_PER_CELL = 100
READ_BYTES_PER_SHARED_STRING = 50
READ_TEXT_FACTOR = 6.5
# A CSV's text is held as many times: measured 2026-12-07, a 100,000-row CSV whose mapped columns are all long
# peaked at 272 MB against 203 MB estimated at 4.5 (ordinary rows: 131 MB measured).
READ_TEXT_FACTOR_CSV = 6.5
# Markup around a cell in a sheet's XML (<c r="AB12" t="s"><v>…</v></c>) and around a shared string
# (<si><t>…</t></si>): what is not the cells' text.
XML_BYTES_PER_CELL = 40
XML_BYTES_PER_SHARED_STRING = 16
# An import or dry run over checked frames: the frames' own bytes (pandas' deep memory usage), held about
# six times over while the rows are matched, classified and written in batches, plus a fixed part: 16 MB +
# 6 x 31 MB for the bench's 100,000 rows, the 150-200 MB measured.
STEP_BASE_BYTES = 16 * MB
STEP_FRAME_FACTOR = 6.0


def mb(size_bytes: float) -> float:
    """Bytes -> MB, the unit a slot is charged in."""
    return max(0.0, float(size_bytes)) / MB


# What a search costs while it runs, for the memory governor (measured with 100,000 upload rows: 67 MB
# alone, 219 MB against 97,957 stored customers who are the same people, each then a candidate).
SEARCH_BASE_MB = 16.0
SEARCH_MB_PER_ROW = 0.0007
SEARCH_MB_PER_CUSTOMER = 0.0016


def cost_of_search(rows: int, customers: int) -> float:
    """The MB importer.review.lookalikes.find_possible_duplicates may take over `rows` upload rows and `customers` stored customers."""
    return SEARCH_BASE_MB + max(0, rows) * SEARCH_MB_PER_ROW + max(0, customers) * SEARCH_MB_PER_CUSTOMER


def cost_for_rows(rows: int) -> float:
    """Estimated extra memory (MB) a heavy step over `rows` rows of ordinary width needs while it runs
    (the fallback where a step's bytes are not known: cost_to_read, cost_of_frames)."""
    return BASE_COST_MB + max(0, rows) * MB_PER_ROW


def estimate_rows(size_bytes: int, file_name: str, max_rows: int | None = None) -> int:
    """Rows a file of `size_bytes` probably holds (before reading it), at most `max_rows`."""
    extension = file_name.rsplit(".", 1)[-1].lower() if "." in file_name else ""
    rows = max(0, size_bytes) // _BYTES_PER_ROW.get(extension, _DEFAULT_BYTES_PER_ROW)
    return rows if max_rows is None else min(rows, max_rows)


def cost_to_read(*, cells: int, sheet_bytes: int, shared_strings: int = 0, shared_string_bytes: int = 0) -> int:
    """Bytes reading a workbook's sheet needs at its peak: `cells` cells in `sheet_bytes` of inflated sheet XML,
    with a shared-strings table of `shared_strings` entries in `shared_string_bytes` (inflated). For a CSV,
    sheet_bytes is the file's size and cells its fields (no markup: XML_BYTES_PER_CELL is not taken off)."""
    cells, sheet_bytes = max(0, cells), max(0, sheet_bytes)
    text = float(max(0, sheet_bytes - XML_BYTES_PER_CELL * cells))  # inline strings and numbers in the sheet
    if shared_strings > 0:
        average = max(0, shared_string_bytes - XML_BYTES_PER_SHARED_STRING * shared_strings) / shared_strings
        text += cells * average
    table = READ_BYTES_PER_SHARED_STRING * max(0, shared_strings) + max(0, shared_string_bytes)
    return int(READ_BASE_BYTES + table + READ_BYTES_PER_CELL * cells + READ_TEXT_FACTOR * text)


def cost_to_read_text(*, cells: int, size_bytes: int) -> int:
    """cost_to_read for delimited text: `size_bytes` of it holding `cells` fields (no markup around them)."""
    text = max(0, size_bytes - max(0, cells))  # less one delimiter a field
    return int(READ_BASE_BYTES + READ_BYTES_PER_CELL * max(0, cells) + READ_TEXT_FACTOR_CSV * text)


def cost_of_frames(frame_bytes: int) -> int:
    """Bytes an import or dry run over checked frames of `frame_bytes` (pandas' deep memory usage) needs."""
    return int(STEP_BASE_BYTES + STEP_FRAME_FACTOR * max(0, frame_bytes))


def frames_bytes(*frames: Any) -> int:
    """pandas' deep memory usage of these frames (None skipped), summed: what cost_of_frames takes."""
    return sum(int(frame.memory_usage(deep=True).sum()) for frame in frames if frame is not None)


def rows_within(rows: int, cost_bytes: float, budget_bytes: float) -> int:
    """How many of `rows` rows fit `budget_bytes` when all of them cost `cost_bytes`, rounded down to a round
    number (the fixed part of the cost is spread over the rows, so this errs low); at least 1."""
    if rows <= 0 or cost_bytes <= budget_bytes:
        return max(rows, 0)
    n = int(rows * budget_bytes / cost_bytes)
    step = 1_000 if n >= 10_000 else 100 if n >= 1_000 else 10 if n >= 100 else 1
    return max(1, n // step * step)


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
