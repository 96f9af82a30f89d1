"""Outcomes: row errors, the failures of an upload held as columns, and the summary of a run.

A 100,000-row file whose every row fails must cost about what a clean one costs, so failures are never
one object per row for long: `ErrorTable` keeps them as arrays (row, field, code, message index), and
`FailedRows` streams them (from the database, or from an ErrorTable and the upload's frame) one row at
a time when a report, the JSON or a page needs them.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import islice
from json.encoder import encode_basestring, encode_basestring_ascii
from typing import IO, Any, Protocol

import numpy as np
import pandas as pd

# At module level: `from schemas.customer import ...` inside a function costs a failed `__path__` lookup
# through that module's __getattr__ on every call, which was most of a per-row ErrorTable lookup.
from schemas.customer import FIELD_NAMES, FIELDS, label_of


class ErrorCode(StrEnum):
    """Stable reason codes of CONTRACT.md: code branches on these, people read the message."""

    REQUIRED = "required"
    TOO_LONG = "too_long"
    INVALID_FORMAT = "invalid_format"
    INVALID_PHONE = "invalid_phone"
    INVALID_EMAIL = "invalid_email"
    INVALID_REGION = "invalid_region"
    INVALID_CHOICE = "invalid_choice"
    DUPLICATE_IN_FILE = "duplicate_in_file"
    ALREADY_EXISTS = "already_exists"
    CONFLICT = "conflict"
    DATABASE_ERROR = "database_error"
    # Only in a report the analyst asks for (importer.review.exclusions): a row she left out; never stored by a run.
    EXCLUDED = "excluded"

    @property
    def meaning(self) -> str:
        """The reason in plain words: `Not a valid phone number`."""
        return _MEANINGS[self]


_MEANINGS = {
    ErrorCode.REQUIRED: "Required field is blank",
    ErrorCode.TOO_LONG: "Too long",
    ErrorCode.INVALID_FORMAT: "Not allowed characters or shape",
    ErrorCode.INVALID_PHONE: "Not a valid phone number",
    ErrorCode.INVALID_EMAIL: "Not a valid email address",
    ErrorCode.INVALID_REGION: "Not a known region",
    ErrorCode.INVALID_CHOICE: "Not an allowed value",
    ErrorCode.DUPLICATE_IN_FILE: "Duplicate inside the file",
    ErrorCode.ALREADY_EXISTS: "Already a customer in the database",
    ErrorCode.CONFLICT: "Matches two or more different customers",
    ErrorCode.DATABASE_ERROR: "Refused by the database",
    ErrorCode.EXCLUDED: "Excluded by the analyst",
}
# A stored code's member by its text: a dict lookup, not the Enum call (100,000 failures are read back).
_CODE_OF: dict[str, ErrorCode] = {code.value: code for code in ErrorCode}
# Codes that mean "this row's key is taken", in the file or in the database.
DUPLICATE_CODES = (ErrorCode.DUPLICATE_IN_FILE, ErrorCode.ALREADY_EXISTS)


class RunStatus(StrEnum):
    """Where a run is in its life; the ledger stores these strings."""

    RUNNING = "running"
    COMPLETED = "completed"
    INTERRUPTED = "interrupted"
    UNDONE = "undone"


@dataclass(frozen=True)
class RowError:
    """One problem of one row: which field, which code, a sentence for people, and what caused it.

    `value` is the offending value (as normalised, or as typed when it could not be); `other_row` is,
    for a duplicate inside the file, the earlier row that keeps the value.
    """

    field: str
    code: ErrorCode
    message: str
    value: str | None = None
    other_row: int | None = None

    def to_dict(self) -> dict[str, str]:
        """The contract's `errors[]` item: field, code, message."""
        return {"field": self.field, "code": self.code.value, "message": self.message}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RowError:
        code = data["code"]
        return cls(data["field"], _CODE_OF.get(code) or ErrorCode(code), data["message"])


class _Described(Protocol):
    @property
    def field(self) -> str: ...
    @property
    def message(self) -> str: ...


def error_text(errors: Iterable[_Described]) -> str:
    """The one-line `error` of a failed row: `Phone: 5412345 is not a valid phone number`."""
    return "; ".join(f"{label_of(e.field)}: {e.message}" for e in errors)


# json.dumps' own text, piece by piece (its separators ", " and ": "): the JSON a run stores of a row's
# errors and values, and the CLI's JSON of a failed row, without a dict and a json.dumps call per row.
def _error_head(field: str, ascii_only: bool) -> str:
    enc = encode_basestring_ascii if ascii_only else encode_basestring
    return '{"field": ' + enc(field) + ', "code": '


def errors_json(errors: Iterable[RowError]) -> str:
    """`json.dumps([e.to_dict() for e in errors])`: the text import_failures.errors stores."""
    enc = encode_basestring_ascii
    return "[" + ", ".join(_error_head(e.field, True) + enc(e.code.value) + ', "message": ' + enc(e.message) + "}"
                           for e in errors) + "]"


_CODES = tuple(ErrorCode)
_CODE_INDEX = {code: i for i, code in enumerate(_CODES)}


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """np.unique of integers, by one sort (none when already increasing). numpy 2's np.unique of integers
    hashes them: 25 ms for 150,000 row numbers, against 2 ms sorted (0.05 ms when already in order), and a
    replay makes sets of rows hundreds of times."""
    values = np.asarray(values)
    if len(values) < 2:
        return values.copy()
    if bool((values[1:] > values[:-1]).all()):
        return values.copy()  # a new array, as np.unique gives: callers may write to it
    values = np.sort(values)
    first = np.empty(len(values), dtype=bool)
    first[0] = True
    np.not_equal(values[1:], values[:-1], out=first[1:])
    return values[first]


def _numbers(values: array, dtype: type) -> np.ndarray:
    """A typed array's numbers seen as a numpy array (no copy; ErrorTable._sorted makes its own)."""
    return np.frombuffer(values, dtype=dtype)


_FIELD_ORDER = {name: i for i, name in enumerate(FIELD_NAMES)}
# What ErrorTable's field numbers stand for: the fields in order, then "row" (an error of the whole row).
FIELD_CODES: tuple[str, ...] = (*FIELD_NAMES, "row")


def _field_order() -> dict[str, int]:
    return _FIELD_ORDER


class ErrorTable(Mapping[int, tuple[RowError, ...]]):
    """The errors of the failing rows of one upload, held as columns, one entry per error.

    Read it as a mapping `source row -> (RowError, ...)` (rows ascending, each row's errors in field
    order); the RowError objects are made when asked for, not kept. Build one with `from_pairs`.
    """

    __slots__ = ("_codes", "_fields", "_keys", "_messages", "_others", "_rows", "_starts", "_texts", "_values")

    def __init__(self, rows: np.ndarray, fields: np.ndarray, codes: np.ndarray, messages: np.ndarray,
                 values: np.ndarray, others: np.ndarray, texts: tuple[str | None, ...]) -> None:
        # rows sorted; fields index _field_names(); messages and values index the shared `texts`.
        self._rows, self._fields, self._codes = rows, fields, codes
        self._messages, self._values, self._others, self._texts = messages, values, others, texts
        self._keys: np.ndarray = rows
        self._starts: np.ndarray = rows  # where each distinct row's errors start
        if len(rows):
            self._keys, self._starts = np.unique(rows, return_index=True)

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[int, RowError]], field_order: bool = True) -> ErrorTable:
        """From (source row, error) pairs in any order; a row's errors in field order (else as given)."""
        order, whole_row = _FIELD_ORDER, len(_FIELD_ORDER)
        texts: dict[str | None, int] = {None: 0}
        intern = texts.setdefault
        # Typed arrays, not lists: 100,000 errors read back from a run cost 8 bytes a number, not 36.
        rows, fields, codes = array("q"), array("h"), array("b")
        messages, values, others = array("i"), array("i"), array("q")
        for row, error in pairs:
            rows.append(int(row))
            fields.append(order.get(error.field, whole_row))
            codes.append(_CODE_INDEX[error.code])
            messages.append(intern(error.message, len(texts)))
            values.append(intern(error.value, len(texts)))
            others.append(-1 if error.other_row is None else int(error.other_row))
        return cls._sorted(_numbers(rows, np.int64), _numbers(fields, np.int16), _numbers(codes, np.int8),
                           _numbers(messages, np.int32), _numbers(values, np.int32), _numbers(others, np.int64),
                           tuple(texts), field_order)

    @classmethod
    def from_distinct(cls, rows: np.ndarray, which: np.ndarray, errors: Sequence[RowError],
                      field_order: bool = True) -> ErrorTable:
        """The table of the pairs (rows[i], errors[which[i]]): many rows sharing a few distinct errors.

        Equal to `from_pairs(zip(rows, (errors[k] for k in which)))`, without an object per row: an
        upload whose 100,000 rows fail on the same few values costs a few arrays.
        """
        order, whole_row = _FIELD_ORDER, len(_FIELD_ORDER)
        texts: dict[str | None, int] = {None: 0}
        intern = texts.setdefault
        fields = np.fromiter((order.get(e.field, whole_row) for e in errors), dtype=np.int16, count=len(errors))
        codes = np.fromiter((_CODE_INDEX[e.code] for e in errors), dtype=np.int8, count=len(errors))
        messages = np.fromiter((intern(e.message, len(texts)) for e in errors), dtype=np.int32, count=len(errors))
        values = np.fromiter((intern(e.value, len(texts)) for e in errors), dtype=np.int32, count=len(errors))
        others = np.fromiter((-1 if e.other_row is None else int(e.other_row) for e in errors), dtype=np.int64,
                             count=len(errors))
        which = np.asarray(which, dtype=np.intp)
        return cls._sorted(np.asarray(rows, dtype=np.int64), fields[which], codes[which], messages[which],
                           values[which], others[which], tuple(texts), field_order)

    @classmethod
    def of_one_kind(cls, field: str, code: ErrorCode, rows: np.ndarray, messages: Sequence[str],
                    values: Sequence[str | None], others: np.ndarray | None = None) -> ErrorTable:
        """The errors (rows[i], RowError(field, code, messages[i], values[i], others[i])) of one field and
        code, rows ascending: made as columns, without a RowError or a pair per error (a file's 22,000
        duplicates were 8 MB of objects made only to be taken apart again)."""
        texts: dict[str | None, int] = {None: 0}
        intern = texts.setdefault
        count = len(rows)
        message_at = np.fromiter((intern(m, len(texts)) for m in messages), dtype=np.int32, count=count)
        value_at = np.fromiter((intern(v, len(texts)) for v in values), dtype=np.int32, count=count)
        return cls(np.asarray(rows, dtype=np.int64), np.full(count, _FIELD_ORDER.get(field, len(_FIELD_ORDER)),
                   dtype=np.int16), np.full(count, _CODE_INDEX[code], dtype=np.int8), message_at, value_at,
                   np.full(count, -1, dtype=np.int64) if others is None else np.asarray(others, dtype=np.int64),
                   tuple(texts))

    def compacted(self) -> ErrorTable:
        """The same errors holding only the texts they name, each once. A table filtered (without_cells) and
        joined (with_rows) again and again keeps every text it ever had: a replay's checks of 55,000
        changed phones left twice the texts of a table read afresh."""
        if len(self._texts) <= 2 * len(self._rows) + 1:
            return self
        used = sorted_unique(np.concatenate([self._messages, self._values]))
        texts: dict[str | None, int] = {None: 0}
        intern = texts.setdefault
        at = np.zeros(len(self._texts), dtype=np.int32)
        at[used] = np.fromiter((intern(self._texts[i], len(texts)) for i in used.tolist()), dtype=np.int32,
                               count=len(used))
        return ErrorTable(self._rows, self._fields, self._codes, at[self._messages], at[self._values],
                          self._others, tuple(texts))

    @classmethod
    def _sorted(cls, rows: np.ndarray, fields: np.ndarray, codes: np.ndarray, messages: np.ndarray,
                values: np.ndarray, others: np.ndarray, texts: tuple[str | None, ...],
                field_order: bool) -> ErrorTable:
        # Stable: a row's errors of one field keep the order they were found in.
        keys = (fields, rows) if field_order else (rows,)
        sort = np.lexsort(keys) if len(rows) else np.arange(0)
        return cls(rows[sort], fields[sort], codes[sort], messages[sort], values[sort], others[sort], texts)

    @classmethod
    def empty(cls) -> ErrorTable:
        return cls.from_pairs(())

    _ARRAYS = ("rows", "fields", "codes", "messages", "values", "others")
    _DTYPES = (np.int64, np.int16, np.int8, np.int32, np.int32, np.int64)

    def to_arrays(self) -> tuple[dict[str, np.ndarray], list[str | None]]:
        """The table as plain arrays and its distinct texts (a workspace's snapshot stores them)."""
        arrays = (self._rows, self._fields, self._codes, self._messages, self._values, self._others)
        return dict(zip(self._ARRAYS, arrays, strict=True)), list(self._texts)

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], texts: Sequence[str | None]) -> ErrorTable:
        """The table to_arrays gave (already in order); ValueError when the arrays do not fit together."""
        parts = [np.asarray(arrays[name], dtype=dtype) for name, dtype in zip(cls._ARRAYS, cls._DTYPES, strict=True)]
        if len({len(p) for p in parts}) > 1:
            raise ValueError("the error arrays differ in length")
        if len(parts[0]) and max(int(parts[3].max()), int(parts[4].max())) >= len(texts):
            raise ValueError("an error names a text the table does not have")
        rows, fields, codes, messages, values, others = parts
        return cls(rows, fields, codes, messages, values, others, tuple(texts))

    # -- the mapping ---------------------------------------------------------------------------
    def _span(self, row: int) -> tuple[int, int] | None:
        keys = self._keys
        i = int(keys.searchsorted(row))
        if i >= len(keys) or keys[i] != row:
            return None
        starts = self._starts
        end = int(starts[i + 1]) if i + 1 < len(starts) else len(self._rows)
        return int(starts[i]), end

    def _error(self, i: int) -> RowError:
        other = int(self._others[i])
        return RowError(FIELD_CODES[self._fields[i]], _CODES[self._codes[i]], self._texts[self._messages[i]],
                        self._texts[self._values[i]], None if other < 0 else other)

    def __getitem__(self, row: int) -> tuple[RowError, ...]:
        span = self._span(row) if isinstance(row, int | np.integer) else None
        if span is None:
            raise KeyError(row)
        start, end = span
        if end - start == 1:  # most failing rows have one error
            return (self._error(start),)
        return tuple(self._error(i) for i in range(start, end))

    def errors_of_rows(self, first: int, last: int) -> list[tuple[RowError, ...]]:
        """The errors of the failing rows `rows()[first:last]`, in order: a chunk at a time, for streaming
        every failing row without a lookup per row."""
        last = min(last, len(self._keys))
        if first >= last:
            return []
        begin = int(self._starts[first])
        end = int(self._starts[last]) if last < len(self._starts) else len(self._rows)
        texts = self._texts
        errors = [RowError(FIELD_CODES[f], _CODES[c], texts[m], texts[v], None if o < 0 else o)
                  for f, c, m, v, o in zip(self._fields[begin:end].tolist(), self._codes[begin:end].tolist(),
                                           self._messages[begin:end].tolist(), self._values[begin:end].tolist(),
                                           self._others[begin:end].tolist(), strict=True)]
        bounds = [*(self._starts[first:last] - begin).tolist(), end - begin]
        return [tuple(errors[a:b]) for a, b in zip(bounds, bounds[1:], strict=False)]

    def __contains__(self, row: object) -> bool:
        return isinstance(row, int | np.integer) and self._span(int(row)) is not None

    def __iter__(self) -> Iterator[int]:
        return (int(row) for row in self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"ErrorTable({len(self):,} rows, {len(self._rows):,} errors)"

    # -- columns -------------------------------------------------------------------------------
    def rows(self) -> np.ndarray:
        """The failing source rows, ascending."""
        return self._keys

    def only_rows(self, rows: np.ndarray) -> ErrorTable:
        """The table of these rows' errors only (rows the table lacks are ignored)."""
        return self._where(np.isin(self._rows, np.asarray(rows, dtype=np.int64)))

    def as_stored(self) -> ErrorTable:
        """The table as a run reads it back from import_failures: field, code and message of each error,
        without the offending value or the other row."""
        return ErrorTable(self._rows, self._fields, self._codes, self._messages, np.zeros_like(self._values),
                          np.full_like(self._others, -1), self._texts)

    def errors_json(self, rows: np.ndarray) -> list[str]:
        """`errors_json(self[row])` of each of these rows (ascending, each in the table), a chunk at a time:
        the text import_failures.errors stores, without a RowError per error."""
        rows = np.asarray(rows, dtype=np.int64)
        if not len(rows):
            return []
        at = self._keys.searchsorted(rows)
        if at[-1] >= len(self._keys) or not np.array_equal(self._keys[at], rows):
            raise KeyError("a row without errors")
        bounds = np.append(self._starts, len(self._rows))
        begin, end = bounds[at], bounds[at + 1]
        first, last = int(begin[0]), int(end[-1])
        fields = self._fields[first:last].tolist()
        codes = self._codes[first:last].tolist()
        messages = self._messages[first:last].tolist()
        heads = [_error_head(name, True) for name in FIELD_CODES]
        tails = [encode_basestring_ascii(code.value) + ', "message": ' for code in _CODES]
        enc, texts = encode_basestring_ascii, self._texts
        out = []
        for b, e in zip((begin - first).tolist(), (end - first).tolist(), strict=True):
            if e - b == 1:
                out.append("[" + heads[fields[b]] + tails[codes[b]] + enc(texts[messages[b]]) + "}]")
            else:
                out.append("[" + ", ".join(heads[fields[i]] + tails[codes[i]] + enc(texts[messages[i]]) + "}"
                                           for i in range(b, e)) + "]")
        return out

    def pairs(self) -> Iterator[tuple[int, RowError]]:
        """Every (row, error), in order."""
        return ((int(self._rows[i]), self._error(i)) for i in range(len(self._rows)))

    def frame(self) -> pd.DataFrame:
        """One line per error: row, field, code (no messages): for counting and filtering."""
        return pd.DataFrame({
            "row": self._rows,
            "field": pd.Categorical.from_codes(self._fields, categories=_field_names()),
            "code": pd.Categorical.from_codes(self._codes, categories=[c.value for c in _CODES]),
        })

    def rows_with(self, code: str | None = None) -> np.ndarray:
        """Failing rows having an error with this code (every failing row for None), ascending."""
        if code is None:
            return self._keys
        return sorted_unique(self._rows[self._codes == _CODE_INDEX[ErrorCode(code)]])

    def by_code(self) -> dict[str, int]:
        """How many failing rows carry each code (a row with two codes counts in both), most first."""
        if not len(self._rows):
            return {}
        pairs = sorted_unique(self._rows * len(_CODES) + self._codes)
        counts = np.bincount(pairs % len(_CODES), minlength=len(_CODES))
        found = {_CODES[i].value: int(n) for i, n in enumerate(counts) if n}
        return dict(sorted(found.items(), key=lambda item: (-item[1], item[0])))

    def by_field_and_code(self) -> pd.DataFrame:
        """Rows failing per (field, code): columns field, code, rows; most rows first."""
        if not len(self._rows):
            return pd.DataFrame({"field": [], "code": [], "rows": []})
        lines = self.frame().drop_duplicates().astype({"field": str, "code": str})
        counts = lines.groupby(["field", "code"]).size().reset_index(name="rows")
        return counts.sort_values(["rows", "field", "code"], ascending=[False, True, True], ignore_index=True)

    def with_rows(self, other: ErrorTable) -> ErrorTable:
        """These errors and another table's, merged by row (a row in both has both's errors)."""
        return ErrorTable.concat([self, other])

    @classmethod
    def concat(cls, tables: Iterable[ErrorTable], field_order: bool = True) -> ErrorTable:
        """Several tables as one, rows ascending; a row's errors in field order (else in the order given)."""
        parts = [t for t in tables if len(t._rows)]
        if not parts:
            return cls.empty()
        if len(parts) == 1:
            return parts[0]
        return cls._joined(parts, field_order)

    @classmethod
    def combine(cls, tables: Iterable[ErrorTable]) -> ErrorTable:
        """Several tables as one, rows ascending, a row's errors in field order and, within a field, in
        the order of the tables given; unlike `concat`, a single table is sorted too."""
        parts = [t for t in tables if len(t._rows)]
        return cls._joined(parts, True) if parts else cls.empty()

    @classmethod
    def _joined(cls, parts: list[ErrorTable], field_order: bool) -> ErrorTable:
        texts: list[str | None] = []
        messages, values = [], []
        for part in parts:
            messages.append(part._messages + len(texts))
            values.append(part._values + len(texts))
            texts.extend(part._texts)
        rows = np.concatenate([p._rows for p in parts])
        fields = np.concatenate([p._fields for p in parts])
        sort = np.lexsort((fields, rows)) if field_order else np.argsort(rows, kind="stable")
        return cls(rows[sort], fields[sort], np.concatenate([p._codes for p in parts])[sort],
                   np.concatenate(messages)[sort], np.concatenate(values)[sort],
                   np.concatenate([p._others for p in parts])[sort], tuple(texts))

    def without_rows(self, rows: Iterable[int]) -> ErrorTable:
        """The table less some rows."""
        return self._where(~np.isin(self._rows, np.fromiter(rows, dtype=np.int64)))

    def without_cells(self, cells: Mapping[str, Iterable[int]]) -> ErrorTable:
        """The table less the errors of these cells (`cells`: field -> rows); rows left with none drop out."""
        drop = np.zeros(len(self._rows), dtype=bool)
        for field_name, rows in cells.items():
            drop |= ((self._fields == _FIELD_ORDER.get(field_name, len(_FIELD_ORDER)))
                     & np.isin(self._rows, np.fromiter(rows, dtype=np.int64)))
        return self._where(~drop)

    def without_code(self, code: ErrorCode, rows: Iterable[int] | None = None, field: str | None = None,
                     ) -> ErrorTable:
        """The table less every error with this code (only of these rows, only of this field, when given);
        rows left with none drop out."""
        drop = self._codes == _CODE_INDEX[code]
        if field is not None:
            drop &= self._fields == _FIELD_ORDER.get(field, len(_FIELD_ORDER))
        if rows is not None:
            drop &= np.isin(self._rows, np.fromiter(rows, dtype=np.int64))
        return self._where(~drop)

    def _where(self, keep: np.ndarray) -> ErrorTable:
        return ErrorTable(self._rows[keep], self._fields[keep], self._codes[keep], self._messages[keep],
                          self._values[keep], self._others[keep], self._texts)


def _field_names() -> tuple[str, ...]:
    return FIELD_CODES


@dataclass(frozen=True, slots=True)
class ReportColumn:
    """One column of a failure report between Row and Errors: a field (`field` set, `header` its label) or
    one of the file's own columns that feed no field (`field` None; `header` keys FailedRow.other_columns)."""

    header: str
    field: str | None = None

    def to_json(self) -> list[str | None]:
        return [self.header, self.field]

    @classmethod
    def from_json(cls, data: Sequence[str | None]) -> ReportColumn:
        return cls(str(data[0]), None if data[1] is None else str(data[1]))


def field_columns() -> tuple[ReportColumn, ...]:
    """Every field by its label, in FIELDS order: the report of rows whose file layout is not known."""
    return tuple(ReportColumn(spec.label, spec.name) for spec in FIELDS)


@dataclass(frozen=True, slots=True)
class FailedRow:
    """One failed row as a report or the JSON shows it: its errors and its values as typed.

    `other_columns` holds the file's own columns that feed no field (S/No, Remarks), by report header:
    the report puts them back in their places; the JSON leaves them out (CONTRACT.md's customer_data).
    """

    source_row_number: int
    errors: tuple[RowError, ...]
    customer_data: Mapping[str, str] = field(default_factory=dict)
    other_columns: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "source_row_number": self.source_row_number,
            "error": error_text(self.errors),
            "errors": [e.to_dict() for e in self.errors],
            "customer_data": dict(self.customer_data),
        }


class FailedRows:
    """The failed rows of a run, made afresh on each iteration (from the database or the upload's frame).

    It holds a count and a way to produce them, never the rows themselves; and what their report needs:
    `columns` (the file's layout: fields and the file's own columns in their places; None = every field)
    and `run_id` (the run whose report it is, written into the report so a fixed one links back to it).
    """

    def __init__(self, count: int, produce: Callable[[], Iterator[FailedRow]], *,
                 columns: Sequence[ReportColumn] | None = None, run_id: int | None = None) -> None:
        self._count, self._produce = count, produce
        self.columns: tuple[ReportColumn, ...] | None = None if columns is None else tuple(columns)
        self.run_id = run_id

    @classmethod
    def of(cls, rows: Iterable[FailedRow], *, columns: Sequence[ReportColumn] | None = None,
           run_id: int | None = None) -> FailedRows:
        """Rows already in hand (tests, small results)."""
        held = tuple(rows)
        return cls(len(held), lambda: iter(held), columns=columns, run_id=run_id)

    def __iter__(self) -> Iterator[FailedRow]:
        return self._produce()

    def __len__(self) -> int:
        return self._count

    def __repr__(self) -> str:
        return f"FailedRows({self._count:,})"


NO_FAILURES = FailedRows(0, lambda: iter(()))


@dataclass(frozen=True, slots=True)
class UpdatedRow:
    """One row that updated a customer: which customer, and field -> (stored before, stored now)."""

    source_row_number: int
    customer_id: int
    changes: Mapping[str, tuple[Any, Any]]

    def to_json(self) -> dict[str, Any]:
        return {
            "source_row_number": self.source_row_number,
            "customer_id": self.customer_id,
            "changes": {name: [old, new] for name, (old, new) in self.changes.items()},
        }


def changes_between(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """field -> (before, after) for the fields that differ, in field order."""
    return {f: (before.get(f), after.get(f)) for f in FIELD_NAMES if before.get(f) != after.get(f)}


class UpdatedRows:
    """The updated rows of a run, made afresh on each iteration (from the database or held columns)."""

    def __init__(self, count: int, produce: Callable[[], Iterator[UpdatedRow]]) -> None:
        self._count, self._produce = count, produce

    @classmethod
    def of(cls, rows: Iterable[UpdatedRow]) -> UpdatedRows:
        held = tuple(rows)
        return cls(len(held), lambda: iter(held))

    def __iter__(self) -> Iterator[UpdatedRow]:
        return self._produce()

    def __len__(self) -> int:
        return self._count

    def __repr__(self) -> str:
        return f"UpdatedRows({self._count:,})"


NO_UPDATES = UpdatedRows(0, lambda: iter(()))


class UpdateColumns:
    """Updated rows held as columns (a dry run's, read back before its rollback): one entry per changed
    field, the values' text interned, so 10,000 updates cost a few arrays, not 10,000 dicts."""

    def __init__(self) -> None:
        self._rows: list[int] = []
        self._ids: list[int] = []
        self._starts: list[int] = []
        self._fields: list[int] = []
        self._old: list[int] = []
        self._new: list[int] = []
        self._texts: dict[Any, int] = {}

    def add(self, row: int, customer_id: int, changes: Mapping[str, tuple[Any, Any]]) -> None:
        self._rows.append(int(row))
        self._ids.append(int(customer_id))
        self._starts.append(len(self._fields))
        for name, (old, new) in changes.items():
            self._fields.append(FIELD_NAMES.index(name))
            self._old.append(self._texts.setdefault(old, len(self._texts)))
            self._new.append(self._texts.setdefault(new, len(self._texts)))

    def freeze(self) -> UpdatedRows:
        rows, ids = np.asarray(self._rows, dtype=np.int64), np.asarray(self._ids, dtype=np.int64)
        starts = np.asarray([*self._starts, len(self._fields)], dtype=np.int64)
        fields = np.asarray(self._fields, dtype=np.int8)
        old, new = np.asarray(self._old, dtype=np.int32), np.asarray(self._new, dtype=np.int32)
        texts = tuple(self._texts)
        order = np.argsort(rows, kind="stable")

        def produce() -> Iterator[UpdatedRow]:
            for i in order:
                span = range(int(starts[i]), int(starts[i + 1]))
                yield UpdatedRow(int(rows[i]), int(ids[i]),
                                 {FIELD_NAMES[fields[j]]: (texts[old[j]], texts[new[j]]) for j in span})

        return UpdatedRows(len(rows), produce)


def _texts_of(column: pd.Series) -> list[str]:
    """A column's cells as text, a missing one as ""."""
    if isinstance(column.dtype, pd.StringDtype) or column.dtype == object:
        filled = column.astype(object).where(column.notna(), "")
        values = filled.tolist()
        if column.dtype == object:
            return [v if type(v) is str else str(v) for v in values]
        return values
    return ["" if missing else str(v) for v, missing in zip(column.tolist(), column.isna().tolist(), strict=True)]


def _row_cells(frame: pd.DataFrame | None, rows: list[int], names: list[str] | None,
               ) -> tuple[list[str], list[int], list[list[str]]] | None:
    """(column names, the rows the frame has, each column's text of those rows), read column by column,
    not row by row: a cell is read as text once. None when there is nothing to read."""
    if frame is None or not rows:
        return None
    wanted = pd.Index(rows)
    found = wanted[wanted.isin(frame.index)]
    if not len(found):
        return None
    names = list(frame.columns) if names is None else names
    part = frame.reindex(columns=names).loc[found]
    return names, found.tolist(), [_texts_of(part.iloc[:, i]) for i in range(len(names))]


def values_by_row(frame: pd.DataFrame | None, rows: list[int], names: list[str] | None = None,
                  ) -> dict[int, dict[str, str]]:
    """{row: {column: text}} of some rows of a frame indexed by source row, blank cells left out."""
    read = _row_cells(frame, rows, names)
    if read is None:
        return {}
    names, found, columns = read
    return {int(number): {f: v for f, v in zip(names, cells, strict=True) if v}
            for number, *cells in zip(found, *columns, strict=True)}


def values_json_by_row(frame: pd.DataFrame | None, rows: list[int], names: list[str] | None = None,
                       ) -> dict[int, str]:
    """`json.dumps(values)` of each row of `values_by_row(frame, rows, names)`: the text a run stores,
    made column by column without a dict per row."""
    if frame is not None and not all(isinstance(name, str) for name in (frame.columns if names is None else names)):
        return {n: json.dumps(v) for n, v in values_by_row(frame, rows, names).items()}
    read = _row_cells(frame, rows, names)
    if read is None:
        return {}
    names, found, columns = read
    enc = encode_basestring_ascii
    keys = [enc(name) + ": " for name in names]
    return {int(number): "{" + ", ".join([k + enc(v) for k, v in zip(keys, cells, strict=True) if v]) + "}"
            for number, *cells in zip(found, *columns, strict=True)}


def failed_rows_of(errors: ErrorTable, original: pd.DataFrame, columns: Iterable[str],
                   chunk: int = 2_000, others: pd.DataFrame | None = None) -> Iterator[FailedRow]:
    """FailedRow for each row of `errors`, its values looked up by row number in `original`.

    `original` holds the text as typed (index = source row); blank cells are left out of customer_data.
    `others` (same index) holds the file's own columns that feed no field, by report header: each row's
    non-blank ones become its other_columns. Rows are looked up a chunk at a time, so a report of 100,000
    rows holds a chunk's values at once.
    """
    names = list(columns)
    rows = errors.rows()
    for start in range(0, len(rows), chunk):
        part_rows = rows[start:start + chunk].tolist()
        values = values_by_row(original, part_rows, names)
        extra = values_by_row(others, part_rows)
        for row, row_errors in zip(part_rows, errors.errors_of_rows(start, start + chunk), strict=True):
            yield FailedRow(row, row_errors, values.get(row, {}), extra.get(row, {}))


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


@dataclass(frozen=True)
class RunResult:
    """The summary of one import: `created + updated + unchanged + failed == attempted`, always.

    `failed` streams the failed rows; `failure_codes` counts failed rows per code; `updated` streams the
    rows that updated a customer (with their diffs); `total_unchanged` counts rows equal to their customer.
    """

    run_id: int | None
    dry_run: bool
    resumed: bool
    file: str
    sheet: str | None
    total_attempted: int
    total_created: int
    failed: FailedRows = field(default=NO_FAILURES, compare=False, repr=False)
    failure_codes: Mapping[str, int] = field(default_factory=dict)
    updated: UpdatedRows = field(default=NO_UPDATES, compare=False, repr=False)
    total_unchanged: int = 0

    def __post_init__(self) -> None:
        if self.total_created + self.total_updated + self.total_unchanged + self.total_failed != self.total_attempted:
            raise AssertionError(
                f"accounting broken: {self.total_created} created + {self.total_updated} updated + "
                f"{self.total_unchanged} unchanged + {self.total_failed} failed != {self.total_attempted} attempted"
            )

    @property
    def total_failed(self) -> int:
        return len(self.failed)

    @property
    def total_updated(self) -> int:
        return len(self.updated)

    @property
    def message(self) -> str:
        """`Created 3 customers; updated 2; 5 unchanged; 1 row failed` (parts that are 0 left out)."""
        text = f"{'Would create' if self.dry_run else 'Created'} {_plural(self.total_created, 'customer')}"
        if self.total_updated:
            text += f"; would update {self.total_updated:,}" if self.dry_run else f"; updated {self.total_updated:,}"
        if self.total_unchanged:
            text += f"; {self.total_unchanged:,} unchanged"
        if self.dry_run:
            if self.total_failed:
                text += f"; {_plural(self.total_failed, 'row')} would fail"
            return text
        if self.total_failed:
            text += f"; {_plural(self.total_failed, 'row')} failed"
        return text

    def summary_json(self) -> dict[str, Any]:
        """The JSON object's keys before `failed_customers`, as CONTRACT.md shows them."""
        return {
            "run_id": self.run_id,
            "dry_run": self.dry_run,
            "resumed": self.resumed,
            "file": self.file,
            "sheet": self.sheet,
            # The run completed; failed rows are part of a completed run (a run that did not complete
            # is an exit status, never a result).
            "success": True,
            "message": self.message,
            "total_attempted": self.total_attempted,
            "total_created": self.total_created,
            "total_failed": self.total_failed,
            "total_updated": self.total_updated,
            "total_unchanged": self.total_unchanged,
        }

    def to_json(self) -> dict[str, Any]:
        """The CLI's JSON object, key for key as CONTRACT.md shows it (all rows in memory: small runs)."""
        return {**self.summary_json(), "failed_customers": [row.to_json() for row in self.failed],
                "updated_customers": [row.to_json() for row in self.updated]}

    def json_chunks(self, failed_items: Iterable[str] | None = None) -> Iterator[str]:
        """The same JSON text as `json.dumps(self.to_json(), ensure_ascii=False)`, a row at a time.

        `failed_items`: the text of the failed_customers items when it was made already (FailedJson,
        while the failed rows went to a report), so the failed rows are not read again."""
        head = json.dumps(self.summary_json(), ensure_ascii=False)
        yield head[:-1] + ', "failed_customers": ['
        yield from _failed_json_items(self.failed) if failed_items is None else failed_items
        yield '], "updated_customers": ['
        yield from _json_items(updated.to_json() for updated in self.updated)
        yield "]}"


_JSON_BATCH = 500


def _json_items(items: Iterable[Any]) -> Iterator[str]:
    """The items of a JSON array, `, `-separated, without its brackets: `json.dumps` of a batch of items
    at a time (the same text as one call per item, without the cost of a call per item)."""
    items = iter(items)
    first = True
    while batch := list(islice(items, _JSON_BATCH)):
        text = json.dumps(batch, ensure_ascii=False)[1:-1]
        yield text if first else ", " + text
        first = False


def failed_row_json(row: FailedRow) -> str:
    """`json.dumps(row.to_json(), ensure_ascii=False)`, put together from its pieces (a row's dicts and
    json.dumps call were most of the CLI's JSON of 100,000 failed rows)."""
    enc = encode_basestring
    try:
        number = row.source_row_number
        if type(number) is not int:
            raise TypeError(number)
        errors = row.errors
        return ('{"source_row_number": ' + str(number) + ', "error": ' + enc(error_text(errors)) + ', "errors": ['
                + ", ".join([_error_head(e.field, False) + enc(e.code.value) + ', "message": ' + enc(e.message) + "}"
                             for e in errors])
                + '], "customer_data": {'
                + ", ".join([enc(k) + ": " + enc(v) for k, v in row.customer_data.items()]) + "}}")
    except (TypeError, AttributeError):  # not text where text is expected: json.dumps says what it makes of it
        return json.dumps(row.to_json(), ensure_ascii=False)


def _failed_json_items(rows: Iterable[FailedRow]) -> Iterator[str]:
    """The failed_customers items, `, `-separated, without the brackets, a batch of rows at a time."""
    rows = iter(rows)
    first = True
    while batch := [failed_row_json(row) for row in islice(rows, _JSON_BATCH)]:
        text = ", ".join(batch)
        yield text if first else ", " + text
        first = False


class FailedJson:
    """The JSON items of failed rows, written to a text file as the rows pass on to a report: the CLI's
    --report and --json then read the failed rows once (a 100,000-row run's rows come from the database
    or the upload a chunk at a time; the spool holds their JSON text, not objects)."""

    def __init__(self, spool: IO[str]) -> None:
        self._spool = spool
        self._first = True
        self.complete = False

    def passing(self, rows: Iterable[FailedRow]) -> Iterator[FailedRow]:
        """The rows, unchanged; each one's JSON is written once it has been handed on."""
        batch: list[str] = []
        for row in rows:
            yield row
            batch.append(failed_row_json(row))
            if len(batch) >= _JSON_BATCH:
                self._write(batch)
                batch = []
        self._write(batch)
        self.complete = True

    def _write(self, batch: list[str]) -> None:
        if batch:
            self._spool.write(("" if self._first else ", ") + ", ".join(batch))
            self._first = False

    def items(self, block: int = 1 << 20) -> Iterator[str]:
        """The items' text (for RunResult.json_chunks), once every row has passed."""
        if not self.complete:
            raise RuntimeError("the failed rows have not all passed yet")
        self._spool.seek(0)
        while text := self._spool.read(block):
            yield text
