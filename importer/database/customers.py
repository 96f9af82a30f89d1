"""What the dashboard asks of the customers (no writes): classify an upload against the database, search
customers a page at a time, one customer's detail with its audit trail, and the filtered set streamed
for an export."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from importer.database.lookup import KEY_CHUNK, records
from importer.database.matching import (
    DIFFERENT_PERSON,
    BlankMode,
    Outcome,
    blank_cells,
    match_rows,
    skip_errors,
)
from importer.database.schema import (
    HEAD_REVISION,
    current_revision,
    customer_changes,
    customers,
    import_runs,
    is_postgres,
    reading,
)
from importer.outcomes.error_table import ErrorTable
from importer.outcomes.failed_rows import changes_between
from importer.outcomes.row_errors import ErrorCode
from schemas.customer import FIELD_NAMES, UNIQUE_FIELDS

_OUTCOMES = tuple(Outcome)
CUSTOMER_COLUMNS = ("id", *FIELD_NAMES, "created_at", "import_run_id", "source_row_number")
# A text search counts its matches up to this many, then says "more than" (a broad term such as "a"
# matches most customers, and counting a million of them took 0.4-0.6 s: bench/bench_customers.py).
SEARCH_COUNT_CAP = 10_000


@dataclass(frozen=True)
class Classification:
    """An upload's valid rows against the database, as columns.

    `rows`: one line per valid row: row (source row), outcome (new / unchanged / changed / conflict),
    customer_id (-1 for new and conflict). `changes`: one line per changed field of a changed row: row,
    customer_id, field, old, new. `conflicts`: the `conflict` errors, naming each customer and field, and
    `skipped`: the `already_exists` errors a changed row gets under --existing skip (what differs).
    `different`: {row: customer id} of the conflicts that are a possible different person (the keys point
    to one customer whose mark or whole name differs), which the analyst may confirm row by row.
    Rows with errors of their own are not classified, except rows failing only as in-file duplicates, which
    are listed when their keys belong to two or more customers (conflict).
    """

    rows: pd.DataFrame
    changes: pd.DataFrame
    conflicts: ErrorTable = field(default_factory=ErrorTable.empty)
    skipped: ErrorTable = field(default_factory=ErrorTable.empty)
    different: dict[int, int] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """{outcome: rows} for every outcome, zeros included."""
        found = self.rows["outcome"].value_counts()
        return {o.value: int(found.get(o.value, 0)) for o in _OUTCOMES}

    def diffs_of(self, row: int) -> dict[str, tuple[Any, Any]]:
        """field -> (stored, file) for one changed row."""
        part = self.changes[self.changes["row"] == row]
        return {f: (None if pd.isna(o) else o, None if pd.isna(n) else n)
                for f, o, n in part[["field", "old", "new"]].itertuples(index=False, name=None)}


def _duplicates_only(checked: Any) -> np.ndarray:
    """The rows whose only errors are in-file duplicates, ascending."""
    errors = checked.errors
    return np.setdiff1d(errors.rows_with(ErrorCode.DUPLICATE_IN_FILE),
                        errors.without_code(ErrorCode.DUPLICATE_IN_FILE).rows())


def _any_customer(engine: sa.Engine) -> bool:
    """Whether any customer is stored (a first import into a new database has none to compare with)."""
    with reading(engine) as conn:
        return conn.execute(sa.select(customers.c.id).limit(1)).first() is not None


def classify_upload(engine: sa.Engine, checked: Any, blank: BlankMode | str = BlankMode.KEEP,
                    chunk: int = KEY_CHUNK, confirmed: Collection[int] = (),
                    progress: Callable[[int, int], None] | None = None) -> Classification:
    """Classify each valid row of an upload (new, unchanged, changed with its diff, conflict) without
    writing: three set queries per chunk of rows. A database without the schema has no customers.
    `confirmed`: rows the analyst confirmed as the customer their keys point to (matching.match_rows).
    `progress(rows done, valid rows)` after each chunk (an exception from it stops the classification)."""
    clear = BlankMode(blank) is BlankMode.CLEAR
    valid = checked.valid_index()  # each chunk's rows are taken from normalised as it is looked up: a copy of
    # every valid row (16 MB for 100,000) was held for the whole classification
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
    different: dict[int, int] = {}
    if current_revision(engine) != HEAD_REVISION or not _any_customer(engine):
        # nothing stored yet (or an old schema): every valid row is new, and no key can be anyone's
        numbers = valid.to_numpy(dtype=np.int64)
        out_rows.append(numbers)
        out_outcomes.append(np.zeros(len(numbers), dtype=np.int8))
        out_ids.append(np.full(len(numbers), -1, dtype=np.int64))
    else:
        with reading(engine) as conn:
            for start in range(0, len(valid), chunk):
                part = records(checked.normalised.loc[valid[start:start + chunk]], FIELD_NAMES)
                blanks = blank_cells(checked.original, [n for n, _ in part])
                matches = match_rows(conn, part, blanks, clear=clear, confirmed=confirmed)
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
                    if match.outcome is Outcome.CONFLICT and match.customer_id is not None and any(
                            e.message.startswith(DIFFERENT_PERSON) for e in match.errors):
                        different[int(n)] = int(match.customer_id)
                    if match.outcome is Outcome.CHANGED:
                        for f, (old, new) in match.changes().items():
                            diff_rows.append(n)
                            diff_ids.append(int(match.customer_id or -1))
                            diff_fields.append(f)
                            diff_old.append(old)
                            diff_new.append(new)
                if progress is not None:
                    progress(start + len(part), len(valid))
            # A row failing only as an in-file duplicate is looked up too: when its keys belong to two or more
            # stored customers (one customer's mark, another's phone) it is a conflict as well, and counted so.
            duplicates = _duplicates_only(checked)
            for start in range(0, len(duplicates), chunk):
                part = records(checked.normalised.loc[duplicates[start:start + chunk]]
                               .reindex(columns=list(FIELD_NAMES)), FIELD_NAMES)
                matches = match_rows(conn, part, {})
                hit = [n for n, _ in part if matches[n].outcome is Outcome.CONFLICT and matches[n].customer_id is None]
                if hit:
                    out_rows.append(np.asarray(hit, dtype=np.int64))
                    out_outcomes.append(np.full(len(hit), _OUTCOMES.index(Outcome.CONFLICT), dtype=np.int8))
                    out_ids.append(np.full(len(hit), -1, dtype=np.int64))
                    conflicts.append(ErrorTable.from_pairs(((n, e) for n in hit for e in matches[n].errors),
                                                           field_order=False))
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
                          ErrorTable.concat(skipped, field_order=False), different)


@dataclass(frozen=True)
class CustomerPage:
    """One page of a customer search: the rows (dicts of CUSTOMER_COLUMNS) and how many match in all.

    `capped`: the count stopped at the search's count_cap, so `total` is a lower bound ("more than").
    `after_id`: the page was the one after this id (keyset paging), None when it came by offset.
    """

    rows: list[dict[str, Any]]
    total: int
    limit: int
    offset: int
    capped: bool = False
    after_id: int | None = None

    @property
    def last_id(self) -> int | None:
        """The id to pass as after_id for the next page (None on an empty page)."""
        return self.rows[-1]["id"] if self.rows else None


_SPACE: sa.ColumnElement[str] = sa.literal_column("' '", sa.String())
_PHONE_LIKE = re.compile(r"\+?[\d\s().-]+")
_SPACES = re.compile(r"\s+")


def search_text() -> sa.ColumnElement[str]:
    """The text a search looks in: mark, first and last name, phone and email, lower case, one line per
    customer. It is the expression of migration 0006's trigram index on PostgreSQL: keep the two alike."""
    c = customers.c
    return sa.func.lower(c.shipping_mark + _SPACE + c.first_name + _SPACE + c.last_name + _SPACE + c.phone
                         + _SPACE + sa.func.coalesce(c.email, sa.literal_column("''")))


def search_terms(text: str) -> list[str]:
    """What a search box's text is looked for as: itself in lower case with runs of spaces made one, and
    for something that looks like a phone number, its digits (`024 000 1234` -> `0240001234`) and, for a
    local number, those without the leading 0 (`240001234`, found in `+233240001234`)."""
    term = _SPACES.sub(" ", text.strip().lower())
    terms = [term] if term else []
    if term and _PHONE_LIKE.fullmatch(term):
        digits = re.sub(r"[^\d+]", "", term)
        if len(digits) >= 3 and digits not in terms:
            terms.append(digits)
        if re.fullmatch(r"0\d{8,}", digits):
            terms.append(digits[1:])
    return terms


def _like(term: str) -> sa.ColumnElement[bool]:
    needle = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return search_text().like(f"%{needle}%", escape="\\")


def _matching(postgres: bool, text: str | None, region: str | None, run_id: int | None,
              after_id: int | None = None) -> sa.Subquery:
    """The customers the filters select (CUSTOMER_COLUMNS, with an id above after_id), unordered.

    With a run, the union of two disjoint parts, each found through an index: the customers the run
    created (ix_customers_run_id: import_run_id, id, which also gives them in id order for a page) and the
    others it updated (from customer_changes by run). An OR of the two read the whole table: 0.6 s at
    1,000,000 customers.
    """
    where: list[sa.ColumnElement[bool]] = []
    terms = search_terms(text or "")
    if terms:
        where.append(sa.or_(*(_like(t) for t in terms)))
    if region:
        where.append(customers.c.region == region)
    if after_id is not None:
        where.append(customers.c.id > int(after_id))
    columns = [customers.c[c] for c in CUSTOMER_COLUMNS]
    if run_id is None:
        return sa.select(*columns).where(*where).subquery()
    run_id = int(run_id)
    created = sa.select(*columns).where(customers.c.import_run_id == run_id, *where)
    changed = sa.select(customer_changes.c.customer_id).where(customer_changes.c.run_id == run_id)
    # PostgreSQL: `id = ANY(ARRAY(...))` takes the run's changes once and looks each customer up by id; as
    # `IN (...)` the planner hashed them and read every customer (0.28 s at 1,000,000).
    updated_by_run = (customers.c.id == sa.any_(sa.func.array(changed.scalar_subquery())) if postgres
                      else customers.c.id.in_(changed))
    updated = sa.select(*columns).where(
        sa.or_(customers.c.import_run_id != run_id, customers.c.import_run_id.is_(None)), updated_by_run, *where)
    return sa.union_all(created, updated).subquery()


def search_customers(engine: sa.Engine, text: str | None = None, *, region: str | None = None,
                     run_id: int | None = None, limit: int = 50, offset: int = 0, after_id: int | None = None,
                     count_cap: int | None = None) -> CustomerPage:
    """Customers whose shipping mark, name, phone or email contains `text` (any case), optionally in one
    region and created or updated by one run, ordered by id; one page and how many match in all.

    The page is the `limit` customers after `offset` ones, or with `after_id` the `limit` customers with
    an id above it (keyset paging: as fast on the last page as on the first). With `count_cap`, counting
    stops past that many (`capped` is then True): a search that matches half a million customers does not
    count them all.
    """
    limit, offset = max(1, min(int(limit), 1_000)), max(0, int(offset))
    if after_id is not None:
        after_id, offset = int(after_id), 0
    postgres = is_postgres(engine)
    shown = _matching(postgres, text, region, run_id, after_id)
    page = sa.select(shown).order_by(shown.c.id).limit(limit).offset(offset)
    every = _matching(postgres, text, region, run_id)
    matching = sa.select(every.c.id)
    if count_cap is not None:
        count_cap = max(1, int(count_cap))
        matching = matching.limit(count_cap + 1)
    count = sa.select(sa.func.count()).select_from(matching.subquery())
    with reading(engine) as conn:
        rows = [dict(r._mapping) for r in conn.execute(page)]
        # A first page that is not full holds every match: no need to count (on SQLite, which reads the
        # whole table for a text search, that halves a selective search).
        known = after_id is None and offset == 0 and len(rows) < limit
        total = len(rows) if known else int(conn.execute(count).scalar_one())
    capped = count_cap is not None and total > count_cap
    return CustomerPage(rows, count_cap if capped and count_cap is not None else total, limit, offset, capped,
                        after_id)


def iter_customers(engine: sa.Engine, text: str | None = None, *, region: str | None = None,
                   run_id: int | None = None, batch: int = 2_000) -> Iterator[dict[str, Any]]:
    """Every customer the same filters select, by id, streamed (for an export): one query, read `batch`
    rows at a time through a server-side cursor, so memory stays flat however many match."""
    chosen = _matching(is_postgres(engine), text, region, run_id)
    stmt = sa.select(chosen).order_by(chosen.c.id)
    with reading(engine) as conn:
        result = conn.execution_options(stream_results=True, yield_per=max(1, int(batch))).execute(stmt)
        for row in result:
            yield dict(row._mapping)


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


__all__ = ["CUSTOMER_COLUMNS", "SEARCH_COUNT_CAP", "UNIQUE_FIELDS", "Classification", "CustomerPage", "classify_upload",
           "customer_detail", "iter_customers", "search_customers", "search_terms", "search_text"]
