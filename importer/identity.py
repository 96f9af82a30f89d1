"""Who is acting: the one name every front end records with runs, workspaces, operations and undos.

The dashboard passes the name its gate signed in (the OIDC provider's e-mail or name, or the name typed at
the password gate); the CLI passes nothing and gets the operating system's user. A name is trimmed, so
" ama " and "ama" are one person; with no name at all the OS user stands in, and with no OS user either
(a container without a passwd entry) the process's user id does.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass


def os_user() -> str:
    """The operating system's user of this process."""
    try:
        name = getpass.getuser().strip()
    except (KeyError, OSError):
        name = ""
    return name or f"uid {os.getuid()}"


def current_user(signed_in: str | None = None) -> str:
    """The name to record for an action: the signed-in name when a gate gave one, else the OS user."""
    name = (signed_in or "").strip()
    return name or os_user()


DASHBOARD = "dashboard"
COMMAND_LINE = "command line"


@dataclass(frozen=True)
class Actor:
    """Who acts, and how: what the engine checks ownership against and records with what it does.

    name: the signed-in account (the dashboard: ui.auth.user_name), or the OS user (the command line).
    via: DASHBOARD or COMMAND_LINE. admin: True makes the actor an admin whatever the accounts table says
    (the command line: whoever has the database URL is the administrator); None asks the accounts table
    (importer.database.accounts.is_admin) when the actor acts on what another owns.
    """

    name: str
    via: str = DASHBOARD
    admin: bool | None = None

    @property
    def label(self) -> str:
        """How History names the actor: "ama", or "kofi (command line)"."""
        return by_label(self.name, self.via) or self.name


def by_label(name: str | None, via: str | None) -> str | None:
    """"kofi (command line)" for what the command line did, the name alone for the dashboard; None for none."""
    if not name:
        return None
    return f"{name} ({COMMAND_LINE})" if via == COMMAND_LINE else name


def dashboard_actor(signed_in: str | None) -> Actor:
    """The dashboard's signed-in account (ui.auth.user_name) as an Actor; admin from the accounts table."""
    return Actor(current_user(signed_in), DASHBOARD)


def cli_actor() -> Actor:
    """The command line's actor: the OS user, an admin (the CLI holds the database URL: the administrator's
    tool), recorded as "<user> (command line)"."""
    return Actor(current_user(), COMMAND_LINE, admin=True)
