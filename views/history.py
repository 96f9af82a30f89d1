"""Every run: when, who, file, counts, status; a chart over time; failure reports; undo; resume."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import streamlit as st

from importer.api import upload_for_resume
from importer.checks.changes import Changes
from importer.database.ledger import RunRecord, list_runs, run_failures, undo, undo_preview
from importer.errors import DatabaseError, FileRefused, NotYours, RunError
from importer.identity import dashboard_actor
from importer.outcomes.row_errors import RunStatus
from importer.output.downloads import report_file
from importer.workspace.resume import upload_for_workspace_resume
from ui import auth, keys, render, state
from ui import jobs as background
from ui.downloads import offer_file
from ui.engine import engine
from ui.heavy import heavy_cost_for_file, heavy_step


def _run_report_file(run_id: int, fmt: str) -> Path:
    """A past run's failure report, written to a file on disk when its button is clicked."""
    return report_file(run_failures(engine(), run_id), fmt)


current = auth.guard()
# Who acts here: the engine checks what this account may undo or resume (its own runs; an admin: any) and
# records it (importer.database.accounts.check_may_act); this page only shows its refusal.
actor = dashboard_actor(auth.user_name(current))
st.title("History")
if notice := state.pop_notice():
    st.success(notice, icon=":material/check_circle:")

try:
    runs = list_runs(engine())
except DatabaseError as exc:
    render.show_error(exc, escape=False)
    st.stop()
if not runs:
    st.info("No imports yet.", icon=":material/info:")
    st.page_link("views/upload.py", label="Upload a file", icon=":material/upload_file:")
    st.stop()

st.dataframe(
    render.runs_frame(runs), hide_index=True, width="stretch",
    column_config={
        "Started (UTC)": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
        **{name: st.column_config.NumberColumn(format="localized")
           for name in ("Rows", "Created", "Updated", "Unchanged", "Failed")},
    },
)
chart = render.runs_chart(runs)
if chart is not None:
    st.vega_lite_chart(chart, width="stretch", height=300)

st.subheader("One run")
# By run id (render.pick): a run whose status or counts changed since the last action keeps its place.
by_id = {r.id: r for r in runs}
run: RunRecord = by_id[render.pick("Run", {r.id: render.run_label(r) for r in runs}, keys.HISTORY_RUN)]
existing = "".join(f"{count:,} {word}, " for count, word in
                   ((run.total_updated, "updated"), (run.total_unchanged, "unchanged")) if count)
fixes = f" Its file was the failure report of run #{run.fixes_run_id} (fixes for run #{run.fixes_run_id})." if (
    run.fixes_run_id is not None) else ""
undone_by = f" Undone by {render.md_escape(run.undone_by_label)}." if run.undone_by_label else ""
st.write(f"Run #{run.id}: {run.total_attempted:,} rows, {run.total_created:,} created, {existing}"
         f"{run.total_failed:,} failed. Status: {render.STATUS_TEXT.get(run.status, run.status)}. "
         f"Imported by {render.md_escape(run.by or 'an unrecorded user')}.{undone_by}{fixes}")

if recorded := (run.settings or {}).get("changes"):  # what reading and normalising changed (not formatting)
    try:
        said = Changes.from_json(recorded).lines()
    except (KeyError, TypeError, ValueError):
        said = []
    if said:
        with st.expander(f"Changed while reading ({len(said):,} rule{'' if len(said) == 1 else 's'})"):
            st.markdown("\n".join(f"- {render.md_escape(line)}" for line in said))

refusal = auth.write_refusal(current)
if refusal:
    st.warning(refusal, icon=":material/lock:")
    st.stop()

if run.total_failed:
    left, right = st.columns(2)
    stem = f"failed-rows-run-{run.id}"
    run_id = run.id
    # Built in chunks to a file on disk and sent from there (ui.downloads): nothing whole-file in memory.
    for column, fmt, label, mime, key in (
            (left, "csv", "Download this run's failure report (CSV)", "text/csv", keys.HISTORY_CSV),
            (right, "xlsx", "Download this run's failure report (Excel)",
             "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", keys.HISTORY_XLSX)):
        offer_file(column, label, partial(_run_report_file, run_id, fmt), file_name=f"{stem}.{fmt}", mime=mime,
                   key=key)
else:
    st.caption("This run has no failed rows.")

if run.status in (RunStatus.COMPLETED, RunStatus.INTERRUPTED):
    if st.button(f"Undo run #{run.id}", key=keys.UNDO, icon=":material/undo:"):
        st.session_state[keys.UNDO_CONFIRM] = run.id
    if state.get(keys.UNDO_CONFIRM) == run.id:
        try:
            preview = undo_preview(engine(), run.id)
        except (DatabaseError, RunError) as exc:
            render.show_error(exc, escape=False)
            st.stop()
        if preview.blocking_runs:
            names = ", ".join(f"#{n}" for n in preview.blocking_runs)
            st.error(f"Run #{run.id} cannot be undone yet: later run(s) {names} changed customers it created or "
                     f"updated. Undo run(s) {names} first.", icon=":material/block:")
        else:
            what = [f"deletes the **{preview.to_delete:,}** customer{'' if preview.to_delete == 1 else 's'} "
                    f"that run #{run.id} created"]
            if preview.to_restore:
                what.append(f"restores the **{preview.to_restore:,}** customer{'' if preview.to_restore == 1 else 's'}"
                            " it updated to what they were before")
            st.warning(f"Undo {' and '.join(what)}. This cannot be reversed.", icon=":material/warning:")
        yes, no = st.columns([1, 4])
        if yes.button("Yes, undo the run", key=keys.UNDO_YES, type="primary", disabled=bool(preview.blocking_runs)):
            try:
                done = undo(engine(), run.id, actor)
            except (DatabaseError, NotYours, RunError) as exc:
                render.show_error(exc)
                st.stop()
            st.session_state.pop(keys.UNDO_CONFIRM, None)
            restored = f", restored {done.restored:,}" if done.restored else ""
            state.notice(f"Run #{run.id} undone: deleted {done.deleted:,} customer{'' if done.deleted == 1 else 's'}"
                         f"{restored}.")
            st.rerun()
        if no.button("Cancel", key=keys.UNDO_NO):
            st.session_state.pop(keys.UNDO_CONFIRM, None)
            st.rerun()
elif run.status is RunStatus.RUNNING:
    st.caption(":material/hourglass_top: This run is still running; undo becomes available when it ends.")

if run.status is RunStatus.INTERRUPTED and run.settings.get("workspace_id") is not None:
    st.subheader(f"Resume run #{run.id}")
    st.write(f"It stopped after {run.rows_done:,} rows. It was imported from your saved work on "
             f"**{render.md_escape(run.file_name)}**: resuming replays it, with every fix you made, and carries on "
             "from where it stopped. Nothing is created twice, and there is nothing to upload.")
    if st.button(f"Resume run #{run.id}", key=keys.RESUME_BUTTON, type="primary", icon=":material/play_arrow:"):
        try:
            with (heavy_step("reopen", run.total_attempted or run.rows_done),
                  st.spinner(f"Replaying your work on {render.md_escape(run.file_name)}...")):
                upload = upload_for_workspace_resume(engine(), run.id, current, actor=actor)
        except (FileRefused, NotYours, RunError, DatabaseError) as exc:
            render.show_error(exc)
            st.stop()
        # A resumed run keeps its own settings (existing, blank, rejected rows) and its workspace.
        background.start(upload, {}, None)
        state.notice(f"Run #{run.id} resumes on the server with your fixes: the sidebar shows its progress.")
        st.rerun()
elif run.status is RunStatus.INTERRUPTED:
    st.subheader(f"Resume run #{run.id}")
    st.write(f"It stopped after {run.rows_done:,} rows. Upload **{render.md_escape(run.file_name)}** again, "
             "unchanged: the import carries on from where it stopped and nothing is created twice.")
    again = st.file_uploader(f"The same file as run #{run.id}", type=["xlsx", "xlsm", "xls", "csv"],
                             key=f"{keys.RESUME_FILE}_{run.id}")
    if again is not None:
        try:
            again_data = again.getvalue()
            with (heavy_step("upload", cost_mb=heavy_cost_for_file(again_data, again.name)),
                  st.spinner(f"Reading {render.md_escape(again.name)}...")):
                upload = upload_for_resume(engine(), run.id, again_data, again.name, current, actor=actor)
            del again_data
        except (FileRefused, NotYours, RunError, DatabaseError) as exc:
            render.show_error(exc)
            st.stop()
        if st.button(f"Resume run #{run.id}", key=keys.RESUME_BUTTON, type="primary", icon=":material/play_arrow:"):
            background.start(upload, {}, None)
            state.notice(f"Run #{run.id} resumes on the server: the sidebar shows its progress.")
            st.rerun()
