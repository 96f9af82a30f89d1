"""One call per user action: read an upload, import it (or dry-run it), resume an interrupted run.

The dashboard and the CLI call these; the steps inside run in the same order for both.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

import sqlalchemy as sa

from importer.errors import FileMismatch, MissingColumns, RunError
from importer.load import Progress, run_import
from importer.mapping import ColumnMapping, apply_mapping, choose_sheet
from importer.read import open_file
from importer.results import RunResult, RunStatus
from importer.runs import get_run
from importer.settings import Settings
from importer.validate import Checked, check_frame
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

    @property
    def run_sheet(self) -> str | None:
        """The sheet a run records and resumes by: None for a CSV file, which has no sheets."""
        return None if self.format == "csv" else self.sheet


def missing_columns_message(mapping: ColumnMapping) -> str:
    """`Missing required columns: Phone. Found: Mark, Name, ...` with what to do about it."""
    missing = ", ".join(label_of(f) for f in mapping.missing_required)
    found = ", ".join(h for h in mapping.headers if h.strip()) or "no headers"
    return (
        f"Missing required column(s): {missing}. The header row has: {found}. "
        "Rename the columns (any case; synonyms like Surname or Mobile work) or start from the "
        "template (python -m importer template customers.xlsx)."
    )


def read_upload(
    data: bytes,
    file_name: str,
    settings: Settings,
    sheet: str | None = None,
    mapping: ColumnMapping | None = None,
) -> Upload:
    """Read, map and validate an uploaded file; raises a FileRefused subclass when it cannot be used."""
    spreadsheet = open_file(data, file_name, settings)
    # choose_sheet's limit is the data-row limit: it reads title and header rows on top of it itself.
    sheet_name, rows, detected = choose_sheet(spreadsheet, sheet, settings.max_rows, mapping=mapping)
    mapping = mapping or detected
    if mapping.missing_required:
        raise MissingColumns(missing_columns_message(mapping), mapping=mapping, sheet=sheet_name)
    frame = apply_mapping(rows, mapping, settings.max_rows)
    del rows
    return Upload(
        file_name=spreadsheet.file_name,
        sha256=spreadsheet.sha256,
        format=spreadsheet.format,
        sheet_names=spreadsheet.sheet_names,
        sheet=sheet_name,
        mapping=mapping,
        checked=check_frame(frame, settings),
    )


def import_upload(
    engine: sa.Engine, upload: Upload, settings: Settings, *, dry_run: bool = False, batch_size: int | None = None,
    progress: Callable[[Progress], None] | None = None, user_name: str | None = None,
    existing: str = "skip", blank: str = "keep", rejected: Collection[int] = (),
) -> RunResult:
    """Import an upload (or dry-run it); an interrupted run of the same file and sheet is resumed.

    `existing` ("skip" or "update"), `blank` ("keep" or "clear") and `rejected` (rows whose change the
    analyst rejected): see run_import.
    """
    return run_import(
        engine, upload.checked, file_name=upload.file_name, sha256=upload.sha256, sheet=upload.run_sheet,
        settings=settings, dry_run=dry_run, batch_size=batch_size, progress=progress, user_name=user_name,
        run_settings={"mapping": upload.mapping.to_dict()}, existing=existing, blank=blank,
        rejected=rejected,
    )


def upload_for_resume(engine: sa.Engine, run_id: int, data: bytes, file_name: str, settings: Settings) -> Upload:
    """The file of an interrupted run, read with that run's sheet and mapping, ready for import_upload.

    FileMismatch when the content is not the file the run was importing; RunError when the run cannot
    be resumed (unknown, completed, undone, or still running).
    """
    run = get_run(engine, run_id)
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
