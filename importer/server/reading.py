"""The Upload page's read of a new file as one server step (importer.server.steps): read, map and check it,
read it again with its headers' remembered mapping, and keep it as a new workspace.

    outcome = read_for_review(engine, data, "customers.xlsx", settings, owner="ama", step=step)
    outcome.upload or outcome.refused        # the checked upload, or why the file cannot be used
    outcome.workspace or outcome.not_saved   # the new workspace (WorkspaceInfo), or why it is not saved

What the page did in its own script run before, so the same outcomes: a refused file (FileRefused: the
missing-columns one carries the detected mapping for the mapping form), a saved mapping that does not fit
the file after all (the detected one stands), a workspace that cannot be saved (the work is kept only in
the tab). `step` (optional) is told how far it is and stops the work when cancelled.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from importer.api import Upload, read_unchecked, with_checked
from importer.checks.validate import check_frame
from importer.errors import DatabaseError, FileRefused, ImporterError, UsageError
from importer.mapping.columns import ColumnMapping
from importer.mapping.profiles import Profile, remembered_mapping
from importer.server.steps import Step
from importer.settings import Settings
from importer.workspace import snapshot as ws_snapshot
from importer.workspace import store as ws

# Shares of the whole read (measured on 100,000-row workbooks: reading is about half, checking a third).
READ_END, CHECK_END = 0.5, 0.85


@dataclass(frozen=True)
class ReadOutcome:
    """What reading a new file came to (exactly one of upload and refused is set)."""

    file_name: str
    upload: Upload | None = None
    refused: FileRefused | None = None
    profile: Profile | None = None  # the remembered mapping it was read with
    detected: ColumnMapping | None = None  # the mapping detected before the remembered one replaced it
    workspace: ws.WorkspaceInfo | None = None  # the new workspace the upload is kept in
    not_saved: str | None = None  # why it is not kept as a workspace (one line)


def _report(step: Step | None, fraction: float, phrase: str) -> None:
    if step is not None:
        step.report(fraction, phrase)


def read_checked(data: bytes, file_name: str, settings: Settings, *, sheet: str | None = None,
                 mapping: ColumnMapping | None = None, step: Step | None = None, start: float = 0.0,
                 end: float = CHECK_END) -> Upload:
    """read_upload, telling `step` as it goes (reading, then checking, over [start, end] of the step)."""
    middle = start + (end - start) * READ_END / CHECK_END
    _report(step, start, "reading the file")
    upload, frame = read_unchecked(data, file_name, settings, sheet, mapping)
    _report(step, middle, f"checking {len(frame):,} rows")
    checked = check_frame(frame, settings)
    del frame
    _report(step, end, f"checked {checked.total:,} rows")
    return with_checked(upload, checked)


def read_for_review(engine: sa.Engine, data: bytes, file_name: str, settings: Settings, *, owner: str,
                    step: Step | None = None) -> ReadOutcome:
    """Read a new file as the Upload page does and keep it as `owner`'s new workspace (the module's docstring)."""
    first: Upload | None = None
    refused: FileRefused | None = None
    try:
        first = read_checked(data, file_name, settings, step=step)
    except FileRefused as exc:
        refused = exc
    detected = first.mapping if first is not None else getattr(refused, "mapping", None)
    sheet = first.sheet if first is not None else getattr(refused, "sheet", None)
    upload, profile = first, None
    found = None
    if detected is not None:
        try:
            found = remembered_mapping(engine, detected)
        except (DatabaseError, UsageError):
            found = None
    if found is not None:
        mapping, remembered = found
        try:
            upload = read_checked(data, file_name, settings, sheet=sheet, mapping=mapping, step=step)
            profile, refused = remembered, None
        except FileRefused:
            pass  # the saved mapping does not fit this file after all: the detected one stands
    if upload is None:
        assert refused is not None
        return ReadOutcome(file_name, refused=refused)
    _report(step, CHECK_END, "saving your work as a workspace")
    try:
        snapshot = ws_snapshot.snapshot_bytes(upload)
        _report(step, CHECK_END + (1 - CHECK_END) / 2, "saving your work as a workspace")
        wid = ws.create_workspace(engine, owner, data, upload.file_name, settings, upload.sheet, upload.mapping,
                                  rows=upload.checked.total, snapshot=snapshot)
        del snapshot
        info = ws.load_workspace(engine, wid, settings, seqs=(), file=False, snapshot=False).info
    except ImporterError as exc:  # DatabaseError, a limit...: the work is kept only in the tab
        return ReadOutcome(file_name, upload=upload, profile=profile, detected=detected, not_saved=str(exc))
    return ReadOutcome(file_name, upload=upload, profile=profile, detected=detected, workspace=info)


__all__ = ["ReadOutcome", "read_checked", "read_for_review"]
