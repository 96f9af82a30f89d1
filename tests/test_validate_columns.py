"""Property-based: validation by distinct values (importer.checks.validate) gives exactly what row-by-row gives.

check_frame normalises each distinct text of a column once, builds each distinct message once and spreads
both to the rows by number (issue 8: a file whose every row fails must cost about what a clean one costs).
`_reference_check` below is the row-by-row validator it replaced, kept as the specification: one
normaliser call and one RowError per cell, the pandera failure cases one by one, all pairs sorted by
ErrorTable.from_pairs. On random messy tables (several phones or e-mails in a cell, Excel errors, long
and malformed marks, duplicates from small pools, missing cells, rows numbered out of order) the
normalised frame and every error (field, code, message, value, other row, order) must be the same, and
recheck must give what checking the edited table afresh gives. CI: 25 examples each; RELIABILITY_LONG=1: 300.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pandera.errors import SchemaErrors

from importer.checks import normalise as clean
from importer.checks.in_file import find_duplicates_in_file
from importer.checks.validate import (
    _MAIN_OF,
    OTHERS_OF,
    TEXT,
    _check_code,
    _normalise_value,
    _normalisers,
    _schema_message,
    check_cells,
    check_frame,
    recheck,
)
from importer.outcomes.error_table import ErrorTable
from importer.outcomes.row_errors import ErrorCode, RowError
from schemas.customer import FIELD_NAMES, CustomerFrame
from tests.support import SETTINGS

PROFILE = settings(max_examples=300 if os.environ.get("RELIABILITY_LONG") == "1" else 25, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# -- the row-by-row validator, as it was before issue 8's columnar one ---------------------------------
def _reference_normalise(original: pd.DataFrame) -> tuple[pd.DataFrame, list[tuple[int, RowError]]]:
    errors: list[tuple[int, RowError]] = []
    columns: dict[str, list[object]] = {}
    spilled: dict[str, dict[int, tuple[str, ...]]] = {}
    rows = original.index.tolist()
    for field, normaliser in _normalisers(SETTINGS).items():
        values: list[object] = []
        spill = spilled.setdefault(OTHERS_OF[field], {}) if field in OTHERS_OF else None
        for position, (row, raw) in enumerate(zip(rows, original[field].tolist(), strict=True)):
            text = "" if raw is None or pd.isna(raw) else str(raw)
            outcome = _normalise_value(field, text, normaliser)
            if isinstance(outcome, RowError):
                values.append(None)
                errors.append((row, outcome))
            elif spill is not None:
                value, others = outcome
                values.append(value)
                if others:
                    spill[position] = others
            elif field in _MAIN_OF:
                main = columns[_MAIN_OF[field]][position]
                values.append(clean.join_others(spilled[field].get(position, ()), outcome, without=main))
            else:
                values.append(outcome)
        columns[field] = values
    return pd.DataFrame(columns, index=original.index, dtype=TEXT), errors


def _reference_schema_errors(normalised: pd.DataFrame) -> list[tuple[int, RowError]]:
    errors: list[tuple[int, RowError]] = []
    try:
        CustomerFrame.to_schema().validate(normalised, lazy=True)
    except SchemaErrors as exc:
        cases = exc.failure_cases
        cases = cases[cases["index"].notna() & cases["column"].isin(FIELD_NAMES)]
        for column, check, value, row in zip(cases["column"], cases["check"].astype(str), cases["failure_case"],
                                             cases["index"], strict=True):
            code = _check_code(check)
            if code.value != "required" and pd.isna(value):
                continue
            errors.append((int(row), RowError(column, code, _schema_message(column, code, value),
                                              value=None if pd.isna(value) else str(value))))
    return errors


def _reference_check(mapped: pd.DataFrame) -> tuple[pd.DataFrame, ErrorTable]:
    original = mapped.reindex(columns=list(FIELD_NAMES), fill_value="").fillna("").astype(TEXT)
    normalised, errors = _reference_normalise(original)
    refused = {(row, e.field) for row, e in errors}
    pairs = errors + [(row, e) for row, e in _reference_schema_errors(normalised) if (row, e.field) not in refused]
    pairs.extend(find_duplicates_in_file(normalised).pairs())
    return normalised, ErrorTable.from_pairs(pairs)


# -- messy tables ---------------------------------------------------------------------------------------
_any_text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=30)
_blank = st.sampled_from(["", " ", "\t", "  \n "])
_excel = st.sampled_from(["#N/A", " #REF! ", "#DIV/0!"])


def _mix(*pool: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(*pool, _blank, _excel, _any_text)


_PHONES = ["0241234567", "024 123 4567", "+233 24 123 4567", "241234567.0", "0201234567", "54123", "5412345",
           "2.33241E+11", "0277229773 / 0248503716", "0277229773, 54123", "54123; 999", "0551234567 or 0241234567",
           "phone", "0241234567\n0551234567"]
_EMAILS = ["kofi@example.com", "KOFI@Example.com ", "not-an-email", "a@b", "kofi@example.com; ama@example.com",
           "bad; worse", "ama@example.com, ama@example.com"]
_CELLS = {
    "shipping_mark": _mix(st.sampled_from(["pm1 kofi", "PM1  KOFI", "PM3", "x", "P@M", "pm-4_yaw", "É" * 120,
                                           "a" * 101, "@" * 105]),
                          st.from_regex(r"[A-Za-z0-9 _-]{2,8}", fullmatch=True)),
    "first_name": _mix(st.sampled_from(["Kofi", "  ama  serwaa ", "Ōsei", "N" * 55])),
    "last_name": _mix(st.sampled_from(["Mensah", "O" * 51])),
    "email": _mix(st.sampled_from(_EMAILS)),
    "phone": _mix(st.sampled_from(_PHONES), st.from_regex(r"0[25][0-9]{8}", fullmatch=True)),
    "region": _mix(st.sampled_from(["Ashanti", "greater accra", "BONO_EAST", "Volta Region", "Atlantis"])),
    "company_name": _mix(st.sampled_from(["Kofi Ltd", "=HYPERLINK(\"x\")", "C" * 101])),
    "nickname": _mix(st.sampled_from(["Ko", "N" * 51])),
    "user_type": _mix(st.sampled_from(["individual", "BUSINESS", "Company"])),
    "other_phones": _mix(st.sampled_from(["0241234567", "0551234567, 54123", "0277229773 / 0248503716",
                                          "9" * 10 + (", 0241234567" * 50)])),
    "other_emails": _mix(st.sampled_from(["ama@example.com", "kofi@example.com, nope"])),
}
_row = st.fixed_dictionaries({name: st.one_of(st.none(), cells) for name, cells in _CELLS.items()})


@st.composite
def _tables(draw: st.DrawFn) -> pd.DataFrame:
    rows = draw(st.lists(_row, min_size=1, max_size=20))
    numbers = draw(st.permutations(range(2, 2 + len(rows) * 3)))[:len(rows)]
    index = pd.Index(numbers, name="source_row_number")
    return pd.DataFrame([{n: row[n] for n in FIELD_NAMES} for row in rows], index=index, columns=list(FIELD_NAMES),
                        dtype=object)


def _same(errors: ErrorTable, expected: ErrorTable) -> None:
    assert list(errors.pairs()) == list(expected.pairs())
    assert list(errors.rows()) == list(expected.rows())


@PROFILE
@given(_tables())
def test_check_frame_equals_the_row_by_row_validator(mapped: pd.DataFrame) -> None:
    checked = check_frame(mapped, SETTINGS)
    normalised, errors = _reference_check(mapped)
    pd.testing.assert_frame_equal(checked.normalised, normalised)
    _same(checked.errors, errors)


@PROFILE
@given(_tables(), st.data())
def test_recheck_equals_checking_the_edited_table_afresh(mapped: pd.DataFrame, data: st.DataObject) -> None:
    """Edits one after another (each re-checks a few rows and the rows sharing their keys) end where
    checking the edited table afresh does."""
    checked = check_frame(mapped, SETTINGS)
    whole = mapped.astype(object).copy()
    for _ in range(data.draw(st.integers(1, 2))):
        many = data.draw(st.booleans())  # at least half the rows (a bulk fix: only changed cells checked)
        edited = data.draw(st.lists(st.sampled_from(list(mapped.index)), unique=True,
                                    min_size=(len(mapped) + 1) // 2 if many else 1,
                                    max_size=len(mapped) if many else max(1, (len(mapped) - 1) // 2)))
        if many and data.draw(st.booleans()):  # a few columns changed, the others as they were
            changed = whole.loc[edited].copy()
            for name in data.draw(st.sets(st.sampled_from(list(FIELD_NAMES)), max_size=3)):
                changed[name] = [data.draw(st.one_of(st.none(), _CELLS[name])) for _ in range(len(changed))]
        else:
            changed = data.draw(_tables()).iloc[:len(edited)]
            changed = changed.set_axis(pd.Index(edited[:len(changed)], name="source_row_number"))
        checked = recheck(checked, changed, SETTINGS)
        whole.loc[changed.index] = changed.astype(object).to_numpy()
        normalised, errors = _reference_check(whole)
        pd.testing.assert_frame_equal(checked.normalised, normalised, check_names=False)
        _same(checked.errors, errors)


@PROFILE
@given(_tables(), st.data())
def test_check_cells_gives_what_check_frame_gives_for_those_cells(mapped: pd.DataFrame, data: st.DataObject) -> None:
    """A workspace replay checks again only the cells an operation changed: each one's value and errors
    must be exactly check_frame's for the edited table (duplicates aside), whatever the other cells hold."""
    before = check_frame(mapped, SETTINGS)
    edited = mapped.astype(object).copy()
    other = data.draw(_tables())
    cells: dict[str, set[int]] = {}
    for name in data.draw(st.sets(st.sampled_from(list(FIELD_NAMES)), min_size=1)):
        rows = data.draw(st.sets(st.sampled_from(list(mapped.index)), min_size=1))
        cells[name] = rows
        for i, row in enumerate(sorted(rows)):
            edited.at[row, name] = other[name].iloc[i % len(other)]
    values, errors = check_cells(edited, before.normalised, cells, SETTINGS)
    after = check_frame(edited, SETTINGS)
    touched = {(row, name) for name, new in values.items() for row in new.index}
    assert touched >= {(row, name) for name, rows in cells.items() for row in rows}
    for name, new in values.items():
        pd.testing.assert_series_equal(new, after.normalised.loc[new.index, name], check_names=False)
    expected = [(row, e) for row, e in after.errors.without_code(ErrorCode.DUPLICATE_IN_FILE).pairs()
                if (row, e.field) in touched]
    assert list(errors.pairs()) == expected


def test_a_value_failing_on_many_rows_is_one_message_for_each() -> None:
    rows = 5_000
    mapped = pd.DataFrame({"shipping_mark": [f"PM{i}" for i in range(rows)], "first_name": [""] * rows,
                           "last_name": ["Mensah"] * rows, "phone": ["54123"] * rows},
                          index=pd.Index(np.arange(2, rows + 2)))
    checked = check_frame(mapped, SETTINGS)
    _same(checked.errors, _reference_check(mapped)[1])
    assert len(checked.errors) == rows
    assert checked.errors[2] == (
        RowError("first_name", checked.errors[2][0].code, "is blank; every customer needs a first name"),
        RowError("phone", checked.errors[2][1].code, "54123 is not a valid phone number", value="54123"),
    )
