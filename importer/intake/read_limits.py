"""Limits checked while a workbook's XML streams by, and what reading it will cost, before a parser allocates.

zip_guard inflates every part in chunks before python-calamine or openpyxl see the file. While it does,

- `TextRuns` measures the longest text between two tags of a sheet or of the shared-strings table (a cell's
  text: markup never holds a '<' inside text) and stops past MAX_FILE_CELL_CHARS characters;
- `SharedStrings` counts the shared-strings table's entries and bytes and stops as soon as reading the
  workbook would not fit the memory budget (calamine and openpyxl load the table whole before the first
  cell: ten million short entries took 919 MB);

and once every part is measured, `check_read_cost` refuses a workbook whose read would not fit the budget
(importer.server.governor.cost_to_read: its cells, their text, the table), saying how many rows would.
`declared_read_cost` is the same estimate from the zip's directory alone (declared sizes, no inflating):
what a page charges the governor before the checks run. A CSV is refused the same way before it is parsed
(`check_text_cost`), its cost estimated from its bytes and fields (governor.cost_to_read_text).
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

from importer.errors import LimitExceeded
from importer.server.governor import (
    MB,
    READ_BYTES_PER_SHARED_STRING,
    XML_BYTES_PER_CELL,
    XML_BYTES_PER_SHARED_STRING,
    cost_to_read,
    cost_to_read_text,
    rows_within,
)
from importer.settings import Settings


def is_shared_strings(part: str) -> bool:
    return part.lower().endswith("sharedstrings.xml")


def _chars(piece: bytes) -> int:
    """The characters of a text run's bytes (UTF-8; an entity such as &amp; counts as about one)."""
    return len(piece.decode("utf-8", "ignore")) - 3 * piece.count(b"&")


class TextRuns:
    """The longest run of text between two tags of one XML part, in characters, fed chunk after chunk.

    Cheap on ordinary XML: a run longer than `limit` characters is at least `limit` bytes long, so as long
    as every stretch of limit/2 bytes holds a '<' no run can be; only a chunk where one does not is split.
    `feed` raises LimitExceeded (from `refuse(characters)`) as soon as a run passes the limit. A run holds its
    tag too (`t xml:space="preserve">` before the text), so TAG_ROOM characters more are allowed: a cell of
    exactly 32,767 characters, Excel's most, is read.
    """

    TAG_ROOM = 64

    def __init__(self, limit: int, refuse) -> None:
        self.limit = max(1, limit) + self.TAG_ROOM
        self.refuse = refuse
        self.longest = 0
        self._open = 0  # characters of the run still open at the end of the last chunk
        self._started = False  # a first '<' seen
        self._stride = max(1, self.limit // 2)

    def feed(self, chunk: bytes) -> None:
        """The next chunk of the part. A run counts the bytes from one '<' to the next (the tag's own name
        too: a few characters more than the text, never fewer)."""
        first = chunk.find(b"<")
        if not self._started:  # bytes before the first tag are no cell's (nor XML: the parsers refuse them)
            if first == -1:
                return
            self._started = True
        elif first == -1:
            self._grow(_chars(chunk))
            return
        else:
            self._grow(_chars(chunk[:first]))
        self._close()
        last = chunk.rfind(b"<")
        if last > first and not self._dense(chunk, first, last):
            for piece in chunk[first + 1 : last].split(b"<"):
                if len(piece) > self.limit:
                    self._grow(_chars(piece))
                    self._close()
        self._grow(_chars(chunk[last + 1 :]))

    def _dense(self, chunk: bytes, first: int, last: int) -> bool:
        """Whether every stretch of `stride` bytes between first and last holds a '<' (no run can be long)."""
        return all(chunk.find(b"<", pos, pos + self._stride) != -1 for pos in range(first, last, self._stride))

    def _grow(self, characters: int) -> None:
        self._open += max(0, characters)
        if self._open > self.limit:
            raise self.refuse(self._open)

    def _close(self) -> None:
        self.longest = max(self.longest, self._open)
        self._open = 0


class SharedStrings:
    """Counts a shared-strings part's entries as it streams; refuses as soon as reading the workbook (its
    costliest sheet measured so far, `sheet()`, with the table read so far) would not fit the budget."""

    def __init__(self, file_name: str, settings: Settings, sheet: Callable[[], ReadSize]) -> None:
        self.file_name, self.settings, self.sheet = file_name, settings, sheet
        self.entries = self.size = 0
        self._carry = b""

    def feed(self, chunk: bytes) -> None:
        self.size += len(chunk)
        window = self._carry + chunk
        cut = window.rfind(b"<", max(0, len(window) - 8))
        body, self._carry = (window, b"") if cut == -1 else (window[:cut], window[cut:])
        # An entry is <si> (or <x:si>, counted twice with its closing tag: errs high).
        self.entries += body.count(b"<si") + (body.count(b":si>") + body.count(b":si ") if b":si" in body else 0)
        sheet = self.sheet()
        check_read_cost(ReadSize(sheet.cells, sheet.sheet_bytes, sheet.rows, self.entries, self.size),
                        self.file_name, self.settings, so_far=True)


def entries_within(settings: Settings) -> int:
    """Shared strings past which reading a workbook cannot fit the budget, whatever else it holds."""
    return settings.memory_budget_mb * MB // READ_BYTES_PER_SHARED_STRING + 1


def cell_too_long(file_name: str, where: str, characters: int, limit: int) -> LimitExceeded:
    """The refusal of a cell longer than MAX_FILE_CELL_CHARS, found while the XML streamed."""
    return LimitExceeded(
        f"{file_name} was refused: a cell in {where} holds more than {limit:,} characters (about {characters:,} "
        "so far); no customer field is that long, and Excel's own cells stop at 32,767. Shorten or delete that "
        "cell and save the file again.",
        setting="MAX_FILE_CELL_CHARS", limit=limit, found=characters,
    )


@dataclass(frozen=True)
class ReadSize:
    """What reading the workbook's largest sheet involves, as measured while it inflated."""

    cells: int
    sheet_bytes: int
    rows: int
    shared_strings: int
    shared_string_bytes: int

    @property
    def cost(self) -> int:
        return cost_to_read(cells=self.cells, sheet_bytes=self.sheet_bytes, shared_strings=self.shared_strings,
                            shared_string_bytes=self.shared_string_bytes)


def check_read_cost(size: ReadSize, file_name: str, settings: Settings, *, so_far: bool = False) -> None:
    """LimitExceeded when reading the file would need more than the memory budget: how much, and what to do.
    so_far: the file is still being measured (it needs at least that much)."""
    budget = settings.memory_budget_mb * MB
    cost = size.cost
    if cost <= budget:
        return
    table = cost_to_read(cells=0, sheet_bytes=0, shared_strings=size.shared_strings,
                         shared_string_bytes=size.shared_string_bytes)
    if table * 2 > cost and size.shared_strings > 4 * max(size.cells, 1):
        what = (f"Its table of distinct texts holds {size.shared_strings:,} entries for {size.cells:,} cells: open "
                "it in Excel and save it again (Excel keeps only the texts the cells use), or export it as CSV.")
    else:
        what = _split(size.rows, cost, settings)
    raise _too_costly(file_name, cost, settings, what, so_far=so_far)


def _split(rows: int, cost: int, settings: Settings, fit: int | None = None) -> str:
    """What to do with a file of `rows` rows that costs `cost` bytes to read: the rows a file may have (`fit`
    if known)."""
    fit = rows_within(rows, cost, settings.memory_budget_mb * MB) if fit is None else fit
    fit = min(fit, max(1, settings.max_rows))
    return (f"Split it into files of at most {fit:,} rows (it has {rows:,}), or shorten its longest columns, and "
            "upload them one after another.")


def _too_costly(file_name: str, cost: int, settings: Settings, what: str, *, so_far: bool = False) -> LimitExceeded:
    return LimitExceeded(
        f"{file_name} needs {'more than' if so_far else 'about'} {cost / MB:,.0f} MB of memory to read; this "
        f"server gives one step at most {settings.memory_budget_mb:,} MB. {what}",
        setting="MEMORY_BUDGET_MB", limit=settings.memory_budget_mb, found=int(cost // MB),
    )


# Columns of a CSV line that reading keeps (the mapped fields and a few of the file's own): the others are
# split off each line and dropped, so a 245-column file costs about what its used columns do.
KEPT_FIELDS_PER_LINE = 16


def text_size(data: bytes, delimiter: str) -> tuple[int, int]:
    """(fields kept, lines) of delimited text, counted on the bytes (quoted delimiters count too: errs high),
    at most KEPT_FIELDS_PER_LINE fields a line."""
    sep = delimiter.encode("utf-8", "ignore") or b","
    lines = data.count(b"\n") + 1
    return min(data.count(sep) + lines, KEPT_FIELDS_PER_LINE * lines), lines


# Bytes of a CSV sampled at its start, middle and end to see which share of its text reading keeps.
SAMPLE_BYTES = 64 * 1024


def kept_share(data: bytes, encoding: str, delimiter: str) -> tuple[float, int]:
    """(the share of a CSV's text in its KEPT_FIELDS_PER_LINE widest columns, the most fields a record has),
    parsed on three samples (the largest share found: errs high). Reading keeps the mapped columns only, so a
    file of 245 columns costs about what its used ones do. UTF-16 and UTF-32 text is not sampled (all kept)."""
    if encoding.startswith(("utf-16", "utf-32")):
        return 1.0, KEPT_FIELDS_PER_LINE
    share, widest = 0.0, 1
    for start in sorted({0, len(data) // 2, max(0, len(data) - SAMPLE_BYTES)}):
        if start:
            start = data.find(b"\n", start) + 1  # from a line's start (inside a quoted value: one odd record)
        chunk = data[start : start + SAMPLE_BYTES] if start else data[:SAMPLE_BYTES]
        if start + SAMPLE_BYTES < len(data):
            chunk = chunk[: chunk.rfind(b"\n") + 1] or chunk
        columns: list[int] = []
        lines = io.StringIO(chunk.decode(encoding, "replace"), newline="")  # \r, \n or \r\n end a line
        try:
            for record in csv.reader(lines, delimiter=delimiter, strict=False):
                columns.extend([0] * (len(record) - len(columns)))
                for j, value in enumerate(record):
                    columns[j] += len(value) + 1
                widest = max(widest, len(record))
        except csv.Error:  # the reader will say what is wrong; the estimate takes every byte as kept
            return 1.0, max(widest, KEPT_FIELDS_PER_LINE)
        if sum(columns):
            share = max(share, sum(sorted(columns, reverse=True)[:KEPT_FIELDS_PER_LINE]) / sum(columns))
    return (share or 1.0), widest


def text_read_cost(data: bytes, encoding: str, delimiter: str, max_rows: int | None = None) -> tuple[int, int, int]:
    """(bytes reading delimited text needs at its peak, the rows read, the rows it has): governor's
    cost_to_read_text of the fields kept and their characters (kept_share of the text; a UTF-16 file's bytes
    are two a character). Rows are lines (a quoted line break counts too: errs high); reading stops past
    max_rows data rows (and refuses the file), so only those are costed."""
    width = 4 if encoding.startswith("utf-32") else 2 if encoding.startswith("utf-16") else 1
    rows = data.rstrip(b"\r\n\x00").count(b"\n") + 1
    read = rows if max_rows is None else min(rows, max_rows + 2)  # the header, and one row past the limit
    share, widest = kept_share(data, encoding, delimiter)
    cells = read * min(widest, KEPT_FIELDS_PER_LINE)
    text = share * len(data) / width * read / rows
    return cost_to_read_text(cells=cells, size_bytes=int(text) + cells), read, rows  # size less a byte a field


def check_text_cost(data: bytes, encoding: str, delimiter: str, file_name: str, settings: Settings) -> None:
    """LimitExceeded when reading a CSV would need more than the memory budget, estimated from its bytes
    before it is parsed (text_read_cost), with the rows a file may have to fit. A file of more rows than
    MAX_ROWS whose first rows fit is left to the reader, which refuses it for its rows."""
    cost, read, rows = text_read_cost(data, encoding, delimiter, settings.max_rows)
    if cost > settings.memory_budget_mb * MB:
        fit = rows_within(read, cost, settings.memory_budget_mb * MB)
        raise _too_costly(file_name, cost, settings, _split(rows, cost, settings, fit))


def declared_read_cost(data: bytes) -> int | None:
    """cost_to_read from a workbook's zip directory alone (the sizes its parts declare; cells taken as the
    markup allows at most): what charging the read costs before the parts are inflated. None: not a zip."""
    try:
        infos = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, NotImplementedError):
        return None
    sheets = [i.file_size for i in infos if "worksheets/" in i.filename.lower()] or [0]
    table = sum(i.file_size for i in infos if is_shared_strings(i.filename))
    largest = max(sheets)
    # As many cells as the sheet's bytes could hold, and entries as the table's: the upper end.
    return cost_to_read(cells=largest // XML_BYTES_PER_CELL, sheet_bytes=largest,
                        shared_strings=table // (XML_BYTES_PER_SHARED_STRING + 4), shared_string_bytes=table)


__all__ = ["ReadSize", "SharedStrings", "TextRuns", "cell_too_long", "check_read_cost", "check_text_cost",
           "declared_read_cost", "entries_within", "kept_share", "is_shared_strings", "text_read_cost", "text_size"]
