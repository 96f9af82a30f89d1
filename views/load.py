"""Step 3: a dry run first, then the import with progress, then the failure report to download."""

from __future__ import annotations

from functools import partial
from typing import Any

import streamlit as st

from importer.api import Upload, import_upload
from importer.database.ledger import find_resumable
from importer.errors import DatabaseError
from importer.outcomes.run_result import RunResult
from importer.output.downloads import report_file
from importer.review.session import Readiness, ReviewSession
from ui import auth, existing, keys, live, render, state, steps, workspace
from ui import jobs as background
from ui import session as review_session
from ui.downloads import offer_file
from ui.engine import engine
from ui.exclusions import excluded_of, include_excluded_in_report, remember_for_report, report_with_excluded
from ui.heavy import heavy_step

current = auth.guard()
auth.require_write(current)

st.title("Import")
steps.collect()  # a file read while the analyst was on another page
upload = state.upload()
result: RunResult | None = state.import_result()
if upload is None and result is None:
    if not steps.show_running():  # "Still reading customers.xlsx (45%)": the page fills in when it is read
        steps.show_no_upload("There is nothing to import yet.")
    st.stop()

mine = background.my_job()
if mine is not None and not mine.finished:
    st.info(f"Importing **{render.md_escape(mine.file_name)}** ({mine.rows:,} rows) on the server: you can go to "
            "another page or close this tab, and the import goes on. The sidebar shows its progress, with Cancel; "
            "the result comes back here, and History keeps it.", icon=":material/hourglass_top:")
    st.stop()
if failed := background.failure():
    st.error(render.md_escape(failed), icon=":material/block:")

if upload is not None:
    state.free_uploaded_file()
    checked = upload.checked
    review = existing.against_database(upload)
    if review.problem:
        st.warning(review.problem, icon=":material/warning:")
    failing = len(review.errors)
    sheet = upload.run_sheet
    st.write(f"**{render.md_escape(upload.file_name)}**: {checked.total:,} rows; "
             f":material/check_circle: {checked.total - failing:,} pass the checks, :material/cancel: {failing:,} "
             "fail and will be in the failure report.")
    if left_out := excluded_of(upload):
        st.caption(f"{len(left_out):,} row(s) you excluded on Review are not imported. After the import you can "
                   "add them to the failure report, marked 'excluded by the analyst'.")
    arguments = review.import_arguments()
    choices = (arguments["existing"], arguments["blank"], arguments["rejected"])
    if review.classification is not None and (review.counts["unchanged"] or review.counts["changed"]):
        blank = existing.BLANK_LABELS[arguments["blank"]].lower()
        st.caption(f"Against the database: {existing.summary(review)}. A blank cell: {blank}.")
        st.page_link("views/review.py", label="Accept or reject changes on Review", icon=":material/rule:")
    try:
        resumable = find_resumable(engine(), upload.sha256, sheet)
    except DatabaseError as exc:
        st.error(f"{exc}", icon=":material/block:")
        st.stop()
    if resumable is not None:
        st.info(f"Run #{resumable.id} of this file was cut off after {resumable.rows_done:,} rows. Importing "
                "resumes it: rows already imported are not created twice.", icon=":material/resume:")

    user_name = auth.user_name(current)
    session = review_session.current(upload)
    dry = state.dry_run_result(choices)  # this tab's full result (with its reasons), for the upload as it is
    # What the verdict depends on besides the ledger: the workspace and version, the choices, this tab's copy.
    ready_key = (session.id if session is not None else None, session.version if session is not None
                 else state.version(), upload.sha256, choices, st.session_state.get(keys.DRY_RUN_SAW))
    ledger = live.ledger_now()
    try:
        ready = review_session.readiness(session, upload, arguments)
    except DatabaseError as exc:
        ready = Readiness(None, f"The database could not be asked whether the dry run is still current ({exc}).")
    live.remember_readiness(ready_key, ready, ledger)
    again = st.session_state.pop(live.DRY_RUN_AGAIN, False)  # the banner's one click
    if st.button("Dry run (saves nothing)", key=keys.DRY_RUN_BUTTON, icon=":material/science:",
                 type="secondary" if ready.can_import else "primary") or again:
        try:
            with (heavy_step("dry run", checked),  # charged by the frames' bytes
                  st.spinner(f"Dry run of {checked.total:,} rows against the database...")):
                if session is not None:
                    dry = session.dry_run(arguments, user_name=user_name)
                    review_session.keep_dry_run(session.seen)
                else:
                    saw = review_session.database_now()
                    dry = import_upload(engine(), upload, current, dry_run=True, user_name=user_name, **arguments)
                    review_session.remember_unsaved_dry_run(saw, dry, arguments)
                ledger = live.ledger_now()
                ready = review_session.readiness(session, upload, arguments)
        except DatabaseError as exc:
            st.error(f"{exc} Nothing was saved; check the database and try again.", icon=":material/block:")
            st.stop()
        state.set_result(dry, choices)
        ready_key = (*ready_key[:-1], st.session_state.get(keys.DRY_RUN_SAW))
        live.remember_readiness(ready_key, ready, ledger)
    seen = ready.dry_run
    if seen is None:
        st.caption(ready.reason or "")
    else:
        st.subheader("Dry run: what the import would do")

        def watch_verdict(upload: Upload, session: ReviewSession | None, arguments: dict[str, Any],
                          ready_key: tuple[Any, ...], drawn: tuple[bool, bool, bool]) -> None:
            """Keeps the page up with other sessions without drawing anything: every few seconds it asks whether
            the dry run still holds (another run may import, end, or be undone meanwhile) and whether an import
            runs, and reruns the page once when that changed. The banner and the buttons are the page's own: a
            click on a button inside a timed fragment could be lost when the page's run replaced the fragment
            (Streamlit drops a fragment's rerun whose fragment the last full run did not register)."""
            try:
                now = live.readiness(ready_key, lambda: review_session.readiness(session, upload, arguments))
                running = bool(live.database_status().running)
            except DatabaseError:
                return  # the sidebar's database status says why; the page keeps what it shows
            if (now.can_import, now.reason is None, running) != drawn:
                st.rerun(scope="app")

        try:
            running_now = bool(live.database_status().running)
        except DatabaseError:
            running_now = True
        if ready.reason:
            st.session_state[live.HELD] = False
            st.warning(f"These counts are out of date. {render.md_escape(ready.reason)}", icon=":material/update:")
            if not running_now and st.button("Run the dry run again", key=keys.DRY_RUN_BUTTON + "_again",
                                             icon=":material/refresh:", type="primary"):
                st.session_state[live.DRY_RUN_AGAIN] = True
                st.rerun()
        elif st.session_state.pop(live.HELD, None) is False:  # stale on the page's last run, current now: say why
            st.success("The other import has finished and changed none of this file's customers, so this "
                       "dry run still holds.", icon=":material/check_circle:")
        created, updated = seen.counts.get("created", 0), seen.counts.get("updated", 0)
        label = (f"Import: create {created:,}, update {updated:,} customers" if updated
                 else f"Import {created:,} customers")
        if st.button(label, key=keys.IMPORT_BUTTON, type="primary", disabled=not ready.can_import,
                     icon=":material/database_upload:"):
            st.session_state.pop(live.HELD, None)
            remember_for_report(upload)  # the excluded rows, for the report once the import drops the upload
            background.start(upload, arguments, workspace.resume_arguments().get("workspace"))
            st.rerun()
        st.fragment(watch_verdict, run_every=live.refresh_seconds())(
            upload, session, arguments, ready_key, (ready.can_import, ready.reason is None, running_now))
        if dry is not None:
            render.result_metrics(dry)
            if dry.total_failed:
                st.dataframe(render.reasons_table(dry), hide_index=True)
        else:  # run by another tab, a refresh ago, or another server: its counts, from the workspace
            render.count_metrics(seen.counts)
            st.caption("This dry run was run from another tab or before a refresh; run it again here to see the "
                       "reasons rows fail.")
else:
    assert result is not None
    st.success(f"Run #{result.run_id}: {result.message}{' (resumed run)' if result.resumed else ''}.",
               icon=":material/check_circle:")
    render.result_metrics(result)
    if result.total_failed or excluded_of(None):
        st.subheader("Failed rows")
        if result.total_failed:
            st.dataframe(render.reasons_table(result), hide_index=True)
        st.write("Download the failed rows, fix them in Excel (each row says what is wrong), and upload the "
                 "fixed file again. The Row and Errors columns are ignored when you upload it.")
        left, right = st.columns(2)
        stem = f"failed-rows-run-{result.run_id}"
        report = result.failed
        if include_excluded_in_report(upload):
            report = report_with_excluded(report, upload)
        # Built in chunks to a file on disk and sent from there (ui.downloads): nothing whole-file in memory.
        for column, fmt, label, mime, key in (
                (left, "csv", "Download failure report (CSV)", "text/csv", keys.IMPORT_CSV),
                (right, "xlsx", "Download failure report (Excel, failing cells marked)",
                 "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", keys.IMPORT_XLSX)):
            offer_file(column, label, partial(report_file, report, fmt), file_name=f"{stem}.{fmt}", mime=mime, key=key)
        st.page_link("views/upload.py", label="Upload the fixed report", icon=":material/upload_file:")
    else:
        st.page_link("views/upload.py", label="Upload another file", icon=":material/upload_file:")
    st.page_link("views/history.py", label="See all runs in History", icon=":material/history:")
