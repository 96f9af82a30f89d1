"""The upload controller: the ONE upload a session keeps, its versions, and the session's one run result.

The session holds one parsed upload (its text frame, normalised frame and errors) and small derived
results keyed to its version; uploaded bytes are dropped from Streamlit's file store once parsed.
The keys it stores them under are in ui/keys.py.
"""

from __future__ import annotations

import contextlib
from typing import Any

import streamlit as st

from importer.api import Upload, read_upload
from importer.errors import FileRefused, MissingColumns
from importer.mapping.columns import ColumnMapping
from importer.outcomes.run_result import RunResult
from importer.server.memory import release_free_memory
from importer.settings import Settings
from ui import keys


def get(key: str, default: Any = None) -> Any:
    return st.session_state.get(key, default)


def upload() -> Upload | None:
    """The upload being worked on, if any."""
    return st.session_state.get(keys.UPLOAD)


def version() -> int:
    return st.session_state.get(keys.VERSION, 0)


def _forget_derived() -> None:
    for key in (keys.CLASSIFICATION, keys.FIX_COUNTS, keys.RESULT, keys.RESULT_FOR):
        st.session_state.pop(key, None)


def set_upload(new: Upload | None, *, keep_workspace: bool = False) -> None:
    """Replace the upload (None drops it); results derived from the old one are forgotten, and so is the
    saved workspace it came from unless `keep_workspace` (the same file, changed: ui.workspace)."""
    st.session_state[keys.VERSION] = version() + 1
    _forget_derived()
    if not keep_workspace and st.session_state.pop(keys.WORKSPACE, None) is not None:
        # The address named that workspace: a refresh must not reopen what was just replaced (bare mode
        # has no address bar).
        with contextlib.suppress(Exception):
            st.query_params.pop(keys.WORKSPACE_PARAM, None)
    if new is None:
        st.session_state.pop(keys.UPLOAD, None)
    else:
        st.session_state[keys.UPLOAD] = new
        st.session_state.pop(keys.REFUSAL, None)
        st.session_state.pop(keys.DRAFT_MAPPING, None)
    release_free_memory()


def operation(op: Any) -> None:
    """What a section just did, as an importer.review.operations operation: the next ui.workspace.set_checked
    saves it (the sections return the new Checked; the page keeps it)."""
    st.session_state[keys.LAST_OPERATION] = op


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
    st.session_state[keys.NOTICE] = text


def pop_notice() -> str | None:
    return st.session_state.pop(keys.NOTICE, None)


def read_file(
    data: bytes, file_name: str, settings: Settings, *, sheet: str | None = None,
    mapping: ColumnMapping | None = None,
) -> Upload | None:
    """What the uploader does with a file: read and check it, keep it, or keep why it was refused.

    For missing columns the detected mapping is kept too, so the user can fix it with select boxes.
    """
    st.session_state.pop(keys.RESULT, None)
    try:
        new = read_upload(data, file_name, settings, sheet=sheet, mapping=mapping)
    except FileRefused as exc:
        set_upload(None)
        st.session_state[keys.REFUSAL] = str(exc)
        st.session_state.pop(keys.DRAFT_MAPPING, None)
        if isinstance(exc, MissingColumns) and exc.mapping is not None:
            st.session_state[keys.DRAFT_MAPPING] = (file_name, exc.sheet, exc.mapping)
        return None
    set_upload(new)
    return new


def uploader_key() -> str:
    return f"{keys.UPLOADER}_{st.session_state.get(keys.UPLOADER_NONCE, 0)}"


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
        st.session_state[keys.UPLOADER_NONCE] = st.session_state.get(keys.UPLOADER_NONCE, 0) + 1
        st.session_state.pop(keys.PARSED_FILE_ID, None)
        release_free_memory()


def set_result(result: RunResult, choices: Any = None) -> None:
    """Keep a run's result as the session's one result; after a real import the upload is dropped
    (its rows are in the database now). `choices`: what else the dry run depended on (the import's
    arguments: accepted changes, blank cells)."""
    if result.dry_run:
        st.session_state[keys.RESULT_FOR] = (version(), choices)
    else:
        set_upload(None)
    st.session_state[keys.RESULT] = result


def dry_run_result(choices: Any = None) -> RunResult | None:
    """The dry run of the upload as it is now, under these choices, if one was run since they changed."""
    result = st.session_state.get(keys.RESULT)
    if result is not None and result.dry_run and st.session_state.get(keys.RESULT_FOR) == (version(), choices):
        return result
    return None


def import_result() -> RunResult | None:
    """The last real import of this session (its upload is gone)."""
    result = st.session_state.get(keys.RESULT)
    return result if result is not None and not result.dry_run else None
