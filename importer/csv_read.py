"""CSV decoding, delimiter sniffing and streaming, for importer.read.

Line numbering: row i of the result is physical line i+1 of the file, the line a text editor shows.
A record whose quoted field spans several lines sits at the line where it starts; the lines it
continues onto appear as empty rows, so every later record keeps its true line number.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator

from importer.errors import LimitExceeded

CANDIDATES = (",", ";", "\t", "|")
SNIFF_LINES = 30
SNIFF_BYTES = 64 * 1024
# Blank rows share this object; callers treat rows as read-only.
EMPTY_ROW: list[str] = []
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def detect_encoding(data: bytes) -> str:
    """The text encoding: a BOM wins (UnicodeDecodeError if the text breaks it), then strict UTF-8, else cp1252."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            _validate(data, name)  # a BOM promises the encoding: UnicodeDecodeError if the text breaks it
            return name
    try:
        _validate(data, "utf-8")
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8"


def _validate(data: bytes, encoding: str) -> None:
    """Decode incrementally so validating a 50 MB upload never holds a second, decoded copy."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    view = memoryview(data)
    for pos in range(0, len(data), 1 << 20):
        decoder.decode(view[pos : pos + (1 << 20)])
    decoder.decode(b"", final=True)


def _text_stream(data: bytes, encoding: str) -> io.TextIOWrapper:
    """A lazily decoding text view of the bytes; newline="" keeps quoted line breaks for csv."""
    # cp1252 leaves five bytes undefined; replace them rather than refuse the whole file.
    errors = "replace" if encoding == "cp1252" else "strict"
    return io.TextIOWrapper(io.BytesIO(data), encoding=encoding, errors=errors, newline="")


def _count_outside_quotes(line: str, delimiter: str) -> int:
    """How often the delimiter occurs outside double-quoted text."""
    count, quoted = 0, False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif ch == delimiter and not quoted:
            count += 1
    return count


def sniff_delimiter(data: bytes, encoding: str) -> str:
    """The candidate that splits the first non-blank lines most consistently (ties: , ; tab |)."""
    text = _text_stream(data[:SNIFF_BYTES], encoding).read().replace("\x00", "")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(data) > SNIFF_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the sample may cut the last line short
    lines = lines[:SNIFF_LINES]
    best, best_score = ",", (0, 0)
    for delimiter in CANDIDATES:
        counts = [_count_outside_quotes(ln, delimiter) for ln in lines]
        nonzero = [c for c in counts if c]
        if not nonzero:
            continue
        mode = max(set(nonzero), key=lambda c: (nonzero.count(c), c))
        # Lines agreeing on one count (titles above a header won't) first, then more columns.
        score = (counts.count(mode), mode)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _lines(data: bytes, encoding: str) -> Iterator[str]:
    """Decoded physical lines, with NUL bytes (from stray UTF-16 or binary junk) removed."""
    for line in _text_stream(data, encoding):
        yield line.replace("\x00", "") if "\x00" in line else line


def csv_rows(data: bytes, encoding: str, delimiter: str, limit: int, what: str) -> list[list[str]]:
    """Rows indexed by line number - 1; LimitExceeded as soon as more than `limit` are non-blank."""
    # csv's default 131,072-character field limit refused a whole file for one long cell; the upload
    # size bounds a field anyway, and a too-long value then fails its own row (too_long).
    csv.field_size_limit(max(csv.field_size_limit(), len(data) + 1))
    reader = csv.reader(_lines(data, encoding), delimiter=delimiter, strict=False)
    rows: list[list[str]] = []
    counted = 0
    for record in reader:
        if not any(cell.strip() for cell in record):
            continue  # blank lines are filled in below, only when a non-blank row follows
        counted += 1
        if counted > limit:
            raise row_limit(what, limit)
        # line_num is the last physical line of this record; pad so the record sits at its first.
        first_line = reader.line_num - _span(record)
        pad_to(rows, first_line - 1)
        rows.append(record)
    return rows


def pad_to(rows: list[list[str]], length: int) -> None:
    """Fill with one shared empty row: a file of a million blank lines costs pointers, not lists."""
    if len(rows) < length:
        rows.extend([EMPTY_ROW] * (length - len(rows)))


def row_limit(what: str, limit: int) -> LimitExceeded:
    """The contract's message for MAX_ROWS."""
    return LimitExceeded(
        f"{what} has more than {limit:,} data rows (MAX_ROWS). Split it into smaller files or raise MAX_ROWS."
    )


def _span(record: list[str]) -> int:
    """Extra physical lines a record occupies because of line breaks inside quoted fields."""
    extra = 0
    for cell in record:
        if "\n" in cell or "\r" in cell:
            # \r\n is one line break; lone \r or \n are one each (universal newlines).
            extra += (
                cell.count("\r\n")
                + cell.replace("\r\n", "").count("\n")
                + cell.replace("\r\n", "").count("\r")
            )
    return extra
