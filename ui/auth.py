"""The login gate: OIDC via st.login when [auth] is configured; else the accounts in the database (own name
and password, importer.database.accounts); else APP_PASSWORD, a shared login; else open on SQLite.

The first admin account is created at start from ADMIN_NAME and ADMIN_PASSWORD when no account exists yet
(render.yaml sets them), or with `python -m importer users add NAME --admin`.
"""

from __future__ import annotations

import hmac
import os
import threading
import time
import uuid
from collections.abc import Mapping

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from importer.database import accounts
from importer.errors import DatabaseError
from importer.identity import current_user
from importer.server import front_door, throttle
from importer.settings import Settings
from ui import keys, state
from ui.engine import engine, secrets, settings

_ACCOUNT_GATE = "auth_account_gate"  # the session signed in with an account (not the shared password)
_CLIENT_TOKEN = "auth_client_token"  # the session's throttle key when Streamlit gives no IP address
_AUTH_FAILED = "auth_failed"  # the last submitted password was checked and wrong
_REFUSED = "auth_refused"  # throttle.Wait: the last submitted password was refused unchecked
_DB_DOWN = "auth_db_down"  # the accounts could not be read when the password was submitted
_KNOWN_ACCOUNTS: dict[str, float] = {}  # database URL -> when accounts were last seen missing (0: they exist)
_KNOWN_LOCK = threading.Lock()
_RECHECK_SECONDS = 5.0  # no accounts yet: look again this often (one added by the CLI takes over the gate)


def oidc_providers() -> list[str | None] | None:
    """Providers of the [auth] secrets section ([None] = the single default one); None if not configured."""
    auth = secrets().get("auth")
    if not isinstance(auth, Mapping) or not auth:
        return None
    named = [name for name, value in auth.items() if isinstance(value, Mapping)]
    return [None] if "client_id" in auth or not named else named


def _first_admin(settings: Settings) -> None:
    """ADMIN_NAME / ADMIN_PASSWORD create the first admin when the database has no account (never a reset)."""
    name, password = os.environ.get("ADMIN_NAME", ""), os.environ.get("ADMIN_PASSWORD", "")
    if name.strip() and password:
        accounts.ensure_first_admin(engine(), name, password)


def accounts_exist(settings: Settings) -> bool:
    """Whether the database has accounts (then they are the gate). Once seen, remembered for the process;
    while there are none, looked up again every few seconds. A database that cannot be read counts as
    having accounts when a shared password is set: the gate stays closed rather than falling back to it."""
    url = settings.database_url
    with _KNOWN_LOCK:
        checked = _KNOWN_ACCOUNTS.get(url)
    if checked == 0.0:
        return True
    if checked is not None and time.monotonic() - checked < _RECHECK_SECONDS:
        return False
    try:
        _first_admin(settings)
        exists = accounts.has_accounts(engine())
    except DatabaseError:
        # A gate that would otherwise be the shared password stays closed (never the weaker gate while the
        # accounts cannot be read). With no password set either there is nothing to fall back to: the pages
        # run and say the database cannot be reached, and the accounts gate closes once they can be read.
        return bool(settings.app_password)
    with _KNOWN_LOCK:
        _KNOWN_ACCOUNTS[url] = 0.0 if exists else time.monotonic()
    return exists


def gate_kind(settings: Settings) -> str:
    """"oidc", "accounts", "password" (the shared APP_PASSWORD) or "none"."""
    if oidc_providers() is not None:
        return "oidc"
    if accounts_exist(settings):
        return "accounts"
    if settings.app_password:
        return "password"
    return "none"


def is_sqlite(settings: Settings) -> bool:
    return settings.database_url.startswith("sqlite")


def _session_id() -> str | None:
    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else None


def _open_for(settings: Settings) -> bool:
    kind = gate_kind(settings)
    if kind == "oidc":
        return bool(st.user.is_logged_in)
    if kind == "accounts":
        # Signed in with an account that is still active (disabling it ends its sessions at their next run).
        name = state.get(keys.USER_NAME)
        if not (state.get(keys.PASSWORD_OK) and state.get(_ACCOUNT_GATE)) or not name:
            return False
        try:
            found = accounts.get_account(engine(), name)
        except DatabaseError:
            return True  # the pages say the database is down; the session was signed in
        return found is not None and found.active
    if kind == "password":
        return bool(state.get(keys.PASSWORD_OK)) and not state.get(_ACCOUNT_GATE)
    return True


def is_open(settings: Settings) -> bool:
    """Whether this session may see the pages; tells importer.server.front_door (uploads) either way."""
    opened = _open_for(settings)
    session = _session_id()
    if session is not None:
        (front_door.mark_signed_in if opened else front_door.mark_signed_out)(session)
    return opened


def guard() -> Settings:
    """Settings of this request; stops with the login form unless the session is signed in.

    Every page calls it first, so a page is never shown past a closed gate, however it was reached.
    """
    current = settings()
    if not is_open(current):
        login_page()
        st.stop()
    return current


def write_refusal(settings: Settings) -> str | None:
    """Why pages that write are refused (a shared database with no login in front), or None."""
    if gate_kind(settings) == "none" and not is_sqlite(settings):
        return (
            "This dashboard writes to a shared database but has no login configured, so uploading, "
            "importing and undoing are switched off. Ask whoever runs the dashboard to set up sign-in."
        )
    return None


def require_write(settings: Settings) -> None:
    """Stop the page with the reason when writing is refused."""
    reason = write_refusal(settings)
    if reason:
        st.error(reason, icon=":material/lock:")
        st.stop()


def user_name(settings: Settings) -> str:
    """Who is acting, as recorded with each run, workspace and undo (importer.identity.current_user)."""
    kind = gate_kind(settings)
    if kind == "oidc":
        return current_user(str(st.user.get("email") or st.user.get("name") or ""))
    if kind in ("accounts", "password"):
        return current_user(state.get(keys.USER_NAME))
    return current_user()


def gate_note(settings: Settings) -> str:
    """How the name recorded with runs and workspaces was established (shown in the sidebar)."""
    return {
        "oidc": "signed in through single sign-on",
        "accounts": "signed in with your own account",
        "password": "a shared login: the name was typed, not checked",
    }.get(gate_kind(settings), "no login: the name is the server's user")


def client_key() -> str:
    """Whom the login throttle counts wrong passwords of: the IP address, else this session.

    st.context.ip_address is None on localhost (and not a string under AppTest); then a random token in
    the session's state stands for the client (one browser tab's connection; a new one starts afresh,
    which the throttle's server-wide count is there for).
    """
    address = st.context.ip_address  # the proxy's, not the client's, claim (importer.server.front_door)
    if isinstance(address, str) and address:
        return f"ip:{address}"
    if _CLIENT_TOKEN not in st.session_state:
        st.session_state[_CLIENT_TOKEN] = uuid.uuid4().hex
    return f"session:{st.session_state[_CLIENT_TOKEN]}"


def _check_password(settings: Settings) -> None:
    """The form's callback: the typed password is compared only when the throttle lets this client try."""
    typed = st.session_state.get(keys.LOGIN_PASSWORD, "")
    st.session_state[keys.LOGIN_PASSWORD] = ""
    gate = throttle.for_gate(settings)
    client = client_key()
    refused = gate.attempt(client)
    if refused is not None:
        st.session_state[_REFUSED] = refused
        return
    if hmac.compare_digest(typed.encode(), settings.app_password.encode()):
        gate.succeeded(client)
        st.session_state[keys.PASSWORD_OK] = True
        st.session_state[keys.USER_NAME] = st.session_state.get(keys.LOGIN_NAME, "").strip()
    else:
        gate.failed(client)
        st.session_state[_AUTH_FAILED] = True


def _check_account(settings: Settings) -> None:
    """The accounts form's callback: the throttle (per address and per account) first, then Argon2."""
    typed_name = str(st.session_state.get(keys.LOGIN_NAME, ""))
    typed = str(st.session_state.get(keys.LOGIN_PASSWORD, ""))
    st.session_state[keys.LOGIN_PASSWORD] = ""
    gate = throttle.for_gate(settings)
    client, account_key = client_key(), accounts.name_key(typed_name)
    refused = gate.attempt(client, account_key)
    if refused is not None:
        st.session_state[_REFUSED] = refused
        return
    try:
        found = accounts.verify(engine(), typed_name, typed)
    except DatabaseError:
        gate.succeeded(client, None)  # not a wrong password: the address's streak is not charged
        st.session_state[_DB_DOWN] = True
        return
    if found is None:
        gate.failed(client, account_key)
        st.session_state[_AUTH_FAILED] = True
        return
    gate.succeeded(client, account_key)
    st.session_state[keys.PASSWORD_OK] = True
    st.session_state[_ACCOUNT_GATE] = True
    st.session_state[keys.USER_NAME] = found.name


def _show_wait(wait: throttle.Wait) -> None:
    if wait.reason == throttle.LOCKOUT:
        st.error(wait.message, icon=":material/lock_clock:")
    else:
        st.warning(wait.message, icon=":material/hourglass_top:")


def login_page() -> None:
    """The only page a closed gate shows."""
    settings_now = settings()
    st.title("Customer import")
    if gate_kind(settings_now) == "oidc":
        st.write("Sign in to upload and import customer spreadsheets.")
        for provider in oidc_providers() or [None]:
            label = "Log in" if provider is None else f"Log in with {provider.title()}"
            if st.button(label, key=f"login_oidc_{provider or 'default'}", type="primary",
                         icon=":material/login:"):
                st.login(provider)
        return
    own_accounts = gate_kind(settings_now) == "accounts"
    if own_accounts:
        st.write("Sign in with your own name and password to upload and import customer spreadsheets.")
    else:
        st.write("Enter the dashboard password to upload and import customer spreadsheets.")
        st.caption("This is a shared login: everyone uses the same password, and the name you type is "
                   "recorded with your imports as you typed it, not checked. Ask an administrator for your own "
                   "account to have your imports and undos recorded as yours.")
    with st.form("login_form"):
        st.text_input("Name" if own_accounts else "Your name (recorded with your imports)", key=keys.LOGIN_NAME)
        st.text_input("Password", type="password", key=keys.LOGIN_PASSWORD)
        st.form_submit_button("Sign in", type="primary", args=(settings_now,),
                              on_click=_check_account if own_accounts else _check_password)
    failed = st.session_state.pop(_AUTH_FAILED, False)
    if failed and own_accounts:
        st.error("Wrong name or password. Check both; an administrator can reset your password if you forgot it.",
                 icon=":material/block:")
    elif failed:
        st.error("Wrong password. Ask whoever runs the dashboard for the shared password.", icon=":material/block:")
    if st.session_state.pop(_DB_DOWN, False):
        st.error("The database cannot be reached, so your password could not be checked. Try again shortly.",
                 icon=":material/error:")
    # While this client must wait (its own wrong passwords, or many from everywhere), say how long; a
    # password submitted meanwhile is refused unchecked (_check_password). The short spacing of a busy
    # gate is only said to whom it held up: someone who just opened the form has not tried yet.
    refused = st.session_state.pop(_REFUSED, None)
    wait = throttle.for_gate(settings_now).wait(client_key())
    if wait is not None and wait.reason == throttle.BUSY and not (failed or refused):
        wait = None
    wait = wait or refused
    if wait is not None:
        _show_wait(wait)


def logout(settings: Settings) -> None:
    """A sidebar button that ends the session's login."""
    kind = gate_kind(settings)
    if kind == "none" or not st.sidebar.button("Log out", key="logout", icon=":material/logout:"):
        return
    # The session's upload, results and user name go with the login: whoever signs in next on this
    # browser (another user, same password) starts empty.
    state.free_uploaded_file()
    session = _session_id()
    if session is not None:
        front_door.mark_signed_out(session)
    st.session_state.clear()
    if kind == "oidc":
        st.logout()
    st.rerun()
