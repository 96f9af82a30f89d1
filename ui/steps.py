"""The dashboard's side of server steps (importer.server.steps): reading a new file and comparing it with the
database run in a server thread, so clicking ahead loses nothing.

    steps.start_read(data, name)     # views/upload.py, for a file just chosen
    steps.wait_here_for_read()       # the Upload page: its progress in place, then the result
    steps.collect()                  # any page, before it looks at the upload: a read that ended elsewhere
    if steps.show_running(): ...     # Review and Import without an upload: "Still reading x.xlsx (45%)"
    found = steps.run_here(COMPARE, token, work, ...)   # ui/existing.py: the comparison, waited for in place

A page that needs the result waits for it in place (leaving the page leaves the step running). Other pages
show `show_running`: a small fragment redrawn every second while a step of this session runs, which
reruns the whole app once when it ends, so that the page picks the result up. The session owns its steps:
the janitor (ui.heavy.watch_session) cancels them and frees their results when its tab is closed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Hashable
from functools import partial
from typing import Any

import sqlalchemy as sa
import streamlit as st

from importer.errors import ImporterError, MissingColumns
from importer.server import steps
from importer.server.reading import ReadOutcome, read_for_review
from importer.server.steps import Step, StepState
from importer.settings import Settings
from importer.workspace import store as ws
from ui import keys, profiles, state, workspace
from ui.engine import engine, settings
from ui.heavy import WAIT_ICON, heavy_cost_for_file, server_slot, session_owner
from ui.render import md_escape

READ, COMPARE = "read", "compare"
REFRESH_SECONDS = 1.0
WAIT_SECONDS = 0.25  # how often a page waiting in place redraws its progress
OWNER = "steps_owner"  # this session's owner name when it has no session id (bare mode)
ANNOUNCED = "steps_announced"  # the id of the ended step the fragment last reran the app for
READ_ERROR = "steps_read_error"  # details of a read that stopped on an unexpected error, for an administrator


def owner() -> str:
    """Who this session's steps belong to: its browser session (the janitor drops them when it closes)."""
    found = session_owner()
    if found is not None:
        return found
    if OWNER not in st.session_state:
        st.session_state[OWNER] = uuid.uuid4().hex
    return str(st.session_state[OWNER])


# --- words (pure) ----------------------------------------------------------------------------------------


def line(step: Step, *, here: bool = False) -> str:
    """What a running step is doing, Markdown-safe: `Still reading customers.xlsx (45%): checking 100,000
    rows`, or its place in the memory queue. `here`: on the page that waits for it ("Reading and checking")."""
    name = md_escape(step.subject)
    if step.kind == READ:
        what = f"Reading and checking {name}" if here else f"Still reading {name}"
    else:
        what = (f"Comparing the rows of {name} with the customers already in the database" if here
                else f"Still comparing the rows of {name} with the customers already in the database")
    if step.state is StepState.WAITING:
        waiting = step.waiting.message() if step.waiting is not None else "Waiting for a turn"
        return f"{what}: {waiting[0].lower()}{waiting[1:]}. It starts by itself."
    phrase = f": {md_escape(step.phrase)}" if step.phrase else ""
    return f"{what} ({step.percent}%){phrase}"


def waited_line(step: Step) -> str | None:
    """`Waited 12 s for another import to finish.` after a step waited for the memory budget."""
    if step.waited is None:
        return None
    first, last = step.waited
    return f"Waited {last.waited_s:.0f} s for another {first.holder or 'step'} to finish."


# --- reading a new file ----------------------------------------------------------------------------------


def _read(database: sa.Engine, data: bytes, file_name: str, config: Settings, who: str, step: Step) -> ReadOutcome:
    return read_for_review(database, data, file_name, config, owner=who, step=step)


def start_read(data: bytes, file_name: str) -> Step:
    """Read a file just chosen on Upload in a server thread. The session's previous upload goes now (the
    new file replaces it whatever the read finds), and so does a read still going."""
    state.set_upload(None)
    for key in (keys.RESULT, keys.REFUSAL, keys.DRAFT_MAPPING, profiles.APPLIED, READ_ERROR):
        st.session_state.pop(key, None)
    config = settings()
    cost = heavy_cost_for_file(data, file_name)  # from the workbook's declared sizes: bytes, not rows
    return steps.start(owner(), READ, partial(_read, engine(), data, file_name, config, workspace.owner()),
                       subject=file_name, slot=server_slot("upload", cost_mb=cost), phrase="waiting for its turn")


def reading() -> Step | None:
    """This session's read, going or ended and not yet picked up."""
    return steps.current(owner(), READ)


def collect() -> bool:
    """Pick up this session's read if it has ended (whichever page the analyst is on): its upload becomes
    the session's, with its workspace, or its refusal is kept for Upload to show. Whether one was picked up."""
    step = steps.take(owner(), READ)
    if step is None:
        return False
    if step.state is StepState.DONE:
        _keep(step.result)
    elif step.state is StepState.FAILED:
        _keep_failure(step)
    return True


def _keep(outcome: ReadOutcome) -> None:
    """What the Upload page did with a read in its own run (state.read_file, the remembered mapping,
    workspace.start), from the outcome of the read in the server thread."""
    if outcome.upload is None:
        refused = outcome.refused
        state.set_upload(None)
        st.session_state[keys.REFUSAL] = str(refused)
        if isinstance(refused, MissingColumns) and refused.mapping is not None:
            st.session_state[keys.DRAFT_MAPPING] = (outcome.file_name, refused.sheet, refused.mapping)
        return
    upload = outcome.upload
    state.set_upload(upload)
    if outcome.profile is not None and outcome.detected is not None:
        st.session_state[profiles.APPLIED] = (outcome.profile.id, outcome.profile.notice, outcome.detected.fields,
                                              upload.sha256)
    if outcome.workspace is not None:
        workspace.keep_opened(ws.Opened(outcome.workspace, upload, 0, ()))
    else:
        st.warning(f"Your work on this file is not saved as you go ({md_escape(outcome.not_saved or '')}); it "
                   "is kept only in this tab.", icon=":material/cloud_off:")


def _keep_failure(step: Step) -> None:
    """A read that raised: a clear sentence for the analyst (the Upload page shows it as a refusal)."""
    error = step.error
    name = step.subject
    if isinstance(error, ImporterError):  # the database, a limit...: its own words say what to do
        st.session_state[keys.REFUSAL] = f"{name} could not be read: {error}"
    else:
        st.session_state[keys.REFUSAL] = (f"Reading {name} stopped on an unexpected error. Upload it again; if it "
                                          "happens again, tell the administrator (the details are below).")
        st.session_state[READ_ERROR] = f"{type(error).__name__}: {error}"


def show_read_error() -> None:
    """The details of a read that stopped on an unexpected error, folded away for an administrator."""
    if details := st.session_state.get(READ_ERROR):
        with st.expander("Details"):
            st.code(details, language=None)


def show_no_upload(nothing: str) -> None:
    """Review's and Import's page without an upload and no read going: why the last file was refused (the
    Upload page says how to fix it), or `nothing` ("There is no file to review yet.")."""
    if refusal := state.get(keys.REFUSAL):
        st.error(md_escape(refusal), icon=":material/block:")
        st.page_link("views/upload.py", label="Fix it on the Upload page", icon=":material/upload_file:")
        return
    st.info(nothing, icon=":material/info:")
    st.page_link("views/upload.py", label="Upload a file", icon=":material/upload_file:")


def wait_here_for_read() -> None:
    """The Upload page: show this session's read as it goes and pick up its result when it ends. Opening
    another page stops only this page's run: the read goes on, and that page shows it."""
    step = reading()
    if step is None:
        return
    bar = st.empty()
    while not step.wait(WAIT_SECONDS):
        _draw(bar, step, here=True)  # where Streamlit stops this run if the analyst went elsewhere
    bar.empty()
    if (said := waited_line(step)) is not None:
        st.caption(said)
    collect()


def _draw(placeholder, step: Step, *, here: bool) -> None:
    if step.state is StepState.WAITING:
        placeholder.info(line(step, here=here), icon=WAIT_ICON)
    else:
        placeholder.progress(step.fraction, text=line(step, here=here))


# --- any page: what is still going -----------------------------------------------------------------------


def show_running() -> bool:
    """This session's steps still going, redrawn every second; the whole app reruns once when one
    ends (so the page picks up its result). Whether any is going (nothing is drawn otherwise)."""
    if not any(not s.finished for s in steps.steps_for(owner())):
        return False
    _running()
    return True


@st.fragment(run_every=REFRESH_SECONDS)
def _running() -> None:
    mine = sorted(steps.steps_for(owner()), key=lambda s: s.kind != READ)
    ended = [s for s in mine if s.finished]
    if (ended and st.session_state.get(ANNOUNCED) != ended[0].id) or not mine:  # ended, or stopped
        st.session_state[ANNOUNCED] = ended[0].id if ended else None
        st.rerun(scope="app")
    for step in mine:
        if not step.finished:
            _draw(st.empty(), step, here=False)
            if step.kind == READ:
                st.button("Stop reading", key=f"steps_cancel_{step.kind}", icon=":material/stop_circle:",
                          on_click=_stop, args=(step.kind,),
                          help="Stops reading the file; upload it again to start over.")


def _stop(kind: str) -> None:
    steps.cancel(owner(), kind)


# --- a step the page waits for in place ------------------------------------------------------------------


def run_here(kind: str, token: Hashable, work: Callable[[Step], Any], *, subject: str, rows: int, label: str) -> Any:
    """work(step)'s result, computed in a server thread (`label`: what the memory queue calls it, e.g.
    "database check"), waited for here with its progress. The session's step of this kind for the same
    `token` is picked up where it is (the analyst left the page and came back); one for another token is
    replaced. What the work raised is raised here."""
    who = owner()
    step = steps.current(who, kind)
    if step is None or step.token != token or step.state is StepState.CANCELLED:
        step = steps.start(who, kind, work, subject=subject, token=token, slot=server_slot(label, rows))
    bar = st.empty()
    while not step.wait(WAIT_SECONDS):
        _draw(bar, step, here=True)
    bar.empty()
    steps.take(who, kind, step.id)
    if step.state is StepState.FAILED and step.error is not None:
        raise step.error
    if step.state is StepState.CANCELLED:
        st.rerun()  # cancelled by a newer request of this session: run the page again for it
    return step.result
