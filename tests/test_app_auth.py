"""The login gate: open on SQLite with no gate; APP_PASSWORD hides every page until the right password."""

from __future__ import annotations

from tests.app_support import make_app, texts
from ui import state
from ui.engine import merged_env


def sign_in(at, password: str, name: str = ""):
    at.text_input(key=state.LOGIN_NAME).input(name)
    at.text_input(key=state.LOGIN_PASSWORD).input(password)
    at.get("form_submit_button")[0].click()
    return at.run()


def test_sqlite_without_gate_opens_directly(monkeypatch, sqlite_url):
    at = make_app(monkeypatch, sqlite_url).run()
    assert at.title[0].value == "Upload a customer file"
    assert not [b for b in at.sidebar.button if b.key == "logout"]


def test_closed_gate_shows_nothing_but_the_login(monkeypatch, sqlite_url):
    at = make_app(monkeypatch, sqlite_url, password="correct horse").run()
    assert not at.exception
    assert at.title[0].value == "Customer import"
    assert "Upload a customer file" not in texts(at)
    assert not at.file_uploader
    assert not at.sidebar.markdown  # not even which database or how many customers
    at.switch_page("views/history.py").run()
    assert [t.value for t in at.title] == ["Customer import"]
    assert not at.dataframe


def test_wrong_password_is_refused(monkeypatch, sqlite_url):
    at = make_app(monkeypatch, sqlite_url, password="correct horse").run()
    sign_in(at, "wrong")
    assert "Wrong password" in at.error[0].value
    assert not at.file_uploader
    assert at.text_input(key=state.LOGIN_PASSWORD).value == ""


def test_right_password_opens_and_logout_closes(monkeypatch, sqlite_url):
    at = make_app(monkeypatch, sqlite_url, password="correct horse").run()
    sign_in(at, "correct horse", name="Akosua")
    assert not at.exception
    assert at.title[0].value == "Upload a customer file"
    assert at.session_state[state.USER_NAME] == "Akosua"
    at.switch_page("views/history.py").run()
    assert at.title[0].value == "History"
    at.sidebar.button(key="logout").click().run()
    assert at.title[0].value == "Customer import"
    assert not at.dataframe


def test_secrets_override_the_environment():
    env = merged_env({"DATABASE_URL": "sqlite:///a.db", "PATH": "/bin"},
                     {"DATABASE_URL": "postgresql://x/y", "APP_PASSWORD": "pw", "auth": {"client_id": "c"}})
    assert env == {"DATABASE_URL": "postgresql://x/y", "PATH": "/bin", "APP_PASSWORD": "pw"}
