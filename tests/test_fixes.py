"""Bulk fixes: a preview count, then the change, then the rows validated again."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from importer.checks.validate import check_frame
from importer.review.fixes import Fix, apply_fix, available_fixes, changed_rows, fill_region_fix, fix_preview
from importer.settings import Settings
from tests.support import customer, frame

SETTINGS = Settings()
FIXES = available_fixes(SETTINGS)


def test_phone_fix_restores_dropped_zero_and_previews_count() -> None:
    checked = check_frame(frame(customer(1, phone="241234567"), customer(2, phone="055 000 0002"),
                                customer(3, phone="5412345")), SETTINGS)
    preview = changed_rows(checked, FIXES["phones"])
    assert list(preview.index) == [2, 3]
    after, count = apply_fix(checked, FIXES["phones"], SETTINGS)
    assert count == 2
    assert after.original.loc[2, "phone"] == "+233241234567"
    assert after.original.loc[3, "phone"] == "+233550000002"
    assert after.original.loc[4, "phone"] == "5412345"


def test_trim_fix_touches_every_text_column() -> None:
    checked = check_frame(frame(customer(1, first_name="  Ama   Serwaa ", nickname=" x ")), SETTINGS)
    after, count = apply_fix(checked, FIXES["trim"], SETTINGS)
    assert count == 1
    assert after.original.loc[2, "first_name"] == "Ama Serwaa" and after.original.loc[2, "nickname"] == "x"


@pytest.mark.parametrize(("typed", "fixed"), [("kofi", "Kofi"), ("AMA  serwaa", "Ama Serwaa"), ("o'neil", "O'neil")])
def test_title_case_names(typed: str, fixed: str) -> None:
    checked = check_frame(frame(customer(1, first_name=typed)), SETTINGS)
    after, _ = apply_fix(checked, FIXES["names"], SETTINGS)
    assert after.original.loc[2, "first_name"] == fixed


def test_lower_case_emails_can_clear_an_in_file_duplicate_claim() -> None:
    checked = check_frame(frame(customer(1, email="Kofi@X.com")), SETTINGS)
    after, count = apply_fix(checked, FIXES["emails"], SETTINGS)
    assert count == 1 and after.original.loc[2, "email"] == "kofi@x.com"


def test_fill_blank_region_only_fills_blanks_also_those_the_default_filled() -> None:
    """Issue 22: a blank region that got the default is a blank of the file, so "Fill blank regions" fills it
    even with "Only change failing rows" ticked (it used to change 0 rows: the default had filled them first);
    a region typed in the file is never touched."""
    checked = check_frame(frame(customer(1, region=""), customer(2, region="", phone="1"),
                                customer(3, region="Volta")), SETTINGS)
    fix = fill_region_fix("ASHANTI")
    assert len(changed_rows(checked, fix)) == 2
    after, count = apply_fix(checked, fix, SETTINGS, only_failing=True)
    assert count == 2
    assert after.original.loc[[2, 3, 4], "region"].tolist() == ["ASHANTI", "ASHANTI", "Volta"]


def test_unknown_region_code_is_refused() -> None:
    with pytest.raises(ValueError):
        fill_region_fix("LAGOS")


# --- fix_preview: "fixes N failing rows" apart from "changes M rows" ------------------------------------------


def test_phone_fix_that_rewrites_every_valid_number_fixes_none():
    """The issue's case: "Normalise phone numbers ... would change 4,776 rows" fixed none of them."""
    rows = [customer(n, phone=f"024 {n:03d} {n:04d}") for n in range(1, 301)]
    for n in range(0, 300, 15):
        rows[n]["region"] = "Mars"  # 20 rows fail on region
    for n in range(7, 300, 30):
        rows[n]["phone"] = "5412345"  # 10 rows fail on phone, and no fix makes a number of them
    checked = check_frame(frame(rows), SETTINGS)
    assert len(checked.errors) == 30
    assert fix_preview(checked, FIXES["phones"], SETTINGS) == (0, 290)
    assert fix_preview(checked, FIXES["phones"], SETTINGS, only_failing=True) == (0, 20)
    assert len(changed_rows(checked, FIXES["phones"])) == 290  # the old count, kept: it is "changes"


def test_a_fix_of_the_failing_value_counts_as_fixed_and_a_row_still_failing_does_not():
    checked = check_frame(frame(customer(1, region="Mars"), customer(2, region="Mars", phone="1"),
                                customer(3, region="Volta")), SETTINGS)
    mars = Fix("mars", "Mars is Volta", ("region",), lambda text: "Volta" if text == "Mars" else text)
    assert fix_preview(checked, mars, SETTINGS) == (1, 2)  # row 3 still fails on its phone
    after, changed = apply_fix(checked, mars, SETTINGS)
    assert changed == 2 and list(after.errors) == [3]


def test_a_change_to_a_valid_row_that_frees_a_duplicate_counts_as_fixing_that_row():
    checked = check_frame(frame(customer(1, email="Same@x.com"), customer(2, email="same@x.com"),
                                customer(3, phone="1")), SETTINGS)
    assert list(checked.errors) == [3, 4]  # row 3 has row 2's e-mail; row 4's phone is wrong
    other = Fix("other", "Row 2's e-mail", ("email",), lambda text: "other@x.com" if text == "Same@x.com" else text)
    assert fix_preview(checked, other, SETTINGS) == (1, 1)  # only valid row 2 changes; row 3 is fixed
    assert list(apply_fix(checked, other, SETTINGS)[0].errors) == [4]
    mark = Fix("mark", "Another mark", ("shipping_mark",), lambda text: "PM9 KOFI" if text == "PM1 KOFI" else text)
    assert fix_preview(checked, mark, SETTINGS) == (0, 1)


def test_a_fix_that_makes_rows_fail_fixes_none_and_is_not_a_negative_count():
    checked = check_frame(frame(customer(1), customer(2, phone="1")), SETTINGS)
    breaks = Fix("break", "Blank every e-mail of row 2", ("email",), lambda text: "x" if text == "kofi1@example.com" else text)
    assert fix_preview(checked, breaks, SETTINGS) == (0, 1)


def test_a_fix_that_changes_nothing_previews_nothing():
    checked = check_frame(frame(customer(1, phone="1")), SETTINGS)
    assert fix_preview(checked, FIXES["names"], SETTINGS) == (0, 0)


def _changed_rows_cell_by_cell(checked, fix: Fix, only_failing: bool):
    """changed_rows as it was written first: the fix run on every cell, one at a time."""
    source = checked.original
    rows = [r for r in source.index if not only_failing or r in checked.errors]
    changed = sorted({r for column in fix.columns for r in rows
                      if fix.change(str(source.at[r, column])) != source.at[r, column]})
    after = source.loc[changed].copy()
    for column in fix.columns:
        for r in changed:
            after.at[r, column] = fix.change(str(source.at[r, column]))
    return after


_CELLS = st.lists(st.tuples(st.sampled_from(["kofi", " ama  ", "KOFI", "", "Ama Serwaa", "241234567", "0241234567",
                                              "yaw@Example.com", "5412345", " x"]),
                             st.sampled_from(["ashanti", "", "Volta", "  volta"])), min_size=1, max_size=14)
_FIX_KEYS = st.sampled_from(["trim", "phones", "emails", "names", "region"])


def _checked_and_fix(cells, key: str):
    """A checked upload whose names, phones and e-mails are the drawn texts, and the fix of that key."""
    rows = [customer(i, first_name=name, phone=name, email=name, region=region)
            for i, (name, region) in enumerate(cells)]
    return check_frame(frame(rows), SETTINGS), fill_region_fix("ASHANTI") if key == "region" else FIXES[key]


@given(_CELLS, _FIX_KEYS, st.booleans())
@settings(max_examples=60, deadline=None)
def test_changed_rows_a_chunk_and_a_distinct_text_at_a_time_equals_cell_by_cell(cells, key, failing):
    import importer.review.fixes

    checked, fix = _checked_and_fix(cells, key)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(importer.review.fixes, "CHUNK_ROWS", 3)  # chunks of 3 rows: several per column
        found = changed_rows(checked, fix, only_failing=failing)
    expected = _changed_rows_cell_by_cell(checked, fix, failing)
    assert found.index.tolist() == expected.index.tolist()
    assert found.astype(object).equals(expected.astype(object))


@given(_CELLS, _FIX_KEYS, st.booleans())
@settings(max_examples=60, deadline=None)
def test_apply_fix_and_its_preview_agree_with_checking_the_fixed_file_from_scratch(cells, key, failing):
    """Whichever way apply_fix goes (a column at a time in Arrow when most rows change, else the changed rows
    re-checked), the upload it gives is the one a fresh check of the fixed text gives, and the preview's
    counts are what applying does."""
    import importer.review.fixes

    checked, fix = _checked_and_fix(cells, key)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(importer.review.fixes, "CHUNK_ROWS", 3)  # chunks of 3 rows: several per column
        after, count = apply_fix(checked, fix, SETTINGS, only_failing=failing)
        fixed, changes = fix_preview(checked, fix, SETTINGS, only_failing=failing)
    assert count == changes == len(_changed_rows_cell_by_cell(checked, fix, failing))
    fresh = check_frame(after.original.astype(object), SETTINGS)
    expected = checked.original.astype(object)
    for row, text in _changed_rows_cell_by_cell(checked, fix, failing).astype(object).iterrows():
        expected.loc[row] = text
    assert after.original.astype(object).equals(expected)
    assert after.errors.rows().tolist() == fresh.errors.rows().tolist()
    assert after.normalised.astype(object).equals(fresh.normalised.astype(object))
    assert fixed == len(np.setdiff1d(checked.errors.rows(), after.errors.rows()))


def test_a_fix_of_one_column_over_every_row_rebuilds_that_column_only() -> None:
    """A fix that changes one column of every row writes that column; the upload's other columns are the
    same Arrow data, not copies (each copy of a column of 100,000 rows was 2.4 MB more while it ran)."""
    checked = check_frame(frame([customer(i, email=f"Kofi{i}@X.com") for i in range(40)]), SETTINGS)
    after, count = apply_fix(checked, FIXES["emails"], SETTINGS)
    assert count == 40 and after.original["email"].tolist() == [f"kofi{i}@x.com" for i in range(40)]
    for column in ("shipping_mark", "first_name", "phone"):
        assert _buffers(after.original[column]) == _buffers(checked.original[column]), column
        assert _buffers(after.normalised[column]) == _buffers(checked.normalised[column]), column
    assert _buffers(after.original["email"]) != _buffers(checked.original["email"])


def _buffers(column) -> list[int]:
    """The addresses of a column's Arrow buffers: equal when two columns share their data."""
    array = column.array._pa_array
    return [buffer.address for chunk in array.chunks for buffer in chunk.buffers() if buffer is not None]


@given(st.lists(st.tuples(st.one_of(st.none(), st.sampled_from(["", "a", "A", "a ", "é"])),
                          st.one_of(st.none(), st.sampled_from(["", "a", "A", "a ", "é"]))), max_size=20),
       st.booleans())
@settings(max_examples=100, deadline=None)
def test_cells_differ_compares_in_arrow_as_python_does_missing_equal_to_missing(pairs, arrow) -> None:
    import pandas as pd

    from importer.checks.validate import cells_differ

    dtype = "str" if arrow else object
    before = pd.Series([a for a, _ in pairs], dtype=dtype)
    after = pd.Series([b for _, b in pairs], dtype=dtype)
    expected = [(a is None) != (b is None) or (a is not None and a != b) for a, b in pairs]
    assert cells_differ(before, after).tolist() == expected
    assert not cells_differ(before, before.copy()).any()
