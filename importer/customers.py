"""What the dashboard asks of the customers (no writes): classify an upload against the database, search
customers a page at a time, one customer's detail with its audit trail, and the filtered set streamed
for an export."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from importer.db import HEAD_REVISION, current_revision, customer_changes, customers, import_runs, reading
from importer.existing import KEY_CHUNK, records
from importer.matching import BlankMode, Outcome, blank_cells, match_rows, skip_errors
from importer.results import ErrorTable, changes_between
from schemas.customer import FIELD_NAMES, UNIQUE_FIELDS

_OUTCOMES = tuple(Outcome)
CUSTOMER_COLUMNS = ("id", *FIELD_NAMES, "created_at", "import_run_id", "source_row_number")


@dataclass(frozen=True)
class Classification:
    """An upload's valid rows against the database, as columns.

    `rows`: one line per valid row: row (source row), outcome (new / unchanged / changed / conflict),
    customer_id (-1 for new and conflict). `changes`: one line per changed field of a changed row: row,
    customer_id, field, old, new. `conflicts`: the `conflict` errors, naming each customer and field, and
    `skipped`: the `already_exists` errors a changed row gets under --existing skip (what differs).
    Rows with errors of their own are not classified.
    """

    rows: pd.DataFrame
    changes: pd.DataFrame
    conflicts: ErrorTable = field(default_factory=ErrorTable.empty)
    skipped: ErrorTable = field(default_factory=ErrorTable.empty)

    def counts(self) -> dict[str, int]:
        """{outcome: rows} for every outcome, zeros included."""
        found = self.rows["outcome"].value_counts()
        return {o.value: int(found.get(o.value, 0)) for o in _OUTCOMES}

    def diffs_of(self, row: int) -> dict[str, tuple[Any, Any]]:
        """field -> (stored, file) for one changed row."""
        part = self.changes[self.changes["row"] == row]
        return {f: (None if pd.isna(o) else o, None if pd.isna(n) else n)
                for f, o, n in part[["field", "old", "new"]].itertuples(index=False, name=None)}


def classify_upload(engine: sa.Engine, checked: Any, blank: BlankMode | str = BlankMode.KEEP,
                    chunk: int = KEY_CHUNK) -> Classification:
    """Classify each valid row of an upload (new, unchanged, changed with its diff, conflict) without
    writing: three set queries per chunk of rows. A database without the schema has no customers."""
    clear = BlankMode(blank) is BlankMode.CLEAR
    valid = checked.normalised.loc[checked.valid_index()].reindex(columns=list(FIELD_NAMES))
    out_rows: list[np.ndarray] = []
    out_outcomes: list[np.ndarray] = []
    out_ids: list[np.ndarray] = []
    diff_rows: list[int] = []
    diff_ids: list[int] = []
    diff_fields: list[str] = []
    diff_old: list[Any] = []
    diff_new: list[Any] = []
    conflicts: list[ErrorTable] = []
    skipped: list[ErrorTable] = []
    if current_revision(engine) != HEAD_REVISION:  # nothing stored yet (or an old schema): all new
        numbers = valid.index.to_numpy(dtype=np.int64)
        out_rows.append(numbers)
        out_outcomes.append(np.zeros(len(numbers), dtype=np.int8))
        out_ids.append(np.full(len(numbers), -1, dtype=np.int64))
    else:
        with reading(engine) as conn:
            for start in range(0, len(valid), chunk):
                part = records(valid.iloc[start:start + chunk], FIELD_NAMES)
                blanks = blank_cells(checked.original, [n for n, _ in part])
                matches = match_rows(conn, part, blanks, clear=clear)
                numbers = np.fromiter((n for n, _ in part), dtype=np.int64, count=len(part))
                out_rows.append(numbers)
                out_outcomes.append(np.fromiter((_OUTCOMES.index(matches[n].outcome) for n, _ in part),
                                                dtype=np.int8, count=len(part)))
                out_ids.append(np.fromiter(
                    (-1 if matches[n].customer_id is None or matches[n].outcome is Outcome.CONFLICT
                     else matches[n].customer_id for n, _ in part), dtype=np.int64, count=len(part)))
                conflicts.append(ErrorTable.from_pairs(
                    ((n, e) for n, _ in part for e in matches[n].errors), field_order=False))
                skipped.append(ErrorTable.from_pairs(
                    ((n, e) for n, _ in part if matches[n].outcome is Outcome.CHANGED
                     for e in skip_errors(matches[n])), field_order=False))
                for n, _ in part:
                    match = matches[n]
                    if match.outcome is Outcome.CHANGED:
                        for f, (old, new) in match.changes().items():
                            diff_rows.append(n)
                            diff_ids.append(int(match.customer_id or -1))
                            diff_fields.append(f)
                            diff_old.append(old)
                            diff_new.append(new)
    rows = pd.DataFrame({
        "row": np.concatenate(out_rows) if out_rows else np.array([], dtype=np.int64),
        "outcome": pd.Categorical.from_codes(
            np.concatenate(out_outcomes) if out_outcomes else np.array([], dtype=np.int8),
            categories=[o.value for o in _OUTCOMES]),
        "customer_id": np.concatenate(out_ids) if out_ids else np.array([], dtype=np.int64),
    })
    changes = pd.DataFrame({
        "row": np.asarray(diff_rows, dtype=np.int64), "customer_id": np.asarray(diff_ids, dtype=np.int64),
        "field": pd.Categorical(diff_fields, categories=list(FIELD_NAMES)),
        "old": pd.array(diff_old, dtype="string"), "new": pd.array(diff_new, dtype="string"),
    })
    return Classification(rows, changes, ErrorTable.concat(conflicts, field_order=False),
                          ErrorTable.concat(skipped, field_order=False))


@dataclass(frozen=True)
class CustomerPage:
    """One page of a customer search: the rows (dicts of CUSTOMER_COLUMNS) and how many match in all."""

    rows: list[dict[str, Any]]
    total: int
    limit: int
    offset: int


def _filtered(text: str | None, region: str | None, run_id: int | None) -> list[sa.ColumnElement[bool]]:
    where: list[sa.ColumnElement[bool]] = []
    if text and text.strip():
        needle = text.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{needle}%"
        where.append(sa.or_(*(sa.func.lower(customers.c[f]).like(pattern, escape="\\")
                              for f in ("shipping_mark", "first_name", "last_name", "phone", "email"))))
    if region:
        where.append(customers.c.region == region)
    if run_id is not None:
        updated_by = sa.select(customer_changes.c.customer_id).where(customer_changes.c.run_id == run_id)
        where.append(sa.or_(customers.c.import_run_id == run_id, customers.c.id.in_(updated_by)))
    return where


def search_customers(engine: sa.Engine, text: str | None = None, *, region: str | None = None,
                     run_id: int | None = None, limit: int = 50, offset: int = 0) -> CustomerPage:
    """Customers whose shipping mark, name, phone or email contains `text` (any case), optionally in one
    region and created or updated by one run; a page by id (LIMIT/OFFSET in the database) and the total."""
    where = _filtered(text, region, run_id)
    limit, offset = max(1, min(int(limit), 1_000)), max(0, int(offset))
    page = (sa.select(*(customers.c[c] for c in CUSTOMER_COLUMNS)).where(*where)
            .order_by(customers.c.id).limit(limit).offset(offset))
    count = sa.select(sa.func.count()).select_from(customers).where(*where)
    with reading(engine) as conn:
        total = int(conn.execute(count).scalar_one())
        rows = [dict(r._mapping) for r in conn.execute(page)]
    return CustomerPage(rows, total, limit, offset)


def iter_customers(engine: sa.Engine, text: str | None = None, *, region: str | None = None,
                   run_id: int | None = None, batch: int = 2_000) -> Iterator[dict[str, Any]]:
    """Every customer the same filters select, by id, streamed in keyset pages (for an export)."""
    where = _filtered(text, region, run_id)
    last = 0
    while True:
        stmt = (sa.select(*(customers.c[c] for c in CUSTOMER_COLUMNS)).where(*where, customers.c.id > last)
                .order_by(customers.c.id).limit(batch))
        with reading(engine) as conn:
            rows = [dict(r._mapping) for r in conn.execute(stmt)]
        yield from rows
        if len(rows) < batch:
            return
        last = rows[-1]["id"]


def customer_detail(engine: sa.Engine, customer_id: int) -> dict[str, Any] | None:
    """One customer: its record, the run that created it (id, file, when), and each update by an import
    with its diff, oldest first. None when there is no such customer."""
    with reading(engine) as conn:
        row = conn.execute(sa.select(*(customers.c[c] for c in CUSTOMER_COLUMNS))
                           .where(customers.c.id == customer_id)).first()
        if row is None:
            return None
        record = dict(row._mapping)
        created_by = None
        if record["import_run_id"] is not None:
            run = conn.execute(sa.select(import_runs.c.id, import_runs.c.file_name, import_runs.c.started_at)
                               .where(import_runs.c.id == record["import_run_id"])).first()
            created_by = dict(run._mapping) if run else None
        history = conn.execute(
            sa.select(customer_changes.c.run_id, customer_changes.c.source_row_number,
                      customer_changes.c.changed_at, customer_changes.c.before, customer_changes.c.after,
                      import_runs.c.file_name, import_runs.c.status)
            .join(import_runs, import_runs.c.id == customer_changes.c.run_id)
            .where(customer_changes.c.customer_id == customer_id).order_by(customer_changes.c.id)).all()
    return {
        "customer": record,
        "created_by": created_by,
        "changes": [{"run_id": h.run_id, "file_name": h.file_name, "run_status": h.status,
                     "source_row_number": h.source_row_number, "changed_at": h.changed_at,
                     "changes": changes_between(h.before, h.after)} for h in history],
    }


__all__ = ["CUSTOMER_COLUMNS", "UNIQUE_FIELDS", "Classification", "CustomerPage", "classify_upload",
           "customer_detail", "iter_customers", "search_customers"]
