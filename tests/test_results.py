"""Run results: the accounting invariant, the contract's JSON keys and message."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from importer.outcomes.error_table import ErrorTable
from importer.outcomes.failed_rows import FailedRow, FailedRows, UpdateColumns, UpdatedRow, UpdatedRows
from importer.outcomes.row_errors import ErrorCode, RowError, sorted_unique
from importer.outcomes.run_result import RunResult


def failed(row: int, *errors: RowError, **data: str) -> FailedRow:
    return FailedRow(row, tuple(errors), dict(data))


def rows(*failed_rows: FailedRow) -> FailedRows:
    return FailedRows.of(failed_rows)


PHONE = RowError("phone", ErrorCode.INVALID_PHONE, "5412345 is not a valid phone number")


def test_contract_json_shape_and_message() -> None:
    result = RunResult(
        run_id=7, dry_run=False, resumed=False, file="customers.xlsx", sheet="Customers",
        total_attempted=10000, total_created=9999,
        failed=rows(failed(14, PHONE, shipping_mark="PM10 ABENA", first_name="Abena", phone="5412345")),
    )
    assert result.to_json() == {
        "run_id": 7, "dry_run": False, "resumed": False, "file": "customers.xlsx", "sheet": "Customers",
        "success": True, "message": "Created 9,999 customers; 1 row failed",
        "total_attempted": 10000, "total_created": 9999, "total_failed": 1, "total_updated": 0, "total_unchanged": 0,
        "changes": [],
        "failed_customers": [
            {"source_row_number": 14, "error": "Phone: 5412345 is not a valid phone number",
             "errors": [{"field": "phone", "code": "invalid_phone", "message": "5412345 is not a valid phone number"}],
             "customer_data": {"shipping_mark": "PM10 ABENA", "first_name": "Abena", "phone": "5412345"}}
        ],
        "updated_customers": [],
    }


def test_accounting_invariant_is_enforced() -> None:
    with pytest.raises(AssertionError, match="accounting"):
        RunResult(None, False, False, "f.csv", None, total_attempted=3, total_created=1, failed=rows(failed(2, PHONE)))


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
    result = RunResult(1, dry, False, "f.csv", None, created + failures, created,
                       rows(*(failed(i, PHONE) for i in range(failures))))
    assert result.message == message


def test_error_text_joins_every_error_with_field_labels() -> None:
    row = failed(3, RowError("first_name", ErrorCode.REQUIRED, "is blank"), PHONE)
    assert row.to_json()["error"] == "First Name: is blank; Phone: 5412345 is not a valid phone number"


def test_error_table_counts_rows_per_code() -> None:
    dup = RowError("phone", ErrorCode.DUPLICATE_IN_FILE, "same", value="+233241234567", other_row=2)
    table = ErrorTable.from_pairs([(3, PHONE), (3, dup), (4, dup), (2, PHONE)])
    assert table.by_code() == {"duplicate_in_file": 2, "invalid_phone": 2}
    assert list(table) == [2, 3, 4] and len(table) == 3
    assert table[3] == (PHONE, dup) and table[4][0].other_row == 2 and 5 not in table
    assert table.without_code(ErrorCode.DUPLICATE_IN_FILE) == {2: (PHONE,), 3: (PHONE,)}
    assert list(table.without_rows([3])) == [2, 4]
    assert list(table.rows_with("duplicate_in_file")) == [3, 4]


def test_error_table_keeps_a_row_s_errors_in_field_order() -> None:
    name = RowError("first_name", ErrorCode.REQUIRED, "is blank")
    table = ErrorTable.from_pairs([(7, PHONE), (7, name)])
    assert table[7] == (name, PHONE)
    merged = table.with_rows(ErrorTable.from_pairs([(6, PHONE), (7, RowError("email", ErrorCode.INVALID_EMAIL, "x"))]))
    assert list(merged) == [6, 7]
    assert [e.field for e in merged[7]] == ["first_name", "email", "phone"]


def test_streamed_json_is_the_json_text_byte_for_byte() -> None:
    result = RunResult(3, False, True, "ünïcode 😀.csv", None, 3, 1, rows(
        failed(2, PHONE, shipping_mark="PM1 😀", phone="5412345"),
        failed(5, PHONE, RowError("email", ErrorCode.INVALID_EMAIL, 'has a "quote"'), email='x"y'),
    ))
    assert "".join(result.json_chunks()) == json.dumps(result.to_json(), ensure_ascii=False)
    empty = RunResult(None, True, False, "f.csv", None, 0, 0)
    assert "".join(empty.json_chunks()) == json.dumps(empty.to_json(), ensure_ascii=False)


def test_row_error_round_trips_through_dict() -> None:
    assert RowError.from_dict(PHONE.to_dict()) == PHONE


def test_updates_and_unchanged_join_the_invariant_message_and_json() -> None:
    updated = UpdatedRows.of([UpdatedRow(5, 12, {"phone": ("+233240000001", "+233240000002")})])
    result = RunResult(3, False, False, "f.csv", None, total_attempted=10, total_created=3,
                       failed=rows(failed(9, PHONE)), updated=updated, total_unchanged=5)
    assert (result.total_updated, result.total_unchanged) == (1, 5)
    assert result.message == "Created 3 customers; updated 1; 5 unchanged; 1 row failed"
    data = result.to_json()
    assert list(data)[-6:] == ["total_failed", "total_updated", "total_unchanged", "changes", "failed_customers",
                               "updated_customers"]
    assert data["updated_customers"] == [
        {"source_row_number": 5, "customer_id": 12, "changes": {"phone": ["+233240000001", "+233240000002"]}}]
    assert "".join(result.json_chunks()) == json.dumps(data, ensure_ascii=False)
    dry = RunResult(None, True, False, "f.csv", None, 9, 3, updated=updated, total_unchanged=5)
    assert dry.message == "Would create 3 customers; would update 1; 5 unchanged"
    with pytest.raises(AssertionError, match="1 updated \\+ 5 unchanged"):
        RunResult(None, False, False, "f.csv", None, 10, 3, updated=updated, total_unchanged=5)


def test_update_columns_hold_diffs_and_give_them_back_by_row() -> None:
    held = UpdateColumns()
    held.add(9, 2, {"email": ("a@example.com", None), "region": ("ASHANTI", "VOLTA")})
    held.add(4, 1, {"phone": ("+233240000001", "+233240000002")})
    rows_back = list(held.freeze())
    assert [r.to_json() for r in rows_back] == [
        {"source_row_number": 4, "customer_id": 1, "changes": {"phone": ["+233240000001", "+233240000002"]}},
        {"source_row_number": 9, "customer_id": 2,
         "changes": {"email": ["a@example.com", None], "region": ["ASHANTI", "VOLTA"]}},
    ]
    assert len(held.freeze()) == 2 and list(held.freeze()) == rows_back  # re-iterable


def test_failed_rows_of_carries_the_files_own_columns_by_row() -> None:
    import pandas as pd

    from importer.outcomes.failed_rows import failed_rows_of

    index = pd.Index([4, 7, 9], name="source_row_number")
    original = pd.DataFrame({"shipping_mark": ["PM4", "PM7", "PM9"], "phone": ["1", "", "3"]}, index=index, dtype="str")
    others = pd.DataFrame({"S/No": ["1", "2", ""], "Remarks": ["", "call", ""]}, index=index, dtype="str")
    errors = ErrorTable.from_pairs([(9, RowError("phone", ErrorCode.INVALID_PHONE, "bad")),
                                    (7, RowError("phone", ErrorCode.REQUIRED, "blank"))])
    rows = list(failed_rows_of(errors, original, ["shipping_mark", "phone"], chunk=1, others=others))
    assert [(r.source_row_number, dict(r.customer_data), dict(r.other_columns)) for r in rows] == [
        (7, {"shipping_mark": "PM7"}, {"S/No": "2", "Remarks": "call"}),
        (9, {"shipping_mark": "PM9", "phone": "3"}, {}),
    ]
    # The JSON of a failed row is the contract's: the file's own columns are for reports only.
    assert set(rows[0].to_json()) == {"source_row_number", "error", "errors", "customer_data"}


def test_failed_rows_say_their_report_layout_and_run() -> None:
    from importer.outcomes.failed_rows import FailedRows, ReportColumn, field_columns

    failed = FailedRows.of([], columns=[ReportColumn("S/No"), ReportColumn("Phone", "phone")], run_id=3)
    assert failed.columns == (ReportColumn("S/No", None), ReportColumn("Phone", "phone")) and failed.run_id == 3
    assert FailedRows.of([]).columns is None and FailedRows.of([]).run_id is None
    assert [c.field for c in field_columns()][-2:] == ["other_phones", "other_emails"]
    assert ReportColumn.from_json(ReportColumn("S/No").to_json()) == ReportColumn("S/No")


def test_streamed_json_of_many_rows_crosses_batches_byte_for_byte() -> None:
    many = [failed(n, PHONE, RowError("email", ErrorCode.INVALID_EMAIL, f"é {n}"), phone=str(n)) for n in range(1, 1_203)]
    result = RunResult(None, True, False, "f.csv", None, len(many), 0, rows(*many))
    assert "".join(result.json_chunks()) == json.dumps(result.to_json(), ensure_ascii=False)


def _messy_pairs() -> list[tuple[int, RowError]]:
    name = RowError("first_name", ErrorCode.REQUIRED, "is blank; every customer needs a first name")
    dup = RowError("phone", ErrorCode.DUPLICATE_IN_FILE, "same phone as row 3", value="+233241234567", other_row=3)
    whole = RowError("row", ErrorCode.DATABASE_ERROR, "refused")
    odd = RowError("not_a_field", ErrorCode.CONFLICT, "two customers", value="x")
    return [(9, PHONE), (3, dup), (9, name), (4, whole), (3, PHONE), (7, odd), (4, name), (9, dup), (12, PHONE)]


@pytest.mark.parametrize("field_order", [True, False])
def test_error_table_from_distinct_errors_equals_from_pairs(field_order: bool) -> None:
    import numpy as np

    pairs = _messy_pairs()
    distinct = list(dict.fromkeys(e for _, e in pairs))
    table = ErrorTable.from_distinct(np.array([r for r, _ in pairs]), np.array([distinct.index(e) for _, e in pairs]),
                                     distinct, field_order=field_order)
    expected = ErrorTable.from_pairs(pairs, field_order=field_order)
    assert list(table.pairs()) == list(expected.pairs()) and dict(table) == dict(expected)
    assert list(ErrorTable.from_distinct(np.zeros(0), np.zeros(0), []).pairs()) == []


def test_a_table_filtered_and_joined_again_and_again_compacts_to_the_texts_it_names() -> None:
    table = ErrorTable.from_pairs(_messy_pairs())
    for _ in range(5):  # as a replay's checks do: drop some cells' errors, add the new ones
        table = table.without_cells({"phone": [9, 3, 12]}).with_rows(ErrorTable.from_pairs(
            [(r, e) for r, e in _messy_pairs() if e.field == "phone"]))
    assert len(table.to_arrays()[1]) > 3 * len(table.to_arrays()[0]["rows"])
    compact = table.compacted()
    assert list(compact.pairs()) == list(table.pairs()) and list(compact.pairs()) == list(
        ErrorTable.from_pairs(_messy_pairs()).pairs())
    texts = compact.to_arrays()[1]
    assert texts[0] is None and len(texts) == len(set(texts))
    assert set(texts) == {None} | {t for _, e in _messy_pairs() for t in (e.message, e.value)}
    assert compact.compacted() is compact  # nothing to drop: the same table


@pytest.mark.parametrize("others", [None, [1, 1, 2]])
def test_errors_of_one_kind_as_columns_equal_from_pairs(others) -> None:
    import numpy as np

    made = ErrorTable.of_one_kind("phone", ErrorCode.DUPLICATE_IN_FILE, np.array([4, 6, 9]), ["m4", "m6", "m4"],
                                  ["v", "v", None], None if others is None else np.array(others))
    other = [None, None, None] if others is None else others
    assert list(made.pairs()) == [(r, RowError("phone", ErrorCode.DUPLICATE_IN_FILE, m, v, o)) for r, m, v, o in
                                  zip([4, 6, 9], ["m4", "m6", "m4"], ["v", "v", None], other, strict=True)]
    assert len(made.to_arrays()[1]) == 4  # None, "m4", "v", "m6": each text once


def test_errors_of_rows_in_chunks_equal_lookups_by_row() -> None:
    table = ErrorTable.from_pairs(_messy_pairs())
    keys = table.rows().tolist()
    for size in (1, 2, 3, 100):
        chunked = [e for start in range(0, len(keys), size) for e in table.errors_of_rows(start, start + size)]
        assert chunked == [table[k] for k in keys]
    assert table.errors_of_rows(5, 9) == [] and ErrorTable.empty().errors_of_rows(0, 10) == []


def test_combine_sorts_even_one_table_and_without_code_can_narrow() -> None:
    dup_phone = RowError("phone", ErrorCode.DUPLICATE_IN_FILE, "p", other_row=2)
    dup_email = RowError("email", ErrorCode.DUPLICATE_IN_FILE, "e", other_row=2)
    by_row = ErrorTable.from_pairs([(5, dup_phone), (5, dup_email), (6, dup_phone)], field_order=False)
    assert [e.field for e in by_row[5]] == ["phone", "email"]
    assert [e.field for e in ErrorTable.combine([by_row])[5]] == ["email", "phone"]
    narrowed = by_row.without_code(ErrorCode.DUPLICATE_IN_FILE, [5], "phone")
    assert dict(narrowed) == {5: (dup_email,), 6: (dup_phone,)}
    assert dict(by_row.without_code(ErrorCode.DUPLICATE_IN_FILE, field="email")) == {5: (dup_phone,), 6: (dup_phone,)}
    assert len(by_row.without_code(ErrorCode.DUPLICATE_IN_FILE)) == 0


def test_values_by_row_reads_every_kind_of_column_as_text() -> None:
    import numpy as np
    import pandas as pd

    from importer.outcomes.failed_rows import values_by_row

    index = pd.Index([10, 11, 12], name="source_row_number")
    frame = pd.DataFrame({"text": pd.array(["a", None, ""], dtype="str"), "objects": [1, None, "x"],
                          "floats": [1.5, np.nan, 2.0], "ints": [1, 2, 3]}, index=index)
    assert values_by_row(frame, [12, 10, 99]) == {
        12: {"objects": "x", "floats": "2.0", "ints": "3"},
        10: {"text": "a", "objects": "1", "floats": "1.5", "ints": "1"},
    }
    assert values_by_row(frame, [11], ["text", "missing", "ints"]) == {11: {"ints": "2"}}
    assert values_by_row(frame, [99]) == {} and values_by_row(None, [10]) == {}


@given(st.lists(st.integers(min_value=-5, max_value=2**40), max_size=60), st.booleans())
def test_sorted_unique_is_np_unique_and_a_new_array(values: list[int], ordered: bool) -> None:
    import numpy as np

    array = np.array(sorted(set(values)) if ordered else values, dtype=np.int64)
    found = sorted_unique(array)
    assert found.dtype == array.dtype and found.tolist() == np.unique(array).tolist()
    if len(found):
        found[0] = 7
        assert array.tolist() == (sorted(set(values)) if ordered else values)  # the input is not written
