"""The database unreachable when the dashboard starts: every page says so in one clear line, no traceback."""

from __future__ import annotations

import pytest

from tests.app_support import make_app

PAGES = ["views/upload.py", "views/review.py", "views/load.py", "views/history.py"]
DOWN = {
    "sqlite": ("sqlite:////nonexistent-dir/for/the/dashboard/customers.db", "SQLite file"),
    "postgresql": ("postgresql://postgres@127.0.0.1:1/customers", "PostgreSQL"),
}


@pytest.mark.parametrize("page", PAGES)
def test_every_page_says_the_database_cannot_be_reached(monkeypatch, page: str) -> None:
    """No gate (a laptop's SQLite): each page runs and says in one line that the database cannot be reached."""
    url, described = DOWN["sqlite"]
    at = make_app(monkeypatch, url)
    at.switch_page(page).run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert errors, "no message at all"
    for message in errors:
        assert message.startswith(f"Cannot reach the database at {described}")
        assert "Check DATABASE_URL" in message
        assert "\n" not in message and "Traceback" not in message


@pytest.mark.parametrize("kind", list(DOWN))
def test_a_password_gate_stays_closed_and_says_why_a_password_could_not_be_checked(monkeypatch, kind: str) -> None:
    """A shared password set: while the accounts cannot be read the gate is the accounts' (never the weaker
    shared password), and a sign-in says the database could not check it, without naming the database to a
    stranger."""
    url, described = DOWN[kind]
    at = make_app(monkeypatch, url, password="s3cret")
    at.text_input(key="login_password").input("s3cret")
    at.button[0].click().run()
    assert not at.exception
    assert at.text_input(key="login_password")  # still the login
    errors = [e.value for e in at.error]
    assert errors == ["The database cannot be reached, so your password could not be checked. Try again shortly."]
    assert described not in errors[0]
