"""The XLSX report's cells: a value's `<t>` element is `_t(xlsx_text(value))` whatever the value (the sheet
writer tells plain values apart with a few string tests; the rest go through the escaping)."""

from __future__ import annotations

import io
import re
import zipfile

import pytest

from importer.outcomes.failed_rows import FailedRow, ReportColumn
from importer.outcomes.row_errors import ErrorCode, RowError
from importer.output.failure_report import XLSX_CELL_LIMIT, _t, write_report, xlsx_text

VALUES = ["plain", "Kofi Mensah", " leading", "trailing ", "a&b", "<tag>", "x > y", "_x000D_", "a_xb", "_X000d_",
          "tab\there", "new\nline", "cr\rhere", "\x00nul", "\x1f", "café", "😀", "\ufffe", "\ud800", "=SUM(A1)",
          "'quoted'", '"double"', "x" * (XLSX_CELL_LIMIT + 5), "y" * XLSX_CELL_LIMIT, "\u2028", "1", "_"]


@pytest.mark.parametrize("value", VALUES)
def test_a_cell_is_its_escaped_text(value: str) -> None:
    row = FailedRow(2, (RowError("first_name", ErrorCode.REQUIRED, "bad"),),
                    {"shipping_mark": value, "first_name": value}, {"Remarks": value})
    columns = (ReportColumn("Mark", "shipping_mark"), ReportColumn("Name", "first_name"), ReportColumn("Remarks"))
    out = io.BytesIO()
    write_report([row], "xlsx", out, columns=columns, run_id=7)
    with zipfile.ZipFile(out) as book:
        sheet = book.read("xl/worksheets/sheet1.xml").decode()
    data_row = re.search(r'<row r="2">(.*?)</row>', sheet, re.S)
    assert data_row is not None
    cells = re.findall(r'<c r="([A-Z]+)2"[^>]*?(?:/>|><is>(.*?)</is></c>|><v>.*?</v></c>)', data_row.group(1), re.S)
    texts = dict(cells)
    expected = _t(xlsx_text(value)) if value else ""
    assert texts["B"] == texts["C"] == texts["D"] == expected
    assert texts["E"] == "<t>7</t>"  # Report of run
