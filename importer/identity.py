"""Who is acting: the one name every front end records with runs, workspaces, operations and undos.

The dashboard passes the name its gate signed in (the OIDC provider's e-mail or name, or the name typed at
the password gate); the CLI passes nothing and gets the operating system's user. A name is trimmed, so
" ama " and "ama" are one person; with no name at all the OS user stands in, and with no OS user either
(a container without a passwd entry) the process's user id does.
"""

from __future__ import annotations

import getpass
import os


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
