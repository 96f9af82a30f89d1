"""Accounts (importer.database.accounts) and `python -m importer users`, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from importer.cli import main
from importer.database import accounts
from importer.database.schema import ensure_schema, make_engine
from importer.errors import UsageError

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "correct horse battery"


@pytest.fixture
def engine(database_url: str):
    engine = make_engine(database_url)
    ensure_schema(engine)
    yield engine
    engine.dispose()


def test_add_verify_and_lookup_by_trimmed_case_folded_name(engine: sa.Engine) -> None:
    made = accounts.add_account(engine, "  Ama   Serwaa ", PASSWORD, is_admin=True)
    assert (made.name, made.is_admin, made.active) == ("Ama Serwaa", True, True)
    assert accounts.verify(engine, "ama serwaa", PASSWORD) == made
    assert accounts.verify(engine, " AMA  SERWAA ", PASSWORD) == made
    assert accounts.verify(engine, "Ama Serwaa", PASSWORD + " ") is None
    assert accounts.verify(engine, "Ama Serwaa", PASSWORD.upper()) is None
    assert accounts.verify(engine, "nobody", PASSWORD) is None
    with pytest.raises(UsageError, match="already exists"):
        accounts.add_account(engine, "AMA SERWAA", "another long password")


def test_hash_is_argon2id_never_the_password(engine: sa.Engine) -> None:
    accounts.add_account(engine, "kofi", PASSWORD)
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT password_hash FROM accounts")).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_short_password_and_empty_name_refused(engine: sa.Engine) -> None:
    with pytest.raises(UsageError, match="at least 12"):
        accounts.add_account(engine, "kofi", "short")
    with pytest.raises(UsageError, match="needs a name"):
        accounts.add_account(engine, "   ", PASSWORD)
    assert not accounts.has_accounts(engine)


def test_disable_and_reset(engine: sa.Engine) -> None:
    accounts.add_account(engine, "kofi", PASSWORD)
    assert accounts.disable_account(engine, "KOFI").disabled_at is not None
    assert accounts.verify(engine, "kofi", PASSWORD) is None  # disabled: the right password is refused
    assert accounts.has_accounts(engine)  # disabling everyone never opens the gate
    reset = accounts.reset_password(engine, "kofi", "a brand new password")
    assert reset.active
    assert accounts.verify(engine, "kofi", PASSWORD) is None
    assert accounts.verify(engine, "kofi", "a brand new password") is not None
    with pytest.raises(UsageError, match="no account named"):
        accounts.disable_account(engine, "nobody")


def test_first_admin_only_when_no_account_exists(engine: sa.Engine) -> None:
    first = accounts.ensure_first_admin(engine, "admin", PASSWORD)
    assert first is not None and first.is_admin
    assert accounts.ensure_first_admin(engine, "admin", "another long password") is None  # never a reset
    assert accounts.verify(engine, "admin", PASSWORD) is not None
    assert accounts.ensure_first_admin(engine, "", PASSWORD) is None


def test_check_may_act() -> None:
    accounts.check_may_act("ama", "ama", False, "resume workspace 1")
    accounts.check_may_act(" AMA ", "ama", False, "resume workspace 1")
    accounts.check_may_act("kofi", "ama", True, "resume workspace 1")  # an admin
    accounts.check_may_act("kofi", None, False, "undo run 1")  # from before owners were recorded
    with pytest.raises(accounts.NotYours, match="Cannot undo run 7: it belongs to ama.*signed in as kofi.*Ask ama"):
        accounts.check_may_act("kofi", "ama", False, "undo run 7")


def test_cli_users(database_url: str, capsys, monkeypatch) -> None:
    def users(*argv: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = main(["users", *argv, "--database-url", database_url])
        out, err = capsys.readouterr()
        return code, out, err

    assert users("list")[1].startswith("No accounts yet")
    assert users("add", " Ama ", "--admin", "--password-stdin", stdin=PASSWORD + "\n")[:2] == (
        0, "Account Ama added (admin).\n")
    code, _, err = users("add", "AMA", "--password-stdin", stdin="another long password\n")
    assert (code, err) == (2, "error: an account named 'AMA' already exists\n")
    code, _, err = users("add", "kofi", "--password-stdin", stdin="short\n")
    assert (code, err) == (2, "error: a password needs at least 12 characters\n")
    code, _, err = users("add", "kofi")  # stdin is no terminal: never a password from anywhere else
    assert code == 2 and "--password-stdin" in err
    assert users("add", "kofi", "--password-stdin", stdin="kofi's password\n")[0] == 0
    assert users("disable", "Kofi")[1] == "Account kofi disabled: it can no longer sign in.\n"
    listing = users("list")[1].splitlines()
    assert listing[1].split()[:3] == ["Ama", "yes", "active"]
    assert listing[2].split()[:3] == ["kofi", "no", "disabled"]
    assert users("reset", "kofi", "--admin", "yes", "--password-stdin", stdin="kofi's new password\n")[0] == 0
    engine = make_engine(database_url)
    try:
        found = accounts.verify(engine, "kofi", "kofi's new password")
        assert found is not None and found.is_admin
    finally:
        engine.dispose()


def test_cli_never_takes_a_password_argument() -> None:
    done = subprocess.run([sys.executable, "-m", "importer", "users", "add", "x", "--password", "p"],
                          cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "unrecognized arguments" in done.stderr
