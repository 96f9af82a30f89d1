"""Validation: every error of every row, with the contract's codes and messages that say what to do."""

from __future__ import annotations

import pandas as pd
import pytest

from importer.checks.validate import check_frame, exclude, recheck
from importer.settings import Settings
from tests.support import customer, frame

SETTINGS = Settings()


def codes(checked, row: int) -> list[tuple[str, str]]:
    return [(e.field, e.code.value) for e in checked.errors.get(row, ())]


def test_contract_examples_are_stored_normalised() -> None:
    checked = check_frame(
        frame(customer(1, shipping_mark=" pm4   kofi ", first_name="  Kofi   Ama ", email=" K@X.COM ",
                       phone="241234567.0", region="Ashanti Region", user_type="")),
        SETTINGS,
    )
    assert checked.errors == {}
    row = {k: (None if pd.isna(v) else v) for k, v in checked.normalised.loc[2].to_dict().items()}
    assert row == {
        "shipping_mark": "PM4 KOFI", "first_name": "Kofi Ama", "last_name": "Mensah", "email": "k@x.com",
        "phone": "+233241234567", "region": "ASHANTI", "company_name": None, "nickname": None,
        "user_type": "INDIVIDUAL", "other_phones": None, "other_emails": None,
    }


def test_blank_optionals_take_their_defaults() -> None:
    checked = check_frame(frame(customer(1, email="", region="", company_name=" ", nickname="")), SETTINGS)
    row = checked.normalised.loc[2]
    assert pd.isna(row["email"]) and pd.isna(row["company_name"]) and pd.isna(row["nickname"])
    assert row["region"] == "GREATER_ACCRA" and row["user_type"] == "INDIVIDUAL"


def test_default_region_setting() -> None:
    checked = check_frame(frame(customer(1, region="")), SETTINGS.with_(default_customer_region="VOLTA"))
    assert checked.normalised.loc[2, "region"] == "VOLTA"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"shipping_mark": ""}, [("shipping_mark", "required")]),
        ({"first_name": " "}, [("first_name", "required")]),
        ({"last_name": ""}, [("last_name", "required")]),
        ({"phone": ""}, [("phone", "required")]),
        ({"shipping_mark": "P" * 101}, [("shipping_mark", "too_long")]),
        ({"first_name": "K" * 51}, [("first_name", "too_long")]),
        ({"last_name": "M" * 51}, [("last_name", "too_long")]),
        ({"company_name": "C" * 101}, [("company_name", "too_long")]),
        ({"nickname": "N" * 51}, [("nickname", "too_long")]),
        ({"shipping_mark": "PM#4"}, [("shipping_mark", "invalid_format")]),
        ({"shipping_mark": "P"}, [("shipping_mark", "invalid_format")]),
        ({"phone": "5412345"}, [("phone", "invalid_phone")]),
        ({"email": "kofi@"}, [("email", "invalid_email")]),
        ({"region": "Lagos"}, [("region", "invalid_region")]),
        ({"user_type": "VIP"}, [("user_type", "invalid_choice")]),
        ({"phone": "#N/A"}, [("phone", "invalid_format")]),
    ],
)
def test_each_rule_has_its_code(overrides: dict[str, str], expected: list[tuple[str, str]]) -> None:
    checked = check_frame(frame(customer(1, **overrides)), SETTINGS)
    assert codes(checked, 2) == expected


def test_all_errors_of_a_row_are_reported_in_field_order() -> None:
    checked = check_frame(
        frame(customer(1, shipping_mark="", first_name="", email="bad@", phone="5412345", region="Mars")), SETTINGS
    )
    assert codes(checked, 2) == [
        ("shipping_mark", "required"), ("first_name", "required"), ("email", "invalid_email"),
        ("phone", "invalid_phone"), ("region", "invalid_region"),
    ]


def test_messages_name_the_value_and_what_to_do() -> None:
    checked = check_frame(frame(customer(1, phone="5412345", first_name="K" * 51, shipping_mark="PM#1")), SETTINGS)
    messages = {e.field: e.message for e in checked.errors[2]}
    assert messages["phone"] == "5412345 is not a valid phone number"
    assert messages["first_name"] == "is 51 characters long; shorten it to at most 50"
    assert "PM#1" in messages["shipping_mark"] and "letters, digits" in messages["shipping_mark"]


def test_duplicates_in_file_name_the_first_row() -> None:
    checked = check_frame(
        frame(customer(1), customer(2, shipping_mark="pm1  kofi"), customer(3, phone="+233 24 000 0001"),
              customer(4, email="KOFI1@example.com")),
        SETTINGS,
    )
    assert codes(checked, 2) == []
    assert codes(checked, 3) == [("shipping_mark", "duplicate_in_file")]
    assert codes(checked, 4) == [("phone", "duplicate_in_file")]
    assert codes(checked, 5) == [("email", "duplicate_in_file")]
    assert "row 2" in checked.errors[3][0].message


def test_blank_emails_are_not_duplicates() -> None:
    checked = check_frame(frame(customer(1, email=""), customer(2, email="")), SETTINGS)
    assert checked.errors == {}


def test_valid_index_and_failure_counts() -> None:
    checked = check_frame(frame(customer(1), customer(2, phone="1"), customer(3, phone="2", email="x@")), SETTINGS)
    assert list(checked.valid_index()) == [2]
    by = checked.failures_by()
    assert by.to_dict("records") == [
        {"field": "phone", "code": "invalid_phone", "rows": 2},
        {"field": "email", "code": "invalid_email", "rows": 1},
    ]


def test_recheck_after_an_edit_frees_and_takes_keys() -> None:
    checked = check_frame(frame(customer(1), customer(2, phone="0240000001"), customer(3, phone="bad")), SETTINGS)
    assert codes(checked, 3) == [("phone", "duplicate_in_file")]
    edited = checked.original.loc[[3, 4]].copy()
    edited.loc[3, "phone"] = "0550000003"
    edited.loc[4, "phone"] = "0240000001"
    after = recheck(checked, edited, SETTINGS)
    assert codes(after, 3) == []
    assert codes(after, 4) == [("phone", "duplicate_in_file")]
    assert after.normalised.loc[3, "phone"] == "+233550000003"
    assert after.original.loc[3, "phone"] == "0550000003"


def test_exclude_removes_rows_and_their_duplicate_claims() -> None:
    checked = check_frame(frame(customer(1), customer(2, phone="0240000001")), SETTINGS)
    after = exclude(checked, [2])
    assert list(after.original.index) == [3] and after.errors == {}


def test_control_characters_rtl_and_emoji_survive_as_text() -> None:
    checked = check_frame(frame(customer(1, first_name="Ko\x00fi", last_name="מנסה 😀", nickname="a\u202eb")), SETTINGS)
    assert checked.errors == {}
    assert checked.normalised.loc[2, "first_name"] == "Kofi"
    assert checked.normalised.loc[2, "last_name"] == "מנסה 😀"


@pytest.mark.parametrize("how_many", [1, 3, 6])
def test_recheck_equals_checking_the_edited_file_afresh(how_many: int) -> None:
    rows = [customer(i) for i in range(6)] + [customer(9, phone="bad"), customer(10, shipping_mark="PM1 KOFI")]
    checked = check_frame(frame(*rows), SETTINGS)
    edited = checked.original.iloc[:how_many].copy()
    edited["phone"] = ["0240000001"] * how_many  # some edits create duplicates, one frees row 10's mark
    edited.loc[edited.index[0], "shipping_mark"] = "PM77"
    after = recheck(checked, edited, SETTINGS)
    whole = checked.original.copy()
    whole.loc[edited.index, :] = edited
    fresh = check_frame(whole, SETTINGS)
    assert after.errors == fresh.errors
    pd.testing.assert_frame_equal(after.normalised, fresh.normalised)
    pd.testing.assert_frame_equal(after.original, fresh.original)


# -- several phones or e-mails in one cell (issue 11) ----------------------------------------------------
def test_a_second_phone_and_email_in_one_cell_go_to_the_other_fields() -> None:
    checked = check_frame(frame(
        customer(1, phone="0277229773, 0248503716", email="a@x.com; B@Y.com"),
        customer(2, phone="0277229774 / 0248503717", other_phones="020 123 4567 / 0248503717"),
        customer(3, phone="0277229775", other_phones="", email=""),
        customer(4, phone="12345 or 0248503718"),
    ), SETTINGS)
    assert checked.errors == {}
    stored = checked.normalised[["phone", "other_phones", "email", "other_emails"]].astype(object)
    stored = stored.where(stored.notna(), None)
    assert stored.loc[2].tolist() == ["+233277229773", "+233248503716", "a@x.com", "b@y.com"]
    # The phone cell's others first, then the Other Phones cell's; each number once.
    assert stored.loc[3].tolist()[:2] == ["+233277229774", "+233248503717, +233201234567"]
    assert stored.loc[4].tolist() == ["+233277229775", None, None, None]
    # An invalid extra number is kept as typed, never dropped.
    assert stored.loc[5].tolist()[:2] == ["+233248503718", "12345"]
    # The text as typed is untouched, so a report shows the cell as the branch wrote it.
    assert checked.original.loc[2, "phone"] == "0277229773, 0248503716"
    assert checked.original.loc[2, "other_phones"] == ""


def test_a_cell_whose_every_phone_is_invalid_fails_naming_each() -> None:
    checked = check_frame(frame(customer(1, phone="0277, 12345"), customer(2, email="ama@, kofi at x")), SETTINGS)
    (error,) = checked.errors[2]
    assert (error.field, error.code.value) == ("phone", "invalid_phone")
    assert error.message == ("holds 2 numbers and none is a valid phone number: 0277 is not a valid phone number; "
                             "12345 is not a valid phone number")
    (error,) = checked.errors[3]
    assert (error.field, error.code.value) == ("email", "invalid_email")
    assert "none is a valid email address" in error.message


def test_the_other_phone_of_a_row_is_not_a_key_and_not_a_duplicate() -> None:
    checked = check_frame(frame(customer(1, phone="0277229773, 0248503716"), customer(2, phone="0248503716")),
                          SETTINGS)
    assert checked.errors == {}


def test_too_many_other_phones_are_too_long() -> None:
    many = ", ".join(f"02{n:08d}" for n in range(60))
    checked = check_frame(frame(customer(1, phone="0277229773", other_phones=many)), SETTINGS)
    assert codes(checked, 2) == [("other_phones", "too_long")]


def test_recheck_of_an_edited_phone_cell_splits_it_again() -> None:
    checked = check_frame(frame(customer(1, phone="0277, 12345")), SETTINGS)
    fixed = recheck(checked, frame(customer(1, phone="0277229773 / 0248503716")), SETTINGS)
    assert fixed.errors == {}
    assert fixed.normalised.loc[2, "other_phones"] == "+233248503716"
