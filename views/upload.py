"""Step 1: upload a file, pick the sheet, check the column mapping, preview the first rows."""

from __future__ import annotations

import streamlit as st

from importer.database.provenance import reviewed_run
from importer.errors import DatabaseError, UsageError
from importer.mapping.columns import ColumnMapping, choice_label, mapping_choices
from importer.output.template import template_xlsx
from schemas.customer import label_of
from ui import auth, cleaning, keys, profiles, state, steps, workspace
from ui.engine import engine
from ui.heavy import heavy_cost_for_file, heavy_step
from ui.render import md_escape

current = auth.guard()
auth.require_write(current)

st.title("Upload a customer file")
st.write(
    f"Excel (.xlsx, .xls) or CSV, up to {current.max_upload_mb:,} MB and {current.max_rows:,} rows. "
    "Headers are recognised whatever their case or wording (Surname, Mobile, S/Mark...)."
)
st.download_button(
    "Download the template (.xlsx)", data=template_xlsx, file_name="customer-import-template.xlsx",
    mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", key="upload_template",
    icon=":material/download:", on_click="ignore",
)

if notice := state.pop_notice():
    st.success(notice, icon=":material/check_circle:")

uploaded = st.file_uploader(
    "Customer file (.xlsx, .xls or .csv)", type=["xlsx", "xlsm", "xls", "csv"], key=state.uploader_key(),
)


def _forget_choices() -> None:
    """A new file: the sheet and mapping picked for the previous one no longer apply."""
    for key in [k for k in st.session_state if str(k).startswith((keys.MAP_COLUMN, keys.SHEET))]:
        del st.session_state[key]


steps.collect()  # a read that ended while the analyst was on another page
if uploaded is not None and uploaded.file_id != state.get(keys.PARSED_FILE_ID):
    _forget_choices()
    # Read, checked and kept as a workspace in a server thread (with a mapping saved for these headers):
    # another page may be opened meanwhile, and shows how far it is.
    steps.start_read(uploaded.getvalue(), uploaded.name)
    st.session_state[keys.PARSED_FILE_ID] = uploaded.file_id
steps.wait_here_for_read()


def _read_again(label: str, sheet: str | None, mapping: ColumnMapping | None = None, *,
                remember: bool = False) -> None:
    """Read the same file again with another sheet or mapping: from the uploader, or from the saved
    workspace (after a refresh or once the uploader was emptied). A new mapping of a file already changed
    on Review is a workspace operation, replayed with those changes; otherwise Review starts over.
    `remember`: the analyst confirmed the mapping, so it is saved for files with the same headers."""
    kept = workspace.meta()
    upload_now = state.upload()
    if (mapping is not None and upload_now is not None and sheet == upload_now.sheet
            and workspace.change_mapping(mapping)):  # changes made on Review are kept: replayed with it
        if remember:
            _remember(mapping, upload_now.file_name)
        st.rerun()
    data = uploaded.getvalue() if uploaded is not None else workspace.stored_bytes()
    name = uploaded.name if uploaded is not None else upload_now.file_name if upload_now else None
    if data is None or name is None:
        st.error("The file is no longer here: upload it again to read it differently.", icon=":material/block:")
        return
    with heavy_step("upload", cost_mb=heavy_cost_for_file(data, name)), st.spinner(label):
        new = state.read_file(data, name, current, sheet=sheet, mapping=mapping)
    if new is not None and kept is not None:
        st.session_state[keys.WORKSPACE] = kept
        workspace.restart(new)
    elif new is not None:
        workspace.start(data, new)
    if new is not None and remember and mapping is not None:
        _remember(new.mapping, name)
    st.rerun()


def _remember(mapping: ColumnMapping, file_name: str) -> None:
    """Save a confirmed mapping (under the source name typed in the form, if any) and say so."""
    if said := profiles.remember(mapping, file_name, st.session_state.get(profiles.SOURCE_NAME) or None):
        state.notice(said)


def _can_read_again() -> bool:
    return uploaded is not None or workspace.meta() is not None


def _mapping_form(mapping: ColumnMapping, sheet: str, submit_label: str) -> None:
    """One select box per column of the header: which field it feeds, or ignore it."""
    options = mapping_choices()
    with st.form(keys.MAPPING_FORM):
        where = "read by position (no header row)" if mapping.positional else f"header in row {mapping.header_row}"
        st.caption(f"Sheet {md_escape(repr(sheet))}, {where}. "
                   "Pick the field each column feeds; '(ignore)' skips it.")
        columns = st.columns(3)
        for index, header in enumerate(mapping.headers):
            if not header.strip() and mapping.fields[index] is None:
                continue
            columns[index % 3].selectbox(
                f"{md_escape(header.strip() or '(blank header)')} (column {index + 1})", options,
                index=options.index(mapping.fields[index]), key=f"{keys.MAP_COLUMN}{index}",
                format_func=choice_label,
            )
        st.text_input("Remember this mapping as (optional: a source name, e.g. Kumasi branch)",
                      key=profiles.SOURCE_NAME, max_chars=100,
                      help="The mapping is remembered for files with the same headers either way; a name "
                           "lets you and your colleagues pick it by name later")
        submitted = st.form_submit_button(submit_label, type="primary")
    if not submitted or not _can_read_again():
        return
    fields = tuple(st.session_state.get(f"{keys.MAP_COLUMN}{i}", f) for i, f in enumerate(mapping.fields))
    try:
        new = mapping.with_fields(fields)
    except UsageError as exc:
        st.error(str(exc), icon=":material/block:")
        return
    _read_again("Reading the file with your mapping...", sheet, new, remember=True)


refusal = state.get(keys.REFUSAL)
if refusal:
    st.error(md_escape(refusal), icon=":material/block:")
    steps.show_read_error()
    draft = state.get(keys.DRAFT_MAPPING)
    if draft is not None and uploaded is not None:
        _, sheet, mapping = draft
        st.subheader("Fix the column mapping")
        _mapping_form(mapping, sheet, "Use this mapping")
    st.stop()

upload = state.upload()
if upload is None:
    result = state.import_result()
    if result is not None:
        st.info(f"Last import: {result.message}. See the Import page for its failure report.", icon=":material/info:")
    st.info("Choose a file above to begin. Not sure of the layout? Start from the template.", icon=":material/info:")
    workspace.show_open_workspaces()
    st.stop()

checked = upload.checked
st.subheader(md_escape(upload.file_name))
try:
    reviewed = reviewed_run(engine(), upload.sha256, upload.run_sheet, workspace.workspace_id())
except DatabaseError:
    reviewed = None
if reviewed is not None:  # a plain import of these bytes never adopts that run (ResumeRefused / a new run)
    run_id, did = reviewed[0], reviewed[2]
    st.warning(f"Run #{run_id} of this file was cut off, and it was imported from a reviewed copy with fixes "
               f"({md_escape(did)}). Resume it with those fixes from History (no upload needed). Importing this "
               f"upload instead starts a new run of the file as it is: the earlier fixes are not in it.",
               icon=":material/resume:")
    st.page_link("views/history.py", label=f"Resume run #{run_id} with its fixes in History",
                 icon=":material/history:")
failing = len(checked.errors)
st.write(
    f"**{checked.total:,}** rows read from sheet **{md_escape(upload.sheet)}** ({upload.format.upper()}): "
    f":material/check_circle: {checked.total - failing:,} valid, :material/cancel: {failing:,} failing so far."
)

if _can_read_again() and len(upload.sheet_names) > 1:
    if st.session_state.get(keys.SHEET) not in upload.sheet_names:
        st.session_state[keys.SHEET] = upload.sheet
    chosen = st.selectbox("Sheet", upload.sheet_names, key=keys.SHEET,
                          help="The first sheet whose header has the required columns was picked for you")
    if chosen != upload.sheet:
        _read_again(f"Reading sheet {md_escape(chosen)}...", chosen)
elif len(upload.sheet_names) > 1:
    st.caption(f"Sheets in the file: {md_escape(', '.join(upload.sheet_names))}. Upload it again to pick another one.")

mapping = upload.mapping
st.markdown("#### Columns")
profiles.show_notice(upload, _read_again)
lines = [
    f"- **{md_escape(header.strip() or '(blank)')}** → {choice_label(field)}"
    for header, field in zip(mapping.headers, mapping.fields, strict=True) if field is not None
]
st.markdown(
    ("Read by position (no header row): columns A-E are shipping mark, first and last name, email, phone.\n\n"
     if mapping.positional else f"Header found in row {mapping.header_row}.\n\n") + "\n".join(lines)
)
if mapping.unknown_columns:
    st.caption("Ignored columns (not customer fields): " + md_escape(", ".join(mapping.unknown_columns)))
if upload.report is not None:
    st.info(md_escape(upload.report.describe()), icon=":material/assignment_return:")
suggested = cleaning.show_mapping_warnings(mapping, upload.notes, checked, current)
if suggested is not None and _can_read_again():
    _read_again("Reading the file with that column mapped...", upload.sheet, suggested, remember=True)
cleaning.show_skipped_rows(upload.notes)
if _can_read_again():
    with st.expander("Change the column mapping"):
        _mapping_form(mapping, upload.sheet, "Apply mapping")

st.markdown("#### First rows, as typed")
preview = checked.original.head(20).rename(columns=label_of)
preview.index.name = "Row"
st.dataframe(preview, width="stretch")

if st.button(f"Continue to review {checked.total:,} rows", key=keys.CONTINUE, type="primary",
             icon=":material/arrow_forward:"):
    state.free_uploaded_file()
    st.switch_page("views/review.py")
