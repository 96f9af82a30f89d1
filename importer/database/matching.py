"""Re-imports: match upload rows to existing customers by their keys, and apply updates in bulk.

A row's keys are its normalised shipping mark, phone and email. Matching is by set queries, a chunk of
rows at a time (importer.database.lookup.lookup), never a query per row:

- no key matches: new;
- the keys that match all point to one customer and every field equals the stored value: unchanged;
- they all point to one customer and some field differs: changed, with the stored and new records;
- they point to two or more customers (or to a customer another row of the chunk already matched):
  conflict;
- they point to one customer whose identity differs (another shipping mark, or another first AND last
  name): a possible different person, a conflict naming the key that matched, unless the analyst confirmed
  that row as that customer (`confirmed`): then changed. So no bulk decision rewrites one customer as
  someone else.

A blank optional cell keeps the stored value, unless `clear` (then the blank's stored form: NULL, or
the field's default).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from importer.database.lookup import KEY_CHUNK
from importer.outcomes.row_errors import ErrorCode, RowError
from schemas.customer import FIELD_NAMES, FIELDS, SPECS, UNIQUE_FIELDS, label_of

Record = tuple[int, dict[str, Any]]
OPTIONAL_FIELDS: tuple[str, ...] = tuple(f.name for f in FIELDS if not f.required)
_STORED = ("id", *FIELD_NAMES)


class ExistingMode(StrEnum):
    """What a row that matches a customer with different values does: fail (skip) or update it."""

    SKIP = "skip"
    UPDATE = "update"


class BlankMode(StrEnum):
    """What a blank optional cell does to a matched customer: keep the stored value, or clear it."""

    KEEP = "keep"
    CLEAR = "clear"


class Outcome(StrEnum):
    NEW = "new"
    UNCHANGED = "unchanged"
    CHANGED = "changed"
    CONFLICT = "conflict"


@dataclass(frozen=True, slots=True)
class Match:
    """How one row relates to the stored customers."""

    outcome: Outcome
    customer_id: int | None = None
    before: dict[str, Any] | None = None  # the stored record (changed, unchanged)
    after: dict[str, Any] | None = None  # the record to store (changed)
    errors: tuple[RowError, ...] = field(default=())

    def changes(self) -> dict[str, tuple[Any, Any]]:
        """field -> (stored, new) for each field that differs."""
        if self.before is None or self.after is None:
            return {}
        return {f: (self.before[f], self.after[f]) for f in FIELD_NAMES if self.before[f] != self.after[f]}


class BlankCells:
    """Which optional cells of an upload were blank, computed once for the whole file as one small integer
    per row (bit i: OPTIONAL_FIELDS[i] blank); `of(rows)` gives a chunk's {row: blank fields}, one shared
    frozenset per distinct pattern (a file has few), not one built per row."""

    def __init__(self, original: pd.DataFrame) -> None:
        part = original.reindex(columns=list(OPTIONAL_FIELDS))
        codes = np.zeros(len(part), dtype=np.int64)
        for bit, f in enumerate(OPTIONAL_FIELDS):
            column = part[f]
            blank = column.isna().to_numpy() | (column.astype("string").str.strip() == "").fillna(True).to_numpy(bool)
            codes |= blank.astype(np.int64) << bit
        self._index = part.index
        self._codes = codes
        self._sets: dict[int, frozenset[str]] = {}

    def _fields(self, code: int) -> frozenset[str]:
        fields = self._sets.get(code)
        if fields is None:
            fields = self._sets[code] = frozenset(f for bit, f in enumerate(OPTIONAL_FIELDS) if code >> bit & 1)
        return fields

    def of(self, rows: Sequence[int]) -> dict[int, frozenset[str]]:
        if not len(rows):
            return {}
        where = self._index.get_indexer(list(rows))
        found = where >= 0
        codes = self._codes[where[found]].tolist()
        numbers = np.asarray(rows, dtype=np.int64)[found].tolist()
        fields = self._fields
        return {n: fields(code) for n, code in zip(numbers, codes, strict=True)}


def blank_cells(original: pd.DataFrame, rows: Sequence[int]) -> dict[int, frozenset[str]]:
    """For these source rows: the optional fields whose cell was blank in the file."""
    return BlankCells(original.loc[original.index.isin(list(rows))]).of(rows)


def _who(row: Mapping[str, Any]) -> str:
    return f"customer #{row['id']} ({row['first_name']} {row['last_name']}, shipping mark {row['shipping_mark']})"


def _shown(value: Any) -> str:
    return "blank" if value is None or value == "" else str(value)


def skip_errors(match: Match) -> tuple[RowError, ...]:
    """`already_exists` for a changed row under --existing skip: one error per differing field."""
    assert match.before is not None
    who = f"customer #{match.customer_id}, shipping mark {match.before['shipping_mark']}"
    return tuple(
        RowError(f, ErrorCode.ALREADY_EXISTS,
                 f"{label_of(f).lower()} differs: stored {_shown(old)}, file {_shown(new)} ({who}; "
                 "the stored customer was kept; the change is applied only when it is accepted on import)",
                 value=None if new is None else str(new))
        for f, (old, new) in match.changes().items()
    )


def _lookup_keys(conn: sa.Connection, rows: Sequence[Record], lock: bool) -> dict[str, dict[Any, Any]]:
    """{key field: {value: stored row}} for the rows' keys: one query per KEY_CHUNK rows, the three keys
    OR-ed (each customer fetched once, however many of its keys match)."""
    # Written at the driver level: SQLAlchemy's compilation of thousands of expanding IN parameters and
    # its Row mappings cost more than the query itself.
    hits: dict[str, dict[Any, Any]] = {f: {} for f in UNIQUE_FIELDS}
    pg = conn.dialect.name == "postgresql"
    select = f"SELECT {', '.join(_STORED)} FROM customers WHERE "  # noqa: S608 - fixed names
    for start in range(0, len(rows), KEY_CHUNK):
        part = rows[start:start + KEY_CHUNK]
        keys = {f: sorted({rec[f] for _, rec in part if rec[f] is not None}) for f in UNIQUE_FIELDS}
        tests: list[str] = []
        params: list[Any] = []
        for f, values in keys.items():
            if not values:
                continue
            if pg:
                tests.append(f"{f} = ANY(%s)")
                params.append(values)
            else:
                tests.append(f"{f} IN ({', '.join('?' * len(values))})")
                params.extend(values)
        if not tests:
            continue
        sql = select + " OR ".join(tests) + (" FOR UPDATE" if lock and pg else "")
        for found in conn.exec_driver_sql(sql, tuple(params)):
            row = dict(zip(_STORED, found, strict=True))
            for f in UNIQUE_FIELDS:
                if row[f] is not None:
                    hits[f][row[f]] = row
    return hits


def insert_many(conn: sa.Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """One multi-row INSERT per few thousand rows, at the driver level (psycopg2's executemany is a
    statement per row; SQLAlchemy's parameter processing costs more than the insert)."""
    if not rows:
        return
    mark = "%s" if conn.dialect.name == "postgresql" else "?"
    one = "(" + ", ".join([mark] * len(columns)) + ")"
    step = max(1, 30_000 // len(columns))
    for start in range(0, len(rows), step):
        part = rows[start:start + step]
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES " + ", ".join([one] * len(part))  # noqa: S608
        conn.exec_driver_sql(sql, tuple(v for r in part for v in r))


# How a possible different person's conflict begins (importer.database.customers tells them by it).
DIFFERENT_PERSON = "possible different person"


def _fold(value: Any) -> str:
    return " ".join(str(value or "").split()).casefold()


def identity_differences(rec: Mapping[str, Any], stored: Mapping[str, Any], matched: Collection[str]) -> list[str]:
    """Why a row whose keys point to one stored customer may be another person: its shipping mark differs
    (when the mark is not the key that matched), or both its first and its last name differ. Empty when
    it looks like the same customer."""
    why: list[str] = []
    mark, kept = rec.get("shipping_mark"), stored.get("shipping_mark")
    if "shipping_mark" not in matched and mark and kept and _fold(mark) != _fold(kept):
        why.append(f"shipping mark {mark} (stored {kept})")
    if (_fold(rec.get("first_name")) != _fold(stored.get("first_name"))
            and _fold(rec.get("last_name")) != _fold(stored.get("last_name"))
            and (rec.get("first_name") or rec.get("last_name"))):
        why.append(f"name {rec.get('first_name') or ''} {rec.get('last_name') or ''} "
                   f"(stored {stored.get('first_name') or ''} {stored.get('last_name') or ''})".replace("  ", " "))
    return why


def different_person_errors(rec: Mapping[str, Any], stored: Mapping[str, Any], matched: Collection[str],
                            why: Sequence[str]) -> tuple[RowError, ...]:
    """One `conflict` error per key that matched, naming it and what differs."""
    return tuple(
        RowError(f, ErrorCode.CONFLICT,
                 f"{DIFFERENT_PERSON}: {label_of(f).lower()} {rec[f]} matched {_who(stored)}, but "
                 f"this row's {' and '.join(why)} differ; confirm the row as that customer to update it, or "
                 "correct the key", value=rec[f])
        for f in matched)


def match_rows(conn: sa.Connection, rows: Sequence[Record], blanks: Mapping[int, frozenset[str]],
               clear: bool = False, lock: bool = False, confirmed: Collection[int] = ()) -> dict[int, Match]:
    """Each (source row, normalised record)'s Match, from three set queries (one per key field).
    `confirmed`: rows the analyst confirmed as the customer their keys point to (a possible different
    person among them is a change, not a conflict)."""
    confirmed = frozenset(int(n) for n in confirmed)
    hits = _lookup_keys(conn, rows, lock)
    claimed: dict[int, int] = {}  # customer id -> the row of this chunk that matched it first
    out: dict[int, Match] = {}
    for number, rec in rows:
        found: dict[str, Any] = {}
        for f in UNIQUE_FIELDS:
            value = rec[f]
            if value is not None and value in hits[f]:
                found[f] = hits[f][value]
        ids = {row["id"] for row in found.values()}
        if not ids:
            out[number] = Match(Outcome.NEW)
            continue
        if len(ids) > 1:
            out[number] = Match(Outcome.CONFLICT, errors=tuple(
                RowError(f, ErrorCode.CONFLICT,
                         f"{label_of(f).lower()} {rec[f]} is {_who(row)}; this row's keys match "
                         f"{len(ids)} different customers", value=rec[f])
                for f, row in found.items()))
            continue
        stored_row = next(iter(found.values()))
        customer_id = int(stored_row["id"])
        if customer_id in claimed:
            f = next(iter(found))
            out[number] = Match(Outcome.CONFLICT, customer_id, errors=(RowError(
                f, ErrorCode.CONFLICT,
                f"{label_of(f).lower()} {rec[f]} is {_who(stored_row)}, which row {claimed[customer_id]} of "
                "this file already matches", value=rec[f], other_row=claimed[customer_id]),))
            continue
        why = identity_differences(rec, stored_row, found)
        if why and number not in confirmed:
            out[number] = Match(Outcome.CONFLICT, customer_id,
                                errors=different_person_errors(rec, stored_row, list(found), why))
            continue
        claimed[customer_id] = number
        before = {f: stored_row[f] for f in FIELD_NAMES}
        # A blank Other Phones / Other Emails cell is not blank when the phone or email cell filled it.
        blank = {f for f in blanks.get(number, ()) if rec[f] is None or not SPECS[f].stored_nullable}
        after = {f: before[f] if (f in blank and not clear) else rec[f] for f in FIELD_NAMES}
        outcome = Outcome.UNCHANGED if after == before else Outcome.CHANGED
        out[number] = Match(outcome, customer_id, before, after if outcome is Outcome.CHANGED else None)
    return out


def bulk_update(conn: sa.Connection, records: Sequence[tuple[int, Mapping[str, Any]]]) -> int:
    """Set every field of these customers (id, record) in one `UPDATE ... FROM (VALUES ...)`."""
    if not records:
        return 0
    mark = "%s" if conn.dialect.name == "postgresql" else "?"
    one = "(" + ", ".join([mark] * (1 + len(FIELD_NAMES))) + ")"
    columns = ", ".join(("id", *FIELD_NAMES))
    sets = ", ".join(f"{f} = v.{f}" for f in FIELD_NAMES)
    values = ", ".join([one] * len(records))
    if conn.dialect.name == "postgresql":
        source = f"(VALUES {values}) AS v({columns})"
    else:  # SQLite names VALUES' columns column1, column2...; a WITH in front would hide the rowcount
        named = ", ".join(f"column{i + 1} AS {name}" for i, name in enumerate(("id", *FIELD_NAMES)))
        source = f"(SELECT {named} FROM (VALUES {values})) AS v"  # noqa: S608 - fixed names
    sql = f"UPDATE customers SET {sets} FROM {source} WHERE customers.id = v.id"  # noqa: S608 - fixed names
    params = tuple(value for cid, rec in records for value in (int(cid), *(rec[f] for f in FIELD_NAMES)))
    return int(conn.exec_driver_sql(sql, params).rowcount)


# Rows per bulk UPDATE: under SQLite's 32,766 bound parameters.
UPDATE_CHUNK = 32_766 // (1 + len(FIELD_NAMES))

__all__ = ["BlankMode", "ExistingMode", "Match", "Outcome", "blank_cells", "bulk_update", "DIFFERENT_PERSON", "different_person_errors",
           "identity_differences", "match_rows", "skip_errors"]
