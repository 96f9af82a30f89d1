"""The failures of an upload held as columns: `ErrorTable` keeps them as arrays (row, field, code,
message index), so a 100,000-row file whose every row fails costs about what a clean one costs.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from json.encoder import encode_basestring_ascii

import numpy as np
import pandas as pd

# At module level: `from schemas.customer import ...` inside a function costs a failed `__path__` lookup
# through that module's __getattr__ on every call, which was most of a per-row ErrorTable lookup.
from importer.outcomes.row_errors import (
    _CODE_INDEX,
    _CODES,
    ErrorCode,
    RowError,
    _error_head,
    _numbers,
    sorted_unique,
)
from schemas.customer import FIELD_NAMES

_FIELD_ORDER = {name: i for i, name in enumerate(FIELD_NAMES)}
# What ErrorTable's field numbers stand for: the fields in order, then "row" (an error of the whole row).
FIELD_CODES: tuple[str, ...] = (*FIELD_NAMES, "row")


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
