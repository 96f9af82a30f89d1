"""Branch files and the reports that go back to them: the file's own columns kept in their places, several
phones in one cell stored, a fixed report read back with the branch's row numbers and linked to its run;
through the whole pipeline on real SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json

import openpyxl
import pandas as pd
import pytest
import sqlalchemy as sa

from importer.api import import_upload, read_upload
from importer.database.ledger import get_run, list_runs, run_failures
from importer.database.schema import customers, import_runs
from importer.intake.delimited import SheetRows
from importer.mapping.columns import ColumnMapping
from importer.mapping.roundtrip import (
    MAX_OTHER_COLUMNS,
    NOT_IMPORTED,
    renumber,
    report_columns,
    report_layout,
)
from importer.outcomes.failed_rows import ReportColumn
from importer.output.failure_report import report_bytes
from tests.support import SETTINGS, ready_engine

BRANCH = (
    "Kumasi branch customers\n"
    "S/No,Mark,First Name,Surname,Mobile,Remarks\n"
    "1,PM1 KOFI,Kofi,Mensah,0241234567,ok\n"
    '2,PM2 AMA,Ama,Owusu,"0277229773, 0248503716",two phones\n'
    "3,PM3 YAW,Yaw,Boateng,12345,typo in phone\n"
    "4,PM4 ABENA,,Owusu,0201234567,first name missing\n"
    '5,PM5 ESI,Esi,Mensah,"0277, 0201",both numbers wrong\n'
)


def _mapping(headers: list[str], fields: list[str | None]) -> ColumnMapping:
    return ColumnMapping(1, tuple(headers), tuple(fields), positional=False)


def _csv(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


def _csv_bytes(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode()


# -- the pieces -------------------------------------------------------------------------------------------
def test_our_report_is_recognised_by_its_row_and_errors_columns() -> None:
    fields = [None, "shipping_mark", "first_name", "last_name", "phone", None, None]
    found = report_columns(_mapping(["Row", "Mark", "First", "Last", "Phone", "Errors", "Report of run"], fields))
    assert found == {"Row": 0, "Errors": 5, "Report of run": 6}
    assert report_columns(_mapping([" row ", "Mark", "First", "Last", "Phone", "ERRORS", ""], fields)) == {
        "Row": 0, "Errors": 5}
    # A branch file with a Row column but no Errors is not one of our reports.
    assert report_columns(_mapping(["Row", "Mark", "First", "Last", "Phone", "Notes", ""], fields)) is None


def test_the_layout_keeps_the_files_own_columns_in_their_places() -> None:
    mapping = _mapping(
        ["S/No", "Mark", "", "First", "Surname", "Phone", "Mobile", "Notes", "notes", "Row", "Errors"],
        [None, "shipping_mark", None, "first_name", "last_name", None, "phone", None, None, None, None])
    columns, kept = report_layout(mapping, skip=(9, 10))
    # The branch's own headers (issue 22): each maps back to its field when the report is uploaded again.
    assert [c.header for c in columns] == [
        "S/No", "Mark", "First", "Surname", f"Phone{NOT_IMPORTED}", "Mobile", "Notes", "notes (2)"]
    assert [c.field for c in columns] == [None, "shipping_mark", "first_name", "last_name", None, "phone", None, None]
    assert all(c.typed for c in columns)
    assert kept == (0, 1, 3, 4, 5, 6, 7, 8)  # the blank header and our own Row and Errors are not the file's columns


def test_a_header_mapped_by_hand_comes_back_as_its_fields_label() -> None:
    """A header that would not map to its field again (`Col7` mapped by hand to Phone) comes back under
    the field's label, with the mapped values, so the report still maps back."""
    columns, kept = report_layout(_mapping(["Mark", "First", "Last", "Col7"],
                                           ["shipping_mark", "first_name", "last_name", "phone"]))
    assert [(c.header, c.typed) for c in columns][-1] == ("Phone", False)
    assert kept == (0, 1, 2)


def test_a_wide_file_keeps_only_its_first_other_columns() -> None:
    headers = ["Mark", "First", "Last", "Phone", *(f"Extra {i}" for i in range(MAX_OTHER_COLUMNS + 10))]
    fields = ["shipping_mark", "first_name", "last_name", "phone", *([None] * (MAX_OTHER_COLUMNS + 10))]
    columns, kept = report_layout(_mapping(headers, fields))
    assert sum(c.field is None for c in columns) == MAX_OTHER_COLUMNS and len(kept) == MAX_OTHER_COLUMNS + 4
    assert columns[-1].header == f"Extra {MAX_OTHER_COLUMNS - 1}"


def _sheet(lines: list[list[str]]) -> SheetRows:
    rows = SheetRows()
    for index, cells in enumerate(lines):
        rows.put(index, cells)
    return rows


def test_renumbering_uses_the_row_column_and_numbers_the_rest_after_it() -> None:
    rows = _sheet([["Row", "Mark", "Errors", "Report of run"], ["14", "A", "x", "3"], ["9.0", "B", "x", "3"],
                   ["", "C", "x", "3"], ["14", "D", "x", ""], ["abc", "E", "x", "7"]])
    index = pd.Index([2, 3, 4, 5, 6], name="source_row_number")
    frame = pd.DataFrame({"shipping_mark": list("ABCDE")}, index=index)
    others = pd.DataFrame({"S/No": ["1", "2", "3", "4", "5"]}, index=index)
    frame, others, report = renumber(frame, others, rows, {"Row": 0, "Errors": 2, "Report of run": 3})
    assert frame.index.tolist() == [9, 14, 15, 16, 17] and frame.index.name == "source_row_number"
    assert frame["shipping_mark"].tolist() == ["B", "A", "C", "D", "E"]
    assert others["S/No"].tolist() == ["2", "1", "3", "4", "5"]
    # Blank, repeated and non-numeric Row values: numbered after the largest, and listed.
    assert report.renumbered == ((4, 15), (5, 16), (6, 17))
    assert report.fixes_run_id == 3 and report.columns == (0, 2, 3)


# -- through the pipeline and the database ----------------------------------------------------------------
def test_a_branch_list_with_two_phones_in_a_cell_is_imported_with_other_phones(database_url: str) -> None:
    engine = ready_engine(database_url)
    upload = read_upload(BRANCH.encode(), "kumasi.csv", SETTINGS)
    result = import_upload(engine, upload, SETTINGS)
    assert (result.total_created, result.total_failed) == (2, 3)
    with engine.connect() as conn:
        stored = conn.execute(sa.select(customers.c.shipping_mark, customers.c.phone, customers.c.other_phones)
                              .order_by(customers.c.id)).all()
    assert [tuple(r) for r in stored] == [("PM1 KOFI", "+233241234567", None),
                                          ("PM2 AMA", "+233277229773", "+233248503716")]
    failed = {row.source_row_number: row for row in result.failed}
    (error,) = failed[7].errors
    assert error.message == ("holds 2 numbers and none is a valid phone number: 0277 is not a valid phone "
                             "number; 0201 is not a valid phone number")
    # The JSON contract's customer_data holds fields only; the file's own columns stay out of it.
    assert failed[5].to_json()["customer_data"] == {
        "shipping_mark": "PM3 YAW", "first_name": "Yaw", "last_name": "Boateng", "phone": "12345"}


def test_other_phones_take_part_in_a_re_import(database_url: str) -> None:
    engine = ready_engine(database_url)
    first = "Mark,First Name,Surname,Mobile\nPM2 AMA,Ama,Owusu,0277229773\nPM3 YAW,Yaw,Boateng,0241234567\n"
    import_upload(engine, read_upload(first.encode(), "a.csv", SETTINGS), SETTINGS)
    again = ("Mark,First Name,Surname,Mobile\nPM2 AMA,Ama,Owusu,\"0277229773 / 0248503716\"\n"
             "PM3 YAW,Yaw,Boateng,0241234567\n")
    skipped = import_upload(engine, read_upload(again.encode(), "b.csv", SETTINGS), SETTINGS)
    assert (skipped.total_unchanged, skipped.total_failed) == (1, 1)
    (error,) = next(iter(skipped.failed)).errors
    assert error.field == "other_phones" and error.code.value == "already_exists"
    assert error.message.startswith("other phones differs: stored blank, file +233248503716")
    updated = import_upload(engine, read_upload(again.encode(), "b.csv", SETTINGS), SETTINGS, existing="update")
    assert (updated.total_updated, updated.total_unchanged) == (1, 1)
    assert next(iter(updated.updated)).changes == {"other_phones": (None, "+233248503716")}
    # The first list again, under --blank keep: a blank (unmapped) Other Phones keeps the stored numbers.
    kept = import_upload(engine, read_upload(first.encode(), "a2.csv", SETTINGS), SETTINGS, existing="update")
    assert (kept.total_unchanged, kept.total_updated) == (2, 0)


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_a_report_round_trip_keeps_the_branch_columns_rows_and_run(database_url: str, fmt: str) -> None:
    engine = ready_engine(database_url)
    first = import_upload(engine, read_upload(BRANCH.encode(), "kumasi.csv", SETTINGS), SETTINGS)
    report = report_bytes(run_failures(engine, first.run_id), fmt)
    if fmt == "csv":
        rows = _csv(report)
    else:
        book = openpyxl.load_workbook(io.BytesIO(report))
        rows = [["" if v is None else str(v) for v in r] for r in book.active.iter_rows(values_only=True)]
    header = rows[0]
    assert header == ["Row", "S/No", "Mark", "First Name", "Surname", "Mobile", "Remarks",
                      "Report of run", "Errors"]
    assert [(r[0], r[1], r[6], r[7]) for r in rows[1:]] == [
        ("5", "3", "typo in phone", str(first.run_id)), ("6", "4", "first name missing", str(first.run_id)),
        ("7", "5", "both numbers wrong", str(first.run_id))]
    # The branch fixes two rows (the third stays wrong) and sends the report back as it is.
    rows[1][5] = "0551234567"
    rows[2][3] = "Abena"
    if fmt == "csv":
        data = _csv_bytes(rows)
    else:
        sheet = book.active
        sheet["F2"], sheet["D3"] = "0551234567", "Abena"
        buffer = io.BytesIO()
        book.save(buffer)
        data = buffer.getvalue()
    upload = read_upload(data, f"fixed.{fmt}", SETTINGS)
    assert upload.fixes_run_id == first.run_id and upload.report is not None and upload.report.renumbered == ()
    assert upload.checked.original.index.tolist() == [5, 6, 7]  # the branch's rows, not the report's
    assert upload.other_columns is not None and upload.other_columns.columns.tolist() == [
        "S/No", "Mark", "First Name", "Surname", "Mobile", "Remarks"]
    second = import_upload(engine, upload, SETTINGS)
    assert (second.total_created, second.total_failed) == (2, 1)
    assert get_run(engine, second.run_id).fixes_run_id == first.run_id
    assert [r.fixes_run_id for r in list_runs(engine)] == [first.run_id, None]
    with engine.connect() as conn:
        assert conn.execute(sa.select(import_runs.c.fixes_run_id).where(
            import_runs.c.id == second.run_id)).scalar_one() == first.run_id
        rows_created = conn.execute(sa.select(customers.c.source_row_number).where(
            customers.c.import_run_id == second.run_id).order_by(customers.c.source_row_number)).scalars().all()
    assert rows_created == [5, 6]
    # The second report names the branch's row 7 and keeps its S/No and Remarks.
    again = _csv(report_bytes(run_failures(engine, second.run_id), "csv"))
    assert again[0] == header
    assert again[1][:2] == ["7", "5"] and again[1][6] == "both numbers wrong" and again[1][7] == str(second.run_id)


def test_a_dry_runs_report_has_the_branch_columns_but_no_run(database_url: str) -> None:
    engine = ready_engine(database_url)
    dry = import_upload(engine, read_upload(BRANCH.encode(), "kumasi.csv", SETTINGS), SETTINGS, dry_run=True)
    rows = _csv(report_bytes(dry.failed, "csv"))
    assert rows[0] == ["Row", "S/No", "Mark", "First Name", "Surname", "Mobile", "Remarks", "Errors"]
    assert [r[:2] for r in rows[1:]] == [["5", "3"], ["6", "4"], ["7", "5"]]
    upload = read_upload(_csv_bytes(rows), "dry-report.csv", SETTINGS)
    assert upload.fixes_run_id is None and upload.checked.original.index.tolist() == [5, 6, 7]


def test_a_report_of_a_run_this_database_does_not_have_links_to_nothing(database_url: str) -> None:
    engine = ready_engine(database_url)
    report = ("Row,Shipping Mark,First Name,Last Name,Phone,Report of run,Errors\n"
              "12,PM9 KOJO,Kojo,Asante,0241234567,41,Phone: bad\n")
    upload = read_upload(report.encode(), "old-report.csv", SETTINGS)
    assert upload.fixes_run_id == 41
    result = import_upload(engine, upload, SETTINGS)
    assert result.total_created == 1 and get_run(engine, result.run_id).fixes_run_id is None
    with engine.connect() as conn:
        assert conn.execute(sa.select(customers.c.source_row_number)).scalar_one() == 12


def test_history_json_lists_the_run_a_run_fixes(database_url: str) -> None:
    engine = ready_engine(database_url)
    first = import_upload(engine, read_upload(BRANCH.encode(), "kumasi.csv", SETTINGS), SETTINGS)
    rows = _csv(report_bytes(run_failures(engine, first.run_id), "csv"))
    second = import_upload(engine, read_upload(_csv_bytes(rows), "again.csv", SETTINGS), SETTINGS)
    records = {r.id: r.to_json() for r in list_runs(engine)}
    assert records[second.run_id]["fixes_run_id"] == first.run_id and records[first.run_id]["fixes_run_id"] is None
    json.dumps(records[second.run_id])  # JSON-ready


def test_a_report_keeps_its_layout_for_a_run_read_back_later(database_url: str) -> None:
    engine = ready_engine(database_url)
    first = import_upload(engine, read_upload(BRANCH.encode(), "kumasi.csv", SETTINGS), SETTINGS)
    failed = run_failures(engine, first.run_id)
    assert failed.run_id == first.run_id
    assert failed.columns is not None and failed.columns[0] == ReportColumn("S/No", None)
    assert next(iter(failed)).other_columns == {"S/No": "3", "Mark": "PM3 YAW", "First Name": "Yaw",
                                                "Surname": "Boateng", "Mobile": "12345", "Remarks": "typo in phone"}


def test_a_full_name_column_comes_back_as_one_column_as_typed() -> None:
    from importer.mapping.columns import FULL_NAME

    mapping = _mapping(["S/No", "Cust. Name", "Mark", "Mobile"], [None, FULL_NAME, "shipping_mark", "phone"])
    columns, kept = report_layout(mapping)
    assert [(c.header, c.fields) for c in columns] == [
        ("S/No", ()), ("Cust. Name", ("first_name", "last_name")), ("Mark", ("shipping_mark",)),
        ("Mobile", ("phone",))]
    assert kept == (0, 1, 2, 3)
    # By hand (a header that names no field): First Name and Last Name, as it was split.
    columns, kept = report_layout(_mapping(["S/No", "Who", "Mark", "Mobile"], [None, FULL_NAME, "shipping_mark", "phone"]))
    assert [c.header for c in columns] == ["S/No", "First Name", "Last Name", "Mark", "Mobile"] and kept == (0, 2, 3)


def test_the_kumasi_list_round_trip_keeps_s_no_remarks_and_the_split_names(database_url: str) -> None:
    """The branch-shaped fixture (tests/fixtures/branch_files.py): S/No, Cust. Name, Location, Remarks and a
    footer; the failing rows (Location values no region matches) come back with S/No and Remarks."""
    from tests.fixtures.branch_files import kumasi_xlsx

    engine = ready_engine(database_url)
    upload = read_upload(kumasi_xlsx(), "kumasi.xlsx", SETTINGS)
    first = import_upload(engine, upload, SETTINGS)
    assert first.total_failed > 0
    book = openpyxl.load_workbook(io.BytesIO(report_bytes(run_failures(engine, first.run_id), "xlsx")))
    header = [c.value for c in book.active[1]]
    # The branch's headers and cells as typed (issue 22): Cust. Name stays one column, Location keeps
    # the town the branch typed, not the region it was converted to.
    assert header == ["Row", "S/No", "Mark", "Cust. Name", "Phone", "Location", "Remarks", "Report of run", "Errors"]
    typed = {r.source_row_number: r for r in first.failed}
    for cells in book.active.iter_rows(min_row=2, values_only=True):
        row = typed[int(cells[0])]
        assert row.source_row_number == int(cells[0])
        assert upload.other_columns is not None
        assert (cells[3] or "") == upload.other_columns.loc[int(cells[0]), "Cust. Name"]
        assert (cells[5] or "") == upload.other_columns.loc[int(cells[0]), "Location"]
    again = read_upload(_xlsx_bytes(book), "kumasi-report.xlsx", SETTINGS)
    assert again.fixes_run_id == first.run_id
    assert again.checked.original.index.tolist() == [r.source_row_number for r in first.failed]
    assert again.other_columns is not None and list(again.other_columns.columns) == [
        "S/No", "Mark", "Cust. Name", "Phone", "Location", "Remarks"]


def _xlsx_bytes(book: openpyxl.Workbook) -> bytes:
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def test_a_report_upload_says_what_it_is() -> None:
    from importer.mapping.roundtrip import ReportUpload

    assert ReportUpload(3, (0, 5)).describe() == (
        "The failure report of run #3: each row keeps its Row, the row number in the branch's file; "
        "the import will be linked to run #3.")
    assert ReportUpload(None, (0, 5), ((4, 15), (9, 16))).describe() == (
        "A failure report: each row keeps its Row, the row number in the branch's file. 2 row(s) without a "
        "usable Row (line 4, 9 of this file) are numbered from 15 on.")


def test_a_report_kept_as_a_workspace_replays_with_the_branchs_rows_and_columns(database_url: str) -> None:
    """Replay reads a report like read_upload does: numbered by its Row column, its own columns kept, so a
    refresh or a resume from the workspace sees the same rows as the upload did."""
    from importer.workspace import store as workspace
    engine = ready_engine(database_url)
    first = import_upload(engine, read_upload(BRANCH.encode(), "kumasi.csv", SETTINGS), SETTINGS)
    data = report_bytes(run_failures(engine, first.run_id), "csv")
    upload = read_upload(data, "fixed.csv", SETTINGS)
    wid = workspace.create_workspace(engine, "ama", data, "fixed.csv", SETTINGS, upload.sheet, upload.mapping,
                                     rows=upload.checked.total)
    replayed = workspace.open_workspace(engine, wid, SETTINGS).upload
    assert replayed.checked.original.index.tolist() == [5, 6, 7]
    assert replayed.fixes_run_id == first.run_id
    assert replayed.other_columns is not None and replayed.other_columns.equals(upload.other_columns)
    assert replayed.report_columns == upload.report_columns


def test_the_report_shows_the_cells_as_typed_not_as_converted(database_url: str) -> None:
    """Issue 22: a Location converted in Review (Kumasi -> ASHANTI) and a phone as typed come back in the
    branch's headers as the branch typed them; the reasons stay beside them, in words."""
    from dataclasses import replace

    from importer.checks.validate import recheck

    engine = ready_engine(database_url)
    data = (b"S/Mark,Customer Name,Mobile,Location\n"
            b"KSI-1,Kofi Mensah,024 123 4567,Kumasi\n"
            b"KSI-2,Ama Owusu,12345,Kumasi\n")
    upload = read_upload(data, "kumasi.csv", SETTINGS)
    changed = upload.checked.original.loc[[2, 3]].copy()
    changed["region"] = "ASHANTI"  # the analyst's conversion of the town
    upload = replace(upload, checked=recheck(upload.checked, changed, SETTINGS))
    result = import_upload(engine, upload, SETTINGS)
    assert result.total_failed == 1
    for failed in (result.failed, run_failures(engine, result.run_id)):
        rows = _csv(report_bytes(failed, "csv"))
        assert rows[0] == ["Row", "S/Mark", "Customer Name", "Mobile", "Location", "Report of run", "Errors"]
        assert rows[1][:5] == ["3", "KSI-2", "Ama Owusu", "12345", "Kumasi"]
        assert "--" not in rows[1][-1]
    again = read_upload(_csv_bytes(rows), "fixed.csv", SETTINGS)
    assert again.fixes_run_id == result.run_id and again.checked.original.index.tolist() == [3]
    assert again.checked.original.loc[3, "first_name"] == "Ama"


def test_a_typed_column_shares_its_fields_text_until_a_fix_changes_the_field() -> None:
    """A mapped column is kept as typed for the report. While it holds its field's text exactly, the two are
    one Arrow array (held twice, they were 11 MB of a 100,000-row upload); a fix makes a new column for the
    field, and the report still shows the file's text."""
    from importer.review.fixes import apply_fix, available_fixes

    upload = read_upload(BRANCH.encode(), "kumasi.csv", SETTINGS)
    typed = {c.header: c.field for c in upload.report_columns or () if c.typed and c.field}
    assert typed["Mark"] == "shipping_mark" and typed["Surname"] == "last_name"
    others, original = upload.other_columns, upload.checked.original
    for header, field in typed.items():
        if field in ("shipping_mark", "first_name", "last_name"):
            assert others[header].array._pa_array is original[field].array._pa_array, header
    assert others["Remarks"].tolist()[0] == "ok"  # a column of the file's own stays its own
    fixed, _ = apply_fix(upload.checked, available_fixes(SETTINGS)["names"], SETTINGS)
    assert fixed.original["last_name"].tolist()[0] == "Mensah"
    lower = read_upload(BRANCH.replace("Mensah", "mensah").encode(), "k.csv", SETTINGS)
    fixed, _ = apply_fix(lower.checked, available_fixes(SETTINGS)["names"], SETTINGS)
    assert fixed.original.loc[3, "last_name"] == "Mensah"
    assert lower.other_columns.loc[3, "Surname"] == "mensah"  # as typed
