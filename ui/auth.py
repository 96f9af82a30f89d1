"""The login gate: OIDC via st.login when [auth] is configured, else APP_PASSWORD, else open on SQLite."""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Mapping

import streamlit as st

from importer.identity import current_user
from importer.server import throttle
from importer.settings import Settings
from ui import keys, state
from ui.engine import secrets, settings

_CLIENT_TOKEN = "auth_client_token"  # the session's throttle key when Streamlit gives no IP address
_AUTH_FAILED = "auth_failed"  # the last submitted password was checked and wrong
_REFUSED = "auth_refused"  # throttle.Wait: the last submitted password was refused unchecked


def oidc_providers() -> list[str | None] | None:
    """Providers of the [auth] secrets section ([None] = the single default one); None if not configured."""
    auth = secrets().get("auth")
    if not isinstance(auth, Mapping) or not auth:
        return None
    named = [name for name, value in auth.items() if isinstance(value, Mapping)]
    return [None] if "client_id" in auth or not named else named


def gate_kind(settings: Settings) -> str:
    """"oidc", "password" or "none"."""
    if oidc_providers() is not None:
        return "oidc"
    if settings.app_password:
        return "password"
    return "none"


def is_sqlite(settings: Settings) -> bool:
    return settings.database_url.startswith("sqlite")


def is_open(settings: Settings) -> bool:
    """Whether this session may see the pages."""
    kind = gate_kind(settings)
    if kind == "oidc":
        return bool(st.user.is_logged_in)
    if kind == "password":
        return bool(state.get(keys.PASSWORD_OK))
    return True


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
            "importing and undoing are switched off. Set APP_PASSWORD (or configure [auth] in "
            ".streamlit/secrets.toml for single sign-on) and restart the dashboard."
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
    if kind == "password":
        return current_user(state.get(keys.USER_NAME))
    return current_user()


def client_key() -> str:
    """Whom the login throttle counts wrong passwords of: the IP address, else this session.

    st.context.ip_address is None on localhost (and not a string under AppTest); then a random token in
    the session's state stands for the client (one browser tab's connection; a new one starts afresh,
    which the throttle's server-wide count is there for).
    """
    address = st.context.ip_address
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
    st.write("Enter the dashboard password to upload and import customer spreadsheets.")
    with st.form("login_form"):
        st.text_input("Your name (recorded with your imports)", key=keys.LOGIN_NAME)
        st.text_input("Password", type="password", key=keys.LOGIN_PASSWORD)
        st.form_submit_button("Sign in", type="primary", on_click=_check_password, args=(settings_now,))
    failed = st.session_state.pop(_AUTH_FAILED, False)
    if failed:
        st.error("Wrong password. Ask whoever runs the dashboard for the APP_PASSWORD.", icon=":material/block:")
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
    st.session_state.clear()
    if kind == "oidc":
        st.logout()
    st.rerun()
