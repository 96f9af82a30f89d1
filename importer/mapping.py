"""Header detection and header -> field mapping (synonyms, fuzzy), and the positional legacy layout."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache, partial
from typing import Any

import pandas as pd
from rapidfuzz import fuzz

from importer.csv_read import SheetRows, row_limit
from importer.errors import LimitExceeded, NoHeader, UnreadableFile, UsageError
from importer.read import SpreadsheetFile
from schemas.customer import FIELD_NAMES, FIELDS, LEGACY_POSITIONAL_FIELDS, REQUIRED_FIELDS, label_of

# The header is looked for in the first SCAN_ROWS rows (Excel rows, blank ones included).
SCAN_ROWS = 30
FUZZY_MIN_SCORE = 88
# Fuzzy matching only for texts this long: "Date" is 89% like "state" but means nothing of ours.
FUZZY_MIN_LENGTH = 5
_PUNCT = re.compile(r"[\s.\-_/\\*:;,()\[\]{}#'\"`?!&+|]+")
_MARKERS = re.compile(r"(\(\s*(required|optional|mandatory)\s*\)|\*)\s*$")


def normalise(text: str) -> str:
    """Casefold, drop a trailing "(required)"/"*", turn punctuation into spaces, collapse spaces."""
    text = str(text).casefold().strip()
    text = _MARKERS.sub("", text)
    return " ".join(_PUNCT.sub(" ", text).split())


@lru_cache(maxsize=1)
def _vocabulary() -> tuple[dict[str, str], tuple[tuple[str, str], ...]]:
    """Exact keys (normalised, spaces removed) -> field, and (normalised text, field) pairs for fuzzy."""
    exact: dict[str, str] = {}
    pairs: list[tuple[str, str]] = []
    for spec in FIELDS:
        for text in (spec.name, spec.label, *spec.synonyms):
            norm = normalise(text)
            exact.setdefault(norm.replace(" ", ""), spec.name)
            pairs.append((norm, spec.name))
    return exact, tuple(pairs)


def _score(text: str) -> tuple[str | None, float]:
    """The field a header text names and how sure we are (100 = exact)."""
    norm = normalise(text)
    if not norm:
        return None, 0.0
    exact, pairs = _vocabulary()
    field = exact.get(norm.replace(" ", ""))
    if field:
        return field, 100.0
    if len(norm) < FUZZY_MIN_LENGTH:
        return None, 0.0
    best: tuple[str | None, float] = (None, 0.0)
    for candidate, name in pairs:
        if len(candidate) < FUZZY_MIN_LENGTH - 1:
            continue
        score = fuzz.token_sort_ratio(norm, candidate)
        if score >= FUZZY_MIN_SCORE and score > best[1]:
            best = (name, score)
    return best


def match_header(text: str) -> str | None:
    """One header text -> field name, or None when it names no field."""
    return _score(text)[0]


@dataclass(frozen=True)
class ColumnMapping:
    """Which column feeds which field, and where the header was."""

    header_row: int | None  # Excel row number (1-based) of the header; None when positional
    headers: tuple[str, ...]  # header cell texts; positional: ("Column A", "Column B", ...)
    fields: tuple[str | None, ...]  # per column, the field it feeds, or None (ignored)
    positional: bool

    @property
    def unknown_columns(self) -> tuple[str, ...]:
        """Non-blank headers that feed no field (listed to the user as ignored)."""
        return tuple(h for h, f in zip(self.headers, self.fields, strict=True) if f is None and h.strip())

    @property
    def missing_required(self) -> tuple[str, ...]:
        """Required field names that no column feeds."""
        return tuple(f for f in REQUIRED_FIELDS if f not in self.fields)

    def field_columns(self) -> dict[str, int]:
        """Field name -> index of the column that feeds it."""
        return {f: i for i, f in enumerate(self.fields) if f is not None}

    def with_fields(self, fields: Sequence[str | None]) -> ColumnMapping:
        """The user's choice of field per column (None = ignore it).

        UsageError, in words for the user, when a field comes from two columns or a required field
        from none: `Each field can come from one column only; pick one column for: Phone.`
        """
        if len(fields) != len(self.headers):
            raise UsageError(f"the mapping has {len(self.headers)} columns, not {len(fields)}")
        unknown = sorted({f for f in fields if f is not None and f not in FIELD_NAMES})
        if unknown:
            raise UsageError(f"unknown field(s) {', '.join(unknown)}; fields are: {', '.join(FIELD_NAMES)}")
        chosen = [f for f in fields if f is not None]
        twice = sorted({label_of(f) for f in chosen if chosen.count(f) > 1})
        if twice:
            raise UsageError(f"Each field can come from one column only; pick one column for: {', '.join(twice)}.")
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
        )


def _map_row(cells: list[str]) -> tuple[str | None, ...]:
    """Fields of one candidate header row; each field goes to its surest column (ties: leftmost)."""
    scored = [(*_score(text), col) for col, text in enumerate(cells)]
    fields: list[str | None] = [None] * len(cells)
    taken: set[str] = set()
    for field, _certainty, col in sorted(scored, key=lambda s: (-s[1], s[2])):
        if field is not None and field not in taken:
            fields[col] = field
            taken.add(field)
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
    """Find the header row among the first scan_rows rows (titles above it skipped) and map its columns."""
    best: tuple[int, int, tuple[str | None, ...]] | None = None  # (matched, row index, fields)
    for index, cells in enumerate(rows[:scan_rows]):
        if _is_blank(cells):
            continue
        fields = _map_row(cells)
        matched = [f for f in fields if f]
        qualifies = len(matched) >= 2 and any(f in REQUIRED_FIELDS for f in matched)
        if qualifies and (best is None or len(matched) > best[0]):
            best = (len(matched), index, fields)
    if best is not None:
        _, index, fields = best
        headers = tuple(str(c) for c in rows[index])
        # Trailing blank header cells feed nothing; keep the tuple as wide as the header row.
        return ColumnMapping(index + 1, headers, fields, positional=False)
    first = next((cells for cells in rows if not _is_blank(cells)), None)
    if first is None:
        raise NoHeader("The sheet has no data: every row is blank.")
    if len(first) >= 5 and _looks_like_phone(first[4]):
        return _positional(max(len(cells) for cells in rows))
    raise NoHeader(
        f"No header row found in the first {scan_rows} rows. Expected column headers such as: "
        f"{_expected_headers()} (a header row needs at least two of them, one required). "
        "Download the template with `python -m importer template PATH`."
    )


def mapped_columns(mapping: ColumnMapping) -> tuple[int, ...]:
    """The columns a mapping reads, in order: the only ones worth keeping from each row."""
    return tuple(sorted(mapping.field_columns().values()))


def apply_mapping(rows: list[list[str]], mapping: ColumnMapping, max_rows: int) -> pd.DataFrame:
    """Rows under the header as a frame of FIELD_NAMES (text, "" for blank), indexed by Excel row number.

    `rows` may hold only some columns (SheetRows from choose_sheet); a mapping that reads others (a
    user's override) has the sheet read again for them.
    """
    columns = mapping.field_columns()
    if isinstance(rows, SheetRows) and rows.columns is not None:
        if not set(columns.values()) <= set(rows.columns):
            if rows.reread is None:
                raise ValueError("these rows do not hold the columns the mapping reads")
            rows = rows.reread(mapped_columns(mapping))
        position = {c: j for j, c in enumerate(rows.columns or ())}
        columns = {f: position[c] for f, c in columns.items()}
    filled = rows.filled if isinstance(rows, SheetRows) else ()
    start = 0 if mapping.positional or mapping.header_row is None else mapping.header_row
    data: dict[str, list[str]] = {f: [] for f in FIELD_NAMES}
    numbers: list[int] = []
    for index in range(start, len(rows)):
        cells = rows[index]
        if _is_blank(cells) and index not in filled:
            continue  # blank rows are skipped and not counted
        if len(numbers) >= max_rows:
            raise row_limit("The file", max_rows)
        numbers.append(index + 1)
        for field in FIELD_NAMES:
            col = columns.get(field)
            data[field].append(str(cells[col]) if col is not None and col < len(cells) else "")
    index = pd.Index(numbers, name="source_row_number", dtype="int64")
    return pd.DataFrame(data, index=index, columns=list(FIELD_NAMES), dtype="str")


def choose_sheet(
    file: SpreadsheetFile, sheet: str | None, limit: int, mapping: ColumnMapping | None = None
) -> tuple[str, SheetRows, ColumnMapping]:
    """The named sheet, else the first whose header maps the required fields, else the first with a header.

    Only the first rows of each sheet are read to find its header; then the chosen sheet alone is read
    in full, so the row limit applies to it and not to a long sheet of notes before it, and only the
    columns that feed a field are kept (those of `mapping` when given: a user's override). The mapping
    returned is the detected one, with every header, for the list of ignored columns.
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
                f"{_expected_headers()}. Download the template with `python -m importer template PATH`."
            )
    assert chosen is not None  # the named sheet, or one with a header, or NoHeader above
    name, detected = chosen
    rows = _read(file, name, limit, mapped_columns(mapping or detected))
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
