"""Customers out of the database as CSV, XLSX or zipped CSV, streamed: the Customers page's export of a
filtered set.

The customers come one at a time (importer.database.customers.iter_customers reads them through a server-side
cursor) and are written as they come, to a file: memory stays flat whether 100 or 1,000,000 customers
are exported (bench/bench_customers.py). The columns are the fields under their template labels first,
so an export uploads again as an import file (the other columns are not field headers, and the mapper
ignores them), then the customer's id, when it was created and by which run and source row.

Formula safety without corrupting values (issue 22): XLSX cells are typed text, which Excel never runs, so
they hold the value exactly (`+233240000021`). A CSV is "for Excel" by default (CSV_FOR_EXCEL: a cell a
spreadsheet would run as a formula gets a leading apostrophe, as in the failure report) or "for other
systems" (CSV_RAW: every value exactly as stored, for a program that reads the CSV as data). The XLSX is written
as SpreadsheetML straight into its zip part, with the report's own pieces.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from itertools import chain, islice
from typing import IO, Any

import sqlalchemy as sa

from importer.database.customers import iter_customers
from importer.output.failure_report import (
    _CT,
    _MAIN_NS,
    _PKG_REL_NS,
    _REL_NS,
    _RELS,
    _S_HEADER,
    _S_INFO,
    _S_INFO_HEADER,
    _SHEET_HEAD,
    _STYLES,
    _XML_DECL,
    _ZIP_LEVEL,
    WIDTH_SAMPLE_ROWS,
    _cols,
    _letters,
    _t,
    _width,
    safe_cell,
    xlsx_text,
)
from schemas.customer import FIELDS, REGIONS

# "zip": the CSV inside a zip (customers.csv), a fifth of its size. A download button holds its whole file
# in the server's memory while it is offered: 122 MB of CSV for 1,000,000 customers, 20 MB zipped.
EXPORT_FORMATS = ("csv", "xlsx", "zip")
SHEET = "Customers"
ZIPPED_CSV = "customers.csv"
# The CSV's two flavours: escaped for a spreadsheet (the default), or the values as stored.
CSV_FOR_EXCEL, CSV_RAW = "excel", "raw"
CSV_FLAVOURS = {CSV_FOR_EXCEL: "for Excel", CSV_RAW: "for other systems"}
EXTRA_HEADERS = ("Customer ID", "Created (UTC)", "Import Run", "Source Row")
# The content type a download is served with. An XLSX is a zip package and goes as application/zip:
# Streamlit's server gzips every download whose type is not known to be compressed, in memory, in one
# piece; with the XLSX type, clicking the export of 1,000,000 customers (71 MB) took the dashboard from
# 271 MB to 619 MB (bench/bench_customers.py --dashboard). The browser keeps the .xlsx file name.
MIME = {"csv": "text/csv", "zip": "application/zip", "xlsx": "application/zip"}
# A download in the dashboard: past ZIP_CSV_PAST customers the CSV goes zipped (1,000,000: 122 MB of CSV,
# 20 MB zipped), and Excel, already a zip, is offered up to XLSX_DOWNLOAD_LIMIT (a 1,000,000-customer sheet,
# 71 MB, took the server from 271 to 545 MB: bench/bench_customers.py --dashboard).
ZIP_CSV_PAST = 100_000
XLSX_DOWNLOAD_LIMIT = 250_000
# Excel's sheet holds 1,048,576 rows, the header included.
XLSX_MAX_CUSTOMERS = 1_048_575
_FLUSH_ROWS = 1_000
_CSV_ZIP_LEVEL = 6  # 6 rather than 1: 18% of the CSV instead of 22%, for a few seconds per million rows


def export_headers() -> list[str]:
    """The header row: each field's label, then Customer ID, Created (UTC), Import Run, Source Row."""
    return [*(f.label for f in FIELDS), *EXTRA_HEADERS]


def _when(value: Any) -> str:
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.isoformat(sep=" ", timespec="seconds")
    return "" if value is None else str(value)


def export_values(customer: Mapping[str, Any]) -> tuple[list[str], list[int | None]]:
    """One customer as (field texts, [id, import run, source row]); regions by name, as a file gives them."""
    texts = []
    for field in FIELDS:
        value = customer.get(field.name)
        if field.name == "region" and value:
            value = REGIONS.get(str(value), value)
        texts.append("" if value is None else str(value))
    texts.append(_when(customer.get("created_at")))
    numbers = [customer.get("id"), customer.get("import_run_id"), customer.get("source_row_number")]
    return texts, [None if n is None else int(n) for n in numbers]


# -- CSV ----------------------------------------------------------------------------------------------
def _write_csv(customers: Iterable[Mapping[str, Any]], out: IO[bytes], csv_for: str = CSV_FOR_EXCEL) -> int:
    """UTF-8 with a BOM (Excel then reads accents right); for Excel, formula-like text defused with a `'`,
    for other systems every value as stored."""
    if csv_for not in CSV_FLAVOURS:
        raise ValueError(f"the CSV is for one of {', '.join(CSV_FLAVOURS)}, not {csv_for!r}")
    escape = safe_cell if csv_for == CSV_FOR_EXCEL else str
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(export_headers())
    out.write(b"\xef\xbb\xbf")
    count = 0

    def flush() -> None:
        out.write(buffer.getvalue().encode("utf-8", errors="replace"))
        buffer.seek(0)
        buffer.truncate()

    for customer in customers:
        texts, (cid, run, row) = export_values(customer)
        created = texts.pop()
        writer.writerow([*(escape(t) for t in texts), cid, created, "" if run is None else run,
                         "" if row is None else row])
        count += 1
        if count % _FLUSH_ROWS == 0:
            flush()
    flush()
    return count


# -- XLSX ---------------------------------------------------------------------------------------------
def _cell(ref: str, text: str, style: int = 0) -> str:
    s = f' s="{style}"' if style else ""
    return f'<c r="{ref}"{s} t="inlineStr"><is>{_t(text)}</is></c>' if text else ""


def _number(ref: str, value: int | None) -> str:
    return "" if value is None else f'<c r="{ref}" s="{_S_INFO}"><v>{value}</v></c>'


def _sheet(part: IO[bytes], customers: Iterable[Mapping[str, Any]]) -> int:
    """Stream the Customers sheet: header frozen, fields as text, the last four columns grey (information)."""
    headers = export_headers()
    letters = _letters(len(headers))
    fields = len(FIELDS)
    rows: Iterator[Mapping[str, Any]] = iter(customers)
    sample = list(islice(rows, WIDTH_SAMPLE_ROWS))
    widths = [_width(h) + 1 for h in headers]
    for customer in sample:
        texts, numbers = export_values(customer)
        cells = [*texts[:fields], str(numbers[0]), texts[fields], *(str(n or "") for n in numbers[1:])]
        widths = [max(w, _width(t)) for w, t in zip(widths, cells, strict=True)]
    part.write((
        _XML_DECL + _SHEET_HEAD
        + '<sheetViews><sheetView tabSelected="1" workbookViewId="0">'
        '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
        '<selection pane="bottomLeft" activeCell="A2" sqref="A2"/></sheetView></sheetViews>'
        '<sheetFormatPr defaultRowHeight="15"/>' + _cols(widths) + "<sheetData>"
        + '<row r="1">'
        + "".join(_cell(f"{letter}1", h, _S_HEADER if i < fields else _S_INFO_HEADER)
                  for i, (letter, h) in enumerate(zip(letters, headers, strict=True)))
        + "</row>"
    ).encode())
    id_col, created_col, run_col, row_col = letters[fields:fields + 4]
    count = 0
    pending: list[str] = []
    for customer in chain(sample, rows):
        if count == XLSX_MAX_CUSTOMERS:
            raise ValueError(f"an Excel sheet holds at most {XLSX_MAX_CUSTOMERS:,} customers: export these as "
                             "CSV, or narrow the filters")
        r = count + 2
        texts, (cid, run, source_row) = export_values(customer)
        pending.append(
            f'<row r="{r}">'
            + "".join(_cell(f"{letters[i]}{r}", xlsx_text(texts[i])) for i in range(fields))
            + _number(f"{id_col}{r}", cid) + _cell(f"{created_col}{r}", texts[fields], _S_INFO)
            + _number(f"{run_col}{r}", run) + _number(f"{row_col}{r}", source_row)
            + "</row>")
        count += 1
        if count == len(sample):
            sample.clear()
        if len(pending) >= 500:
            part.write("".join(pending).encode())
            pending.clear()
    part.write("".join(pending).encode())
    part.write(b"</sheetData></worksheet>")
    return count


def _write_xlsx(customers: Iterable[Mapping[str, Any]], out: IO[bytes]) -> int:
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=_ZIP_LEVEL) as archive:
        archive.writestr("_rels/.rels", _XML_DECL + f'<Relationships xmlns="{_PKG_REL_NS}">'
                         f'<Relationship Id="rId1" Type="{_RELS}officeDocument" Target="xl/workbook.xml"/>'
                         "</Relationships>")
        archive.writestr("xl/workbook.xml", _XML_DECL + f'<workbook xmlns="{_MAIN_NS}" xmlns:r="{_REL_NS}">'
                         f'<sheets><sheet name="{SHEET}" sheetId="1" r:id="rId1"/></sheets></workbook>')
        archive.writestr("xl/_rels/workbook.xml.rels", _XML_DECL + f'<Relationships xmlns="{_PKG_REL_NS}">'
                         f'<Relationship Id="rId1" Type="{_RELS}worksheet" Target="worksheets/sheet1.xml"/>'
                         f'<Relationship Id="rId2" Type="{_RELS}styles" Target="styles.xml"/></Relationships>')
        archive.writestr("xl/styles.xml", _STYLES)
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as part:
            count = _sheet(part, customers)
        archive.writestr("[Content_Types].xml", _XML_DECL
                         + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                         '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
                         'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
                         f'<Override PartName="/xl/workbook.xml" ContentType="{_CT}spreadsheetml.sheet.main+xml"/>'
                         f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{_CT}spreadsheetml.'
                         'worksheet+xml"/>'
                         f'<Override PartName="/xl/styles.xml" ContentType="{_CT}spreadsheetml.styles+xml"/>'
                         "</Types>")
    return count


# -- the API ------------------------------------------------------------------------------------------
def write_customers(customers: Iterable[Mapping[str, Any]], fmt: str, out: IO[bytes], *,
                    csv_for: str = CSV_FOR_EXCEL) -> int:
    """Stream customers (dicts of importer.database.customers.CUSTOMER_COLUMNS) in `fmt` ("csv", "xlsx", or "zip":
    the CSV as customers.csv in a zip) to the binary file `out`, left open; the number written. `csv_for`:
    CSV_FOR_EXCEL (formula-like cells escaped) or CSV_RAW (values as stored); the XLSX needs neither.

    More than XLSX_MAX_CUSTOMERS customers as "xlsx" is a ValueError (Excel could not open the sheet)."""
    if fmt == "csv":
        return _write_csv(customers, out, csv_for)
    if fmt == "xlsx":
        return _write_xlsx(customers, out)
    if fmt == "zip":
        with (zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=_CSV_ZIP_LEVEL) as archive,
              archive.open(ZIPPED_CSV, "w", force_zip64=True) as part):
            return _write_csv(customers, part, csv_for)
    raise ValueError(f"export format must be one of {', '.join(EXPORT_FORMATS)}, not {fmt!r}")


def export_customers(engine: sa.Engine, fmt: str, out: IO[bytes], text: str | None = None, *,
                     region: str | None = None, run_id: int | None = None, csv_for: str = CSV_FOR_EXCEL) -> int:
    """Every customer the Customers page's filters select (importer.database.customers.search_customers's text,
    region and run), by id, written to `out` as it is read; the number written."""
    return write_customers(iter_customers(engine, text, region=region, run_id=run_id), fmt, out, csv_for=csv_for)


def export_bytes(engine: sa.Engine, fmt: str, text: str | None = None, *, region: str | None = None,
                 run_id: int | None = None, csv_for: str = CSV_FOR_EXCEL) -> bytes:
    """The export as bytes, for a download button: built in a temporary file, then read once (a download
    button holds its bytes anyway; nothing else is held while the file is written)."""
    with tempfile.TemporaryFile() as buffer:
        export_customers(engine, fmt, buffer, text, region=region, run_id=run_id, csv_for=csv_for)
        buffer.seek(0)
        return buffer.read()


def download_formats(customers: int, more: bool = False) -> tuple[str, bool]:
    """For a download button, which holds its whole file in the server's memory while it is offered (and
    about three times its size at the peak of sending it): the CSV's format ("zip" past ZIP_CSV_PAST
    customers, else "csv") and whether Excel is offered (up to XLSX_DOWNLOAD_LIMIT). `more`: the count
    stopped at `customers`, and there are more."""
    zipped = more or customers > ZIP_CSV_PAST
    return ("zip" if zipped else "csv"), not (more or customers > XLSX_DOWNLOAD_LIMIT)


def export_file_name(fmt: str, text: str | None = None, region: str | None = None,
                     run_id: int | None = None) -> str:
    """`customers.csv`, or with filters `customers-volta-run-3-kofi.xlsx` (letters, digits and '-' only);
    the zipped CSV is `customers-csv.zip`."""
    parts = ["customers"]
    for piece in (region, f"run-{run_id}" if run_id is not None else None, text):
        if piece:
            slug = "".join(ch if ch.isascii() and ch.isalnum() else "-" for ch in str(piece).lower())
            if slug:
                parts.append("-".join(filter(None, slug.split("-")))[:40])
    return "-".join(parts) + ("-csv.zip" if fmt == "zip" else f".{fmt}")


__all__ = ["EXPORT_FORMATS", "EXTRA_HEADERS", "MIME", "XLSX_DOWNLOAD_LIMIT", "XLSX_MAX_CUSTOMERS", "ZIPPED_CSV",
           "ZIP_CSV_PAST", "download_formats", "export_bytes", "export_customers", "export_file_name",
           "export_headers", "export_values", "write_customers"]
