"""Issue 22 item 5: decisions that cannot rewrite the wrong customer (the examples of "Review decisions that
change the wrong customer", each a test)."""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from importer.api import import_upload
from importer.database.customers import classify_upload
from importer.database.loader import run_import
from importer.database.schema import customers
from importer.outcomes.row_errors import ErrorCode
from importer.review import decisions as dec
from importer.review.decisions import ChangeDecision, ConfirmPerson
from tests.support import SETTINGS, checked_of, person, ready_engine
from tests.test_decisions import csv_file


def _stored(engine: sa.Engine) -> dict[str, tuple]:
    with engine.connect() as conn:
        return {r.phone: (r.shipping_mark, r.first_name, r.last_name, r.email, r.region)
                for r in conn.execute(sa.select(customers))}


def _upload(engine, people):
    from importer.api import read_upload
    return read_upload(csv_file(people), "november.csv", SETTINGS)


# --- Accept and Reject act on what the filter shows -------------------------------------------------------

def test_bulk_decisions_act_on_the_rows_the_filter_shows(database_url):
    engine = ready_engine(database_url)
    run_import(engine, checked_of([person(i, region="Ashanti") for i in range(1, 5)]), file_name="october.csv",
               sha256="a" * 64, sheet=None, settings=SETTINGS)
    # Rows 2 and 3 change their phone... no: their region; rows 4 and 5 their e-mail.
    upload = _upload(engine, [person(1, region="Volta"), person(2, region="Volta"),
                              person(3, region="Ashanti", email="new3@example.com"),
                              person(4, region="Ashanti", email="new4@example.com")])
    found = classify_upload(engine, upload.checked)
    assert found.counts()["changed"] == 4
    assert dec.bulk_label(found, "region", True) == "Accept the 2 region changes shown"
    assert dec.bulk_label(found, "email", False) == "Reject the 2 email changes shown"
    assert dec.bulk_label(found, None, True) == "Accept the 4 changes shown"
    shown = dec.bulk_decision(found, "region", True)
    assert shown == ChangeDecision((2, 3), True) and shown.default is None
    decided = dec.decisions_of([shown])
    options = dec.import_options(decided, found)
    assert options == {"existing": "update", "blank": "keep", "rejected": (4, 5)}  # the hidden e-mail changes
    result = import_upload(engine, upload, SETTINGS, **options)
    assert (result.total_updated, result.total_failed) == (2, 2)
    stored = _stored(engine)
    assert stored["+233240000003"][3] == "kofi3@example.com"  # a hidden change was not accepted


# --- a possible different person ----------------------------------------------------------------------------

def test_a_row_sharing_only_a_phone_is_a_possible_different_person(database_url):
    engine = ready_engine(database_url)
    run_import(engine, checked_of([person(i, region="Ashanti") for i in range(1, 4)]), file_name="october.csv",
               sha256="a" * 64, sheet=None, settings=SETTINGS)
    stored_before = _stored(engine)
    upload = _upload(engine, [
        # Customer 1's phone, another mark and another first and last name: "KSI-02752 -> HO-016330".
        person(1, shipping_mark="HO-016330", first_name="Ibrahim", last_name="Issah", email="", region="Ashanti"),
        # Customer 2's mark, another first and last name ("Zainab -> Doris Nyarko").
        person(2, first_name="Doris", last_name="Nyarko", region="Ashanti"),
        # Customer 3 with another last name only: an ordinary change.
        person(3, last_name="Mensah-Bonsu", region="Ashanti"),
    ])
    found = classify_upload(engine, upload.checked)
    assert found.counts() == {"new": 0, "unchanged": 0, "changed": 1, "conflict": 2}
    assert set(found.different) == {2, 3}
    phone_error = [e for e in found.conflicts[2] if e.code is ErrorCode.CONFLICT]
    assert [e.field for e in phone_error] == ["phone"]  # names the key that matched
    assert "possible different person" in phone_error[0].message and "HO-016330" in phone_error[0].message
    assert [e.field for e in found.conflicts[3]] == ["shipping_mark", "phone", "email"]
    # "Accept all" (the default, or every change shown) never updates them.
    for decided in (dec.decisions_of([ChangeDecision(default=True)]),
                    dec.decisions_of([dec.bulk_decision(found, None, True)])):
        options = dec.import_options(decided, found)
        assert "confirmed" not in options
        counted = dec.against_database(upload.checked, found, decided)
        assert counted.accepted == {4} and {2, 3} <= set(counted.errors.rows())
    result = import_upload(engine, upload, SETTINGS, existing="update")  # even the CLI's --existing update
    assert (result.total_updated, result.total_failed) == (1, 2)
    after = _stored(engine)
    assert after["+233240000001"] == stored_before["+233240000001"]
    assert after["+233240000002"] == stored_before["+233240000002"]


def test_a_possible_different_person_confirmed_on_its_own_updates_the_customer(database_url):
    engine = ready_engine(database_url)
    run_import(engine, checked_of([person(i, region="Ashanti") for i in range(1, 3)]), file_name="october.csv",
               sha256="a" * 64, sheet=None, settings=SETTINGS)
    upload = _upload(engine, [person(1, shipping_mark="HO-016330", first_name="Ibrahim", last_name="Issah",
                                     region="Ashanti")])
    found = classify_upload(engine, upload.checked)
    customer = found.different[2]
    decided = dec.decisions_of([ConfirmPerson(2, customer)])
    assert decided.confirmed == {2} and decided.accepts(2)
    assert ConfirmPerson.from_dict(ConfirmPerson(2, customer).to_dict()) == ConfirmPerson(2, customer)
    again = classify_upload(engine, upload.checked, decided.blank, confirmed=decided.confirmed)
    assert again.counts()["changed"] == 1 and not again.different
    options = dec.import_options(decided, again)
    assert options["confirmed"] == (2,) and options["existing"] == "update"
    # The CLI classifies without the confirmation: the option still carries it.
    assert dec.import_options(decided, found)["confirmed"] == (2,)
    result = import_upload(engine, upload, SETTINGS, **options)
    assert result.total_updated == 1
    assert _stored(engine)["+233240000001"][:3] == ("HO-016330", "Ibrahim", "Issah")


# --- the conflict view marks each field truthfully ------------------------------------------------------

def test_side_by_side_names_the_key_that_matched_and_marks_each_field():
    from ui.render import side_by_side

    stored = {"shipping_mark": "KSI-00006", "first_name": "Kofi", "last_name": "Mensah", "phone": "+233240000006"}
    typed = {"shipping_mark": "pm47 richard", "first_name": "Richard", "last_name": "Mensah", "phone": "024 000 0006"}
    normalised = {"shipping_mark": "PM47 RICHARD", "first_name": "Richard", "last_name": "Mensah",
                  "phone": "+233240000006"}
    table = side_by_side(stored, typed, "Customer #6", "Row 9", "shipping_mark", compared=normalised).set_index("Field")
    assert "Shipping Mark" in table.index and table.loc["Shipping Mark", "Compared"] == "differs"
    assert not any("same" in f or "matched" in f for f in table.index if f.startswith("Shipping Mark"))
    assert table.loc["Phone  ⟵ the key that matched", "Compared"] == "same"
    assert table.loc["Last Name", "Compared"] == "same" and table.loc["First Name", "Compared"] == "differs"


def test_one_customers_mark_and_anothers_phone_is_a_conflict_not_a_duplicate(database_url):
    engine = ready_engine(database_url)
    run_import(engine, checked_of([person(i, region="Ashanti") for i in range(1, 4)]), file_name="october.csv",
               sha256="a" * 64, sheet=None, settings=SETTINGS)
    upload = _upload(engine, [person(1, phone="0240000002", email="", region="Ashanti"),
                              person(3, region="Ashanti")])
    assert not upload.checked.errors.rows_with(ErrorCode.DUPLICATE_IN_FILE).size
    found = classify_upload(engine, upload.checked)
    assert found.counts()["conflict"] == 1
    assert {e.field for e in found.conflicts[2]} == {"shipping_mark", "phone"}


# --- a blank cell that gets a default is listed, and the default can be turned off ------------------------

KUMASI = (b"S/Mark,First Name,Last Name,Phone,Location\n"
          b"KSI-1,Kofi,Mensah,0241234567,Ashanti\n"
          b"KSI-2,Ama,Owusu,0241234568,\n"
          b"KSI-3,Yaw,Boateng,0241234569,\n")


def test_blank_locations_that_got_the_default_region_are_listed():
    from importer.api import read_upload
    from importer.checks.changes import upload_changes

    upload = read_upload(KUMASI, "kumasi.csv", SETTINGS)
    changes = upload_changes(upload)
    assert changes.count("region_default") == 2
    assert changes.lines()[0].startswith("2 blank regions got the default region GREATER_ACCRA (row 3: (blank) ->")


def test_the_default_region_can_be_turned_off_for_one_upload():
    from importer.api import read_upload
    from importer.review.operations import NoDefaultRegion, operation_from_dict

    upload = read_upload(KUMASI, "kumasi.csv", SETTINGS)
    assert not len(upload.checked.errors)
    op = operation_from_dict(NoDefaultRegion.kind, NoDefaultRegion().to_dict())
    after = op.apply(upload.checked, SETTINGS)
    assert sorted(after.errors.rows().tolist()) == [3, 4]
    assert {e.code for r in (3, 4) for e in after.errors[r]} == {ErrorCode.REQUIRED}
    assert after.changes.count("region_default") == 0
    assert "Turned off the default region" in op.describe()


def test_fill_blank_regions_counts_the_rows_the_default_filled():
    from importer.api import read_upload
    from importer.review.fixes import fill_region_fix, fix_preview

    upload = read_upload(KUMASI, "kumasi.csv", SETTINGS)
    # "Only change failing rows" is ticked, and the default filled the blanks before anything failed.
    assert fix_preview(upload.checked, fill_region_fix("ASHANTI"), SETTINGS, only_failing=True) == (0, 2)


# --- fuzzy region suggestions ---------------------------------------------------------------------------

def test_an_unsure_or_foreign_region_guess_is_a_question_not_prefilled():
    from importer.checks.validate import check_frame
    from importer.review.conversions import failing_values
    from tests.support import frame

    checked = check_frame(frame([person(1, region="China"), person(2, region="Kumassi"),
                                 person(3, region="Tamale Rd")]), SETTINGS)
    table = failing_values(checked, "region", SETTINGS).set_index("value")
    assert pd.isna(table.loc["China", "suggestion"])
    assert "Chiana" in table.loc["China", "why"] and "?" in table.loc["China", "why"]
    assert table.loc["Kumassi", "suggestion"] == "ASHANTI"  # a sure typo is still filled in


# --- business names -----------------------------------------------------------------------------------------

def test_a_business_name_goes_to_company_name_with_user_type_business():
    from importer.api import read_upload
    from importer.checks.changes import upload_changes

    data = (b"S/Mark,Customer Name,Phone,Location\n"
            b"KSI-1,Kofi Boateng & Sons Ltd,0241234567,Ashanti\n"
            b"KSI-2,Ama Owusu,0241234568,Ashanti\n"
            b"KSI-3,Adom Ventures,0241234569,Ashanti\n")
    upload = read_upload(data, "branch.csv", SETTINGS)
    rows = upload.checked.normalised
    assert rows.loc[2, ["first_name", "last_name", "company_name", "user_type"]].tolist() == [
        "Kofi", "Boateng", "Kofi Boateng & Sons Ltd", "BUSINESS"]
    assert rows.loc[3, "user_type"] == "INDIVIDUAL" and pd.isna(rows.loc[3, "company_name"])
    # A business name with no contact's name asks for one: the last name is blank and the row says so.
    assert upload.checked.original.loc[4, "company_name"] == "Adom Ventures"
    assert {e.field for e in upload.checked.errors[4]} == {"last_name"}
    assert upload_changes(upload).count("name_business") == 2


# --- conversion decisions remembered per source -------------------------------------------------------------

def test_conversion_decisions_are_offered_again_for_the_sources_next_file(database_url):
    from importer.api import read_upload
    from importer.review.conversions import failing_values
    from importer.review.remembered import (
        decisions_of_grid,
        remember_conversions,
        remembered_conversions,
        with_remembered,
    )

    engine = ready_engine(database_url)
    october = (b"S/Mark,First Name,Last Name,Phone,Location\n"
               b"KSI-1,Kofi,Mensah,0241234567,China\n"
               b"KSI-2,Ama,Owusu,0241234568,\"Accra Rd, Kumasi\"\n")
    upload = read_upload(october, "kumasi-oct.csv", SETTINGS)
    table = failing_values(upload.checked, "region", SETTINGS)
    assert set(table["value"]) == {"China", "Accra Rd, Kumasi"}
    edited = table.assign(suggestion=[("ASHANTI" if v == "Accra Rd, Kumasi" else None) for v in table["value"]])
    decided = decisions_of_grid(table, edited, "suggestion")
    assert decided == {"China": None, "Accra Rd, Kumasi": "ASHANTI"}
    remember_conversions(engine, upload.mapping.headers, upload.mapping.fields, "region", decided,
                         file_name="kumasi-oct.csv", user="ama")
    november = october.replace(b"KSI-1", b"KSI-7").replace(b"KSI-2", b"KSI-8")
    upload = read_upload(november, "kumasi-nov.csv", SETTINGS)
    remembered = remembered_conversions(engine, upload.mapping.headers)
    offered = with_remembered(failing_values(upload.checked, "region", SETTINGS), "region", remembered)
    offered = offered.set_index("value")
    assert offered.loc["Accra Rd, Kumasi", "suggestion"] == "ASHANTI"
    assert "earlier file" in offered.loc["Accra Rd, Kumasi", "why"]
    assert pd.isna(offered.loc["China", "suggestion"]) and "leave it as it is" in offered.loc["China", "why"]
    # Another layout has no remembered decisions; a saved mapping for this one is not changed by them.
    assert remembered_conversions(engine, ["Mark", "Name"]) == {}
    from importer.mapping.profiles import remembered_mapping
    assert remembered_mapping(engine, upload.mapping) is None


def test_the_default_region_off_survives_a_replay_of_the_workspace(database_url):
    from importer.api import read_upload
    from importer.review.operations import BulkFix, NoDefaultRegion
    from importer.workspace import store as ws

    engine = ready_engine(database_url)
    upload = read_upload(KUMASI, "kumasi.csv", SETTINGS)
    wid = ws.create_workspace(engine, "ama", KUMASI, upload.file_name, SETTINGS, upload.sheet, upload.mapping,
                              rows=upload.checked.total)
    opened = ws.perform(engine, ws.open_workspace(engine, wid, SETTINGS), NoDefaultRegion(), SETTINGS)
    assert sorted(opened.upload.checked.errors.rows().tolist()) == [3, 4]
    assert sorted(ws.replay(engine, wid, SETTINGS).checked.errors.rows().tolist()) == [3, 4]
    # Then "Fill blank regions with Ashanti", failing rows only, fills both, live and replayed.
    opened = ws.perform(engine, opened, BulkFix("region", "ASHANTI", only_failing=True), SETTINGS)
    assert not len(opened.upload.checked.errors)
    replayed = ws.replay(engine, wid, SETTINGS).checked
    assert not len(replayed.errors) and set(replayed.normalised["region"]) == {"ASHANTI"}


def test_a_duplicate_in_the_file_holding_two_customers_keys_is_counted_as_a_conflict(database_url):
    engine = ready_engine(database_url)
    run_import(engine, checked_of([person(i, region="Ashanti") for i in range(1, 4)]), file_name="october.csv",
               sha256="a" * 64, sheet=None, settings=SETTINGS)
    # Row 2 is customer 2 as stored; row 3 holds customer 1's mark and customer 2's phone: an in-file
    # duplicate of row 2 (the phone), and a conflict between customers 1 and 2.
    upload = _upload(engine, [person(2, region="Ashanti"), person(1, phone="0240000002", email="", region="Ashanti")])
    assert upload.checked.errors.rows_with(ErrorCode.DUPLICATE_IN_FILE).tolist() == [3]
    found = classify_upload(engine, upload.checked)
    assert found.counts()["conflict"] == 1 and found.counts()["unchanged"] == 1
    assert {e.field for e in found.conflicts[3]} == {"shipping_mark", "phone"}
    counted = dec.against_database(upload.checked, found, dec.decisions_of([]))
    assert {e.code for e in counted.errors[3]} == {ErrorCode.DUPLICATE_IN_FILE, ErrorCode.CONFLICT}
