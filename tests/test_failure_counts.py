"""A run's failures without reading them back: its counts (total_failed, failure_codes) and a dry run's
failed rows are made from its chunks, right after a resume too; the failures' JSON text is json.dumps' own;
the CLI reads the failed rows once for --report and --json, with the same output as each alone."""

from __future__ import annotations

import json
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from importer.cli import main
from importer.database.ledger import get_run, run_failures
from importer.database.loader import run_import
from importer.database.schema import import_failures
from importer.outcomes.error_table import ErrorTable
from importer.outcomes.failed_rows import FailedRow, values_by_row, values_json_by_row
from importer.outcomes.row_errors import ErrorCode, RowError, errors_json
from importer.outcomes.run_result import failed_row_json
from tests.fixtures import corpus
from tests.support import SETTINGS, checked_of, import_cut_off, person, ready_engine


def _import(engine, checked, **kw):
    kw.setdefault("file_name", "customers.xlsx")
    kw.setdefault("sha256", "f" * 64)
    kw.setdefault("sheet", "Customers")
    return run_import(engine, checked, settings=SETTINGS, **kw)


def _file_rows() -> list[dict[str, str]]:
    """40 rows failing in every way a run records: a changed existing customer (already_exists), a bad
    phone (invalid_phone), a row with two errors (required + invalid_phone), a repeated mark
    (duplicate_in_file), spread over every chunk of 10."""
    rows = []
    for i in range(40):
        if i < 4 or 20 <= i < 23:
            rows.append(person(i, last_name=f"Changed{i}"))  # matches customer i, other last name
        elif i % 7 == 3:
            rows.append(person(i, phone="12345"))
        elif i % 11 == 5:
            rows.append(person(i, first_name="", phone="1"))
        elif i % 13 == 8:
            rows.append(person(i, shipping_mark=f"pm{i - 1} kofi"))
        else:
            rows.append(person(i))
    return rows


def _existing(engine) -> None:
    """Customers 0-3 and 20-22, by an earlier import of another file."""
    _import(engine, checked_of([person(i) for i in (*range(4), 20, 21, 22)]), sha256="e" * 64)


def _stored_codes(engine, run_id: int) -> tuple[int, dict[str, int]]:
    """The run's failed rows and, per code, how many failed rows carry it: counted from import_failures."""
    with engine.connect() as conn:
        stored = conn.execute(sa.select(import_failures.c.errors).where(import_failures.c.run_id == run_id)).all()
    codes = Counter(code for (errors,) in stored for code in {e["code"] for e in errors})
    return len(stored), dict(codes)


def test_counts_after_a_resume_cover_the_failures_of_earlier_attempts(database_url: str) -> None:
    engine = ready_engine(database_url)
    _existing(engine)
    checked = checked_of(_file_rows())
    run_id = import_cut_off(engine, checked, sha256="f" * 64)  # after two chunks, as a dead process leaves it
    earlier, earlier_codes = _stored_codes(engine, run_id)
    assert earlier > 0 and {"already_exists", "invalid_phone", "required"} <= set(earlier_codes)

    result = _import(engine, checked, batch_size=10)
    assert result.resumed and result.run_id == run_id
    failed, codes = _stored_codes(engine, run_id)
    assert failed > earlier  # the resumed attempt failed rows of its own too
    assert result.total_failed == failed == get_run(engine, run_id).total_failed
    assert dict(result.failure_codes) == codes
    assert set(codes) == {"already_exists", "invalid_phone", "required", "duplicate_in_file"}
    assert list(result.failure_codes) == sorted(codes, key=lambda c: (-codes[c], c))  # most first
    assert result.total_created + result.total_failed == result.total_attempted == 40
    # The failed rows the result streams are every failed row of the run, earlier attempts' included.
    assert [r.to_json() for r in result.failed] == [r.to_json() for r in run_failures(engine, run_id)]
    assert len(list(result.failed)) == failed


def test_a_dry_run_shows_the_failures_a_real_run_stores(database_url: str) -> None:
    engine = ready_engine(database_url)
    _existing(engine)
    checked = checked_of(_file_rows())
    dry = _import(engine, checked, batch_size=10, dry_run=True)
    real = _import(engine, checked, batch_size=10)
    failed, codes = _stored_codes(engine, real.run_id)
    assert dry.total_failed == real.total_failed == failed == get_run(engine, real.run_id).total_failed
    assert dict(dry.failure_codes) == dict(real.failure_codes) == codes
    assert list(dry.failure_codes) == list(real.failure_codes)
    # Row for row, error for error (a row's errors in their stored order), values as typed.
    assert [r.to_json() for r in dry.failed] == [r.to_json() for r in real.failed]
    assert [r.errors for r in dry.failed] == [r.errors for r in real.failed]
    two = next(r for r in real.failed if len(r.errors) == 2)
    assert [e.field for e in two.errors] == ["first_name", "phone"]


def test_a_run_without_failures_counts_none(database_url: str) -> None:
    engine = ready_engine(database_url)
    result = _import(engine, checked_of([person(i) for i in range(5)]), batch_size=2)
    assert (result.total_failed, dict(result.failure_codes), list(result.failed)) == (0, {}, [])


TRICKY = ["plain", "Ama Serwaa", "Kwabena \"KB\" O'Neil", "back\\slash", "tab\there", "new\nline\r",
          "\x00nul\x1f", "Ẹ̀kọ́ café", "😀 emoji", "_x000D_", "=SUM(A1)", "  spaced  ", "\u2028sep", "\ud800lone"]


def test_failure_json_text_is_json_dumps_text() -> None:
    errors = tuple(RowError("phone" if i % 2 else "row", ErrorCode.INVALID_PHONE, text, value=text, other_row=i)
                   for i, text in enumerate(TRICKY))
    assert errors_json(errors) == json.dumps([e.to_dict() for e in errors])
    assert errors_json(()) == json.dumps([])
    table = ErrorTable.from_pairs((7 + i % 3, e) for i, e in enumerate(errors))
    rows = np.array([7, 9])
    assert table.errors_json(rows) == [json.dumps([e.to_dict() for e in table[int(n)]]) for n in rows]
    with pytest.raises(KeyError):
        table.errors_json(np.array([7, 8, 10]))
    # The stored table: field, code and message only, as a run reads them back.
    stored = table.as_stored()
    assert [e for n in stored for e in stored[n]] == [RowError(e.field, e.code, e.message)
                                                     for n in table for e in table[n]]
    assert table.only_rows(np.array([8, 11])).rows().tolist() == [8]


def test_values_json_is_json_dumps_of_values_by_row() -> None:
    frame = pd.DataFrame({"a": TRICKY, "b": ["", *TRICKY[1:]], "c": [None, 3, 4.5, *([""] * 11)]},
                         index=range(2, 2 + len(TRICKY)), dtype=object)
    frame["d"] = pd.array([None, *TRICKY[1:-1], "ok"], dtype="string")  # arrow holds no lone surrogate
    rows = [2, 3, 4, 15, 99]
    expected = {n: json.dumps(v) for n, v in values_by_row(frame, rows).items()}
    assert values_json_by_row(frame, rows) == expected and 99 not in expected
    assert values_json_by_row(frame, rows, ["b", "a"]) == {n: json.dumps(v) for n, v in
                                                           values_by_row(frame, rows, ["b", "a"]).items()}
    numbered = frame.set_axis([1, "x", 2, "y"], axis=1)  # not every header is text: json.dumps decides
    assert values_json_by_row(numbered, rows) == {n: json.dumps(v) for n, v in
                                                  values_by_row(numbered, rows).items()}
    assert values_json_by_row(None, rows) == {} and values_json_by_row(frame, []) == {}


@pytest.mark.parametrize("text", TRICKY)
def test_failed_row_json_is_json_dumps_text(text: str) -> None:
    row = FailedRow(12, (RowError("phone", ErrorCode.INVALID_PHONE, text), RowError("email", ErrorCode.REQUIRED,
                                                                                    "blank")),
                    {"shipping_mark": text, text: "x"}, {"Remarks": text})
    assert failed_row_json(row) == json.dumps(row.to_json(), ensure_ascii=False)
    odd = FailedRow(3, (), {"n": 5, "m": None})  # type: ignore[dict-item]  # not text: as json.dumps has it
    assert failed_row_json(odd) == json.dumps(odd.to_json(), ensure_ascii=False) == (
        '{"source_row_number": 3, "error": "", "errors": [], "customer_data": {"n": 5, "m": null}}')


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as book:
        return {name: book.read(name) for name in book.namelist()}


@pytest.mark.parametrize("dry", [False, True])
@pytest.mark.parametrize("ending", ["csv", "xlsx"])
def test_cli_report_and_json_together_are_each_alone(capsys, tmp_path: Path, ending: str, dry: bool) -> None:
    header = ["Shipping Mark", "First Name", "Last Name", "Email", "Phone", "Remarks"]
    rows = [[f"PM{i} KOFI", "Kofi" if i % 3 else "", f"Mensah{i}", f"k{i}@example.com",
             f"024{i:07d}" if i % 2 else "5412345", f"note {i} ✓" if i % 4 else ""] for i in range(1300)]
    upload = tmp_path / "customers.xlsx"
    upload.write_bytes(corpus.xlsx({"Customers": [header, *rows]}))

    def run(name: str, *argv: str) -> str:  # each in a database of its own: the same run, the same failures
        url = f"sqlite:///{tmp_path / name}.db"
        code = main(["import", str(upload), *(["--dry-run"] if dry else []), *argv, "--database-url", url])
        out, err = capsys.readouterr()
        assert code == 0, err
        return out

    both = run("both", "--json", "--report", str(tmp_path / f"both.{ending}"))
    assert "Failure report written to" in run("alone", "--report", str(tmp_path / f"alone.{ending}"))
    assert run("json", "--json") == both
    result = json.loads(both)
    assert result["total_failed"] > 500 and len(result["failed_customers"]) == result["total_failed"]
    if ending == "csv":
        assert (tmp_path / "both.csv").read_bytes() == (tmp_path / "alone.csv").read_bytes()
    else:
        assert _members(tmp_path / "both.xlsx") == _members(tmp_path / "alone.xlsx")
