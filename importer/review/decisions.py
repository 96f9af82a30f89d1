"""The analyst's decisions on an upload, as operations of its workspace: accept or reject a change to a stored
customer (one row, some rows, or all of them by a new default), keep or clear a stored value when a cell is
blank, and "keep both" for a pair of look-alikes. They live in the workspace's operation log beside the
edits and fixes, so a refresh, a second tab, a restart, a second server and the CLI see the same decisions,
and Undo, Redo and "Back to here" move over them like over any other operation.

A decision changes no cell: its apply gives the frame back as it is, and a replay skips it (`decision` is
True on its class), so recording one costs no check of the rows. `decisions_of(operations)` folds the
active ones in order into a `Decisions`; `import_options(decisions, classification)` says what an import
does with the changes (the dashboard's Import page and the CLI's `--workspace` import call it), and
`duplicate_operations` turns a decision on a look-alike pair into the operations that carry it out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import sqlalchemy as sa

from importer.checks.validate import Checked
from importer.database.customers import Classification
from importer.database.matching import BlankMode, ExistingMode
from importer.database.schema import reading, workspace_operations
from importer.errors import WorkspaceError
from importer.outcomes.error_table import ErrorTable
from importer.review.lookalikes import Action, Decision
from importer.review.operations import CellEdit, Exclude, operation_from_dict, register
from importer.settings import Settings
from schemas.customer import label_of


def _rows_text(rows: tuple[int, ...]) -> str:
    if len(rows) == 1:
        return f"row {rows[0]}"
    head = ", ".join(str(r) for r in rows[:5])
    return f"{len(rows):,} rows: {head}" + (f" and {len(rows) - 5:,} more" if len(rows) > 5 else "")


class _Decision:
    """What the decision kinds share: no cell changes, so apply gives the frame back and replay skips them."""

    decision: ClassVar[bool] = True

    def apply(self, checked: Checked, settings: Settings) -> Checked:
        return checked


@register
@dataclass(frozen=True)
class ChangeDecision(_Decision):
    """Accept or reject the changes some rows make to stored customers; with `default` set, every change
    gets that answer (Accept all, Reject all) and the answers given row by row before it are forgotten."""

    kind: ClassVar[str] = "change_decision"
    rows: tuple[int, ...] = ()
    accept: bool = True
    default: bool | None = None

    def __post_init__(self) -> None:
        if self.default is None and not self.rows:
            raise WorkspaceError("a decision on changes names the rows it accepts or rejects, or a new default")

    def to_dict(self) -> dict[str, Any]:
        return {"rows": list(self.rows), "accept": self.accept, "default": self.default}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChangeDecision:
        default = data.get("default")
        return cls(tuple(int(r) for r in data.get("rows", ())), bool(data.get("accept", True)),
                   None if default is None else bool(default))

    def describe(self) -> str:
        if self.default is not None:
            return ("Accepted every change to existing customers" if self.default
                    else "Rejected every change to existing customers")
        verb = "Accepted" if self.accept else "Rejected"
        return f"{verb} the change{'' if len(self.rows) == 1 else 's'} of {_rows_text(self.rows)}"


@register
@dataclass(frozen=True)
class BlankChoice(_Decision):
    """What a blank cell of a row matching a customer does: keep the stored value, or clear it (`--blank`)."""

    kind: ClassVar[str] = "blank_choice"
    mode: str = BlankMode.KEEP.value

    def __post_init__(self) -> None:
        if self.mode not in {m.value for m in BlankMode}:
            raise WorkspaceError(f"{self.mode!r} is not a blank-cell mode; modes are: "
                                 + ", ".join(m.value for m in BlankMode))

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BlankChoice:
        return cls(str(data.get("mode", BlankMode.KEEP.value)))

    def describe(self) -> str:
        return ("A blank cell clears the stored value" if self.mode == BlankMode.CLEAR.value
                else "A blank cell keeps the stored value")


@register
@dataclass(frozen=True)
class KeepBoth(_Decision):
    """A look-alike pair decided as two customers: the row and another row, or the row and a stored customer."""

    kind: ClassVar[str] = "keep_both"
    row: int
    other_row: int | None = None
    customer_id: int | None = None

    def __post_init__(self) -> None:
        if (self.other_row is None) == (self.customer_id is None):
            raise WorkspaceError(f"keep both: row {self.row} is paired with another row or a customer, not "
                                 f"{'both' if self.other_row is not None else 'neither'}")

    @property
    def pair(self) -> tuple[int, str, int]:
        """(row, "row" or "customer", other): the `kept` form of find_possible_duplicates."""
        if self.other_row is not None:
            return (self.row, "row", self.other_row)
        return (self.row, "customer", int(self.customer_id or 0))

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "other_row": self.other_row, "customer_id": self.customer_id}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> KeepBoth:
        other, customer = data.get("other_row"), data.get("customer_id")
        return cls(int(data["row"]), None if other is None else int(other), None if customer is None else int(customer))

    def describe(self) -> str:
        other = f"row {self.other_row}" if self.other_row is not None else f"customer #{self.customer_id}"
        return f"Row {self.row} and {other} kept as different people"


@register
@dataclass(frozen=True)
class ConfirmPerson(_Decision):
    """A row confirmed, on its own, as the stored customer its keys point to although its mark or whole name
    differs (a possible different person): its change is then a change like any other, and accepted. No
    bulk decision confirms a row."""

    kind: ClassVar[str] = "confirm_person"
    row: int
    customer_id: int

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "customer_id": self.customer_id}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConfirmPerson:
        return cls(int(data["row"]), int(data["customer_id"]))

    def describe(self) -> str:
        return f"Row {self.row} confirmed as customer #{self.customer_id}: its change updates that customer"


DECISION_KINDS = (ChangeDecision.kind, BlankChoice.kind, KeepBoth.kind, ConfirmPerson.kind)


@dataclass(frozen=True)
class Decisions:
    """The decisions in force: accept changes by default or not, the rows answered otherwise one by one,
    the blank-cell mode, and the look-alike pairs kept as two customers."""

    default_accept: bool = False
    accepted: frozenset[int] = frozenset()  # rows accepted one by one (when the default rejects)
    rejected: frozenset[int] = frozenset()  # rows rejected one by one (when the default accepts)
    blank: str = BlankMode.KEEP.value
    kept: frozenset[tuple[int, str, int]] = field(default_factory=frozenset)
    confirmed: frozenset[int] = frozenset()  # rows confirmed one by one as the customer their keys point to

    def accepts(self, row: int) -> bool:
        """Whether the change of this row (if it makes one) is accepted."""
        if row in self.accepted:
            return True
        if row in self.rejected:
            return False
        return self.default_accept

    def with_rows(self, answers: Mapping[int, bool]) -> Decisions:
        """These decisions with some rows answered (what a ChangeDecision does)."""
        accepted, rejected = set(self.accepted), set(self.rejected)
        for row, accept in answers.items():
            accepted.discard(row)
            rejected.discard(row)
            if accept != self.default_accept:
                (accepted if accept else rejected).add(int(row))
        return Decisions(self.default_accept, frozenset(accepted), frozenset(rejected), self.blank, self.kept,
                         self.confirmed)


def is_decision(op: Any) -> bool:
    """Whether an operation is a decision (changes no cell)."""
    return bool(getattr(type(op), "decision", False))


def decisions_of(operations: Iterable[Any]) -> Decisions:
    """The decisions the active operations give, folded in order (other kinds of operation are passed over;
    (seq, operation) pairs, as StoredWorkspace.operations has them, are taken too)."""
    found = Decisions()
    for op in operations:
        if isinstance(op, tuple) and len(op) == 2 and isinstance(op[0], int):
            op = op[1]
        if isinstance(op, ChangeDecision):
            if op.default is not None:
                found = Decisions(op.default, frozenset(), frozenset(), found.blank, found.kept, found.confirmed)
            if op.rows:
                found = found.with_rows(dict.fromkeys(op.rows, op.accept))
        elif isinstance(op, BlankChoice):
            found = Decisions(found.default_accept, found.accepted, found.rejected, op.mode, found.kept,
                              found.confirmed)
        elif isinstance(op, KeepBoth):
            found = Decisions(found.default_accept, found.accepted, found.rejected, found.blank,
                              found.kept | {op.pair}, found.confirmed)
        elif isinstance(op, ConfirmPerson):
            found = Decisions(found.default_accept, found.accepted, found.rejected, found.blank, found.kept,
                              found.confirmed | {op.row}).with_rows({op.row: True})
    return found


def load_decisions(engine: sa.Engine, workspace_id: int) -> Decisions:
    """The decisions in force in a stored workspace: its active decision operations, read alone (not the file,
    its snapshot or its edits), folded in order. DatabaseError when the database cannot be read."""
    ops = workspace_operations
    with reading(engine) as conn:
        rows = conn.execute(sa.select(ops.c.kind, ops.c.payload)
                            .where(ops.c.workspace_id == workspace_id, ops.c.undone == sa.false(),
                                   ops.c.kind.in_(DECISION_KINDS))
                            .order_by(ops.c.seq)).all()
    return decisions_of(operation_from_dict(row.kind, row.payload) for row in rows)


# --- what an import does with the changes ---------------------------------------------------------------


def changed_rows(decisions: Decisions, classification: Classification) -> tuple[np.ndarray, np.ndarray]:
    """(accepted, rejected): the source rows whose change to a stored customer the decisions accept, and
    those they reject, ascending."""
    rows = classification.rows
    changed = np.sort(rows.loc[rows["outcome"] == "changed", "row"].to_numpy(dtype=np.int64))
    if decisions.default_accept:
        flipped = np.fromiter(decisions.rejected, dtype=np.int64, count=len(decisions.rejected))
        accepted = ~np.isin(changed, flipped)
    else:
        flipped = np.fromiter(decisions.accepted, dtype=np.int64, count=len(decisions.accepted))
        accepted = np.isin(changed, flipped)
    return changed[accepted], changed[~accepted]


def import_options(decisions: Decisions, classification: Classification | None) -> dict[str, Any]:
    """existing, blank and rejected, as importer.api.import_upload takes them: `--existing update` when some
    change is accepted (the rejected ones then fail as already_exists), else `skip` (every change fails);
    the blank-cell mode as decided. Without a classification (the database was not asked) nothing is
    accepted: skip."""
    if classification is None:
        return {"existing": ExistingMode.SKIP.value, "blank": decisions.blank, "rejected": ()}
    accepted, rejected = changed_rows(decisions, classification)
    # A confirmed row (a possible different person) is a change only to an import told it was confirmed.
    confirmed = tuple(sorted(r for r in decisions.confirmed if decisions.accepts(r)))
    extra = {"confirmed": confirmed} if confirmed else {}
    if not len(accepted) and not confirmed:
        return {"existing": ExistingMode.SKIP.value, "blank": decisions.blank, "rejected": ()}
    return {"existing": ExistingMode.UPDATE.value, "blank": decisions.blank,
            "rejected": tuple(int(r) for r in rejected), **extra}


def shown_rows(classification: Classification, field_name: str | None = None) -> tuple[int, ...]:
    """The changed rows "Show changes to" shows: every changed row, or those changing `field_name`."""
    changes = classification.changes
    if field_name is not None:
        changes = changes[changes["field"] == field_name]
    return tuple(int(r) for r in pd.unique(changes["row"]))


def bulk_decision(classification: Classification, field_name: str | None, accept: bool) -> ChangeDecision | None:
    """Accept or Reject the changes shown: a decision on exactly the rows the filter shows (never a new
    default, which would reach hidden rows); None when none is shown."""
    rows = shown_rows(classification, field_name)
    return ChangeDecision(rows, accept) if rows else None


def bulk_label(classification: Classification, field_name: str | None, accept: bool) -> str:
    """The button's words: "Accept the 21 phone changes shown", "Reject the 45 changes shown"."""
    count = len(shown_rows(classification, field_name))
    what = "" if field_name is None else label_of(field_name).lower() + " "
    verb = "Accept" if accept else "Reject"
    if count == 1:
        return f"{verb} the {what}change shown"
    return f"{verb} the {count:,} {what}changes shown"


_NO_COUNTS = ("new", "unchanged", "changed", "accepted", "rejected", "conflict")


@dataclass(frozen=True)
class AgainstDatabase:
    """An upload's rows against the stored customers, under the decisions.

    `errors`: the rows that fail (the file's own errors, conflicts, rejected changes); `counts`: rows
    new, unchanged, changed, accepted, rejected and conflict; `accepted` and `rejected`: the source rows
    whose change updates its customer or fails; `problem`: why the database could not be asked (then only
    the file's own errors count); `decisions`: the decisions it was counted under.
    """

    classification: Classification | None
    errors: ErrorTable
    counts: dict[str, int]
    rejected: tuple[int, ...]
    problem: str | None = None
    accepted: frozenset[int] = frozenset()
    decisions: Decisions = field(default_factory=Decisions)

    @property
    def existing(self) -> str:
        """--existing for the import: update when some change is accepted, else skip."""
        return ExistingMode.UPDATE.value if self.counts["accepted"] else ExistingMode.SKIP.value

    def import_arguments(self) -> dict[str, Any]:
        """existing, blank and rejected, as importer.api.import_upload takes them (import_options)."""
        return import_options(self.decisions, self.classification)


def against_database(checked: Checked, classification: Classification | str, decisions: Decisions) -> AgainstDatabase:
    """What Review and Import count for an upload: its classification (or why the database could not be
    asked) under the decisions. Rejected changes fail with what differs; conflicts fail."""
    if isinstance(classification, str):
        return AgainstDatabase(None, checked.errors, dict.fromkeys(_NO_COUNTS, 0), (), classification,
                               decisions=decisions)
    accepted, rejected = changed_rows(decisions, classification)
    errors = checked.errors.with_rows(classification.conflicts)
    if len(rejected):
        skipped = classification.skipped
        errors = errors.with_rows(skipped.without_rows(np.setdiff1d(skipped.rows(), rejected)))
    counts = classification.counts()
    counts.update(accepted=len(accepted), rejected=len(rejected))
    return AgainstDatabase(classification, errors, counts, tuple(int(r) for r in rejected),
                           accepted=frozenset(int(r) for r in accepted), decisions=decisions)


# --- decisions on look-alike pairs ------------------------------------------------------------------------


def duplicate_operations(checked: Checked, decision: Decision) -> list[Any]:
    """The operations that carry out a decision on a pair of look-alikes: keep both (KeepBoth), exclude the
    row (Exclude, saying of whom it is a possible duplicate), or update that customer with the row (the
    row takes the customer's shipping mark, and its change to that customer is accepted)."""
    other = f"row {decision.other_row}" if decision.other_row is not None else f"customer #{decision.customer_id}"
    if decision.action is Action.KEEP_BOTH:
        return [KeepBoth(decision.row, decision.other_row, decision.customer_id)]
    if decision.row not in checked.original.index:
        raise WorkspaceError(f"row {decision.row} is not in the upload any more (excluded already?)")
    if decision.action is Action.EXCLUDE_ROW:
        return [Exclude((decision.row,), f"possible duplicate of {other}")]
    edit = CellEdit.of(checked, {decision.row: {"shipping_mark": str(decision.shipping_mark)}})
    return [*([] if edit is None else [edit]), ChangeDecision((decision.row,), True)]
