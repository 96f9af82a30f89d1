"""Review's "What reading changed": the upload's changes record per rule, with counts and examples
(importer.checks.changes.upload_changes), the default region turned off for this upload in one click, and the
CSV lines that look like one customer broken over two lines, joined in one click (the file's bytes joined by
importer.intake.delimited.join_split_lines and read again as a new workspace); and the value-conversion
decisions remembered per source (importer.review.remembered) for the conversion grid."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from importer.api import Upload
from importer.checks.changes import upload_changes
from importer.errors import DatabaseError
from importer.intake.delimited import join_split_lines
from importer.review.operations import NoDefaultRegion
from importer.review.remembered import Remembered, remember_conversions, remembered_conversions
from importer.settings import Settings
from schemas.customer import REGIONS
from ui import keys, state, workspace
from ui.engine import engine
from ui.render import md_escape


def show_changes_record(upload: Upload, settings: Settings) -> None:
    """The changes record and the CSV notes, each with its one-click answer when it has one."""
    changes = upload_changes(upload)
    notes = upload.notes
    if not changes and not notes.split_records:
        return
    st.subheader("What reading the file changed")
    if changes:
        st.caption("Beyond formatting (spaces, case, phone punctuation), reading and checking the file changed "
                   "these values. Each line counts the cells and shows the first rows as typed -> as stored.")
        for line in changes.lines():
            st.markdown(f"- {md_escape(line)}")
    if changes.count("region_default"):
        name = REGIONS.get(settings.default_customer_region, settings.default_customer_region)
        if st.button(f"Keep blank regions blank (do not use {name} for this file)", key=keys.REGION_DEFAULT_OFF,
                     icon=":material/location_off:",
                     help="The blank regions then fail until you type them, or fill them with a region of your "
                          "choice under Bulk fixes."):
            op = NoDefaultRegion()
            workspace.set_checked(op.apply(upload.checked, settings), op)
            st.rerun()
    if notes.split_records:
        for record in notes.split_records:
            st.warning(md_escape(record.message), icon=":material/call_split:")
        if st.button("Join the broken lines and read the file again", key=keys.JOIN_SPLIT,
                     icon=":material/merge:",
                     help="Each pair of lines becomes one customer. The file is read again as a new piece of "
                          "work: join them before fixing other rows."):
            _join(upload, settings)


def _join(upload: Upload, settings: Settings) -> None:
    data = workspace.stored_bytes()
    if data is None:
        st.error("The file is not kept with your work here, so it cannot be joined on this page: join each "
                 "pair of lines in the file (or put the broken value in quotes) and upload it again.",
                 icon=":material/block:")
        return
    joined = join_split_lines(data, [r.first for r in upload.notes.split_records])
    new = state.read_file(joined, upload.file_name, settings, sheet=upload.sheet, mapping=upload.mapping)
    if new is not None:
        workspace.start(joined, new)
        state.notice(f"Joined {len(upload.notes.split_records):,} customer(s) broken over two lines.")
    st.rerun()


def remembered(upload: Upload) -> Remembered:
    """The conversion decisions made for this source's earlier files (its header layout), read once per
    upload version; none for a file without a header row or while the database cannot be read."""
    if upload.mapping.positional:
        return {}
    token = (state.version(), tuple(upload.mapping.headers))
    found = state.cached(keys.REMEMBERED_CONVERSIONS, token)
    if found is None:
        try:
            found = remembered_conversions(engine(), upload.mapping.headers)
        except DatabaseError:
            found = {}
        state.store(keys.REMEMBERED_CONVERSIONS, token, found)
    return found


def remember(upload: Upload) -> Callable[[str, dict[str, str | None]], None]:
    """What the conversion grid calls on Apply: its decisions kept for this source's next file."""
    def keep(field: str, decisions: dict[str, str | None]) -> None:
        if upload.mapping.positional:
            return
        try:
            remember_conversions(engine(), upload.mapping.headers, upload.mapping.fields, field, decisions,
                                 file_name=upload.file_name, user=workspace.owner())
        except DatabaseError:
            st.caption("These conversions could not be remembered for this source's next file.")
    return keep
