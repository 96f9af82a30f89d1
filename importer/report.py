"""Failure reports as CSV or XLSX: each failed row's original values, its row number and its errors.

Reports are formula-safe (CONTRACT.md) and upload again as they are: the Row and Errors columns are
unknown headers to the mapper, so they are ignored on reading.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.comments import Comment
from openpyxl.styles import Font, PatternFill

from importer.clean import FORMULA_PREFIXES
from importer.results import RowResult, error_text
from schemas.customer import FIELDS

ROW_HEADER = "Row"
ERRORS_HEADER = "Errors"
REPORT_FORMATS = ("csv", "xlsx")
_BAD_FILL = PatternFill(start_color="FFF4C7C3", end_color="FFF4C7C3", fill_type="solid")
_BOLD = Font(bold=True)


def safe_cell(value: object) -> str:
    """Text a spreadsheet will never run as a formula: `=SUM(A1)` -> `'=SUM(A1)`."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def report_headers() -> list[str]:
    return [ROW_HEADER, *(f.label for f in FIELDS), ERRORS_HEADER]


def _row_values(row: RowResult) -> list[str]:
    return [
        str(row.source_row_number),
        *(safe_cell(row.customer_data.get(f.name, "")) for f in FIELDS),
        safe_cell(error_text(row.errors)),
    ]


def report_csv(failed: Iterable[RowResult]) -> bytes:
    """The failure report as UTF-8 CSV with a BOM, so Excel opens accents correctly."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(report_headers())
    for row in failed:
        writer.writerow(_row_values(row))
    return buffer.getvalue().encode("utf-8-sig")


def report_xlsx(failed: Iterable[RowResult]) -> bytes:
    """The failure report as a workbook: failing cells filled and annotated with their message."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Failed rows")
    sheet.freeze_panes = "B2"
    header_cells = []
    for text in report_headers():
        cell = WriteOnlyCell(sheet, value=text)
        cell.font = _BOLD
        header_cells.append(cell)
    sheet.append(header_cells)
    columns = {f.name: i + 1 for i, f in enumerate(FIELDS)}
    for row in failed:
        cells = [WriteOnlyCell(sheet, value=text) for text in _row_values(row)]
        cells[0].value = row.source_row_number
        for field in {e.field for e in row.errors}:
            position = columns.get(field)
            if position is None:
                continue
            cell = cells[position]
            cell.fill = _BAD_FILL
            messages = "\n".join(e.message for e in row.errors if e.field == field)
            cell.comment = Comment(messages, "importer", width=300, height=80)
        sheet.append(cells)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def write_report(failed: Sequence[RowResult], fmt: str) -> bytes:
    """The report in `fmt` ("csv" or "xlsx")."""
    if fmt == "csv":
        return report_csv(failed)
    if fmt == "xlsx":
        return report_xlsx(failed)
    raise ValueError(f"report format must be one of {', '.join(REPORT_FORMATS)}, not {fmt!r}")


def report_format_for(path: str) -> str:
    """The report format a path asks for by its ending; ValueError for anything else."""
    ending = path.rsplit(".", 1)[-1].lower() if "." in path else ""
    if ending not in REPORT_FORMATS:
        raise ValueError(f"the report path {path!r} must end in .csv or .xlsx")
    return ending
