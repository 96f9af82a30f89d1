"""Reports that go back to the branch and come back fixed: the file's own columns, its row numbers, its run.

- The columns of a file are kept as typed, for the failure report only, under the branch's own headers
  (S/Mark, Customer Name, Location; and S/No, Remarks, ... that feed no field): `report_layout` says where
  each sits, `other_values` reads their text.
- When the uploaded file is one of our failure reports (its header has our `Row` and `Errors` columns),
  the `Row` values are the row numbers of the branch's own file: they become the source row numbers of
  this upload (`renumber`), so the next report names the branch's rows again, and the `Report of run`
  column names the run whose report it was (the new run records it as `fixes_run_id`). Row, Errors and
  Report of run feed no field and are not kept as the file's own columns.

Nothing here holds more than the upload's own frame does: one text column per kept column.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa

from importer.intake.delimited import SheetRows
from importer.mapping.columns import ColumnMapping, fed_fields, match_header, normalise
from importer.outcomes.failed_rows import ReportColumn
from importer.output.failure_report import ERRORS_HEADER, ROW_HEADER, RUN_HEADER
from schemas.customer import label_of

# A report keeps at most this many of the file's own columns (the first ones): each is one more string
# per row held while the file is read (100,000 rows x 240 unused columns cost 160 MB more at 50), and a
# sheet with 200 unused columns should not put 200 columns of text into every failed row.
MAX_OTHER_COLUMNS = 10
# Added to a column of the file that would feed a field if uploaded again (a "Phone" column the analyst
# left out), so the report does not turn it into a field on the way back.
NOT_IMPORTED = " (not imported)"
_REPORT_HEADERS = (ROW_HEADER, ERRORS_HEADER, RUN_HEADER)
_WHOLE_NUMBER = re.compile(r"^\s*(\d{1,10})(?:\.0*)?\s*$")
_MAX_ROW = 2**31 - 1


@dataclass(frozen=True)
class ReportUpload:
    """An uploaded file that is one of our failure reports.

    `fixes_run_id`: the run whose report it is (None for a dry run's report, or when its Report of run
    column was removed). `columns`: our own columns' indexes in the file (Row, Errors, Report of run).
    `renumbered`: (line of this file, row number given) for rows whose Row was blank, not a whole number or
    repeated an earlier row's: they are numbered after the largest Row.
    """

    fixes_run_id: int | None
    columns: tuple[int, ...]
    renumbered: tuple[tuple[int, int], ...] = ()

    def describe(self) -> str:
        """What the pages say about it: `The failure report of run #1: each row keeps its Row, the row
        number in the branch's file; the import will be linked to run #1.`"""
        whose = f"The failure report of run #{self.fixes_run_id}" if self.fixes_run_id else "A failure report"
        text = f"{whose}: each row keeps its Row, the row number in the branch's file"
        text += f"; the import will be linked to run #{self.fixes_run_id}." if self.fixes_run_id else "."
        if self.renumbered:
            lines = ", ".join(str(line) for line, _ in self.renumbered[:5])
            more = f" and {len(self.renumbered) - 5:,} more" if len(self.renumbered) > 5 else ""
            text += (f" {len(self.renumbered):,} row(s) without a usable Row (line {lines}{more} of this file) "
                     f"are numbered from {self.renumbered[0][1]:,} on.")
        return text


def report_columns(mapping: ColumnMapping) -> dict[str, int] | None:
    """{header: column index} of our report's own columns when the header row has Row and Errors, else None."""
    found: dict[str, int] = {}
    keys = {normalise(name): name for name in _REPORT_HEADERS}
    for index, (header, field) in enumerate(zip(mapping.headers, mapping.fields, strict=True)):
        name = keys.get(normalise(header))
        if field is None and name is not None:
            found.setdefault(name, index)
    return found if ROW_HEADER in found and ERRORS_HEADER in found else None


def _own_header(header: str, field: str, taken: set[str]) -> str | None:
    """The file's own header for a mapped column when uploading the report again maps it to the same
    field (`S/Mark`, `Customer Name`, `Location`); None when it would not (a header mapped by hand)."""
    text = " ".join(str(header).split())
    if not text or match_header(text) != field or normalise(text) in taken:
        return None
    return text


def report_layout(mapping: ColumnMapping, skip: Sequence[int] = ()) -> tuple[tuple[ReportColumn, ...], tuple[int, ...]]:
    """The report's columns in the file's order, and the indexes of the columns of the file whose cells it
    shows as typed (ReportColumn.typed, in that order).

    Each mapped column keeps the branch's own header and its cells as typed (a full name stays one
    column), when that header maps to the same field again; else it comes back as its field's label (a
    full-name column as First Name and Last Name) with the mapped values. Each named column that feeds no
    field keeps its header. Fields the file does not have are left out. A column whose header would feed
    a field, or repeats our own headers or an earlier column's, gets a header that will not
    (`Phone (not imported)`, `Notes (2)`).
    """
    reserved = {normalise(name) for name in _REPORT_HEADERS}
    reserved |= {normalise(label_of(f)) for choice in mapping.fields for f in fed_fields(choice)}
    own_headers: dict[int, str] = {}
    for index, (header, field) in enumerate(zip(mapping.headers, mapping.fields, strict=True)):
        if field is not None and index not in skip:
            text = _own_header(header, field, {normalise(h) for h in own_headers.values()})
            if text is not None:
                own_headers[index] = text
    reserved |= {normalise(h) for h in own_headers.values()}
    taken = set(reserved)
    columns: list[ReportColumn] = []
    kept: list[int] = []
    others = 0
    for index, (header, field) in enumerate(zip(mapping.headers, mapping.fields, strict=True)):
        if index in skip:
            continue
        if field is not None:
            fields = fed_fields(field)
            if index in own_headers:
                columns.append(ReportColumn(own_headers[index], fields[0], fields[1:], typed=True))
                kept.append(index)
            else:  # a full-name column comes back as First Name and Last Name, as it was split
                columns.extend(ReportColumn(label_of(f), f) for f in fields)
            continue
        text = " ".join(str(header).split())
        if not text or others >= MAX_OTHER_COLUMNS:
            continue
        others += 1
        if match_header(text) is not None or normalise(text) in reserved:
            text += NOT_IMPORTED
        name, copy = text, 1
        while normalise(name) in taken:
            copy += 1
            name = f"{text} ({copy})"
        taken.add(normalise(name))
        columns.append(ReportColumn(name, None))
        kept.append(index)
    return tuple(columns), tuple(kept)


def columns_to_read(rows: SheetRows, needed: Sequence[int]) -> tuple[int, ...] | None:
    """The columns to read the sheet again with when the rows lack some of `needed` (None: they hold them,
    or cannot be read again). The caller drops its rows before reading again, so two reads are never held."""
    if rows.columns is None or set(needed) <= set(rows.columns) or rows.reread is None:
        return None
    return tuple(sorted(set(rows.columns) | set(needed)))


def _positions(rows: SheetRows, columns: Sequence[int]) -> list[int]:
    """Where the sheet's `columns` sit in each of these rows (past the end for a column they lack)."""
    if rows.columns is None:
        return list(columns)
    position = {c: j for j, c in enumerate(rows.columns)}
    return [position.get(c, 1 << 30) for c in columns]


def _cells(rows: SheetRows, number: int, positions: Sequence[int]) -> list[str]:
    """The text at `positions` of Excel row `number` ("" for a cell the row lacks)."""
    cells = rows[number - 1] if number - 1 < len(rows) else []
    return [str(cells[c]) if c < len(cells) else "" for c in positions]


def other_values(rows: SheetRows, numbers: pd.Index, columns: Sequence[int], headers: Sequence[str],
                 text: pd.DataFrame | None = None, report: Sequence[ReportColumn] | None = None) -> pd.DataFrame:
    """The text of the file's own columns for the rows `numbers` (Excel row numbers), by report header.

    Built a column at a time; with `text` (the mapped frame) and `report` (the report's columns), a typed
    column holding exactly its field's text is that column of `text` (share_typed_columns), so the copy is
    dropped as soon as it is made rather than held beside the sheet's rows until the read ends."""
    index = numbers.copy()
    positions = _positions(rows, columns)
    built: dict[str, pd.Series] = {}
    lines = [rows[int(number) - 1] if int(number) - 1 < len(rows) else [] for number in numbers]
    for header, position in zip(headers, positions, strict=True):
        column = pd.Series([str(cells[position]) if position < len(cells) else "" for cells in lines],
                           index=index, dtype="str")
        shared = share_typed_columns(pd.DataFrame({header: column}), text, report) if text is not None else None
        if shared is not None:
            column = shared[header]
        built[header] = column
    return pd.DataFrame(built, index=index, columns=list(headers))


def share_typed_columns(others: pd.DataFrame | None, text: pd.DataFrame,
                        columns: Sequence[ReportColumn] | None) -> pd.DataFrame | None:
    """`others` (other_values') with each typed column that holds exactly its field's text in `text` (the
    checked upload's) replaced by that column: one Arrow array held once. A mapped column is kept as typed
    for the failure report, and until a fix changes its field the two are the same text: a 100,000-row
    upload held its seven mapped columns twice, 11 MB. Arrays are never written in place (a fix makes a
    new column), so the typed column keeps the file's text when its field changes."""
    if others is None or not columns or not others.index.equals(text.index):
        return others
    shared = None
    for column in columns:
        if not (column.typed and column.field and not column.also and column.header in others
                and column.field in text):
            continue
        mine, theirs = others[column.header], text[column.field]
        arrays = _arrow(mine), _arrow(theirs)
        if mine.dtype != theirs.dtype or arrays[0] is None or arrays[1] is None or not arrays[0].equals(arrays[1]):
            continue
        shared = others.copy(deep=False) if shared is None else shared
        shared[column.header] = theirs
    return others if shared is None else shared


def _arrow(column: pd.Series) -> pa.ChunkedArray | None:
    """A text column's Arrow data; None when it is not held in Arrow."""
    array = getattr(column.array, "_pa_array", None)
    return array if isinstance(array, pa.ChunkedArray) else None


def _whole_number(text: str) -> int | None:
    match = _WHOLE_NUMBER.match(text)
    value = int(match.group(1)) if match else 0
    return value if 0 < value <= _MAX_ROW else None


def renumber(frame: pd.DataFrame, others: pd.DataFrame, rows: SheetRows, found: dict[str, int],
             ) -> tuple[pd.DataFrame, pd.DataFrame, ReportUpload]:
    """A report's rows numbered by its Row column (the branch's own row numbers), sorted by them.

    A row whose Row is blank, not a whole number, or repeats an earlier row's is numbered after the
    largest one, and listed in ReportUpload.renumbered.
    """
    wanted = _positions(rows, [found[ROW_HEADER], *([found[RUN_HEADER]] if RUN_HEADER in found else [])])
    given: list[int | None] = []
    runs: Counter[int] = Counter()
    seen: set[int] = set()
    for number in frame.index:
        cells = _cells(rows, int(number), wanted)
        row = _whole_number(cells[0])
        if row is not None and row in seen:
            row = None
        if row is not None:
            seen.add(row)
        given.append(row)
        run = _whole_number(cells[1]) if len(cells) > 1 else None
        if run is not None:
            runs[run] += 1
    following = max(seen, default=0)
    numbers: list[int] = []
    renumbered: list[tuple[int, int]] = []
    for line, row in zip(frame.index, given, strict=True):
        if row is None:
            following += 1
            row = following
            renumbered.append((int(line), row))
        numbers.append(row)
    index = pd.Index(numbers, name=frame.index.name, dtype="int64")
    frame, others = frame.set_axis(index), others.set_axis(index)
    order = index.argsort(kind="stable")
    fixes = runs.most_common(1)[0][0] if runs else None
    report = ReportUpload(fixes, tuple(sorted(found.values())), tuple(renumbered))
    return frame.iloc[order], others.iloc[order], report
