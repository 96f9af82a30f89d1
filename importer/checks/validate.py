"""Normalise the mapped frame, validate it with the pandera schema (lazily), and find in-file duplicates."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow.compute as pc
from pandera.errors import SchemaErrors

from importer.checks import normalise as clean
from importer.checks.changes import EMPTY_CHANGES, Change, Changes, changes_of
from importer.checks.in_file import find_duplicates_in_file
from importer.outcomes.error_table import ErrorTable
from importer.outcomes.row_errors import ErrorCode, RowError, sorted_unique
from importer.settings import Settings
from schemas.customer import FIELD_NAMES, SPECS, UNIQUE_FIELDS, CustomerFrame, label_of

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
    # What normalising changed beyond formatting, per rule (importer.checks.changes): "Kept 2 phone extensions
    # in Other Phones". Set by check_frame for the rows as read; kept as they were by recheck and exclude.
    changes: Changes = field(default=EMPTY_CHANGES, compare=False)

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
    phone_region = settings.phone_rules
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


@dataclass
class _Found:
    """Errors as columns: entry i is (rows[i], distinct[which[i]]). A failing value repeated on 100,000 rows
    is one RowError and two numbers a row, never an object per row."""

    rows: list[np.ndarray] = field(default_factory=list)
    which: list[np.ndarray] = field(default_factory=list)
    distinct: list[RowError] = field(default_factory=list)

    def add(self, rows: np.ndarray, which: np.ndarray, distinct: list[RowError]) -> None:
        """Entries (rows[i], distinct[which[i]]) after those already found."""
        if len(rows):
            self.rows.append(rows)
            self.which.append(which + len(self.distinct))
        self.distinct.extend(distinct)

    def entries(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.rows:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.intp)
        return np.concatenate(self.rows), np.concatenate(self.which)

    def keys(self) -> np.ndarray:
        """(row, field) of each entry as one number, to find the same cell in another _Found."""
        rows, which = self.entries()
        fields = np.fromiter((_FIELD_NUMBER[e.field] for e in self.distinct), dtype=np.int64,
                             count=len(self.distinct))
        return rows * _FIELD_SLOTS + fields[which]

    def without(self, keys: np.ndarray) -> _Found:
        """The entries whose (row, field) is not among `keys` (see `keys`)."""
        rows, which = self.entries()
        kept = ~np.isin(self.keys(), keys)
        found = _Found()
        found.add(rows[kept], which[kept], self.distinct)
        return found

    def table(self) -> ErrorTable:
        rows, which = self.entries()
        return ErrorTable.from_distinct(rows, which, self.distinct)


_FIELD_NUMBER = {name: i for i, name in enumerate(FIELD_NAMES)}
_FIELD_SLOTS = len(FIELD_NAMES) + 1


def _distinct_texts(column: pd.Series) -> tuple[np.ndarray, list[str]]:
    """(for each cell, the number of its text; the distinct texts): a missing cell reads as ""."""
    codes, uniques = pd.factorize(column, use_na_sentinel=False)
    missing = pd.isna(uniques)
    texts = ["" if gone else str(value) for value, gone in zip(uniques.tolist(), missing.tolist(), strict=True)]
    return codes, texts


def _objects(values: list[object], codes: np.ndarray) -> np.ndarray:
    """values[codes[i]] for each i, as an object array (values are text or None, never sequences)."""
    distinct = np.empty(len(values), dtype=object)
    distinct[:] = values
    return distinct[codes]


def _changes(field_name: str, texts: list[str], outcomes: list[object], codes: np.ndarray,
             rows: np.ndarray) -> list[Change]:
    """The changes beyond formatting among one column's distinct outcomes (importer.checks.changes.RULES),
    counted over the rows and with the first rows as examples."""
    hits: dict[str, list[int]] = {}
    if field_name == "phone":
        for number, (text, outcome) in enumerate(zip(texts, outcomes, strict=True)):
            if isinstance(outcome, tuple) and any(clean.EXTENSION_MARK in o for o in outcome[1]) \
                    and clean.has_extension(text):
                hits.setdefault("phone_extension", []).append(number)
    elif field_name == "region":  # a blank cell that got the default region is listed, not silent
        for number, (text, outcome) in enumerate(zip(texts, outcomes, strict=True)):
            if not text.strip() and outcome is not None:
                hits.setdefault("region_default", []).append(number)
    elif field_name == "email":
        for number, (text, outcome) in enumerate(zip(texts, outcomes, strict=True)):
            if "xn--" in text.lower() and isinstance(outcome, tuple) and outcome[0] and "xn--" not in outcome[0]:
                hits.setdefault("email_unicode_domain", []).append(number)
    found = []
    for rule, numbers in hits.items():
        at = np.flatnonzero(np.isin(codes, numbers))
        examples = []
        for position in at[:5].tolist():
            outcome = outcomes[codes[position]]
            if not isinstance(outcome, tuple):
                stored = outcome
            else:
                stored = outcome[0] if field_name != "phone" else ", ".join([cast(str, outcome[0]), *outcome[1]])
            examples.append((int(rows[position]), texts[codes[position]], str(stored)))
        found.append(Change(rule, len(at), tuple(examples)))
    return found


def _normalise(original: pd.DataFrame, settings: Settings,
               fields: Collection[str] | None = None,
               changes: list[Change] | None = None) -> tuple[pd.DataFrame, _Found]:
    """Apply each field's normaliser; values it refuses become missing and an error of their own.
    `changes`, when given, receives what normalising changed beyond formatting (_changes).

    Each distinct text of a column is normalised once (names, regions, types and failing values repeat a
    lot), and the outcomes are spread to the rows by number: no Python work per row and field, except
    for the rare cells holding several phones or e-mails.
    """
    found = _Found()
    columns: dict[str, np.ndarray] = {}
    spilled: dict[str, dict[int, tuple[str, ...]]] = {}  # other field -> {position: values from the main cell}
    rows = original.index.to_numpy().astype(np.int64, copy=False)
    for field_name, normaliser in _normalisers(settings).items():
        if fields is not None and field_name not in fields:
            continue
        codes, texts = _distinct_texts(original[field_name])
        seen: dict[str, object | RowError] = {}
        outcomes = [seen[t] if t in seen else seen.setdefault(t, _normalise_value(field_name, t, normaliser))
                    for t in texts]
        refused = [isinstance(o, RowError) for o in outcomes]
        failing = np.asarray(refused, dtype=bool)[codes] if any(refused) else None
        if failing is not None:
            number = np.cumsum(refused) - 1  # a distinct text's number among the refused ones
            hit = np.flatnonzero(failing)
            found.add(rows[hit], number[codes[hit]], [o for o in outcomes if isinstance(o, RowError)])
        kept = [None if bad else o for o, bad in zip(outcomes, refused, strict=True)]
        if changes is not None and field_name in ("phone", "email", "region"):
            changes.extend(_changes(field_name, texts, kept, codes, rows))
        if field_name in OTHERS_OF:
            pairs = cast(list[tuple[object, tuple[str, ...]] | None], kept)
            columns[field_name] = _objects([None if p is None else p[0] for p in pairs], codes)
            others = [() if p is None else p[1] for p in pairs]
            spill = spilled.setdefault(OTHERS_OF[field_name], {})
            if any(others):
                for position in np.flatnonzero(np.asarray([bool(o) for o in others], dtype=bool)[codes]).tolist():
                    spill[position] = others[codes[position]]
        elif field_name in _MAIN_OF:  # the main cell's other values first, then this cell's own
            owns = cast(list[tuple[str, ...] | None], kept)
            spill = spilled.get(field_name, {})
            main = columns[_MAIN_OF[field_name]]
            values = np.full(len(codes), None, dtype=object)
            busy = np.asarray([bool(own) for own in owns], dtype=bool)[codes]
            if spill:
                busy[np.fromiter(spill, dtype=np.intp, count=len(spill))] = True
            if failing is not None:
                busy &= ~failing  # a refused cell stores nothing, not even the main cell's other values
            for position in np.flatnonzero(busy).tolist():
                own = owns[codes[position]] or ()
                values[position] = clean.join_others(spill.get(position, ()), own,
                                                     without=cast(str | None, main[position]))
            columns[field_name] = values
        else:
            columns[field_name] = _objects(kept, codes)
    # pandas' compact string dtype (missing = NaN) keeps a 100,000-row upload small in a 512 MB session.
    normalised = pd.DataFrame(columns, index=original.index, dtype=TEXT)
    return normalised, found


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


def _schema_errors(normalised: pd.DataFrame, fields: Sequence[str] | None = None) -> _Found:
    """Run the pandera model lazily (only its columns `fields` when given: every check is a column's own)
    and turn its failure cases into row errors.

    A message is made once per distinct (column, check, failing value), then given to each of its rows.
    """
    found = _Found()
    schema: pa.DataFrameSchema = CustomerFrame.to_schema()
    if fields is not None:
        schema = schema.select_columns(list(fields))
    try:
        schema.validate(normalised, lazy=True)
    except SchemaErrors as exc:
        cases = exc.failure_cases
        cases = cases[cases["index"].notna() & cases["column"].isin(FIELD_NAMES)]
        if cases.empty:
            return found
        keys = pd.DataFrame({"column": cases["column"].astype(object), "check": cases["check"].astype(str),
                             "value": cases["failure_case"].astype(object)})
        group = keys.groupby(["column", "check", "value"], sort=False, dropna=False).ngroup().to_numpy()
        firsts = np.unique(group, return_index=True)[1]
        distinct: list[RowError | None] = []
        for column, check, value in keys.iloc[firsts].itertuples(index=False, name=None):
            code = _check_code(check)
            if code is not ErrorCode.REQUIRED and pd.isna(value):
                distinct.append(None)  # a missing value fails only "required"
                continue
            distinct.append(RowError(column, code, _schema_message(column, code, value),
                                     value=None if pd.isna(value) else str(value)))
        wanted = np.asarray([e is not None for e in distinct], dtype=bool)
        number = np.cumsum(wanted) - 1
        use = wanted[group]
        found.add(cases["index"].to_numpy()[use].astype(np.int64), number[group[use]],
                  [e for e in distinct if e is not None])
    return found


def _checked_errors(normalised: pd.DataFrame, normaliser_errors: _Found) -> ErrorTable:
    """Normaliser errors plus the schema's, skipping a field a normaliser already refused, and the in-file
    duplicates: for each row, in field order (a field's normaliser or schema error before its duplicate).

    A refused value is stored as missing; its own error says more than "required".
    """
    schema = _schema_errors(normalised).without(normaliser_errors.keys())
    return ErrorTable.combine([normaliser_errors.table(), schema.table(), find_duplicates_in_file(normalised)])


def check_frame(original: pd.DataFrame, settings: Settings) -> Checked:
    """Validate a mapped frame (FIELD_NAMES columns of text, index = source row number).

    Every error of a row is reported, in field order: normaliser errors, schema errors, duplicates.
    """
    original = original.reindex(columns=list(FIELD_NAMES), fill_value="").fillna("").astype(TEXT)
    found: list[Change] = []
    normalised, errors = _normalise(original, settings, changes=found)
    return Checked(original=original, normalised=normalised, errors=_checked_errors(normalised, errors),
                   changes=changes_of(found))


def coupled_fields(fields: Collection[str]) -> list[str]:
    """`fields` and the fields whose normalising goes with theirs (a Phone cell's other phones go to Other
    Phones, so the two are normalised together; the same for e-mails), in field order."""
    wanted = set(fields)
    for main, other in OTHERS_OF.items():
        if main in wanted or other in wanted:
            wanted |= {main, other}
    return [name for name in FIELD_NAMES if name in wanted]


def coupled_groups(fields: Collection[str]) -> list[list[str]]:
    """coupled_fields(fields) split into the groups normalised together, in field order: each field alone,
    but a main field with its other one (Phone with Other Phones, E-mail with Other E-mails)."""
    groups: list[list[str]] = []
    done: set[str] = set()
    for name in coupled_fields(fields):
        if name not in done:
            groups.append(coupled_fields([name]))
            done.update(groups[-1])
    return groups


CHUNK_ROWS = 16_384
"""Rows whose cells check_cells normalises at once (and a replay's bulk fix changes at once): normalising
makes Python objects for each distinct text, and 75,000 e-mails at once held 30 MB of them."""


def row_numbers(rows: Collection[int]) -> np.ndarray:
    """Row numbers (a set, a list, an Index or an array) as a sorted int64 array without repeats."""
    if isinstance(rows, (set, frozenset)):
        return sorted_unique(np.fromiter(rows, dtype=np.int64, count=len(rows)))
    return sorted_unique(np.asarray(rows, dtype=np.int64))


def check_cells(text: pd.DataFrame, normalised: pd.DataFrame, cells: Mapping[str, Collection[int]],
                settings: Settings) -> tuple[dict[str, pd.Series], ErrorTable]:
    """Normalised values and own errors (no duplicates) of some cells whose text changed: `cells` maps a
    field to its changed rows; `text` and `normalised` hold those rows (at least) and the fields of
    coupled_fields(cells) (at least), `normalised` as it was before the change. Returns each field's new
    values (by row: the rows changed in it or in its coupled field) and the errors of exactly those cells.
    Each cell's value and errors depend on that cell (and its coupled field's) alone, so they are what
    check_frame gives for them; the schema runs once, over the rows and fields given."""
    fields = coupled_fields(cells)
    normalised = normalised[fields]  # the changed cells are written into it, a column at a time
    found = _Found()
    values: dict[str, pd.Series] = {}
    changed: list[np.ndarray] = []  # (row, field) keys of the changed cells, as _Found.keys numbers them
    for group in coupled_groups(cells):
        rows = row_numbers(np.concatenate([row_numbers(cells.get(f, ())) for f in group]))
        if not len(rows):
            continue
        parts = []
        for start in range(0, len(rows), CHUNK_ROWS):  # a chunk of rows at a time: see CHUNK_ROWS
            fresh, errors = _normalise(text.loc[rows[start:start + CHUNK_ROWS], group], settings, group)
            found.add(*errors.entries(), errors.distinct)
            parts.append(fresh)
        fresh = parts[0] if len(parts) == 1 else pd.concat(parts)
        del parts
        for field_name in group:
            values[field_name] = fresh[field_name]
            _put(normalised, field_name, fresh[field_name])
            changed.append(rows * _FIELD_SLOTS + _FIELD_NUMBER[field_name])
    if changed:  # the schema over the changed rows only (its checks are each a column's own)
        touched = row_numbers(np.concatenate(changed) // _FIELD_SLOTS)
        if len(touched) < len(normalised):
            normalised = normalised.loc[touched]
    schema = _schema_errors(normalised, fields).without(found.keys())
    failing, which = schema.entries()
    keep = np.isin(schema.keys(), np.concatenate(changed)) if changed else np.zeros(len(failing), dtype=bool)
    mine = _Found()
    mine.add(failing[keep], which[keep], schema.distinct)
    return values, ErrorTable.combine([found.table(), mine.table()])


def _put(frame: pd.DataFrame, column: str, values: pd.Series) -> None:
    """frame.loc[values.index, column] = values; a column replaced whole when `values` covers every row in
    frame's order (a bulk fix of every row), which costs no element-wise write into the old column."""
    if len(values) == len(frame) and values.index.equals(frame.index):
        frame[column] = values.astype(frame[column].dtype)
    else:
        frame.loc[values.index, column] = values


def cells_differ(before: pd.Series, after: pd.Series) -> np.ndarray:
    """For two text columns of the same rows, whether each cell differs (missing equals missing). Arrow
    columns are compared in Arrow, and one Arrow array shared by both (a column the change left alone) is
    not compared at all: comparing as Python objects made two strings per cell, 12 MB per column of
    100,000 rows, ten columns in a row for a trim."""
    old, new = (getattr(column.array, "_pa_array", None) for column in (before, after))
    if old is None or new is None:
        return np.asarray(before.to_numpy(dtype=object, na_value=None) != after.to_numpy(dtype=object, na_value=None),
                          dtype=bool)
    if old is new:
        return np.zeros(len(before), dtype=bool)
    differs = pc.fill_null(pc.not_equal(old, new), False)
    one_missing = pc.xor(pc.is_null(old), pc.is_null(new))
    return np.asarray(pc.or_(differs, one_missing).to_numpy(zero_copy_only=False), dtype=bool)


def _merged(frame: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """A copy of frame with some rows replaced, column by column (no object matrix of every value).

    Only the columns whose values differ in those rows are written: the others are shared with `frame`
    (its columns are Arrow arrays, never written in place). Writing a column rebuilds it whole (2.4 MB
    per 100,000 rows), so a grid edit or a bulk fix of one column no longer rebuilds all eleven.
    """
    merged = frame.copy()
    for column in FIELD_NAMES:
        if cells_differ(frame.loc[rows.index, column], rows[column]).any():
            _put(merged, column, rows[column])
    return merged


def _duplicates_again(before: pd.DataFrame, after: pd.DataFrame, changed: pd.Index,
                      errors: ErrorTable) -> tuple[ErrorTable, ErrorTable]:
    """(errors less the duplicate claims an edit may have changed, those claims found again).

    Only rows holding a key that a changed row held before or holds now can gain or lose a duplicate
    error: the others keep theirs. So duplicates are looked for among those rows only, not all 100,000
    (a cell edit in the dashboard re-checks one row).
    """
    found: list[ErrorTable] = []
    for name in UNIQUE_FIELDS:
        keys = pd.concat([before.loc[changed, name], after.loc[changed, name]]).dropna().unique()
        if not len(keys):
            continue
        touched = after.index[after[name].isin(keys).to_numpy(dtype=bool, na_value=False)]
        errors = errors.without_code(ErrorCode.DUPLICATE_IN_FILE, touched.tolist(), name)
        # The other key columns blank: only this field's duplicates are looked for among these rows.
        keys_only = pd.DataFrame({other: after.loc[touched, name] if other == name
                                  else pd.Series(None, index=touched, dtype=TEXT) for other in UNIQUE_FIELDS})
        found.append(find_duplicates_in_file(keys_only))
    return errors, ErrorTable.combine(found)


def recheck(checked: Checked, changed: pd.DataFrame, settings: Settings, *, every_field: bool = False) -> Checked:
    """Checked again after some rows' text changed (edits in the grid, a bulk fix).

    Only the changed rows are normalised and validated again; duplicates are looked for again among the
    rows that share a key with a changed row, before or after the change, since fixing one row can free
    or take another row's key. When most rows change, only the cells whose text differs are checked again;
    every_field: the changed rows' checked values in `checked` are not theirs (rows put back), check all.
    """
    changed = changed.reindex(columns=list(FIELD_NAMES)).fillna("").astype(TEXT)
    changed = changed[changed.index.isin(checked.original.index)]
    if changed.empty:
        return checked
    original = _merged(checked.original, changed)
    if len(changed) * 2 >= len(original):
        # Most rows changed (a bulk fix): only the cells whose text differs are checked again (a trim of
        # every row leaves most phones as they were), then duplicates over every row.
        return _recheck_cells(checked, original, changed, settings, every_field)
    normalised_part, errors = _normalise(changed, settings)
    schema = _schema_errors(normalised_part).without(errors.keys())
    normalised = _merged(checked.normalised, normalised_part)
    kept, duplicates = _duplicates_again(checked.normalised, normalised, changed.index,
                                         checked.errors.without_rows(changed.index.tolist()))
    found = ErrorTable.combine([errors.table(), schema.table(), duplicates])
    return Checked(original=original, normalised=normalised, errors=kept.with_rows(found), changes=checked.changes)


def _recheck_cells(checked: Checked, original: pd.DataFrame, changed: pd.DataFrame, settings: Settings,
                   every_field: bool = False) -> Checked:
    """recheck's answer for many changed rows: check_cells on the cells whose text differs (every cell of
    the changed rows when `every_field`: rows whose checked values are not known yet), the other cells'
    values and errors kept, in-file duplicates found again over every row."""
    cells: dict[str, pd.Index] = {}
    for column in FIELD_NAMES:
        if every_field:
            cells[column] = changed.index
            continue
        differs = cells_differ(changed[column], checked.original.loc[changed.index, column])
        if differs.any():
            cells[column] = changed.index[differs]
    return recheck_cells(checked, original, cells, settings)


def recheck_cells(checked: Checked, original: pd.DataFrame, cells: Mapping[str, pd.Index],
                  settings: Settings) -> Checked:
    """Checked again when `original` (checked.original with some cells changed, same rows) differs from it
    in `cells` (column -> the rows whose text changed there): those cells are normalised and validated
    again, the other cells' values and errors kept, in-file duplicates found again over every row."""
    values, found = check_cells(original, checked.normalised, cells, settings) if cells else ({}, ErrorTable.empty())
    normalised = checked.normalised.copy(deep=False)  # a column is copied only when it is written
    for column, new in values.items():
        _put(normalised, column, new)
    errors = (checked.errors.without_code(ErrorCode.DUPLICATE_IN_FILE)
              .without_cells({column: new.index for column, new in values.items()}))
    return Checked(original=original, normalised=normalised,
                   errors=errors.with_rows(found).with_rows(find_duplicates_in_file(normalised)),
                   changes=checked.changes)


def exclude(checked: Checked, rows: list[int]) -> Checked:
    """The upload without some rows: they are neither imported nor counted as attempted."""
    keep = ~checked.original.index.isin(rows)
    normalised = checked.normalised[keep]
    kept = checked.errors.without_rows(rows).without_code(ErrorCode.DUPLICATE_IN_FILE)
    duplicates = find_duplicates_in_file(normalised)
    return Checked(original=checked.original[keep], normalised=normalised, errors=kept.with_rows(duplicates),
                   changes=checked.changes)


def include_again(checked: Checked, rows: pd.DataFrame, settings: Settings) -> Checked:
    """The upload with excluded rows back (`rows`: their text, index = source row), validated again.

    importer.checks.validate has exclude() but not its inverse; this is it.
    """
    rows = rows[~rows.index.isin(checked.original.index)].reindex(columns=list(FIELD_NAMES)).fillna("").astype(TEXT)
    if rows.empty:
        return checked
    blank = pd.DataFrame(pd.NA, index=rows.index, columns=list(FIELD_NAMES)).astype(TEXT)
    widened = Checked(original=pd.concat([checked.original, rows]).sort_index(),
                      normalised=pd.concat([checked.normalised, blank]).sort_index(), errors=checked.errors,
                      changes=checked.changes)
    return recheck(widened, rows, settings, every_field=True)  # their blank checked values are not theirs


