"""One call per user action: read an upload, import it (or dry-run it), resume an interrupted run.

The dashboard and the CLI call these; the steps inside run in the same order for both.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace

import pandas as pd
import sqlalchemy as sa

from importer.checks.changes import upload_changes
from importer.checks.validate import Checked, check_frame
from importer.database.ledger import check_owner, get_run
from importer.database.loader import Progress, run_import
from importer.errors import FileMismatch, MissingColumns, RunError
from importer.identity import Actor
from importer.intake.readers import open_file
from importer.mapping.columns import (
    EMPTY_NOTES,
    TEMPLATE_COMMAND,
    TEMPLATE_HINT,
    ColumnMapping,
    SheetNotes,
    apply_mapping,
    choose_sheet,
    mapped_columns,
    sheet_notes,
)
from importer.mapping.roundtrip import (
    ReportUpload,
    columns_to_read,
    other_values,
    renumber,
    report_columns,
    report_layout,
    share_typed_columns,
)
from importer.outcomes.error_table import ErrorTable
from importer.outcomes.failed_rows import ReportColumn
from importer.outcomes.row_errors import RunStatus
from importer.outcomes.run_result import RunResult
from importer.settings import Settings
from schemas.customer import label_of


@dataclass(frozen=True)
class Upload:
    """One file, read, mapped and validated; everything a dry run, an import or a page needs."""

    file_name: str
    sha256: str
    format: str
    sheet_names: tuple[str, ...]
    sheet: str
    mapping: ColumnMapping
    checked: Checked
    # For the failure report that goes back to the branch (importer.mapping.roundtrip): its columns in the file's
    # order, the text of the file's own columns that feed no field (by report header, indexed by source
    # row), and, when this file is one of our reports fixed and sent back, what it says about itself.
    report_columns: tuple[ReportColumn, ...] | None = None
    other_columns: pd.DataFrame | None = field(default=None, compare=False, repr=False)
    report: ReportUpload | None = None
    # Footer and note rows skipped while reading (TOTAL, Prepared by...), and the full names split.
    notes: SheetNotes = field(default=EMPTY_NOTES, compare=False, repr=False)
    # A saved workspace's replay at a run's recorded state (importer.workspace.resume.upload_for_workspace_resume):
    # (workspace id, the operation seqs replayed); import_upload takes it as its `workspace` when given none.
    workspace: tuple[int, tuple[int, ...]] | None = field(default=None, compare=False, repr=False)

    @property
    def run_sheet(self) -> str | None:
        """The sheet a run records and resumes by: None for a CSV file, which has no sheets."""
        return None if self.format == "csv" else self.sheet

    @property
    def fixes_run_id(self) -> int | None:
        """The run whose failure report this file is (its `Report of run` column), else None."""
        return self.report.fixes_run_id if self.report else None


def missing_columns_message(mapping: ColumnMapping) -> str:
    """`Missing required columns: Phone. Found: Mark, Name, ...` with what to do about it."""
    missing = ", ".join(label_of(f) for f in mapping.missing_required)
    found = ", ".join(h for h in mapping.headers if h.strip()) or "no headers"
    return (
        f"Missing required column(s): {missing}. The header row has: {found}. "
        f"Rename the columns (any case; synonyms like Surname or Mobile work) or {TEMPLATE_HINT}."
    )


def report_reads(mapping: ColumnMapping) -> tuple[int, ...]:
    """The columns a failure report needs beside the mapped ones: the file's own, and ours in a report."""
    ours = report_columns(mapping)
    _, kept = report_layout(mapping, skip=tuple(ours.values()) if ours else ())
    return (*kept, *(ours.values() if ours else ()))


def read_upload(
    data: bytes,
    file_name: str,
    settings: Settings,
    sheet: str | None = None,
    mapping: ColumnMapping | None = None,
) -> Upload:
    """Read, map and validate an uploaded file; raises a FileRefused subclass when it cannot be used.

    The file's own columns that feed no field are kept for the failure report; a file that is one of our
    failure reports is numbered by its Row column and linked to its run (importer.mapping.roundtrip).
    """
    upload, frame = read_unchecked(data, file_name, settings, sheet, mapping)
    return with_checked(upload, check_frame(frame, settings))


def with_checked(upload: Upload, checked: Checked) -> Upload:
    """The upload with its rows checked; its typed columns that still hold their fields' text share it
    (importer.mapping.roundtrip.share_typed_columns)."""
    return replace(upload, checked=checked,
                   other_columns=share_typed_columns(upload.other_columns, checked.original, upload.report_columns))


_UNCHECKED = Checked(pd.DataFrame(), pd.DataFrame(), ErrorTable.empty())


def read_unchecked(
    data: bytes, file_name: str, settings: Settings, sheet: str | None = None, mapping: ColumnMapping | None = None,
) -> tuple[Upload, pd.DataFrame]:
    """What read_upload reads before validation: the Upload without rows (its `checked` holds none) and the
    mapped text, indexed by source row. A workspace's replay starts from it, so it numbers rows the same."""
    spreadsheet = open_file(data, file_name, settings)
    # choose_sheet's limit is the data-row limit: it reads title and header rows on top of it itself.
    sheet_name, rows, detected = choose_sheet(spreadsheet, sheet, settings.max_rows, mapping=mapping,
                                              also=report_reads)
    mapping = mapping or detected
    if mapping.missing_required:
        raise MissingColumns(missing_columns_message(mapping), mapping=mapping, sheet=sheet_name,
                             detail=TEMPLATE_COMMAND)
    ours = report_columns(mapping)
    columns, kept = report_layout(mapping, skip=tuple(ours.values()) if ours else ())
    again = columns_to_read(rows, [*mapped_columns(mapping), *kept, *(ours.values() if ours else ())])
    if again is not None:  # the first read kept only the mapped columns: read them and the file's own
        reread = rows.reread
        assert reread is not None  # columns_to_read said so
        del rows
        rows = reread(again)
    frame = apply_mapping(rows, mapping, settings.max_rows)
    notes = sheet_notes(rows)
    others = other_values(rows, frame.index, kept, [c.header for c in columns if c.typed], frame, columns)
    report = None
    if ours:
        frame, others, report = renumber(frame, others, rows, ours)
    del rows
    return Upload(
        file_name=spreadsheet.file_name,
        sha256=spreadsheet.sha256,
        format=spreadsheet.format,
        sheet_names=spreadsheet.sheet_names,
        sheet=sheet_name,
        mapping=mapping,
        checked=_UNCHECKED,
        report_columns=columns,
        other_columns=others,
        report=report,
        notes=notes,
    ), frame


def import_upload(
    engine: sa.Engine, upload: Upload, settings: Settings, *, dry_run: bool = False, batch_size: int | None = None,
    progress: Callable[[Progress], None] | None = None, user_name: str | None = None,
    existing: str = "skip", blank: str = "keep", rejected: Collection[int] = (),
    workspace: tuple[int, Sequence[int]] | None = None, on_run: Callable[[int], None] | None = None,
    new_run: bool = False, via: str | None = None, confirmed: Collection[int] = (),
) -> RunResult:
    """Import an upload (or dry-run it); an interrupted run of the same file and sheet is resumed.

    `existing` ("skip" or "update"), `blank` ("keep" or "clear") and `rejected` (rows whose change the
    analyst rejected): see run_import. `workspace`: (workspace id, its active operation seqs) when the
    upload is a saved workspace's replay; the run records them, so importer.workspace.store can resume it without
    the file. `on_run(run_id)`: called once the run is created or claimed.

    What it resumes (importer.database.claim.adopts): a run started from a workspace only by an
    import of that workspace at the state the run recorded (importer.workspace.resume.check_resume gives that
    state); importing the file as it is while such a run is interrupted raises ResumeRefused, unless
    `new_run`, which starts a new run and resumes nothing (interrupted runs stay resumable).
    `via`: how the import was started (importer.identity.DASHBOARD or COMMAND_LINE), recorded beside
    `user_name` (import_runs.via; a resume adds {by, via, at} to the run's settings "resumes").
    """
    if workspace is None and upload.workspace is not None:
        workspace = upload.workspace
    run_settings: dict = {"mapping": upload.mapping.to_dict()}
    if via is not None:
        run_settings["via"] = via
    if upload.report_columns is not None:
        run_settings["report_columns"] = [c.to_json() for c in upload.report_columns]
    changes = upload_changes(upload)  # what normalising changed, per rule: the JSON, the report and History
    run_settings["changes"] = changes.to_json()
    if workspace is not None:  # the keys importer.workspace.resume.workspace_run_settings names
        workspace_id, seqs = workspace
        seqs = [int(n) for n in seqs]
        run_settings |= {"workspace_id": int(workspace_id), "workspace_operations": seqs,
                         "workspace_seq": max(seqs, default=0)}
    result = run_import(
        engine, upload.checked, file_name=upload.file_name, sha256=upload.sha256, sheet=upload.run_sheet,
        settings=settings, dry_run=dry_run, batch_size=batch_size, progress=progress, user_name=user_name,
        run_settings=run_settings, existing=existing, blank=blank, rejected=rejected, confirmed=confirmed,
        other_columns=upload.other_columns, report_columns=upload.report_columns,
        fixes_run_id=upload.fixes_run_id, on_run=on_run, new_run=new_run,
    )
    return replace(result, changes=tuple(run_settings["changes"]),
                   failed=result.failed.with_changes(changes.lines()) if changes else result.failed)


def upload_for_resume(engine: sa.Engine, run_id: int, data: bytes, file_name: str, settings: Settings, *,
                      actor: Actor | None = None) -> Upload:
    """The file of an interrupted run, read with that run's sheet and mapping, ready for import_upload.

    FileMismatch when the content is not the file the run was importing; RunError when the run cannot
    be resumed (unknown, completed, undone, or still running); NotYours when `actor` is neither the run's
    account nor an admin.
    """
    run = get_run(engine, run_id)
    check_owner(engine, actor, run.user_name, f"resume run #{run_id}")
    if run.status is not RunStatus.INTERRUPTED:
        raise RunError(f"run {run_id} is {run.status.value}; only an interrupted run can be resumed")
    mapping = run.settings.get("mapping")
    # Read first: a file without the run's sheet says so, which tells the user more than "differs".
    upload = read_upload(data, file_name, settings, sheet=run.sheet,
                         mapping=ColumnMapping.from_dict(mapping) if mapping else None)
    if upload.sha256 != run.sha256:
        raise FileMismatch(
            f"{file_name} is not the file run #{run_id} was importing ({run.file_name}): its content differs. "
            "Upload exactly that file to resume, or import this one as a new run from the Upload page."
        )
    return upload
