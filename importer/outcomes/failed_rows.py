"""Failed and updated rows streamed one at a time (from the database, or from an ErrorTable and the upload's
frame) when a report, the JSON or a page needs them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii
from typing import Any

import numpy as np
import pandas as pd

# At module level: `from schemas.customer import ...` inside a function costs a failed `__path__` lookup
# through that module's __getattr__ on every call, which was most of a per-row ErrorTable lookup.
from importer.outcomes.error_table import ErrorTable
from importer.outcomes.row_errors import RowError, error_text
from schemas.customer import FIELD_NAMES, FIELDS


@dataclass(frozen=True, slots=True)
class ReportColumn:
    """One column of a failure report between Row and Errors.

    - A field by its label (`field` set, `typed` False): its value is the row's customer_data[field].
    - A column of the file (`typed` True, `header` the file's own header, keying FailedRow.other_columns,
      which hold its cells as typed): one that feeds no field (`field` None), or one that feeds `field`
      (and `also`, a full name's last name), shown as the branch typed it and coloured when its field fails.
    """

    header: str
    field: str | None = None
    also: tuple[str, ...] = ()
    typed: bool = False

    def __post_init__(self) -> None:
        if self.field is None and not self.typed:
            object.__setattr__(self, "typed", True)  # a column of the file's own is always as typed

    @property
    def fields(self) -> tuple[str, ...]:
        return () if self.field is None else (self.field, *self.also)

    def to_json(self) -> list:
        if self.field is None or not self.typed:
            return [self.header, self.field]
        return [self.header, self.field, list(self.also), True]

    @classmethod
    def from_json(cls, data: Sequence) -> ReportColumn:
        field = None if data[1] is None else str(data[1])
        if len(data) >= 4:
            return cls(str(data[0]), field, tuple(str(f) for f in data[2]), bool(data[3]))
        return cls(str(data[0]), field)


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
                 columns: Sequence[ReportColumn] | None = None, run_id: int | None = None,
                 changes: Sequence[str] = ()) -> None:
        self._count, self._produce = count, produce
        self.columns: tuple[ReportColumn, ...] | None = None if columns is None else tuple(columns)
        self.run_id = run_id
        # What normalising changed beyond formatting, a line per rule (importer.checks.changes.Changes.lines):
        # the report's Instructions sheet lists them.
        self.changes: tuple[str, ...] = tuple(changes)

    def with_changes(self, changes: Sequence[str]) -> FailedRows:
        """The same rows, with the changes' lines for the report."""
        return FailedRows(self._count, self._produce, columns=self.columns, run_id=self.run_id, changes=changes)

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


