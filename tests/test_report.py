"""Failure reports: original values, row numbers, errors, formula-safe, streamed, and they upload again."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import weakref
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import openpyxl
import pytest

from importer.intake.readers import open_file
from importer.mapping.columns import apply_mapping, choose_sheet
from importer.outcomes.failed_rows import FailedRows, ReportColumn
from importer.outcomes.row_errors import ErrorCode
from importer.output import failure_report as report
from importer.output.failure_report import (
    COMMENTED_ROWS,
    INSTRUCTIONS_SHEET,
    REPLACEMENT,
    WIDTH_SAMPLE_ROWS,
    XLSX_CELL_LIMIT,
    report_bytes,
    report_format_for,
    safe_cell,
    write_report,
)
from importer.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


# The report depends only on this shape of a failed row (results.FailedRow is one).
@dataclass(frozen=True)
class Err:
    field: str
    code: ErrorCode
    message: str


@dataclass(frozen=True)
class Row:
    source_row_number: int
    errors: tuple[Err, ...]
    customer_data: Mapping[str, str] = field(default_factory=dict)


ROWS = (
    Row(
        14,
        (Err("phone", ErrorCode.INVALID_PHONE, "5412345 is not a valid phone number"),
         Err("email", ErrorCode.INVALID_EMAIL, "x@ is not a valid email address")),
        {"shipping_mark": "PM10 ABENA", "first_name": "Abena", "last_name": "Owusu", "email": "x@", "phone": "5412345"},
    ),
    Row(
        15, (Err("first_name", ErrorCode.REQUIRED, "is blank"),),
        {"shipping_mark": "=HYPERLINK(\"http://evil\")", "last_name": "+cmd", "phone": "@SUM(A1)",
         "nickname": "-2+3", "company_name": "\tTab Co", "email": "\rcr@example.com", "region": "=SUM(A1)",
         "user_type": "#N/A"},
    ),
)


def _book(rows) -> openpyxl.Workbook:
    return openpyxl.load_workbook(io.BytesIO(report_bytes(rows, "xlsx")))


def _many(count: int, start: int = 2) -> Iterator[Row]:
    for n in range(count):
        yield Row(start + n, (Err("phone", ErrorCode.INVALID_PHONE, f"54{n} is not a valid phone number"),),
                  {"shipping_mark": f"PM{n}", "first_name": "Kofi", "last_name": "Mensah", "phone": f"54{n}"})


@pytest.mark.parametrize("text", ["=1+1", "+233", "-5", "@A1", "\tx", "\rx"])
def test_formula_like_text_gets_a_leading_apostrophe(text: str) -> None:
    assert safe_cell(text) == "'" + text


@pytest.mark.parametrize("text", ["PM4 KOFI", "", "a=b", "0241234567"])
def test_ordinary_text_is_unchanged(text: str) -> None:
    assert safe_cell(text) == text


def test_csv_report_holds_row_values_and_errors() -> None:
    rows = list(csv.reader(io.StringIO(report_bytes(ROWS, "csv").decode("utf-8-sig"))))
    assert rows[0] == ["Row", "Shipping Mark", "First Name", "Last Name", "Email", "Phone", "Region",
                       "Company Name", "Nickname", "User Type", "Other Phones", "Other Emails", "Errors"]
    assert rows[1] == ["14", "PM10 ABENA", "Abena", "Owusu", "x@", "5412345", "", "", "", "", "", "",
                       "Phone: 5412345 is not a valid phone number; Email: x@ is not a valid email address"]
    assert rows[2][1] == "'=HYPERLINK(\"http://evil\")"
    for cell in rows[2]:
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell


def test_write_report_streams_to_a_binary_file_and_counts_rows(tmp_path: Path) -> None:
    for fmt in ("csv", "xlsx"):
        path = tmp_path / f"r.{fmt}"
        with path.open("wb") as out:
            assert write_report(iter(ROWS), fmt, out) == 2
            assert not out.closed  # the caller's file stays open
        assert path.read_bytes() == report_bytes(ROWS, fmt) or fmt == "xlsx"  # zip timestamps may differ
    assert report_bytes(ROWS, "csv").startswith(b"\xef\xbb\xbf")
    with pytest.raises(ValueError, match="csv, xlsx"):
        write_report(ROWS, "pdf", io.BytesIO())


def test_xlsx_report_marks_failing_cells_with_comments() -> None:
    book = _book(ROWS)
    assert book.sheetnames == ["Failed rows", INSTRUCTIONS_SHEET]
    sheet = book.active
    assert sheet.title == "Failed rows" and sheet.freeze_panes == "B2"
    assert sheet["A2"].value == 14
    assert sheet["F2"].value == "5412345"
    assert sheet["F2"].comment.text == "5412345 is not a valid phone number"
    assert sheet["F2"].fill.fill_type == "solid"
    assert sheet["E2"].comment.text == "x@ is not a valid email address"
    assert sheet["B2"].comment is None and sheet["B2"].fill.fill_type is None
    # A blank required cell is coloured and commented too.
    assert sheet["C3"].value is None and sheet["C3"].fill.fill_type == "solid"
    assert sheet["C3"].comment.text == "is blank"
    assert sheet["M1"].value == "Errors" and sheet["M2"].value.startswith("Phone: 5412345")


def test_xlsx_cells_are_text_never_formulas_and_carry_no_apostrophe() -> None:
    sheet = _book(ROWS).active
    row = {sheet.cell(1, c.column).value: c for c in sheet[3]}
    assert row["Region"].value == "=SUM(A1)" and row["Region"].data_type == "s"
    assert row["Shipping Mark"].value == "=HYPERLINK(\"http://evil\")" and row["Shipping Mark"].data_type == "s"
    assert row["Last Name"].value == "+cmd" and row["Phone"].value == "@SUM(A1)"
    assert row["Nickname"].value == "-2+3" and row["Company Name"].value == "\tTab Co"
    assert row["Email"].value == "\rcr@example.com"  # the carriage return survives the XML
    assert row["User Type"].value == "#N/A" and row["User Type"].data_type == "s"  # not an error value
    for cell in (c for r in sheet.iter_rows() for c in r):
        assert cell.data_type in ("s", "n"), cell.coordinate
        assert not (isinstance(cell.value, str) and cell.value.startswith("'")), cell.coordinate


def test_xlsx_columns_are_fitted_to_their_content() -> None:
    long_mark = "PM" + "X" * 40
    rows = [Row(2, (Err("phone", ErrorCode.INVALID_PHONE, "bad"),), {"shipping_mark": long_mark, "phone": "1"})]
    sheet = _book(rows).active
    assert sheet.column_dimensions["B"].width >= len(long_mark)
    assert sheet.column_dimensions["F"].width < 15  # "Phone", "1"
    assert sheet.column_dimensions["M"].width <= report.MAX_COLUMN_WIDTH


def test_instructions_sheet_explains_colours_and_what_to_do() -> None:
    book = _book(ROWS)
    failing_colour = book.active["F2"].fill.fgColor.rgb
    info_colour = book.active["M2"].fill.fgColor.rgb
    sheet = book[INSTRUCTIONS_SHEET]
    text = " ".join(str(v) for r in sheet.iter_rows(values_only=True) for v in r if v)
    assert "a value that failed" in text and "Upload it again" in text
    assert "Row and Errors" in text and "never imported" in text
    assert "Comments show" not in text  # nothing was left uncommented
    assert "Report of run" not in text  # rows without a run (a dry run's)
    swatches = {c.fill.fgColor.rgb: sheet.cell(c.row, 2).value for c in sheet["A"] if c.fill.fill_type}
    assert swatches[failing_colour].startswith("Light red: a value that failed")
    assert swatches[info_colour].startswith("Grey: Row and Errors, for information")
    assert len(swatches) == 2  # the third line (no colour) says what an uncoloured cell is
    assert "No colour: a value that passed." in text


def test_comments_stop_at_the_cap_but_every_failing_cell_is_coloured(monkeypatch) -> None:
    monkeypatch.setattr(report, "COMMENTED_ROWS", 3)
    book = _book(_many(5))
    sheet = book.active
    phones = [sheet.cell(r, 6) for r in range(2, 7)]
    assert [c.comment is not None for c in phones] == [True, True, True, False, False]
    assert all(c.fill.fill_type == "solid" for c in phones)
    assert all("is not a valid phone number" in sheet.cell(r, 13).value for r in range(2, 7))
    text = " ".join(str(v) for r in book[INSTRUCTIONS_SHEET].iter_rows(values_only=True) for v in r if v)
    assert ("Comments show the messages of the first 3 failing rows; every failing cell is coloured; "
            "the Errors column has every message.") in text


def test_default_cap_comments_the_first_rows() -> None:
    # Read the parts directly: openpyxl takes seconds to load thousands of comments.
    with zipfile.ZipFile(io.BytesIO(report_bytes(_many(COMMENTED_ROWS + 2), "xlsx"))) as archive:
        comments = archive.read("xl/comments1.xml").decode()
        shapes = archive.read("xl/drawings/vmlDrawing1.vml").decode()
    assert comments.count("<comment ") == shapes.count("<v:shape ") == COMMENTED_ROWS
    assert f'ref="F{COMMENTED_ROWS + 1}"' in comments and f'ref="F{COMMENTED_ROWS + 2}"' not in comments
    ids = ",".join(str(n) for n in range(1, 2 + COMMENTED_ROWS // 1024))
    assert f'data="{ids}"' in shapes  # the shape ids' blocks


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_a_generator_is_consumed_once_and_streamed(fmt: str) -> None:
    alive = most = pulled = 0

    def freed() -> None:
        nonlocal alive
        alive -= 1

    def rows() -> Iterator[Row]:
        nonlocal alive, most, pulled
        for row in _many(WIDTH_SAMPLE_ROWS * 5):
            most = max(most, alive)
            weakref.finalize(row, freed)
            alive += 1
            pulled += 1
            yield row
            del row

    generator = rows()
    out = io.BytesIO()
    assert write_report(generator, fmt, out) == WIDTH_SAMPLE_ROWS * 5
    assert pulled == WIDTH_SAMPLE_ROWS * 5 and next(generator, None) is None
    assert most <= WIDTH_SAMPLE_ROWS + 1  # never more held than the rows sampled for column widths
    if fmt == "xlsx":
        assert openpyxl.load_workbook(io.BytesIO(out.getvalue())).active.max_row == WIDTH_SAMPLE_ROWS * 5 + 1


def test_illegal_characters_are_replaced_visibly_not_a_traceback() -> None:
    rows = [Row(2, (Err("first_name", ErrorCode.INVALID_FORMAT, "bad \x01 name"),),
                {"first_name": "Ab\x0bena\x00", "last_name": "Ow\ud800usu", "nickname": "x\ufffey"})]
    sheet = _book(rows).active
    assert sheet["C2"].value == f"Ab{REPLACEMENT}ena{REPLACEMENT}"
    assert sheet["D2"].value == f"Ow{REPLACEMENT}usu"
    assert sheet["I2"].value == f"x{REPLACEMENT}y"
    assert sheet["C2"].comment.text == f"bad {REPLACEMENT} name"
    # CSV holds control characters; only what UTF-8 cannot encode (a lone surrogate) becomes "?".
    line = list(csv.reader(io.StringIO(report_bytes(rows, "csv").decode("utf-8-sig"))))[1]
    assert line[2] == "Ab\x0bena\x00" and line[3] == "Ow?usu"


def test_an_xlsx_cell_is_capped_at_excels_limit() -> None:
    huge = "A" * (XLSX_CELL_LIMIT + 10_000)
    rows = [Row(2, (Err("company_name", ErrorCode.TOO_LONG, "is over 100 characters"),), {"company_name": huge})]
    value = _book(rows).active["H2"].value
    assert len(value) == XLSX_CELL_LIMIT and value.endswith("…") and value.startswith("AAAA")
    line = list(csv.reader(io.StringIO(report_bytes(rows, "csv").decode("utf-8-sig"))))[1]
    assert line[7] == huge  # CSV keeps the value whole


def test_xlsx_report_uploads_again_as_it_is() -> None:
    settings = Settings()
    file = open_file(report_bytes(ROWS, "xlsx"), "failed.xlsx", settings)
    name, rows, mapping = choose_sheet(file, None, settings.max_rows)
    assert name == "Failed rows" and not mapping.missing_required
    assert mapping.unknown_columns == ("Row", "Errors")  # ignored on reading
    frame = apply_mapping(rows, mapping, settings.max_rows)
    fields = ["shipping_mark", "first_name", "last_name", "email", "phone"]
    assert frame.loc[2, fields].tolist() == ["PM10 ABENA", "Abena", "Owusu", "x@", "5412345"]
    assert frame.loc[3, "shipping_mark"] == "=HYPERLINK(\"http://evil\")"  # as typed, nothing to undo


@pytest.mark.parametrize(("path", "fmt"), [("a.csv", "csv"), ("b.XLSX", "xlsx")])
def test_report_format_by_ending(path: str, fmt: str) -> None:
    assert report_format_for(path) == fmt


def test_report_format_refuses_other_endings() -> None:
    with pytest.raises(ValueError, match=r"\.csv or \.xlsx"):
        report_format_for("report.pdf")


def _growth_mb(rows: int) -> float:
    """Peak RSS growth (VmHWM) of a fresh process writing an XLSX report of `rows` failed rows."""
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_report.py"), "--child", str(rows), "xlsx"],
                          capture_output=True, text=True, check=True, cwd=ROOT, timeout=300)
    return json.loads(proc.stdout.strip().splitlines()[-1])["growth_mb"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads VmHWM from /proc")
def test_xlsx_report_memory_does_not_grow_with_rows() -> None:
    small, large = _growth_mb(5_000), _growth_mb(50_000)
    # Both are about 1 MB (bench/bench_report.py); 1 MB of slack absorbs the allocator's granularity.
    assert large < 2 * small + 1, (small, large)


# -- the branch's own columns and the run (issue 11) ------------------------------------------------------
@dataclass(frozen=True)
class BranchRow(Row):
    other_columns: Mapping[str, str] = field(default_factory=dict)


BRANCH_COLUMNS = (ReportColumn("S/No", None), ReportColumn("Shipping Mark", "shipping_mark"),
                  ReportColumn("Phone", "phone"), ReportColumn("Remarks", None))
BRANCH_ROWS = (
    BranchRow(5, (Err("phone", ErrorCode.INVALID_PHONE, "12345 is not a valid phone number"),),
              {"shipping_mark": "PM3 YAW", "phone": "12345"}, {"S/No": "3", "Remarks": "=call back"}),
    BranchRow(9, (Err("other_phones", ErrorCode.TOO_LONG, "is 600 characters long"),),
              {"shipping_mark": "PM7 ESI", "phone": "+233241234567, ..."}, {"S/No": "7"}),
)


def test_csv_report_keeps_the_files_columns_in_place_and_names_its_run() -> None:
    failed = FailedRows.of(BRANCH_ROWS, columns=BRANCH_COLUMNS, run_id=12)
    rows = list(csv.reader(io.StringIO(report_bytes(failed, "csv").decode("utf-8-sig"))))
    assert rows[0] == ["Row", "S/No", "Shipping Mark", "Phone", "Remarks", "Report of run", "Errors"]
    # The branch's own text is defused like any other: a formula-like remark gets its apostrophe.
    assert rows[1] == ["5", "3", "PM3 YAW", "12345", "'=call back", "12",
                       "Phone: 12345 is not a valid phone number"]
    assert rows[2][:5] == ["9", "7", "PM7 ESI", "'+233241234567, ...", ""]  # CSV protection kept
    # Explicit arguments win over what the rows carry; without either, every field and no run.
    plain = list(csv.reader(io.StringIO(report_bytes(BRANCH_ROWS, "csv").decode("utf-8-sig"))))
    assert plain[0][-1] == "Errors" and "S/No" not in plain[0]


def test_xlsx_report_keeps_the_files_columns_uncoloured_and_the_run_grey() -> None:
    book = _book(FailedRows.of(BRANCH_ROWS, columns=BRANCH_COLUMNS, run_id=12))
    sheet = book.active
    assert [c.value for c in sheet[1]] == ["Row", "S/No", "Shipping Mark", "Phone", "Remarks", "Report of run",
                                           "Errors"]
    assert sheet["B2"].value == "3" and sheet["E2"].value == "=call back" and sheet["E2"].data_type == "s"
    assert sheet["B2"].fill.fill_type is None and sheet["E2"].fill.fill_type is None
    assert sheet["D2"].fill.fill_type == "solid" and sheet["D2"].comment.text.startswith("12345")
    # An error of a field with no column (other phones split off the phone cell) marks the phone cell.
    assert sheet["D3"].fill.fill_type == "solid" and sheet["D3"].comment.text == "is 600 characters long"
    assert sheet["D3"].value == "+233241234567, ..."  # no apostrophe in an XLSX text cell
    grey = sheet["G2"].fill.fgColor.rgb
    assert sheet["F2"].value == "12" and sheet["F2"].fill.fgColor.rgb == grey == sheet["A2"].fill.fgColor.rgb
    text = " ".join(str(v) for r in book[INSTRUCTIONS_SHEET].iter_rows(values_only=True) for v in r if v)
    assert "It is the report of import run #12" in text
    assert "Grey: Row, Report of run and Errors" in text and "linked to run #12" in text
    assert "a column of your file that is not imported (S/No, Remarks), kept as it was" in text


def test_column_widths_fit_the_files_columns_too() -> None:
    remark = "called twice, no answer, try the other number"
    rows = [BranchRow(2, (Err("phone", ErrorCode.INVALID_PHONE, "bad"),), {"phone": "1"}, {"Remarks": remark})]
    sheet = _book(FailedRows.of(rows, columns=BRANCH_COLUMNS, run_id=3)).active
    assert sheet.column_dimensions["E"].width >= len(remark)
    assert sheet.column_dimensions["B"].width < 10  # "S/No"
    assert all(sheet.column_dimensions[c].width <= report.MAX_COLUMN_WIDTH for c in "ABCDEFG")


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_a_report_with_the_files_columns_still_streams(fmt: str) -> None:
    pulled = 0

    def rows() -> Iterator[BranchRow]:
        nonlocal pulled
        for n in range(WIDTH_SAMPLE_ROWS * 3):
            pulled += 1
            yield BranchRow(n + 2, (Err("phone", ErrorCode.INVALID_PHONE, "bad"),), {"phone": str(n)},
                            {"S/No": str(n)})

    generator = rows()
    assert write_report(generator, fmt, io.BytesIO(), columns=BRANCH_COLUMNS, run_id=4) == WIDTH_SAMPLE_ROWS * 3
    assert pulled == WIDTH_SAMPLE_ROWS * 3 and next(generator, None) is None
