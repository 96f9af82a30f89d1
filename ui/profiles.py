"""Upload's remembered mappings (importer.mapping.profiles): a mapping the analyst confirms is saved under its file's
header signature, and under a source name when she gives one; the next file with the same headers is read
with it, with a notice ("Mapping from kumasi-oct.xlsx, saved 3 Nov") and a way to drop it.

- A new file's read (importer.server.reading, in a server thread: ui/steps.py) reads it again with the saved
  mapping of its headers, if there is one, and keeps APPLIED for the notice.
- `remember(mapping, file_name)`: the mapping form's submit: save it.
- `show_notice(read_again)`: the notice, "Don't use it" (read with the detected mapping) and "Forget it".
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from importer.api import Upload
from importer.errors import DatabaseError, UsageError
from importer.mapping.columns import ColumnMapping
from importer.mapping.profiles import delete_profile, save_profile
from ui import auth, state
from ui.engine import engine, settings
from ui.render import md_escape

APPLIED = "profile_applied"  # (profile id, notice, detected fields, file sha256): the saved mapping in use
SOURCE_NAME = "upload_profile_name"  # the mapping form's "remember as" text box
DROP = "profile_drop"
FORGET = "profile_forget"


def remember(mapping: ColumnMapping, file_name: str, name: str | None = None) -> str | None:
    """Save a mapping the analyst confirmed; a sentence saying so, or why not."""
    try:
        profile = save_profile(engine(), mapping, name=name, file_name=file_name,
                               user=auth.user_name(settings()))
    except UsageError as exc:
        return f"The mapping is used for this file but not remembered: {exc}."
    except DatabaseError as exc:
        return f"The mapping is used for this file but could not be remembered ({exc})."
    st.session_state.pop(APPLIED, None)
    what = f" as '{profile.name}'" if profile.name else ""
    return f"Mapping remembered{what}: the next file with these headers is mapped the same way."


def show_notice(upload: Upload, read_again: Callable[[str, str | None, ColumnMapping | None], None]) -> None:
    """The saved mapping this file was read with, and the ways out of it."""
    applied = state.get(APPLIED)
    if applied is None or applied[3] != upload.sha256:
        return
    profile_id, notice, detected, _ = applied
    text, drop, forget = st.columns([5, 1.3, 1.3], vertical_alignment="center")
    text.info(f"{md_escape(notice)}: this file has the same headers, so its columns are mapped the same way.",
              icon=":material/bookmark:")
    if drop.button("Don't use it", key=DROP, icon=":material/close:",
                   help="Read this file with the mapping detected from its headers instead"):
        st.session_state.pop(APPLIED, None)
        try:
            mapping: ColumnMapping | None = upload.mapping.with_fields(detected)
        except UsageError:  # the detected mapping misses a required column: detection says which
            mapping = None
        read_again("Reading the file with the detected mapping...", upload.sheet, mapping)
    if forget.button("Forget it", key=FORGET, icon=":material/delete:",
                     help="Delete the saved mapping: later files are mapped from their headers"):
        try:
            delete_profile(engine(), profile_id)
        except DatabaseError as exc:
            st.error(f"{exc}", icon=":material/block:")
            return
        st.session_state.pop(APPLIED, None)
        state.notice("The saved mapping is forgotten; this file keeps it until you change it.")
        st.rerun()
