"""Failure reports as CSV or XLSX: each failed row's original values, its row number and its errors.

A report goes back to the branch that sent the file: its columns are the file's own, in their places,
under the branch's headers and with the cells as typed (S/Mark, Customer Name, Location, and the columns
that feed no field, S/No or Remarks; a column whose header would not map back shows its field's label), then
Errors and, for a run, `Report of run`. Reports are formula-safe (CONTRACT.md) and upload again as they
are: importer.mapping.roundtrip reads Row as the branch's row numbers and Report of run as the run they fix.

Reports stream: the failed rows are consumed once, in order (a generator from the database is fine),
and written as they come, so a 100,000-row report takes no more memory than a 10,000-row one
(bench/bench_report.py). CSV cells that a spreadsheet would run as a formula get a leading
apostrophe; XLSX cells are typed text, which Excel never runs, so they keep the value exactly.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import chain, islice
from typing import IO, Any, Protocol

from importer.checks.normalise import FORMULA_PREFIXES
from importer.outcomes.failed_rows import ReportColumn, field_columns
from importer.outcomes.row_errors import error_text

ROW_HEADER = "Row"
ERRORS_HEADER = "Errors"
# The run whose report it is, in every row: a column survives Excel's editing, sorting and saving as CSV,
# where a note above the header or in the Instructions sheet may not.
RUN_HEADER = "Report of run"
# A failing value whose field has no column of its own (other phones split off the phone cell) is
# coloured in the column it came from.
_SHOWN_IN = {"other_phones": "phone", "other_emails": "email"}
REPORT_FORMATS = ("csv", "xlsx")
FAILED_SHEET = "Failed rows"
INSTRUCTIONS_SHEET = "Instructions"
# Only the failing cells of the first COMMENTED_ROWS rows get a comment; every failing cell is still
# coloured, and the Errors column has every message (the Instructions sheet says so). Comments stream
# to temporary files, so this is not for memory: each is a hidden VML shape Excel lays out on opening,
# and commenting all 150,000 failing cells of 100,000 rows made the report half as slow again and half
# as big again (bench/bench_report.py --all-comments).
COMMENTED_ROWS = 5_000
# Excel's limit for the text of one cell.
XLSX_CELL_LIMIT = 32_767
# Column widths are fitted to the header and the first WIDTH_SAMPLE_ROWS rows (the report streams).
WIDTH_SAMPLE_ROWS = 200
MAX_COLUMN_WIDTH = 60
_CSV_FLUSH_ROWS = 1_000
REPLACEMENT = "\ufffd"
_TRUNCATED = "…"
# What an XLSX (XML 1.0) cannot hold: openpyxl's control characters (its ILLEGAL_CHARACTERS_RE, written
# out so that reading a file does not import openpyxl; tests/test_report.py checks they agree), plus lone
# surrogates and the two non-characters U+FFFE and U+FFFF.
ILLEGAL_CONTROLS = r"[\000-\010]|[\013-\014]|[\016-\037]"
_NOT_XML = re.compile(ILLEGAL_CONTROLS + r"|[\ud800-\udfff\ufffe\uffff]")

_BAD_COLOUR = "FFF4C7C3"  # failing cell: light red
_INFO_COLOUR = "FFE7E6E6"  # Row and Errors: grey, for information only
_ZIP_LEVEL = 1  # deflate level: 1 is several times faster than 6 on this XML, and little bigger


class _Error(Protocol):
    @property
    def field(self) -> str: ...
    @property
    def code(self) -> Any: ...
    @property
    def message(self) -> str: ...


class ReportRow(Protocol):
    """What a report needs of a failed row (results.FailedRow is one)."""

    @property
    def source_row_number(self) -> int: ...
    @property
    def errors(self) -> Sequence[_Error]: ...
    @property
    def customer_data(self) -> Mapping[str, str]: ...


def safe_cell(value: object) -> str:
    """Text a spreadsheet will never run as a formula: `=SUM(A1)` -> `'=SUM(A1)`."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def xlsx_text(value: object) -> str:
    """Text an XLSX cell can hold: characters XML forbids become U+FFFD, and at most 32,767 characters.

    A cut value ends in `…`, so the cut is visible.
    """
    text = "" if value is None else str(value)
    # Printable ASCII (most cells) holds nothing XML forbids: the search is skipped.
    if not (text.isascii() and text.isprintable()):
        text = _NOT_XML.sub(REPLACEMENT, text)
    if len(text) > XLSX_CELL_LIMIT:
        text = text[:XLSX_CELL_LIMIT - 1] + _TRUNCATED
    return text


def report_headers(columns: Sequence[ReportColumn] | None = None, run_id: int | None = None) -> list[str]:
    """Row, the file's columns (every field when not known), Report of run for a run's report, and Errors
    last (where scripts and people have always found it)."""
    shown = field_columns() if columns is None else columns
    return [ROW_HEADER, *(c.header for c in shown), *([RUN_HEADER] if run_id is not None else []), ERRORS_HEADER]


def _raw_values(row: ReportRow, columns: Sequence[ReportColumn], run_id: int | None = None) -> list[str]:
    """A row's values as typed in the file's columns, the run, and its one-line errors (no formula
    protection yet)."""
    data = row.customer_data
    own: Mapping[str, str] = getattr(row, "other_columns", None) or {}
    # A column of the file shows its cell as typed; a row kept without its cells (before they were kept)
    # shows the mapped values of the column's fields instead.
    values = [str((own.get(c.header) if c.typed and (own or not c.field)
                   else " ".join(v for f in c.fields if (v := data.get(f))) if c.typed
                   else data.get(c.field or "")) or "") for c in columns]
    if run_id is not None:
        values.append(str(run_id))
    values.append(error_text(row.errors))
    return values


class _Layout:
    """What a report of some failed rows shows: their columns and the run (from the FailedRows, if it says)."""

    def __init__(self, failed: Iterable[ReportRow], columns: Sequence[ReportColumn] | None, run_id: int | None,
                 changes: Sequence[str] | None = None):
        known = getattr(failed, "columns", None)
        self.changes: tuple[str, ...] = tuple(changes if changes is not None else getattr(failed, "changes", ()))
        self.columns: tuple[ReportColumn, ...] = tuple(
            columns if columns is not None else known if known is not None else field_columns())
        self.run_id: int | None = run_id if run_id is not None else getattr(failed, "run_id", None)
        self.headers = report_headers(self.columns, self.run_id)
        # 0-based positions in a report row (Row is 0) of each field's column.
        self.position = {f: i for i, c in enumerate(self.columns, 1) for f in reversed(c.fields)}
        for field, shown_in in _SHOWN_IN.items():
            if field not in self.position and shown_in in self.position:
                self.position[field] = self.position[shown_in]
        # Row, Report of run and Errors: grey (0-based positions in a report row).
        self.info = {0, len(self.columns) + 1, *([len(self.columns) + 2] if self.run_id is not None else [])}


# -- CSV ----------------------------------------------------------------------------------------------
def _write_csv(failed: Iterable[ReportRow], out: IO[bytes], layout: _Layout) -> int:
    """UTF-8 CSV with a BOM (so Excel opens accents correctly), formula-like text defused with a `'`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([safe_cell(h) for h in layout.headers])
    columns, run_id = layout.columns, layout.run_id
    count = 0

    def flush() -> None:
        # Lone surrogates (from a file that was not valid UTF-8) cannot be encoded: they become `?`.
        out.write(buffer.getvalue().encode("utf-8", errors="replace"))
        buffer.seek(0)
        buffer.truncate()

    out.write(b"\xef\xbb\xbf")
    for row in failed:
        # safe_cell, inline: the values are text already.
        writer.writerow([str(row.source_row_number), *["'" + v if v.startswith(FORMULA_PREFIXES) else v
                                                       for v in _raw_values(row, columns, run_id)]])
        count += 1
        if count % _CSV_FLUSH_ROWS == 0:
            flush()
    flush()
    return count


# -- XLSX ---------------------------------------------------------------------------------------------
# The workbook is written by hand as SpreadsheetML, straight into the zip: openpyxl's write-only mode
# took about 0.5 ms a row (55 s for 100,000 rows) and keeps every comment in memory until the end.
# Here the sheet streams into its zip part, comments and their VML shapes stream to temporary files,
# and only the first rows (for the column widths) are ever held.
_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_XML_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_CT = "application/vnd.openxmlformats-officedocument."
# Cell styles (indexes into cellXfs below).
_S_HEADER, _S_BAD, _S_INFO, _S_TITLE, _S_WRAP, _S_INFO_HEADER = 1, 2, 3, 4, 5, 6
_STYLES = (
    _XML_DECL + f'<styleSheet xmlns="{_MAIN_NS}">'
    '<fonts count="3">'
    '<font><sz val="11"/><name val="Calibri"/><family val="2"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font>'
    '<font><b/><sz val="14"/><name val="Calibri"/><family val="2"/></font>'
    '</fonts>'
    '<fills count="4">'
    '<fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill>'
    f'<fill><patternFill patternType="solid"><fgColor rgb="{_BAD_COLOUR}"/><bgColor indexed="64"/></patternFill></fill>'
    f'<fill><patternFill patternType="solid"><fgColor rgb="{_INFO_COLOUR}"/><bgColor indexed="64"/></patternFill></fill>'
    '</fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="7">'
    '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
    '<xf numFmtId="0" fontId="0" fillId="2" borderId="0" xfId="0" applyFill="1"/>'
    '<xf numFmtId="0" fontId="0" fillId="3" borderId="0" xfId="0" applyFill="1"/>'
    '<xf numFmtId="0" fontId="2" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
    '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0" applyAlignment="1">'
    '<alignment vertical="top" wrapText="1"/></xf>'
    '<xf numFmtId="0" fontId="1" fillId="3" borderId="0" xfId="0" applyFont="1" applyFill="1"/>'
    '</cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    '</styleSheet>'
)
_SHEET_HEAD = f'<worksheet xmlns="{_MAIN_NS}" xmlns:r="{_REL_NS}">'
_VML_SHAPE = (
    '<v:shape id="_x0000_s{id}" type="#_x0000_t202" style="position:absolute;margin-left:59.25pt;'
    'margin-top:1.5pt;width:225pt;height:60pt;z-index:{z};visibility:hidden" fillcolor="#ffffe1" '
    'o:insetmode="auto"><v:fill color2="#ffffe1"/><v:shadow on="t" color="black" obscured="t"/>'
    '<v:path o:connecttype="none"/><v:textbox style="mso-direction-alt:auto">'
    '<div style="text-align:left"></div></v:textbox><x:ClientData ObjectType="Note"><x:MoveWithCells/>'
    '<x:SizeWithCells/><x:Anchor>{anchor}</x:Anchor><x:AutoFill>False</x:AutoFill>'
    '<x:Row>{row}</x:Row><x:Column>{col}</x:Column></x:ClientData></v:shape>\n'
)
_SPACES = " \t\n\r"
_EXCEL_ESCAPE = re.compile(r"_(x[0-9A-Fa-f]{4}_)")
_WRITE_EVERY = 500  # rows gathered before one write to the zip part


def _xml(text: str) -> str:
    """Element text: XML-escaped, `\r` kept, and Excel's own `_x000D_` escapes taken literally."""
    if "_x" in text:
        text = _EXCEL_ESCAPE.sub(r"_x005F_\1", text)
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    if "\r" in text:
        text = text.replace("\r", "&#13;")
    return text


def _t(text: str) -> str:
    """A `<t>` element: spaces at either end are kept."""
    if text[0] in _SPACES or text[-1] in _SPACES:
        return f'<t xml:space="preserve">{_xml(text)}</t>'
    return f"<t>{_xml(text)}</t>"


def _letters(count: int) -> list[str]:
    letters = []
    for n in range(1, count + 1):
        name = ""
        while n:
            n, rest = divmod(n - 1, 26)
            name = chr(65 + rest) + name
        letters.append(name)
    return letters


def _width(text: str) -> int:
    longest = max((len(line) for line in text.split("\n")), default=0)
    return min(longest + 2, MAX_COLUMN_WIDTH)


def _cols(widths: Sequence[float]) -> str:
    return "<cols>" + "".join(
        f'<col min="{i}" max="{i}" width="{w}" customWidth="1"/>' for i, w in enumerate(widths, 1)
    ) + "</cols>"


class _Comments:
    """Cell comments and their VML shapes, streamed to temporary files until the workbook is assembled."""

    def __init__(self, notes: IO[bytes], shapes: IO[bytes]) -> None:
        self.count = 0
        self.notes, self.shapes = notes, shapes

    def add(self, row: int, col: int, ref: str, text: str) -> None:
        """A comment on the cell `ref` (row and col 0-based)."""
        self.count += 1
        self.notes.write(
            f'<comment ref="{ref}" authorId="0"><text>{_t(text)}</text></comment>'.encode()
        )
        anchor = f"{col + 1}, 15, {max(row - 1, 0)}, 10, {col + 4}, 15, {row + 3}, 4"
        self.shapes.write(_VML_SHAPE.format(id=1024 + self.count, z=self.count, anchor=anchor, row=row,
                                            col=col).encode())

    def write(self, archive: zipfile.ZipFile) -> None:
        with archive.open("xl/comments1.xml", "w") as part:
            part.write((_XML_DECL + f'<comments xmlns="{_MAIN_NS}"><authors><author>importer</author>'
                        "</authors><commentList>").encode())
            self.notes.seek(0)
            shutil.copyfileobj(self.notes, part)
            part.write(b"</commentList></comments>")
        # Shape ids live in blocks of 1024 that the idmap must list.
        blocks = ",".join(str(n) for n in range(1, 2 + self.count // 1024))
        with archive.open("xl/drawings/vmlDrawing1.vml", "w") as part:
            part.write((
                '<xml xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:office:office" '
                'xmlns:x="urn:schemas-microsoft-com:office:excel">\n'
                f'<o:shapelayout v:ext="edit"><o:idmap v:ext="edit" data="{blocks}"/></o:shapelayout>\n'
                '<v:shapetype id="_x0000_t202" coordsize="21600,21600" o:spt="202" '
                'path="m,l,21600r21600,l21600,xe"><v:stroke joinstyle="miter"/>'
                '<v:path gradientshapeok="t" o:connecttype="rect"/></v:shapetype>\n'
            ).encode())
            self.shapes.seek(0)
            shutil.copyfileobj(self.shapes, part)
            part.write(b"</xml>")


def _failed_rows_sheet(part: IO[bytes], failed: Iterable[ReportRow], comments: _Comments,
                      layout: _Layout) -> tuple[int, int, bool]:
    """Stream the "Failed rows" sheet; (rows written, rows commented, comments capped)."""
    headers = layout.headers
    letters = _letters(len(headers))
    columns, shown, run_id, info = layout.position, layout.columns, layout.run_id, layout.info

    # Widths must come before the rows: fit them to the first rows, held briefly.
    rows: Iterator[ReportRow] = iter(failed)
    sample = list(islice(rows, WIDTH_SAMPLE_ROWS))
    widths = [_width(h) + 1 for h in headers]
    for row in sample:
        texts = [str(row.source_row_number), *_raw_values(row, shown, run_id)]
        widths = [max(w, _width(t)) for w, t in zip(widths, texts, strict=True)]
    part.write((
        _XML_DECL + _SHEET_HEAD
        + '<sheetViews><sheetView tabSelected="1" workbookViewId="0">'
        '<pane xSplit="1" ySplit="1" topLeftCell="B2" activePane="bottomRight" state="frozen"/>'
        '<selection pane="topRight"/><selection pane="bottomLeft"/>'
        '<selection pane="bottomRight" activeCell="B2" sqref="B2"/></sheetView></sheetViews>'
        '<sheetFormatPr defaultRowHeight="15"/>' + _cols(widths) + "<sheetData>"
        + '<row r="1">'
        + "".join(
            f'<c r="{letter}1" s="{_S_INFO_HEADER if i in info else _S_HEADER}" t="inlineStr"><is>{_t(xlsx_text(h) or " ")}</is></c>'
            for i, (letter, h) in enumerate(zip(letters, headers, strict=True))
        )
        + "</row>"
    ).encode())

    count = commented = 0
    capped = False
    pending: list[str] = []
    # Per column, made once: the start of its cells' tag, and their style attribute when the value passed
    # and when it failed (Row, Report of run and Errors are grey either way).
    starts = [f'<c r="{letter}' for letter in letters]
    passed = [f' s="{_S_INFO}"' if i in info else "" for i in range(len(headers))]
    failed_style = [f' s="{_S_INFO}"' if i in info else f' s="{_S_BAD}"' for i in range(len(headers))]
    for row in chain(sample, rows):
        r = count + 2
        messages: dict[int, list[str]] = {}
        for error in row.errors:
            position = columns.get(error.field)
            if position is not None:
                messages.setdefault(position, []).append(error.message)
        cells = [f'<row r="{r}"><c r="A{r}" s="{_S_INFO}"><v>{int(row.source_row_number)}</v></c>']
        for position, text in enumerate(_raw_values(row, shown, run_id), 1):
            s = failed_style[position] if position in messages else passed[position]
            if text:
                # Most cells are short printable ASCII with nothing to escape: `_t(xlsx_text(text))` is
                # then `<t>text</t>`, told by a few string tests instead of two calls per cell.
                if (text.isascii() and text.isprintable() and len(text) <= XLSX_CELL_LIMIT and text[0] != " "
                        and text[-1] != " " and "&" not in text and "<" not in text and ">" not in text
                        and "_x" not in text):
                    cells.append(f'{starts[position]}{r}"{s} t="inlineStr"><is><t>{text}</t></is></c>')
                else:
                    cells.append(f'{starts[position]}{r}"{s} t="inlineStr"><is>{_t(xlsx_text(text))}</is></c>')
            elif s:
                cells.append(f'{starts[position]}{r}"{s}/>')
        cells.append("</row>")
        pending.append("".join(cells))
        if messages:
            if count < COMMENTED_ROWS:
                commented += 1
                for position, texts in messages.items():
                    comments.add(r - 1, position, f"{letters[position]}{r}", xlsx_text("\n".join(texts)))
            else:
                capped = True
        count += 1
        if count == len(sample):
            sample.clear()  # hand the sampled rows back
        if len(pending) >= _WRITE_EVERY:
            part.write("".join(pending).encode())
            pending.clear()
    part.write("".join(pending).encode())
    part.write(b"</sheetData>")
    if comments.count:
        part.write(b'<legacyDrawing r:id="rId1"/>')
    part.write(b"</worksheet>")
    return count, commented, capped


def _instructions_sheet(count: int, commented: int, capped: bool, layout: _Layout) -> str:
    """The second sheet: what the colours mean and what to do with the report."""
    own = [c.header for c in layout.columns if c.field is None]
    typed = [c.header for c in layout.columns if c.field is not None and c.typed]
    info = f"Row, {RUN_HEADER} and Errors" if layout.run_id is not None else "Row and Errors"
    lines: list[tuple[tuple[str, int] | None, tuple[str, int] | None]] = [
        (("How to use this report", _S_TITLE), None),
        (None, (f"The sheet '{FAILED_SHEET}' lists the {count:,} row(s) that failed to import, with their "
                "values as they were in your file, their row number in it (Row) and why they failed (Errors).",
                _S_WRAP)),
    ]
    fields = [c.header for c in layout.columns if c.field is not None and not c.typed]
    if typed and fields:
        lines.append((None, (f"Your columns keep your headers and values; {', '.join(fields)} show the values "
                             "as they were read (those columns' headers would not be recognised again).",
                             _S_WRAP)))
    elif fields:
        lines.append((None, (f"{', '.join(fields)} show the values as they were read from your file.", _S_WRAP)))
    if layout.run_id is not None:
        lines.append((None, (f"It is the report of import run #{layout.run_id} ({RUN_HEADER} column).", _S_WRAP)))
    lines += [
        (None, None),
        (("Colours", _S_HEADER), None),
        (("", _S_BAD), ("Light red: a value that failed. Its comment (point at the cell) and the Errors column "
                        "say why.", _S_WRAP)),
        (("", _S_INFO), (f"Grey: {info}, for information. Keep them: when you upload this file again, Row keeps "
                         "your file's own row numbers" + (f" and the new run is linked to run #{layout.run_id}"
                                                          if layout.run_id is not None else "")
                         + "; they are never imported.", _S_WRAP)),
        (("", 0), ("No colour: a value that passed" + (f", or a column of your file that is not imported "
                                                     f"({', '.join(own)}), kept as it was" if own else "")
                   + ".", _S_WRAP)),
    ]
    if capped:
        lines.append((None, (f"Comments show the messages of the first {commented:,} failing rows; every "
                             "failing cell is coloured; the Errors column has every message.", _S_WRAP)))
    if layout.changes:
        lines += [(None, None), (("Changed while reading", _S_HEADER), None),
                  (None, ("Besides spaces, capital letters and phone punctuation, reading your file changed "
                          "these values (in the rows that were imported too):", _S_WRAP))]
        lines += [(("", 0), (xlsx_text(line), _S_WRAP)) for line in layout.changes]
    lines += [
        (None, None),
        (("What to do", _S_HEADER), None),
        (("1.", 0), (f"Fix the light red cells on the sheet '{FAILED_SHEET}'. You may delete the rows you do "
                     "not want to import.", _S_WRAP)),
        (("2.", 0), (f"Keep the header row and the grey columns, and keep '{FAILED_SHEET}' as the first sheet. "
                     "Save the file as it is (.xlsx, or .csv).", _S_WRAP)),
        (("3.", 0), ("Upload it again. The importer reads the first sheet whose header names the required "
                     f"columns; the grey columns ({info}) and this sheet are not imported.", _S_WRAP)),
    ]
    rows = []
    for r, pair in enumerate(lines, 1):
        cells = []
        for letter, cell in zip("AB", pair, strict=True):
            if cell is None:
                continue
            text, style = cell
            s = f' s="{style}"' if style else ""
            body = f' t="inlineStr"><is>{_t(text)}</is></c>' if text else "/>"
            cells.append(f'<c r="{letter}{r}"{s}{body}')
        rows.append(f'<row r="{r}">{"".join(cells)}</row>')
    return (_XML_DECL + _SHEET_HEAD + '<sheetViews><sheetView workbookViewId="0"/></sheetViews>'
            '<sheetFormatPr defaultRowHeight="15"/>' + _cols([14, 100]) + "<sheetData>" + "".join(rows)
            + "</sheetData></worksheet>")


_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
_SHEET1_RELS = (
    _XML_DECL + f'<Relationships xmlns="{_PKG_REL_NS}">'
    f'<Relationship Id="rId1" Type="{_RELS}vmlDrawing" Target="../drawings/vmlDrawing1.vml"/>'
    f'<Relationship Id="rId2" Type="{_RELS}comments" Target="../comments1.xml"/></Relationships>'
)


def _content_types(comments: bool) -> str:
    overrides = [
        ("/xl/workbook.xml", "spreadsheetml.sheet.main+xml"),
        ("/xl/worksheets/sheet1.xml", "spreadsheetml.worksheet+xml"),
        ("/xl/worksheets/sheet2.xml", "spreadsheetml.worksheet+xml"),
        ("/xl/styles.xml", "spreadsheetml.styles+xml"),
    ]
    if comments:
        overrides.append(("/xl/comments1.xml", "spreadsheetml.comments+xml"))
    return (
        _XML_DECL + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Default Extension="vml" ContentType="{_CT}vmlDrawing"/>'
        + "".join(f'<Override PartName="{name}" ContentType="{_CT}{kind}"/>' for name, kind in overrides)
        + "</Types>"
    )


def _package_parts() -> dict[str, str]:
    """The workbook's fixed parts: package relationships, the workbook, its relationships and styles."""
    return {
        "_rels/.rels": (
            _XML_DECL + f'<Relationships xmlns="{_PKG_REL_NS}">'
            f'<Relationship Id="rId1" Type="{_RELS}officeDocument" Target="xl/workbook.xml"/></Relationships>'
        ),
        "xl/workbook.xml": (
            _XML_DECL + f'<workbook xmlns="{_MAIN_NS}" xmlns:r="{_REL_NS}">'
            '<bookViews><workbookView activeTab="0"/></bookViews><sheets>'
            f'<sheet name="{FAILED_SHEET}" sheetId="1" r:id="rId1"/>'
            f'<sheet name="{INSTRUCTIONS_SHEET}" sheetId="2" r:id="rId2"/>'
            "</sheets></workbook>"
        ),
        "xl/_rels/workbook.xml.rels": (
            _XML_DECL + f'<Relationships xmlns="{_PKG_REL_NS}">'
            f'<Relationship Id="rId1" Type="{_RELS}worksheet" Target="worksheets/sheet1.xml"/>'
            f'<Relationship Id="rId2" Type="{_RELS}worksheet" Target="worksheets/sheet2.xml"/>'
            f'<Relationship Id="rId3" Type="{_RELS}styles" Target="styles.xml"/></Relationships>'
        ),
        "xl/styles.xml": _STYLES,
    }


def _write_xlsx(failed: Iterable[ReportRow], out: IO[bytes], layout: _Layout) -> int:
    """The workbook: "Failed rows" (failing cells filled, the first rows' ones commented), "Instructions"."""
    parts = _package_parts()
    with (tempfile.TemporaryFile() as notes, tempfile.TemporaryFile() as shapes,
          zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=_ZIP_LEVEL) as archive):
        # The package relationships first: tools that sniff a zip's first part then see a workbook.
        archive.writestr("_rels/.rels", parts.pop("_rels/.rels"))
        for name, text in parts.items():
            archive.writestr(name, text)
        comments = _Comments(notes, shapes)
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as part:
            count, commented, capped = _failed_rows_sheet(part, failed, comments, layout)
        archive.writestr("xl/worksheets/sheet2.xml", _instructions_sheet(count, commented, capped, layout))
        if comments.count:
            comments.write(archive)
            archive.writestr("xl/worksheets/_rels/sheet1.xml.rels", _SHEET1_RELS)
        archive.writestr("[Content_Types].xml", _content_types(bool(comments.count)))
    return count


# -- the API ------------------------------------------------------------------------------------------
def write_report(failed: Iterable[ReportRow], fmt: str, out: IO[bytes], *,
                 columns: Sequence[ReportColumn] | None = None, run_id: int | None = None,
                 changes: Sequence[str] | None = None) -> int:
    """Stream the report in `fmt` ("csv" or "xlsx") to the binary file `out`; the number of rows written.

    `failed` is consumed once, in order. Its columns (the file's layout) and run come from `columns` and
    `run_id`, else from `failed` itself (results.FailedRows carries both), else every field and no run.
    `out` is left open. `changes` (else `failed.changes`): what reading changed beyond formatting, a line
    per rule, which the XLSX's Instructions sheet lists.
    """
    layout = _Layout(failed, columns, run_id, changes)
    if fmt == "csv":
        return _write_csv(failed, out, layout)
    if fmt == "xlsx":
        return _write_xlsx(failed, out, layout)
    raise ValueError(f"report format must be one of {', '.join(REPORT_FORMATS)}, not {fmt!r}")


def report_bytes(failed: Iterable[ReportRow], fmt: str) -> bytes:
    """The whole report as bytes (for a download button); built in a temporary file past 16 MB."""
    with tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024) as buffer:
        write_report(failed, fmt, buffer)
        buffer.seek(0)
        return buffer.read()


def report_format_for(path: str) -> str:
    """The report format a path asks for by its ending; ValueError for anything else."""
    ending = path.rsplit(".", 1)[-1].lower() if "." in path else ""
    if ending not in REPORT_FORMATS:
        raise ValueError(f"the report path {path!r} must end in .csv or .xlsx")
    return ending
