"""In-file duplicates: on normalised keys, the first row wins, later rows name it."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from importer.checks.in_file import duplicate_rows, find_duplicates_in_file
from importer.outcomes.row_errors import ErrorCode


def normalised(rows: dict[int, tuple[str | None, str | None, str | None]]) -> pd.DataFrame:
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=["shipping_mark", "phone", "email"], dtype=object)
    frame.index.name = "source_row_number"
    return frame


def test_first_occurrence_wins_on_every_key() -> None:
    errors = find_duplicates_in_file(normalised({
        2: ("PM1", "+233241234567", "a@x.com"),
        5: ("PM1", "+233241234568", None),
        7: ("PM2", "+233241234567", "a@x.com"),
        9: ("PM1", "+233241234567", None),
    }))
    assert set(errors) == {5, 7, 9}
    assert [(e.field, e.code) for e in errors[7]] == [("phone", ErrorCode.DUPLICATE_IN_FILE),
                                                     ("email", ErrorCode.DUPLICATE_IN_FILE)]
    assert all("row 2" in e.message for e in errors[9])


def test_rows_are_compared_in_source_order_whatever_the_frame_order() -> None:
    errors = find_duplicates_in_file(normalised({9: ("PM1", "+1", None), 3: ("PM1", "+2", None)}))
    assert list(errors) == [9]


def test_missing_keys_never_collide() -> None:
    assert find_duplicates_in_file(normalised({2: (None, None, None), 3: (None, None, None)})) == {}


def _reference(frame: pd.DataFrame) -> dict[int, list[tuple[str, str, int]]]:
    """Row by row: for each key, the first row (in source order) that had it wins."""
    found: dict[int, list[tuple[str, str, int]]] = {}
    for field in ["shipping_mark", "phone", "email"]:
        first: dict[str, int] = {}
        for row in sorted(frame.index):
            value = frame.at[row, field]
            if value is None or (isinstance(value, float) and pd.isna(value)):
                continue
            if value in first:
                found.setdefault(int(row), []).append((field, str(value), first[value]))
            else:
                first[value] = int(row)
    return found


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.integers(1, 60), st.tuples(*[st.one_of(st.none(), st.sampled_from(["", "a", "b", "c"]))] * 3),
                       max_size=40),
       st.sampled_from([object, "str"]))
def test_duplicates_match_a_row_by_row_reference(rows: dict, dtype: object) -> None:
    frame = normalised(rows).astype(dtype) if rows else normalised(rows)
    expected = _reference(normalised(rows))
    errors = find_duplicates_in_file(frame)
    assert {row: [(e.field, e.value, e.other_row) for e in errors[row]] for row in errors} == expected
    assert duplicate_rows(frame).tolist() == sorted(expected)
    keep = np.asarray([row % 3 != 0 for row in frame.index], dtype=bool)  # some rows excluded
    kept = _reference(normalised(rows)[keep])
    assert duplicate_rows(frame, keep).tolist() == sorted(kept)
    errors = find_duplicates_in_file(frame, keep)  # as if the rows not kept were not in the frame
    assert {row: [(e.field, e.value, e.other_row) for e in errors[row]] for row in errors} == kept


def test_an_excluded_first_holder_of_a_key_leaves_the_next_one_unrepeated() -> None:
    """The rows not kept read as blank: the row after an excluded first holder is the first one now."""
    frame = normalised({2: ("PM1", None, None), 3: ("PM2", None, None), 4: ("PM1", None, None)}).astype("str")
    assert duplicate_rows(frame).tolist() == [4]
    assert duplicate_rows(frame, np.array([False, True, True])).tolist() == []
    assert find_duplicates_in_file(frame, np.array([False, True, True])) == {}


@given(st.lists(st.one_of(st.none(), st.sampled_from(["", "a", "A", "b", "ab", "a ", "é", "e\u0301", "0", "00"])),
                max_size=40))
@settings(max_examples=150, deadline=None)
def test_sorted_codes_number_equal_values_alike_and_nulls_minus_one(values: list[str | None]) -> None:
    """sorted_codes (one sort, no hash table of every key) gives equal values one number and different
    values different numbers, as pandas' factorize does."""
    import pyarrow as pa

    from importer.checks.in_file import sorted_codes

    codes = sorted_codes(pa.array(values, pa.large_string()))
    expected = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)[0]
    assert codes.dtype == np.int64 and len(codes) == len(values)
    assert ((codes == -1) == (expected == -1)).all()
    for i in range(len(values)):
        for j in range(len(values)):
            assert (codes[i] == codes[j]) == (expected[i] == expected[j])
