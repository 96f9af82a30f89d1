"""Exclusions the analyst can see and take back: every row failing with one reason at once, the excluded rows
kept aside (their text as it was, and why), included again, and listed in the failure report.

importer.checks.validate.exclude leaves rows out of an upload; this module keeps what is needed to list them
("row 14, excluded by the analyst: Phone: Not a valid phone number"), to put them back
(importer.checks.validate.include_again validates them again) and to send them back to the branch in the failure
report under ErrorCode.EXCLUDED, which only such a report carries (a run never stores it).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from importer.checks.validate import Checked, exclude
from importer.checks.validate import include_again as _include_rows
from importer.outcomes.error_table import ErrorTable
from importer.outcomes.failed_rows import FailedRow, FailedRows, values_by_row
from importer.outcomes.row_errors import ErrorCode, RowError
from importer.settings import Settings
from schemas.customer import FIELD_NAMES, label_of

EXCLUDED_BY_ANALYST = "excluded by the analyst"
# The field of the report's EXCLUDED error when the exclusion names none: the Row column (no cell marked).
ROW_FIELD = "row"


@dataclass(frozen=True)
class Excluded:
    """One row the analyst left out: its source row, its text by field as it was when excluded, why, the
    errors it had then (for the report), and the file's own columns (S/No, Remarks) by report header."""

    source_row: int
    text: Mapping[str, str]
    why: str = EXCLUDED_BY_ANALYST
    errors: tuple[RowError, ...] = ()
    other_columns: Mapping[str, str] = field(default_factory=dict)


def reason_text(code: str | ErrorCode, field: str | None = None) -> str:
    """`Phone: Not a valid phone number`, or `Not a valid phone number` when no field is named."""
    meaning = ErrorCode(code).meaning
    return f"{label_of(field)}: {meaning}" if field else meaning


def why_excluded(code: str | ErrorCode | None = None, field: str | None = None) -> str:
    """`excluded by the analyst`, with the reason when the rows were excluded by reason."""
    return EXCLUDED_BY_ANALYST if code is None else f"{EXCLUDED_BY_ANALYST}: {reason_text(code, field)}"


def reasons(errors: ErrorTable) -> list[tuple[str, str, int]]:
    """(code, field, rows) of every reason rows fail with, most rows first: the choices of "exclude by reason"."""
    return [(str(code), str(name), int(rows)) for name, code, rows in
            errors.by_field_and_code().itertuples(index=False, name=None)]


def rows_failing_with(checked: Checked | ErrorTable, code: str | ErrorCode, field: str | None = None) -> list[int]:
    """Source rows failing with `code` (on `field`, when given), ascending.

    Takes a Checked (its file errors) or an ErrorTable (Review's errors, the database's included).
    """
    errors = checked.errors if isinstance(checked, Checked) else checked
    code = ErrorCode(code)
    if field is None:
        return [int(r) for r in errors.rows_with(code)]
    lines = errors.frame()
    keep = (lines["code"] == code.value) & (lines["field"] == field)
    return [int(r) for r in np.unique(lines.loc[keep, "row"].to_numpy())]


def excluded_rows(checked: Checked, rows: Iterable[int], why: str = EXCLUDED_BY_ANALYST,
                  other_columns: pd.DataFrame | None = None, errors: ErrorTable | None = None) -> list[Excluded]:
    """The Excluded records of some rows of `checked` (before they are excluded); rows not in it are skipped.

    `errors`: the errors to keep with each row (default: checked's); `other_columns`: the upload's own
    columns by report header (pipeline.Upload.other_columns).
    """
    present = [int(r) for r in dict.fromkeys(rows) if r in checked.original.index]
    texts = values_by_row(checked.original, present, list(FIELD_NAMES))
    others = values_by_row(other_columns, present)
    table = checked.errors if errors is None else errors
    return [Excluded(row, texts.get(row, {}), why, tuple(table[row]) if row in table else (), others.get(row, {}))
            for row in present]


def exclude_failing(checked: Checked, code: str | ErrorCode, field: str | None = None, *,
                    errors: ErrorTable | None = None, other_columns: pd.DataFrame | None = None,
                    ) -> tuple[Checked, list[Excluded]]:
    """Exclude every row failing with `code` (on `field`): the upload without them, and their records.

    `errors`: where to look for the reason (default: checked's own; Review passes its errors, which hold
    the database's reasons too).
    """
    table = checked.errors if errors is None else errors
    rows = rows_failing_with(table, code, field)
    if not rows:
        return checked, []
    records = excluded_rows(checked, rows, why_excluded(code, field), other_columns, table)
    return exclude(checked, rows), records


def include_again(checked: Checked, excluded: Sequence[Excluded], settings: Settings) -> Checked:
    """The upload with these excluded rows back, with their text as excluded, validated again."""
    if not excluded:
        return checked
    frame = pd.DataFrame([{f: e.text.get(f, "") for f in FIELD_NAMES} for e in excluded],
                         index=pd.Index([e.source_row for e in excluded], name=checked.original.index.name))
    return _include_rows(checked, frame, settings)


def excluded_after(excluded: Sequence[Excluded], before: Checked, after: Checked, why: str = EXCLUDED_BY_ANALYST,
                   other_columns: pd.DataFrame | None = None) -> tuple[Excluded, ...]:
    """The excluded rows after an operation took `before` to `after`: rows it left out join the records
    (their text and errors as in `before`, with `why`), rows back in `after` leave them. What a replay's
    records would say, kept up to date by each operation applied live (importer.workspace.store.perform)."""
    old_rows, new_rows = before.original.index, after.original.index
    if old_rows is new_rows or (len(old_rows) == len(new_rows) and old_rows.equals(new_rows)):
        return tuple(excluded)  # an edit, a fix, a decision: no row left or came back
    # numpy's set operations, not the index's: those build a hash table kept with the index
    old_array, new_array = old_rows.to_numpy(dtype=np.int64), new_rows.to_numpy(dtype=np.int64)
    gone = np.setdiff1d(old_array, new_array)
    listed = np.array([e.source_row for e in excluded], dtype=np.int64)
    back = set(listed[np.isin(listed, new_array)].tolist())
    kept = [e for e in excluded if e.source_row not in back]
    if len(gone):
        new = excluded_rows(before, gone.tolist(), why or EXCLUDED_BY_ANALYST, other_columns)
        known = {e.source_row for e in new}
        kept = sorted([*(e for e in kept if e.source_row not in known), *new], key=lambda e: e.source_row)
    return tuple(kept)


def without(excluded: Sequence[Excluded], rows: Iterable[int]) -> list[Excluded]:
    """The records left after some rows are included again."""
    gone = set(rows)
    return [e for e in excluded if e.source_row not in gone]


def excluded_failures(excluded: Sequence[Excluded]) -> FailedRows:
    """The excluded rows as failed rows for the report: an `excluded` error first (in the Row column, or the
    reason's field), then the errors the row had when excluded; ascending by source row."""
    ordered = sorted(excluded, key=lambda e: e.source_row)

    def produce() -> Iterator[FailedRow]:
        for e in ordered:
            mark = RowError(ROW_FIELD, ErrorCode.EXCLUDED, e.why)
            yield FailedRow(e.source_row, (mark, *e.errors), dict(e.text), dict(e.other_columns))

    return FailedRows(len(ordered), produce)


def with_excluded(failed: FailedRows, excluded: Sequence[Excluded]) -> FailedRows:
    """The run's failed rows, then the excluded ones (the same report columns and run)."""
    if not excluded:
        return failed
    extra = excluded_failures(excluded)

    def produce() -> Iterator[FailedRow]:
        yield from failed
        yield from extra

    return FailedRows(len(failed) + len(extra), produce, columns=failed.columns, run_id=failed.run_id)
