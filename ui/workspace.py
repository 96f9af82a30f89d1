"""The session's upload as a saved workspace (importer.workspace.store): nothing the analyst does is lost.

- `start(data, upload)`: a file just read on Upload is kept in the database as a workspace, and the
  page's address carries its id (`?ws=12`), so a refresh (a new browser session) reopens it: `restore()`,
  which app.py calls on every run.
- `record(op, after)`: every change on Review (cell edits, bulk fixes, conversions, exclusions) is saved as
  an operation as it is made; set_checked calls it.
- `show_history()`: Review's list of what was done, with Undo, Redo and "go back to here".
- `show_open_workspaces()`: Upload's "Continue where you left off" list, with Open and Discard.
- `resume_arguments()`: what an import records so History can resume it from the workspace, no re-upload.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from typing import Any

import streamlit as st

from importer.api import Upload
from importer.errors import DatabaseError, FileRefused, ImporterError, NotYours
from importer.identity import Actor, dashboard_actor
from importer.review import operations as op_kinds
from importer.review import staleness as staleness
from importer.workspace import snapshot as ws_snapshot
from importer.workspace import store as ws
from schemas.customer import FIELD_NAMES
from ui import auth, keys, live, state
from ui.engine import engine, settings
from ui.heavy import heavy_step
from ui.render import md_escape

PARAM = keys.WORKSPACE_PARAM
HISTORY_SHOWN = 12  # history lines shown; older ones fold into "and N earlier"


def owner() -> str:
    return auth.user_name(settings())


def actor() -> Actor:
    """The signed-in account, as the engine checks ownership against it and records it (the engine, not this
    page, refuses another's workspace unless the account is an admin: importer.database.accounts)."""
    return dashboard_actor(owner())


def meta() -> tuple[ws.WorkspaceInfo, int, tuple[int, ...]] | None:
    """(info, version, active seqs) of the session's workspace, when its upload is saved as one."""
    return st.session_state.get(keys.WORKSPACE)


def workspace_id() -> int | None:
    found = meta()
    return None if found is None else found[0].id


def keep_opened(opened: ws.Opened) -> None:
    """Make an opened workspace the session's (its version, operations and excluded rows; the page's address
    names it) and offer its frame to the sessions that open the same state next (a refresh, another tab)."""
    st.session_state[keys.WORKSPACE] = (opened.info, opened.version, opened.seqs)
    st.session_state[keys.WORKSPACE_EXCLUDED] = (opened.info.id, opened.version, opened.excluded)
    _set_param(opened.info.id)
    with contextlib.suppress(DatabaseError, ImporterError):  # a refresh or another tab takes this frame
        ws.share(engine(), opened, settings())


def excluded() -> tuple[Any, ...]:
    """The workspace's excluded rows (importer.review.exclusions.Excluded records) as of the version the session
    shows: from its replay, kept up to date by each operation saved since (none without a workspace)."""
    found, kept = meta(), st.session_state.get(keys.WORKSPACE_EXCLUDED)
    if found is None or kept is None or kept[:2] != (found[0].id, found[1]):
        return ()
    return tuple(kept[2])


def _show(opened: ws.Opened) -> None:
    """A replayed workspace becomes the session's upload, with its excluded rows listed on Review."""
    state.set_upload(opened.upload, keep_workspace=True)
    keep_opened(opened)


def _set_param(workspace: int | None, *, again: bool = False) -> None:
    """Name `workspace` in the page's address (None: no workspace). `again`: send it even when the server's
    copy already has it (the browser changes its address, and history, only when the text differs)."""
    try:
        if workspace is None:
            if PARAM in st.query_params:
                del st.query_params[PARAM]
        elif again or st.query_params.get(PARAM) != str(workspace):
            st.query_params[PARAM] = str(workspace)
    except Exception:  # noqa: BLE001, S110 - AppTest and bare mode have no address bar
        pass


def start(data: bytes, upload: Upload) -> None:
    """Keep a file just read (and how it was read) as a new workspace; a failure only costs the saving."""
    try:
        with heavy_step("upload", upload.checked.total):  # the snapshot: Parquet of the checked frames
            snapshot = ws_snapshot.snapshot_bytes(upload)
        wid = ws.create_workspace(engine(), owner(), data, upload.file_name, settings(), upload.sheet,
                                  upload.mapping, rows=upload.checked.total, snapshot=snapshot)
        del snapshot
        info = ws.load_workspace(engine(), wid, settings(), seqs=(), file=False, snapshot=False).info
    except (DatabaseError, ImporterError) as exc:
        st.session_state.pop(keys.WORKSPACE, None)
        _set_param(None)
        st.warning(f"Your work on this file is not saved as you go ({exc}); it is kept only in this tab.",
                   icon=":material/cloud_off:")
        return
    keep_opened(ws.Opened(info, upload, 0, ()))


def restart(upload: Upload) -> None:
    """The Upload page read the same file again (another sheet or mapping): the workspace starts over."""
    found = meta()
    if found is None:
        return
    try:
        with heavy_step("upload", upload.checked.total):
            snapshot = ws_snapshot.snapshot_bytes(upload)
        ws.restart_workspace(engine(), found[0].id, upload.sheet, upload.mapping, upload.checked.total, snapshot,
                             actor=actor())
    except (DatabaseError, ImporterError):
        st.session_state.pop(keys.WORKSPACE, None)
        _set_param(None)
        return
    st.session_state[keys.WORKSPACE] = (replace(found[0], sheet=upload.sheet, rows=upload.checked.total), 0, ())


def change_mapping(mapping: Any) -> bool:
    """A new mapping for a file already worked on: saved as an operation and the workspace replayed with it,
    so the changes made on Review are kept (they apply to the same rows). False when there is nothing to
    keep (no workspace, or no change made yet): the caller reads the file again."""
    found = meta()
    current = state.upload()
    if found is None or current is None or not found[2]:
        return False
    info, version, seqs = found
    op = op_kinds.MappingChange(mapping, current.mapping.fields)
    try:
        with heavy_step("upload", current.checked.total), st.spinner("Reading the file with your mapping..."):
            new = ws.perform(engine(), ws.Opened(info, current, version, seqs), op, settings(), actor=actor())
    except (DatabaseError, FileRefused, ImporterError) as exc:
        st.error(md_escape(exc), icon=":material/block:")
        return True
    _show(new)
    return True


def stored_bytes() -> bytes | None:
    """The file of the session's workspace (for reading it again with another sheet or mapping)."""
    found = meta()
    if found is None:
        return None
    try:
        return ws.load_workspace(engine(), found[0].id, settings(), seqs=()).data
    except (DatabaseError, ImporterError):
        return None


def record(op: Any, after: Any) -> bool:
    """Save an operation the page applied (`after`: the new Checked) and keep the result as the upload.

    False when the session has no workspace (the caller keeps `after` unsaved)."""
    found = meta()
    current = state.upload()
    if found is None or current is None:
        return False
    info, version, seqs = found
    opened = ws.Opened(info, current, version, seqs, excluded())
    try:
        new = ws.record(engine(), opened, op, after, settings(), actor=actor())
    except (DatabaseError, ImporterError) as exc:
        st.session_state.pop(keys.WORKSPACE, None)
        _set_param(None)
        state.notice(f"This change is kept in this tab only: it could not be saved ({exc}).")
        return False
    if new.seqs[:-1] != seqs:
        state.notice("Another tab changed this file's work meanwhile: it was reloaded and your change applied "
                     "to it. Check the list of what was done.")
    state.set_upload(new.upload, keep_workspace=True)
    keep_opened(new)
    return True


def decide(op: Any) -> bool:
    """Save a decision (importer.review.decisions: it changes no row, so the upload keeps its version and what
    was derived from it). False, with a notice, when the session has no workspace or it cannot be saved."""
    found = meta()
    current = state.upload()
    if found is None or current is None:
        state.notice("Your decision was not saved: this file is not saved as a workspace (see the Upload page).")
        return False
    info, version, seqs = found
    try:
        new = ws.perform(engine(), ws.Opened(info, current, version, seqs, excluded()), op, settings(),
                         actor=actor())
    except (DatabaseError, ImporterError) as exc:
        state.notice(f"Your decision was not saved ({exc}).")
        return False
    if new.upload.checked is not current.checked:  # another tab changed the workspace: replayed, the decision applied to it
        state.set_upload(new.upload, keep_workspace=True)
    keep_opened(new)
    return True


def stash_grid_edits(grid_key: str, rows: list[int]) -> None:
    """The grid's on_change: keep what was typed ({source row: {field: text}}) before anything else runs, so
    a filter change or a page change in the same click cannot lose it; apply_pending_edits saves it."""
    edited = (st.session_state.get(grid_key) or {}).get("edited_rows") or {}
    changes: dict[int, dict[str, str]] = {}
    for position, cells in edited.items():
        fields = {f: "" if v is None else str(v) for f, v in cells.items() if f in FIELD_NAMES}
        if fields and 0 <= int(position) < len(rows):
            changes.setdefault(int(rows[int(position)]), {}).update(fields)
    if changes:
        st.session_state.setdefault(keys.PENDING_EDITS, []).append(changes)


def apply_pending_edits() -> None:
    """Save and check the cells typed since the last run (app.py, before the page).

    The typed cells leave the session only once they are saved: a click that comes while they are being
    checked (a filter or page change) stops this run at its next redraw (the spinner), and the next run
    must find them still pending. Applying them twice changes nothing: the second time no cell differs."""
    pending = st.session_state.get(keys.PENDING_EDITS)
    if not pending or state.upload() is None:
        st.session_state.pop(keys.PENDING_EDITS, None)
        return
    merged: dict[int, dict[str, str]] = {}
    for changes in pending:
        for row, fields in changes.items():
            merged.setdefault(row, {}).update(fields)
    apply_edits(merged)
    st.session_state.pop(keys.PENDING_EDITS, None)


def apply_edits(changes: dict[int, dict[str, str]]) -> None:
    """Cells typed in the grid ({source row: {field: text}}): checked at once and saved as one operation."""
    current = state.upload()
    if current is None:
        return
    checked = current.checked
    try:
        op = op_kinds.CellEdit.of(checked, {r: f for r, f in changes.items() if r in checked.original.index})
    except ImporterError as exc:
        state.notice(f"Your edit was not applied: {exc}.")
        return
    if op is None:
        return
    rows = sorted({edit[0] for edit in op.edits})
    with heavy_step("re-validation", checked), st.spinner(f"Checking {len(rows):,} edited row(s)..."):
        new = op.apply(checked, settings())
    still = sum(1 for row in rows if row in new.errors)
    set_checked(new, op)
    state.notice(f"Saved and checked {len(rows):,} edited row(s): {len(rows) - still:,} now valid, "
                 f"{still:,} still failing.")


def _reopen(workspace: int, *, why: str) -> bool:
    """Replay a workspace into the session (a refresh, Open, undo or redo); False with a message if gone, or
    with the engine's refusal (naming the owner and whom to ask) if it is another account's."""
    try:
        # The same state another tab of this server shows is shared, not replayed (importer.workspace.shared).
        opened = ws.shared_workspace(engine(), workspace, settings(), actor=actor())
        if opened is None:
            stored = ws.load_workspace(engine(), workspace, settings(), seqs=(), file=False, snapshot=False,
                                       actor=actor())
            with heavy_step("reopen", stored.info.rows), st.spinner(f"{why} {md_escape(stored.info.file_name)}..."):
                del stored
                opened = ws.open_workspace(engine(), workspace, settings(), actor=actor())
    except NotYours as exc:
        st.error(md_escape(exc), icon=":material/block:")
        st.session_state.pop(keys.WORKSPACE, None)
        _set_param(None)
        return False
    except (DatabaseError, FileRefused, ImporterError) as exc:
        st.warning(md_escape(exc), icon=":material/warning:")
        st.session_state.pop(keys.WORKSPACE, None)
        _set_param(None)
        return False
    _show(opened)
    return True


def restore(page: str = "") -> None:
    """On every run (app.py): a new session whose address names a workspace reopens it (a refresh or a
    link); a session with a workspace keeps its id in the address. `page`: the page this run shows; on the
    first run after a page switch the id is sent again, since the switch can leave the browser's address
    without it while the server believes it is there."""
    found = meta()
    if found is not None:
        if state.upload() is None:  # imported or dropped: the address no longer names it
            st.session_state.pop(keys.WORKSPACE, None)
            _set_param(None)
        else:
            switched = st.session_state.get(keys.WORKSPACE_PARAM_PAGE) != page
            st.session_state[keys.WORKSPACE_PARAM_PAGE] = page
            _set_param(found[0].id, again=switched)
        return
    wanted = st.query_params.get(PARAM)
    if not wanted or state.upload() is not None or state.import_result() is not None:
        if wanted and state.import_result() is not None:
            _set_param(None)
        return
    try:
        workspace = int(wanted)
    except ValueError:
        _set_param(None)
        return
    if _reopen(workspace, why="Reopening"):
        state.notice("Your work on this file was restored: every change you made is back.")


def undo_redo(step: str) -> None:
    found = meta()
    if found is None:
        return
    try:
        entry = (ws.undo if step == "undo" else ws.redo)(engine(), found[0].id, actor())
    except (DatabaseError, ImporterError) as exc:
        st.error(md_escape(exc), icon=":material/block:")
        return
    if entry is not None and _reopen(found[0].id, why="Undoing" if step == "undo" else "Redoing"):
        state.notice(f"{'Undone' if step == 'undo' else 'Redone'}: {entry.summary}.")


def go_to(seq: int) -> None:
    found = meta()
    if found is None:
        return
    try:
        ws.go_to(engine(), found[0].id, seq, actor())
    except (DatabaseError, ImporterError) as exc:
        st.error(md_escape(exc), icon=":material/block:")
        return
    if _reopen(found[0].id, why="Going back in"):
        state.notice("Stepped back: the changes after that point are undone (Redo brings them back).")


def show_history() -> None:
    """What was done to this file, newest first, with Undo, Redo and "go back to here" (Review)."""
    found = meta()
    if found is None:
        return
    try:
        entries = ws.history(engine(), found[0].id)
    except DatabaseError as exc:
        st.caption(f"The list of what was done is not available: {exc}")
        return
    active = [e for e in entries if not e.undone]
    undone = [e for e in entries if e.undone]
    with st.expander(f"What you did ({len(active):,} change{'' if len(active) == 1 else 's'}"
                     f"{f', {len(undone):,} undone' if undone else ''}) · saved as you go",
                     expanded=bool(entries)):
        left, right, _ = st.columns([1, 1, 4])
        if left.button("Undo", key=keys.WORKSPACE_UNDO, icon=":material/undo:", disabled=not active,
                       help=f"Undo: {active[-1].summary}" if active else "Nothing to undo"):
            undo_redo("undo")
            st.rerun()
        if right.button("Redo", key=keys.WORKSPACE_REDO, icon=":material/redo:", disabled=not undone,
                        help=f"Redo: {undone[0].summary}" if undone else "Nothing to redo"):
            undo_redo("redo")
            st.rerun()
        if not entries:
            st.caption("Nothing yet. Every edit, fix, conversion and exclusion is listed here and saved at once: "
                       "a refresh or a closed tab loses nothing (reopen the file from the Upload page).")
            return
        for entry in list(reversed(entries))[:HISTORY_SHOWN]:
            text, action = st.columns([6, 1], vertical_alignment="center")
            mark = ":gray[~~" + md_escape(entry.summary) + "~~ (undone)]" if entry.undone else md_escape(entry.summary)
            text.markdown(f"{entry.seq}. {mark}")
            if not entry.undone and entry is not active[-1] and action.button(
                    "Back to here", key=f"{keys.WORKSPACE_GO_TO}{entry.seq}",
                    help="Undo every change after this one"):
                go_to(entry.seq)
                st.rerun()
        if len(entries) > HISTORY_SHOWN:
            st.caption(f"and {len(entries) - HISTORY_SHOWN:,} earlier")


def show_open_workspaces() -> None:
    """Upload's list of the analyst's saved files, with Open (replayed) and Discard; a file a run is importing
    now says so instead. A small part that redraws itself every few seconds (ui.live): another tab's or
    colleague's import shows, and the workspace it completes leaves the list, without a click."""
    st.fragment(_open_workspaces, run_every=live.refresh_seconds())(workspace_id())


def _open_workspaces(current: int | None) -> None:
    try:
        found = [w for w in ws.list_workspaces(engine(), owner()) if w.id != current]
        importing = {run.workspace_id: run for run in live.database_status().running if run.workspace_id}
    except DatabaseError:
        return
    if not found:
        return
    st.subheader("Continue where you left off")
    st.caption(f"Files you started reviewing, with every change you made. Unused ones go after "
               f"{settings().workspace_days} days.")
    for info in found[:10]:
        text, open_button, discard = st.columns([6, 1, 1], vertical_alignment="center")
        text.markdown(f"**{md_escape(info.file_name)}** · {info.rows:,} rows · {info.operations:,} "
                      f"change{'' if info.operations == 1 else 's'} · {staleness.ago(info.updated_at)}")
        if (run := importing.get(info.id)) is not None:
            who = f" by {md_escape(run.user_name)}" if run.user_name else ""
            text.caption(f":material/hourglass_top: Run #{run.run_id} is importing it now{who} "
                         f"({run.rows_done:,} of {run.total:,} rows); it leaves this list when the import ends.")
            continue
        if open_button.button("Open", key=f"{keys.WORKSPACE_OPEN}{info.id}", icon=":material/folder_open:"):
            state.set_upload(None)
            if _reopen(info.id, why="Opening"):
                state.notice(f"Reopened {info.file_name} with your {info.operations:,} change(s).")
                st.switch_page("views/review.py")
        if discard.button("Discard", key=f"{keys.WORKSPACE_DISCARD}{info.id}", icon=":material/delete:"):
            try:
                ws.discard_workspace(engine(), info.id, actor())
            except (DatabaseError, ImporterError) as exc:
                st.error(md_escape(exc), icon=":material/block:")
            else:
                state.notice(f"Discarded {info.file_name}.")
                st.rerun(scope="app")


def resume_arguments() -> dict[str, Any]:
    """import_upload's `workspace` argument for the session's upload: (id, active seqs), or nothing."""
    found = meta()
    return {} if found is None else {"workspace": (found[0].id, found[2])}


def set_checked(checked: Any, op: Any = None) -> None:
    """The same upload after edits, fixes or exclusions; `op` (an importer.review.operations operation, else the
    one a section left with state.operation) is what was done, saved at once in the session's workspace so
    that a refresh or a closed tab loses nothing."""
    current = state.upload()
    if current is None:
        return
    op = op if op is not None else st.session_state.pop(keys.LAST_OPERATION, None)
    if op is not None and record(op, checked):
        return
    state.set_upload(replace(current, checked=checked), keep_workspace=True)
