"""Exclusions (importer/review/exclusions.py): by reason, kept aside with their text, included again, and in the
failure report marked "excluded by the analyst" (the report over a real run on SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import io
from dataclasses import replace

import pandas as pd

from importer.api import import_upload, read_upload
from importer.checks.validate import check_frame, exclude
from importer.database.ledger import run_failures
from importer.outcomes.failed_rows import FailedRows
from importer.outcomes.row_errors import ErrorCode
from importer.output.failure_report import report_bytes
from importer.review.exclusions import (
    EXCLUDED_BY_ANALYST,
    Excluded,
    exclude_failing,
    excluded_failures,
    excluded_rows,
    include_again,
    reasons,
    rows_failing_with,
    why_excluded,
    with_excluded,
    without,
)
from tests.support import SETTINGS, customer, frame, ready_engine


def _branch() -> list[dict[str, str]]:
    """300 rows: 204 fail on phone (a number too short); 11 of them and 4 others on a blank first name too."""
    rows = [customer(n) for n in range(1, 301)]
    for n in range(204):
        rows[n]["phone"] = f"0{n:03d}"
    for n in range(0, 300, 20):
        rows[n]["first_name"] = ""
    return rows


def test_rows_failing_with_a_reason_by_code_and_by_field():
    checked = check_frame(frame(customer(1, first_name=""), customer(2, last_name=""), customer(3, phone="1"),
                                customer(4)), SETTINGS)
    assert rows_failing_with(checked, ErrorCode.REQUIRED) == [2, 3]
    assert rows_failing_with(checked, "required", "last_name") == [3]
    assert rows_failing_with(checked, "required", "phone") == []
    assert rows_failing_with(checked.errors, "invalid_phone") == [4]
    assert ("required", "first_name", 1) in reasons(checked.errors)


def test_exclude_all_204_rows_failing_on_phone_keeps_them_aside_with_their_text():
    checked = check_frame(frame(_branch()), SETTINGS)
    assert len(rows_failing_with(checked, "invalid_phone", "phone")) == 204
    after, records = exclude_failing(checked, "invalid_phone", "phone")
    assert after.total == 96 and len(records) == 204
    assert set(after.errors) == {n + 2 for n in range(220, 300, 20)}  # the blank first names left
    first = records[0]
    assert first.source_row == 2 and first.text["phone"] == "0000" and "first_name" not in first.text
    assert first.why == "excluded by the analyst: Phone: Not a valid phone number"
    assert [e.code for e in first.errors] == [ErrorCode.REQUIRED, ErrorCode.INVALID_PHONE]


def test_include_again_puts_the_rows_back_as_they_were_and_validates_them_again():
    checked = check_frame(frame(_branch()), SETTINGS)
    after, records = exclude_failing(checked, "invalid_phone")
    back = include_again(after, records, SETTINGS)
    assert back.total == 300 and list(back.errors) == list(checked.errors)
    assert back.original.equals(checked.original)
    partly = include_again(after, records[:4], SETTINGS)
    assert partly.total == 100 and without(records, [2, 3, 4, 5]) == records[4:]
    assert include_again(back, records, SETTINGS) is back  # rows already in are left as they are


def test_an_excluded_first_row_of_a_duplicate_takes_its_key_back_when_included_again():
    checked = check_frame(frame(customer(1, email="same@x.com"), customer(2, email="same@x.com")), SETTINGS)
    records = excluded_rows(checked, [2])
    freed = exclude(checked, [2])
    assert not freed.errors  # row 3 has the e-mail to itself
    again = include_again(freed, records, SETTINGS)
    assert list(again.errors) == [3] and again.errors[3][0].code is ErrorCode.DUPLICATE_IN_FILE


def test_excluded_failures_mark_each_row_and_keep_its_errors_and_own_columns():
    checked = check_frame(frame(customer(1, phone="1"), customer(2)), SETTINGS)
    own = pd.DataFrame({"S/No": ["1", "2"], "Remarks": ["bad phone", ""]}, index=[2, 3])
    records = excluded_rows(checked, [3, 2, 9], other_columns=own)
    assert [r.source_row for r in records] == [3, 2]  # row 9 is not in the upload
    failed = excluded_failures(records)
    rows = list(failed)
    assert len(failed) == 2 and [r.source_row_number for r in rows] == [2, 3]
    assert [e.code for e in rows[0].errors] == [ErrorCode.EXCLUDED, ErrorCode.INVALID_PHONE]
    assert rows[0].to_json()["error"].startswith("Row: excluded by the analyst; Phone: 1 ")
    assert rows[0].other_columns == {"S/No": "1", "Remarks": "bad phone"}
    assert rows[1].errors[0].message == EXCLUDED_BY_ANALYST and rows[1].customer_data["phone"] == "0240000002"
    assert ErrorCode.EXCLUDED.meaning == "Excluded by the analyst"
    assert why_excluded("required", "first_name") == "excluded by the analyst: First Name: Required field is blank"


def test_with_excluded_appends_after_the_failed_rows_and_keeps_columns_and_run():
    record = Excluded(9, {"phone": "1"})
    failed = FailedRows.of([], run_id=4)
    both = with_excluded(failed, [record])
    assert len(both) == 1 and both.run_id == 4 and next(iter(both)).source_row_number == 9
    assert with_excluded(failed, []) is failed


BRANCH = (
    "S/No,Mark,First Name,Surname,Mobile,Remarks\n"
    "1,PM1 KOFI,Kofi,Mensah,0241234567,ok\n"
    "2,PM2 AMA,Ama,Owusu,0277229773,left the company\n"
    "3,PM3 YAW,Yaw,Boateng,12345,typo in phone\n"
    "4,PM4 ABENA,,Owusu,0201234567,first name missing\n"
    "5,PM5 ESI,Esi,Mensah,0277,short number\n"
)


def _csv(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


def test_a_runs_report_with_the_excluded_rows_goes_back_to_the_branch_whole(database_url):
    engine = ready_engine(database_url)
    upload = read_upload(BRANCH.encode(), "kumasi.csv", SETTINGS)
    checked = upload.checked
    phone_failures, phones = exclude_failing(checked, "invalid_phone", "phone", other_columns=upload.other_columns)
    ticked = excluded_rows(phone_failures, [3], other_columns=upload.other_columns)  # "left the company"
    final = exclude(phone_failures, [3])
    result = import_upload(engine, replace(upload, checked=final), SETTINGS)
    assert (result.total_attempted, result.total_created, result.total_failed) == (2, 1, 1)
    report = _csv(report_bytes(with_excluded(run_failures(engine, result.run_id), [*phones, *ticked]), "csv"))
    assert report[0] == ["Row", "S/No", "Mark", "First Name", "Surname", "Mobile", "Remarks",  # the branch's headers
                         "Report of run", "Errors"]
    lines = {r[0]: r for r in report[1:]}
    assert [r[0] for r in report[1:]] == ["5", "3", "4", "6"]  # the run's failure first, then the excluded
    assert lines["5"][8] == "First Name: is blank; every customer needs a first name"
    assert lines["3"][2:7] == ["PM2 AMA", "Ama", "Owusu", "0277229773", "left the company"]
    assert lines["3"][8] == "Row: excluded by the analyst"
    assert lines["4"][1] == "3" and lines["4"][8].startswith(
        "Row: excluded by the analyst: Phone: Not a valid phone number; Phone: ")
    # Sent back fixed, the excluded rows are rows of the branch file again, under their own numbers.
    again = read_upload(report_bytes(with_excluded(run_failures(engine, result.run_id), phones), "csv"),
                        "fixed.csv", SETTINGS)
    assert again.fixes_run_id == result.run_id and again.checked.original.index.tolist() == [4, 5, 6]
