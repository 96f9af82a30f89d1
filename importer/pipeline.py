"""From uploaded bytes to a checked frame: the steps every face of the engine runs in the same order."""

from __future__ import annotations

from dataclasses import dataclass

from importer.errors import MissingColumns
from importer.mapping import ColumnMapping, apply_mapping, choose_sheet
from importer.read import open_file
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
    sheet_name, rows, detected = choose_sheet(spreadsheet, sheet, settings.max_rows)
    mapping = mapping or detected
    if mapping.missing_required:
        raise MissingColumns(missing_columns_message(mapping))
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
