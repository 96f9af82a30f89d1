"""Session state of one user: named keys, and the ONE upload the dashboard keeps.

The session holds one parsed upload (its text frame, normalised frame and errors) and small derived
results keyed to its version; uploaded bytes are dropped from Streamlit's file store once parsed.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import streamlit as st

from importer.errors import FileRefused, MissingColumns
from importer.mapping import ColumnMapping
from importer.memory import release_free_memory
from importer.pipeline import Upload, read_upload
from importer.results import RunResult
from importer.settings import Settings
from importer.validate import Checked

# --- session values -----------------------------------------------------------------------------
UPLOAD = "upload"  # importer.pipeline.Upload: the one file being worked on
VERSION = "upload_version"  # bumped whenever UPLOAD changes; derived results carry it
REFUSAL = "upload_refusal"  # one-line reason the last file was refused
DRAFT_MAPPING = "upload_draft_mapping"  # (file name, sheet, ColumnMapping) to fix missing columns
PARSED_FILE_ID = "upload_parsed_file_id"  # uploader file id already parsed, so reruns do not re-read
UPLOADER_NONCE = "upload_nonce"  # part of the uploader key: a new value empties the widget
EXISTING = "review_existing"  # (version, {row: (RowError, ...)}) rows already in the database
FIX_COUNTS = "review_fix_counts"  # (version, options, {fix key: rows it would change})
# The ONE run result a session keeps: the dry run of the current upload version, or the last real
# import (after which the upload is dropped). Its failures are not copies: a dry run's stream from the
# upload's own frame, a real run's from the database.
RESULT = "run_result"
RESULT_FOR = "run_result_version"  # upload version a dry-run RESULT was computed for
NOTICE = "notice"  # one message shown once on the next run (what an action just did)
PASSWORD_OK = "auth_password_ok"
USER_NAME = "auth_user_name"
UNDO_CONFIRM = "history_undo_pending"  # run id waiting for the user's confirmation

# --- widget keys (stable: tests and the browser tests find widgets by them) ------------------------
LOGIN_NAME = "login_name"
LOGIN_PASSWORD = "login_password"
UPLOADER = "upload_file"  # + "_" + nonce
SHEET = "upload_sheet"
MAPPING_FORM = "upload_mapping_form"
MAP_COLUMN = "upload_map_"  # + column index
CONTINUE = "upload_continue"
REASON_FILTER = "review_reason"
GRID = "review_grid"
REVALIDATE = "review_revalidate"
EXCLUDE = "review_exclude"
FIX_ONLY_FAILING = "review_fix_only_failing"
FILL_REGION = "review_fill_region"
FIX_APPLY = "review_fix_"  # + fix key
DUPLICATE_PICK = "review_duplicate"
DRY_RUN_BUTTON = "import_dry_run"
IMPORT_BUTTON = "import_start"
IMPORT_CSV = "import_report_csv"
IMPORT_XLSX = "import_report_xlsx"
HISTORY_RUN = "history_run"
HISTORY_CSV = "history_report_csv"
HISTORY_XLSX = "history_report_xlsx"
UNDO = "history_undo"
UNDO_YES = "history_undo_confirm"
UNDO_NO = "history_undo_cancel"
RESUME_FILE = "history_resume_file"
RESUME_BUTTON = "history_resume"


def get(key: str, default: Any = None) -> Any:
    return st.session_state.get(key, default)


def upload() -> Upload | None:
    """The upload being worked on, if any."""
    return st.session_state.get(UPLOAD)


def version() -> int:
    return st.session_state.get(VERSION, 0)


def _forget_derived() -> None:
    for key in (EXISTING, FIX_COUNTS, RESULT, RESULT_FOR):
        st.session_state.pop(key, None)


def set_upload(new: Upload | None) -> None:
    """Replace the upload (None drops it); results derived from the old one are forgotten."""
    st.session_state[VERSION] = version() + 1
    _forget_derived()
    if new is None:
        st.session_state.pop(UPLOAD, None)
    else:
        st.session_state[UPLOAD] = new
        st.session_state.pop(REFUSAL, None)
        st.session_state.pop(DRAFT_MAPPING, None)
    release_free_memory()


def set_checked(checked: Checked) -> None:
    """The same upload after edits, fixes or exclusions."""
    current = upload()
    if current is not None:
        set_upload(replace(current, checked=checked))


def cached(key: str, token: Any) -> Any:
    """A derived value stored under key if it was computed for token (e.g. the upload version)."""
    stored = st.session_state.get(key)
    if stored is not None and stored[0] == token:
        return stored[1]
    return None


def store(key: str, token: Any, value: Any) -> Any:
    st.session_state[key] = (token, value)
    return value


def notice(text: str) -> None:
    st.session_state[NOTICE] = text


def pop_notice() -> str | None:
    return st.session_state.pop(NOTICE, None)


def read_file(
    data: bytes, file_name: str, settings: Settings, *, sheet: str | None = None,
    mapping: ColumnMapping | None = None,
) -> Upload | None:
    """What the uploader does with a file: read and check it, keep it, or keep why it was refused.

    For missing columns the detected mapping is kept too, so the user can fix it with select boxes.
    """
    st.session_state.pop(RESULT, None)
    try:
        new = read_upload(data, file_name, settings, sheet=sheet, mapping=mapping)
    except FileRefused as exc:
        set_upload(None)
        st.session_state[REFUSAL] = str(exc)
        st.session_state.pop(DRAFT_MAPPING, None)
        if isinstance(exc, MissingColumns) and exc.mapping is not None:
            st.session_state[DRAFT_MAPPING] = (file_name, exc.sheet, exc.mapping)
        return None
    set_upload(new)
    return new


def uploader_key() -> str:
    return f"{UPLOADER}_{st.session_state.get(UPLOADER_NONCE, 0)}"


def free_uploaded_file() -> None:
    """Drop the uploaded bytes from Streamlit's file store and empty the uploader widget."""
    from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    key = uploader_key()
    uploaded = st.session_state.get(key)
    ctx = get_script_run_ctx()
    if uploaded is not None and ctx is not None and isinstance(ctx.uploaded_file_mgr, MemoryUploadedFileManager):
        ctx.uploaded_file_mgr.remove_file(session_id=ctx.session_id, file_id=uploaded.file_id)
    if uploaded is not None:
        st.session_state[UPLOADER_NONCE] = st.session_state.get(UPLOADER_NONCE, 0) + 1
        st.session_state.pop(PARSED_FILE_ID, None)
        release_free_memory()


def set_result(result: RunResult) -> None:
    """Keep a run's result as the session's one result; after a real import the upload is dropped
    (its rows are in the database now)."""
    if result.dry_run:
        st.session_state[RESULT_FOR] = version()
    else:
        set_upload(None)
    st.session_state[RESULT] = result


def dry_run_result() -> RunResult | None:
    """The dry run of the upload as it is now, if one was run since its last change."""
    result = st.session_state.get(RESULT)
    if result is not None and result.dry_run and st.session_state.get(RESULT_FOR) == version():
        return result
    return None


def import_result() -> RunResult | None:
    """The last real import of this session (its upload is gone)."""
    result = st.session_state.get(RESULT)
    return result if result is not None and not result.dry_run else None
