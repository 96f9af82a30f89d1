"""importer.server.throttle: the password gate's throttle, with a fake clock (no waiting, no Streamlit)."""

from __future__ import annotations

import threading

import pytest

from importer.server import throttle
from importer.server.throttle import BUSY, DELAY, LOCKOUT, Limits, LoginThrottle
from importer.settings import Settings


class Clock:
    """Seconds that pass only when the test says so."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make(clock: Clock, **limits) -> LoginThrottle:
    return LoginThrottle(Limits(**limits), clock=clock)


def fail(gate: LoginThrottle, client: str) -> throttle.Wait | None:
    """One wrong password that the gate let through (asserted); the wait it imposes."""
    assert gate.attempt(client) is None
    return gate.failed(client)


def fail_until_locked(gate: LoginThrottle, client: str, clock: Clock) -> None:
    """Wrong passwords, each as soon as the growing delay allows, until the client is locked out."""
    for _ in range(gate.limits.max_failures):
        wait = gate.wait(client)
        if wait is not None:
            assert wait.reason == DELAY
            clock.advance(wait.seconds)
        fail(gate, client)
    assert gate.wait(client).reason == LOCKOUT


# --- one client --------------------------------------------------------------------------------------


def test_the_first_wrong_passwords_are_free_then_the_delay_doubles():
    clock = Clock()
    gate = make(clock)  # defaults: 4 free, lock-out at the 10th
    delays = []
    for _ in range(9):
        assert gate.wait("a") is None
        wait = fail(gate, "a")
        delays.append(None if wait is None else (wait.reason, wait.seconds))
        if wait is not None:
            clock.advance(wait.seconds)
    assert delays == [None, None, None, None, (DELAY, 1.0), (DELAY, 2.0), (DELAY, 4.0), (DELAY, 8.0),
                      (DELAY, 16.0)]


def test_an_attempt_during_the_delay_is_refused_unchecked_and_does_not_count():
    clock = Clock()
    gate = make(clock, free_failures=0)
    assert fail(gate, "a") == throttle.Wait(DELAY, 1.0)
    clock.advance(0.4)
    refused = gate.attempt("a")
    assert refused == throttle.Wait(DELAY, pytest.approx(0.6))
    assert refused.message == "Several wrong passwords in a row: wait 1 second before the next try."
    assert gate.failures("a") == 1  # the refused attempt was not counted
    clock.advance(0.6)
    assert gate.attempt("a") is None  # the delay is over: the next one is checked
    assert gate.failed("a") == throttle.Wait(DELAY, 2.0)


def test_max_failures_lock_the_client_out_for_the_lockout_minutes_with_a_clear_message():
    clock = Clock()
    gate = make(clock, max_failures=5, lockout_minutes=4, free_failures=2)
    fail_until_locked(gate, "a", clock)
    wait = gate.wait("a")
    assert wait == throttle.Wait(LOCKOUT, 240.0)
    assert wait.message == "Too many wrong passwords from this browser; try again in 4 minutes."
    clock.advance(61)
    assert gate.attempt("a").message == "Too many wrong passwords from this browser; try again in 3 minutes."
    clock.advance(150)
    assert gate.attempt("a").message == "Too many wrong passwords from this browser; try again in 29 seconds."
    assert gate.failures("a") == 5  # refused attempts are not counted (nor checked)
    clock.advance(29)
    # The lock-out is over: a clean slate.
    assert gate.wait("a") is None
    assert gate.failures("a") == 0
    assert gate.attempt("a") is None
    gate.succeeded("a")


def test_the_right_password_is_refused_too_during_the_lockout():
    """The dashboard asks attempt() before comparing: during a lock-out nothing is compared at all."""
    clock = Clock()
    gate = make(clock, max_failures=3)
    fail_until_locked(gate, "a", clock)
    assert gate.attempt("a").reason == LOCKOUT  # whatever the password: it is not looked at


def test_success_resets_the_clients_streak():
    clock = Clock()
    gate = make(clock, max_failures=5, free_failures=1)
    fail(gate, "a")
    assert fail(gate, "a") == throttle.Wait(DELAY, 1.0)
    clock.advance(1)
    assert gate.attempt("a") is None
    gate.succeeded("a")
    assert gate.failures("a") == 0
    # Four more wrong ones are needed to lock it out again, and the first is free.
    assert fail(gate, "a") is None
    assert gate.failures("a") == 1


def test_a_streak_is_forgotten_after_the_window():
    clock = Clock()
    gate = make(clock, max_failures=3, lockout_minutes=15, free_failures=1)
    fail(gate, "a")
    clock.advance(14 * 60)
    fail(gate, "a")
    assert gate.failures("a") == 2  # 14 minutes apart: still one streak
    clock.advance(15 * 60)
    assert gate.failures("a") == 0
    assert fail(gate, "a") is None  # a free one again, not the lock-out


def test_parallel_attempts_of_one_client_cannot_pass_the_limit_together():
    """An attempt counts as wrong while it is being checked: 50 threads at once get 3 checks, not 50."""
    clock = Clock()
    gate = make(clock, max_failures=3, free_failures=10)
    start = threading.Barrier(50)
    let_through = []

    def guess():
        start.wait()
        if gate.attempt("a") is None:
            let_through.append(1)

    threads = [threading.Thread(target=guess) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(let_through) == 3
    assert gate.wait("a").reason == LOCKOUT


@pytest.mark.parametrize("start", [0.0, 3631.626946558053, 130201.53534647937])  # (t + 900) - t > 900
def test_the_lockout_message_is_not_rounded_up_by_clock_arithmetic(start):
    clock = Clock(start)
    gate = make(clock, max_failures=1, lockout_minutes=15)
    fail(gate, "a")
    assert gate.wait("a").message == "Too many wrong passwords from this browser; try again in 15 minutes."
    assert throttle.Wait(DELAY, 1.0000000001).message.endswith("wait 1 second before the next try.")


def test_delays_never_exceed_the_lockout():
    limits = Limits(max_failures=100, lockout_minutes=1, free_failures=0)
    assert [limits.delay_after(n) for n in (0, 1, 2, 3, 7, 8, 99)] == [0, 1, 2, 4, 60, 60, 60]


# --- clients apart ------------------------------------------------------------------------------------


def test_clients_are_counted_apart():
    clock = Clock()
    gate = make(clock, max_failures=3, free_failures=0)
    fail_until_locked(gate, "ip:203.0.113.9", clock)
    assert gate.wait("ip:198.51.100.7") is None
    assert gate.attempt("ip:198.51.100.7") is None
    gate.succeeded("ip:198.51.100.7")
    assert gate.failures("ip:198.51.100.7") == 0
    assert gate.wait("ip:203.0.113.9").reason == LOCKOUT
    # Another's success does not unlock the guesser.
    assert gate.failures("ip:203.0.113.9") == 3


# --- server-wide ---------------------------------------------------------------------------------------


def _many_clients_guess(gate: LoginThrottle, clock: Clock, failures: int) -> None:
    """`failures` wrong passwords, each from a new client (two each: never a delay or a lock-out)."""
    for n in range(failures):
        client = f"session:bot{n // 2}"
        gate.wait(client)
        clock.advance(gate.limits.server_delay_seconds)
        assert gate.attempt(client) is None
        gate.failed(client)


def test_many_clients_guessing_make_the_gate_busy_which_spaces_every_clients_attempts():
    clock = Clock()
    gate = make(clock, server_max_failures=20, free_failures=4)
    _many_clients_guess(gate, clock, 19)
    assert not gate.busy()
    assert gate.attempt("session:fast") is None  # not busy yet: a new client is checked at once
    gate.failed("session:fast")
    assert gate.busy()
    # Busy: a script that submits right away is refused, unchecked, even as a brand-new client...
    refused = gate.attempt("session:new-bot")
    assert refused == throttle.Wait(BUSY, 5.0)
    assert refused.message == ("Many wrong passwords are being tried on this dashboard, so every sign-in is "
                               "slowed down: try again in 5 seconds.")
    # ...and after a checked attempt, each client waits 5 s before the next (its free failures included).
    clock.advance(5)
    assert gate.attempt("session:new-bot") is None
    assert gate.failed("session:new-bot") == throttle.Wait(BUSY, 5.0)
    clock.advance(2)
    assert gate.attempt("session:new-bot") == throttle.Wait(BUSY, 3.0)


def test_busy_gate_never_locks_out_and_a_person_at_the_form_is_not_slowed():
    clock = Clock()
    gate = make(clock, server_max_failures=20)
    # A person opens the login form...
    assert gate.wait("ip:198.51.100.7") is None
    clock.advance(3)
    # ...while bots fail 40 times (in 200 s).
    _many_clients_guess(gate, clock, 40)
    assert gate.busy()
    # Typing a name and the password took longer than the spacing: checked at once, and right.
    assert gate.wait("ip:198.51.100.7") is None
    assert gate.attempt("ip:198.51.100.7") is None
    gate.succeeded("ip:198.51.100.7")


def test_a_correct_password_gets_in_while_others_are_locked_out_and_the_gate_is_busy():
    clock = Clock()
    gate = make(clock, max_failures=5, server_max_failures=20)
    for bot in ("ip:203.0.113.1", "ip:203.0.113.2", "ip:203.0.113.3", "ip:203.0.113.4"):
        fail_until_locked(gate, bot, clock)
    assert gate.busy()
    # A user arriving now is held at most the short spacing, never locked out.
    first = gate.wait("ip:198.51.100.7")
    assert first is not None and first.reason == BUSY and first.seconds <= 5
    clock.advance(first.seconds)
    assert gate.attempt("ip:198.51.100.7") is None
    gate.succeeded("ip:198.51.100.7")
    assert all(gate.wait(bot).reason == LOCKOUT for bot in ("ip:203.0.113.1", "ip:203.0.113.4"))


def test_the_busy_state_ends_when_the_guessing_stops():
    clock = Clock()
    gate = make(clock, server_max_failures=10, lockout_minutes=15)
    _many_clients_guess(gate, clock, 10)
    assert gate.busy()
    clock.advance(15 * 60)
    assert not gate.busy()
    assert gate.attempt("session:later") is None


# --- memory and sharing ----------------------------------------------------------------------------------


def test_idle_clients_are_dropped_and_the_number_kept_is_bounded():
    clock = Clock()
    gate = LoginThrottle(Limits(lockout_minutes=1), clock=clock, max_clients=100)
    for n in range(1_000):
        gate.wait(f"session:{n}")
    assert len(gate._clients) == 100
    clock.advance(61)
    gate.wait("session:last")
    assert len(gate._clients) == 1


def test_limits_come_from_the_settings():
    settings = Settings.from_env({"LOGIN_MAX_FAILURES": "3", "LOGIN_LOCKOUT_MINUTES": "2",
                                  "LOGIN_SERVER_MAX_FAILURES": "7"})
    assert Limits.from_settings(settings) == Limits(max_failures=3, lockout_minutes=2, server_max_failures=7)
    defaults = Settings.from_env({})
    assert (defaults.login_max_failures, defaults.login_lockout_minutes, defaults.login_server_max_failures) == (
        10, 15, 50)


def test_one_throttle_per_gate_shared_by_the_process():
    one = Settings.from_env({"DATABASE_URL": "sqlite:///one.db", "APP_PASSWORD": "pw"})
    assert throttle.for_gate(one) is throttle.for_gate(Settings.from_env(
        {"DATABASE_URL": "sqlite:///one.db", "APP_PASSWORD": "pw"}))
    # A new password is a new gate: wrong guesses at the old one say nothing about it.
    assert throttle.for_gate(one.with_(app_password="new")) is not throttle.for_gate(one)
    # Changed limits apply to the shared throttle at once.
    assert throttle.for_gate(one.with_(login_max_failures=4)).limits.max_failures == 4
    assert "pw" not in throttle.gate_id(one)
