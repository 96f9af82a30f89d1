"""Shared helpers for the database tests: Checked-shaped inputs and quick engine setup."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import sqlalchemy as sa

from importer.db import ensure_schema, make_engine
from importer.results import RowError
from importer.settings import Settings
from schemas.customer import FIELD_NAMES

SETTINGS = Settings()


def ready_engine(url: str) -> sa.Engine:
    """An engine on a migrated database."""
    engine = make_engine(url)
    ensure_schema(engine)
    return engine


def person(i: int, **over: str) -> dict[str, str]:
    """A valid row as typed in a file, unique by i."""
    row = {
        "shipping_mark": f"pm{i} kofi", "first_name": "Kofi", "last_name": f"Mensah{i}",
        "email": f"kofi{i}@example.com", "phone": f"024{i:07d}", "region": "", "company_name": "",
        "nickname": "", "user_type": "",
    }
    row.update(over)
    return row


def frame(rows: list[dict[str, str]], start: int = 2) -> pd.DataFrame:
    """Rows as the mapping step hands them over: text, index = source row number from `start`."""
    df = pd.DataFrame(rows, columns=list(FIELD_NAMES), dtype=object).fillna("")
    df.index = pd.Index(range(start, start + len(rows)), name="source_row_number")
    return df


def checked_of(rows: list[dict[str, str]], start: int = 2):
    """The real validator's Checked for these rows."""
    from importer.validate import check_frame

    return check_frame(frame(rows, start), SETTINGS)


def raw_checked(normalised_rows: list[dict], errors: dict[int, tuple[RowError, ...]] | None = None,
                start: int = 2) -> SimpleNamespace:
    """A Checked-shaped object that bypasses validation (to feed the database what it must refuse)."""
    norm = pd.DataFrame(normalised_rows, columns=list(FIELD_NAMES), dtype=object)
    norm.index = pd.Index(range(start, start + len(norm)), name="source_row_number")
    original = norm.astype(object).where(norm.notna(), "").astype(str)
    return SimpleNamespace(original=original, normalised=norm, errors=dict(errors or {}))


def norm_row(i: int, **over) -> dict:
    """A valid, already-normalised record, unique by i."""
    row = {
        "shipping_mark": f"PM{i} KOFI", "first_name": "Kofi", "last_name": f"Mensah{i}",
        "email": f"kofi{i}@example.com", "phone": f"+23324{i:07d}", "region": "GREATER_ACCRA",
        "company_name": None, "nickname": None, "user_type": "INDIVIDUAL",
    }
    row.update(over)
    return row
