"""The CLI of CONTRACT.md: engine errors become one-line messages and exit codes, never tracebacks."""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from sqlalchemy.exc import SQLAlchemyError

from importer.errors import DatabaseError, FileRefused, ImporterError, UsageError
from importer.identity import COMMAND_LINE, cli_actor, current_user
from importer.settings import Settings

if TYPE_CHECKING:
    import sqlalchemy as sa

    from importer.api import Upload
    from importer.outcomes.run_result import RunResult

EXIT_OK = 0
EXIT_FILE = 2
EXIT_DATABASE = 3
DETECTED_MAPPING = "detect"  # --mapping detect: the detected mapping, not one saved for the headers


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with a one-line `error: ...`, as the contract's usage errors do."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_FILE, f"error: {message} (see --help)\n")


def _add_database(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="database to use (default: $DATABASE_URL, else sqlite:///customers.db in this folder)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m importer",
        description="Import customer spreadsheets into the database.",
        epilog="Example: python -m importer import customers.xlsx --dry-run --report failed.xlsx",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(name: str, help_text: str, example: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name, help=help_text, description=help_text, epilog=f"Example: {example}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _add_database(sub)
        return sub

    imp = command(
        "import", "Read, validate and import a customer file (.xlsx, .xlsm, .xls, .csv).",
        "python -m importer import customers.xlsx --dry-run --json --report failed.xlsx",
    )
    imp.add_argument("file", nargs="?", help="the spreadsheet or CSV file to import (or give --workspace)")
    imp.add_argument("--workspace", type=int, metavar="N",
                     help="import workspace N as saved in the dashboard (the file with its edits, fixes, exclusions, "
                          "mapping and decisions on changes to stored customers), resuming its interrupted run if "
                          "there is one; instead of FILE")
    imp.add_argument("--join-broken-lines", action="store_true",
                     help="join each customer a CSV broke over two lines (a newline inside an unquoted field), "
                          "as the reader names them, before importing; without it they are only named")
    imp.add_argument("--new-run", action="store_true",
                     help="start a new run, resuming none: FILE as it is even when an interrupted run of it came "
                          "from a reviewed workspace (that run stays resumable), or --workspace N's current state")
    imp.add_argument("--sheet", metavar="NAME", help="sheet to read (default: the first with a usable header)")
    imp.add_argument("--mapping", metavar="NAME|FILE.json",
                     help="map columns to fields with a mapping saved in the dashboard (by its name), or with a JSON "
                          'file of header -> field, e.g. {"Location": "region", "Mobile": "phone", "S/No": null}; '
                          "columns it does not name keep the field detected for them. Without it, a file whose headers "
                          "have a saved mapping is read with that mapping, as the dashboard does; "
                          "--mapping detect uses the detected mapping instead")
    imp.add_argument("--operations", metavar="FILE.json",
                     help="value conversions and find-and-replace to apply before importing: a JSON list of "
                          '{"kind": "convert", "field": "region", "targets": {"Gt. Accra": "GREATER_ACCRA"}} or '
                          '{"kind": "replace", "field": ..., "find": ..., "replace": ...} objects')
    imp.add_argument("--dry-run", action="store_true", help="run everything, then roll back: counts are exact")
    imp.add_argument("--report", metavar="PATH", help="write the failed rows to PATH (.csv or .xlsx)")
    imp.add_argument("--json", action="store_true", help="print the result as one JSON object on stdout")
    imp.add_argument("--batch-size", type=int, metavar="N", help="rows per committed chunk (default 2000)")
    imp.add_argument("--existing", choices=("skip", "update"),
                     help="a row that matches a customer (by shipping mark, phone or email) with other values: "
                          "skip = fail it as already_exists saying what differs (default); update = update the "
                          "customer. Rows equal to their customer count as unchanged either way (with --workspace: "
                          "the workspace's accept/reject decisions)")
    imp.add_argument("--blank", choices=("keep", "clear"),
                     help="a blank optional cell of a matched customer: keep the stored value (default), or "
                          "clear it (with --workspace: the workspace's choice)")

    tpl = command("template", "Write the upload template workbook.", "python -m importer template customers.xlsx")
    tpl.add_argument("path", help="where to write the template (.xlsx)")

    hist = command("history", "List past import runs.", "python -m importer history --json")
    hist.add_argument("--json", action="store_true", help="print the runs as a JSON array")

    undo = command("undo", "Delete the customers a run created, restore those it updated, mark it undone.",
                   "python -m importer undo 7")
    undo.add_argument("run_id", type=int, help="the run to undo (see history)")

    command("init-db", "Create or upgrade the database schema.", "python -m importer init-db")
    from importer.accounts_cli import add_arguments  # the dashboard's accounts (importer/accounts_cli.py)

    add_arguments(command("users", "Manage the dashboard's accounts: add, disable, reset, list.",
                          "python -m importer users add ama --admin"))
    return parser


def _engine(args: argparse.Namespace, settings: Settings, schema: bool = True):
    from importer.database.schema import ensure_schema, make_engine

    engine = make_engine(args.database_url or settings.database_url)
    if schema:  # a dry run creates the schema inside its own rolled-back transaction instead
        ensure_schema(engine)
    return engine


def _progress_printer() -> Callable[..., None]:
    def show(progress) -> None:
        width = 30
        done = int(width * progress.rows_done / progress.total) if progress.total else width
        left = f", {progress.seconds_left:.0f}s left" if progress.seconds_left else ""
        sys.stderr.write(
            f"\r[{'#' * done}{'.' * (width - done)}] {progress.rows_done:,}/{progress.total:,} rows"
            f" ({progress.rows_per_second:,.0f} rows/s{left})"
        )
        if progress.rows_done >= progress.total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def _check_writable(path: str) -> None:
    """Refuse before the import, not after it, a report path that cannot be written."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise UsageError(f"cannot write the report to {path}: it is a folder; give a file name ending in .csv or .xlsx")
    if not folder.is_dir():
        raise UsageError(f"cannot write the report to {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise UsageError(f"cannot write the report to {path}: permission denied")


def _read_file(path: str, settings: Settings) -> bytes:
    from importer.intake.readers import read_path

    return read_path(path, settings)


def _operations(path: str) -> list:
    """The operations of an --operations file (UsageError with one line when it cannot be used)."""
    from importer.intake.json_input import read_json_text
    from importer.review.conversions import operations_from_json

    return operations_from_json(read_json_text(path, f"the operations file {path}"), path)


def _import(args: argparse.Namespace, settings: Settings) -> int:
    from importer.api import import_upload
    from importer.intake.delimited import join_split_lines
    from importer.output.failure_report import report_format_for

    report_format = None
    if args.report:
        try:
            report_format = report_format_for(args.report)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        _check_writable(args.report)
    if args.batch_size is not None and args.batch_size < 1:
        raise UsageError("--batch-size must be a whole number of at least 1")
    if (args.file is None) == (args.workspace is None):
        raise UsageError("give the file to import, or --workspace N (a workspace saved in the dashboard), not both")
    if args.workspace is not None:
        given = [flag for flag, value in (("--sheet", args.sheet), ("--mapping", args.mapping),
                                          ("--operations", args.operations), ("--existing", args.existing),
                                          ("--blank", args.blank)) if value is not None]
        if given:
            raise UsageError(f"{', '.join(given)} cannot be used with --workspace: the workspace's own sheet, "
                             "mapping, operations and decisions apply")
        return _finish(args, *_workspace_import(args, settings), report_format)
    operations = _operations(args.operations) if args.operations else []
    data = _read_file(args.file, settings)
    engine = _engine(args, settings, schema=False)  # no connection yet: the file is judged first
    upload = _read_for_import(args, engine, settings, data, say=True)
    broken = [record.first for record in upload.notes.split_records]
    if broken and args.join_broken_lines:
        upload = _read_for_import(args, engine, settings, join_split_lines(data, broken), say=False)
        print(f"note: joined {len(broken):,} customer(s) broken over two lines (first lines "
              f"{', '.join(str(n) for n in broken[:10])}{', ...' if len(broken) > 10 else ''})", file=sys.stderr)
    elif broken:
        for record in upload.notes.split_records[:10]:
            print(f"note: {record.message}; --join-broken-lines joins them", file=sys.stderr)
    del data
    if operations:
        from dataclasses import replace

        from importer.review.conversions import apply_operations

        upload = replace(upload, checked=apply_operations(upload.checked, operations, settings))
    if not args.dry_run:  # a dry run creates the schema inside its own rolled-back transaction instead
        from importer.database.schema import ensure_schema

        ensure_schema(engine)
    show = _progress_printer() if sys.stderr.isatty() and not args.json else None
    result = import_upload(engine, upload, settings, dry_run=args.dry_run, batch_size=args.batch_size,
                           progress=show, user_name=current_user(), existing=args.existing or "skip",
                           blank=args.blank or "keep", new_run=args.new_run, via=COMMAND_LINE)
    return _finish(args, result, [], report_format)


def _read_for_import(args: argparse.Namespace, engine: sa.Engine, settings: Settings, data: bytes, *,
                     say: bool) -> Upload:
    """The file as the import reads it: --mapping detect, a named or JSON mapping, else the mapping saved for
    its headers (the dashboard's rule; `say`: print the note saying so)."""
    from importer.api import read_upload

    if args.mapping == DETECTED_MAPPING:
        upload = read_upload(data, Path(args.file).name, settings, sheet=args.sheet)
    elif args.mapping:
        from importer.mapping.profiles import read_with_mapping, resolve_mapping

        sheet, mapping = resolve_mapping(engine, args.mapping, data, Path(args.file).name, settings, args.sheet)
        upload = read_with_mapping(data, Path(args.file).name, settings, sheet, mapping)
    else:  # the dashboard's rule: headers with a saved mapping are read with it
        from importer.mapping.profiles import read_remembered

        upload, profile = read_remembered(engine, data, Path(args.file).name, settings, args.sheet)
        if profile is not None and say:
            print(f"note: read with the mapping saved for these headers ({profile.notice}); "
                  f"--mapping {DETECTED_MAPPING} reads with the detected one", file=sys.stderr)
    return upload


def _workspace_import(args: argparse.Namespace, settings: Settings) -> tuple[RunResult, list[str]]:
    """Import a saved workspace as the dashboard's Import page does: its interrupted run resumed with the
    state it began with, else (or with --new-run) its current state with its decisions. Returns the result
    and notes for people (changes not imported, the workspace kept).

    The command line is the administrator's tool (it holds the database URL): it may import anyone's
    workspace, and the run records the OS user "(command line)" (importer.identity.cli_actor)."""
    from importer.api import import_upload
    from importer.database.customers import classify_upload
    from importer.review.decisions import import_options, load_decisions
    from importer.workspace import resume as ws_resume
    from importer.workspace import store as ws

    engine = _engine(args, settings, schema=not args.dry_run)
    actor = cli_actor()
    workspace_id = int(args.workspace)
    run_id = None if args.new_run else ws_resume.run_of_workspace(engine, workspace_id)
    show = _progress_printer() if sys.stderr.isatty() and not args.json else None
    options: dict = {}
    if run_id is not None:  # the run finishes as it began: its own state, --existing, --blank and rejections
        upload = ws_resume.upload_for_workspace_resume(engine, run_id, settings, actor=actor)
        workspace = upload.workspace
    else:
        opened = ws.open_workspace(engine, workspace_id, settings, actor=actor)
        upload, workspace = opened.upload, (opened.info.id, opened.seqs)
        decisions = load_decisions(engine, workspace_id)
        options = import_options(decisions, classify_upload(engine, upload.checked, decisions.blank))
    result = import_upload(engine, upload, settings, dry_run=args.dry_run, batch_size=args.batch_size,
                           progress=show, user_name=actor.name, workspace=workspace, new_run=args.new_run,
                           via=actor.via, **options)
    notes: list[str] = []
    if not args.dry_run and result.run_id is not None:
        later = ws.discard_workspace(engine, workspace_id)
        if later:
            notes.append(f"{later:,} change{'' if later == 1 else 's'} made to workspace {workspace_id} after the "
                         "import started were not imported; the workspace keeps them (import it again with "
                         f"--workspace {workspace_id})")
    return result, notes


def _finish(args: argparse.Namespace, result: RunResult, notes: list[str], report_format: str | None) -> int:
    """Write the report and the result (JSON or text) of an import."""
    from importer.output.failure_report import write_report

    for note in notes:
        sys.stderr.write(f"note: {note}\n")
    if report_format is not None and args.json:
        from importer.outcomes.run_result import FailedJson

        # The failed rows are read once for both: each row's JSON is spooled to a temporary file as the
        # report takes it, and printed once the report is written (as before: no JSON if it fails).
        with tempfile.TemporaryFile("w+", encoding="utf-8", errors="surrogatepass", newline="") as spool:
            spooled = FailedJson(spool)
            with open(args.report, "wb") as out:
                passing = spooled.passing(result.failed)
                write_report(passing, report_format, out, columns=result.failed.columns,
                             run_id=result.failed.run_id, changes=result.failed.changes)
                for _ in passing:  # what the report did not take (nothing): the JSON still has every row
                    pass
            _print_json(result.json_chunks(spooled.items()))
        return EXIT_OK
    if report_format is not None:
        with open(args.report, "wb") as out:
            write_report(result.failed, report_format, out)
    if args.json:
        _print_json(result.json_chunks())
        return EXIT_OK
    print(f"{result.message} (run {result.run_id}{', resumed' if result.resumed else ''}"
          f"{', dry run: nothing was saved' if result.dry_run else ''})")
    for row in itertools.islice(result.failed, 20):
        print(f"  row {row.source_row_number}: {row.to_json()['error']}")
    if result.total_failed > 20:
        print(f"  ... and {result.total_failed - 20:,} more" + ("" if args.report else " (use --report PATH)"))
    if args.report:
        print(f"Failure report written to {args.report}")
    return EXIT_OK


def _print_json(chunks: Iterable[str]) -> None:
    # Streamed: 100,000 failed rows are written a batch at a time, never built as one string.
    for chunk in chunks:
        sys.stdout.write(chunk)
    sys.stdout.write("\n")


def _template(args: argparse.Namespace, settings: Settings) -> int:
    from importer.output.template import template_xlsx

    if not args.path.lower().endswith((".xlsx", ".xlsm")):
        raise FileRefused(f"the template path {args.path!r} must end in .xlsx")
    Path(args.path).write_bytes(template_xlsx())
    print(f"Template written to {args.path}")
    return EXIT_OK


def _history(args: argparse.Namespace, settings: Settings) -> int:
    from importer.database.ledger import list_runs

    runs = list_runs(_engine(args, settings))
    if args.json:
        print(json.dumps([run.to_json() for run in runs], ensure_ascii=False))
        return EXIT_OK
    if not runs:
        print("No imports yet.")
        return EXIT_OK
    print(f"{'run':>5}  {'started':19}  {'status':11}  {'rows':>8}  {'created':>8}  {'updated':>8}"
          f"  {'unchanged':>9}  {'failed':>7}  file  (by)")
    for run in runs:
        undone = f", undone by {run.undone_by_label}" if run.undone_by_label else ""
        print(
            f"{run.id:>5}  {run.started_at:%Y-%m-%d %H:%M:%S}  {run.status:11}  {run.total_attempted:>8,}"
            f"  {run.total_created:>8,}  {run.total_updated:>8,}  {run.total_unchanged:>9,}  {run.total_failed:>7,}"
            f"  {run.file_name}  (by {run.by or 'unknown'}{undone})"
        )
    return EXIT_OK


def _undo(args: argparse.Namespace, settings: Settings) -> int:
    from importer.database.ledger import undo

    # The administrator's tool: any run may be undone from it; the OS user is recorded "(command line)".
    done = undo(_engine(args, settings), args.run_id, cli_actor())
    restored = f", restored {done.restored:,}" if done.restored else ""
    print(f"Run {args.run_id} undone: deleted {done.deleted:,} customer{'' if done.deleted == 1 else 's'}{restored}.")
    return EXIT_OK


def _init_db(args: argparse.Namespace, settings: Settings) -> int:
    from importer.database.schema import describe_url

    _engine(args, settings)
    print(f"Database ready: {describe_url(args.database_url or settings.database_url)}")
    return EXIT_OK


def _users(args: argparse.Namespace, settings: Settings) -> int:
    from importer.accounts_cli import run

    return run(args, _engine(args, settings))


_COMMANDS = {"import": _import, "template": _template, "history": _history, "undo": _undo, "init-db": _init_db,
             "users": _users}


def _one_line(error: BaseException) -> str:
    """The error's sentence on one line, then its detail for the command line (ImporterError.detail)."""
    text = " ".join(str(error).split()) or type(error).__name__
    detail = getattr(error, "detail", None)
    return f"{text} ({detail})" if detail else text


def _utf8_output(json_output: bool) -> None:
    """JSON is UTF-8 whatever the console's encoding (a cp1252 console cannot encode an emoji); text
    for people keeps the console's encoding, with what it cannot show replaced instead of crashing."""
    for stream in (sys.stdout, sys.stderr):
        if not hasattr(stream, "reconfigure"):
            continue
        if json_output and stream is sys.stdout:
            stream.reconfigure(encoding="utf-8")
        else:
            stream.reconfigure(errors="replace")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status of CONTRACT.md."""
    args = build_parser().parse_args(argv)
    _utf8_output(json_output=bool(getattr(args, "json", False)))
    try:
        settings = Settings.from_env()
        return _COMMANDS[args.command](args, settings)
    except DatabaseError as exc:
        sys.stderr.write(f"error: {_one_line(exc)}\n")
        return EXIT_DATABASE
    except ImporterError as exc:
        # FileRefused, RunError (unknown or running run), UsageError (bad settings or arguments).
        sys.stderr.write(f"error: {_one_line(exc)}\n")
        return EXIT_FILE
    except SQLAlchemyError as exc:
        sys.stderr.write(f"error: the database failed: {_one_line(getattr(exc, 'orig', None) or exc)}; run the same import again to resume\n")
        return EXIT_DATABASE
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted; run the same import again to resume it\n")
        return EXIT_DATABASE
    except BrokenPipeError:
        # stdout's reader went away (`... --json | head`): the work is done; no traceback, and point
        # stdout at /dev/null so the interpreter's final flush cannot raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except OSError as exc:
        # A path we were asked to write (a report, the template) cannot be written.
        where = f"{exc.filename}: " if exc.filename else ""
        sys.stderr.write(f"error: {where}{exc.strerror or _one_line(exc)}\n")
        return EXIT_FILE


# Modules the command line never uses although a library imports them when it is there: hypothesis (a test
# tool, in requirements-dev.txt, not installed on a server) is imported by pandera's data synthesis at the first
# validation, 0.1 s of every `python -m importer import` in a development checkout.
_NEVER_USED = ("hypothesis",)


def run_process(argv: Sequence[str] | None = None) -> NoReturn:
    """`python -m importer`: main() in a process of its own, then exit with its status.

    Started with the garbage collector off (importer/__main__.py): the modules the command needs are loaded,
    then frozen (gc.freeze: never walked by a collection again) and the collector enabled, so the rows of the
    import are collected as in any process. At the end, what the command left in cycles is collected (a pooled
    database connection closes there) and the rest frozen too: the interpreter's teardown then skips freeing
    the modules one by one (0.3 s), and still runs the exit handlers and flushes the output.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    for name in _NEVER_USED:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # None: `import name` raises ImportError
    if args[:1] == ["import"]:  # what _import loads: loaded here before freezing
        import importer.api  # noqa: F401
        import importer.mapping.profiles  # noqa: F401
    gc.freeze()
    gc.enable()
    code = main(args)
    gc.collect()
    gc.freeze()
    sys.exit(code)
