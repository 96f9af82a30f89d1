"""Failure reports: original values, row numbers, errors, formula-safe, and they upload again."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest

from importer.report import report_csv, report_format_for, report_xlsx, safe_cell
from importer.results import ErrorCode, RowError, RowResult, RowStatus

ROWS = (
    RowResult(
        14, RowStatus.FAILED,
        (RowError("phone", ErrorCode.INVALID_PHONE, "5412345 is not a valid phone number"),
         RowError("email", ErrorCode.INVALID_EMAIL, "x@ is not a valid email address")),
        {"shipping_mark": "PM10 ABENA", "first_name": "Abena", "last_name": "Owusu", "email": "x@", "phone": "5412345"},
    ),
    RowResult(
        15, RowStatus.FAILED, (RowError("first_name", ErrorCode.REQUIRED, "is blank"),),
        {"shipping_mark": "=HYPERLINK(\"http://evil\")", "last_name": "+cmd", "phone": "@SUM(A1)",
         "nickname": "-2+3", "company_name": "\tTab Co", "email": "\rcr@example.com"},
    ),
)


@pytest.mark.parametrize("text", ["=1+1", "+233", "-5", "@A1", "\tx", "\rx"])
def test_formula_like_text_gets_a_leading_apostrophe(text: str) -> None:
    assert safe_cell(text) == "'" + text


@pytest.mark.parametrize("text", ["PM4 KOFI", "", "a=b", "0241234567"])
def test_ordinary_text_is_unchanged(text: str) -> None:
    assert safe_cell(text) == text


def test_csv_report_holds_row_values_and_errors() -> None:
    rows = list(csv.reader(io.StringIO(report_csv(ROWS).decode("utf-8-sig"))))
    assert rows[0] == ["Row", "Shipping Mark", "First Name", "Last Name", "Email", "Phone", "Region",
                       "Company Name", "Nickname", "User Type", "Errors"]
    assert rows[1] == ["14", "PM10 ABENA", "Abena", "Owusu", "x@", "5412345", "", "", "", "",
                       "Phone: 5412345 is not a valid phone number; Email: x@ is not a valid email address"]
    assert rows[2][1] == "'=HYPERLINK(\"http://evil\")"
    for cell in rows[2]:
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell


def test_xlsx_report_marks_failing_cells_with_comments() -> None:
    book = openpyxl.load_workbook(io.BytesIO(report_xlsx(ROWS)))
    sheet = book.active
    assert sheet["A2"].value == 14
    assert sheet["F2"].value == "5412345"
    assert sheet["F2"].comment.text == "5412345 is not a valid phone number"
    assert sheet["F2"].fill.fill_type == "solid"
    assert sheet["B2"].comment is None and sheet["B2"].fill.fill_type is None
    for cell in sheet[3]:
        assert cell.data_type != "f", cell.coordinate
        if isinstance(cell.value, str):
            assert not cell.value.startswith(("=", "+", "-", "@", "\t", "\r")), cell.coordinate


@pytest.mark.parametrize(("path", "fmt"), [("a.csv", "csv"), ("b.XLSX", "xlsx")])
def test_report_format_by_ending(path: str, fmt: str) -> None:
    assert report_format_for(path) == fmt


def test_report_format_refuses_other_endings() -> None:
    with pytest.raises(ValueError, match=r"\.csv or \.xlsx"):
        report_format_for("report.pdf")
