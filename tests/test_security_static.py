"""Access (issue 5), read from the configuration and the source: what no single run of the app can show.

- XSRF protection on, the upload limit, no usage statistics, no error details, nothing in the deployment's
  start command or run.sh that turns them off; secrets are never committed;
- there is no pages/ folder; no page renders HTML (no unsafe_allow_html, st.html or components) on any of
  its branches;
- SQL goes through bound parameters: the only SQL strings built with interpolation interpolate the
  schema's fixed column names (reviewed here); ruff's S608 (SQL injection), which ./test.sh's ruff
  enforces, is suppressed only on the reviewed statements.

What the gate does is tested by running the dashboard (tests/test_app_security.py): every page file,
through app.py or on its own, shows only the login before sign-in and reads no database; the password is
compared with hmac.compare_digest on bytes, and wrong ones of the same length are refused; writing pages
refuse a shared database without a gate; text from the file reaches Markdown escaped.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from importer.database import loader as load
from schemas.customer import FIELD_NAMES

ROOT = Path(__file__).resolve().parent.parent
VIEWS = sorted((ROOT / "views").glob("*.py"))
DASHBOARD = [ROOT / "app.py", *sorted((ROOT / "ui").glob("*.py")), *VIEWS]
ENGINE = sorted((ROOT / "importer").rglob("*.py"))


def tree_of(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


# --- server configuration ------------------------------------------------------------------------------


def test_streamlit_config_hardening():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["server"]["enableXsrfProtection"] is True
    assert config["server"].get("enableCORS", True) is True
    assert config["server"]["maxUploadSize"] == 50
    assert config["browser"]["gatherUsageStats"] is False
    assert config["client"]["showErrorDetails"] not in ("full", "stacktrace", True)
    assert config["client"]["showErrorDetails"] in ("none", "type", False)
    assert config.get("global", {}).get("developmentMode", False) is False
    assert config["server"].get("enableStaticServing", False) is False
    # Secrets live in secrets.toml only.
    text = (ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8")
    assert not re.search(r"(?im)^\s*(app_password|database_url|password|client_secret|cookie_secret)\s*=", text)


def test_maximum_upload_matches_the_engine_default():
    from importer.settings import Settings

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["server"]["maxUploadSize"] == Settings.from_env({}).max_upload_mb


WEAKENING = re.compile(
    r"enableXsrfProtection[\s=]+false|enableCORS[\s=]+false|showErrorDetails[\s=]+(full|stacktrace|true)|"
    r"developmentMode[\s=]+true|STREAMLIT_SERVER_ENABLE_XSRF_PROTECTION|STREAMLIT_SERVER_ENABLE_CORS|"
    r"STREAMLIT_CLIENT_SHOW_ERROR_DETAILS",
    re.I,
)


@pytest.mark.parametrize("name", ["render.yaml", "run.sh"])
def test_start_commands_do_not_weaken_the_config(name):
    text = (ROOT / name).read_text(encoding="utf-8")
    assert not WEAKENING.search(text)


def test_render_deploys_with_a_generated_password():
    text = (ROOT / "render.yaml").read_text(encoding="utf-8")
    start = re.search(r"(?m)^\s*startCommand:\s*(.+)$", text)
    assert start is not None and start.group(1).startswith("python -m importer.server.serve run app.py")
    # The first admin's password is generated (accounts, issue 21); no shared APP_PASSWORD.
    assert re.search(r"-\s*key:\s*ADMIN_PASSWORD\s*\n\s*generateValue:\s*true", text)
    assert "APP_PASSWORD" not in text.split("envVars:", 1)[1]


def test_render_trusts_one_proxy_hop_never_every_forwarded_address():
    text = (ROOT / "render.yaml").read_text(encoding="utf-8")
    assert re.search(r"-\s*key:\s*TRUSTED_PROXY_HOPS\s*\n\s*value:\s*\"1\"", text)
    assert "FORWARDED_ALLOW_IPS" not in text


def test_secrets_are_never_committed():
    assert ".streamlit/secrets.toml" in (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    tracked = subprocess.run(["git", "ls-files", ".streamlit"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    assert ".streamlit/secrets.toml" not in tracked


# --- the page files -------------------------------------------------------------------------------------


def test_no_pages_folder():
    """A pages/ folder would let Streamlit run a page file without app.py's gate (see docs/DASHBOARD.md)."""
    assert not (ROOT / "pages").exists()


def test_no_page_renders_html():
    found = []
    for path in DASHBOARD:
        text = path.read_text(encoding="utf-8")
        for pattern in (r"unsafe_allow_html\s*=\s*True", r"\bst\.html\(", r"components\.v1", r"\.html\("):
            found += [f"{path.name}: {pattern}" for _ in re.finditer(pattern, text)]
    assert found == []


# --- SQL: bound parameters only ----------------------------------------------------------------------------

STATEMENT = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|COPY|CREATE|DROP|ALTER|TRUNCATE|PRAGMA|WITH)\b")
# Reviewed: each interpolates only the schema's fixed column names.
ALLOWED_INTERPOLATIONS = {
    "', '.join(_INSERT_COLUMNS)", "', '.join((f'{name} text' for name in FIELD_NAMES))",
    # importer/database/matching.py, reviewed: the stored columns (a module constant), insert_many's table and
    # column names (every caller passes a Table's .name and a tuple of literals), and the UPDATE's
    # `field = v.field` list and its VALUES source (FIELD_NAMES and placeholders only).
    "', '.join(_STORED)", "table", "', '.join(columns)", "sets", "source",
}
# Reviewed suppressions of ruff's S608: every value in these statements is a bound parameter.
REVIEWED_S608 = {"loader.py": 1, "matching.py": 4}
RUNNERS = {"execute", "exec_driver_sql", "text", "copy_expert", "executemany", "executescript"}


def _built_sql(path: Path) -> list[tuple[int, list[str]]]:
    """(line, interpolated expressions) of each SQL statement built from pieces in path."""
    out = []
    for node in ast.walk(tree_of(path)):
        if isinstance(node, ast.JoinedStr):
            head = node.values[0]
            if isinstance(head, ast.Constant) and STATEMENT.match(str(head.value)):
                out.append((node.lineno, [ast.unparse(v.value) for v in node.values
                                          if isinstance(v, ast.FormattedValue)]))
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mod):
            left = node.left
            while isinstance(left, ast.BinOp):
                left = left.left
            if isinstance(left, ast.Constant) and STATEMENT.match(str(left.value)):
                pieces = [ast.unparse(n) for n in (node.left, node.right)
                          if not (isinstance(n, ast.Constant | ast.JoinedStr))]
                out.append((node.lineno, pieces))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format"
              and isinstance(node.func.value, ast.Constant) and STATEMENT.match(str(node.func.value.value))):
            out.append((node.lineno, ["str.format"]))
    return out


def test_sql_built_from_pieces_only_interpolates_column_names():
    found = {f"{path.name}:{line}": pieces for path in [*ENGINE, *DASHBOARD] for line, pieces in _built_sql(path)}
    assert found, "the scan finds the loader's statements (else it is broken)"
    unexpected = {where: p for where, p in found.items() if not set(p) <= ALLOWED_INTERPOLATIONS}
    assert unexpected == {}
    # ...and those names are plain identifiers from the schema.
    assert set(load._INSERT_COLUMNS) == {*FIELD_NAMES, "import_run_id", "source_row_number"}
    assert all(re.fullmatch(r"[a-z_]+", name) for name in load._INSERT_COLUMNS)


def test_statements_are_never_formatted_at_the_call():
    """execute/exec_driver_sql/text/copy_expert get a constant, a name or a SQLAlchemy construct, never an
    f-string, % or .format built right there."""
    found = []
    for path in [*ENGINE, *DASHBOARD]:
        for node in ast.walk(tree_of(path)):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name not in RUNNERS:
                continue
            arg = node.args[0]
            built = isinstance(arg, ast.JoinedStr | ast.BinOp) or (
                isinstance(arg, ast.Call) and isinstance(arg.func, ast.Attribute) and arg.func.attr == "format")
            if built and not (isinstance(arg, ast.JoinedStr) and
                              {ast.unparse(v.value) for v in arg.values if isinstance(v, ast.FormattedValue)}
                              <= ALLOWED_INTERPOLATIONS):
                found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)[:100]}")
    assert found == []


def test_s608_suppressions_are_the_reviewed_ones():
    """ruff's S608 (SQL built from strings) is enforced by ./test.sh's `ruff check` (pyproject.toml selects
    it); what ruff cannot say is that each `noqa: S608` is one of the reviewed statements of fixed names: the
    loader's multi-row INSERT, and matching.py's key lookup, multi-row INSERT and bulk UPDATE."""
    noqa = [p.name for p in [*ENGINE, *DASHBOARD] for line in p.read_text().splitlines() if "noqa: S608" in line]
    assert {name: noqa.count(name) for name in set(noqa)} == REVIEWED_S608
