"""Access and injection (issue 5, "Access"): the gate in front of every page, and hostile values.

1. With APP_PASSWORD set and customer data already in the session (an upload, a dry run, an import
   result) and in the database (runs with failures), no page shows any of it, nor a file uploader or a
   download, before the right password; a wrong one is refused, the same length too (the comparison is
   hmac.compare_digest on bytes). The same with an OIDC `[auth]` section. Every page file in views/
   guards itself: run on its own, without app.py, it shows only the login; nothing before the gate
   reads the database. Without any gate, the writing pages refuse a shared database (PostgreSQL).
2. SQL and HTML/Markdown fragments as names, company names and nicknames go through the engine on
   SQLite and PostgreSQL (both insert methods) and come back verbatim; the tables survive.
3. The dashboard shows them as text: verbatim in dataframes and the grid, and escaped wherever text from
   the file (file name, sheet name, headers) reaches a Markdown element or a widget label.

tests/test_app_auth.py covers the basic gate (wrong/right password, logout, throttling); tests/test_security_static.py
the configuration and the source-wide checks (XSRF, no HTML, bound parameters).
"""

from __future__ import annotations

import datetime as dt
import hmac
import os
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from importer.api import read_upload
from importer.database.ledger import list_runs, run_failures
from importer.database.loader import run_import
from importer.database.lookup import existing_customers
from importer.database.schema import ensure_schema, make_engine
from importer.settings import Settings
from tests.app_support import APP, finish_import, import_file, make_app, messy_xlsx, to_review, upload
from tests.app_support import customers as count_customers
from tests.fixtures import corpus
from tests.test_app_auth import sign_in
from ui import keys
from ui.render import md_escape

PASSWORD = "correct horse battery staple"
ROOT = Path(__file__).resolve().parent.parent
# Every page file: a page added to views/ is covered by the gate tests without being listed here.
PAGES = tuple(sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "views").glob("*.py")))
WRITING_PAGES = ("views/upload.py", "views/review.py", "views/load.py")
# Pages that show stored customers: without a gate on a shared database they show nothing but why.
CUSTOMER_DATA_PAGES = ("views/customers.py",)
UNREACHABLE_DATABASE = "postgresql://postgres@127.0.0.1:1/customers"  # nothing listens on port 1
# Values of tests.app_support.MESSY_ROWS: if any shows up in the page, customer data leaked.
SECRETS_OF_THE_FILE = ("PM1 KOFI", "Kofi", "Mensah", "0241234567", "kofi@example.com", "messy.xlsx")
# Elements that hold customer data or take a file.
DATA_ELEMENTS = ("dataframe", "data_editor", "file_uploader", "download_button", "metric", "table",
                 "arrow_data_frame", "vega_lite_chart", "json")

HOSTILE = (
    "'); DROP TABLE customers;--",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "Robert'); --",
    '" OR 1=1 --',
    "**bold** _md_ [link](http://evil)",
    r"back\slash \N \. %s $1 {0}",
)
HOSTILE_FIELDS = ("first_name", "last_name", "company_name", "nickname")
HOSTILE_HEADER = ["Shipping Mark", "First Name", "Last Name", "Phone", "Company Name", "Nickname", "Region",
                  "**Notes** [x](http://evil) <b>"]
# Excel forbids / \ ? * [ ] : in sheet names; the rest is fair game (at most 31 characters).
HOSTILE_SHEET = "_<img src=x onerror=alert(1)>_"
# Browsers send the base name only (no /).
HOSTILE_FILE = "**evil** <img src=x onerror=alert(1)> [a](x) www.evil.example.xlsx"
# The hostile markup of this file, unescaped: none may reach a Markdown element or widget label.
RAW_MARKUP = re.compile(
    r"(?<!\\)(<img|<script|<b>|\[link\]|\[x\]|\[a\]|\*\*bold|\*\*evil|\*\*Notes|\*\*Mark|_md_|:red\[|://|www\.evil)")


def _hostile_rows() -> list[list[str]]:
    """One valid row per hostile value (it appears in each of the four text fields), one failing row."""
    rows = []
    n = len(HOSTILE)
    for i in range(n):
        names = [HOSTILE[(i + k) % n] for k in range(len(HOSTILE_FIELDS))]
        rows.append([f"SEC{i}", names[0], names[1], f"024111000{i}", names[2], names[3], "Ashanti", HOSTILE[i]])
    # Fails: a bad phone and a region that is itself a fragment (both messages quote the value).
    rows.append(["SECBAD", HOSTILE[5], HOSTILE[2], "12", HOSTILE[0], HOSTILE[1], HOSTILE[5], ""])
    return rows


def hostile_xlsx() -> bytes:
    return corpus.xlsx({HOSTILE_SHEET: [HOSTILE_HEADER, *_hostile_rows()]})


def expected_stored() -> dict[str, tuple[str, ...]]:
    return {row[0]: (row[1], row[2], row[4], row[5]) for row in _hostile_rows() if row[0] != "SECBAD"}


# --- helpers ------------------------------------------------------------------------------------------


def everything(at: AppTest) -> str:
    """Every element of the page, main and sidebar, as its protobuf text (dataframes' Arrow bytes too)."""
    return "\n".join(str(node.proto) for part in (at.main, at.sidebar) for node in part
                     if getattr(node, "proto", None) is not None)


def data_elements(at: AppTest) -> list[str]:
    return [kind for kind in DATA_ELEMENTS if at.get(kind)]


def assert_only_the_login(at: AppTest, *, form: bool = True) -> None:
    """The closed gate: the login title, the login form (or OIDC button), nothing of the customers."""
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title] == ["Customer import"]
    assert data_elements(at) == []
    page = everything(at)
    leaked = [value for value in SECRETS_OF_THE_FILE if value in page]
    assert leaked == []
    assert not at.sidebar.markdown and not at.sidebar.button  # no database name or customer count
    widget_keys = {w.key for w in at.main if getattr(w, "key", None)}
    if form:
        assert widget_keys <= {keys.LOGIN_NAME, keys.LOGIN_PASSWORD, "login_form"} | {
            b.key for b in at.get("form_submit_button")}
        # The shared login, or own accounts (also when the database cannot say whether there are any).
        assert [w.label for w in at.text_input] in (["Your name (recorded with your imports)", "Password"],
                                                    ["Name", "Password"])
        assert at.text_input(key=keys.LOGIN_PASSWORD).proto.type == at.text_input(
            key=keys.LOGIN_PASSWORD).proto.PASSWORD


def session_with_customer_data(at: AppTest, settings: Settings) -> None:
    """What a signed-in user would leave in the session: an parsed, its dry run, an import's result."""
    parsed = read_upload(messy_xlsx(), "messy.xlsx", settings)
    at.session_state[keys.UPLOAD] = parsed
    at.session_state[keys.VERSION] = 1
    engine = make_engine(settings.database_url)
    try:
        ensure_schema(engine)
        args = {"file_name": parsed.file_name, "sha256": parsed.sha256, "sheet": parsed.sheet, "settings": settings}
        at.session_state[keys.RESULT] = run_import(engine, parsed.checked, dry_run=True, **args)
        at.session_state[keys.RESULT_FOR] = 1
        at.session_state[keys.RESULT] = run_import(engine, parsed.checked, user_name="Akosua", **args)
    finally:
        engine.dispose()


@pytest.fixture
def gated(monkeypatch, sqlite_url) -> AppTest:
    """The dashboard behind APP_PASSWORD with a run (4 failures) in the database and data in the session."""
    at = make_app(monkeypatch, sqlite_url, password=PASSWORD)
    session_with_customer_data(at, Settings.from_env({"DATABASE_URL": sqlite_url}))
    return at


# --- 1. the gate, page by page --------------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES)
def test_every_page_shows_only_the_login_before_sign_in(gated, page):
    gated.switch_page(page).run()
    assert_only_the_login(gated)
    # Reloading, or reaching the page by its URL again, changes nothing.
    gated.run()
    assert_only_the_login(gated)


@pytest.mark.parametrize("page", PAGES)
def test_wrong_password_on_every_page_shows_nothing(gated, page):
    gated.switch_page(page).run()
    for attempt in ("", "wrong", PASSWORD.upper(), PASSWORD + " ", PASSWORD[:-1]):
        sign_in(gated, attempt, name="Mallory")
        assert [e.value for e in gated.error] == [
            "Wrong password. Ask whoever runs the dashboard for the shared password."]
        assert_only_the_login(gated)
        assert not gated.session_state.get(keys.PASSWORD_OK)


def test_right_password_opens_the_data_that_was_hidden(gated):
    gated.switch_page("views/review.py").run()
    sign_in(gated, PASSWORD, name="Akosua")
    assert not gated.exception
    assert gated.title[0].value == "Review and fix"
    assert "PM2 AMA" in gated.data_editor[0].value["shipping_mark"].tolist()
    assert "PM2 AMA" in everything(gated)  # the leak detector of assert_only_the_login does see the grid
    gated.switch_page("views/history.py").run()
    assert gated.dataframe[0].value.loc[0, "File"] == "messy.xlsx [Customers]"
    assert gated.download_button(key=keys.HISTORY_CSV) is not None


def test_history_reports_and_undo_are_behind_the_gate(gated):
    """Runs with failures exist, so an open History would show the run table, two reports and undo."""
    gated.switch_page("views/history.py").run()
    assert_only_the_login(gated)
    widget_keys = {getattr(w, "key", None) for w in gated.main}
    assert not widget_keys & {keys.HISTORY_CSV, keys.HISTORY_XLSX, keys.UNDO, keys.UNDO_YES, keys.HISTORY_RUN}
    assert not gated.selectbox and not gated.get("vega_lite_chart")
    # A run's undo confirmation pending in the session does not act either.
    gated.session_state[keys.UNDO_CONFIRM] = 1
    gated.run()
    assert_only_the_login(gated)
    assert count_customers(os.environ["DATABASE_URL"]) == 2  # the run was not undone


def test_import_page_download_is_behind_the_gate(gated):
    gated.switch_page("views/load.py").run()
    assert_only_the_login(gated)
    assert not {b.key for b in gated.button} & {keys.DRY_RUN_BUTTON, keys.IMPORT_BUTTON}


def test_password_check_uses_compare_digest_with_the_typed_and_expected_values(gated, monkeypatch):
    calls = []
    real = hmac.compare_digest

    def recording(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)
    sign_in(gated, "not it")
    sign_in(gated, PASSWORD)
    assert calls == [(b"not it", PASSWORD.encode()), (PASSWORD.encode(), PASSWORD.encode())]
    assert gated.title[0].value == "Upload a customer file"


@pytest.mark.parametrize("typed", [
    PASSWORD[:-1] + "x",  # the last character differs
    "X" + PASSWORD[1:],  # the first one
    PASSWORD.swapcase(),
    PASSWORD[::-1],
    "\0" * len(PASSWORD),
], ids=["last", "first", "case", "reversed", "nul"])
def test_a_wrong_password_of_the_same_length_is_refused(gated, typed):
    assert len(typed) == len(PASSWORD)
    sign_in(gated, typed)
    assert [e.value for e in gated.error] == ["Wrong password. Ask whoever runs the dashboard for the shared password."]
    assert_only_the_login(gated)
    sign_in(gated, PASSWORD)
    assert gated.title[0].value == "Upload a customer file"


@pytest.mark.parametrize("page", PAGES)
def test_every_page_file_run_without_the_app_shows_only_the_login(monkeypatch, sqlite_url, page):
    """A page reached without app.py's gate (run on its own, as a pages/ folder would let Streamlit do) still
    shows nothing but the login: each page guards itself before anything else."""
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("APP_PASSWORD", PASSWORD)
    at = AppTest.from_file(str(ROOT / page), default_timeout=90)
    session_with_customer_data(at, Settings.from_env({"DATABASE_URL": sqlite_url}))
    at.run()
    assert_only_the_login(at)
    assert not at.error and not at.warning


@pytest.mark.parametrize("page", PAGES)
def test_closed_gate_touches_no_database(monkeypatch, page):
    """Nothing before the gate reads the database (nor fills the sidebar): with an unreachable database,
    every page, through the app or on its own, shows the login and no database error."""
    monkeypatch.setenv("DATABASE_URL", UNREACHABLE_DATABASE)
    monkeypatch.setenv("APP_PASSWORD", PASSWORD)
    through_app = AppTest.from_file(APP, default_timeout=90).run()
    through_app.switch_page(page).run()
    alone = AppTest.from_file(str(ROOT / page), default_timeout=90).run()
    for at in (through_app, alone):
        assert_only_the_login(at)
        assert not at.error and not at.warning and not at.sidebar


@pytest.mark.postgres
@pytest.mark.parametrize("page", PAGES)
def test_pages_refuse_to_write_to_a_shared_database_without_a_gate(monkeypatch, pg_url, page):
    """No APP_PASSWORD and no [auth] on PostgreSQL: the writing pages show why and nothing to act on, even with
    an upload, a dry run and a result in the session; History still lists runs but offers no undo."""
    at = make_app(monkeypatch, pg_url)
    session_with_customer_data(at, Settings.from_env({"DATABASE_URL": pg_url}))
    at.switch_page(page).run()
    assert not at.exception
    if page in WRITING_PAGES:
        assert len(at.error) == 1 and "no login configured" in at.error[0].value
        assert data_elements(at) == []
        assert not at.button and not at.selectbox and not at.text_input
    elif page in CUSTOMER_DATA_PAGES:
        assert len(at.warning) == 1 and "no login configured" in at.warning[0].value
        assert data_elements(at) == [] and not at.get("download_button")
        assert not at.button and not at.selectbox and not at.text_input
    else:
        assert "no login configured" in at.warning[0].value
        assert at.dataframe[0].value.loc[0, "File"] == "messy.xlsx [Customers]"
        widget_keys = {getattr(w, "key", None) for w in at.main}
        assert not widget_keys & {keys.UNDO, keys.UNDO_YES, keys.UNDO_CONFIRM}
    assert count_customers(pg_url) == 2


def test_non_ascii_password_works_and_typed_password_is_not_kept(monkeypatch, sqlite_url):
    at = make_app(monkeypatch, sqlite_url, password="pässwörd ✓")
    sign_in(at, "passwort")
    assert at.session_state[keys.LOGIN_PASSWORD] == ""
    sign_in(at, "pässwörd ✓")
    assert at.title[0].value == "Upload a customer file"
    assert at.session_state[keys.LOGIN_PASSWORD] == ""  # the password does not stay in the session


def test_logout_closes_every_page(gated):
    sign_in(gated, PASSWORD)
    gated.sidebar.button(key="logout").click().run()
    for page in PAGES:
        gated.switch_page(page).run()
        assert_only_the_login(gated)


# --- 1b. OIDC ([auth] in secrets) -----------------------------------------------------------------------

AUTH = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "a-long-random-cookie-secret-for-tests",
    "client_id": "client",
    "client_secret": "secret",
    "server_metadata_url": "https://accounts.example.com/.well-known/openid-configuration",
}


def oidc_app(monkeypatch, sqlite_url, auth: dict, user: dict) -> AppTest:
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("APP_PASSWORD", PASSWORD)  # [auth] wins over the password
    at = AppTest.from_file(APP, default_timeout=90)
    at.secrets["auth"] = auth
    at.user = user
    at.run()
    session_with_customer_data(at, Settings.from_env({"DATABASE_URL": sqlite_url}))
    return at


@pytest.mark.parametrize("page", PAGES)
def test_oidc_not_logged_in_shows_only_the_login_button(monkeypatch, sqlite_url, page):
    at = oidc_app(monkeypatch, sqlite_url, AUTH, {"is_logged_in": False})
    at.switch_page(page).run()
    assert_only_the_login(at, form=False)
    assert [b.label for b in at.button] == ["Log in"]
    assert not at.text_input  # no password form when single sign-on is configured


def test_oidc_named_providers_one_button_each(monkeypatch, sqlite_url):
    auth = {"redirect_uri": AUTH["redirect_uri"], "cookie_secret": AUTH["cookie_secret"],
            "google": {k: AUTH[k] for k in ("client_id", "client_secret", "server_metadata_url")},
            "microsoft": {k: AUTH[k] for k in ("client_id", "client_secret", "server_metadata_url")}}
    at = oidc_app(monkeypatch, sqlite_url, auth, {"is_logged_in": False})
    at.switch_page("views/history.py").run()
    assert_only_the_login(at, form=False)
    assert sorted(b.label for b in at.button) == ["Log in with Google", "Log in with Microsoft"]


def test_oidc_user_without_login_flag_sees_nothing(monkeypatch, sqlite_url):
    """AppTest's default st.user has no is_logged_in (a real session always has it with [auth]): the
    gate must still not open."""
    at = oidc_app(monkeypatch, sqlite_url, AUTH, {"email": "someone@example.com"})
    at.switch_page("views/history.py").run()
    assert not at.dataframe and not at.download_button and not at.data_editor
    assert not [v for v in SECRETS_OF_THE_FILE if v in everything(at)]


def test_oidc_logged_in_opens_and_records_the_email(monkeypatch, sqlite_url):
    at = oidc_app(monkeypatch, sqlite_url, AUTH, {"is_logged_in": True, "email": "ama@example.com", "name": "Ama"})
    at.switch_page("views/history.py").run()
    assert not at.exception
    assert at.title[0].value == "History"
    assert at.dataframe[0].value.loc[0, "File"] == "messy.xlsx [Customers]"


# --- 2. SQL and HTML fragments through the engine ---------------------------------------------------------


@pytest.mark.parametrize(
    ("backend", "method"),
    [("sqlite", "values"), pytest.param("postgresql", "values", marks=pytest.mark.postgres),
     pytest.param("postgresql", "copy", marks=pytest.mark.postgres)],  # COPY is PostgreSQL's
)
def test_sql_and_html_fragments_are_stored_verbatim(request, backend, method):
    database_url = request.getfixturevalue("sqlite_url" if backend == "sqlite" else "pg_url")
    settings = Settings.from_env({"DATABASE_URL": database_url})
    parsed = read_upload(hostile_xlsx(), HOSTILE_FILE, settings)
    assert parsed.sheet == HOSTILE_SHEET
    engine = make_engine(database_url)
    try:
        ensure_schema(engine)
        result = run_import(engine, parsed.checked, file_name=parsed.file_name, sha256=parsed.sha256,
                            sheet=parsed.sheet, settings=settings, user_name=HOSTILE[0], insert_method=method)
        assert (result.total_created, result.total_failed) == (len(HOSTILE), 1)
        with engine.connect() as conn:
            stored = {row[0]: tuple(row[1:]) for row in conn.execute(
                sa.text("select shipping_mark, first_name, last_name, company_name, nickname from customers"))}
            assert sa.inspect(conn).has_table("customers") and sa.inspect(conn).has_table("import_runs")
        assert stored == expected_stored()
        run = list_runs(engine)[0]
        assert (run.file_name, run.sheet, run.user_name) == (HOSTILE_FILE, HOSTILE_SHEET, HOSTILE[0])
        # The failure report keeps the row as typed, and the messages quote the values verbatim.
        (failure,) = run_failures(engine, result.run_id)
        assert failure.customer_data["first_name"] == HOSTILE[5] and failure.customer_data["company_name"] == HOSTILE[0]
        assert any(HOSTILE[5] in e.message for e in failure.errors)
        # Lookups by a hostile value are bound too: nothing found, nothing dropped.
        for value in HOSTILE:
            assert existing_customers(engine, "shipping_mark", [value]) == []
            assert existing_customers(engine, "email", [value]) == []
        with engine.connect() as conn:
            assert conn.execute(sa.text("select count(*) from customers")).scalar_one() == len(HOSTILE)
    finally:
        engine.dispose()


# --- 3. ... and shown as text in the dashboard --------------------------------------------------------------


def markdown_bodies(at: AppTest) -> list[str]:
    """Every string the browser renders as Markdown: text elements, alerts, and widget labels and help."""
    bodies = [str(e.value) for kind in ("title", "header", "subheader", "markdown", "caption", "info", "success",
                                        "warning", "error", "toast") for e in at.get(kind)]
    for node in (*at.main, *at.sidebar):
        for attr in ("label", "help", "placeholder"):
            value = getattr(getattr(node, "proto", None), attr, None)
            if isinstance(value, str) and value:
                bodies.append(value)
    return bodies


def assert_no_raw_markup(at: AppTest) -> None:
    raw = [body for body in markdown_bodies(at) if RAW_MARKUP.search(body)]
    assert raw == []


def test_md_escape_renders_literally():
    for value in (*HOSTILE, HOSTILE_FILE, HOSTILE_SHEET, "A&B :red[x] `code` ~~s~~ | a | $x$ # h", "a\nb"):
        escaped = md_escape(value)
        assert not RAW_MARKUP.search(escaped)
        assert "\n" not in escaped
        # Every Markdown metacharacter is backslash-escaped, and removing the escapes gives the text back.
        assert not re.search(r"(?<!\\)[`*_\[\]<>#|~$&]", re.sub(r"\\\\", "", escaped))
        assert re.sub(r"\\(.)", r"\1", escaped) == value.replace("\n", " ")
    assert md_escape("customers.xlsx") == "customers.xlsx"
    assert md_escape("Missing required column(s): Phone. Found: S/Mark, Tel No.") == (
        "Missing required column(s): Phone. Found: S/Mark, Tel No.")


def test_hostile_file_renders_as_text_on_every_page(monkeypatch, sqlite_url):
    at = make_app(monkeypatch, sqlite_url)
    to_review(at, HOSTILE_FILE, hostile_xlsx())
    assert not at.exception
    assert_no_raw_markup(at)
    assert f"{md_escape(HOSTILE_FILE)}, sheet {md_escape(HOSTILE_SHEET)}" in [c.value for c in at.caption]
    grid = at.data_editor[0].value
    (bad,) = grid.to_dict("records")
    assert [bad[f] for f in HOSTILE_FIELDS] == [HOSTILE[5], HOSTILE[2], HOSTILE[0], HOSTILE[1]]
    assert HOSTILE[5] in bad["Errors"]  # the message quoting the value is data in the grid, not Markdown

    at.switch_page("views/upload.py").run()
    # The uploaded file was freed on Review; upload again to see the Upload page's own rendering of it.
    upload(at, HOSTILE_FILE, hostile_xlsx())
    assert not at.exception
    assert_no_raw_markup(at)
    assert at.subheader[0].value == md_escape(HOSTILE_FILE)
    assert f"sheet **{md_escape(HOSTILE_SHEET)}**" in at.markdown[0].value + "".join(m.value for m in at.markdown)
    preview = at.dataframe[0].value
    assert preview["First Name"].tolist()[: len(HOSTILE)] == [row[1] for row in _hostile_rows()][: len(HOSTILE)]
    assert preview["Nickname"].tolist()[-1] == HOSTILE[1]
    labels = [s.label for s in at.selectbox]  # the mapping form in its expander
    assert md_escape(HOSTILE_HEADER[-1]) + " (column 8)" in labels

    at.button(key=keys.CONTINUE).click().run()
    at.switch_page("views/load.py").run()
    assert_no_raw_markup(at)
    at.button(key=keys.DRY_RUN_BUTTON).click().run()
    finish_import(at.button(key=keys.IMPORT_BUTTON).click().run())
    assert not at.exception
    assert_no_raw_markup(at)
    engine = sa.create_engine(sqlite_url)
    with engine.connect() as conn:
        stored = {row[0]: tuple(row[1:]) for row in conn.execute(
            sa.text("select shipping_mark, first_name, last_name, company_name, nickname from customers"))}
    engine.dispose()
    assert stored == expected_stored()

    at.switch_page("views/history.py").run()
    assert not at.exception
    assert_no_raw_markup(at)
    assert at.dataframe[0].value.loc[0, "File"] == f"{HOSTILE_FILE} [{HOSTILE_SHEET}]"


def test_refusal_quoting_hostile_headers_is_escaped(monkeypatch, sqlite_url):
    header = ["**Mark** [x](http://evil)", "First Name", "Last Name", "<img src=x onerror=alert(1)>"]
    data = corpus.xlsx({"Customers": [header, ["PM1", "Kofi", "Mensah", "0241234567"]]})
    at = make_app(monkeypatch, sqlite_url)
    upload(at, HOSTILE_FILE, data)
    assert not at.exception
    assert "Missing required column(s)" in at.error[0].value
    assert md_escape(header[0]) in at.error[0].value
    assert_no_raw_markup(at)


def test_hostile_sheet_names_are_escaped_in_the_sheet_choice(monkeypatch, sqlite_url):
    """A workbook of several sheets: the chosen sheet, the choice and the list of sheets show their names as text."""
    other = "<b>x _y_ `z` #h ~s~"
    data = corpus.xlsx({other: [["Notes"], ["x"]], HOSTILE_SHEET: [HOSTILE_HEADER, *_hostile_rows()]})
    at = make_app(monkeypatch, sqlite_url)
    upload(at, HOSTILE_FILE, data)
    assert not at.exception
    assert_no_raw_markup(at)
    assert at.selectbox(key=keys.SHEET).value == HOSTILE_SHEET  # the sheet with the required columns
    assert list(at.selectbox(key=keys.SHEET).options) == [other, HOSTILE_SHEET]
    at.button(key=keys.CONTINUE).click().run()
    at.switch_page("views/upload.py").run()  # the uploader was emptied: the sheets are read from the workspace
    assert not at.exception
    assert_no_raw_markup(at)
    assert list(at.selectbox(key=keys.SHEET).options) == [other, HOSTILE_SHEET]


def test_interrupted_run_of_a_hostile_file_is_escaped_in_history(monkeypatch, sqlite_url):
    at = make_app(monkeypatch, sqlite_url)
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "insert into import_runs (file_name, sha256, sheet, status, started_at, owner, heartbeat_at) "
            "values (:f, 'x', :s, 'running', :t, 'gone-host:1', :t)"),
            {"f": HOSTILE_FILE, "s": HOSTILE_SHEET, "t": dt.datetime(2020, 1, 1)})
    engine.dispose()
    at.switch_page("views/history.py").run()
    assert not at.exception
    assert_no_raw_markup(at)
    # A file without the run's sheet: the engine's refusal quotes the file and sheet names.
    at.file_uploader(key=f"{keys.RESUME_FILE}_1").upload(HOSTILE_FILE, messy_xlsx())
    at.run()
    assert not at.exception
    assert at.error[0].value.startswith(md_escape(HOSTILE_FILE) + " has no sheet named")
    assert_no_raw_markup(at)
    # The right sheet but other content: the page's own message quotes the file name.
    at.file_uploader(key=f"{keys.RESUME_FILE}_1").upload(HOSTILE_FILE, hostile_xlsx())
    at.run()
    assert not at.exception
    assert at.error[0].value.startswith(md_escape(HOSTILE_FILE) + " is not the file run \\#1")
    assert_no_raw_markup(at)


def test_import_of_messy_file_keeps_working(monkeypatch, sqlite_url):
    """The escaping changes nothing for ordinary names: the happy path's texts are as before."""
    at = make_app(monkeypatch, sqlite_url)
    import_file(at, "messy.xlsx", messy_xlsx())
    assert not at.exception
    assert "Run #1: Created 2 customers; 4 rows failed." in [s.value for s in at.success]


def test_logout_drops_the_sessions_customer_data(gated):
    """Whoever signs in next in the same browser session does not find the previous user's upload."""
    sign_in(gated, PASSWORD, name="Akosua")
    gated.switch_page("views/review.py").run()
    assert gated.data_editor  # the upload placed in the session
    gated.sidebar.button(key="logout").click().run()
    assert_only_the_login(gated)
    assert not {keys.UPLOAD, keys.RESULT, keys.RESULT_FOR, keys.USER_NAME, keys.PASSWORD_OK} & set(
        gated.session_state.keys())
    sign_in(gated, PASSWORD, name="Kwesi")
    gated.switch_page("views/review.py").run()
    assert "There is no file to review yet." in [i.value for i in gated.info]
    gated.switch_page("views/load.py").run()
    assert "There is nothing to import yet." in [i.value for i in gated.info]
    assert not [v for v in SECRETS_OF_THE_FILE[:5] if v in everything(gated)]
    gated.switch_page("views/history.py").run()  # what was imported stays in History, for every user
    assert gated.dataframe[0].value.loc[0, "By"] == "Akosua"


def test_oidc_logout_drops_the_sessions_customer_data(monkeypatch, sqlite_url):
    at = oidc_app(monkeypatch, sqlite_url, AUTH, {"is_logged_in": True, "email": "ama@example.com"})
    at.switch_page("views/review.py").run()
    assert at.data_editor
    at.sidebar.button(key="logout").click().run()
    assert not at.exception
    assert_only_the_login(at, form=False)
    assert keys.UPLOAD not in at.session_state
