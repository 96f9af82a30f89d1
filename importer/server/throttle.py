"""Slowing down password guessing at the dashboard's gate: one thread-safe throttle per gate and process.

Plain Python (no Streamlit): the dashboard (ui/auth.py) passes a *client key* and, with accounts, the
account's name key, and asks before it compares a password. The client key is the client's address as the
host's proxy reported it (importer.server.serve counts TRUSTED_PROXY_HOPS from the right of
X-Forwarded-For, so a forged entry changes nothing), else a token kept in the session's state.

The policy (OWASP Authentication Cheat Sheet: growing delays per account and per address, a server-wide
cap, no hard lock-out keyed on anything an attacker can name)
-----------------------------------------------------------------------------------------------------------
Per address (a fact: the proxy appends it), counting its wrong passwords in a row ("the streak"):

- The first FREE_FAILURES (4) wrong passwords cost nothing: typos happen.
- Every further one makes the address wait before its next attempt is even checked: 1 s after the 5th,
  then 2, 4, 8, 16 s (doubling).
- The LOGIN_MAX_FAILURES-th (10th) wrong password locks the address out for LOGIN_LOCKOUT_MINUTES (15):
  every attempt is refused unchecked ("Too many wrong passwords from this browser; try again in N
  minutes"), the right password too, so a guesser does not learn that a guess was right.
- A streak is forgotten LOGIN_LOCKOUT_MINUTES after its last wrong password (so a lock-out ends with a
  clean slate), and at once by a right password.
  At most 10 guesses per 15 minutes and 31 s: 40 in an hour from one address.

Per account (whoever types its name, from any address), counting its wrong passwords:

- ACCOUNT_FREE_FAILURES (4) cost nothing; after the 5th, 1, 2, 4, ... 256 s, then ACCOUNT_MAX_DELAY_SECONDS (300)
  between attempts, never a lock-out: anyone can type a colleague's name, so the account only slows down.
- The streak is forgotten ACCOUNT_MEMORY_MINUTES (60) after its last wrong password (a right password
  takes back only its own attempt: the victim signing in does not hand a guesser new free tries).
- An address from which the account signed in (since the server started; MAX_KNOWN pairs kept) is exempt
  from the account's delay, and from the server-wide cap: a guesser elsewhere does not slow its owner at
  her usual desk (OWASP's "device cookie", keyed on the proxy's address).
  At most 5 + 9 + (3600 - 511) / 300 = 24 guesses in the first hour at one account, 12 an hour after.

Server-wide (all clients together), for many addresses guessing at once (a botnet, or password spraying
across accounts):

- When LOGIN_SERVER_MAX_FAILURES (50) wrong passwords have come in within LOGIN_LOCKOUT_MINUTES, the
  gate is *busy*: every client must let SERVER_DELAY_SECONDS (5 s) pass between its attempts (counted
  from its previous attempt or, for its first, from when its login form was first shown: a person
  typing takes longer, a script is held to one guess every 5 s), and the whole server checks at most
  SERVER_CHECKS_PER_MINUTE (60) passwords a minute of address/account pairs that never signed in:
  3,600 an hour at most, across every account, however many addresses guess.
- Busy never locks anybody out; a user at an address known for her account is never held by the cap.

Memory is bounded: clients and accounts idle for their window are dropped, at most MAX_CLIENTS records
are kept (the longest idle go first), and the server-wide counts keep a bounded number of time stamps.
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
MAX_KNOWN = 10_000
ACCOUNT_FREE_FAILURES = 4
ACCOUNT_MAX_DELAY_SECONDS = 300.0
ACCOUNT_MEMORY_MINUTES = 60.0
SERVER_CHECKS_PER_MINUTE = 60

LOCKOUT = "lockout"  # this address's own streak: refused until the lock-out ends
DELAY = "delay"  # this address's own streak: the growing delay
ACCOUNT = "account"  # the account's streak: the growing delay, never a lock-out
BUSY = "busy"  # the server-wide count: the short spacing every client keeps, and the cap


@dataclass(frozen=True)
class Limits:
    max_failures: int = 10
    lockout_minutes: float = 15
    server_max_failures: int = 50
    free_failures: int = FREE_FAILURES
    server_delay_seconds: float = SERVER_DELAY_SECONDS
    account_free_failures: int = ACCOUNT_FREE_FAILURES
    account_max_delay_seconds: float = ACCOUNT_MAX_DELAY_SECONDS
    account_memory_minutes: float = ACCOUNT_MEMORY_MINUTES
    server_checks_per_minute: int = SERVER_CHECKS_PER_MINUTE

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(max_failures=max(1, settings.login_max_failures),
                   lockout_minutes=max(1, settings.login_lockout_minutes),
                   server_max_failures=max(1, settings.login_server_max_failures))

    @property
    def window(self) -> float:
        """Seconds: how long a lock-out lasts, and how long an address's wrong password is remembered."""
        return self.lockout_minutes * 60.0

    @property
    def account_window(self) -> float:
        """Seconds an account's wrong password is remembered."""
        return max(self.account_memory_minutes * 60.0, self.account_max_delay_seconds)

    def delay_after(self, failures: int) -> float:
        """Seconds an address waits after its failures-th wrong password in a row (0 for the free ones)."""
        if failures <= self.free_failures:
            return 0.0
        return min(2.0 ** min(failures - self.free_failures - 1, 62), self.window)

    def account_delay_after(self, failures: int) -> float:
        """Seconds before an account's next attempt after its failures-th wrong password."""
        if failures <= self.account_free_failures:
            return 0.0
        return min(2.0 ** min(failures - self.account_free_failures - 1, 62), self.account_max_delay_seconds)


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

    reason: str  # LOCKOUT, DELAY, ACCOUNT or BUSY
    seconds: float

    @property
    def message(self) -> str:
        when = _duration(self.seconds)
        if self.reason == LOCKOUT:
            return f"Too many wrong passwords from this browser; try again in {when}."
        if self.reason == DELAY:
            return f"Several wrong passwords in a row: wait {when} before the next try."
        if self.reason == ACCOUNT:
            return (f"Several wrong passwords were tried for this account: wait {when} before the next try "
                    f"(from where you signed in before, you do not wait).")
        return (f"Many wrong passwords are being tried on this dashboard, so every sign-in is slowed down: "
                f"try again in {when}.")


@dataclass
class _Record:
    first_seen: float
    last_attempt: float | None = None
    failures: int = 0  # the streak: wrong passwords in a row, attempts in flight included
    last_failure: float = 0.0
    locked_until: float = 0.0
    is_account: bool = False

    def last_active(self) -> float:
        return max(self.first_seen, self.last_attempt or 0.0, self.last_failure, self.locked_until)


def _account_key(account: str) -> str:
    return f"account:{account}"


class LoginThrottle:
    """Failed-password bookkeeping of one gate, safe to share between the dashboard's sessions (threads).

    The dashboard calls, for a client key (and, with accounts, the account's name key): `wait` when it
    shows the login form (None, or why and how long the client must wait); `attempt` when a password is
    submitted (refuses with a Wait, or lets it be checked); then `succeeded` or `failed`.
    """

    def __init__(self, limits: Limits | None = None, clock: Callable[[], float] | None = None,
                 max_clients: int = MAX_CLIENTS) -> None:
        self.clock = clock or time.monotonic  # seconds; tests pass a fake one
        self.max_clients = max_clients
        self._lock = threading.Lock()
        self._clients: OrderedDict[str, _Record] = OrderedDict()  # least recently active first
        self._known: OrderedDict[tuple[str, str], float] = OrderedDict()  # (client, account) that signed in
        self._limits = limits or Limits()
        self._server: deque[float] = deque(maxlen=self._limits.server_max_failures)
        self._checks: deque[float] = deque(maxlen=self._limits.server_checks_per_minute)

    @property
    def limits(self) -> Limits:
        return self._limits

    @limits.setter
    def limits(self, limits: Limits) -> None:
        with self._lock:
            if limits != self._limits:
                self._limits = limits
                self._server = deque(self._server, maxlen=limits.server_max_failures)
                self._checks = deque(self._checks, maxlen=limits.server_checks_per_minute)

    # --- what the dashboard calls ----------------------------------------------------------------------

    def wait(self, client: str, account: str | None = None) -> Wait | None:
        """Why client may not try now (None: it may). Marks the client as seen: its form is showing."""
        with self._lock:
            now = self.clock()
            return self._wait_for(client, account, now, checking=False)

    def attempt(self, client: str, account: str | None = None) -> Wait | None:
        """A password was submitted: a Wait to refuse it unchecked, or None to check it.

        A checked attempt counts as wrong (for the address and the account) until `succeeded` says
        otherwise, so the limits hold for attempts running at the same time.
        """
        with self._lock:
            now = self.clock()
            refused = self._wait_for(client, account, now, checking=True)
            if refused is not None:
                return refused
            record = self._record(client, now)
            self._count_failure(record, now)
            if record.failures >= self._limits.max_failures:
                record.locked_until = now + self._limits.window
            if account is not None:
                self._count_failure(self._record(_account_key(account), now, is_account=True), now)
            if account is None or (client, account) not in self._known:
                self._checks.append(now)
            return None

    def failed(self, client: str, account: str | None = None) -> Wait | None:
        """The checked password was wrong; returns the wait that now applies to the client, if any."""
        with self._lock:
            now = self.clock()
            self._server.append(now)
            return self._wait_for(client, account, now, checking=False)

    def succeeded(self, client: str, account: str | None = None) -> None:
        """The checked password was right: the address's streak is forgotten, the pair becomes known, and
        the account's streak loses this attempt only (see the policy)."""
        with self._lock:
            self._clients.pop(client, None)
            if account is None:
                return
            record = self._clients.get(_account_key(account))
            if record is not None and record.failures:
                record.failures -= 1
            self._known.pop((client, account), None)
            self._known[(client, account)] = self.clock()
            while len(self._known) > MAX_KNOWN:
                self._known.popitem(last=False)

    def failures(self, client: str) -> int:
        """The client's current streak of wrong passwords (for tests and diagnostics)."""
        return self._failures(client)

    def busy(self) -> bool:
        """Whether the server-wide count of wrong passwords is at its limit."""
        with self._lock:
            return self._busy(self.clock())

    # --- internals (self._lock held) ----------------------------------------------------------------

    def _failures(self, key: str) -> int:
        with self._lock:
            record = self._clients.get(key)
            if record is None:
                return 0
            self._forget_old_streak(record, self.clock())
            return record.failures

    def _count_failure(self, record: _Record, now: float) -> None:
        record.last_attempt = now
        record.failures += 1
        record.last_failure = now

    def _record(self, key: str, now: float, is_account: bool = False) -> _Record:
        self._prune(now)
        record = self._clients.get(key)
        if record is None:
            record = self._clients[key] = _Record(first_seen=now, is_account=is_account)
        self._clients.move_to_end(key)
        self._forget_old_streak(record, now)
        return record

    def _memory(self, record: _Record) -> float:
        return self._limits.account_window if record.is_account else self._limits.window

    def _forget_old_streak(self, record: _Record, now: float) -> None:
        if record.failures and record.locked_until <= now and now - record.last_failure >= self._memory(record):
            record.failures = 0
            record.locked_until = 0.0

    def _prune(self, now: float) -> None:
        """Drop records idle for their window (nothing left to remember), and the least recently active
        while there is no room for one more."""
        while self._clients:
            key, oldest = next(iter(self._clients.items()))
            idle = now - oldest.last_active() >= self._memory(oldest) and oldest.locked_until <= now
            if not idle and len(self._clients) < self.max_clients:
                break
            del self._clients[key]

    def _busy(self, now: float) -> bool:
        server = self._server
        return len(server) == server.maxlen and now - server[0] < self._limits.window

    def _wait_for(self, client: str, account: str | None, now: float, checking: bool) -> Wait | None:
        record = self._record(client, now)
        if record.locked_until > now:
            return Wait(LOCKOUT, record.locked_until - now)
        waits = []
        delay = self._limits.delay_after(record.failures)
        if delay and record.last_failure + delay > now:
            waits.append(Wait(DELAY, record.last_failure + delay - now))
        known = account is not None and (client, account) in self._known
        if account is not None and not known:
            account_record = self._record(_account_key(account), now, is_account=True)
            delay = self._limits.account_delay_after(account_record.failures)
            if delay and account_record.last_failure + delay > now:
                waits.append(Wait(ACCOUNT, account_record.last_failure + delay - now))
        if self._busy(now):
            since = record.first_seen if record.last_attempt is None else record.last_attempt
            if since + self._limits.server_delay_seconds > now:
                waits.append(Wait(BUSY, since + self._limits.server_delay_seconds - now))
            checks = self._checks
            if checking and not known and len(checks) == checks.maxlen and now - checks[0] < 60.0:
                waits.append(Wait(BUSY, checks[0] + 60.0 - now))
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
