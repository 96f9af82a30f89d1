"""Server steps: work a page asked for (reading a file, comparing it with the database) that runs in a worker
thread, so that the analyst may open another page meanwhile and nothing is lost.

A page's script dies when the analyst opens another page; a step started here does not. The page keeps
nothing but its owner (the browser session) and asks again on its next run:

    step = start("s1", "read", work, subject="customers.xlsx", slot=partial(gov.slot, cost, "upload"))
    step.fraction, step.phrase    # 0.45, "checking the rows" (work calls step.report(0.45, "checking the rows"))
    done = take("s1", "read")     # the finished step, once: its result (or error) goes to that page
    cancel("s1", "read")          # stops at the work's next report(); the step ends cancelled
    drop_owners(["s1"])           # the session closed: its steps are cancelled and their results freed

`work(step)` runs once the step holds its `slot` (the memory governor's slot, its cost and label bound: the
step waits in turn there, shows the queue through `on_wait`, and leaves it when cancelled). One step of a kind
per owner: starting another cancels and replaces the first. A finished step (done, failed or cancelled) is
kept until its owner takes it or is dropped. Plain Python and threads, no Streamlit.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Hashable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from importer.errors import ImporterError
from importer.server.governor import GaveUp, Waiting
from importer.server.jobs import FINISHED, JobState

_LOG = logging.getLogger(__name__)

# slot(on_wait=..., give_up=...) -> the context manager holding the step's share of the memory budget
# (governor.Governor.slot with its cost and label bound).
Slot = Callable[..., AbstractContextManager[Any]]


# A step goes through the same states as a background import (waiting for its slot of the memory budget,
# running, done, failed, cancelled): one enum for both.
StepState = JobState


class Cancelled(Exception):  # noqa: N818 - it is what happened, not an error of the caller
    """The step was asked to stop; raised by Step.report() inside the work."""


@dataclass(eq=False)
class Step:
    """One piece of server work for one owner: where it is, and how it ended."""

    id: str
    owner: str  # whose it is (a browser session)
    kind: str  # what it does ("read", "compare"): one step of a kind per owner
    subject: str = ""  # what it works on, for people (a file name)
    token: Hashable = None  # what the result is for (e.g. the upload version and choices it was asked for)
    state: StepState = StepState.WAITING
    fraction: float = 0.0  # 0 to 1, never going back
    phrase: str = ""  # what it does now ("checking the rows")
    waiting: Waiting | None = None  # the governor's latest word while it waits
    waited: tuple[Waiting, Waiting] | None = None  # its first and latest word, kept after the wait
    result: Any = None  # when done
    error: BaseException | None = None  # when failed: what the work raised
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _done: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    @property
    def percent(self) -> int:
        """The fraction done as a whole percentage (0 to 100)."""
        return int(self.fraction * 100)

    def report(self, fraction: float, phrase: str | None = None) -> None:
        """Called by the work: how far it is (clamped to 0-1, never lower than before) and what it does
        now. Raises Cancelled when the step was asked to stop (the work's way out)."""
        self.fraction = max(self.fraction, min(1.0, max(0.0, float(fraction))))
        if phrase is not None:
            self.phrase = phrase
        if self._cancel.is_set():
            raise Cancelled(f"{self.kind} of {self.subject} was cancelled")

    def share(self, start: float, end: float, phrase: str | None = None) -> Callable[[int, int], None]:
        """A `progress(done, total)` callback mapping the part done onto [start, end] of the whole step."""
        def progress(done: int, total: int) -> None:
            part = done / total if total > 0 else 1.0
            self.report(start + (end - start) * min(1.0, max(0.0, part)), phrase)
        return progress

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the step has finished (or timeout); whether it has."""
        return self._done.wait(timeout)

    def _finish(self, state: StepState, *, result: Any = None, error: BaseException | None = None) -> None:
        self.result, self.error, self.waiting = result, error, None
        if state is StepState.DONE:
            self.fraction = 1.0
        self.state = state  # a reader that sees a finished state sees its result too
        self._done.set()


_steps: dict[tuple[str, str], Step] = {}
_lock = threading.Lock()


def start(owner: str, kind: str, work: Callable[[Step], Any], *, subject: str = "", token: Hashable = None,
          slot: Slot | None = None, phrase: str = "") -> Step:
    """Run `work(step)` in a daemon thread for `owner`, once `slot` is granted; returns the Step at once.
    A step of the same kind the owner still has is cancelled and replaced (its result is dropped)."""
    step = Step(id=str(uuid.uuid4()), owner=owner, kind=kind, subject=subject, token=token, phrase=phrase)
    step._thread = threading.Thread(target=_work, args=(step, work, slot), name=f"step-{kind}-{step.id[:8]}",
                                    daemon=True)
    with _lock:
        old = _steps.get((owner, kind))
        _steps[(owner, kind)] = step
    if old is not None:
        old._cancel.set()
    step._thread.start()
    return step


def _work(step: Step, work: Callable[[Step], Any], slot: Slot | None) -> None:
    """The thread: the slot, then the work; every ending is recorded on the step, never raised."""
    def told(waiting: Waiting) -> None:
        step.waiting = waiting
        step.waited = (step.waited[0] if step.waited else waiting, waiting)

    try:
        held = slot(on_wait=told, give_up=step._cancel.is_set) if slot is not None else None
        if held is not None:
            with held:
                result = _run(step, work)
        else:
            result = _run(step, work)
        step._finish(StepState.DONE, result=result)
    except (Cancelled, GaveUp):
        step._finish(StepState.CANCELLED)
    except Exception as exc:  # the page turns it into words; a bug's traceback goes to the log
        if not isinstance(exc, ImporterError):
            _LOG.exception("server step %s (%s of %s) failed", step.id, step.kind, step.subject)
        step._finish(StepState.FAILED, error=exc)


def _run(step: Step, work: Callable[[Step], Any]) -> Any:
    step.waiting = None
    step.state = StepState.RUNNING
    step.report(step.fraction)  # cancelled while it waited: stop before the work
    return work(step)


def current(owner: str, kind: str) -> Step | None:
    """The owner's step of this kind (going, or finished and not yet taken), if any."""
    with _lock:
        return _steps.get((owner, kind))


def steps_for(owner: str) -> list[Step]:
    """The owner's steps (going, or finished and not yet taken)."""
    with _lock:
        return [s for (who, _), s in _steps.items() if who == owner]


def take(owner: str, kind: str, step_id: str | None = None) -> Step | None:
    """The owner's finished step of this kind, handed over once (a second take gets None) and forgotten, so
    its result is freed with the caller's reference. None while it is going (or when `step_id` names
    another step)."""
    with _lock:
        step = _steps.get((owner, kind))
        if step is None or not step.finished or (step_id is not None and step.id != step_id):
            return None
        del _steps[(owner, kind)]
        return step


def cancel(owner: str, kind: str) -> bool:
    """Ask the owner's step of this kind to stop and forget it; whether one was still going. The work stops
    at its next report() (or leaves the governor's queue); its result, if it still ends, is dropped."""
    with _lock:
        step = _steps.pop((owner, kind), None)
    if step is None:
        return False
    step._cancel.set()
    return not step.finished


def drop_owners(owners: Iterable[str]) -> None:
    """The owners are gone (their sessions closed): cancel their steps and free their results."""
    gone = set(owners)
    with _lock:
        dropped = [key for key in _steps if key[0] in gone]
        steps = [_steps.pop(key) for key in dropped]
    for step in steps:
        step._cancel.set()


__all__ = ["Cancelled", "Slot", "Step", "StepState", "cancel", "current", "drop_owners", "start",
           "steps_for", "take"]
