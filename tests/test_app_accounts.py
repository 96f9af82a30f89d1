"""The dashboard's gate with accounts (issue 21): own name and password; APP_PASSWORD says it is shared."""

from __future__ import annotations

from importer.database import accounts
from importer.database.schema import ensure_schema, make_engine
from tests.app_support import make_app
from ui import keys

PASSWORD = "ama's long password"


def _sign_in(at, name: str, password: str):
    at.text_input(key=keys.LOGIN_NAME).input(name)
    at.text_input(key=keys.LOGIN_PASSWORD).input(password)
    at.button[0].click()
    return at.run()


def test_accounts_sign_in_with_own_name_and_record_the_account(monkeypatch, sqlite_url):
    engine = make_engine(sqlite_url)
    ensure_schema(engine)
    accounts.add_account(engine, "Ama", PASSWORD)
    at = make_app(monkeypatch, sqlite_url, password="shared-password")
    assert any("own name and password" in m.value for m in at.markdown)
    _sign_in(at, "ama", "shared-password")  # the shared password opens nothing once accounts exist
    assert [e.value for e in at.error][0].startswith("Wrong name or password.")
    assert keys.PASSWORD_OK not in at.session_state
    _sign_in(at, " AMA ", PASSWORD)
    assert at.session_state[keys.USER_NAME] == "Ama"  # the account's name, not what was typed
    assert not at.error

    accounts.disable_account(engine, "ama")  # disabling ends the session at its next run
    at.run()
    assert at.text_input(key=keys.LOGIN_PASSWORD) is not None
    engine.dispose()


def test_first_admin_from_the_environment(monkeypatch, sqlite_url):
    monkeypatch.setenv("ADMIN_NAME", "admin")
    monkeypatch.setenv("ADMIN_PASSWORD", PASSWORD)
    at = make_app(monkeypatch, sqlite_url)
    _sign_in(at, "Admin", PASSWORD)
    assert at.session_state[keys.USER_NAME] == "admin"
    engine = make_engine(sqlite_url)
    assert accounts.is_admin(engine, "admin")
    engine.dispose()


def test_shared_password_says_it_is_shared(monkeypatch, sqlite_url):
    at = make_app(monkeypatch, sqlite_url, password="shared-password")
    assert any("shared login" in c.value for c in at.caption)
