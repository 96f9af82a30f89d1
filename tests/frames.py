"""Small mapped frames for engine tests: text as typed, index = source row number."""

from __future__ import annotations

import pandas as pd

from schemas.customer import FIELD_NAMES


def frame(*rows: dict[str, str], first_row: int = 2) -> pd.DataFrame:
    """A mapped frame from dicts of field -> text; missing fields are blank; rows numbered from 2."""
    records = [{name: row.get(name, "") for name in FIELD_NAMES} for row in rows]
    index = pd.Index(range(first_row, first_row + len(records)), name="source_row_number")
    return pd.DataFrame(records, index=index, columns=list(FIELD_NAMES), dtype=object)


def customer(n: int, **overrides: str) -> dict[str, str]:
    """A valid customer's text, distinct for each n; overrides replace fields."""
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
