"""Duplicates inside one file: on the normalised shipping mark, phone and email, the first row wins."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from importer.outcomes.error_table import ErrorTable
from importer.outcomes.row_errors import ErrorCode, sorted_unique
from schemas.customer import UNIQUE_FIELDS, label_of


def _codes(keys: pd.Series) -> np.ndarray:
    """An integer per distinct value, -1 for NA. An Arrow string column is numbered from one sort of it
    (sorted_codes): pd.factorize on one also builds its distinct values as a pandas Index (17 MB for three
    100,000-row columns), and Arrow's dictionary_encode builds a hash table of every distinct key (16 MB
    at its peak for one column of 100,000 distinct marks, against 5 MB sorted)."""
    arrow = getattr(keys.array, "__arrow_array__", None)
    if arrow is not None:
        array = arrow()
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        codes = sorted_codes(array)
    else:
        codes = np.asarray(pd.factorize(keys, use_na_sentinel=True)[0], dtype=np.int64)
    return codes if codes.flags.writeable else codes.copy()  # callers may blank some


def sorted_codes(array: pa.Array) -> np.ndarray:
    """An integer per distinct value of an Arrow array (numbered in sorted order), -1 for null: equal
    values are neighbours once sorted, so a new number starts wherever a value differs from the one
    before it. Holds the sort's order, one sorted copy of the values and a flag per value."""
    length = len(array)
    codes = np.full(length, -1, dtype=np.int64)
    valid = length - array.null_count
    if not valid:
        return codes
    order = pc.array_sort_indices(array, null_placement="at_end")
    values = array.take(order.slice(0, valid))
    starts = np.ones(valid, dtype=bool)
    if valid > 1:
        same = pc.equal(values.slice(1), values.slice(0, valid - 1))
        starts[1:] = ~np.asarray(same.to_numpy(zero_copy_only=False), dtype=bool)
    del values
    codes[np.asarray(order.slice(0, valid).to_numpy(zero_copy_only=False), dtype=np.intp)] = np.cumsum(starts) - 1
    return codes


def _repeated_codes(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positions, first positions): each position whose value an earlier position has, and that earlier
    one's, for values given as integer codes (-1: blank, repeats nothing). The first position of each code
    comes from one sort of the codes: no Python object per row. (Reading it off the codes' running
    maximum instead relied on codes numbered by first appearance, which blanking rows breaks.)"""
    valid = np.flatnonzero(codes >= 0)
    if not len(valid):
        return valid, valid
    values = codes[valid]
    unique, first_index = np.unique(values, return_index=True)
    first_of_code = np.empty(int(unique[-1]) + 1, dtype=np.int64)
    first_of_code[unique] = valid[first_index]
    first = first_of_code[values]
    repeated = first != valid
    return valid[repeated], first[repeated]


def _key_codes(normalised: pd.DataFrame, keep: np.ndarray | None = None,
               ) -> tuple[np.ndarray, Iterator[tuple[str, pd.Series, np.ndarray]]]:
    """(rows, key columns): the source rows in source row order, and for each key field its column in that
    order with its codes (_codes; -1 for the rows `keep` leaves out, a boolean array over normalised's
    rows: they read as blank), made one field at a time as they are asked for. Only the key columns: a
    copy of the whole frame (every column of 100,000 rows) was once the largest allocation of a replay."""
    index = normalised.index.to_numpy()
    order = None if normalised.index.is_monotonic_increasing else np.argsort(index, kind="stable")
    blank = None if keep is None else ~(keep if order is None else keep[order])

    def column(field: str) -> tuple[str, pd.Series, np.ndarray]:
        values = normalised[field] if order is None else normalised[field].take(order)
        codes = _codes(values)
        if blank is not None:
            codes[blank] = -1
        return field, values, codes

    return index if order is None else index[order], (column(field) for field in UNIQUE_FIELDS)


def duplicate_rows(normalised: pd.DataFrame, keep: np.ndarray | None = None) -> np.ndarray:
    """The rows find_duplicates_in_file names (sorted, each once), without making its messages; among the
    rows `keep` marks (a boolean array over normalised's rows) when given: the others read as blank."""
    rows, columns = _key_codes(normalised, keep)
    found = [rows[_repeated_codes(codes)[0]] for _, _, codes in columns]
    return sorted_unique(np.concatenate(found).astype(np.int64))


def find_duplicates_in_file(normalised: pd.DataFrame, keep: np.ndarray | None = None) -> ErrorTable:
    """(row, error) for every row that repeats a key of an earlier row, naming the row it repeats.

    The index of `normalised` is the source row number; rows are compared in that order. `keep`, when
    given, marks the rows to compare (a boolean array over normalised's rows): the others read as blank,
    as if they were not in the frame (a replay's excluded rows, without copying the frame without them).
    """
    rows, columns = _key_codes(normalised, keep)
    found = []
    for field, column, codes in columns:
        repeated, first = _repeated_codes(codes)
        if not len(repeated):
            continue
        label = label_of(field).lower()
        keys = [str(key) for key in column.take(repeated).tolist()]
        firsts = rows[first]
        found.append(ErrorTable.of_one_kind(
            field, ErrorCode.DUPLICATE_IN_FILE, rows[repeated],
            [f"same {label} ({key}) as row {first_row}; row {first_row} is kept, so remove this row or correct "
             "its value" for key, first_row in zip(keys, firsts.tolist(), strict=True)],
            keys, firsts))
    return ErrorTable.concat(found, field_order=False)
