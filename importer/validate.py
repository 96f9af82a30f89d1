"""Normalise the mapped frame, validate it with the pandera schema (lazily), and find in-file duplicates."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from importer import clean
from importer.dedupe import find_duplicates_in_file
from importer.results import ErrorCode, ErrorTable, RowError
from importer.settings import Settings
from schemas.customer import FIELD_NAMES, SPECS, CustomerFrame, label_of

TEXT = "str"


@dataclass(frozen=True)
class Checked:
    """One upload after validation: text as typed, normalised values, and the errors of failing rows.

    Both frames have the columns FIELD_NAMES, pandas' string dtype and the source row number as index;
    in `normalised`, a blank optional or a refused value is missing (NaN), never "".
    """

    original: pd.DataFrame
    normalised: pd.DataFrame
    errors: ErrorTable

    def valid_index(self) -> pd.Index:
        """Source row numbers of the rows with no errors."""
        return self.original.index[~self.original.index.isin(self.errors.rows())]

    @property
    def total(self) -> int:
        return len(self.original)

    def failures_by(self) -> pd.DataFrame:
        """One line per (field, code) with how many rows fail that way: the data for a chart."""
        return self.errors.by_field_and_code()


def _normalisers(settings: Settings) -> dict[str, Callable[[object], object]]:
    """Each field's normaliser. Phone and email give (value, the cell's other values), and the Other
    Phones / Other Emails cells a tuple of values: _normalise joins the two into the stored list."""
    phone_region = settings.default_phone_region
    return {
        "shipping_mark": clean.normalise_shipping_mark,
        "first_name": clean.normalise_name,
        "last_name": clean.normalise_name,
        "email": clean.split_emails,
        "phone": lambda v: clean.split_phones(v, phone_region),
        "region": lambda v: clean.normalise_region(v, settings.default_customer_region),
        "company_name": clean.normalise_optional_text,
        "nickname": clean.normalise_optional_text,
        "user_type": clean.normalise_user_type,
        "other_phones": lambda v: clean.phone_list(v, phone_region),
        "other_emails": clean.email_list,
    }


# A field whose cell may hold several values -> the field that keeps the values after the first.
OTHERS_OF = {"phone": "other_phones", "email": "other_emails"}
_MAIN_OF = {other: main for main, other in OTHERS_OF.items()}


def _required_message(field: str) -> str:
    return f"is blank; every customer needs a {label_of(field).lower()}"


_UNSEEN = object()


def _normalise_value(field: str, text: str, normaliser: Callable[[object], object]) -> object | RowError:
    """One cell's stored value, or the error that refuses it."""
    if text.strip() in clean.EXCEL_ERRORS:
        return RowError(field, ErrorCode.INVALID_FORMAT,
                        f"{text.strip()} is an Excel error value; type the real {label_of(field).lower()}",
                        value=text)
    try:
        return normaliser(text)
    except clean.InvalidValue as exc:
        return RowError(field, exc.code, exc.message, value=text)


Pairs = list[tuple[int, RowError]]


def _normalise(original: pd.DataFrame, settings: Settings) -> tuple[pd.DataFrame, Pairs]:
    """Apply each field's normaliser; values it refuses become missing and an error of their own."""
    errors: Pairs = []
    columns: dict[str, list[object]] = {}
    spilled: dict[str, dict[int, tuple[str, ...]]] = {}  # other field -> {position: values from the main cell}
    rows = original.index.tolist()
    for field, normaliser in _normalisers(settings).items():
        # Names, regions and types repeat a lot: each distinct text is normalised once.
        seen: dict[str, object | RowError] = {}
        values: list[object] = []
        spill = spilled.setdefault(OTHERS_OF[field], {}) if field in OTHERS_OF else None
        for position, (row, raw) in enumerate(zip(rows, original[field].tolist(), strict=True)):
            text = "" if raw is None or pd.isna(raw) else str(raw)
            outcome = seen.get(text, _UNSEEN)
            if outcome is _UNSEEN:
                outcome = seen[text] = _normalise_value(field, text, normaliser)
            if isinstance(outcome, RowError):
                values.append(None)
                errors.append((row, outcome))
            elif spill is not None:
                value, others = cast(tuple[object, tuple[str, ...]], outcome)
                values.append(value)
                if others:
                    spill[position] = others
            elif field in _MAIN_OF:  # the main cell's other values first, then this cell's own
                main = cast(str | None, columns[_MAIN_OF[field]][position])
                own = cast(tuple[str, ...], outcome)
                values.append(clean.join_others(spilled[field].get(position, ()), own, without=main))
            else:
                values.append(outcome)
        columns[field] = values
    # pandas' compact string dtype (missing = NaN) keeps a 100,000-row upload small in a 512 MB session.
    normalised = pd.DataFrame(columns, index=original.index, dtype=TEXT)
    return normalised, errors


def _check_code(check: str) -> ErrorCode:
    """The contract's code for a pandera check name."""
    if check == "not_nullable":
        return ErrorCode.REQUIRED
    if check.startswith("str_length"):
        return ErrorCode.TOO_LONG
    if check.startswith("str_matches"):
        return ErrorCode.INVALID_FORMAT
    if check.startswith("isin"):
        return ErrorCode.INVALID_CHOICE
    return ErrorCode.INVALID_FORMAT


def _schema_message(field: str, code: ErrorCode, value: object) -> str:
    spec = SPECS[field]
    if code is ErrorCode.REQUIRED:
        return _required_message(field)
    if code is ErrorCode.TOO_LONG:
        return f"is {len(str(value))} characters long; shorten it to at most {spec.max_length}"
    if field == "shipping_mark":
        return (f"{value} is not a valid shipping mark; use 2-100 letters, digits, spaces, "
                "'-' or '_'")
    return f"{value} is not allowed"


def _schema_errors(normalised: pd.DataFrame) -> Pairs:
    """Run the pandera model lazily and turn its failure cases into row errors."""
    errors: Pairs = []
    schema: pa.DataFrameSchema = CustomerFrame.to_schema()
    try:
        schema.validate(normalised, lazy=True)
    except SchemaErrors as exc:
        cases = exc.failure_cases
        cases = cases[cases["index"].notna() & cases["column"].isin(FIELD_NAMES)]
        for column, check, value, row in zip(
            cases["column"], cases["check"].astype(str), cases["failure_case"], cases["index"], strict=True
        ):
            code = _check_code(check)
            if code is not ErrorCode.REQUIRED and pd.isna(value):
                continue
            errors.append((int(row), RowError(column, code, _schema_message(column, code, value),
                                              value=None if pd.isna(value) else str(value))))
    return errors


def _checked_errors(normalised: pd.DataFrame, normaliser_errors: Pairs) -> Pairs:
    """Normaliser errors plus the schema's, skipping a field a normaliser already refused.

    A refused value is stored as missing; its own error says more than "required".
    """
    refused = {(row, e.field) for row, e in normaliser_errors}
    return normaliser_errors + [(row, e) for row, e in _schema_errors(normalised) if (row, e.field) not in refused]


def check_frame(original: pd.DataFrame, settings: Settings) -> Checked:
    """Validate a mapped frame (FIELD_NAMES columns of text, index = source row number).

    Every error of a row is reported, in field order: normaliser errors, schema errors, duplicates.
    """
    original = original.reindex(columns=list(FIELD_NAMES), fill_value="").fillna("").astype(TEXT)
    normalised, errors = _normalise(original, settings)
    pairs = _checked_errors(normalised, errors)
    pairs.extend(find_duplicates_in_file(normalised).pairs())
    return Checked(original=original, normalised=normalised, errors=ErrorTable.from_pairs(pairs))


def _merged(frame: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """A copy of frame with some rows replaced, column by column (no object matrix of every value)."""
    merged = frame.copy()
    for column in FIELD_NAMES:
        merged.loc[rows.index, column] = rows[column]
    return merged


def recheck(checked: Checked, changed: pd.DataFrame, settings: Settings) -> Checked:
    """Checked again after some rows' text changed (edits in the grid, a bulk fix).

    Only the changed rows are normalised and validated again; duplicates are found again over all rows,
    since fixing one row can free or take another row's key.
    """
    changed = changed.reindex(columns=list(FIELD_NAMES)).fillna("").astype(TEXT)
    changed = changed[changed.index.isin(checked.original.index)]
    if changed.empty:
        return checked
    original = _merged(checked.original, changed)
    if len(changed) * 2 >= len(original):
        # Most rows changed (a bulk fix): checking the new text afresh holds fewer copies at once.
        return check_frame(original, settings)
    normalised_part, errors = _normalise(changed, settings)
    pairs = _checked_errors(normalised_part, errors)
    normalised = _merged(checked.normalised, normalised_part)
    kept = checked.errors.without_rows(changed.index.tolist()).without_code(ErrorCode.DUPLICATE_IN_FILE)
    pairs.extend(find_duplicates_in_file(normalised).pairs())
    return Checked(original=original, normalised=normalised, errors=kept.with_rows(ErrorTable.from_pairs(pairs)))


def exclude(checked: Checked, rows: list[int]) -> Checked:
    """The upload without some rows: they are neither imported nor counted as attempted."""
    keep = ~checked.original.index.isin(rows)
    normalised = checked.normalised[keep]
    kept = checked.errors.without_rows(rows).without_code(ErrorCode.DUPLICATE_IN_FILE)
    duplicates = find_duplicates_in_file(normalised)
    return Checked(original=checked.original[keep], normalised=normalised, errors=kept.with_rows(duplicates))
