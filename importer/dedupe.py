"""Duplicates inside one file: on the normalised shipping mark, phone and email, the first row wins."""

from __future__ import annotations

import pandas as pd

from importer.results import ErrorCode, ErrorTable, RowError
from schemas.customer import UNIQUE_FIELDS, label_of


def find_duplicates_in_file(normalised: pd.DataFrame) -> ErrorTable:
    """(row, error) for every row that repeats a key of an earlier row, naming the row it repeats.

    The index of `normalised` is the source row number; rows are compared in that order.
    """
    errors: list[tuple[int, RowError]] = []  # (row, error), made into columns at the end
    frame = normalised.sort_index()
    for field in UNIQUE_FIELDS:
        keys = frame[field].dropna()
        repeated = keys.duplicated(keep="first")
        if not repeated.any():
            continue
        first_row = pd.Series(keys.index, index=keys.index).groupby(keys.values).transform("first")
        label = label_of(field).lower()
        for row, key, first in zip(
            keys.index[repeated], keys[repeated], first_row[repeated], strict=True
        ):
            errors.append((int(row), RowError(
                field,
                ErrorCode.DUPLICATE_IN_FILE,
                f"same {label} ({key}) as row {int(first)}; row {int(first)} is kept, "
                "so remove this row or correct its value",
                value=str(key), other_row=int(first),
            )))
    return ErrorTable.from_pairs(errors, field_order=False)
