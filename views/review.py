"""Step 2: see what fails and why, fix it in the grid or in bulk, exclude rows, compare duplicates."""

from __future__ import annotations

import streamlit as st

from importer.checks.validate import exclude
from importer.errors import DatabaseError
from importer.outcomes.row_errors import ErrorCode
from importer.review.exclusions import EXCLUDED_BY_ANALYST
from importer.review.fixes import apply_fix, available_fixes, fill_region_fix, fix_preview
from importer.review.operations import BulkFix, Exclude
from schemas.customer import REGIONS, label_of
from ui import auth, changes_record, cleaning, existing, keys, render, state, steps, workspace
from ui.duplicates import show_possible_duplicates
from ui.engine import engine
from ui.exclusions import show_exclude_by_reason, show_excluded, show_fix_preview_line
from ui.heavy import heavy_step

current = auth.guard()
auth.require_write(current)

st.title("Review and fix")
steps.collect()  # a file read while the analyst was on another page
upload = state.upload()
if upload is None:
    if not steps.show_running():  # "Still reading customers.xlsx (45%)": the review appears when it is read
        steps.show_no_upload("There is no file to review yet.")
    st.stop()

state.free_uploaded_file()  # the upload is parsed; its bytes are not needed any more
if notice := state.pop_notice():
    st.success(notice, icon=":material/check_circle:")

checked = upload.checked
version = state.version()
review = existing.against_database(upload)
if review.problem:
    st.warning(review.problem, icon=":material/warning:")
errors = review.errors
st.caption(f"{render.md_escape(upload.file_name)}, sheet {render.md_escape(upload.sheet)}")
workspace.show_history()
render.show_metrics(render.metric_counts(checked, errors))
if review.classification is not None and (review.counts["unchanged"] or review.counts["changed"]
                                          or review.counts["conflict"]):
    render.show_database_metrics(review.counts)
    existing.choose_blank_mode()
changes_record.show_changes_record(upload, current)
existing.show_changes(upload, review)
existing.show_possible_different_people(review)

if not errors:
    st.success("Every row is valid. Nothing to fix.", icon=":material/check_circle:")
else:
    st.subheader("Why rows fail")
    render.show_failure_chart(errors)

    st.subheader("Failing rows")
    reasons = [render.ANY_REASON, *errors.by_code()]
    if st.session_state.get(keys.REASON_FILTER) not in reasons:
        st.session_state[keys.REASON_FILTER] = render.ANY_REASON  # its rows were all fixed
    code = st.selectbox("Show rows failing with", reasons, key=keys.REASON_FILTER, format_func=render.reason)
    shown, matched = render.failing_rows(checked, errors, None if code == render.ANY_REASON else code)
    if matched > len(shown):
        st.caption(f"Showing the first {len(shown):,} of {matched:,} failing rows. Fix these, or pick a reason "
                   "above, or use a bulk fix below.")
    st.caption("Edit a cell: the row is checked and saved at once, and fixed rows join the valid ones. "
               "Tick **Exclude** to leave a row out of the import.")
    grid_key = f"{keys.GRID}_{version}_{code}"
    edited = st.data_editor(
        shown, key=grid_key, hide_index=True, num_rows="fixed", on_change=workspace.stash_grid_edits,
        args=(grid_key, shown[render.ROW].astype(int).tolist()),
        column_config=render.grid_column_config(), disabled=[render.ROW, render.ERRORS], width="stretch",
    )
    changes = render.edited_rows(shown, edited)
    if not changes.empty:  # typed but not yet saved (the on_change stash is saved before the page runs)
        workspace.apply_edits({int(r): dict(v) for r, v in changes.to_dict("index").items()})
        st.rerun()
    if st.button("Exclude ticked rows", key=keys.EXCLUDE, icon=":material/block:"):
        rows = render.ticked_rows(edited)
        if not rows:
            st.info("No rows are ticked. Tick the Exclude box of the rows to leave out.", icon=":material/info:")
        else:
            with heavy_step("exclusion", checked.total):
                workspace.set_checked(exclude(checked, rows), Exclude(tuple(rows), EXCLUDED_BY_ANALYST))
            state.notice(f"Excluded {len(rows):,} row(s): they will not be imported; they are listed under Excluded rows. "
                         f"Rows {', '.join(str(r) for r in rows[:10])}{'...' if len(rows) > 10 else ''}.")
            st.rerun()
    by_reason = show_exclude_by_reason(checked, errors)
    if by_reason is not None:
        workspace.set_checked(by_reason)
        st.rerun()

included = show_excluded(upload, current)
if included is not None:
    workspace.set_checked(included)
    st.rerun()

st.subheader("Convert values")
converted = cleaning.show_value_conversion(checked, current, version=version,
                                          remembered=changes_record.remembered(upload),
                                          on_decided=changes_record.remember(upload))
if converted is None:
    converted = cleaning.show_find_replace_section(checked, current, version=version)
if converted is not None:
    workspace.set_checked(converted)
    st.rerun()

st.subheader("Bulk fixes")
# The bulk fixes' settings live in the address (bind="query-params"): a refresh, or coming back from another
# page, finds them as the analyst left them.
only_failing = st.checkbox("Only change failing rows", value=True, key=keys.FIX_ONLY_FAILING, bind="query-params")
region_codes = list(REGIONS)
region = st.selectbox("Region for rows with a blank region", region_codes, key=keys.FILL_REGION,
                      index=region_codes.index(current.default_customer_region)
                      if current.default_customer_region in REGIONS else 0,
                      format_func=render.region_name, bind="query-params")
fixes = [*available_fixes(current).values(), fill_region_fix(region)]
token = (version, only_failing, region)
counts = state.cached(keys.FIX_COUNTS, token)
if counts is None:
    with heavy_step("bulk fix preview", checked.total), st.spinner("Counting the rows each fix would fix and change..."):
        counts = {fix.key: fix_preview(checked, fix, current, only_failing) for fix in fixes}
    state.store(keys.FIX_COUNTS, token, counts)
for fix in fixes:
    text, count, action = st.columns([5, 2, 2], vertical_alignment="center")
    text.markdown(fix.label)
    fixed, changes = counts[fix.key]
    count.markdown(show_fix_preview_line(fixed, changes))
    if action.button("Apply", key=f"{keys.FIX_APPLY}{fix.key}", disabled=changes == 0,
                     help=f"Apply: {fix.label}"):
        with heavy_step("bulk fix", checked.total), st.spinner(f"Applying: {fix.label}..."):
            new, changed = apply_fix(checked, fix, current, only_failing)
        workspace.set_checked(new, BulkFix(fix.key, region if fix.key == "region" else None, only_failing))
        state.notice(f"{fix.label}: changed {changed:,} row(s); {len(new.errors):,} rows still fail in the file.")
        st.rerun()

duplicates = render.duplicate_rows(errors, limit=1_000)
if duplicates:
    st.subheader("Duplicates side by side")
    # Each duplicate by (row, code, field): the label and the tables below are of the same one (render.pick).
    labels = {
        (row, error.code.value, error.field): f"Row {row}: same {label_of(error.field).lower()} as an earlier row"
        if error.code is ErrorCode.DUPLICATE_IN_FILE
        else f"Row {row}: {label_of(error.field).lower()} belongs to another customer"
        if error.code is ErrorCode.CONFLICT
        else f"Row {row}: changes a customer (rejected)"
        for row, error in duplicates
    }
    picked = render.pick("Duplicate to compare", labels, keys.DUPLICATE_PICK)
    row, error = next(d for d in duplicates if (d[0], d[1].code.value, d[1].field) == picked)
    typed = checked.original.loc[row].to_dict()
    if error.code is ErrorCode.DUPLICATE_IN_FILE:
        first = error.other_row
        if first is not None and first != row and first in checked.original.index:
            st.dataframe(render.side_by_side(checked.original.loc[first].to_dict(), typed,
                                             f"Row {first} (kept)", f"Row {row} (fails)", error.field),
                         hide_index=True, width="stretch")
            st.caption(f"The first row wins: row {first} is imported; row {row} fails unless you change its "
                       f"{label_of(error.field).lower()} or exclude it.")
    else:
        try:
            found = existing.stored_customers(review, row, error)
        except DatabaseError as exc:
            render.show_error(exc, escape=False)
            found = []
        normalised = checked.normalised.loc[row].to_dict() if row in checked.normalised.index else None
        for stored in found:
            st.dataframe(render.side_by_side(stored, typed, f"Customer #{stored['id']} in the database",
                                             f"Row {row} (fails)", error.field, compared=normalised),
                         hide_index=True, width="stretch")
        if error.code is ErrorCode.CONFLICT and len(found) == 1:
            st.caption(f"Row {row}'s {label_of(error.field).lower()} matched customer #{found[0]['id']}, but its "
                       "shipping mark or name differs: a possible different person. Confirm it under Possible "
                       "different people if it is the same customer, correct the key, or exclude the row.")
        elif error.code is ErrorCode.CONFLICT:
            st.caption(f"Row {row}'s keys belong to {len(found)} different customers: it fails as conflict. "
                       "Correct the key that is wrong, or exclude the row.")
        elif found:
            st.caption(f"Row {row} would change customer #{found[0]['id']}: accept the change above to update "
                       "the customer, or leave it rejected and the row goes in the failure report.")

# On request: the search compares every row with its look-alikes in the file and the database, and
# holds its pairs; run on every change it cost each analyst's session memory for nothing.
decided = None
if st.toggle("Look for possible duplicates: the same person under another mark, phone or email",
             key=keys.DUPLICATES_ON):
    decided = show_possible_duplicates(engine(), checked, current, existing="update")
if decided is not None:
    workspace.set_checked(decided)  # "update that customer": its change was accepted with the decision
    st.rerun()

st.divider()
st.page_link("views/load.py", label="Continue to import", icon=":material/arrow_forward:")
