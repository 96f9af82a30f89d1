"""Shared helpers of the engine and database tests: mapped frames, valid rows, Checked-shaped inputs, engines.

A mapped frame is what the mapping step hands to validation: the FIELD_NAMES columns as text (blank = ""),
the index the source row number (the header is row 1, so data starts at 2).
"""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import sqlalchemy as sa

from importer.database.schema import ensure_schema, make_engine
from importer.outcomes.row_errors import RowError
from importer.settings import Settings
from schemas.customer import FIELD_NAMES

SETTINGS = Settings()


def ready_engine(url: str) -> sa.Engine:
    """An engine on a migrated database."""
    engine = make_engine(url)
    ensure_schema(engine)
    return engine


# --- rows as typed in a file ----------------------------------------------------------------------------


def customer(n: int, **overrides: str) -> dict[str, str]:
    """A valid customer's text, distinct for each n, optional fields left out; overrides replace fields."""
    row = {
        "shipping_mark": f"PM{n} KOFI",
        "first_name": "Kofi",
        "last_name": "Mensah",
        "email": f"kofi{n}@example.com",
        "phone": f"024{n:07d}",
        "region": "Ashanti",
    }
    row.update(overrides)
    return row


def person(i: int, **over: str) -> dict[str, str]:
    """A valid row as typed in a file, every field present, unique by i (last name too)."""
    row = {
        "shipping_mark": f"pm{i} kofi", "first_name": "Kofi", "last_name": f"Mensah{i}",
        "email": f"kofi{i}@example.com", "phone": f"024{i:07d}", "region": "", "company_name": "",
        "nickname": "", "user_type": "",
    }
    row.update(over)
    return row


def frame(*rows: dict[str, str] | list[dict[str, str]], first_row: int = 2) -> pd.DataFrame:
    """A mapped frame from dicts of field -> text (or one list of them); missing fields are blank; the rows
    numbered from first_row."""
    if len(rows) == 1 and isinstance(rows[0], list):
        rows = tuple(rows[0])
    records = [{name: row.get(name, "") for name in FIELD_NAMES} for row in rows]
    index = pd.Index(range(first_row, first_row + len(records)), name="source_row_number")
    return pd.DataFrame(records, index=index, columns=list(FIELD_NAMES), dtype=object)


def checked_of(rows: list[dict[str, str]], start: int = 2):
    """The real validator's Checked for these rows."""
    from importer.checks.validate import check_frame

    return check_frame(frame(rows, first_row=start), SETTINGS)


# --- rows as validation leaves them -----------------------------------------------------------------------


def norm_row(i: int, **over) -> dict:
    """A valid, already-normalised record, unique by i."""
    row = {
        "shipping_mark": f"PM{i} KOFI", "first_name": "Kofi", "last_name": f"Mensah{i}",
        "email": f"kofi{i}@example.com", "phone": f"+23324{i:07d}", "region": "GREATER_ACCRA",
        "company_name": None, "nickname": None, "user_type": "INDIVIDUAL",
    }
    row.update(over)
    return row


def raw_checked(normalised_rows: list[dict], errors: dict[int, tuple[RowError, ...]] | None = None,
                start: int = 2) -> SimpleNamespace:
    """A Checked-shaped object that bypasses validation (to feed the database what it must refuse)."""
    norm = pd.DataFrame(normalised_rows, columns=list(FIELD_NAMES), dtype=object)
    norm.index = pd.Index(range(start, start + len(norm)), name="source_row_number")
    original = norm.astype(object).where(norm.notna(), "").astype(str)
    return SimpleNamespace(original=original, normalised=norm, errors=dict(errors or {}))


def import_cut_off(engine: sa.Engine, checked, rows_done: int = 20, batch_size: int = 10, **kw) -> int:
    """An import of `checked` cut off once `rows_done` rows are settled (chunks of `batch_size`), left as
    a dead process leaves it (running, owned by a dead pid on this host); returns its run id."""
    import socket

    import pytest

    from importer.database.loader import Progress, run_import
    from importer.database.schema import import_runs

    def die(p: Progress) -> None:
        if p.rows_done >= rows_done:
            raise KeyboardInterrupt

    kw.setdefault("file_name", "customers.xlsx")
    kw.setdefault("sheet", "Customers")
    with pytest.raises(KeyboardInterrupt):
        run_import(engine, checked, settings=SETTINGS, batch_size=batch_size, progress=die, **kw)
    with engine.begin() as conn:
        run_id = int(conn.execute(sa.select(sa.func.max(import_runs.c.id))).scalar_one())
        conn.execute(sa.update(import_runs).where(import_runs.c.id == run_id)
                     .values(status="running", owner=f"{socket.gethostname()}:999999"))
    return run_id
