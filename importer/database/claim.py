"""Resuming a run: whether an import adopts a dead run of the same file, and what that run already settled.

importer.database.loader claims the run; these are the two questions it asks on the way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from importer.database import provenance
from importer.database.schema import customer_changes, customers, import_failures, import_unchanged


def adopts(conn: sa.Connection, settings_json: Mapping[str, Any], row: sa.Row) -> bool:
    """Whether an import (its run settings `settings_json`) resumes the dead run `row` of the same file. A run
    of the file as it is (also from a workspace with no operation): yes. A run started from a reviewed
    workspace: by an import of that workspace at the state it recorded (importer.workspace.resume.check_resume
    replays that state); another workspace passes it by (a new run); the file as it is, or the same workspace
    at another state, is refused (ResumeRefused): never adopted silently."""
    theirs, seq = provenance.run_workspace(row)
    if theirs is None or provenance.unreviewed(row):  # the file as it is, from a workspace or not
        return True
    ours = settings_json.get("workspace_id")
    if ours is not None and int(ours) != theirs:
        return False
    our_seq = settings_json.get("workspace_seq")
    if ours is not None and (row.workspace_seq is None or our_seq is None or seq == int(our_seq)):
        return True
    raise provenance.refusal(conn, row, None if ours is None else int(ours))


def settled_rows(conn: sa.Connection, run_id: int) -> set[int]:
    """Source rows a run already settled (created, updated, unchanged or failed)."""
    created = sa.select(customers.c.source_row_number).where(customers.c.import_run_id == run_id)
    failed = sa.select(import_failures.c.source_row_number).where(import_failures.c.run_id == run_id)
    updated = sa.select(customer_changes.c.source_row_number).where(customer_changes.c.run_id == run_id)
    same = sa.select(import_unchanged.c.source_row_number).where(import_unchanged.c.run_id == run_id)
    return {n for (n,) in conn.execute(sa.union_all(created, failed, updated, same))}
