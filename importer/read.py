"""Uploaded bytes -> a raw table of text cells: format sniffing, container checks, readers.

Every check that can refuse a file runs in open_file, before a parser touches it; rows() then reads
one sheet with python-calamine (openpyxl / xlrd as fallbacks) or the csv module.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import PurePath
from typing import Any

from importer.csv_read import EMPTY_ROW, csv_rows, detect_encoding, pad_to, row_limit, sniff_delimiter
from importer.errors import FileRefused, LimitExceeded, UnreadableFile, UnsupportedFile
from importer.ole_guard import OLE2_MAGIC, check_ole, is_encrypted_ole
from importer.settings import Settings
from importer.xlsx_guard import MB, PASSWORD_MESSAGE, ZipReport, bad_workbook, check_zip

ACCEPTED = (".xlsx", ".xlsm", ".xls", ".csv")
ZIP_MAGIC = b"PK\x03\x04"


@dataclass(frozen=True)
class SpreadsheetFile:
    """An uploaded file that passed every check; rows() reads one sheet as text."""

    file_name: str
    format: str  # "xlsx" (also .xlsm), "xls" or "csv": what the content is, whatever the extension
    sha256: str
    sheet_names: tuple[str, ...]
    _data: bytes = field(repr=False, compare=False, default=b"")
    _csv: tuple[str, str] = field(repr=False, compare=False, default=("utf-8", ","))
    _zip: ZipReport | None = field(repr=False, compare=False, default=None)
    _cache: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    def rows(self, sheet_name: str, limit: int) -> list[list[str]]:
        """Every cell as text; index i is Excel row (CSV line) i+1; LimitExceeded past `limit` non-blank rows."""
        if sheet_name not in self.sheet_names:
            raise UnreadableFile(
                f"{self.file_name} has no sheet named {sheet_name!r}; its sheets are: "
                + ", ".join(repr(s) for s in self.sheet_names)
            )
        what = f"The sheet {sheet_name!r} of {self.file_name}" if self.format != "csv" else self.file_name
        try:
            if self.format == "csv":
                encoding, delimiter = self._csv
                return csv_rows(self._data, encoding, delimiter, limit, what)
            return self._workbook_rows(sheet_name, limit, what)
        except FileRefused:
            raise
        except Exception as exc:  # noqa: BLE001 - no library exception may reach the user raw
            if self.format == "csv":  # not "a valid Excel file ... export it as CSV" for a CSV
                raise UnreadableFile(
                    f"{self.file_name} cannot be read as CSV text; open it in Excel and save it again as CSV UTF-8."
                ) from exc
            raise bad_workbook(self.file_name) from exc

    def _workbook_rows(self, sheet_name: str, limit: int, what: str) -> list[list[str]]:
        """Read a sheet with calamine; fall back to openpyxl (xlsx) or xlrd (xls) if it fails."""
        try:
            with _native_panics():
                rows = _calamine_rows(self._calamine(), sheet_name, limit, what)
        except FileRefused:
            raise
        except Exception:  # noqa: BLE001 - calamine could not read it; the fallback decides
            if self.format == "xlsx":
                rows = _openpyxl_rows(self._data, sheet_name, limit, what)
            else:
                rows = _xlrd_rows(self._data, sheet_name, limit, what)
        part = self._zip.sheet_parts.get(sheet_name) if self._zip else None
        # calamine turns error cells (#N/A, #DIV/0!) into blanks; put back what Excel shows.
        for (row, col), text in (self._zip.error_cells.get(part, {}) if self._zip and part else {}).items():
            if row <= len(rows):
                cells = rows[row - 1] = list(rows[row - 1])
                cells.extend([""] * (col + 1 - len(cells)))
                cells[col] = text
        return rows

    def _calamine(self) -> Any:
        """One parsed workbook per file, shared by every rows() call (choose_sheet reads several)."""
        if "calamine" not in self._cache:
            from python_calamine import CalamineWorkbook

            self._cache["calamine"] = CalamineWorkbook.from_filelike(io.BytesIO(self._data))
        return self._cache["calamine"]


def open_file(data: bytes, file_name: str, settings: Settings) -> SpreadsheetFile:
    """Check an upload (size, format, container) without parsing it, and wrap it for reading."""
    if len(data) > settings.max_upload_mb * MB:
        raise LimitExceeded(
            f"{file_name} is {len(data) / MB:,.1f} MB, over the {settings.max_upload_mb:,} MB upload limit "
            "(MAX_UPLOAD_MB). Split it into smaller files or raise MAX_UPLOAD_MB."
        )
    ext = PurePath(file_name).suffix.lower()
    if ext not in ACCEPTED:
        raise UnsupportedFile(
            f"{file_name} is not a supported file type ({ext or 'no extension'}); "
            "upload an Excel workbook (.xlsx, .xlsm, .xls) or a CSV file (.csv)."
        )
    if not data:
        raise UnreadableFile(f"{file_name} is empty (0 bytes); export the customer list again and upload it.")
    sha = hashlib.sha256(data).hexdigest()
    # The content decides the format: Excel users rename files, and .xls is often xlsx, HTML or CSV.
    if data.startswith(ZIP_MAGIC):
        report = check_zip(data, file_name, settings)
        names = _calamine_sheet_names(data, file_name, "xlsx")
        return SpreadsheetFile(file_name, "xlsx", sha, names, data, _zip=report)
    if data.startswith(OLE2_MAGIC):
        if is_encrypted_ole(data):
            raise UnreadableFile(PASSWORD_MESSAGE)
        check_ole(data, file_name)
        names = _calamine_sheet_names(data, file_name, "xls")
        return SpreadsheetFile(file_name, "xls", sha, names, data)
    if ext in (".xlsx", ".xlsm"):
        raise bad_workbook(file_name)
    head = data[:2048].lstrip().lower()
    if ext == ".xls" and head.startswith((b"<!doctype html", b"<html", b"<table", b"<?xml", b"<")):
        raise bad_workbook(file_name, "it is a web page or XML file saved with an .xls name")
    try:
        encoding = detect_encoding(data)
    except UnicodeDecodeError as exc:
        raise UnreadableFile(
            f"{file_name} starts with a {exc.encoding.upper()} byte-order mark but is not valid {exc.encoding.upper()} "
            "text (damaged or mixed encodings); save it again as CSV UTF-8 and upload it."
        ) from exc
    if ext == ".xls" and _looks_binary(data[:4096], encoding):
        raise bad_workbook(file_name)
    stem = PurePath(file_name).stem or "Sheet1"
    return SpreadsheetFile(
        file_name, "csv", sha, (stem,), data, _csv=(encoding, sniff_delimiter(data, encoding))
    )


def _looks_binary(head: bytes, encoding: str) -> bool:
    """Control characters in a supposedly text file mean it is something else."""
    if encoding.startswith(("utf-16", "utf-32")):
        return False
    return sum(b < 9 or 13 < b < 32 for b in head) > len(head) // 20


@contextlib.contextmanager
def _native_panics() -> Iterator[None]:
    """A Rust panic in calamine arrives as pyo3's PanicException, a BaseException that `except Exception`
    misses (a damaged .xls record made it escape as a traceback): turn it into an ordinary error."""
    try:
        yield
    except Exception:
        raise
    except BaseException as exc:
        if type(exc).__name__ == "PanicException":
            raise RuntimeError(f"calamine panicked: {exc}") from exc
        raise


def _calamine_sheet_names(data: bytes, file_name: str, fmt: str) -> tuple[str, ...]:
    """Sheet names, trying calamine then the fallback reader; any failure means a damaged file."""
    try:
        from python_calamine import CalamineWorkbook, PasswordError

        try:
            with _native_panics():
                return tuple(CalamineWorkbook.from_filelike(io.BytesIO(data)).sheet_names)
        except PasswordError as exc:
            raise UnreadableFile(PASSWORD_MESSAGE) from exc
        except Exception:  # noqa: BLE001 - fall through to the other reader
            pass
        if fmt == "xlsx":
            from openpyxl import load_workbook

            return tuple(load_workbook(io.BytesIO(data), read_only=True, data_only=True).sheetnames)
        import xlrd

        return tuple(xlrd.open_workbook(file_contents=data, on_demand=True, logfile=io.StringIO()).sheet_names())
    except FileRefused:
        raise
    except Exception as exc:  # noqa: BLE001 - any library error: the file is damaged
        if "encrypt" in str(exc).lower() or "password" in str(exc).lower():
            raise UnreadableFile(PASSWORD_MESSAGE) from exc
        raise bad_workbook(file_name) from exc


def cell_text(value: object) -> str:
    """A cell as the user typed it: 241234567.0 -> "241234567", dates ISO, booleans TRUE/FALSE."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        # repr gives the shortest round-tripping digits; Decimal writes them without an exponent.
        text = format(Decimal(repr(value)), "f")
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return "0" if text == "-0" else text
    if isinstance(value, dt.datetime):
        if value.microsecond >= 500_000:  # Excel stores times as fractions of a day: round the noise
            value += dt.timedelta(microseconds=1_000_000 - value.microsecond)
        value = value.replace(microsecond=0)
        if value.time() == dt.time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.replace(microsecond=0).isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    return str(value)


def _collect(rows_iter: Any, offset: int, col_offset: int, limit: int, what: str) -> list[list[str]]:
    """Convert rows to text, placing the first at index `offset`; stop past `limit` non-blank rows."""
    rows: list[list[str]] = []
    counted = 0
    for i, raw in enumerate(rows_iter):
        cells = [cell_text(v) for v in raw]
        while cells and cells[-1] == "":
            cells.pop()
        if not any(c.strip() for c in cells):
            continue  # blank rows are filled in only when a non-blank row follows
        counted += 1
        if counted > limit:
            raise row_limit(what, limit)
        pad_to(rows, offset + i)
        rows.append([""] * col_offset + cells if col_offset else cells)
    return rows


def _calamine_rows(book: Any, sheet_name: str, limit: int, what: str) -> list[list[str]]:
    """calamine's data may begin at its first used cell (sheet.start); pad so row numbers match Excel."""
    sheet = book.get_sheet_by_name(sheet_name)
    start, end = sheet.start, sheet.end
    if start is None or end is None:
        return []
    it = iter(sheet.iter_rows())
    first = next(it, None)
    if first is None:
        return []
    # python-calamine 0.9 yields rows from row 1 but columns from the first used one; older and
    # newer versions differ, so infer both offsets from what comes back instead of assuming.
    col_offset = start[1] if start[1] and len(first) == end[1] - start[1] + 1 else 0
    yielded = 0

    def counted() -> Any:
        nonlocal yielded
        for raw in itertools.chain([first], it):
            yielded += 1
            yield raw

    rows = _collect(counted(), 0, col_offset, limit, what)
    if start[0] and yielded == end[0] - start[0] + 1:
        rows[:0] = [EMPTY_ROW] * start[0]
    return rows


def _openpyxl_rows(data: bytes, sheet_name: str, limit: int, what: str) -> list[list[str]]:
    """The fallback for xlsx files calamine rejects; read-only streaming, cached formula values."""
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        ws = book[sheet_name]
        # A lying <dimension> (A1:XFD1048576) would make iter_rows pad a million empty rows.
        ws.reset_dimensions()
        rows: list[list[str]] = []
        counted = 0
        for row in ws.iter_rows():
            # EmptyCell padding has neither a row nor a column: keep only real cells.
            real = [c for c in row if getattr(c, "value", None) is not None]
            cells = {c.column - 1: c.value for c in real}
            if not cells or not any(cell_text(v).strip() for v in cells.values()):
                continue
            counted += 1
            if counted > limit:
                raise row_limit(what, limit)
            text = [""] * (max(cells) + 1)
            for col, value in cells.items():
                text[col] = cell_text(value)
            pad_to(rows, real[0].row - 1)
            rows.append(text)
        return rows
    finally:
        book.close()


def _xlrd_rows(data: bytes, sheet_name: str, limit: int, what: str) -> list[list[str]]:
    """The fallback for .xls files calamine rejects."""
    import xlrd

    book = xlrd.open_workbook(file_contents=data, on_demand=True, logfile=io.StringIO())
    sheet = book.sheet_by_name(sheet_name)

    def values() -> Any:
        for r in range(sheet.nrows):
            out = []
            for cell in sheet.row(r):
                if cell.ctype == xlrd.XL_CELL_DATE:
                    out.append(xlrd.xldate.xldate_as_datetime(cell.value, book.datemode))
                elif cell.ctype == xlrd.XL_CELL_ERROR:
                    out.append(xlrd.error_text_from_code.get(cell.value, "#ERROR"))
                elif cell.ctype == xlrd.XL_CELL_BOOLEAN:
                    out.append(bool(cell.value))
                else:
                    out.append(cell.value)
            yield out

    return _collect(values(), 0, 0, limit, what)


__all__ = ["EMPTY_ROW", "SpreadsheetFile", "cell_text", "open_file"]
