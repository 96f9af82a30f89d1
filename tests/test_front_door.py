"""importer.server.front_door and the login throttle behind the host's proxy (issue 21).

The address the throttle counts is the one the proxy appends to X-Forwarded-For (TRUSTED_PROXY_HOPS from
the right); a client that forges X-Forwarded-For on every attempt gets no more guesses than docs/RELIABILITY.md
says, and cannot lock a colleague out by forging her address. Metrics and uploads give nothing before login.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import uuid
from typing import Any

import pytest

from importer.server import front_door
from importer.server.front_door import FrontDoor, client_address
from importer.server.throttle import ACCOUNT, Limits, LoginThrottle

PROXY = "10.0.0.1"  # Render's proxy: every connection's peer
ATTACKER = "198.51.100.7"
VICTIM = "203.0.113.20"
HOUR = 3600.0

# docs/RELIABILITY.md, "Access": what one address and one account can still try.
GUESSES_PER_HOUR_PER_ADDRESS = 40
GUESSES_PER_HOUR_PER_ACCOUNT = 24


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_client_address_counts_hops_from_the_right() -> None:
    assert client_address(PROXY, [], 0) == PROXY
    assert client_address(PROXY, ["1.2.3.4"], 0) == PROXY  # no proxy trusted: the header is ignored
    assert client_address(PROXY, [f"6.6.6.6, {ATTACKER}"], 1) == ATTACKER  # never the forged leftmost
    assert client_address(PROXY, ["6.6.6.6", ATTACKER], 1) == ATTACKER  # two header lines: one list
    assert client_address(PROXY, [f"6.6.6.6, {ATTACKER}, 10.0.0.9"], 2) == ATTACKER
    assert client_address(PROXY, [], 1) == PROXY  # not through the proxy: the peer is all there is
    assert client_address(PROXY, [" , "], 1) == PROXY


def _asgi(app, scope: dict[str, Any]) -> tuple[int | None, bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"x" * 10, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    # On a thread of its own: a test that ran before in this worker (AppTest, Playwright) may have left an
    # event loop running on this one, where asyncio.run refuses to start.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, app(scope, receive, send)).result()
    status = next((m["status"] for m in sent if m["type"] == "http.response.start"), None)
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def _scope(path: str, method: str = "GET", forwarded: str | None = None, kind: str = "http") -> dict[str, Any]:
    headers = [(b"host", b"example")]
    if forwarded is not None:
        headers.append((b"x-forwarded-for", forwarded.encode()))
    return {"type": kind, "path": path, "method": method, "headers": headers, "client": (PROXY, 5555)}


class _Inner:
    """Streamlit's place: records what reached it."""

    def __init__(self) -> None:
        self.scopes: list[dict[str, Any]] = []

    async def __call__(self, scope, receive, send) -> None:
        self.scopes.append(scope)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def test_metrics_are_refused_and_never_reach_streamlit() -> None:
    inner = _Inner()
    door = FrontDoor(inner, hops=1)
    for path in ("/_stcore/metrics", "/_stcore/metrics/", "/base/_stcore/metrics"):
        assert _asgi(door, _scope(path))[0] == 404
    assert inner.scopes == []
    assert _asgi(door, _scope("/_stcore/health"))[0] == 204


def test_uploads_only_into_a_signed_in_session() -> None:
    inner = _Inner()
    door = FrontDoor(inner)
    session = str(uuid.uuid4())
    path = f"/_stcore/upload_file/{session}/file-1"
    for method in ("PUT", "DELETE"):
        assert _asgi(door, _scope(path, method)) == (403, b"Sign in first\n")
    assert inner.scopes == []
    front_door.mark_signed_in(session)
    try:
        assert _asgi(door, _scope(path, "PUT"))[0] == 204
        assert len(inner.scopes) == 1
    finally:
        front_door.mark_signed_out(session)
    assert _asgi(door, _scope(path, "PUT"))[0] == 403


def test_the_scope_gets_the_address_the_proxy_appended() -> None:
    inner = _Inner()
    _asgi(FrontDoor(inner, hops=1), _scope("/", forwarded=f"{VICTIM}, {ATTACKER}"))
    _asgi(FrontDoor(inner, hops=0), _scope("/", forwarded=f"{VICTIM}, {ATTACKER}"))
    assert [s["client"][0] for s in inner.scopes] == [ATTACKER, PROXY]


def _through_the_proxy(forged: str, real: str) -> str:
    """The client address the dashboard sees for one request: the client sent X-Forwarded-For: forged, the
    proxy appended the real address and connected from PROXY; front_door rewrote the scope."""
    inner = _Inner()
    _asgi(FrontDoor(inner, hops=1), _scope("/_stcore/stream", forwarded=f"{forged}, {real}", kind="http"))
    return f"ip:{inner.scopes[0]['client'][0]}"


def _attack(gate: LoginThrottle, clock: Clock, seconds: float, account_of, forged_of) -> int:
    """An attacker who tries as fast as the throttle lets it, with a new forged X-Forwarded-For each time.
    Returns how many passwords were checked within `seconds`."""
    end = clock.now + seconds
    checked = 0
    n = 0
    while clock.now < end:
        n += 1
        client = _through_the_proxy(forged_of(n), ATTACKER)
        account = account_of(n)
        refused = gate.attempt(client, account)
        if refused is not None:
            clock.now += max(refused.seconds, 0.01)
            continue
        checked += 1
        gate.failed(client, account)
    return checked


@pytest.mark.parametrize("target", ["one account", "a new account each time"])
def test_forging_x_forwarded_for_on_every_attempt_gets_at_most_the_documented_guesses(target: str) -> None:
    clock = Clock()
    gate = LoginThrottle(Limits(), clock=clock)
    account_of = (lambda n: "ama") if target == "one account" else (lambda n: f"user{n}")
    checked = _attack(gate, clock, HOUR, account_of, lambda n: f"100.64.{n // 256 % 256}.{n % 256}")
    limit = GUESSES_PER_HOUR_PER_ACCOUNT if target == "one account" else GUESSES_PER_HOUR_PER_ADDRESS
    assert 0 < checked <= limit
    # A second hour: no more than the first (no streak is forgotten while it goes on).
    assert _attack(gate, clock, HOUR, account_of, lambda n: f"192.0.2.{n % 256}") <= limit


def test_many_addresses_at_one_account_get_at_most_the_accounts_guesses() -> None:
    """A botnet (a real address each) at one account: the account's delay holds them all."""
    clock = Clock()
    gate = LoginThrottle(Limits(), clock=clock)
    end, checked, n = clock.now + HOUR, 0, 0
    while clock.now < end:
        n += 1
        client = _through_the_proxy("6.6.6.6", f"100.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}")
        refused = gate.attempt(client, "ama")
        if refused is not None:
            assert refused.reason in (ACCOUNT, "busy")
            clock.now += max(refused.seconds, 0.01)
            continue
        checked += 1
        gate.failed(client, "ama")
    assert checked <= GUESSES_PER_HOUR_PER_ACCOUNT


def test_a_forged_victim_address_cannot_lock_the_victim_out() -> None:
    clock = Clock()
    gate = LoginThrottle(Limits(), clock=clock)
    victim = _through_the_proxy("", VICTIM)
    assert victim == f"ip:{VICTIM}"
    assert gate.attempt(victim, "ama") is None  # the victim signed in before, from her desk
    gate.succeeded(victim, "ama")

    # An hour of wrong passwords for her account, with her address forged in X-Forwarded-For.
    _attack(gate, clock, HOUR, lambda n: "ama", lambda n: VICTIM)
    assert gate.failures(victim) == 0  # her address was never charged
    assert gate.wait(victim) is None and gate.attempt(victim, "ama") is None  # she gets in at once
    gate.succeeded(victim, "ama")

    # From an address she never signed in from, she waits for the account's delay: never a lock-out.
    elsewhere = _through_the_proxy(VICTIM, "203.0.113.99")
    refused = gate.attempt(elsewhere, "ama")
    assert refused is None or (refused.reason == ACCOUNT and refused.seconds <= Limits().account_max_delay_seconds)
