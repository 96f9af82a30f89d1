"""Bulk fixes for the review step: each previews how many failing rows it would fix, and apart from that
how many rows it would change, before it is applied.

The two differ: "Normalise phone numbers" can rewrite 4,776 valid local numbers to +233 form and fix
none of the rows that fail; the preview says so (fix_preview).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from importer.checks import normalise as clean
from importer.checks.validate import CHUNK_ROWS, Checked, recheck, recheck_cells
from importer.outcomes.row_errors import ErrorCode, sorted_unique
from importer.settings import Settings
from schemas.customer import FIELD_NAMES, REGIONS


@dataclass(frozen=True)
class Fix:
    """A named change to the text of some columns, applied to every row (or only failing rows)."""

    key: str
    label: str
    columns: tuple[str, ...]
    change: Callable[[str], str]


_SPACES = re.compile(r"\s+")


def _trim(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def _phone(text: str, region: str) -> str:
    """The E.164 form when the number is valid (a dropped leading zero restored); else unchanged."""
    try:
        return clean.normalise_phone(text, region)
    except clean.InvalidValue:
        return text


def _title(text: str) -> str:
    # str.title() would turn "mcdonald's" into "Mcdonald'S"; capitalise word by word instead.
    return " ".join(word[:1].upper() + word[1:].lower() for word in _trim(text).split(" "))


def available_fixes(settings: Settings) -> dict[str, Fix]:
    """The bulk fixes the dashboard offers, by key."""
    region = settings.phone_rules
    return {
        fix.key: fix
        for fix in (
            Fix("trim", "Trim and collapse spaces in every column", tuple(FIELD_NAMES), _trim),
            Fix("phones", "Normalise phone numbers (restore dropped leading zeros)", ("phone",),
                lambda text: _phone(text, region)),
            Fix("emails", "Lower-case emails", ("email",), lambda text: text.strip().lower()),
            Fix("names", "Title-case first and last names", ("first_name", "last_name"), _title),
        )
    }


def fill_region_fix(region_code: str) -> Fix:
    """Fill blank regions with one region (a code of schemas.customer.REGIONS)."""
    if region_code not in REGIONS:
        raise ValueError(f"{region_code} is not a region code")
    return Fix("region", f"Fill blank regions with {REGIONS[region_code]}", ("region",),
               lambda text: text if text.strip() else region_code)


def arrow_text(values: pd.Series) -> pa.Array:
    """A column of text as one Arrow large_string array (without a copy when it is Arrow already)."""
    arrow = getattr(values.array, "__arrow_array__", None)
    array = arrow() if arrow is not None else pa.array(values.to_numpy(dtype=object), from_pandas=True)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return array.cast(pa.large_string())


def _distinct_change(values: pd.Series, change: Callable[[str], str]) -> tuple[pa.DictionaryArray, list[str], np.ndarray]:
    """A text column dictionary-encoded in Arrow, `change` of each of its distinct texts (run once per text),
    and which of them it changes."""
    encoded = pc.dictionary_encode(arrow_text(values))
    distinct = encoded.dictionary.to_pylist()
    after = [change(str(text)) for text in distinct]
    differs = np.fromiter((a != b for a, b in zip(after, distinct, strict=True)), dtype=bool, count=len(distinct))
    return encoded, after, differs


def _changed_by(old: pd.Series, change: Callable[[str], str]) -> pd.Series:
    """The cells of `old` (text, no missing values) that `change` changes, with their new text. `change`
    runs once per distinct text, and no Python object is made per row: the rows are found from Arrow's
    dictionary codes of the column."""
    encoded, after, differs = _distinct_change(old, change)
    if not differs.any():
        return pd.Series([], dtype=object, index=old.index[:0])
    codes = np.asarray(encoded.indices.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.intp)
    hit = np.flatnonzero(differs[codes])
    texts = np.empty(len(after), dtype=object)
    texts[:] = after
    return pd.Series(texts[codes[hit]], index=old.index[hit], dtype=object)


def changed_cells(values: pd.Series, change: Callable[[str], str]) -> pd.Series:
    """The cells of a text column (index: source rows; no missing values) that `change` changes, with their
    new text, a chunk of CHUNK_ROWS rows at a time: `change` runs once per distinct text of a chunk, and
    the Python objects made are the chunk's distinct texts, not one per row."""
    parts = [_changed_by(values.iloc[start:start + CHUNK_ROWS], change) for start in range(0, len(values), CHUNK_ROWS)]
    parts = [part for part in parts if len(part)]
    if not parts:
        return pd.Series([], dtype=object, index=values.index[:0])
    return parts[0] if len(parts) == 1 else pd.concat(parts)


def _cell_changes(checked: Checked, fix: Fix, only_failing: bool) -> dict[str, pd.Series]:
    """Per column of the fix, the cells it would change with their new text (changed_cells)."""
    frame = checked.original
    # A blank region is filled by the default before any row fails on it, so "only failing rows" would
    # leave the region fix nothing to fill: it fills every blank region (it changes blank cells only).
    if only_failing and fix.key != "region":
        frame = frame[frame.index.isin(checked.errors.rows())]
    return {column: new for column in fix.columns if len(new := changed_cells(frame[column], fix.change))}


def _changed_index(changes: dict[str, pd.Series] | dict[str, pd.Index]) -> np.ndarray:
    """The rows any column of `changes` changes (its cells' new text, or only their rows), sorted."""
    indexes = [new if isinstance(new, pd.Index) else new.index for new in changes.values()]
    return sorted_unique(np.concatenate([index.to_numpy(dtype=np.int64) for index in indexes])
                         if indexes else np.zeros(0, dtype=np.int64))


def _rows_after(checked: Checked, changes: dict[str, pd.Series], rows: np.ndarray) -> pd.DataFrame:
    """Some of the changed rows (`rows`, sorted) as whole rows of text, with the fix's new text."""
    after = checked.original.loc[rows].copy()
    for column, new in changes.items():
        new = new[new.index.isin(rows)] if len(new) != len(rows) else new
        if len(new):
            after.loc[new.index, column] = new.to_numpy(dtype=object)
    return after


def changed_rows(checked: Checked, fix: Fix, only_failing: bool = False) -> pd.DataFrame:
    """The rows whose text the fix would change, with the new text: its length is the preview count.

    Works a column at a time (changed_cells) and keeps only what changes, so a fix over 100,000 rows never
    holds a second copy of the whole upload, nor a Python string per cell.
    """
    changes = _cell_changes(checked, fix, only_failing)
    return _rows_after(checked, changes, _changed_index(changes))


def column_after(values: pd.Series, change: Callable[[str], str]) -> tuple[pd.Series, np.ndarray]:
    """The whole column with `change` applied (same index and dtype), and the positions of the cells it
    changed. Built in Arrow a chunk of CHUNK_ROWS rows at a time: `change` runs once per distinct text of a
    chunk, and the new column is taken from the changed distinct texts, not made of a Python string per row."""
    parts: list[pa.Array] = []
    changed: list[np.ndarray] = []
    for start in range(0, len(values), CHUNK_ROWS):
        encoded, after, differs = _distinct_change(values.iloc[start:start + CHUNK_ROWS], change)
        codes = np.asarray(encoded.indices.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.intp)
        hit = differs[codes] & ~np.asarray(encoded.indices.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        changed.append(np.flatnonzero(hit) + start)
        parts.append(pc.take(pa.array(after, pa.large_string()), encoded.indices))
    column = pa.chunked_array(parts, pa.large_string()) if parts else pa.chunked_array([], pa.large_string())
    return (pd.Series(column, dtype=values.dtype, index=values.index, name=values.name),
            np.concatenate(changed) if changed else np.zeros(0, dtype=np.intp))


def _apply_to_every_row(checked: Checked, fix: Fix, settings: Settings) -> tuple[Checked, int]:
    """apply_fix over every row, a column at a time: each column the fix changes is built whole in Arrow
    (column_after) and only its changed cells are checked again. When fewer than half the rows change,
    those rows alone are re-checked whole (recheck), the cheaper way then; the fix is not run again.

    A trim of 100,000 rows made each changed row whole as Python strings, then a second copy of the upload
    in the re-check: 76 MB for a result that differs from the upload in a few columns."""
    original = checked.original.copy()  # its columns are shared until one is replaced
    cells: dict[str, pd.Index] = {}
    for column in fix.columns:
        new, positions = column_after(original[column], fix.change)
        if len(positions):
            original[column] = new
            cells[column] = original.index[positions]
    rows = _changed_index(cells)
    if not len(rows):
        return checked, 0
    if len(rows) * 2 < len(original):
        return recheck(checked, original.loc[rows], settings), len(rows)
    return recheck_cells(checked, original, cells, settings), len(rows)


def apply_fix(checked: Checked, fix: Fix, settings: Settings, only_failing: bool = False) -> tuple[Checked, int]:
    """The upload with the fix applied, and how many rows it changed."""
    if (not only_failing or fix.key == "region") and len(checked.original):
        return _apply_to_every_row(checked, fix, settings)
    rows = changed_rows(checked, fix, only_failing)
    if rows.empty:
        return checked, 0
    return recheck(checked, rows, settings), len(rows)


def fix_preview(checked: Checked, fix: Fix, settings: Settings, only_failing: bool = False) -> tuple[int, int]:
    """(fixes, changes): how many rows failing now would no longer fail after the fix, and how many rows
    it would change.

    Only the changed rows are validated again (importer.checks.validate.recheck), plus the in-file duplicates
    over all rows, since a change can free or take another row's key: a row freed that way counts as
    fixed too, and a row the fix makes fail is not subtracted (it is no failing row fixed).
    """
    changes = _cell_changes(checked, fix, only_failing)
    changed = _changed_index(changes)
    if not len(changed):
        return 0, 0
    failing = checked.errors.rows()
    touched = np.isin(changed, failing).any()
    if not touched and not len(checked.errors.rows_with(ErrorCode.DUPLICATE_IN_FILE)):
        return 0, len(changed)  # no failing row changes, and no duplicate claim another row's change could free
    # Only a failing row can be fixed, and a valid row's change matters only when it holds a key a later
    # row is refused for (the first row of a duplicate): re-check those, not every changed row (a trim of
    # 100,000 rows re-checked them all, 65 MB and 2 s per fix on the Review page). Only those rows are
    # made whole with their new text: "Normalise phone numbers" changes 95,000 valid rows, whose whole
    # rows built for nothing were 40 MB of the preview.
    holders = {e.other_row for row in checked.errors.rows_with(ErrorCode.DUPLICATE_IN_FILE)
               for e in checked.errors[int(row)] if e.code is ErrorCode.DUPLICATE_IN_FILE and e.other_row is not None}
    check = changed[np.isin(changed, failing) | np.isin(changed, list(holders))]
    if not len(check):
        return 0, len(changed)
    after = recheck(checked, _rows_after(checked, changes, check), settings)
    return int(len(np.setdiff1d(failing, after.errors.rows()))), len(changed)
