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
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path, PurePath
from typing import Any

from importer.errors import FileRefused, LimitExceeded, UnreadableFile, UnsupportedFile
from importer.intake.delimited import (
    EMPTY_ROW,
    SheetRows,
    csv_rows,
    detect_encoding,
    row_limit,
    sniff_delimiter,
)
from importer.intake.ole_guard import OLE2_MAGIC, check_ole, is_encrypted_ole
from importer.intake.read_limits import (
    check_read_cost,
    check_text_cost,
    declared_read_cost,
    entries_within,
    text_size,
)
from importer.intake.zip_guard import MB, PASSWORD_MESSAGE, ZipReport, bad_workbook, check_zip
from importer.server import governor
from importer.settings import Settings

ACCEPTED = (".xlsx", ".xlsm", ".xls", ".csv")
ZIP_MAGIC = b"PK\x03\x04"


def estimated_read_mb(data: bytes, file_name: str, settings: Settings) -> float:
    """MB reading a file not yet parsed will need at its peak, for the memory governor's queue: a workbook's
    from the sizes its zip declares, an .xls's from its records measured (ole_guard: cells, text, the
    shared-strings table), a CSV's from its bytes and fields; a file none of these fits, from the rows its
    size suggests. Reading refuses by itself a file whose measured cost cannot fit the budget."""
    if data.startswith(ZIP_MAGIC):
        declared = declared_read_cost(data)
        if declared is not None:
            return governor.mb(declared)
    elif data.startswith(OLE2_MAGIC):
        try:
            biff = None if is_encrypted_ole(data) else check_ole(data, file_name, settings.max_cells,
                                                                  entries_within(settings))
        except FileRefused:  # reading refuses it with this message, before parsing anything
            biff = None
        if biff is not None:
            size = biff.read_size()
            return governor.mb(governor.cost_to_read(cells=size.cells, sheet_bytes=size.sheet_bytes,
                                                     shared_strings=size.shared_strings,
                                                     shared_string_bytes=size.shared_string_bytes))
    elif file_name.lower().endswith(".csv"):
        cells, _ = text_size(data, ",")
        return governor.mb(governor.cost_to_read_text(cells=cells, size_bytes=len(data)))
    return governor.cost_for_rows(governor.estimate_rows(len(data), file_name, settings.max_rows))


@dataclass(frozen=True)
class SpreadsheetFile:
    """An uploaded file that passed every check; rows() reads one sheet as text."""

    file_name: str
    format: str  # "xlsx" (also .xlsm), "xls" or "csv": what the content is, whatever the extension
    sha256: str
    sheet_names: tuple[str, ...]
    _data: bytes = field(repr=False, compare=False, default=b"")
    _csv: tuple[str, str] = field(repr=False, compare=False, default=("utf-8", ","))
    _csv_limits: tuple[int, int] = field(repr=False, compare=False, default=(1024, 1_000))  # KB, columns
    _zip: ZipReport | None = field(repr=False, compare=False, default=None)
    _cache: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    def rows(
        self, sheet_name: str, limit: int, *, columns: Sequence[int] | None = None, head: int | None = None
    ) -> SheetRows:
        """Every cell as text; index i is Excel row (CSV line) i+1; LimitExceeded past `limit` non-blank rows.

        columns: keep only these columns of each row (SheetRows.columns), so unused ones cost nothing.
        head: read only rows 1..head, and on until the first non-blank row (enough to find a header);
        `limit` still applies, but a long sheet is not refused for its length by a head read.
        """
        if sheet_name not in self.sheet_names:
            raise UnreadableFile(
                f"{self.file_name} has no sheet named {sheet_name!r}; its sheets are: "
                + ", ".join(repr(s) for s in self.sheet_names)
            )
        what = f"The sheet {sheet_name!r} of {self.file_name}" if self.format != "csv" else self.file_name
        try:
            if self.format == "csv":
                encoding, delimiter = self._csv
                return csv_rows(self._data, encoding, delimiter, limit, what, max_line_kb=self._csv_limits[0],
                                max_columns=self._csv_limits[1], columns=columns, head=head)
            return self._workbook_rows(sheet_name, limit, what, SheetRows(columns), head)
        except FileRefused:
            raise
        except Exception as exc:  # noqa: BLE001 - no library exception may reach the user raw
            if self.format == "csv":  # not "a valid Excel file ... export it as CSV" for a CSV
                raise UnreadableFile(
                    f"{self.file_name} cannot be read as CSV text; open it in Excel and save it again as CSV UTF-8."
                ) from exc
            raise bad_workbook(self.file_name) from exc

    def _workbook_rows(self, sheet_name: str, limit: int, what: str, empty: SheetRows, head: int | None) -> SheetRows:
        """Read a sheet with calamine; fall back to openpyxl (xlsx) or xlrd (xls) if it fails."""
        rows = SheetRows(empty.columns)
        try:
            with _native_panics():
                _calamine_rows(self._calamine_sheet(sheet_name, keep=head is not None), rows, limit, what, head)
        except FileRefused:
            raise
        except Exception:  # noqa: BLE001 - calamine could not read it; the fallback decides
            rows = SheetRows(empty.columns)
            if self.format == "xlsx":
                _openpyxl_rows(self._data, sheet_name, rows, limit, what, head)
            else:
                _xlrd_rows(self._data, sheet_name, rows, limit, what, head)
        part = self._zip.sheet_parts.get(sheet_name) if self._zip else None
        rows.hidden_columns = self.hidden_columns(sheet_name)
        # calamine turns error cells (#N/A, #DIV/0!) into blanks; put back what Excel shows.
        for (row, col), text in (self._zip.error_cells.get(part, {}) if self._zip and part else {}).items():
            rows.set_cell(row - 1, col, text)
        # A number shows otherwise than its digits (a `0000` format: 0042; 22 digits a float cannot hold): the
        # text as the user sees it (zip_guard.ZipReport.display_cells).
        for (row, col), text in (self._zip.display_cells.get(part, {}) if self._zip and part else {}).items():
            rows.set_cell(row - 1, col, text)
        return rows

    def hidden_columns(self, sheet_name: str) -> frozenset[int]:
        """The sheet's hidden columns (0-based; xlsx only: a CSV has none, and .xls is not looked into)."""
        part = self._zip.sheet_parts.get(sheet_name) if self._zip else None
        return self._zip.hidden_columns.get(part, frozenset()) if self._zip and part else frozenset()

    def _calamine(self) -> Any:
        """One parsed workbook per file, shared by every rows() call (choose_sheet reads several)."""
        if "calamine" not in self._cache:
            from python_calamine import CalamineWorkbook

            self._cache["calamine"] = CalamineWorkbook.from_filelike(io.BytesIO(self._data))
        return self._cache["calamine"]

    def _calamine_sheet(self, sheet_name: str, keep: bool) -> Any:
        """calamine's parsed sheet. A head read keeps the last one, so the full read of the sheet chosen
        after it does not parse it again; any other read takes it out of the cache (its cells are big)."""
        cached = self._cache.pop("sheet", None)
        sheet = cached[1] if cached and cached[0] == sheet_name else self._calamine().get_sheet_by_name(sheet_name)
        if keep:
            self._cache["sheet"] = (sheet_name, sheet)
        return sheet


def read_path(path: str | Path, settings: Settings) -> bytes:
    """The bytes of an upload on disk, refused (LimitExceeded) past MAX_UPLOAD_MB before it is read whole.

    The size is checked with stat first, and at most MAX_UPLOAD_MB + 1 bytes are ever read, so
    /dev/zero or a 1 GB sparse file costs no more than the limit. A missing, unreadable or
    directory path is a FileRefused with one line.
    """
    path = Path(path)
    limit = settings.max_upload_mb * MB
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > limit:
                raise _upload_limit(path.name, f"{size / MB:,.1f} MB", settings, size)
            data = handle.read(limit + 1)
    except FileNotFoundError:
        raise FileRefused(f"{path}: no such file") from None
    except IsADirectoryError:
        raise FileRefused(f"{path} is a folder, not a file; give the path of the spreadsheet") from None
    except PermissionError:
        raise FileRefused(f"{path}: permission denied") from None
    except OSError as exc:
        raise FileRefused(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if len(data) > limit:
        raise _upload_limit(path.name, None, settings)
    return data


def _upload_limit(file_name: str, size: str | None, settings: Settings, found: int | None = None) -> LimitExceeded:
    """The contract's message for MAX_UPLOAD_MB (size None: read up to the limit, with more to come)."""
    return LimitExceeded(
        f"{file_name} is {size + ', over' if size else 'over'} the {settings.max_upload_mb:,} MB upload limit "
        "(MAX_UPLOAD_MB). Split it into smaller files or raise MAX_UPLOAD_MB.",
        setting="MAX_UPLOAD_MB", limit=settings.max_upload_mb, found=found,
    )


def open_file(data: bytes, file_name: str, settings: Settings) -> SpreadsheetFile:
    """Check an upload (size, format, container) without parsing it, and wrap it for reading."""
    if len(data) > settings.max_upload_mb * MB:
        raise LimitExceeded(
            f"{file_name} is {len(data) / MB:,.1f} MB, over the {settings.max_upload_mb:,} MB upload limit "
            "(MAX_UPLOAD_MB). Split it into smaller files or raise MAX_UPLOAD_MB.",
            setting="MAX_UPLOAD_MB", limit=settings.max_upload_mb, found=len(data),
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
        biff = check_ole(data, file_name, settings.max_cells, entries_within(settings))
        if biff is not None:  # a read that cannot fit the budget is refused before calamine parses it
            check_read_cost(biff.read_size(), file_name, settings, so_far=not biff.complete)
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
    delimiter = sniff_delimiter(data, encoding)
    check_text_cost(data, encoding, delimiter, file_name, settings)
    stem = PurePath(file_name).stem or "Sheet1"
    return SpreadsheetFile(
        file_name, "csv", sha, (stem,), data, _csv=(encoding, delimiter),
        _csv_limits=(settings.max_csv_line_kb, settings.max_columns),
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


_EXACT = 2.0**53  # every whole number below it is a float of its own


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
        if value.is_integer() and -_EXACT < value < _EXACT:  # a whole number (a phone typed as one): its digits,
            return str(int(value))  # as below (repr gives every digit of a float this small, and no exponent)
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


def _collect(rows_iter: Any, rows: SheetRows, col_offset: int, limit: int, what: str, head: int | None) -> None:
    """Convert rows to text into `rows` (the first at index 0); stop past `limit` non-blank rows.

    head: stop at row `head` once a non-blank row has been read (the caller may drain the rest).
    """
    counted = 0
    for i, raw in enumerate(rows_iter):
        # Blank (as cell_text would write it) rows are filled in only when a non-blank row follows.
        if not any((v.strip() if isinstance(v, str) else v is not None) for v in raw):
            continue
        if head is not None and i >= head and counted:
            return
        counted += 1
        if counted > limit:
            raise row_limit(what, limit)
        # Only the kept columns become text (cell_text), and trailing blanks are dropped.
        rows.put(i, [""] * col_offset + list(raw) if col_offset else raw, cell_text)


def _calamine_rows(sheet: Any, rows: SheetRows, limit: int, what: str, head: int | None) -> None:
    """calamine's data may begin at its first used cell (sheet.start); pad so row numbers match Excel."""
    start, end = sheet.start, sheet.end
    if start is None or end is None:
        return
    it = iter(sheet.iter_rows())
    first = next(it, None)
    if first is None:
        return
    # python-calamine 0.9 yields rows from row 1 but columns from the first used one; older and
    # newer versions differ, so infer both offsets from what comes back instead of assuming.
    col_offset = start[1] if start[1] and len(first) == end[1] - start[1] + 1 else 0
    yielded = 0

    def counted() -> Any:
        nonlocal yielded
        for raw in itertools.chain([first], it):
            yielded += 1
            yield raw

    source = counted()
    _collect(source, rows, col_offset, limit, what, head)
    for _ in source:  # a head read stopped early: count the rest to learn where the rows started
        pass
    if start[0] and yielded == end[0] - start[0] + 1:
        rows.shift(start[0])


def _openpyxl_rows(data: bytes, sheet_name: str, rows: SheetRows, limit: int, what: str, head: int | None) -> None:
    """The fallback for xlsx files calamine rejects; read-only streaming, cached formula values."""
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        ws = book[sheet_name]
        # A lying <dimension> (A1:XFD1048576) would make iter_rows pad a million empty rows.
        ws.reset_dimensions()
        counted = 0
        for row in ws.iter_rows():
            # EmptyCell padding has neither a row nor a column: keep only real cells.
            real = [c for c in row if getattr(c, "value", None) is not None]
            cells = {c.column - 1: c.value for c in real}
            if not cells or not any(cell_text(v).strip() for v in cells.values()):
                continue
            if head is not None and real[0].row - 1 >= head and counted:
                return
            counted += 1
            if counted > limit:
                raise row_limit(what, limit)
            text = [""] * (max(cells) + 1)
            for col, value in cells.items():
                text[col] = cell_text(value)
            rows.put(real[0].row - 1, text)
    finally:
        book.close()


def _xlrd_rows(data: bytes, sheet_name: str, rows: SheetRows, limit: int, what: str, head: int | None) -> None:
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

    _collect(values(), rows, 0, limit, what, head)


__all__ = ["EMPTY_ROW", "SheetRows", "SpreadsheetFile", "cell_text", "open_file", "read_path"]
