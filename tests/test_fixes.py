"""Bulk fixes: a preview count, then the change, then the rows validated again."""

from __future__ import annotations

import pytest

from importer.fixes import apply_fix, available_fixes, changed_rows, fill_region_fix
from importer.settings import Settings
from importer.validate import check_frame
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


def test_fill_blank_region_only_fills_blanks_and_only_failing_rows_when_asked() -> None:
    checked = check_frame(frame(customer(1, region=""), customer(2, region="", phone="1"),
                                customer(3, region="Volta")), SETTINGS)
    fix = fill_region_fix("ASHANTI")
    assert len(changed_rows(checked, fix)) == 2
    after, count = apply_fix(checked, fix, SETTINGS, only_failing=True)
    assert count == 1
    assert after.original.loc[3, "region"] == "ASHANTI" and after.original.loc[2, "region"] == ""


def test_unknown_region_code_is_refused() -> None:
    with pytest.raises(ValueError):
        fill_region_fix("LAGOS")
