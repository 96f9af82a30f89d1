"""importer.output.customer_export: the Customers page's export as CSV and XLSX, streamed, formula-safe, filtered like the page,
and uploadable again as an import file."""

from __future__ import annotations

import csv
import io
import zipfile

import openpyxl
import pytest

from importer.api import import_upload, read_upload
from importer.database.customers import iter_customers
from importer.database.loader import run_import
from importer.output import customer_export as export
from importer.output.customer_export import (
    EXTRA_HEADERS,
    download_formats,
    export_bytes,
    export_customers,
    export_file_name,
    export_headers,
    write_customers,
)
from schemas.customer import FIELDS
from tests.support import SETTINGS, checked_of, person, ready_engine


def _import(engine, rows, sha, **kw):
    return run_import(engine, checked_of(rows), file_name=f"{sha}.xlsx", sha256=sha * 64, sheet="S",
                      settings=SETTINGS, **kw)


def _csv_rows(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(data[3:].decode("utf-8"))))


def _xlsx_rows(data: bytes) -> list[list[object]]:
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    assert book.sheetnames == ["Customers"]
    return [["" if v is None else v for v in row] for row in book["Customers"].iter_rows(values_only=True)]


def _one(**over) -> dict:
    row = {f.name: None for f in FIELDS}
    row.update(id=7, shipping_mark="PM7 KOFI", first_name="Kofi", last_name="Mensah", phone="+233240000007",
               region="GREATER_ACCRA", user_type="INDIVIDUAL", created_at=None, import_run_id=3,
               source_row_number=9)
    row.update(over)
    return row


def test_headers_are_the_field_labels_then_the_record_columns() -> None:
    assert export_headers() == [*(f.label for f in FIELDS), "Customer ID", "Created (UTC)", "Import Run",
                                "Source Row"]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_formula_like_text_never_runs(fmt: str) -> None:
    out = io.BytesIO()
    assert write_customers([_one(first_name="=HYPERLINK(\"http://x\")", last_name="+1-2", company_name="@SUM(A1)")],
                           fmt, out) == 1
    rows = _csv_rows(out.getvalue()) if fmt == "csv" else _xlsx_rows(out.getvalue())
    values = dict(zip(rows[0], rows[1], strict=True))
    if fmt == "csv":  # defused with an apostrophe
        assert (values["First Name"], values["Last Name"], values["Company Name"]) == (
            "'=HYPERLINK(\"http://x\")", "'+1-2", "'@SUM(A1)")
    else:  # typed text: kept exactly, never a formula
        assert (values["First Name"], values["Last Name"]) == ("=HYPERLINK(\"http://x\")", "+1-2")
    assert values["Region"] == "Greater Accra"  # the name a file gives, not the stored code
    assert str(values["Customer ID"]) == "7" and str(values["Source Row"]) == "9"


def test_csv_for_other_systems_keeps_every_value_as_stored() -> None:
    """Issue 22: the phone `+233240000007` is written as it is stored for a program that reads the CSV as
    data, escaped (the default) for Excel; the XLSX holds it exactly as text either way."""
    from importer.output.customer_export import CSV_FOR_EXCEL, CSV_RAW

    customer = _one(first_name="=HYPERLINK(\"http://x\")")
    for fmt in ("csv", "zip"):
        out = io.BytesIO()
        write_customers([customer], fmt, out, csv_for=CSV_RAW)
        data = out.getvalue()
        if fmt == "zip":
            data = zipfile.ZipFile(io.BytesIO(data)).read("customers.csv")
        values = dict(zip(*_csv_rows(data), strict=True))
        assert (values["Phone"], values["First Name"]) == ("+233240000007", "=HYPERLINK(\"http://x\")")
    out = io.BytesIO()
    write_customers([customer], "csv", out)  # the default is for Excel
    default = out.getvalue()
    out = io.BytesIO()
    write_customers([customer], "csv", out, csv_for=CSV_FOR_EXCEL)
    assert out.getvalue() == default and dict(zip(*_csv_rows(default), strict=True))["Phone"] == "'+233240000007"
    out = io.BytesIO()
    write_customers([customer], "xlsx", out)
    assert dict(zip(*_xlsx_rows(out.getvalue()), strict=True))["Phone"] == "+233240000007"
    with pytest.raises(ValueError, match="other"):
        write_customers([customer], "csv", io.BytesIO(), csv_for="other")


def test_xlsx_cells_hold_what_xml_cannot() -> None:
    out = io.BytesIO()
    write_customers([_one(nickname="bell\x07 & <tag>", company_name=" spaced ")], "xlsx", out)
    values = dict(zip(*_xlsx_rows(out.getvalue()), strict=True))
    assert values["Nickname"] == "bell\ufffd & <tag>" and values["Company Name"] == " spaced "
    assert isinstance(values["Customer ID"], int)


def test_write_streams_as_it_reads() -> None:
    """The CSV is written while the customers are still being read: nothing waits for the whole set."""
    out = io.BytesIO()
    written_before_the_end: list[int] = []

    def customers():
        for i in range(5_000):
            if i == 4_999:
                written_before_the_end.append(out.tell())
            yield _one(id=i + 1, shipping_mark=f"PM{i}")

    assert write_customers(customers(), "csv", out) == 5_000
    assert written_before_the_end[0] > 4_000 * 40  # at least 4,000 rows out already


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="export format must be one of csv, xlsx, zip, not 'pdf'"):
        write_customers([], "pdf", io.BytesIO())


def test_zip_holds_the_csv() -> None:
    plain, zipped = io.BytesIO(), io.BytesIO()
    assert write_customers([_one(), _one(id=8, shipping_mark="PM8")], "csv", plain) == 2
    assert write_customers([_one(), _one(id=8, shipping_mark="PM8")], "zip", zipped) == 2
    with zipfile.ZipFile(io.BytesIO(zipped.getvalue())) as archive:
        assert archive.namelist() == ["customers.csv"]
        assert archive.read("customers.csv") == plain.getvalue()


def test_more_customers_than_a_sheet_holds_is_refused(monkeypatch) -> None:
    monkeypatch.setattr(export, "XLSX_MAX_CUSTOMERS", 3)
    assert write_customers([_one(id=i) for i in range(3)], "xlsx", io.BytesIO()) == 3
    with pytest.raises(ValueError, match="an Excel sheet holds at most 3 customers: export these as CSV"):
        write_customers([_one(id=i) for i in range(4)], "xlsx", io.BytesIO())


def test_download_formats_keep_a_download_small() -> None:
    assert download_formats(100_000) == ("csv", True)
    assert download_formats(100_001) == ("zip", True)
    assert download_formats(250_000) == ("zip", True)
    assert download_formats(250_001) == ("zip", False)
    assert download_formats(10_000, more=True) == ("zip", False)  # a count that stopped: could be any size


def test_file_names() -> None:
    assert export_file_name("csv") == "customers.csv"
    assert export_file_name("zip", region="VOLTA") == "customers-volta-csv.zip"
    assert export_file_name("xlsx", "Kofi  Mensah/../", "VOLTA", 3) == "customers-volta-run-3-kofi-mensah.xlsx"


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_export_follows_the_filters_and_streams_from_the_database(database_url: str, fmt: str) -> None:
    engine = ready_engine(database_url)
    _import(engine, [person(i, region="Volta" if i % 2 else "Ashanti") for i in range(30)], "a")
    second = _import(engine, [person(4, nickname="Four"), person(40, region="Volta")], "b", existing="update")
    out = io.BytesIO()
    assert export_customers(engine, fmt, out, region="VOLTA") == 16
    rows = _csv_rows(out.getvalue()) if fmt == "csv" else _xlsx_rows(out.getvalue())
    assert rows[0] == export_headers()
    assert [str(r[rows[0].index("Customer ID")]) for r in rows[1:]] == [
        str(c["id"]) for c in iter_customers(engine, region="VOLTA")]
    assert {r[rows[0].index("Region")] for r in rows[1:]} == {"Volta"}
    by_run = export_bytes(engine, fmt, run_id=second.run_id)
    rows = _csv_rows(by_run) if fmt == "csv" else _xlsx_rows(by_run)
    assert sorted(r[0] for r in rows[1:]) == ["PM4 KOFI", "PM40 KOFI"]
    four = next(r for r in rows[1:] if r[0] == "PM4 KOFI")
    assert four[rows[0].index("Nickname")] == "Four"
    assert str(four[rows[0].index("Import Run")]) == "1"  # created by the first run, updated by the second
    assert len(export_bytes(engine, fmt, "nobody-has-this")) > 0


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_an_export_uploads_again_as_unchanged_customers(database_url: str, fmt: str) -> None:
    """The labels map to the fields, the record columns are ignored, and nothing differs from what is stored."""
    engine = ready_engine(database_url)
    _import(engine, [person(i, region="Volta", company_name="Acme" if i % 2 else "") for i in range(12)], "a")
    upload = read_upload(export_bytes(engine, fmt), f"customers.{fmt}", SETTINGS)
    assert [f for f in upload.mapping.fields if f] == [f.name for f in FIELDS]
    assert upload.mapping.unknown_columns == EXTRA_HEADERS
    result = import_upload(engine, upload, SETTINGS)
    assert (result.total_attempted, result.total_unchanged, result.total_created, result.total_failed) == (12, 12, 0, 0)
