"""Which rows already exist in the database: set queries by key, a few thousand keys per query."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from importer.database.schema import customers, reading
from importer.outcomes.row_errors import ErrorCode, RowError
from schemas.customer import FIELD_NAMES, UNIQUE_FIELDS, label_of

# Under SQLite's 32,766 bound-variable limit and small enough for a quick index probe.
KEY_CHUNK = 5_000
_SHOWN = ("id", *FIELD_NAMES, "created_at", "import_run_id", "source_row_number")
# What an already_exists message names.
_KEY_COLUMNS = ("id", "shipping_mark", "first_name", "last_name", "phone", "email")


def one_of(conn: sa.Connection, column: sa.Column, keys: list[str], name: str = "keys") -> sa.ColumnElement[bool]:
    """`column IN keys`; on PostgreSQL as `= ANY(array)`, one bound parameter instead of thousands."""
    if conn.dialect.name == "postgresql":
        return column == sa.any_(sa.bindparam(name, keys, type_=postgresql.ARRAY(sa.Text)))
    return column.in_(keys)


_one_of = one_of


def lookup(
    conn: sa.Connection, field: str, values: Iterable[str], columns: Sequence[str] = _KEY_COLUMNS,
    for_update: bool = False,
) -> dict[str, sa.Row]:
    """Existing customers whose `field` is one of `values`, keyed by that value (one query per chunk).

    `for_update` locks the rows found (PostgreSQL), so an update's before-image stays true until commit.
    """
    if field not in UNIQUE_FIELDS:
        raise ValueError(f"{field} is not a unique field")
    keys = sorted({v for v in values if v is not None})
    column = customers.c[field]
    found: dict[str, sa.Row] = {}
    for start in range(0, len(keys), KEY_CHUNK):
        part = keys[start:start + KEY_CHUNK]
        stmt = sa.select(*(customers.c[name] for name in columns)).where(_one_of(conn, column, part))
        if for_update and conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        for row in conn.execute(stmt):
            found[row._mapping[field]] = row
    return found


def exists_error(field: str, value: str, existing: sa.Row) -> RowError:
    """`already_exists` naming the field, the value and the customer that has it."""
    if field == "shipping_mark":
        who = f"{existing.first_name} {existing.last_name}, phone {existing.phone}"
    else:
        who = f"shipping mark {existing.shipping_mark}"
    return RowError(
        field, ErrorCode.ALREADY_EXISTS,
        f"a customer with this {label_of(field).lower()} ({value}) already exists: {who}", value=value,
    )


def conflicts(
    conn: sa.Connection, rows: Sequence[tuple[int, dict[str, Any]]]
) -> dict[int, tuple[RowError, ...]]:
    """For (source_row_number, normalised record) pairs: the rows whose unique keys already exist."""
    found: dict[int, list[RowError]] = {}
    for field in UNIQUE_FIELDS:
        hits = lookup(conn, field, (rec[field] for _, rec in rows))
        if not hits:
            continue
        for number, rec in rows:
            value = rec[field]
            if value is not None and value in hits:
                found.setdefault(number, []).append(exists_error(field, value, hits[value]))
    return {number: tuple(errs) for number, errs in sorted(found.items())}


def records(frame: pd.DataFrame, columns: Sequence[str]) -> list[tuple[int, dict[str, Any]]]:
    """(source row number, {column: value}) for each row of a normalised frame, missing values as None."""
    part = frame.reindex(columns=list(columns))
    values = part.to_numpy(dtype=object, na_value=None)  # one object matrix, missing values as None
    return [(i, dict(zip(columns, vals, strict=True))) for i, vals in zip(part.index.tolist(), values.tolist(), strict=True)]


def existing_customers(engine: sa.Engine, field: str, values: list[str]) -> list[dict]:
    """The stored customers with these values of `field`, for side-by-side display."""
    with reading(engine) as conn:
        found = lookup(conn, field, values, _SHOWN)
    return [dict(row._mapping) for row in sorted(found.values(), key=lambda row: row.id)]
