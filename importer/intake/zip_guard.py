"""Checks on a workbook's container before any parser sees it: zip bombs, XML entities, encryption.

Everything here works on the raw bytes with the standard library only, so a hostile file is refused
before python-calamine or openpyxl allocate anything for it.
"""

from __future__ import annotations

import io
import re
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from posixpath import dirname, join, normpath

from defusedxml import ElementTree as SafeET

from importer.errors import FileRefused, HostileFile, LimitExceeded, UnreadableFile
from importer.intake import read_limits
from importer.intake.read_limits import ReadSize
from importer.intake.sniff import refuse_other_container
from importer.settings import Settings

MB = 1024 * 1024
CHUNK = 256 * 1024
# How much of each XML part is checked for DOCTYPE/ENTITY: a declaration must come before the root.
XML_HEAD_BYTES = 8 * 1024
PASSWORD_MESSAGE = (
    "The workbook is password-protected; remove the password in Excel "
    "(File > Info > Protect Workbook) and upload it again."
)

# An error cell (t="e") with its cached value, e.g. <c r="B2" t="e"><f>1/0</f><v>#DIV/0!</v></c>.
_ERROR_CELL = re.compile(
    rb'<(?:\w+:)?c\b([^>]*\bt="e"[^>]*)>(?:<(?:\w+:)?f\b[^>]*/>|<(?:\w+:)?f\b[^>]*>[^<]*</(?:\w+:)?f>)?'
    rb"<(?:\w+:)?v>([^<]*)</(?:\w+:)?v>"
)
_CELL_REF = re.compile(rb'\br="([A-Z]+)([0-9]+)"')
# References that can stretch calamine's dense grid: columns past Z, or rows past 99,999. Ordinary
# customer sheets have none, so this scan costs one pass with almost no matches.
# Unbounded digit and letter counts: a reference past Excel's own limits (E1100000000000000000000) made
# calamine try to allocate hundreds of GB, so it must count as far away too.
_FAR_REF = re.compile(rb'r="([A-Z]{2,}[0-9]+|[A-Z][0-9]{6,})"')
_LAST_ROW = re.compile(rb'<(?:\w+:)?row\b[^>]*?\br="([0-9]+)"')
# calamine allocates rows x columns cells (about 32 bytes each) for a sheet's used range, however
# sparse; one stray cell at XFD1048576 would ask for half a terabyte and abort the process.
# The default of the MAX_CELLS setting; ole_guard uses it when no settings are passed.
MAX_GRID_CELLS = Settings().max_cells
# Row and cell elements, whatever their namespace prefix (calamine matches local names). A cell without
# r= goes in the next column, and a row without r= is the next row: these are counted, not trusted.
_ROW_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]{0,40}:)?row[\s/>]")
_CELL_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]{0,40}:)?c[\s/>]")
_SHEET_DATA_END = re.compile(rb"</(?:[A-Za-z_][\w.-]{0,40}:)?sheetData\s*>")
_REFERENCED_CELL = re.compile(rb"<(?:[A-Za-z_][\w.-]{0,40}:)?c\s[^>]*?\br\s*=")
# Longer than any match of the two patterns: a tag cut by a chunk edge waits for the next chunk.
_TAG_CARRY = 64


def bad_workbook(file_name: str, why: str = "it may be truncated or damaged") -> UnreadableFile:
    """The one message for a workbook no reader can open."""
    return UnreadableFile(
        f"{file_name} is not a valid Excel file ({why}); open it in Excel and save it again, "
        "or export it as CSV."
    )


# <col min="2" max="2" hidden="1"/> elements of <cols>, which comes before <sheetData>.
_COL_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]{0,40}:)?col\b([^>]*)>")
_COL_ATTR = re.compile(rb'\b(min|max|hidden|width)\s*=\s*"([^"]*)"')
_DATA_START = re.compile(rb"<(?:[A-Za-z_][\w.-]{0,40}:)?sheetData[\s/>]")
# Hidden columns are looked for in a sheet's first bytes only (the <cols> element is short), and only the
# first HIDDEN_COLUMNS_MAX columns are recorded: headers further right are not matched anyway.
COLS_SCAN_BYTES = 256 * 1024
HIDDEN_COLUMNS_MAX = 1_024


@dataclass
class ZipReport:
    """What the container check learned: sheet name -> XML part, error cells per part, and the hidden
    columns (0-based) per part."""

    sheet_parts: dict[str, str] = field(default_factory=dict)
    error_cells: dict[str, dict[tuple[int, int], str]] = field(default_factory=dict)
    hidden_columns: dict[str, frozenset[int]] = field(default_factory=dict)
    # Numeric cells whose text as Excel shows it differs from the number's digits, per part, (row, column) ->
    # text: a padding format (`0000` shows 42 as `0042`, `000 000 0000` a phone) and numbers of more than 15
    # digits (kept as the file's digits, or as Excel's General shows a rounded one: `1.23457E+21`).
    display_cells: dict[str, dict[tuple[int, int], str]] = field(default_factory=dict)
    # Cell style (xf) index -> its number format's tokens, for the padding formats of xl/styles.xml.
    padded_styles: dict[int, tuple[tuple[bool, str], ...]] = field(default_factory=dict)
    # What reading costs (importer.intake.read_limits): per sheet part (cells, inflated bytes, rows), and the
    # shared-strings table's entries and inflated bytes.
    sheet_sizes: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    shared_strings: int = 0
    shared_string_bytes: int = 0

    def read_size(self) -> ReadSize:
        """The size of reading the costliest sheet (with the whole shared-strings table)."""
        sizes = [ReadSize(cells, size, rows, self.shared_strings, self.shared_string_bytes)
                 for cells, size, rows in self.sheet_sizes.values()]
        return max(sizes, key=lambda s: s.cost, default=ReadSize(0, 0, 0, self.shared_strings,
                                                                  self.shared_string_bytes))


def hidden_columns(head: bytes) -> frozenset[int]:
    """The columns a sheet's <cols> hides (hidden="1", or a width of 0), from the XML before <sheetData>."""
    end = _DATA_START.search(head)
    hidden: set[int] = set()
    for tag in _COL_TAG.finditer(head[: end.start()] if end else head):
        attrs = {k.decode(): v.decode("ascii", "replace") for k, v in _COL_ATTR.findall(tag.group(1))}
        try:
            low, high = int(attrs.get("min", "0")), int(attrs.get("max", attrs.get("min", "0")))
            zero_width = "width" in attrs and float(attrs["width"]) == 0
        except ValueError:
            continue
        if attrs.get("hidden", "").lower() in ("1", "true") or zero_width:
            hidden.update(range(max(low, 1) - 1, min(high, HIDDEN_COLUMNS_MAX)))
    return frozenset(hidden)


def check_zip(data: bytes, file_name: str, settings: Settings) -> ZipReport:
    """Refuse a zip whose parts inflate too far or hold XML entity declarations; map sheets to parts."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        raise bad_workbook(file_name) from exc
    # An OpenDocument or .xlsb file renamed .xlsx is named and refused before anything inflates.
    refuse_other_container(zf, file_name)
    limit = settings.max_inflated_mb * MB
    declared = sum(i.file_size for i in infos)
    if declared > limit:
        raise _over_limit(file_name, f"would inflate to {declared / MB:,.0f} MB when opened, over",
                          declared, sum(i.compress_size for i in infos), settings)
    # A high compression ratio alone is no refusal (issue 22): a genuine workbook of repetitive text, cells
    # of 32,767 characters, compresses several hundred to one. The decision is the inflated size against
    # MAX_INFLATED_MB: declared above (quick), then counted while every part inflates in chunks (a bomb's
    # declared sizes may lie); the ratio only names a bomb as one in the message.
    report = ZipReport()
    total = 0
    # The styles part first: the sheets' scan needs its padding number formats (display_cells).
    for info in sorted(infos, key=lambda i: not _is_styles(i.filename)):
        # Declared sizes can lie: inflate every part ourselves, counting, and stop at the limits.
        total += _scan_member(data, info, file_name, settings, limit - total, report)
    report.sheet_parts = _sheet_parts(zf, file_name)
    # A sheet stored outside xl/worksheets/ (its relationship may point anywhere) is measured as a sheet
    # too: its size already passed the checks above, so this second pass is bounded.
    by_name = {info.filename: info for info in infos}
    for part in sorted(set(report.sheet_parts.values())):
        if "worksheets/" not in part and part in by_name:
            _scan_member(data, by_name[part], file_name, settings, limit, report, sheet=True)
    # Every part measured: refuse a read that cannot fit the memory budget before a parser allocates it.
    read_limits.check_read_cost(report.read_size(), file_name, settings)
    return report


def _over_limit(file_name: str, what: str, size: int, compressed: int, settings: Settings) -> FileRefused:
    """The refusal of a workbook that inflates past MAX_INFLATED_MB: a zip bomb (HostileFile) when it also
    inflates more than MAX_INFLATION_RATIO:1 beyond its first megabyte, else a workbook too big."""
    limit = f"{what} the {settings.max_inflated_mb:,} MB limit (MAX_INFLATED_MB)"
    if size - MB > settings.max_inflation_ratio * max(compressed, 1):
        return HostileFile(
            f"{file_name} looks like a zip bomb: it {limit}, inflating more than "
            f"{settings.max_inflation_ratio}:1 (MAX_INFLATION_RATIO). Save the workbook again in Excel."
        )
    return LimitExceeded(f"{file_name} {limit}. Split the workbook or raise MAX_INFLATED_MB.")


def _raw_member(data: bytes, info: zipfile.ZipInfo, file_name: str) -> memoryview:
    """The compressed bytes of one member, located through its local header."""
    start = info.header_offset
    header = data[start : start + 30]
    if len(header) < 30 or header[:4] != b"PK\x03\x04":
        raise bad_workbook(file_name)
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    begin = start + 30 + name_len + extra_len
    if begin + info.compress_size > len(data):
        raise bad_workbook(file_name)
    return memoryview(data)[begin : begin + info.compress_size]


def _scan_member(
    data: bytes,
    info: zipfile.ZipInfo,
    file_name: str,
    settings: Settings,
    budget: int,
    report: ZipReport,
    sheet: bool = False,
) -> int:
    """Inflate one member in chunks; check its real size, its XML head, and collect error cells."""
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise bad_workbook(file_name, f"part {info.filename} uses an unsupported compression")
    raw = _raw_member(data, info, file_name)
    is_xml = info.filename.lower().endswith((".xml", ".rels", ".vml"))
    is_sheet = sheet or (is_xml and "worksheets/" in info.filename)
    cap = min(budget, info.file_size)
    size, head, tail, crc = 0, b"", b"", 0
    cols_head = b""
    extent = [0, 0]  # furthest row and column seen (1-based)
    counter = _CellCounter()
    errors: dict[tuple[int, int], str] = {}
    shown: dict[tuple[int, int], str] = {}
    styles = bytearray() if _is_styles(info.filename) else None
    shown_tail = b""
    table = read_limits.SharedStrings(file_name, settings, report.read_size) if is_xml and read_limits.is_shared_strings(info.filename) else None
    runs = read_limits.TextRuns(settings.max_file_cell_chars, lambda n: read_limits.cell_too_long(
        file_name, "its table of texts" if table else "one of its sheets", n, settings.max_file_cell_chars)
    ) if is_sheet or table else None
    for chunk in _inflate(raw, info.compress_type == zipfile.ZIP_DEFLATED, file_name):
        size += len(chunk)
        if size > cap:
            if size > budget:
                raise _over_limit(file_name, "inflates, when opened, past", size, len(raw), settings)
            raise HostileFile(
                f"{file_name} is malformed: its part {info.filename} inflates beyond the size it declares. "
                "Save the workbook again in Excel."
            )
        crc = zlib.crc32(chunk, crc)
        if is_xml and len(head) < XML_HEAD_BYTES:
            head += chunk[: XML_HEAD_BYTES - len(head)]
            _check_xml_head(head, info.filename, file_name)
        if is_sheet and len(cols_head) < COLS_SCAN_BYTES:
            cols_head += chunk[: COLS_SCAN_BYTES - len(cols_head)]
        if styles is not None and len(styles) <= STYLES_MAX_BYTES:
            styles += chunk
        if runs is not None:
            runs.feed(chunk)  # a cell past MAX_FILE_CELL_CHARS stops the scan here
        if table is not None:
            table.feed(chunk)  # so does a table too big to load
        if is_sheet:
            window = tail + chunk
            _track_extent(window, extent)
            tail = _collect_errors(window, errors)
            shown_tail = _collect_shown(shown_tail + chunk, report.padded_styles, shown)
            counter.feed(chunk)
            _check_cells(counter, extent, file_name, settings.max_cells)  # stop at the limit, not after
    if is_sheet:
        counter.feed(b"", final=True)
        _check_cells(counter, extent, file_name, settings.max_cells)
        report.sheet_sizes[info.filename] = (counter.cells, size, max(extent[0], counter.rows))
    if table is not None:
        report.shared_strings += table.entries
        report.shared_string_bytes += size
    if size != info.file_size or crc != info.CRC:
        raise bad_workbook(file_name)
    if errors:
        report.error_cells[info.filename] = errors
    if shown:
        report.display_cells[info.filename] = shown
    if styles is not None and len(styles) <= STYLES_MAX_BYTES:
        report.padded_styles = padded_styles(bytes(styles))
    if is_sheet and (b"<col" in cols_head or b":col" in cols_head):
        report.hidden_columns[info.filename] = hidden_columns(cols_head)
    return size


class _CellCounter:
    """Counts a sheet part's <c> elements as its XML streams by, chunk after chunk.

    The declared <dimension> and the r= references can be absent or lie. calamine stores one entry per
    <c> (`cells`); a cell without r= goes in the column after the previous one and a row without r= is
    the next row, so such cells stretch the grid by up to `rows` x `widest` (the longest run of them in
    a row) beyond what the references say. The usual chunk, every cell written <c r="...">, costs two
    bytes.count passes; other chunks are split into rows. Counts err upwards (<color> counts as a cell).
    """

    def __init__(self) -> None:
        self.rows = self.cells = self.widest = self._run = 0
        self._carry = b""
        self._done = False  # past </sheetData>: what follows (<cfRule>, <colBreaks>) holds no cells

    def feed(self, chunk: bytes, final: bool = False) -> None:
        if self._done:
            return
        window = self._carry + chunk
        cut = -1 if final else window.rfind(b"<", max(len(window) - _TAG_CARRY, 0))
        body, self._carry = (window, b"") if cut == -1 else (window[:cut], window[cut:])
        tags = body.count(b"<c")
        if tags == body.count(b'<c r="') and b":c" not in body:
            self.cells += tags  # every cell placed by its reference: _track_extent measures the grid
            return
        if b"sheetData" in body and (end := _SHEET_DATA_END.search(body)):
            body, self._done = body[: end.start()], True
        # A plain split unless namespace prefixes may be about (<x:row>); <rowBreaks> comes after </sheetData>.
        pieces = _ROW_TAG.split(body) if b":" in body else body.split(b"<row")
        if self.rows:
            self._count(pieces[0])  # the rest of the row already open (before the first row: <cols>)
        for piece in pieces[1:]:
            self.rows += 1
            self._run = 0
            self._count(piece)

    def _count(self, piece: bytes) -> None:
        if b":" in piece:  # namespace prefixes (or a colon in text): tokenise
            n = len(_CELL_TAG.findall(piece))
            referenced = len(_REFERENCED_CELL.findall(piece)) if b"r" in piece else 0
        else:
            n, referenced = piece.count(b"<c"), piece.count(b'<c r="')
        self.cells += n
        if n > referenced:
            self._run += n - referenced
            self.widest = max(self.widest, self._run)


def _check_cells(counter: _CellCounter, extent: list[int], file_name: str, max_cells: int) -> None:
    """LimitExceeded once a sheet holds, or its rows and columns span, more than max_cells cells."""
    if counter.cells > max_cells:
        raise LimitExceeded(
            f"{file_name} was refused: a sheet holds more than {max_cells:,} cells (MAX_CELLS), whatever "
            "size it declares. Split the data into smaller files, export it as CSV, or raise MAX_CELLS.",
            setting="MAX_CELLS", limit=max_cells, found=counter.cells,
        )
    rows, columns = extent[0] + counter.rows, extent[1] + counter.widest
    if counter.widest and rows * columns > max_cells:
        raise grid_limit(file_name, rows, columns, max_cells)
    if extent[0] * extent[1] > max_cells:
        raise grid_limit(file_name, extent[0], extent[1], max_cells)


def grid_limit(file_name: str, rows: int, columns: int, max_cells: int) -> LimitExceeded:
    """The message for a sheet whose used range spans more than MAX_CELLS cells (xlsx and xls)."""
    return LimitExceeded(
        f"{file_name} was refused: a sheet's used range reaches row {rows:,} and column {columns:,}, over the "
        f"{max_cells:,} cells the importer reads (MAX_CELLS). Delete the stray cells far from the data "
        "(Ctrl+End in Excel shows the last one) and save it again, export it as CSV, or raise MAX_CELLS.",
        setting="MAX_CELLS", limit=max_cells, found=rows * columns,
    )


def _inflate(raw: memoryview, deflated: bool, file_name: str) -> Iterator[bytes]:
    """The member's content in chunks of at most CHUNK bytes, whatever its compression ratio."""
    if not deflated:
        for pos in range(0, len(raw), CHUNK):
            yield bytes(raw[pos : pos + CHUNK])
        return
    inflater = zlib.decompressobj(-15)
    pos, pending = 0, b""
    try:
        while not inflater.eof:
            if not pending:
                if pos >= len(raw):
                    break
                pending = bytes(raw[pos : pos + CHUNK])
                pos += len(pending)
            # max_length bounds each step's output, so a bomb never inflates more than CHUNK at once.
            out = inflater.decompress(pending, CHUNK)
            pending = inflater.unconsumed_tail
            if out:
                yield out
        rest = inflater.flush()
    except zlib.error as exc:
        raise bad_workbook(file_name) from exc
    if rest:
        yield rest


def _check_xml_head(head: bytes, part: str, file_name: str) -> None:
    """A workbook part never needs a DTD; one means entity expansion (billion laughs) or XXE."""
    probe = head.upper()
    # UTF-16 XML parts would hide the markers from a byte search; look at them decoded too.
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        probe = head.decode("utf-16", errors="ignore").upper().encode()
    if b"<!DOCTYPE" in probe or b"<!ENTITY" in probe:
        raise HostileFile(
            f"{file_name} was refused: its part {part} declares XML entities (<!DOCTYPE/<!ENTITY>), "
            "as used in billion-laughs and external-entity attacks. Save the workbook again in Excel."
        )


def _collect_errors(buf: bytes, errors: dict[tuple[int, int], str]) -> bytes:
    """Record error cells found in buf; return the tail that may hold a cell cut by the chunk edge."""
    if b't="e"' not in buf:
        return buf[-512:]
    end = 0
    for m in _ERROR_CELL.finditer(buf):
        ref = _CELL_REF.search(m.group(1))
        if ref:
            errors[(int(ref.group(2)), _col_index(ref.group(1).decode()))] = m.group(2).decode(
                "utf-8", "replace"
            )
        end = m.end()
    return buf[max(end, len(buf) - 512) :]


STYLES_MAX_BYTES = 8 * MB
# A numeric cell with its value: <c r="B2" s="3"><v>42</v></c>, t="n" or no t (t="s", "str"... are text).
_VALUE_CELL = re.compile(
    rb'<(?:\w+:)?c\b([^>]*)>(?:<(?:\w+:)?f\b[^>]*/>|<(?:\w+:)?f\b[^>]*>[^<]*</(?:\w+:)?f>)?'
    rb"<(?:\w+:)?v>([^<]*)</(?:\w+:)?v>"
)
_STYLE_ATTR = re.compile(rb'\bs="([0-9]+)"')
_TYPE_ATTR = re.compile(rb'\bt="([a-z]+)"')
# A value of more than 15 significant digits, which a float cannot keep: 16+ digits, or 1E+15 and up.
# (It starts with the literal "v>", which re finds fast: 1.5 ms over a 10,000-row sheet, where "<(?:\w+:)?v>" took 14.)
_LONG_VALUE = re.compile(rb"v>-?(?:[0-9]{16}|[0-9](?:\.[0-9]+)?[eE]\+?(?:1[5-9]|[2-9][0-9]|[0-9]{3}))")
LONG_DIGITS = 15


def _is_styles(name: str) -> bool:
    return name.lower().endswith("styles.xml") and name.lower().startswith("xl/")


def padded_styles(xml: bytes) -> dict[int, tuple[tuple[bool, str], ...]]:
    """Cell style index -> the tokens of its number format, for the styles whose format pads or punctuates a
    whole number (`0000`, `000 000 0000`, `"KSI-"0000`); a format Excel shows as General is left out."""
    try:
        root = SafeET.fromstring(xml)
    except Exception:  # noqa: BLE001 - a styles part we cannot read only means no display texts
        return {}
    codes: dict[str, str] = {}
    found: dict[int, tuple[tuple[bool, str], ...]] = {}
    for el in root.iter():
        if el.tag.endswith("numFmt") and el.get("numFmtId") is not None:
            codes[el.get("numFmtId", "")] = el.get("formatCode", "")
    for el in root.iter():
        if el.tag.endswith("cellXfs"):
            for index, xf in enumerate(x for x in el if x.tag.endswith("xf")):
                tokens = number_format_tokens(codes.get(xf.get("numFmtId", "0"), ""))
                if tokens:
                    found[index] = tokens
            break
    return found


def number_format_tokens(code: str) -> tuple[tuple[bool, str], ...] | None:
    """A number format of digit placeholders (0, #) and literal text, as (placeholder?, character) tokens, when
    it shows a whole number otherwise than General does; None for any other format (decimals, dates, %...)."""
    tokens: list[tuple[bool, str]] = []
    i = 0
    while i < len(code):
        ch = code[i]
        if ch in "0#":
            tokens.append((True, ch))
        elif ch == '"':
            end = code.find('"', i + 1)
            if end < 0:
                return None
            tokens.extend((False, c) for c in code[i + 1 : end])
            i = end
        elif ch == "\\" and i + 1 < len(code):
            tokens.append((False, code[i + 1]))
            i += 1
        elif ch in " -()/:":
            tokens.append((False, ch))
        else:
            return None
        i += 1
    zeros = sum(1 for placeholder, c in tokens if placeholder and c == "0")
    if not any(placeholder for placeholder, _ in tokens) or (zeros < 2 and all(p for p, _ in tokens)):
        return None
    return tuple(tokens)


def format_whole_number(value: int, tokens: tuple[tuple[bool, str], ...]) -> str:
    """`value` as the format shows it: 42 with `0000` -> `0042`; digits beyond the placeholders go first."""
    digits = list(str(abs(value)))
    out: list[str] = []
    first_placeholder = -1
    for placeholder, ch in reversed(tokens):
        if placeholder:
            out.append(digits.pop() if digits else ("0" if ch == "0" else ""))
            first_placeholder = len(out) - 1
        else:
            out.append(ch)
    if digits and first_placeholder >= 0:
        out[first_placeholder] = "".join(digits) + out[first_placeholder]
    return ("-" if value < 0 else "") + "".join(reversed(out))


def long_number_text(raw: str) -> str | None:
    """How a numeric cell of more than 15 significant digits reads: its own digits when the file holds them
    (`1234567890123456789012`, never a float's `1234567890123456800000`), else Excel's General display of the
    rounded number (`1.23457E+21`), whose lost digits a text field then refuses."""
    text = raw.strip().lstrip("+")
    body = text.lstrip("-")
    if body.isdigit():
        return text if len(body.lstrip("0")) > LONG_DIGITS else None
    try:
        number = float(text)
    except ValueError:
        return None
    if not abs(number) >= 10**LONG_DIGITS or number != number or number in (float("inf"), float("-inf")):
        return None
    mantissa, exponent = f"{number:.5E}".split("E")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}E{exponent[0]}{exponent[1:].lstrip('0').rjust(2, '0')}"


def _collect_shown(buf: bytes, styles: dict[int, tuple[tuple[bool, str], ...]],
                   shown: dict[tuple[int, int], str]) -> bytes:
    """Record the numeric cells in buf whose shown text is not their digits (display_cells); return the tail
    that may hold a cell cut by the chunk edge. Costs one search per chunk unless the sheet has such cells."""
    if not styles and not _LONG_VALUE.search(buf):
        return buf[-512:]
    end = 0
    for m in _VALUE_CELL.finditer(buf):
        end = m.end()
        attrs, raw = m.group(1), m.group(2).decode("ascii", "replace")
        kind = _TYPE_ATTR.search(attrs)
        if kind and kind.group(1) != b"n":
            continue
        text = long_number_text(raw)
        style = _STYLE_ATTR.search(attrs) if styles and text is None else None
        if style and int(style.group(1)) in styles:
            try:
                number = float(raw)
            except ValueError:
                continue
            if number.is_integer() and abs(number) < 10**LONG_DIGITS:
                text = format_whole_number(int(number), styles[int(style.group(1))])
        if text is None:
            continue
        ref = _CELL_REF.search(attrs)
        if ref:
            shown[(int(ref.group(2)), _col_index(ref.group(1).decode()))] = text
    return buf[max(end, len(buf) - 512) :]


def _track_extent(buf: bytes, extent: list[int]) -> None:
    """Update the furthest (row, column): the last <row r=> plus any far-away cell reference."""
    if b"r=" not in buf:
        return
    last = buf.rfind(b"<row")
    if last == -1:
        last = buf.rfind(b":row")
    if last != -1 and (m := _LAST_ROW.match(buf, last if buf[last] == 60 else last - 2)):
        extent[0] = max(extent[0], int(m.group(1)))
    if extent[1] == 0:
        extent[1] = 26  # any cell may be in columns A-Z without matching _FAR_REF
    for ref in _FAR_REF.findall(buf):
        m = _CELL_REF.match(b'r="' + ref + b'"')
        if m:
            extent[0] = max(extent[0], int(m.group(2)))
            extent[1] = max(extent[1], _col_index(m.group(1).decode()) + 1)


def _col_index(letters: str) -> int:
    """Column letters -> 0-based index (A -> 0, AA -> 26)."""
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n - 1


def _sheet_parts(zf: zipfile.ZipFile, file_name: str) -> dict[str, str]:
    """Sheet name -> worksheet part, from workbook.xml and its relationships (parsed with defusedxml)."""
    try:
        names = zf.namelist()
        book = next((n for n in names if n.lower() == "xl/workbook.xml"), None)
        if book is None:
            return {}
        rels_name = join(dirname(book), "_rels", "workbook.xml.rels")
        rels = {}
        if rels_name in names:
            for el in SafeET.fromstring(zf.read(rels_name)).iter():
                if el.tag.endswith("Relationship") and el.get("Target"):
                    target = el.get("Target", "")
                    path = (
                        target.lstrip("/")
                        if target.startswith("/")
                        else normpath(join(dirname(book), target))
                    )
                    rels[el.get("Id")] = path
        parts = {}
        for el in SafeET.fromstring(zf.read(book)).iter():
            if el.tag.endswith("}sheet") or el.tag == "sheet":
                rid = next((v for k, v in el.attrib.items() if k.endswith("}id")), None)
                if rid in rels:
                    parts[el.get("name", "")] = rels[rid]
        return parts
    except Exception:  # noqa: BLE001 - the map only serves error-cell lookup; the parsers judge validity
        return {}
