"""Review's exclusions and bulk-fix preview line, and Import's choice to report the excluded rows.

- `show_exclude_by_reason(checked, errors)`: a select of the reasons rows fail with (with row counts) and
  "Exclude all 204 rows failing on phone"; returns the upload without them, or None.
- `show_excluded(upload, settings)`: the rows excluded so far, each with why, and "Include again" for the
  ticked ones or all; returns the upload with them back, or None.
- `include_excluded_in_report(upload)` and `report_with_excluded(failed, upload)`: the Import page's
  checkbox and the failure report with the excluded rows appended, marked "excluded by the analyst";
  `remember_for_report(upload)`, called as the import starts, keeps them for the report after it.
- `show_fix_preview_line(fixes, changes)`: "fixes **N** failing rows · changes **M** rows".

The excluded rows are the workspace's (importer.review.exclusions.Excluded records with their text as it was):
its replay lists them and each exclusion or inclusion saved since updates them, whichever view excluded
the rows (by reason, ticked, a possible duplicate). Only the copy taken for the report of the import that
drops the upload is the session's. A page that gets a Checked back keeps it (`workspace.set_checked`) and reruns.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from importer.api import Upload
from importer.checks.validate import Checked, exclude
from importer.outcomes.error_table import ErrorTable
from importer.outcomes.failed_rows import FailedRows
from importer.review.exclusions import (
    Excluded,
    include_again,
    reason_text,
    reasons,
    rows_failing_with,
    why_excluded,
    with_excluded,
)
from importer.review.operations import Exclude, Include
from importer.settings import Settings
from schemas.customer import FIELD_NAMES, label_of
from ui import render, state, workspace
from ui.heavy import heavy_step

# Session values and widget keys of this section (ui/keys.py holds the pages' own).
REPORTED = "excluded_reported"  # (Excluded, ...) of the file being imported, for its report once it is dropped
REASON_PICK = "exclude_reason_pick"  # the reason picked, (code, field); its widget: render.pick
EXCLUDE_REASON = "exclude_reason_apply"
EXCLUDED_GRID = "excluded_grid"  # + "_" + upload version
INCLUDE_TICKED = "excluded_include_ticked"
INCLUDE_ALL = "excluded_include_all"
IN_REPORT = "excluded_in_report"
SESSION_KEYS = (REPORTED, REASON_PICK, EXCLUDE_REASON, EXCLUDED_GRID, INCLUDE_TICKED, INCLUDE_ALL, IN_REPORT)

INCLUDE_COLUMN = "Include again"
ROW = "Row"
WHY = "Why"
GRID_LIMIT = 2_000  # rows the excluded list shows; "Include all again" takes every one
REPORT_LABEL = "Add the rows I excluded to the report, marked 'excluded by the analyst'"


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def show_fix_preview_line(fixes: int, changes: int) -> str:
    """`fixes **3** failing rows · changes **4,776** rows`: the Bulk fixes preview of one fix (Markdown)."""
    return (f"fixes **{fixes:,}** failing row{'' if fixes == 1 else 's'} · "
            f"changes **{changes:,}** row{'' if changes == 1 else 's'}")


# --- the workspace's excluded rows ----------------------------------------------------------------------


def excluded_of(upload: Upload | None) -> list[Excluded]:
    """The rows excluded from this upload's workspace and not back in it, by source row; None: those of the
    file last imported (the import drops the upload; remember_for_report kept them)."""
    if upload is None:
        return list(st.session_state.get(REPORTED, ()))
    present = upload.checked.original.index
    return [e for e in workspace.excluded() if e.source_row not in present]


def remember_for_report(upload: Upload) -> None:
    """As the import of `upload` starts: keep its excluded rows for the report shown once it is done."""
    st.session_state[REPORTED] = tuple(excluded_of(upload))


# --- Review -----------------------------------------------------------------------------------------------


def _reason_label(choice: tuple[str, str, int]) -> str:
    code, field, rows = choice
    return f"{reason_text(code, field)}: {_plural(rows, 'row')}"


def show_exclude_by_reason(checked: Checked, errors: ErrorTable) -> Checked | None:
    """A select of the reasons rows fail with and a button that excludes every row failing with the chosen
    one; the upload without them, or None. `errors`: Review's errors (the database's reasons included).

    The select and the button are drawn from the same reason of this run (render.pick): after an action
    that changes the counts, neither keeps a label from before it."""
    choices = reasons(errors)
    if not choices:
        return None
    counts = {(code, field): rows for code, field, rows in choices}
    code, field = render.pick(
        "Exclude by reason", {(c[0], c[1]): _reason_label(c) for c in choices}, REASON_PICK,
        help="Every row failing with this reason is left out of the import. Excluded rows are listed below, "
             "where you can include them again.")
    count = counts[(code, field)]
    label = (f"Exclude the {_plural(count, 'row')} failing on {label_of(field).lower()}" if count == 1
             else f"Exclude all {count:,} rows failing on {label_of(field).lower()}")
    if not st.button(label, key=EXCLUDE_REASON, icon=":material/block:"):
        return None
    rows = rows_failing_with(errors, code, field)
    with heavy_step("exclusion", checked.total):
        new = exclude(checked, rows)
    state.operation(Exclude(tuple(rows), why_excluded(code, field)))
    state.notice(f"Excluded {_plural(len(rows), 'row')} failing with {reason_text(code, field).lower()}: "
                 "they will not be imported. They are listed under Excluded rows, where you can include them again.")
    return new


def excluded_frame(records: list[Excluded], limit: int = GRID_LIMIT) -> pd.DataFrame:
    """The excluded list's grid: Include again (unticked), Row, Why, then each field's text as excluded."""
    shown = records[:limit]
    frame = pd.DataFrame({
        INCLUDE_COLUMN: [False] * len(shown),
        ROW: pd.array([e.source_row for e in shown], dtype="int64"),
        WHY: [e.why for e in shown],
        **{label_of(f): [e.text.get(f, "") for e in shown] for f in FIELD_NAMES},
    })
    return frame


def show_excluded(upload: Upload, settings: Settings) -> Checked | None:
    """The rows excluded from this file, with "Include again" for the ticked ones and for all; the upload
    with them back (validated again), or None."""
    records = excluded_of(upload)
    if not records:
        return None
    st.subheader("Excluded rows")
    st.caption(f"{_plural(len(records), 'row')} left out of the import, with the text they had when excluded. "
               "Tick **Include again** to put rows back; they are checked again.")
    if len(records) > GRID_LIMIT:
        st.caption(f"Showing the first {GRID_LIMIT:,} of {len(records):,} excluded rows.")
    shown = excluded_frame(records)
    edited = st.data_editor(
        shown, key=f"{EXCLUDED_GRID}_{state.version()}", hide_index=True, num_rows="fixed", width="stretch",
        disabled=[c for c in shown.columns if c != INCLUDE_COLUMN],
        column_config={ROW: st.column_config.NumberColumn(ROW, format="%d", pinned=True),
                       WHY: st.column_config.TextColumn(WHY, width="medium")},
    )
    left, right = st.columns(2)
    chosen: list[Excluded] = []
    if left.button("Include ticked rows again", key=INCLUDE_TICKED, icon=":material/undo:"):
        ticked = {int(r) for r in edited.loc[edited[INCLUDE_COLUMN].fillna(False).astype(bool), ROW]}
        if not ticked:
            st.info("No rows are ticked. Tick the Include again box of the rows to put back.", icon=":material/info:")
            return None
        chosen = [e for e in records if e.source_row in ticked]
    if right.button(f"Include all {_plural(len(records), 'row')} again", key=INCLUDE_ALL, icon=":material/undo:"):
        chosen = records
    if not chosen:
        return None
    with heavy_step("inclusion", upload.checked.total + len(chosen)):
        new = include_again(upload.checked, chosen, settings)
    rows = [e.source_row for e in chosen]
    state.operation(Include(tuple(rows)))
    still = sum(1 for r in rows if r in new.errors)
    state.notice(f"Included {_plural(len(rows), 'row')} again: {len(rows) - still:,} valid, {still:,} failing.")
    return new


# --- Import -----------------------------------------------------------------------------------------------


def include_excluded_in_report(upload: Upload | None = None) -> bool:
    """The checkbox "Add the rows I excluded to the report"; False (and no checkbox) when none were excluded."""
    count = len(excluded_of(upload))
    if not count:
        return False
    return st.checkbox(REPORT_LABEL, key=IN_REPORT, value=False,
                       help=f"{_plural(count, 'row')} you excluded on Review. The branch sees why each was "
                            "left out and can send them back fixed.")


def report_with_excluded(failed: FailedRows, upload: Upload | None) -> FailedRows:
    """The failed rows, then this file's excluded rows marked "excluded by the analyst" (same report layout
    and run); None: the last file's (after its import)."""
    return with_excluded(failed, excluded_of(upload))
