"""The review session of an upload: the application layer between the engine's pieces and the faces.

A session is a workspace seen as the analyst works on it: the file and how it is read (importer.workspace),
the ordered log of everything she decided (importer.review.operations and importer.review.decisions: cell
edits, bulk fixes, conversions, find and replace, exclusions and inclusions from any view, accept or reject
of a change to a stored customer, the blank-cell mode, duplicate decisions), and what the import would do:
the dry run it last ran, stored with the workspace (`workspaces.dry_run`), and whether that is still true.

Every action is one call on it, whichever face makes it: the dashboard's pages (through ui/workspace.py)
and the CLI (`python -m importer import --workspace N`). Nothing of the review lives only in a page's
session, so a refresh, a second tab, a second server and the CLI see the same truth. The rules of the
review live here too: a dry run comes first, and an import is refused while its dry run is out of date
(`readiness`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from importer.api import import_upload
from importer.checks.validate import Checked
from importer.database.customers import Classification
from importer.database.ledger import aware, now
from importer.database.schema import db_errors, reading, workspaces
from importer.identity import Actor
from importer.outcomes.run_result import RunResult
from importer.review.decisions import AgainstDatabase, Decisions, against_database, load_decisions
from importer.review.staleness import DatabaseState, database_state, stale_reason
from importer.settings import Settings
from importer.workspace import store

START_WITH_A_DRY_RUN = "Start with a dry run: it runs the whole import and rolls it back, so its counts are exact."


def choices_of(arguments: Mapping[str, Any]) -> tuple[str, str, tuple[int, ...]]:
    """The import choices a dry run is valid for: (existing, blank, the rejected rows), as import_upload
    takes them (importer.review.decisions.import_options)."""
    return (str(arguments.get("existing", "skip")), str(arguments.get("blank", "keep")),
            tuple(sorted(int(r) for r in arguments.get("rejected", ()))))


@dataclass(frozen=True)
class DryRunSeen:
    """What a dry run ran on and found: the workspace version and import choices, the database state it saw
    (importer.review.staleness), its counts, and when."""

    version: int
    choices: tuple[str, str, tuple[int, ...]]
    state: DatabaseState
    counts: dict[str, int] = field(default_factory=dict)
    at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        state = asdict(self.state)
        for key in ("last_finished_at", "last_undone_at"):
            state[key] = state[key].isoformat() if state[key] is not None else None
        return {"version": self.version, "choices": [self.choices[0], self.choices[1], list(self.choices[2])],
                "state": state, "counts": dict(self.counts), "at": self.at.isoformat() if self.at else None}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DryRunSeen:
        raw = dict(data["state"])
        for key in ("last_finished_at", "last_undone_at"):
            raw[key] = aware(datetime.fromisoformat(raw[key])) if raw.get(key) else None
        existing, blank, rejected = data["choices"]
        return cls(int(data["version"]), (str(existing), str(blank), tuple(int(r) for r in rejected)),
                   DatabaseState(**raw), {str(k): int(v) for k, v in dict(data.get("counts") or {}).items()},
                   aware(datetime.fromisoformat(data["at"])) if data.get("at") else None)


def counts_of(result: RunResult) -> dict[str, int]:
    return {"created": result.total_created, "updated": result.total_updated,
            "unchanged": result.total_unchanged, "failed": result.total_failed}


def save_dry_run(engine: sa.Engine, workspace_id: int, seen: DryRunSeen) -> None:
    with db_errors(engine), engine.begin() as conn:
        conn.execute(sa.update(workspaces).where(workspaces.c.id == workspace_id).values(dry_run=seen.to_json()))


def last_dry_run(engine: sa.Engine, workspace_id: int) -> DryRunSeen | None:
    """The dry run the session last ran (by any tab, server or face), or None."""
    with db_errors(engine), reading(engine) as conn:
        stored = conn.execute(sa.select(workspaces.c.dry_run).where(workspaces.c.id == workspace_id)).scalar()
    try:
        return DryRunSeen.from_json(stored) if stored else None
    except (KeyError, TypeError, ValueError):
        return None  # written by another version: as if there were none


def verdict(engine: sa.Engine, seen: DryRunSeen | None, version: int, choices: tuple[str, str, tuple[int, ...]],
            sha256: str, normalised: Any = None) -> str | None:
    """Why the import may not start now, in the analyst's words; None when the dry run is current.

    The rule: a dry run comes first; it must have run on this version of the review (no change since) with
    these choices on existing customers, and no run or undo may have changed the database since in a way that
    concerns this file (`normalised`: its rows; a finished run that touched none of their keys does not)."""
    if seen is None:
        return START_WITH_A_DRY_RUN
    if seen.version != version:
        return "You changed the file since the dry run; run the dry run again to see what the import would do now."
    if seen.choices != choices:
        return ("You changed your decisions on existing customers since the dry run; run the dry run again to see "
                "what the import would do now.")
    return stale_reason(engine, seen.state, sha256, normalised)


@dataclass(frozen=True)
class Readiness:
    """Whether the import may start: the dry run to show (or None) and why not (None: it may)."""

    dry_run: DryRunSeen | None
    reason: str | None

    @property
    def can_import(self) -> bool:
        return self.reason is None

    @property
    def stale(self) -> bool:
        """A dry run exists but no longer tells the truth."""
        return self.dry_run is not None and self.reason is not None


class ReviewSession:
    """One workspace under review, as one actor sees it. Each method is one action of the analyst; each
    returns the session as it is after it (the object itself is not changed)."""

    def __init__(self, engine: sa.Engine, settings: Settings, actor: Actor, opened: store.Opened) -> None:
        self.engine, self.settings, self.actor, self.opened = engine, settings, actor, opened
        self.seen: DryRunSeen | None = None  # the dry run this object ran (dry_run), also when the workspace went

    # --- open ---------------------------------------------------------------------------------------------
    @classmethod
    def open(cls, engine: sa.Engine, settings: Settings, actor: Actor, workspace_id: int) -> ReviewSession:
        """The workspace replayed (a refresh, a link, another tab or server, the CLI's --workspace); refused
        (importer.errors.NotYours, naming the owner) when it is another account's and the actor no admin."""
        return cls(engine, settings, actor, store.open_workspace(engine, workspace_id, settings, actor=actor))

    def _with(self, opened: store.Opened) -> ReviewSession:
        return ReviewSession(self.engine, self.settings, self.actor, opened)

    # --- what it holds ------------------------------------------------------------------------------------
    @property
    def id(self) -> int:
        return self.opened.info.id

    @property
    def version(self) -> int:
        return self.opened.version

    @property
    def checked(self) -> Checked:
        return self.opened.upload.checked

    def decisions(self) -> Decisions:
        """The decisions of the active operations (accept/reject, blank mode, kept pairs)."""
        return load_decisions(self.engine, self.id)

    def history(self) -> list[store.HistoryEntry]:
        return store.history(self.engine, self.id)

    # --- act ----------------------------------------------------------------------------------------------
    def perform(self, op: Any) -> ReviewSession:
        """Any operation (an edit, fix, conversion, exclusion, inclusion, decision or mapping change): applied
        and saved; refused while a run imports this workspace (importer.errors.WorkspaceBusy)."""
        return self._with(store.perform(self.engine, self.opened, op, self.settings, actor=self.actor))

    def record(self, op: Any, after: Checked) -> ReviewSession:
        """An operation a face already applied live (`after`: its result), saved."""
        return self._with(store.record(self.engine, self.opened, op, after, self.settings, actor=self.actor))

    def undo(self) -> ReviewSession:
        store.undo(self.engine, self.id, self.actor)
        return ReviewSession.open(self.engine, self.settings, self.actor, self.id)

    def redo(self) -> ReviewSession:
        store.redo(self.engine, self.id, self.actor)
        return ReviewSession.open(self.engine, self.settings, self.actor, self.id)

    def go_to(self, seq: int) -> ReviewSession:
        store.go_to(self.engine, self.id, seq, self.actor)
        return ReviewSession.open(self.engine, self.settings, self.actor, self.id)

    # --- against the database -----------------------------------------------------------------------------
    def against_database(self, classification: Classification | str) -> AgainstDatabase:
        """The rows against the stored customers under the session's decisions (`classification`: from
        importer.database.customers.classify_upload, or why the database could not be asked)."""
        return against_database(self.checked, classification, self.decisions())

    def readiness(self, arguments: Mapping[str, Any]) -> Readiness:
        """May the import start with these arguments (AgainstDatabase.import_arguments), and if not, why."""
        seen = last_dry_run(self.engine, self.id)
        reason = verdict(self.engine, seen, self.version, choices_of(arguments), self.opened.upload.sha256,
                         self.checked.normalised)
        if reason is None and seen is not None:
            now_state = database_state(self.engine)
            if now_state != seen.state:  # runs since touched none of this file: true still, and checked once
                seen = replace(seen, state=now_state)
                save_dry_run(self.engine, self.id, seen)
        return Readiness(seen, reason)

    def dry_run(self, arguments: Mapping[str, Any], *, user_name: str | None = None,
                progress: Callable[..., None] | None = None) -> RunResult:
        """The whole import, rolled back; what it found is stored with the workspace for every tab."""
        saw = database_state(self.engine)
        result = import_upload(self.engine, self.opened.upload, self.settings, dry_run=True,
                               user_name=user_name or self.actor.name, progress=progress, via=self.actor.via,
                               **dict(arguments))
        self.seen = DryRunSeen(self.version, choices_of(arguments), saw, counts_of(result), now())
        save_dry_run(self.engine, self.id, self.seen)
        return result

    def import_arguments(self, against: AgainstDatabase) -> dict[str, Any]:
        """import_upload's arguments for this session: the decisions' existing/blank/rejected and the
        workspace with the operations the run records."""
        return {**against.import_arguments(), "workspace": (self.id, self.opened.seqs)}

