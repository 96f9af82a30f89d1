"""Download buttons whose file is built on disk and sent from disk (importer.output.downloads).

    downloads.offer_file(container, "Export as Excel", partial(export_file, engine, "xlsx"),
                         file_name="customers.xlsx", mime="application/zip", key=keys.CUSTOMERS_XLSX)

Served through importer.server.serve (the deployed dashboard, the browser tests): the button builds the file in
chunks to a temporary file, and a link under it downloads that file from the front door's route, a chunk at a
time; the file is deleted once it is sent, or when the tab closes. The session keeps only the token.
Without the front door (`streamlit run app.py` alone, AppTest), it is Streamlit's own download button, which
builds the file when clicked and holds it in memory while it is offered.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from importer.output import downloads
from importer.server.front_door import serving_downloads

_TOKEN = "_download_token_"  # + key: (token, file name, size) of the file built for that button


def _owner() -> str | None:
    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else None


def _size(size: int) -> str:
    return f"{size / 1_048_576:,.1f} MB" if size >= 1_048_576 else f"{max(1, size // 1024):,} KB"


def _in_memory(build: Callable[[], Path]) -> bytes:
    """The built file's bytes, and the file deleted (Streamlit's own button, without the front door)."""
    path = build()
    try:
        return path.read_bytes()
    finally:
        downloads.delete_file(path)


def offer_file(container: Any, label: str, build: Callable[[], Path], *, file_name: str, mime: str, key: str,
               disabled: bool = False, width: str = "content") -> None:
    """A button `label` that builds the file (build() writes it and gives its path), then a link that
    downloads it from disk."""
    if not serving_downloads():
        container.download_button(label, key=key, data=lambda: _in_memory(build), file_name=file_name, mime=mime,
                                  icon=":material/download:", on_click="ignore", width=width, disabled=disabled)
        return
    held = st.session_state.get(_TOKEN + key)
    if held is not None and held[1] != file_name:  # built for other filters or another run: it goes
        downloads.discard(held[0])
        held = st.session_state[_TOKEN + key] = None
    if container.button(label, key=key, icon=":material/download:", width=width, disabled=disabled):
        if held is not None:
            downloads.discard(held[0])
        with st.spinner(f"Building {file_name}..."):
            path = build()
        token = downloads.offer(path, file_name, mime, owner=_owner())
        held = st.session_state[_TOKEN + key] = (token, file_name, path.stat().st_size)
    if held is None or disabled:
        return
    if downloads.offered(held[0]) is None:  # sent, or expired: the button builds it again
        st.session_state[_TOKEN + key] = None
        return
    container.link_button(f"Save {held[1]} ({_size(held[2])})", downloads.ROUTE + held[0],
                          icon=":material/file_save:", width=width)
