"""CSV decoding, delimiter sniffing and streaming, for importer.intake.readers.

Line numbering: row i of the result is physical line i+1 of the file, the line a text editor shows.
A record whose quoted field spans several lines sits at the line where it starts; the lines it
continues onto appear as empty rows, so every later record keeps its true line number.
"""

from __future__ import annotations

import codecs
import csv
import functools
import io
import operator
import re
from array import array
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from importer.errors import LimitExceeded, UnreadableFile

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


# A row is kept aside as a possible footer or note (importer.mapping.columns decides) when it has at most this
# many non-blank cells, or when its first non-blank cell starts like one of these.
NOTE_MAX_CELLS = 2
NOTE_START = re.compile(
    r"\s*(?:(?:grand|sub)[\s-]*total|totals?\b|(?:prepared|checked|approved|verified|authori[sz]ed|reviewed|"
    r"compiled|signed|printed|generated|entered|submitted)\s+(?:by|on)\b|signature\b|sign\s*:|end\s+of\b|"
    r"page\s+\d|(?:no\.?|number)\s+of\s+customers|notes?\s*:|n\.?\s?b\.?\s*:|remarks?\s*:|[-=_*~.#+|\s]+$)",
    re.IGNORECASE,
)
# Columns left out of a read whose values are counted, over the first PROFILE_ROWS rows (at most
# PROFILE_DISTINCT distinct values each): enough to say what an ignored column holds ("Location: towns").
PROFILE_ROWS = 2_000
PROFILE_COLUMNS = 50
PROFILE_DISTINCT = 500
# Repeated texts of a kept column (first names, regions, cities, companies) are kept as one string object each:
# a read of 100,000 rows holds each cell as a Python string (about 60 bytes) until the frame is built. A column
# is shared while the first SHARE_PROBE_ROWS rows hold at most half as many distinct texts as rows, and until
# it has SHARE_MAX_DISTINCT distinct texts, counted every SHARE_PROBE_ROWS rows (a column of unique e-mails is
# never looked up after the probe).
SHARE_PROBE_ROWS = 512
SHARE_MAX_DISTINCT = 50_000


_NUMBER = re.compile(r"[+-]?[\d,.\s]*\d[\d,.\s]*")
_SEPARATORS = re.compile(r"[-=_*~.#+|\s]+")
_PHONE_LIKE = re.compile(r"\+?[\d\s\-().]{7,25}")


@dataclass(frozen=True)
class SkippedRow:
    """A row read but not taken as a customer: its Excel row (CSV line), its cells' text, and why."""

    row: int
    text: str
    reason: str


def _looks_like_phone(text: str) -> bool:
    digits = sum(ch.isdigit() for ch in text)
    return bool(_PHONE_LIKE.fullmatch(text)) and 7 <= digits <= 15


def note_reason(
    cells: Sequence[tuple[int, str]], phone_column: int | None, name_columns: Sequence[int], field_columns: Sequence[int]
) -> str | None:
    """Why a row with these non-blank (sheet column, text) cells is a footer or a note, or None: a customer.

    A row with a phone-like value in the phone column and any name (or mark, company) is a customer
    whatever else it says ("Total Petroleum Ltd"). Otherwise it is skipped when it is only separators
    ("-----"), starts with a footer or note word ("TOTAL", "TOTAL CUSTOMERS: 1,300", "Prepared by",
    "Checked by", "NB:"), holds only numbers (a count, a sum, a lone S/No), or holds at most two cells of
    which none feeds a field (a note beside the table).
    """
    if not cells:
        return None
    texts = {column: text for column, text in cells}
    phone = texts.get(phone_column, "") if phone_column is not None else ""
    if _looks_like_phone(phone) and any(texts.get(c) for c in name_columns):
        return None
    if all(_SEPARATORS.fullmatch(t) for t in texts.values()):
        return "only separators"
    start = NOTE_START.match(cells[0][1])
    if start and not _SEPARATORS.fullmatch(cells[0][1]):
        return f"a footer or note (starts with {' '.join(start.group(0).split())!r})"
    if all(_NUMBER.fullmatch(t) for t in texts.values()) and not (phone_column in texts and _looks_like_phone(phone)):
        return "only a number" if len(texts) == 1 else "only numbers"
    if len(texts) <= NOTE_MAX_CELLS and not set(texts) & set(field_columns):
        return "a note outside the customer columns"
    return None


def _blank(value: object) -> bool:
    return value is None or (value.strip() == "" if isinstance(value, str) else False)


def _data_start(cells: list[Any]) -> bool:
    """Whether a row of more than NOTE_MAX_CELLS cells starts as data: its first non-blank cell is no text, or
    text that does not start a footer or note (NOTE_START)."""
    first = cells[0] if cells and not _blank(cells[0]) else next((v for v in cells if not _blank(v)), None)
    return not isinstance(first, str) or not NOTE_START.match(first)


def _picker(columns: Sequence[int]) -> Callable[[list[Any]], Sequence[Any]]:
    """cells -> the cells of `columns`, in that order (operator.itemgetter, which gives a lone cell bare)."""
    if not columns:
        return lambda cells: ()
    if len(columns) == 1:
        only = columns[0]
        return lambda cells: (cells[only],)
    return operator.itemgetter(*columns)


class SheetRows(list[list[str]]):
    """A sheet's rows as text cells: row i is Excel row (CSV line) i + 1; blank rows may be EMPTY_ROW.

    With `columns` set, each row holds only those columns of the sheet, in that order (the columns a
    mapping reads), so a file's 240 unused columns never become strings that are kept. `filled` holds
    the rows that are blank in the kept columns but not in the others: they still count as data rows.
    `width` is the widest row read with `columns` set, in the sheet's own columns. `reread(columns)` reads the same sheet
    again keeping other columns (set by whoever knows the file: importer.mapping.columns.choose_sheet).

    `notes` holds, for rows that may be a footer or a note (few cells, or a first cell like "TOTAL",
    "Prepared by", "-----"), every non-blank cell as (sheet column, text): importer.mapping.columns decides which
    are skipped. `profile` counts the values of the columns left out (first PROFILE_ROWS rows), and
    `hidden_columns` (set by the reader) are the sheet's hidden columns.
    """

    def __init__(self, columns: Sequence[int] | None = None) -> None:
        super().__init__()
        self.columns: tuple[int, ...] | None = None if columns is None else tuple(columns)
        self.filled: set[int] = set()
        self.width = 0
        self.reread: Callable[[tuple[int, ...]], SheetRows] | None = None
        self.notes: dict[int, tuple[tuple[int, str], ...]] = {}
        self.profile: dict[int, Counter[str]] = {}
        self.hidden_columns: frozenset[int] = frozenset()
        self.sheet_notes: object = None  # importer.mapping.columns.SheetNotes, left by apply_mapping
        # CSV only: the number of fields of each line's record (index = line - 1; 0 for a blank line or a line
        # a quoted value continues onto), so a record broken over two lines can be recognised (split_records).
        self.field_counts: array[int] | None = None
        self._profiled = 0
        self._position = None if columns is None else {c: j for j, c in enumerate(self.columns or ())}
        # put's picking of `columns`: a row shorter than _reach cells is padded with "" first.
        self._reach = max(self.columns, default=-1) + 1 if self.columns is not None else 0
        self._pick: Callable[[list[Any]], Sequence[Any]] = _picker(self.columns or ())
        self._kept_set = frozenset(self.columns or ())
        # (kept position, the texts seen there so far, each kept once) for each column shared (SHARE_PROBE_ROWS).
        self._shared: list[tuple[int, dict[str, str]]] = [(j, {}) for j in range(len(self.columns or ()))]
        self._share_rows = 0

    def put(self, index: int, cells: list[Any], text: Callable[[Any], str] | None = None) -> None:
        """Store a non-blank row at `index` (padding the rows above), keeping only `columns`. `text` makes a
        cell text (importer.intake.readers.cell_text): a cell that is a str already is kept as it is."""
        if len(self) < index:
            pad_to(self, index)
        size = len(cells)
        if size > self.width:
            self.width = size
        # The note check, cheap for a row of more than NOTE_MAX_CELLS cells: two counts and its first cell.
        if size - cells.count("") - cells.count(None) <= NOTE_MAX_CELLS or not _data_start(cells):
            self._note(index, cells, text)
        columns = self.columns
        if columns is None:
            kept = [text(v) for v in cells] if text else cells
        else:
            if self._profiled < PROFILE_ROWS:
                self._profile(cells, text)
            if size < self._reach:
                cells = [*cells, *[""] * (self._reach - size)]
            picked = self._pick(cells)
            # A cell that is text already is its own text (cell_text's answer, without the call).
            kept = [v if v.__class__ is str else text(v) for v in picked] if text else list(picked)
            try:
                blank = not "".join(kept).strip()
            except TypeError:  # a reader's own cells that are not text (none today)
                blank = not any(str(c).strip() for c in kept)
            if blank:
                self.filled.add(index)
            elif self._shared:
                self._share(kept)
        if text is not None or columns is not None:  # a CSV record otherwise stays as it was
            while kept and kept[-1] == "":
                kept.pop()
        self.append(kept)

    def _share(self, kept: list[Any]) -> None:
        """Replace each text of a repetitive column by the same text seen before (one object for each)."""
        size = len(kept)
        for position, seen in self._shared:
            if position < size:
                value = kept[position]
                kept[position] = seen.setdefault(value, value)
        self._share_rows += 1
        if not self._share_rows % SHARE_PROBE_ROWS:
            limit = SHARE_PROBE_ROWS // 2 if self._share_rows == SHARE_PROBE_ROWS else SHARE_MAX_DISTINCT
            self._shared = [(position, seen) for position, seen in self._shared if len(seen) <= limit]

    def _note(self, index: int, cells: list[Any], text: Callable[[Any], str] | None) -> None:
        """Keep the cells of a row that may be a footer or a note (put calls it for those rows only)."""
        to_text = text or str
        kept = tuple((c, to_text(v).strip()) for c, v in enumerate(cells) if not _blank(v))
        self.notes[index] = tuple((c, t) for c, t in kept if t)

    def _profile(self, cells: list[Any], text: Callable[[Any], str] | None) -> None:
        """Count the values of the columns this read leaves out (bounded: see PROFILE_*)."""
        self._profiled += 1
        kept = self._kept_set
        to_text = text or str
        for column in range(min(len(cells), PROFILE_COLUMNS + len(kept))):
            value = cells[column]
            if column in kept or _blank(value):
                continue
            counts = self.profile.setdefault(column, Counter())
            label = to_text(value).strip()
            if label in counts or len(counts) < PROFILE_DISTINCT:
                counts[label] += 1

    def set_cell(self, index: int, column: int, value: str) -> None:
        """Overwrite one cell of a row already read (column: the sheet's own column index)."""
        if index >= len(self):
            return
        if self._position is not None:
            if column not in self._position:
                if value.strip() and not any(str(c).strip() for c in self[index]):
                    self.filled.add(index)
                return
            column = self._position[column]
        cells = self[index] = list(self[index])
        cells.extend([""] * (column + 1 - len(cells)))
        cells[column] = value

    def shift(self, count: int) -> None:
        """Insert `count` blank rows at the top (a reader that started at the first used row)."""
        self[:0] = [EMPTY_ROW] * count
        self.filled = {i + count for i in self.filled}
        self.notes = {i + count: cells for i, cells in self.notes.items()}


def _lines(data: bytes, encoding: str, max_chars: int, what: str) -> Iterator[str]:
    """Decoded physical lines, with NUL bytes (from stray UTF-16 or binary junk) removed.

    A line longer than max_chars is refused as soon as that many characters are read: one line of
    twenty million commas is never held, let alone split.
    """
    stream = _text_stream(data, encoding)
    for number, line in enumerate(iter(functools.partial(stream.readline, max_chars + 1), ""), start=1):
        if len(line) > max_chars:
            raise line_limit(what, number, max_chars)
        yield line.replace("\x00", "") if "\x00" in line else line


def csv_rows(
    data: bytes, encoding: str, delimiter: str, limit: int, what: str, *, max_line_kb: int = 1024,
    max_columns: int = 1_000, columns: Sequence[int] | None = None, head: int | None = None,
) -> SheetRows:
    """Rows indexed by line number - 1; LimitExceeded as soon as more than `limit` are non-blank.

    A line (or a quoted record) over max_line_kb KB, or a record of more than max_columns fields, is
    refused. `columns`: keep only these columns (SheetRows). `head`: stop at line `head` + 1 once a
    non-blank row has been read (enough to find the header).
    """
    max_chars = max_line_kb * 1024
    # A quoted field may run over several lines: it is bounded like a line. (csv's default, 131,072
    # characters, refused a whole file for one long cell; a too-long value fails its own row instead.)
    csv.field_size_limit(max(max_chars, 131_072))
    reader = csv.reader(_lines(data, encoding, max_chars, what), delimiter=delimiter, strict=False)
    rows = SheetRows(columns)
    counts = rows.field_counts = array("I")
    widest = 0  # the most fields of a one-line record so far: what a customer row looks like
    counted = 0
    try:
        for record in reader:
            if len(record) > max_columns:
                raise column_limit(what, reader.line_num - _span(record), len(record), max_columns)
            if not any(cell.strip() for cell in record):
                continue  # blank lines are filled in below, only when a non-blank row follows
            # line_num is the last physical line of this record; pad so the record sits at its first.
            span = _span(record)
            first_line = reader.line_num - span
            if head is not None and first_line > head and counted:
                break
            if span:
                _refuse_unclosed_quote(record, first_line, reader.line_num, delimiter, widest, what)
            elif len(record) > widest:
                widest = len(record)
            counted += 1
            if counted > limit:
                raise row_limit(what, limit)
            if len(counts) < first_line - 1:  # blank lines and lines a quoted value continued onto: 0
                counts.frombytes(bytes(counts.itemsize * (first_line - 1 - len(counts))))
            counts.append(len(record))
            if columns is None:  # the common case, inline: a million-line file is refused in seconds
                pad_to(rows, first_line - 1)
                rows.append(record)
            else:
                rows.put(first_line - 1, record)
    except csv.Error as exc:
        if "field larger than field limit" not in str(exc):
            raise
        raise line_limit(what, reader.line_num, max_chars) from None
    return rows


def _refuse_unclosed_quote(record: list[str], first_line: int, last_line: int, delimiter: str, widest: int,
                           what: str) -> None:
    """Refuse a record whose quoted value runs over line ends and carries what look like further records.

    A missing closing quote (`KSI-102,"Ama,Owusu,0201234567`) makes the csv module read every following line
    into one cell until the next quote, so customers would vanish into a too-long name. A value that legally
    spans lines (an address typed with line breaks) has short lines; a line inside a value holding at least
    as many separators as a row of the file (at least two) is a row that was swallowed.
    """
    needed = max(2, widest - 1)
    # A quote left open to the end of the file holds the file's last line break too (csv never saw the line
    # end it would otherwise have counted): the record starts one line further down than the span says.
    line = first_line + (1 if record and record[-1].endswith(("\n", "\r")) else 0)
    for cell in record:
        pieces = _LINE_BREAK.split(cell)
        for offset, piece in enumerate(pieces[1:], start=1):
            if piece.count(delimiter) >= needed:
                shown = piece if len(piece) <= 80 else piece[:77] + "..."
                raise UnreadableFile(
                    f"{what}: line {line:,} opens a quoted value (\") that runs on to line "
                    f"{last_line:,} unclosed, so the lines in between would be read as one cell; line {line + offset:,} "
                    f"inside it looks like a customer row ({shown!r}). Close or remove the quote on line {line:,} "
                    "and upload the file again; no line of it was imported."
                )
        line += len(pieces) - 1


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def join_split_lines(data: bytes, lines: Sequence[int]) -> bytes:
    """The CSV bytes with each line in `lines` (1-based, as split_records names them: the first line of a
    customer broken over two lines) joined to the line after it by a space, and that line left blank, so every
    other line keeps its number (blank lines are skipped). The encoding (and its BOM) is kept.

    The engine's half of "join rows 4-5": the page or CLI reads the joined bytes as the upload.
    """
    wanted = set(lines)
    if not wanted:
        return data
    encoding = detect_encoding(data)
    text = data.decode(encoding, errors="surrogateescape")
    parts = _LINE_BREAK.split(text)
    breaks = _LINE_BREAK.findall(text)
    for line in sorted(wanted):
        if 1 <= line < len(parts):
            parts[line - 1] = parts[line - 1].rstrip(" ") + " " + parts[line].lstrip(" ")
            parts[line] = ""
    out = "".join(p + (breaks[i] if i < len(breaks) else "") for i, p in enumerate(parts))
    return out.encode(encoding, errors="surrogateescape")


def line_limit(what: str, line: int, max_chars: int) -> LimitExceeded:
    """The message for MAX_CSV_LINE_KB."""
    return LimitExceeded(
        f"{what}: line {line:,} is longer than {max_chars // 1024:,} KB (MAX_CSV_LINE_KB); a customer row is "
        "far shorter. Check that it is a CSV export of the customer list, or raise MAX_CSV_LINE_KB.",
        setting="MAX_CSV_LINE_KB", limit=max_chars // 1024,
    )


def column_limit(what: str, line: int, fields: int, max_columns: int) -> LimitExceeded:
    """The message for MAX_COLUMNS."""
    return LimitExceeded(
        f"{what}: line {line:,} has {fields:,} fields, more than the {max_columns:,} columns the importer reads "
        "(MAX_COLUMNS). Delete the unused columns, check the separator, or raise MAX_COLUMNS.",
        setting="MAX_COLUMNS", limit=max_columns, found=fields,
    )


def pad_to(rows: list[list[str]], length: int) -> None:
    """Fill with one shared empty row: a file of a million blank lines costs pointers, not lists."""
    if len(rows) < length:
        rows.extend([EMPTY_ROW] * (length - len(rows)))


def row_limit(what: str, limit: int) -> LimitExceeded:
    """The contract's message for MAX_ROWS."""
    return LimitExceeded(
        f"{what} has more than {limit:,} data rows (MAX_ROWS). Split it into smaller files or raise MAX_ROWS.",
        setting="MAX_ROWS", limit=limit,
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
