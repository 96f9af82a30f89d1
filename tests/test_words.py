"""Issue 23 item 5, words: headers branches write for the phone, two numbers separated by spaces, phone ranges
newer than the library's metadata, and analyst text without command lines, setting names or error codes."""

from __future__ import annotations

import datetime as dt

import pytest

from importer.checks.normalise import InvalidValue, normalise_phone, phone_list, phone_rules, split_phones
from importer.checks.validate import check_frame
from importer.database.ledger import RunRecord
from importer.errors import MissingColumns, UsageError, WorkspaceError
from importer.mapping.columns import detect_mapping, match_header
from importer.outcomes.row_errors import ErrorCode
from importer.settings import Settings
from importer.workspace.store import _gone
from tests.support import SETTINGS, frame, person
from ui import render


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("Tel/WhatsApp", "phone"), ("Tel / WhatsApp", "phone"), ("Telephone/WhatsApp", "phone"),
        ("WhatsApp No.", "phone"), ("WhatsApp Number", "phone"), ("Mobile/WhatsApp", "phone"),
        ("Phone/WhatsApp", "phone"), ("Whatsapp/Tel", "phone"), ("Mobile & WhatsApp", "phone"),
        ("Phone or WhatsApp", "phone"), ("Tel (WhatsApp)", "phone"), ("Tel. No.", "phone"), ("Tel No", "phone"),
        ("Contact/WhatsApp", "phone"), ("TEL/WHATSAPP", "phone"),
        ("Tel/WhatsApp 2", "other_phones"), ("WhatsApp No. 2", "other_phones"),
        # Parts naming different fields, and numbers of something else, are not the phone.
        ("Phone/Email", None), ("Name/Phone", None), ("Customer No.", None), ("S/No", None),
    ],
)  # fmt: skip
def test_phone_headers_branches_write(text, field):
    assert match_header(text) == field


def test_a_tel_whatsapp_sheet_maps_its_phone_column():
    mapping = detect_mapping([["S/No", "Mark", "First Name", "Surname", "Tel/WhatsApp", "Location"],
                              ["1", "PM1 KOFI", "Kofi", "Mensah", "0241234567", "Accra"]])
    assert mapping.fields[4] == "phone" and not mapping.missing_required


@pytest.mark.parametrize(
    ("typed", "phone", "others"),
    [
        ("0566 016 827  0247266135", "+233566016827", ("+233247266135",)),
        ("0566 016 827 0247266135", "+233566016827", ("+233247266135",)),
        ("024 123 4567 024 123 4568", "+233241234567", ("+233241234568",)),
        ("0247266135 0566 016 827", "+233247266135", ("+233566016827",)),
        # A number's own spaces keep it one number.
        ("0566 016 827", "+233566016827", ()),
        ("024 123 4567", "+233241234567", ()),
        ("+233 24 123 4567", "+233241234567", ()),
    ],
)
def test_numbers_separated_only_by_spaces_are_split(typed, phone, others):
    assert split_phones(typed) == (phone, others)


@pytest.mark.parametrize("typed", ["0566 016 827 123", "12 34", "0566 016 827 12345"])
def test_spaces_split_only_when_each_part_is_a_number(typed):
    with pytest.raises(InvalidValue) as err:
        split_phones(typed)
    assert err.value.code is ErrorCode.INVALID_PHONE


def test_spaced_numbers_in_a_file_and_in_other_phones():
    checked = check_frame(frame(person(1, phone="0566 016 827  0247266135"),
                                person(2, other_phones="0566 016 827  0277229773")), SETTINGS)
    assert not checked.errors
    assert checked.normalised.at[2, "phone"] == "+233566016827"
    assert checked.normalised.at[2, "other_phones"] == "+233247266135"
    assert phone_list("0566 016 827  0277229773") == ("+233566016827", "+233277229773")


@pytest.mark.parametrize(("number", "stored"), [
    ("0251234567", "+233251234567"), ("0590123456", "+233590123456"), ("+233 25 123 4567", "+233251234567"),
    ("233590123456", "+233590123456")])
def test_ranges_newer_than_the_library_are_accepted_when_configured(number, stored):
    with pytest.raises(InvalidValue):  # phonenumbers' GH metadata: 025[67] and 059[1-9] only
        normalise_phone(number)
    settings = Settings.from_env({"PHONE_EXTRA_RANGES": "025, 0590"})
    assert settings.phone_rules == "GH+25,590"
    assert normalise_phone(number, settings.phone_rules) == stored
    assert not check_frame(frame(person(1, phone=number)), settings).errors
    assert check_frame(frame(person(1, phone=number)), SETTINGS).errors


@pytest.mark.parametrize("number", ["0581234567", "02512345678", "025123456"])
def test_an_extra_range_keeps_the_length_rule(number):
    with pytest.raises(InvalidValue):
        normalise_phone(number, phone_rules("GH", ("025", "0590")))


def test_a_range_setting_must_be_digits():
    with pytest.raises(UsageError, match="PHONE_EXTRA_RANGES"):
        Settings.from_env({"PHONE_EXTRA_RANGES": "025,05x"})
    assert Settings.from_env({}).phone_rules == "GH"


def test_missing_columns_say_where_the_template_is_and_keep_the_command_as_detail():
    from importer.api import read_upload
    from tests.fixtures import corpus

    data = corpus.xlsx({"Customers": [["Mark", "Phone"], ["PM1", "0241234567"]]})
    with pytest.raises(MissingColumns) as err:
        read_upload(data, "x.xlsx", SETTINGS)
    assert "python -m" not in str(err.value) and "Download the template on the Upload page" in str(err.value)
    assert err.value.detail == "From the command line: python -m importer template customers.xlsx"


def test_a_gone_workspace_names_no_setting():
    error = _gone(12, Settings(workspace_days=14))
    assert isinstance(error, WorkspaceError)
    assert str(error) == ("workspace 12 is gone: it was discarded, or expired after 14 days untouched; "
                          "upload the file again")
    assert "WORKSPACE_DAYS" in (error.detail or "")


def test_reasons_are_words_without_codes():
    for code in ErrorCode:
        assert code.value not in render.reason(code.value)
    assert render.reason("invalid_region") == "Not a known region"


def _run(run_id: int, created: int, updated: int, unchanged: int, failed: int) -> RunRecord:
    return RunRecord(id=run_id, file_name=f"f{run_id}.xlsx", sha256="0" * 64, sheet=None, status="completed",
                     total_attempted=created + updated + unchanged + failed, total_created=created,
                     total_failed=failed, rows_done=0, started_at=dt.datetime(2026, 12, 6, 9, run_id),
                     finished_at=None, duration_seconds=None, user_name=None, settings={},
                     total_updated=updated, total_unchanged=unchanged)


def test_the_history_chart_shows_every_outcome_of_each_run():
    runs = [_run(2, 0, 40, 55, 5), _run(1, 100, 0, 0, 3)]
    data = render.runs_chart_data(runs)
    assert data[["order", "outcome", "rows"]].values.tolist() == [
        [1, "Created", 100], [1, "Updated", 0], [1, "Unchanged", 0], [1, "Failed", 3],
        [2, "Created", 0], [2, "Updated", 40], [2, "Unchanged", 55], [2, "Failed", 5]]
    spec = render.runs_chart(runs)
    assert spec is not None
    assert spec["encoding"]["color"]["scale"]["domain"] == ["Created", "Updated", "Unchanged", "Failed"]
    shown = {(r["order"], r["outcome"]): r["rows"] for r in spec["data"]["values"]}
    assert shown[(2, "Updated")] == 40 and shown[(2, "Unchanged")] == 55


def _error_page() -> None:
    from importer.settings import Settings
    from importer.workspace.store import _gone
    from ui import render

    render.show_error(_gone(12, Settings(workspace_days=14)))


def test_the_page_shows_the_sentence_and_keeps_the_detail_under_details():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_error_page, default_timeout=30).run()
    assert not at.exception
    assert "WORKSPACE_DAYS" not in at.error[0].value and "expired after 14 days untouched" in at.error[0].value
    assert at.expander[0].label == "Details"
    assert "WORKSPACE_DAYS" in at.expander[0].code[0].value
