"""importer.review.conversions: failing values with suggestions, value conversion and find-and-replace as operations."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from importer.checks.validate import check_frame
from importer.errors import UsageError
from importer.review.conversions import (
    Conversion,
    Preview,
    Replace,
    apply_conversion,
    apply_operation,
    apply_operations,
    failing_fields,
    failing_rows,
    failing_values,
    new_values,
    operation_from_dict,
    operations_from_json,
    preview,
)
from importer.settings import Settings

S = Settings()


def _checked(regions, **columns):
    """One valid customer per region value (distinct marks and phones), other columns overridable."""
    n = len(regions)
    data = {
        "shipping_mark": [f"PM{i}" for i in range(n)], "first_name": ["Kofi"] * n, "last_name": ["Mensah"] * n,
        "email": [""] * n, "phone": [f"024{i:07d}" for i in range(n)], "region": list(regions),
    }
    data.update(columns)
    return check_frame(pd.DataFrame(data, index=pd.Index(range(2, n + 2), name="source_row_number")), S)


KUMASI = ["Kumasi", "G/A", "Gt. Accra", "Kumasi", "Atlantis", "", "Ashanti", "B/A", "Tema", " kumasi ", "#N/A"]


def test_failing_values_count_and_suggest():
    checked = _checked(KUMASI)
    values = failing_values(checked, "region", S)
    assert list(values.columns) == ["value", "count", "suggestion", "why"]
    table = {v: (c, None if pd.isna(s) else s)
             for v, c, s in zip(values["value"], values["count"], values["suggestion"], strict=True)}
    assert table == {
        "Kumasi": (2, "ASHANTI"), "G/A": (1, "GREATER_ACCRA"), "Gt. Accra": (1, "GREATER_ACCRA"),
        "Atlantis": (1, None), "B/A": (1, "BRONG_AHAFO"), "Tema": (1, "GREATER_ACCRA"),
        " kumasi ": (1, "ASHANTI"), "#N/A": (1, None),
    }
    assert values["value"].iloc[0] == "Kumasi"  # most frequent first
    assert values.attrs["distinct"] == 8
    why = dict(zip(values["value"], values["why"], strict=True))
    assert why["Kumasi"] == "Kumasi is in Ashanti" and why["G/A"] == "G/A means Greater Accra" and why["Atlantis"] == ""


def test_failing_values_limit_keeps_the_most_frequent():
    checked = _checked(["Kumasi"] * 3 + ["Tema"] * 2 + ["Ho x"])
    values = failing_values(checked, "region", S, limit=1)
    assert values["value"].tolist() == ["Kumasi"] and values.attrs["distinct"] == 3


def test_duplicates_are_not_failing_values():
    # the same phone twice: the second row fails as a duplicate, which no conversion of its text fixes
    checked = _checked(["Ashanti", "Ashanti"], phone=["0241234567", "0241234567"])
    assert len(checked.errors) == 1
    assert failing_rows(checked, "phone").size == 0
    assert failing_values(checked, "phone", S).empty
    assert failing_fields(checked) == {}


@pytest.mark.parametrize(
    ("field", "value", "suggestion"),
    [
        ("phone", "024l234567", "+233241234567"),  # letter l typed for one
        ("phone", "12", None),
        ("phone", "024412345x", None),
        ("email", "Kofi @Example,com", "kofi@example.com"),
        ("email", "mailto:<ama@example.com>.", "ama@example.com"),
        ("email", "not an email", None),
        ("user_type", "Company", "BUSINESS"),
        ("user_type", "personal", "INDIVIDUAL"),
        ("user_type", "VIP", None),
        ("shipping_mark", "PM4/KOFI", "PM4 KOFI"),
        ("shipping_mark", "@@", None),
    ],
)
def test_other_fields_get_a_normalised_suggestion_only_when_it_passes(field, value, suggestion):
    n = 1
    checked = _checked(["Ashanti"] * n, **{field: [value]})
    values = failing_values(checked, field, S)
    assert values["value"].tolist() == [value]
    got = values["suggestion"].iloc[0]
    assert (None if pd.isna(got) else got) == suggestion


def test_blank_required_values_are_listed_without_suggestion():
    checked = _checked(["Ashanti", "Ashanti"], first_name=["", "   "])
    values = failing_values(checked, "first_name", S)
    assert set(values["value"]) == {"", "   "} and values["suggestion"].isna().all()


def test_conversion_is_frozen_hashable_json_and_drops_no_ops():
    conv = Conversion("region", {"Kumasi": "ASHANTI", "Ashanti": "Ashanti", "Atlantis": None, "Tema": float("nan")})
    assert conv.mapping == {"Kumasi": "ASHANTI"}
    assert hash(conv) == hash(Conversion("region", {"Kumasi": "ASHANTI"}))
    data = json.loads(json.dumps(conv.to_dict()))
    assert data == {"kind": "convert", "field": "region", "targets": {"Kumasi": "ASHANTI"}}
    assert operation_from_dict(data) == conv
    with pytest.raises(AttributeError):
        conv.field = "phone"  # type: ignore[misc]
    with pytest.raises(UsageError, match="unknown field"):
        Conversion("postcode", {})
    assert "Region: Kumasi → ASHANTI" in conv.describe()


def test_replace_round_trips_and_refuses_an_empty_find():
    rep = Replace("phone", "O", "0", whole_cell=False, match_case=False)
    assert operation_from_dict(json.loads(json.dumps(rep.to_dict()))) == rep
    with pytest.raises(UsageError, match="text to find"):
        Replace("phone", "", "0")
    with pytest.raises(UsageError, match="unknown operation"):
        operation_from_dict({"kind": "explode"})


def test_preview_counts_fixes_and_changes_apart():
    checked = _checked(KUMASI)
    values = failing_values(checked, "region", S)
    conv = Conversion.from_table("region", values)
    assert preview(checked, conv, S) == Preview(fixes=7, changes=7)
    # a target that is itself wrong changes rows but fixes none
    assert preview(checked, Conversion("region", {"Kumasi": "Mars"}), S) == (0, 2)
    # changing rows that did not fail fixes nothing
    assert preview(checked, Conversion("region", {"Ashanti": "VOLTA"}), S) == (0, 1)


def test_apply_conversion_rechecks_and_keeps_other_rows():
    checked = _checked(KUMASI)
    values = failing_values(checked, "region", S)
    new = apply_conversion(checked, Conversion.from_table("region", values), S)
    assert sorted(new.errors) == [6, 12]  # Atlantis and #N/A are left for the analyst
    assert new.normalised.loc[2, "region"] == "ASHANTI" and new.original.loc[2, "region"] == "ASHANTI"
    assert new.original.loc[7, "region"] == ""  # a blank is not a failing value
    assert new.original.loc[8, "region"] == "Ashanti"  # valid rows untouched
    assert checked.original.loc[2, "region"] == "Kumasi"  # the old Checked is unchanged
    assert apply_conversion(new, Conversion("region", {"nowhere": "VOLTA"}), S) is new


def test_replace_whole_cell_substring_and_case():
    checked = _checked(["Ashanti", "Ashanti", "Ashanti"], phone=["024L234567", "0241234568", " 024l234569"])
    assert new_values(checked, Replace("phone", "L", "1")).to_dict() == {2: "0241234567"}
    assert new_values(checked, Replace("phone", "l", "1", match_case=False)).to_dict() == {
        2: "0241234567", 4: " 0241234569"}
    assert preview(checked, Replace("phone", "l", "1", match_case=False), S) == (2, 2)
    fixed = apply_operation(checked, Replace("phone", "l", "1", match_case=False), S)
    assert len(fixed.errors) == 0
    whole = _checked(["n/a", "N/A ", "Kumasi n/a"])
    assert new_values(whole, Replace("region", "n/a", "", whole_cell=True, match_case=False)).to_dict() == {
        2: "", 3: ""}
    blanks = _checked(["", "Ashanti", "  "])
    assert sorted(new_values(blanks, Replace("region", "", "VOLTA", whole_cell=True)).index) == [2, 4]


@pytest.mark.parametrize("text", ["a.b", "(x)", "[", "\\1", "$", "*+?"])
def test_replace_treats_find_and_replace_as_plain_text(text):
    checked = _checked(["Ashanti"], nickname=[f"one {text} two"])
    assert new_values(checked, Replace("nickname", text, "\\g<0>$1")).to_dict() == {2: "one \\g<0>$1 two"}


def test_failing_fields_in_field_order():
    checked = _checked(["Kumasi", "Ashanti"], phone=["12", "0241234567"], first_name=["", "Ama"])
    assert failing_fields(checked) == {"first_name": 1, "phone": 1, "region": 1}


def test_operations_from_json_and_applied_in_turn():
    text = json.dumps([Conversion("region", {"Kumasi": "ASHANTI"}).to_dict(),
                       Replace("region", "Atlantis", "Volta", whole_cell=True).to_dict()])
    operations = operations_from_json(text)
    assert [o.kind for o in operations] == ["convert", "replace"]
    checked = apply_operations(_checked(["Kumasi", "Atlantis", "Mars"]), operations, S)
    assert sorted(checked.errors) == [4]
    assert operations_from_json(json.dumps(operations[0].to_dict())) == operations[:1]  # one object
    assert sorted(operations[0].apply(_checked(["Kumasi", "Mars"]), S).errors) == [3]  # the workspace's method


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "ops.json is not valid JSON"),
        ("[1]", "ops.json, operation 1: expected an object with a 'kind'"),
        ('[{"kind": "convert", "field": "region", "targets": {}}, {"kind": "convert"}]', "operation 2: 'field'"),
        ('{"kind": "replace", "field": "postcode", "find": "a", "replace": "b"}', "operation 1: unknown field"),
        ('{"kind": "explode"}', "operation 1: unknown operation kind 'explode'"),
    ],
)
def test_bad_operations_json_is_named(text, message):
    with pytest.raises(UsageError) as err:
        operations_from_json(text, "ops.json")
    assert message in str(err.value)
