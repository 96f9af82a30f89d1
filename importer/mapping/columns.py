"""Header detection and header -> field mapping (synonyms, fuzzy), and the positional legacy layout.

Beyond the record's fields a column may feed FULL_NAME, split into first and last name (split_full_name);
a visible column beats a hidden one for the same field; footer and note rows are skipped and listed
(SheetNotes), whose ignored columns' values importer.review.conversions.mapping_warnings judges.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import pandas as pd

from importer.checks.changes import EMPTY_CHANGES, Changes
from importer.errors import LimitExceeded, NoHeader, UnreadableFile, UsageError
from importer.intake.delimited import PROFILE_ROWS, SheetRows, SkippedRow, note_reason, row_limit
from importer.intake.readers import SpreadsheetFile
from importer.mapping.headers import (  # noqa: F401 - match_header and normalise are imported from here too
    FULL_NAME,
    _score,
    match_header,
    normalise,
)
from importer.mapping.names import (  # noqa: F401 - split_preview is imported from here too
    full_name_changes,
    honorifics,
    read_businesses,
    split_full_name,
    split_preview,
)
from schemas.customer import FIELD_NAMES, LEGACY_POSITIONAL_FIELDS, REQUIRED_FIELDS, label_of

NAME_PARTS = ("first_name", "last_name")

# Where people find the template, and the command that writes it (an error's detail: the CLI prints it, the
# dashboard keeps it out of the analyst's text).
TEMPLATE_HINT = "Download the template on the Upload page"
TEMPLATE_COMMAND = "From the command line: python -m importer template customers.xlsx"

# The header is looked for in the first SCAN_ROWS rows (Excel rows, blank ones included).
SCAN_ROWS = 30


def mapping_choices() -> list[str | None]:
    """What a column may feed, for a select box: None (ignore it), every field, then FULL_NAME."""
    return [None, *FIELD_NAMES, FULL_NAME]


def choice_label(choice: str | None) -> str:
    """A mapping choice in words: `(ignore)`, `Phone`, `Full name → First Name + Last Name`."""
    if choice is None:
        return "(ignore)"
    if choice == FULL_NAME:
        return "Full name → First Name + Last Name"
    return label_of(choice)


def fed_fields(choice: str | None) -> tuple[str, ...]:
    """The record's fields a mapping choice feeds: FULL_NAME -> (first_name, last_name); None -> ()."""
    if choice is None:
        return ()
    return NAME_PARTS if choice == FULL_NAME else (choice,)


@dataclass(frozen=True)
class ColumnMapping:
    """Which column feeds which field, and where the header was."""

    header_row: int | None  # Excel row number (1-based) of the header; None when positional
    headers: tuple[str, ...]  # header cell texts; positional: ("Column A", "Column B", ...)
    fields: tuple[str | None, ...]  # per column, the field it feeds (or FULL_NAME), or None (ignored)
    positional: bool
    hidden_columns: tuple[int, ...] = field(default=(), compare=False)  # columns hidden in the sheet

    @property
    def unknown_columns(self) -> tuple[str, ...]:
        """Non-blank headers that feed no field (listed to the user as ignored)."""
        return tuple(h for h, f in zip(self.headers, self.fields, strict=True) if f is None and h.strip())

    @property
    def missing_required(self) -> tuple[str, ...]:
        """Required field names that no column feeds (a FULL_NAME column feeds first and last name)."""
        fed = {f for choice in self.fields for f in fed_fields(choice)}
        return tuple(f for f in REQUIRED_FIELDS if f not in fed)

    def field_columns(self) -> dict[str, int]:
        """Field name (or FULL_NAME) -> index of the column that feeds it."""
        return {f: i for i, f in enumerate(self.fields) if f is not None}

    @property
    def full_name_column(self) -> int | None:
        """The column split into first and last name, if one is."""
        return self.field_columns().get(FULL_NAME)

    def with_fields(self, fields: Sequence[str | None]) -> ColumnMapping:
        """The user's choice of field per column (None = ignore it).

        UsageError, in words for the user, when a field comes from two columns or a required field
        from none: `Each field can come from one column only; pick one column for: Phone.`
        """
        if len(fields) != len(self.headers):
            raise UsageError(f"the mapping has {len(self.headers)} columns, not {len(fields)}")
        unknown = sorted({f for f in fields if f is not None and f not in FIELD_NAMES and f != FULL_NAME})
        if unknown:
            raise UsageError(f"unknown field(s) {', '.join(unknown)}; fields are: {', '.join(FIELD_NAMES)}, {FULL_NAME}")
        chosen = [f for choice in fields for f in fed_fields(choice)]
        twice = sorted({label_of(f) for f in chosen if chosen.count(f) > 1})
        if twice:
            why = " (a full name column already gives first and last name)" if FULL_NAME in fields else ""
            raise UsageError(
                f"Each field can come from one column only; pick one column for: {', '.join(twice)}{why}."
            )
        new = replace(self, fields=tuple(fields))
        if new.missing_required:
            missing = ", ".join(label_of(f) for f in new.missing_required)
            raise UsageError(f"Still missing required field(s): {missing}. Pick the column that holds each.")
        return new

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, stored with the run."""
        return {
            "header_row": self.header_row,
            "headers": list(self.headers),
            "fields": list(self.fields),
            "positional": self.positional,
            "hidden_columns": list(self.hidden_columns),
            "unknown_columns": list(self.unknown_columns),
            "missing_required": list(self.missing_required),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnMapping:
        """The inverse of to_dict (derived keys are ignored)."""
        return cls(
            header_row=data["header_row"],
            headers=tuple(data["headers"]),
            fields=tuple(data["fields"]),
            positional=bool(data["positional"]),
            hidden_columns=tuple(int(c) for c in data.get("hidden_columns", ())),
        )


def _map_row(cells: list[str], hidden: frozenset[int] = frozenset()) -> tuple[str | None, ...]:
    """Fields of one candidate header row; each field goes to its surest visible column, a hidden one only
    when no visible column names it (ties: leftmost). A FULL_NAME column only when no column gives first
    or last name; a plain "Name" beside one of them gives the other (Name + Surname: the first name)."""
    scored = [(*_score(text), col) for col, text in enumerate(cells)]
    fields: list[str | None] = [None] * len(cells)
    taken: set[str] = set()
    for name, _certainty, col in sorted(scored, key=lambda s: (s[2] in hidden, -s[1], s[2])):
        if name is not None and name not in taken:
            fields[col] = name
            taken.add(name)
    given = [part for part in NAME_PARTS if part in taken]
    if FULL_NAME in taken and given:
        # A plain "Name" beside "Surname" is the first name; "Full Name" beside a name part is left out.
        col = fields.index(FULL_NAME)
        plain = normalise(cells[col]) in ("name", "names") and len(given) == 1
        fields[col] = next(p for p in NAME_PARTS if p not in given) if plain else None
    return tuple(fields)


def _column_name(index: int) -> str:
    """0 -> "Column A", 27 -> "Column AB"."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return f"Column {letters}"


def _is_blank(cells: list[str]) -> bool:
    return not any(str(c).strip() for c in cells)


def _looks_like_phone(text: str) -> bool:
    """Digits-ish: 0241234567, +233 24 123 4567, 241234567 (a number Excel stripped of its zero)."""
    digits = re.sub(r"[\s+\-().]", "", text)
    return digits.isdigit() and 7 <= len(digits) <= 15


def _expected_headers() -> str:
    return ", ".join(label_of(f) for f in FIELD_NAMES)


def detect_mapping(rows: list[list[str]], scan_rows: int = SCAN_ROWS) -> ColumnMapping:
    """Find the header row among the first scan_rows rows (titles above it skipped) and map its columns.

    rows may be SheetRows: its hidden_columns lose ties to visible ones and are kept on the mapping.
    """
    hidden: frozenset[int] = getattr(rows, "hidden_columns", frozenset())
    best: tuple[int, int, tuple[str | None, ...]] | None = None  # (matched, row index, fields)
    for index, cells in enumerate(rows[:scan_rows]):
        if _is_blank(cells):
            continue
        fields = _map_row(cells, hidden)
        matched = [f for f in fields if f]
        qualifies = len(matched) >= 2 and any(f in REQUIRED_FIELDS or f == FULL_NAME for f in matched)
        if qualifies and (best is None or len(matched) > best[0]):
            best = (len(matched), index, fields)
    if best is not None:
        _, index, fields = best
        headers = tuple(str(c) for c in rows[index])
        # Trailing blank header cells feed nothing; keep the tuple as wide as the header row.
        return ColumnMapping(index + 1, headers, fields, positional=False,
                             hidden_columns=tuple(sorted(c for c in hidden if c < len(headers))))
    first = next((cells for cells in rows if not _is_blank(cells)), None)
    if first is None:
        raise NoHeader("The sheet has no data: every row is blank.")
    if len(first) >= 5 and _looks_like_phone(first[4]):
        return _positional(max(len(cells) for cells in rows))
    raise NoHeader(
        f"No header row found in the first {scan_rows} rows. Expected column headers such as: "
        f"{_expected_headers()} (a header row needs at least two of them, one required). "
        f"Start from the upload template: {TEMPLATE_HINT}.", detail=TEMPLATE_COMMAND,
    )


def mapped_columns(mapping: ColumnMapping) -> tuple[int, ...]:
    """The columns a mapping reads, in order: the only ones worth keeping from each row."""
    return tuple(sorted(mapping.field_columns().values()))


@dataclass(frozen=True)
class SplitRecord:
    """Two consecutive CSV lines that look like one customer broken by a line break in a value not in quotes:
    a short row whose fields and the next row's make one row of the header's width."""

    first: int  # source row (CSV line) numbers
    second: int
    width: int  # the header's number of fields
    fields: tuple[int, int]  # the two lines' numbers of fields

    @property
    def message(self) -> str:
        return (f"Rows {self.first}-{self.second} look like one customer broken over two lines (a line break "
                f"inside a value that is not in quotes: {self.fields[0]} + {self.fields[1]} fields where the "
                f"header has {self.width}); join them")


@dataclass(frozen=True)
class SheetNotes:
    """What reading a sheet learned beside its customer rows, for the pages to show.

    skipped_rows: footer and note rows left out (never failures, never attempted), in row order.
    ignored_values: per column the file has but no field reads, its most common values and their counts
    (from the first rows only: csv_read.PROFILE_ROWS), for mapping_warnings.
    full_names: (row, text) of the first rows' full names, when a column was split (split_preview).
    """

    skipped_rows: tuple[SkippedRow, ...] = ()
    ignored_values: tuple[tuple[int, tuple[tuple[str, int], ...]], ...] = ()
    full_names: tuple[tuple[int, str], ...] = ()
    # CSV: customers that look broken over two lines (a line break in a value not in quotes), for Review's
    # "join" and the CLI (importer.intake.delimited.join_split_lines joins them in the file's bytes).
    split_records: tuple[SplitRecord, ...] = ()
    # What splitting full names changed beyond formatting (honorifics dropped): importer.checks.changes.
    changes: Changes = EMPTY_CHANGES

    def warnings(self) -> list[str]:
        """The notes in words for a page, the CLI or a report: broken records, then skipped rows."""
        return [r.message for r in self.split_records] + [
            f"Row {r.row} skipped: {r.reason}" for r in self.skipped_rows]

    def values_of(self, column: int) -> dict[str, int]:
        """The counted values of one ignored column (empty when it was not counted)."""
        return dict(dict(self.ignored_values).get(column, ()))


EMPTY_NOTES = SheetNotes()
FULL_NAME_SAMPLE = 10


def sheet_notes(rows: object) -> SheetNotes:
    """The notes apply_mapping left on the rows it read (EMPTY_NOTES for plain lists)."""
    notes = getattr(rows, "sheet_notes", None)
    return notes if isinstance(notes, SheetNotes) else EMPTY_NOTES


def _skipped(rows: SheetRows, mapping: ColumnMapping, start: int) -> dict[int, SkippedRow]:
    """The note rows (SheetRows.notes) under the header that are footers or notes, not customers."""
    columns = mapping.field_columns()
    names = [columns[f] for f in (*NAME_PARTS, FULL_NAME, "shipping_mark", "company_name") if f in columns]
    skipped: dict[int, SkippedRow] = {}
    for index, cells in rows.notes.items():
        if index < start:
            continue
        reason = note_reason(cells, columns.get("phone"), names, list(columns.values()))
        if reason is not None:
            text = " | ".join(t for _, t in cells)
            skipped[index] = SkippedRow(index + 1, text[:200] + ("…" if len(text) > 200 else ""), reason)
    return skipped


def _ignored_values(
    rows: SheetRows, mapping: ColumnMapping, start: int, skipped: dict[int, SkippedRow]
) -> tuple[tuple[int, tuple[tuple[str, int], ...]], ...]:
    """The values of the named columns no field reads, counted over the first PROFILE_ROWS data rows.

    A column the rows hold (kept for the report) is counted here, skipping footers; one they left out
    was counted as it was read (SheetRows.profile), less the header, title rows and skipped rows.
    """
    position = {c: j for j, c in enumerate(rows.columns)} if rows.columns is not None else None
    found = []
    for column, (header, choice) in enumerate(zip(mapping.headers, mapping.fields, strict=True)):
        if choice is not None or not header.strip():
            continue
        at = column if position is None else position.get(column)
        if at is not None:
            counts: Counter[str] = Counter()
            taken = 0
            for index in range(start, len(rows)):
                if taken >= PROFILE_ROWS:
                    break
                cells = rows[index]
                if index in skipped or _is_blank(cells):
                    continue
                taken += 1
                text = str(cells[at]).strip() if at < len(cells) else ""
                if text:
                    counts[text] += 1
        elif column in rows.profile:
            counts = rows.profile[column].copy()
            if start:
                counts[header.strip()] -= 1
            for index, noted in rows.notes.items():
                if index < start or index in skipped:
                    counts.subtract(text for c, text in noted if c == column)
        else:
            continue
        found.append((column, tuple((v, n) for v, n in counts.most_common(50) if n > 0)))
    return tuple(found)


REPEATED_HEADER = "a repeated header row (the header again under the data, as where two exports were joined)"


def _repeated_headers(rows: list[list[str]], start: int, positions: Sequence[int],
                      skipped: dict[int, SkippedRow]) -> dict[int, SkippedRow]:
    """Rows under the header whose mapped cells repeat the header's (a file that joins two exports): skipped
    and listed, never a failing customer. One comparison per row unless its first mapped cell is a header."""
    header = rows[start - 1]
    texts = [normalise(str(header[p])) if p < len(header) else "" for p in positions]
    if not positions or sum(bool(t) for t in texts) < 2:
        return {}
    first = positions[0]
    probe = str(header[first]).strip().casefold() if first < len(header) else ""
    found: dict[int, SkippedRow] = {}
    for index in range(start, len(rows)):
        cells = rows[index]
        if len(cells) <= first or str(cells[first]).strip().casefold() != probe or index in skipped:
            continue
        if [normalise(str(cells[p])) if p < len(cells) else "" for p in positions] == texts:
            text = " | ".join(str(c).strip() for c in cells if str(c).strip())
            found[index] = SkippedRow(index + 1, text[:200], REPEATED_HEADER)
    return found


def split_records(rows: SheetRows, start: int, numbers: Sequence[int],
                  skipped: dict[int, SkippedRow]) -> tuple[SplitRecord, ...]:
    """CSV rows that look like one customer broken over two lines: two consecutive data lines whose numbers of
    fields add up to the header's plus one (the broken value counted in both), the second short of the header.

    `1,Alice,First line` + `second line` under `id,name,notes` (3 + 1 = 3 + 1), or `KSI-4,Ama,Ow` + `usu,024...`.
    """
    counts = rows.field_counts
    if counts is None or not start or start > len(counts) or not numbers:
        return ()
    width = counts[start - 1]
    if width < 3:
        return ()
    found: list[SplitRecord] = []
    data = set(numbers)
    line = 0
    ordered = list(numbers)
    for a, b in zip(ordered, ordered[1:], strict=False):
        if b != a + 1 or a <= line or a - 1 in skipped or b - 1 in skipped or b > len(counts):
            continue
        n1, n2 = counts[a - 1], counts[b - 1]
        if n1 and n2 and n2 < width and n1 <= width and n1 + n2 - 1 == width and a in data:
            found.append(SplitRecord(a, b, width, (n1, n2)))
            line = b
    return tuple(found)


def apply_mapping(rows: list[list[str]], mapping: ColumnMapping, max_rows: int) -> pd.DataFrame:
    """Rows under the header as a frame of FIELD_NAMES (text, "" for blank), indexed by Excel row number.

    `rows` may hold only some columns (SheetRows from choose_sheet); a mapping that reads others (a
    user's override) has the sheet read again for them. Footer and note rows are left out and listed, with
    the rest of what the read learned, in `sheet_notes(rows)`; a FULL_NAME column fills first and last name.
    """
    given = rows
    columns = mapping.field_columns()
    if isinstance(rows, SheetRows) and rows.columns is not None:
        if not set(columns.values()) <= set(rows.columns):
            if rows.reread is None:
                raise ValueError("these rows do not hold the columns the mapping reads")
            rows = rows.reread(mapped_columns(mapping))
        position = {c: j for j, c in enumerate(rows.columns or ())}
        positions = {f: position[c] for f, c in columns.items()}
    else:
        positions = dict(columns)
    filled = rows.filled if isinstance(rows, SheetRows) else ()
    start = 0 if mapping.positional or mapping.header_row is None else mapping.header_row
    skipped = _skipped(rows, mapping, start) if isinstance(rows, SheetRows) else {}
    if start:
        skipped.update(_repeated_headers(rows, start, sorted(positions.values()), skipped))
    read = [*FIELD_NAMES, FULL_NAME] if FULL_NAME in positions else list(FIELD_NAMES)
    data: dict[str, list[str]] = {f: [] for f in read}
    numbers: list[int] = []
    for index in range(start, len(rows)):
        cells = rows[index]
        if (_is_blank(cells) and index not in filled) or index in skipped:
            continue  # blank rows are skipped and not counted; footers and notes are listed
        if len(numbers) >= max_rows:
            raise row_limit("The file", max_rows)
        numbers.append(index + 1)
        for name in read:
            col = positions.get(name)
            data[name].append(str(cells[col]) if col is not None and col < len(cells) else "")
    index = pd.Index(numbers, name="source_row_number", dtype="int64")
    full_names: tuple[tuple[int, str], ...] = ()
    changes = EMPTY_CHANGES
    if FULL_NAME in positions:
        full = pd.Series(data.pop(FULL_NAME), index=index, dtype="str")
        data["first_name"], data["last_name"] = (part.tolist() for part in split_full_name(full))
        full_names = tuple(zip(numbers[:FULL_NAME_SAMPLE], full.iloc[:FULL_NAME_SAMPLE].tolist(), strict=True))
        changes = full_name_changes(full).merged(read_businesses(data, full))
    if isinstance(given, SheetRows):
        given.sheet_notes = SheetNotes(
            skipped_rows=tuple(skipped[i] for i in sorted(skipped)),
            ignored_values=_ignored_values(rows, mapping, start, skipped) if isinstance(rows, SheetRows) else (),
            full_names=full_names,
            split_records=split_records(rows, start, numbers, skipped) if isinstance(rows, SheetRows) else (),
            changes=changes,
        )
    return pd.DataFrame(data, index=index, columns=list(FIELD_NAMES), dtype="str")


def one_word_names(original: pd.DataFrame, mapping: ColumnMapping) -> list[tuple[int, str]]:
    """(row, message) for each row whose full name was one word, so its last name is blank (FULL_NAME only)."""
    if mapping.full_name_column is None or original.empty:
        return []
    last_blank = original["last_name"].fillna("").str.strip() == ""
    first = original["first_name"].fillna("").str.strip()
    hit = last_blank & (first != "") & ~first.str.contains(" ", regex=False)
    header = mapping.headers[mapping.full_name_column].strip() or "the name column"
    return [
        (int(row), f"Row {row}: {header} {name!r} is one word, so the last name is blank; type the customer's "
                   "last name in the Last Name cell (or exclude the row)")
        for row, name in zip(original.index[hit.to_numpy()], first[hit].tolist(), strict=True)
    ]


def choose_sheet(
    file: SpreadsheetFile, sheet: str | None, limit: int, mapping: ColumnMapping | None = None,
    also: Callable[[ColumnMapping], Iterable[int]] | None = None,
) -> tuple[str, SheetRows, ColumnMapping]:
    """The named sheet, else the first whose header maps the required fields, else the first with a header.

    Only the first rows of each sheet are read to find its header; then the chosen sheet alone is read
    in full, so the row limit applies to it and not to a long sheet of notes before it, and only the
    columns that feed a field are kept (those of `mapping` when given: a user's override), and the ones
    `also` names for that mapping (the file's own columns a failure report gives back), so the sheet is
    read once. The mapping returned is the detected one, with every header, for the list of ignored columns.
    """
    if sheet is not None:
        if sheet not in file.sheet_names:
            raise UnreadableFile(
                f"{file.file_name} has no sheet named {sheet!r}; its sheets are: "
                + ", ".join(repr(s) for s in file.sheet_names)
            )
        chosen = (sheet, detect_mapping(_head(file, sheet, limit)))
    else:
        chosen = None
        for name in file.sheet_names:
            try:
                detected = detect_mapping(_head(file, name, limit))
            except NoHeader:
                continue
            if not detected.missing_required:
                chosen = (name, detected)
                break
            if chosen is None:
                chosen = (name, detected)
        if chosen is None:
            where = "" if file.format == "csv" else f" in any sheet ({', '.join(repr(s) for s in file.sheet_names)})"
            raise NoHeader(
                f"No header row found in {file.file_name}{where}. Expected column headers such as: "
                f"{_expected_headers()}. Start from the upload template: {TEMPLATE_HINT}.", detail=TEMPLATE_COMMAND,
            )
    assert chosen is not None  # the named sheet, or one with a header, or NoHeader above
    name, detected = chosen
    used = mapping or detected
    rows = _read(file, name, limit, tuple(sorted({*mapped_columns(used), *(also(used) if also else ())})))
    if detected.positional and rows.width > len(detected.headers):
        detected = _positional(rows.width)  # wider rows below the first ones
    return name, rows, detected


def _positional(width: int) -> ColumnMapping:
    """The legacy template layout over `width` columns."""
    headers = tuple(_column_name(i) for i in range(width))
    fields = tuple(LEGACY_POSITIONAL_FIELDS[i] if i < len(LEGACY_POSITIONAL_FIELDS) else None for i in range(width))
    return ColumnMapping(None, headers, fields, positional=True)


def _head(file: SpreadsheetFile, sheet: str, limit: int) -> SheetRows:
    """The rows detect_mapping looks at: the first SCAN_ROWS, and on to the first non-blank one."""
    return file.rows(sheet, limit + SCAN_ROWS, head=SCAN_ROWS)


def _read(file: SpreadsheetFile, sheet: str, limit: int, columns: tuple[int, ...]) -> SheetRows:
    """Read a sheet allowing for title and header rows, keeping `columns`; apply_mapping enforces the exact
    data-row limit. The rows can read the sheet again for other columns (a user's mapping)."""
    try:
        rows = file.rows(sheet, limit + SCAN_ROWS, columns=columns)
    except LimitExceeded as exc:
        if "(MAX_ROWS)" not in str(exc):
            raise
        # More than limit + SCAN_ROWS non-blank rows: certainly more than `limit` data rows.
        what = file.file_name if file.format == "csv" else f"The sheet {sheet!r} of {file.file_name}"
        raise row_limit(what, limit) from exc
    rows.reread = partial(_read, file, sheet, limit)
    return rows
