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
        codes = np.asarray(encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
    else:
        codes = np.asarray(pd.factorize(keys, use_na_sentinel=True)[0], dtype=np.int64)
    return codes if codes.flags.writeable else codes.copy()  # callers may blank some


def _repeats(keys: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(positions, first positions): each position whose value an earlier position has, and that earlier
    one's. Blank (NA) values repeat nothing. The values are compared as integer codes numbered in order of
    first appearance (Arrow's dictionary encoding, pd.factorize), so a value is new exactly where its code
    is above every code before it: no Python object and no sort per row."""
    return _repeated_codes(_codes(keys))


def _repeated_codes(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """_repeats of values given as codes (numbered in order of first appearance, -1 for none)."""
    if not len(codes):
        return codes, codes
    seen = np.maximum.accumulate(codes)
    new = np.empty(len(codes), dtype=bool)
    new[0] = True
    np.greater(codes[1:], seen[:-1], out=new[1:])
    del seen
    first_of_code = np.flatnonzero(new & (codes >= 0))  # code k first appears at first_of_code[k]
    repeated = np.flatnonzero(~new & (codes >= 0))
    return repeated, first_of_code[codes[repeated]]


def _key_columns(normalised: pd.DataFrame, keep: np.ndarray | None = None) -> tuple[np.ndarray, dict[str, pd.Series]]:
    """(source rows, each key column) in source row order, of the rows `keep` marks (all when None). Only
    the key columns, one at a time, and sorted only when the rows are not in order already: a copy of the
    whole frame (every column of 100,000 rows) was once the largest allocation of a workspace replay."""
    index = normalised.index
    order = None if index.is_monotonic_increasing else np.argsort(index.to_numpy(), kind="stable")
    if keep is not None:
        order = np.flatnonzero(keep) if order is None else order[keep[order]]
    rows = index.to_numpy() if order is None else index.to_numpy()[order]

    def column(field: str) -> pd.Series:
        values = normalised[field]
        return values if order is None else values.take(order)

    return rows, {field: column(field) for field in UNIQUE_FIELDS}


def duplicate_rows(normalised: pd.DataFrame, keep: np.ndarray | None = None) -> np.ndarray:
    """The rows find_duplicates_in_file names (sorted, each once), without making its messages; among the
    rows `keep` marks (a boolean array over normalised's rows) when given."""
    if not normalised.index.is_monotonic_increasing:
        rows, columns = _key_columns(normalised, keep)
        found = [rows[_repeats(column)[0]] for column in columns.values()]
    else:  # a column at a time, the rows not kept read as blank: no copy of any column
        rows, found = normalised.index.to_numpy(), []
        for field in UNIQUE_FIELDS:
            codes = _codes(normalised[field])
            if keep is not None:
                codes[~keep] = -1
            found.append(rows[_repeated_codes(codes)[0]])
    return np.unique(np.concatenate(found)).astype(np.int64) if found else np.empty(0, dtype=np.int64)


def find_duplicates_in_file(normalised: pd.DataFrame) -> ErrorTable:
    """(row, error) for every row that repeats a key of an earlier row, naming the row it repeats.

    The index of `normalised` is the source row number; rows are compared in that order.
    """
    errors: list[tuple[int, RowError]] = []  # (row, error), made into columns at the end
    rows, columns = _key_columns(normalised)
    for field, column in columns.items():
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
