"""Duplicates inside one file: on the normalised shipping mark, phone and email, the first row wins."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from importer.results import ErrorCode, ErrorTable, RowError
from schemas.customer import UNIQUE_FIELDS, label_of


def _codes(keys: pd.Series) -> np.ndarray:
    """An integer per distinct value, -1 for NA. An Arrow string column is encoded by Arrow itself:
    pd.factorize on one also builds its distinct values as a pandas Index (17 MB for three 100,000-row
    columns, against 2 MB this way)."""
    arrow = getattr(keys.array, "__arrow_array__", None)
    if arrow is not None:
        array = arrow()
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        encoded = pc.dictionary_encode(array)
        return np.asarray(encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
    codes, _ = pd.factorize(keys, use_na_sentinel=True)
    return np.asarray(codes, dtype=np.int64)


def _repeats(keys: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(positions, first positions): each position whose value an earlier position has, and that earlier
    one's. Blank (NA) values repeat nothing. The values are compared as integer codes (pd.factorize: Arrow's
    dictionary encoding for string columns), so no Python object is made per row."""
    codes = _codes(keys)
    positions = np.flatnonzero(codes >= 0)
    if not len(positions):
        return positions, positions
    valued = codes[positions]
    first_of_code = np.empty(int(valued.max()) + 1, dtype=np.int64)
    unique, first_index = np.unique(valued, return_index=True)  # the first position of each code
    first_of_code[unique] = positions[first_index]
    first = first_of_code[valued]
    repeated = first != positions
    return positions[repeated], first[repeated]


def _in_row_order(normalised: pd.DataFrame) -> pd.DataFrame:
    # Only the key columns, sorted only when they are not in order already: a copy of the whole frame
    # (every column of 100,000 rows) was the largest allocation of a workspace replay.
    frame = normalised[list(UNIQUE_FIELDS)]
    return frame if frame.index.is_monotonic_increasing else frame.sort_index()


def duplicate_rows(normalised: pd.DataFrame) -> np.ndarray:
    """The rows find_duplicates_in_file names (sorted, each once), without making its messages."""
    frame = _in_row_order(normalised)
    found = [frame.index.to_numpy()[_repeats(frame[field])[0]] for field in UNIQUE_FIELDS]
    return np.unique(np.concatenate(found)).astype(np.int64) if found else np.empty(0, dtype=np.int64)


def find_duplicates_in_file(normalised: pd.DataFrame) -> ErrorTable:
    """(row, error) for every row that repeats a key of an earlier row, naming the row it repeats.

    The index of `normalised` is the source row number; rows are compared in that order.
    """
    errors: list[tuple[int, RowError]] = []  # (row, error), made into columns at the end
    frame = _in_row_order(normalised)
    rows = frame.index.to_numpy()
    for field in UNIQUE_FIELDS:
        column = frame[field]
        repeated, first = _repeats(column)
        if not len(repeated):
            continue
        label = label_of(field).lower()
        for row, key, first_row in zip(rows[repeated], column.take(repeated), rows[first], strict=True):
            errors.append((int(row), RowError(
                field,
                ErrorCode.DUPLICATE_IN_FILE,
                f"same {label} ({key}) as row {int(first_row)}; row {int(first_row)} is kept, "
                "so remove this row or correct its value",
                value=str(key), other_row=int(first_row),
            )))
    return ErrorTable.from_pairs(errors, field_order=False)
