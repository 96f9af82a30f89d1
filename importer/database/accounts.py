"""The dashboard's accounts: names and password hashes in the database, and who may act on what.

Plain engine code (no Streamlit): `python -m importer users ...` (importer.accounts_cli) manages them, the
dashboard's gate (ui/auth.py) verifies them, and the workspace store, the ledger and the background jobs
ask `check_may_act` before they act on something another account owns.

- A name is kept as given (trimmed, inner spaces collapsed) and looked up by its *key*: NFKC-normalised
  and case-folded, so "Ama", " ama " and "AMA" are one account and cannot be added twice.
- Passwords are hashed with Argon2id (argon2-cffi) at OWASP's minimum parameters (19 MiB, 2 passes,
  1 lane): about 20-40 ms and 19 MB per check, which a 512 MB server can afford for a few at once.
- A disabled account keeps its row (runs and workspaces name it) but cannot sign in.
"""

from __future__ import annotations

import datetime as dt
import functools
import unicodedata
from dataclasses import dataclass

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from importer.database.schema import accounts, db_errors
from importer.errors import NotYours, UsageError
from importer.identity import Actor

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
MAX_NAME_LENGTH = 100

_HASHER = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the name is unknown, so an unknown name costs as much time as a wrong password.
    Made at the first sign-in, not at import: every CLI start imports this module (its users command)."""
    return _HASHER.hash("not a password of anyone: equal timing for unknown names")


@dataclass(frozen=True)
class Account:
    id: int
    name: str
    is_admin: bool
    created_at: dt.datetime
    disabled_at: dt.datetime | None

    @property
    def active(self) -> bool:
        return self.disabled_at is None


def clean_name(name: str) -> str:
    """The name as stored and shown: trimmed, runs of spaces as one."""
    return " ".join(unicodedata.normalize("NFKC", name or "").split())


def name_key(name: str) -> str:
    """What names are compared by: " Ama " and "AMA" are the same account."""
    return clean_name(name).casefold()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _check_name(name: str) -> str:
    cleaned = clean_name(name)
    if not cleaned:
        raise UsageError("an account needs a name")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise UsageError(f"an account name has at most {MAX_NAME_LENGTH} characters")
    if any(unicodedata.category(ch).startswith("C") for ch in cleaned):
        raise UsageError("an account name cannot hold control characters")
    return cleaned


def check_password(password: str) -> None:
    """Refuses a password too short or too long to be one (NIST SP 800-63B: length, no composition rules)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UsageError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise UsageError(f"a password has at most {MAX_PASSWORD_LENGTH} characters")


def _account(row: sa.Row) -> Account:
    return Account(id=row.id, name=row.name, is_admin=bool(row.is_admin), created_at=row.created_at,
                   disabled_at=row.disabled_at)


def add_account(engine: sa.Engine, name: str, password: str, is_admin: bool = False) -> Account:
    """A new account; UsageError if the name (in any case or spacing) is taken or the password too short."""
    cleaned = _check_name(name)
    check_password(password)
    hashed = _HASHER.hash(password)
    with db_errors(engine):
        try:
            with engine.begin() as conn:
                conn.execute(accounts.insert().values(
                    name=cleaned, name_key=name_key(cleaned), password_hash=hashed, is_admin=is_admin,
                    created_at=_now(),
                ))
        except sa.exc.IntegrityError as exc:
            raise UsageError(f"an account named {cleaned!r} already exists") from exc
    return _existing(engine, cleaned)


def get_account(engine: sa.Engine, name: str) -> Account | None:
    with db_errors(engine), engine.connect() as conn:
        row = conn.execute(sa.select(accounts).where(accounts.c.name_key == name_key(name))).first()
    return _account(row) if row else None


def _existing(engine: sa.Engine, name: str) -> Account:
    found = get_account(engine, name)
    if found is None:
        raise UsageError(f"no account named {clean_name(name)!r} (see: python -m importer users list)")
    return found


def list_accounts(engine: sa.Engine) -> list[Account]:
    with db_errors(engine), engine.connect() as conn:
        rows = conn.execute(sa.select(accounts).order_by(accounts.c.name_key)).all()
    return [_account(row) for row in rows]


def has_accounts(engine: sa.Engine) -> bool:
    """Whether any account exists (disabled ones too: disabling everyone must not open the gate)."""
    with db_errors(engine), engine.connect() as conn:
        return conn.execute(sa.select(accounts.c.id).limit(1)).first() is not None


def disable_account(engine: sa.Engine, name: str) -> Account:
    """The account can no longer sign in (its runs and workspaces keep naming it)."""
    found = _existing(engine, name)
    with db_errors(engine), engine.begin() as conn:
        conn.execute(accounts.update().where(accounts.c.id == found.id, accounts.c.disabled_at.is_(None))
                     .values(disabled_at=_now()))
    return _existing(engine, name)


def reset_password(engine: sa.Engine, name: str, password: str, enable: bool = True) -> Account:
    """A new password for the account (and, with enable, a disabled account signs in again)."""
    found = _existing(engine, name)
    check_password(password)
    values: dict[str, object] = {"password_hash": _HASHER.hash(password)}
    if enable:
        values["disabled_at"] = None
    with db_errors(engine), engine.begin() as conn:
        conn.execute(accounts.update().where(accounts.c.id == found.id).values(**values))
    return _existing(engine, name)


def set_admin(engine: sa.Engine, name: str, is_admin: bool) -> Account:
    found = _existing(engine, name)
    with db_errors(engine), engine.begin() as conn:
        conn.execute(accounts.update().where(accounts.c.id == found.id).values(is_admin=is_admin))
    return _existing(engine, name)


def verify(engine: sa.Engine, name: str, password: str) -> Account | None:
    """The account if name and password are right and it is not disabled, else None.

    An unknown name and a disabled account cost one Argon2 check too (against a dummy hash), so the
    time taken does not tell which names exist.
    """
    with db_errors(engine), engine.connect() as conn:
        row = conn.execute(sa.select(accounts).where(accounts.c.name_key == name_key(name))).first()
    stored = row.password_hash if row is not None else _dummy_hash()
    try:
        _HASHER.verify(stored, password)
        right = row is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        right = False
    if not right or row is None or row.disabled_at is not None:
        return None
    if _HASHER.check_needs_rehash(stored):  # parameters raised since: store the stronger hash
        with db_errors(engine), engine.begin() as conn:
            conn.execute(accounts.update().where(accounts.c.id == row.id)
                         .values(password_hash=_HASHER.hash(password)))
    return _account(row)


def ensure_first_admin(engine: sa.Engine, name: str, password: str) -> Account | None:
    """Creates the admin name/password when no account exists yet (ADMIN_NAME / ADMIN_PASSWORD at start).

    Returns the new account, or None when accounts already exist (the variables are then ignored: they
    never reset a password). Two processes starting at once: the unique name lets one win.
    """
    if not name.strip() or not password or has_accounts(engine):
        return None
    try:
        return add_account(engine, name, password, is_admin=True)
    except UsageError:
        if has_accounts(engine):
            return None
        raise


def is_admin(engine: sa.Engine, name: str) -> bool:
    """Whether name is an active admin account (the CLI's OS user and OIDC names usually are not)."""
    found = get_account(engine, name)
    return bool(found and found.active and found.is_admin)


def check_actor(engine: sa.Engine, actor: Actor | None, owner: str | None, what: str) -> None:
    """check_may_act for an Actor (importer.identity): the engine's call before it acts for someone.

    None is the engine itself (a completed import discarding its workspace, a replay for a resume already
    checked): nothing to check. The accounts table is asked whether the actor is an admin only when it
    acts on what another owns, and only when the actor does not say (the command line says it is).
    """
    if actor is None or not owner or not owner.strip() or name_key(actor.name) == name_key(owner):
        return
    admin = actor.admin if actor.admin is not None else is_admin(engine, actor.name)
    if admin:
        return
    check_may_act(actor.name, owner, admin, what, admins=admin_names(engine))


def admin_names(engine: sa.Engine, shown: int = 3) -> list[str]:
    """The active admins' names (at most `shown`), for a refusal to say whom to ask."""
    with db_errors(engine), engine.connect() as conn:
        return list(conn.execute(sa.select(accounts.c.name).where(
            accounts.c.is_admin == sa.true(), accounts.c.disabled_at.is_(None))
            .order_by(accounts.c.name_key).limit(shown)).scalars())


def check_may_act(actor: str, owner: str | None, actor_is_admin: bool, what: str,
                  admins: list[str] | None = None) -> None:
    """The one ownership rule: the owner acts on what it owns, an admin on anything; else NotYours.

    what names the thing and the action, e.g. "resume workspace 3". Owners are compared by name_key
    (" Ama " is ama). Something with no recorded owner (from before owners were recorded) is anyone's.
    admins: the admins' names, when known, so the refusal names them too.
    """
    if not owner or not owner.strip() or actor_is_admin or name_key(actor) == name_key(owner):
        return
    raise NotYours(
        f"Cannot {what}: it belongs to {clean_name(owner)}, and you are signed in as {clean_name(actor)}. "
        + (f"Ask {clean_name(owner)} to do it, or an admin: {', '.join(clean_name(a) for a in admins)}."
           if admins else
           f"Ask {clean_name(owner)} to do it, or an administrator.")
    )
