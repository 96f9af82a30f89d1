"""The database unreachable when the dashboard starts: every page says so in one clear line, no traceback."""

from __future__ import annotations

import pytest

from tests.app_support import make_app

PAGES = ["views/upload.py", "views/review.py", "views/load.py", "views/history.py"]
DOWN = {
    "sqlite": ("sqlite:////nonexistent-dir/for/the/dashboard/customers.db", "SQLite file"),
    "postgresql": ("postgresql://postgres@127.0.0.1:1/customers", "PostgreSQL"),
}


@pytest.mark.parametrize("kind", list(DOWN))
@pytest.mark.parametrize("page", PAGES)
def test_every_page_says_the_database_cannot_be_reached(monkeypatch, kind: str, page: str) -> None:
    url, described = DOWN[kind]
    # A password gate, as a shared PostgreSQL deployment has; signed in, so the page itself runs.
    # The gate cannot tell whether the database holds accounts, so it stays closed (never falling back to
    # the weaker shared password): whichever page is asked for, the login says why nobody can sign in.
    at = make_app(monkeypatch, url, password="s3cret")
    at.text_input(key="login_password").input("s3cret")
    at.button[0].click().run()
    at.switch_page(page).run()
    assert at.text_input(key="login_password")  # still the login
    assert not at.exception
    errors = [e.value for e in at.error]
    assert errors, "no message at all"
    for message in errors:
        assert message.startswith(f"Cannot reach the database at {described}")
        assert "Check DATABASE_URL" in message
        assert "\n" not in message and "Traceback" not in message
