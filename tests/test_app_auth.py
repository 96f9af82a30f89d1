"""The login gate: open on SQLite with no gate; APP_PASSWORD hides every page until the right password.

Wrong passwords are throttled (importer.server.throttle, tests/test_throttle.py): these tests install a fake
clock in the gate's process-wide throttle, so none waits for real.
"""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from importer.server import throttle
from importer.settings import Settings
from tests.app_support import APP, make_app, texts
from tests.test_throttle import Clock
from ui import keys
from ui.engine import merged_env

LOCKED = "Too many wrong passwords from this browser; try again in 15 minutes."
WRONG = "Wrong password. Ask whoever runs the dashboard for the shared password."


def sign_in(at, password: str, name: str = ""):
    at.text_input(key=keys.LOGIN_NAME).input(name)
    at.text_input(key=keys.LOGIN_PASSWORD).input(password)
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
    assert at.text_input(key=keys.LOGIN_PASSWORD).value == ""


def test_right_password_opens_and_logout_closes(monkeypatch, sqlite_url):
    at = make_app(monkeypatch, sqlite_url, password="correct horse").run()
    sign_in(at, "correct horse", name="Akosua")
    assert not at.exception
    assert at.title[0].value == "Upload a customer file"
    assert at.session_state[keys.USER_NAME] == "Akosua"
    at.switch_page("views/history.py").run()
    assert at.title[0].value == "History"
    at.sidebar.button(key="logout").click().run()
    assert at.title[0].value == "Customer import"
    assert not at.dataframe


def test_secrets_override_the_environment():
    env = merged_env({"DATABASE_URL": "sqlite:///a.db", "PATH": "/bin"},
                     {"DATABASE_URL": "postgresql://x/y", "APP_PASSWORD": "pw", "auth": {"client_id": "c"}})
    assert env == {"DATABASE_URL": "postgresql://x/y", "PATH": "/bin", "APP_PASSWORD": "pw"}


# --- the throttle --------------------------------------------------------------------------------------


def fake_clock(monkeypatch) -> Clock:
    """The fake clock of the throttle of the gate the environment describes (the app's, after a run)."""
    gate = throttle.for_gate(Settings.from_env())
    clock = Clock(gate.clock())
    monkeypatch.setattr(gate, "clock", clock)
    return clock


def another_browser() -> AppTest:
    """A second session of the same dashboard (same environment, so the same gate and throttle)."""
    return AppTest.from_file(APP, default_timeout=90).run()


def lock_out(at, clock: Clock) -> None:
    """Ten wrong passwords (the default limit), each as soon as the growing delay allows."""
    waited = []
    for n in range(1, 11):
        sign_in(at, f"guess {n}", name="Mallory")
        assert [e.value for e in at.error][:1] == [WRONG]
        if n < 10 and at.warning:
            seconds = int(at.warning[0].value.split("wait ")[1].split(" second")[0])
            waited.append(seconds)
            clock.advance(seconds)
    assert waited == [1, 2, 4, 8, 16]  # four free, then doubling
    assert [e.value for e in at.error] == [WRONG, LOCKED]


def test_a_wrong_password_during_the_delay_is_refused_unchecked(monkeypatch, sqlite_url):
    at = make_app(monkeypatch, sqlite_url, password="correct horse")
    clock = fake_clock(monkeypatch)
    for n in range(5):
        sign_in(at, f"guess {n}")
    assert [w.value for w in at.warning] == ["Several wrong passwords in a row: wait 1 second before the next try."]
    # Even the right password is not checked during the wait: the same message, still the login.
    sign_in(at, "correct horse")
    assert not at.error
    assert [w.value for w in at.warning] == ["Several wrong passwords in a row: wait 1 second before the next try."]
    assert keys.PASSWORD_OK not in at.session_state
    assert at.title[0].value == "Customer import"
    assert at.text_input(key=keys.LOGIN_PASSWORD).value == ""  # the password is not kept either
    clock.advance(1)
    sign_in(at, "correct horse")
    assert at.title[0].value == "Upload a customer file"


def test_ten_wrong_passwords_lock_the_browser_out_even_for_the_right_one(monkeypatch, sqlite_url):
    at = make_app(monkeypatch, sqlite_url, password="correct horse")
    clock = fake_clock(monkeypatch)
    lock_out(at, clock)
    assert not at.file_uploader
    # Reloading shows the lock-out; the right password is refused until it ends.
    at.run()
    assert [e.value for e in at.error] == [LOCKED]
    clock.advance(11 * 60)
    sign_in(at, "correct horse", name="Akosua")
    assert [e.value for e in at.error] == ["Too many wrong passwords from this browser; try again in 4 minutes."]
    assert at.title[0].value == "Customer import"
    assert not at.file_uploader
    clock.advance(4 * 60)
    sign_in(at, "correct horse", name="Akosua")
    assert not at.exception
    assert at.title[0].value == "Upload a customer file"
    assert at.session_state[keys.USER_NAME] == "Akosua"


def test_the_right_password_first_time_gets_in_while_another_browser_is_locked_out(monkeypatch, sqlite_url):
    at = make_app(monkeypatch, sqlite_url, password="correct horse")
    clock = fake_clock(monkeypatch)
    lock_out(at, clock)
    other = another_browser()
    assert not other.error and not other.warning
    sign_in(other, "correct horse", name="Akosua")
    assert not other.exception
    assert other.title[0].value == "Upload a customer file"
    # The guesser stays locked out.
    at.run()
    assert [e.value for e in at.error] == [LOCKED]


def test_many_wrong_passwords_everywhere_slow_every_sign_in_but_lock_nobody_out(monkeypatch, sqlite_url):
    monkeypatch.setenv("LOGIN_SERVER_MAX_FAILURES", "10")
    at = make_app(monkeypatch, sqlite_url, password="correct horse")
    clock = fake_clock(monkeypatch)
    lock_out(at, clock)  # 10 wrong passwords in a few seconds: the server-wide limit
    busy = ("Many wrong passwords are being tried on this dashboard, so every sign-in is slowed down: "
            "try again in 5 seconds.")
    # A script that submits the moment the form shows is refused, unchecked, even with the right password...
    script = another_browser()
    sign_in(script, "correct horse")
    assert [w.value for w in script.warning] == [busy]
    assert script.title[0].value == "Customer import"
    # ...a person who takes a few seconds to type gets in at the first try.
    person = another_browser()
    assert not person.warning and not person.error  # nothing to say before a try
    clock.advance(6)
    sign_in(person, "correct horse", name="Akosua")
    assert not person.exception
    assert person.title[0].value == "Upload a customer file"
