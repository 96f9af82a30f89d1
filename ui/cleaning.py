"""Review and Upload sections for cleaning branch data (issue 11): value conversion per column, find and
replace, the rows skipped as footers or notes, and the mapping's warnings (ignored columns that look like a
field left to its default, full names split, one-word names).

Each function draws one section and returns what the page must store, or None:

    new = cleaning.show_value_conversion(checked, current, version=state.version())
    if new is not None:
        workspace.set_checked(new)   # the notice saying what it did is already set (state.notice)
        st.rerun()

The operations applied are importer.review.conversions operations, handed to the workspace with state.operation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
import streamlit as st

from importer.checks.validate import Checked
from importer.errors import UsageError
from importer.intake.delimited import SkippedRow
from importer.mapping.columns import (
    ColumnMapping,
    SheetNotes,
    fed_fields,
    one_word_names,
    split_preview,
)
from importer.review.conversions import (
    Conversion,
    Operation,
    Replace,
    apply_operation,
    failing_fields,
    failing_values,
    mapping_warnings,
    preview,
)
from importer.review.remembered import Remembered, decisions_of_grid, with_remembered
from importer.settings import Settings
from schemas.customer import FIELD_NAMES, REGIONS, USER_TYPES, label_of
from ui import state
from ui.heavy import heavy_step
from ui.render import md_escape, pick

# Widget keys (stable: the AppTest and browser tests find the widgets by them).
CONVERT_FIELD = "clean_convert_field"  # the column picked; its widget: ui.render.pick
CONVERT_GRID = "clean_convert_grid"  # + "_" + version + "_" + field
CONVERT_APPLY = "clean_convert_apply"
REPLACE_OPEN = "clean_replace_open"  # the Find and replace expander: open or not (the session's)
REPLACE_FIELD = "clean_replace_field"
REPLACE_FIND = "clean_replace_find"
REPLACE_WITH = "clean_replace_with"
REPLACE_WHOLE = "clean_replace_whole_cell"
REPLACE_CASE = "clean_replace_match_case"
REPLACE_APPLY = "clean_replace_apply"
MAP_SUGGESTED = "clean_map_"  # + field: "Map Location to Region"
# Session values.
VALUES_CACHE = "clean_values_cache"  # ((version, field), failing_values table)
PREVIEW_CACHE = "clean_preview_cache"  # ((version, operation), Preview)

VALUE = "Value"
ROWS = "Rows"
TARGET = "Convert to"
WHY = "Why"


def _field_label(field: str) -> str:
    return label_of(field)


def _region_label(code: str) -> str:
    return f"{REGIONS.get(code, code)} ({code})" if code in REGIONS else str(code)


def _kept(key: str, token: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
    """compute(), kept in the session under key for token (ui.state.cached); token[0] None: not kept."""
    if token[0] is None:
        return compute()
    found = state.cached(key, token)
    return found if found is not None else state.store(key, token, compute())


def _values(checked: Checked, field: str, settings: Settings, version: int | None) -> pd.DataFrame:
    """failing_values for the field, kept in the session for this upload version (None: not kept)."""
    return _kept(VALUES_CACHE, (version, field), lambda: failing_values(checked, field, settings))


def _preview(checked: Checked, operation: Operation, settings: Settings, version: int | None) -> tuple[int, int]:
    """preview() of the operation, kept for this upload version (a rerun with the same grid costs nothing)."""
    return _kept(PREVIEW_CACHE, (version, operation), lambda: preview(checked, operation, settings))


def _target_column(field: str) -> Any:
    help_text = "What the value becomes; leave it empty to keep the value as it is."
    if field == "region":
        return st.column_config.SelectboxColumn(TARGET, options=list(REGIONS), format_func=lambda v: _region_label(str(v)),
                                                help=help_text)
    if field == "user_type":
        return st.column_config.SelectboxColumn(TARGET, options=list(USER_TYPES), help=help_text)
    return st.column_config.TextColumn(TARGET, help=help_text)


def _apply(checked: Checked, operation: Operation, settings: Settings, what: str) -> Checked:
    """Apply with the memory governor's slot, and leave the notice the page shows after its rerun."""
    before = int(checked.errors.rows().size)
    with heavy_step(what, checked.total), st.spinner(f"Applying: {operation.describe()}..."):
        found = preview(checked, operation, settings)
        new = apply_operation(checked, operation, settings)
    state.operation(operation)
    state.notice(f"{operation.describe()}: fixed {found.fixes:,} failing row{'' if found.fixes == 1 else 's'}, "
                 f"changed {found.changes:,}; {len(new.errors):,} rows still fail (were {before:,}).")
    return new


def _preview_line(fixes: int, changes: int) -> str:
    return (f"Fixes **{fixes:,}** failing row{'' if fixes == 1 else 's'} · "
            f"changes **{changes:,}** row{'' if changes == 1 else 's'}")


def show_value_conversion(checked: Checked, settings: Settings, version: int | None = None, *,
                          remembered: Remembered | None = None,
                          on_decided: Callable[[str, dict[str, str | None]], None] | None = None) -> Checked | None:
    """Convert the failing values of one column: a grid of value, rows, suggested target; preview; Apply.

    version: the upload's version (ui.state.version()), so the list is computed once per version.
    remembered: the decisions made for this source's earlier files (importer.review.remembered), offered as
    the suggestions; on_decided(field, decisions): called with what the analyst decided when she applies.
    Returns the new Checked when Apply was pressed, else None.
    """
    fields = failing_fields(checked)
    if not fields:
        st.caption("No column has failing values to convert.")
        return None
    counts = {f: f"{label_of(f)} ({n:,} failing row{'' if n == 1 else 's'})" for f, n in fields.items()}
    if st.session_state.get(CONVERT_FIELD) not in fields:
        st.session_state[CONVERT_FIELD] = "region" if "region" in fields else next(iter(fields))
    # Its labels carry counts: render.pick, so the column shown is the column converted after each action.
    field = pick("Column", counts, CONVERT_FIELD)
    table = with_remembered(_values(checked, field, settings, version), field, remembered or {})
    shown = len(table)
    distinct = int(table.attrs.get("distinct", shown))
    st.caption(
        f"{distinct:,} different value{'' if distinct == 1 else 's'} fail in {label_of(field)}"
        + (f"; the {shown:,} most frequent are listed" if shown < distinct else "")
        + ". Check each suggestion, change or clear it, then apply them all at once."
    )
    grid = table.rename(columns={"value": VALUE, "count": ROWS, "suggestion": TARGET, "why": WHY})
    edited = st.data_editor(
        grid, key=f"{CONVERT_GRID}_{version}_{field}", hide_index=True, num_rows="fixed", width="stretch",
        disabled=[VALUE, ROWS, WHY], column_config={TARGET: _target_column(field)},
    )
    conversion = Conversion.from_table(field, edited.rename(columns={VALUE: "value"}), target=TARGET)
    try:  # the engine refuses a conversion whose result would be too big, before building it
        fixes, changes = _preview(checked, conversion, settings, version)
    except UsageError as exc:
        st.error(str(exc), icon=":material/block:")
        return None
    left, right = st.columns([3, 1], vertical_alignment="center")
    left.markdown(_preview_line(fixes, changes))
    if right.button("Apply conversion", key=CONVERT_APPLY, type="primary", disabled=changes == 0,
                    icon=":material/swap_horiz:"):
        if on_decided is not None:
            on_decided(field, decisions_of_grid(table, edited.rename(columns={VALUE: "value"}), TARGET))
        return _apply(checked, conversion, settings, "value conversion")
    return None


def show_find_replace_section(checked: Checked, settings: Settings, version: int | None = None) -> Checked | None:
    """show_find_replace in its "Find and replace in a column" expander, which stays open while it is used.

    The expander's open state is the session's (a key, and on_change="rerun" so the browser reports it): drawn
    from it on every run, the section no longer collapses when typing in Find adds the preview below it."""
    with st.expander("Find and replace in a column", key=REPLACE_OPEN, on_change="rerun",
                     icon=":material/find_replace:"):
        return show_find_replace(checked, settings, version=version)


def show_find_replace(checked: Checked, settings: Settings, version: int | None = None) -> Checked | None:
    """Find and replace text in any column, with the same preview; returns the new Checked on Apply.

    version: the upload's version (ui.state.version()), so a preview is computed once per version and text.
    """
    left, right = st.columns(2)
    field = left.selectbox("Column", list(FIELD_NAMES), key=REPLACE_FIELD, format_func=_field_label)
    whole = right.checkbox("Whole cell (the cell must equal it; empty finds blank cells)", key=REPLACE_WHOLE)
    find = left.text_input("Find", key=REPLACE_FIND)
    replace = right.text_input("Replace with", key=REPLACE_WITH)
    match_case = st.checkbox("Match case", value=True, key=REPLACE_CASE)
    if not whole and find == "":
        st.caption("Type the text to find, or tick Whole cell to fill blank cells.")
        return None
    try:
        operation = Replace(field, find, replace, whole_cell=whole, match_case=match_case)
        # The engine refuses a replacement whose result would be too big, before building it.
        fixes, changes = _preview(checked, operation, settings, version)
    except UsageError as exc:
        st.error(str(exc), icon=":material/block:")
        return None
    text, action = st.columns([3, 1], vertical_alignment="center")
    text.markdown(_preview_line(fixes, changes))
    if action.button("Replace", key=REPLACE_APPLY, disabled=changes == 0, icon=":material/find_replace:"):
        return _apply(checked, operation, settings, "find and replace")
    return None


def _skipped_of(source: object) -> Sequence[SkippedRow]:
    """The skipped rows of a SheetNotes, of an object holding one as `.notes` (an Upload), or a sequence."""
    notes = source if isinstance(source, SheetNotes) else getattr(source, "notes", None)
    if isinstance(notes, SheetNotes):
        return notes.skipped_rows
    return list(source) if isinstance(source, Sequence) else []


def show_skipped_rows(source: object) -> None:
    """The rows read but skipped as footers or notes (TOTAL, Prepared by, separators), with why.

    source: the Upload (its `notes`), its SheetNotes, or the SkippedRow list.
    """
    skipped = _skipped_of(source)
    if not skipped:
        return
    n = len(skipped)
    with st.expander(f"{n:,} row{'' if n == 1 else 's'} skipped as footers or notes: not customers, not counted"):
        st.caption("These rows are not imported and are not failures. If one is a customer, add it to the file "
                   "as a full row (with a name and a phone) and upload it again.")
        st.dataframe(pd.DataFrame({"Row": [s.row for s in skipped], "Text": [s.text for s in skipped],
                                   "Why": [s.reason for s in skipped]}), hide_index=True, width="stretch")


def show_mapping_warnings(
    mapping: ColumnMapping, notes: SheetNotes, checked: Checked, settings: Settings
) -> ColumnMapping | None:
    """Warnings about the mapping: a field left to its default while an ignored column looks like it
    (with a button to map it), the full-name split's first rows, and rows whose full name is one word.

    Returns the mapping with the suggested column mapped when its button was pressed (the page reads the
    file again with it), else None.
    """
    for warning in mapping_warnings(mapping, notes, checked.total, settings.default_customer_region):
        st.warning(md_escape(warning.message), icon=":material/warning:")
        if warning.column is None or warning.header is None:
            continue
        fields = list(mapping.fields)
        fields[warning.column] = warning.field
        label = f"Map {warning.header} to {label_of(warning.field)}"
        if st.button(md_escape(label), key=f"{MAP_SUGGESTED}{warning.field}", icon=":material/link:"):
            try:
                return mapping.with_fields(fields)
            except UsageError as exc:
                st.error(str(exc), icon=":material/block:")
    column = mapping.full_name_column
    if column is not None:
        header = mapping.headers[column].strip() or "(blank header)"
        parts = " + ".join(label_of(f) for f in fed_fields("full_name"))
        st.info(f"{md_escape(header)} is split into {parts}: all but the last word is the first name "
                "(a comma or a surname in capitals first is followed).", icon=":material/call_split:")
        if notes.full_names:
            st.dataframe(split_preview(notes.full_names), hide_index=True, width="stretch")
        single = one_word_names(checked.original, mapping)
        if single:
            shown = "\n".join(f"- {md_escape(message)}" for _, message in single[:10])
            more = f"\n\n…and {len(single) - 10:,} more." if len(single) > 10 else ""
            st.warning(f"{len(single):,} name{'s are' if len(single) > 1 else ' is'} one word:\n\n{shown}{more}",
                       icon=":material/warning:")
    return None


__all__ = ["CONVERT_APPLY", "CONVERT_FIELD", "CONVERT_GRID", "MAP_SUGGESTED", "REPLACE_APPLY", "REPLACE_CASE",
           "REPLACE_FIELD", "REPLACE_FIND", "REPLACE_OPEN", "REPLACE_WHOLE", "REPLACE_WITH",
           "show_find_replace", "show_find_replace_section", "show_mapping_warnings", "show_skipped_rows", "show_value_conversion"]
