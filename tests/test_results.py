"""Run results: the accounting invariant, the contract's JSON keys and message."""

from __future__ import annotations

import pytest

from importer.results import ErrorCode, RowError, RowResult, RowStatus, RunResult


def failed(row: int, *errors: RowError, **data: str) -> RowResult:
    return RowResult(row, RowStatus.FAILED, tuple(errors), dict(data))


PHONE = RowError("phone", ErrorCode.INVALID_PHONE, "5412345 is not a valid phone number")


def test_contract_json_shape_and_message() -> None:
    result = RunResult(
        run_id=7, dry_run=False, resumed=False, file="customers.xlsx", sheet="Customers",
        total_attempted=10000, total_created=9999,
        failed=(failed(14, PHONE, shipping_mark="PM10 ABENA", first_name="Abena", phone="5412345"),),
    )
    assert result.to_json() == {
        "run_id": 7, "dry_run": False, "resumed": False, "file": "customers.xlsx", "sheet": "Customers",
        "success": True, "message": "Created 9,999 customers; 1 row failed",
        "total_attempted": 10000, "total_created": 9999, "total_failed": 1,
        "failed_customers": [
            {"source_row_number": 14, "error": "Phone: 5412345 is not a valid phone number",
             "errors": [{"field": "phone", "code": "invalid_phone", "message": "5412345 is not a valid phone number"}],
             "customer_data": {"shipping_mark": "PM10 ABENA", "first_name": "Abena", "phone": "5412345"}}
        ],
    }


def test_accounting_invariant_is_enforced() -> None:
    with pytest.raises(AssertionError, match="accounting"):
        RunResult(None, False, False, "f.csv", None, total_attempted=3, total_created=1, failed=(failed(2, PHONE),))


@pytest.mark.parametrize(
    ("created", "failures", "dry", "message"),
    [
        (1, 0, False, "Created 1 customer"),
        (9950, 50, False, "Created 9,950 customers; 50 rows failed"),
        (0, 1, False, "Created 0 customers; 1 row failed"),
        (5, 2, True, "Would create 5 customers; 2 rows would fail"),
    ],
)
def test_messages(created: int, failures: int, dry: bool, message: str) -> None:
    rows = tuple(failed(i, PHONE) for i in range(failures))
    result = RunResult(1, dry, False, "f.csv", None, created + failures, created, rows)
    assert result.message == message


def test_error_text_joins_every_error_with_field_labels() -> None:
    row = failed(3, RowError("first_name", ErrorCode.REQUIRED, "is blank"), PHONE)
    assert row.to_json()["error"] == "First Name: is blank; Phone: 5412345 is not a valid phone number"


def test_failures_by_code_counts_rows() -> None:
    dup = RowError("phone", ErrorCode.DUPLICATE_IN_FILE, "same")
    result = RunResult(1, False, False, "f", None, 3, 0, (failed(2, PHONE), failed(3, PHONE, dup), failed(4, dup)))
    assert result.failures_by_code() == {"duplicate_in_file": 2, "invalid_phone": 2}


def test_row_error_round_trips_through_dict() -> None:
    assert RowError.from_dict(PHONE.to_dict()) == PHONE
