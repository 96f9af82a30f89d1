"""Slowing down password guessing at the dashboard's gate: one thread-safe throttle per gate and process.

Plain Python (no Streamlit): the dashboard (ui/auth.py) passes a *client key* and asks before it compares
a password. The key is the client's IP address when Streamlit knows it (st.context.ip_address), else a
token kept in the session's state (one browser tab's connection).

The policy
----------
Per client (a key), counting its wrong passwords in a row ("the streak"):

- The first FREE_FAILURES (4) wrong passwords cost nothing: typos happen.
- Every further one makes the client wait before its next attempt is even checked: 1 s after the 5th,
  then 2, 4, 8, 16 s... (doubling, never more than the lock-out).
- The LOGIN_MAX_FAILURES-th (10th) wrong password locks the client out for LOGIN_LOCKOUT_MINUTES (15):
  every attempt is refused, unchecked, with "Too many wrong passwords from this browser; try again in
  N minutes". The right password too: a guesser must not learn that a guess was right.
- A streak is forgotten LOGIN_LOCKOUT_MINUTES after its last wrong password (so a lock-out ends with a
  clean slate), and at once by a right password: a user who got in starts from zero next time.
- Every attempt counts as wrong from the moment it is let through until the dashboard reports it right
  (`succeeded`), so attempts fired in parallel from one client cannot slip past the limits together.

Server-wide (all clients together), for many clients guessing at once (a botnet, or one attacker opening
session after session when the IP address is unknown):

- When LOGIN_SERVER_MAX_FAILURES (50) wrong passwords have come in within LOGIN_LOCKOUT_MINUTES, the
  gate is *busy*: every client, including ones that never failed, must let SERVER_DELAY_SECONDS (5 s)
  pass between its attempts, counted from its previous attempt or, for its first one, from when its
  login form was first shown (`wait`). A person who opens the form and types a name and a password
  takes longer than that, so is not slowed at all; a script that submits as fast as it can is held to
  one guess per client every 5 s.
- The server-wide count never locks anybody out and never refuses a client for the others' mistakes
  beyond that short spacing: a user who types the right password gets in, whatever other clients do.
  Only a client's own streak locks it out.

Limits of the approach, stated plainly: clients that share one IP address (an office behind NAT, or
every client when a reverse proxy's address is all Streamlit sees — see FORWARDED_ALLOW_IPS of uvicorn)
share one key, so one of them guessing locks the others out; and nothing here stops a patient attacker
with many addresses. A long random APP_PASSWORD (render.yaml generates one) or single sign-on is the
real protection; this throttle makes guessing slow.

Memory is bounded: clients idle for a window are dropped, at most MAX_CLIENTS are kept (the longest idle
go first), and the server-wide count keeps at most LOGIN_SERVER_MAX_FAILURES time stamps.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

from importer.settings import Settings

FREE_FAILURES = 4
SERVER_DELAY_SECONDS = 5.0
MAX_CLIENTS = 10_000

LOCKOUT = "lockout"  # this client's own streak: refused until the lock-out ends
DELAY = "delay"  # this client's own streak: the growing delay
BUSY = "busy"  # the server-wide count: the short spacing every client keeps


@dataclass(frozen=True)
class Limits:
    max_failures: int = 10
    lockout_minutes: float = 15
    server_max_failures: int = 50
    free_failures: int = FREE_FAILURES
    server_delay_seconds: float = SERVER_DELAY_SECONDS

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(max_failures=max(1, settings.login_max_failures),
                   lockout_minutes=max(1, settings.login_lockout_minutes),
                   server_max_failures=max(1, settings.login_server_max_failures))

    @property
    def window(self) -> float:
        """Seconds: how long a lock-out lasts, and how long a wrong password is remembered."""
        return self.lockout_minutes * 60.0

    def delay_after(self, failures: int) -> float:
        """Seconds a client waits after its failures-th wrong password in a row (0 for the free ones)."""
        if failures <= self.free_failures:
            return 0.0
        return min(2.0 ** min(failures - self.free_failures - 1, 62), self.window)


def _duration(seconds: float) -> str:
    """'8 seconds', '1 second', '4 minutes' (rounded up: never tells a client to come back too early)."""
    seconds = round(seconds, 3)  # clock arithmetic: (t + 900) - t may be 900.0000000000001, not "16 minutes"
    if seconds > 60:
        minutes = math.ceil(seconds / 60)
        return f"{minutes} minute{'' if minutes == 1 else 's'}"
    whole = max(1, math.ceil(seconds))
    return f"{whole} second{'' if whole == 1 else 's'}"


@dataclass(frozen=True)
class Wait:
    """Why a client may not try a password now, and for how long."""

    reason: str  # LOCKOUT, DELAY or BUSY
    seconds: float

    @property
    def message(self) -> str:
        when = _duration(self.seconds)
        if self.reason == LOCKOUT:
            return f"Too many wrong passwords from this browser; try again in {when}."
        if self.reason == DELAY:
            return f"Several wrong passwords in a row: wait {when} before the next try."
        return (f"Many wrong passwords are being tried on this dashboard, so every sign-in is slowed down: "
                f"try again in {when}.")


@dataclass
class _Client:
    first_seen: float
    last_attempt: float | None = None
    failures: int = 0  # the streak: wrong passwords in a row, attempts in flight included
    last_failure: float = 0.0
    locked_until: float = 0.0

    def last_active(self) -> float:
        return max(self.first_seen, self.last_attempt or 0.0, self.last_failure, self.locked_until)


class LoginThrottle:
    """Failed-password bookkeeping of one gate, safe to share between the dashboard's sessions (threads).

    The dashboard calls, for a client key: `wait` when it shows the login form (None, or why and how
    long the client must wait); `attempt` when a password is submitted (refuses with a Wait, or lets it
    be checked); then `succeeded` or `failed` with the comparison's result.
    """

    def __init__(self, limits: Limits | None = None, clock: Callable[[], float] | None = None,
                 max_clients: int = MAX_CLIENTS) -> None:
        self.clock = clock or time.monotonic  # seconds; tests pass a fake one
        self.max_clients = max_clients
        self._lock = threading.Lock()
        self._clients: OrderedDict[str, _Client] = OrderedDict()  # least recently active first
        self._limits = limits or Limits()
        self._server: deque[float] = deque(maxlen=self._limits.server_max_failures)

    @property
    def limits(self) -> Limits:
        return self._limits

    @limits.setter
    def limits(self, limits: Limits) -> None:
        with self._lock:
            if limits != self._limits:
                self._limits = limits
                self._server = deque(self._server, maxlen=limits.server_max_failures)

    # --- what the dashboard calls ----------------------------------------------------------------------

    def wait(self, client: str) -> Wait | None:
        """Why client may not try now (None: it may). Marks the client as seen: its form is showing."""
        with self._lock:
            now = self.clock()
            return self._wait(self._client(client, now), now)

    def attempt(self, client: str) -> Wait | None:
        """A password was submitted: a Wait to refuse it unchecked, or None to check it.

        A checked attempt counts as wrong until `succeeded` says otherwise, so the limits hold for
        attempts running at the same time.
        """
        with self._lock:
            now = self.clock()
            record = self._client(client, now)
            refused = self._wait(record, now)
            if refused is not None:
                return refused
            record.last_attempt = now
            record.failures += 1
            record.last_failure = now
            if record.failures >= self._limits.max_failures:
                record.locked_until = now + self._limits.window
            return None

    def failed(self, client: str) -> Wait | None:
        """The checked password was wrong; returns the wait that now applies to the client, if any."""
        with self._lock:
            now = self.clock()
            self._server.append(now)
            return self._wait(self._client(client, now), now)

    def succeeded(self, client: str) -> None:
        """The checked password was right: the client's streak is forgotten."""
        with self._lock:
            self._clients.pop(client, None)

    def failures(self, client: str) -> int:
        """The client's current streak of wrong passwords (for tests and diagnostics)."""
        with self._lock:
            now = self.clock()
            record = self._clients.get(client)
            if record is None:
                return 0
            self._forget_old_streak(record, now)
            return record.failures

    def busy(self) -> bool:
        """Whether the server-wide count of wrong passwords is at its limit."""
        with self._lock:
            return self._busy(self.clock())

    # --- internals (self._lock held) ----------------------------------------------------------------

    def _client(self, key: str, now: float) -> _Client:
        self._prune(now)
        record = self._clients.get(key)
        if record is None:
            record = self._clients[key] = _Client(first_seen=now)
        self._clients.move_to_end(key)
        self._forget_old_streak(record, now)
        return record

    def _forget_old_streak(self, record: _Client, now: float) -> None:
        if record.failures and record.locked_until <= now and now - record.last_failure >= self._limits.window:
            record.failures = 0
            record.locked_until = 0.0

    def _prune(self, now: float) -> None:
        """Drop clients idle for a window (nothing left to remember), and the least recently active while
        there is no room for one more."""
        while self._clients:
            key, oldest = next(iter(self._clients.items()))
            idle = now - oldest.last_active() >= self._limits.window and oldest.locked_until <= now
            if not idle and len(self._clients) < self.max_clients:
                break
            del self._clients[key]

    def _busy(self, now: float) -> bool:
        server = self._server
        return len(server) == server.maxlen and now - server[0] < self._limits.window

    def _wait(self, record: _Client, now: float) -> Wait | None:
        if record.locked_until > now:
            return Wait(LOCKOUT, record.locked_until - now)
        waits = []
        delay = self._limits.delay_after(record.failures)
        if delay and record.last_failure + delay > now:
            waits.append(Wait(DELAY, record.last_failure + delay - now))
        if self._busy(now):
            since = record.first_seen if record.last_attempt is None else record.last_attempt
            if since + self._limits.server_delay_seconds > now:
                waits.append(Wait(BUSY, since + self._limits.server_delay_seconds - now))
        return max(waits, key=lambda w: w.seconds, default=None)


# --- one throttle per gate, shared by every session of the process --------------------------------------

_GATES: dict[str, LoginThrottle] = {}
_GATES_LOCK = threading.Lock()
_MAX_GATES = 16


def gate_id(settings: Settings) -> str:
    """Names the gate: the password it guards and the database behind it (a hash, not the password).

    A new APP_PASSWORD starts from a clean slate: wrong guesses at the old one say nothing about it.
    """
    return hashlib.sha256(f"{settings.database_url}\0{settings.app_password}".encode()).hexdigest()


def for_gate(settings: Settings) -> LoginThrottle:
    """The process-wide throttle of the gate settings describe, with the limits settings give now."""
    key = gate_id(settings)
    limits = Limits.from_settings(settings)
    with _GATES_LOCK:
        throttle = _GATES.pop(key, None)
        if throttle is None:
            throttle = LoginThrottle(limits)
        _GATES[key] = throttle  # most recently used last
        while len(_GATES) > _MAX_GATES:
            del _GATES[next(iter(_GATES))]
    throttle.limits = limits
    return throttle
