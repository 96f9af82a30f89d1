"""`python -m importer users add|disable|reset|list`: the dashboard's accounts from the command line.

Passwords are never taken from the command line (it shows in `ps` and the shell's history): they are
asked for twice at a prompt (getpass), or read as the first line of stdin with --password-stdin, for
scripts: `printf '%s\\n' "$PASSWORD" | python -m importer users add ama --admin --password-stdin`.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import TYPE_CHECKING

from importer.errors import UsageError

if TYPE_CHECKING:
    import sqlalchemy as sa

EXIT_OK = 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The users command's sub-commands, on the parser cli.build_parser made for it."""
    actions = parser.add_subparsers(dest="users_action", required=True, parser_class=type(parser))

    def action(name: str, help_text: str, example: str) -> argparse.ArgumentParser:
        sub = actions.add_parser(name, help=help_text, description=help_text, epilog=f"Example: {example}",
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
        # The --database-url of the users command, repeated so it may also follow the action.
        sub.add_argument("--database-url", metavar="URL", default=argparse.SUPPRESS,
                         help="database to use (default: $DATABASE_URL, else sqlite:///customers.db)")
        return sub

    add = action("add", "Add an account (the password is asked for, or read with --password-stdin).",
                 "python -m importer users add ama --admin")
    add.add_argument("name", help="the name to sign in with (case and spacing do not matter)")
    add.add_argument("--admin", action="store_true",
                     help="may open, resume, discard and undo what other accounts own")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin's first line")

    disable = action("disable", "Disable an account: it cannot sign in; its runs and workspaces keep its name.",
                     "python -m importer users disable kofi")
    disable.add_argument("name")

    reset = action("reset", "Set a new password (and enable a disabled account).",
                   "python -m importer users reset kofi --admin no")
    reset.add_argument("name")
    reset.add_argument("--password-stdin", action="store_true", help="read the password from stdin's first line")
    reset.add_argument("--admin", choices=("yes", "no"), help="also make the account an admin, or not")

    action("list", "List the accounts: name, admin, disabled, created.", "python -m importer users list")


def _password(args: argparse.Namespace) -> str:
    from importer.database import accounts

    if args.password_stdin:
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    if not sys.stdin.isatty():
        raise UsageError("no terminal to ask the password at: pipe it in with --password-stdin")
    first = getpass.getpass(f"Password for {accounts.clean_name(args.name)}: ")
    accounts.check_password(first)
    if getpass.getpass("Again: ") != first:
        raise UsageError("the two passwords differ; nothing changed")
    return first


def run(args: argparse.Namespace, engine: sa.Engine) -> int:
    # Here, not at the top: every command's parser is built with add_arguments, and only this one needs the
    # accounts (argon2 and its cffi bindings).
    from importer.database import accounts

    action = args.users_action
    if action == "list":
        found = accounts.list_accounts(engine)
        if not found:
            print("No accounts yet. Add the first with: python -m importer users add NAME --admin")
            return EXIT_OK
        width = max(4, *(len(a.name) for a in found))
        print(f"{'name':{width}}  admin  status    created")
        for account in found:
            status = "disabled" if account.disabled_at else "active"
            print(f"{account.name:{width}}  {'yes' if account.is_admin else 'no':5}  {status:8}"
                  f"  {account.created_at:%Y-%m-%d %H:%M}")
        return EXIT_OK
    if action == "add":
        made = accounts.add_account(engine, args.name, _password(args), is_admin=args.admin)
        print(f"Account {made.name} added{' (admin)' if made.is_admin else ''}.")
        return EXIT_OK
    if action == "disable":
        done = accounts.disable_account(engine, args.name)
        print(f"Account {done.name} disabled: it can no longer sign in.")
        return EXIT_OK
    # reset
    done = accounts.reset_password(engine, args.name, _password(args))
    if args.admin is not None:
        done = accounts.set_admin(engine, done.name, args.admin == "yes")
    print(f"Password of {done.name} reset{' (admin)' if done.is_admin else ''}; it can sign in with it.")
    return EXIT_OK
