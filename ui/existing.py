"""Existing customers, for Review and Import: the analyst's decisions (accept or reject each change to a
stored customer, keep or clear blanks), the upload's classification against the database, and the one
set of failing rows both pages count, so that their numbers agree.

A change is a valid row whose keys all point to one customer and some field differs. Rejected changes
fail as `already_exists` with what differs (as every change does under `--existing skip`); accepted
ones update the customer (`--existing update`). New changes start rejected, like the CLI's default: the
analyst accepts them one by one or all at once. The decisions are operations of the workspace
(importer.review.decisions, which also counts the rows under them), so they survive a refresh, another tab,
edits and fixes of other rows, and Undo and Redo move over them.
"""

from __future__ import annotations

from collections.abc import Set
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
import streamlit as st

from importer.api import Upload
from importer.database.customers import Classification, classify_upload, customer_detail
from importer.database.lookup import existing_customers
from importer.database.matching import BlankMode
from importer.errors import DatabaseError
from importer.outcomes.row_errors import ErrorCode, RowError
from importer.review.decisions import (
    AgainstDatabase,
    BlankChoice,
    ChangeDecision,
    ConfirmPerson,
    bulk_decision,
    bulk_label,
)
from importer.review.decisions import against_database as count_against_database
from importer.server.steps import Step
from schemas.customer import FIELD_NAMES, label_of
from ui import decisions, keys, render, state, steps
from ui.engine import engine

ANY_FIELD = "any"
CHANGES_SHOWN = 1_000
BLANK_LABELS = {
    BlankMode.KEEP.value: "Keep the stored value",
    BlankMode.CLEAR.value: "Clear the stored value",
}


def blank_mode() -> str:
    """The blank-cell mode the workspace's decisions hold (keep by default)."""
    return decisions.current().blank


def classification_of(upload: Upload) -> Classification | str:
    """The upload's classification under the blank choice (cached per upload version), or why the
    database could not be asked."""
    blank = blank_mode()
    confirmed = tuple(sorted(decisions.current().confirmed))
    token = (state.version(), blank, confirmed)
    found = state.cached(keys.CLASSIFICATION, token)
    if found is None:
        try:  # in a server thread: another page may be opened meanwhile, and the comparison goes on
            found = steps.run_here(steps.COMPARE, token, partial(_classify, engine(), upload.checked, blank, confirmed),
                                   subject=upload.file_name, rows=upload.checked.total, label="database check")
        except DatabaseError as exc:
            found = (f"{exc} Rows already in the database will be counted by the dry run and the import "
                     "instead.")
        state.store(keys.CLASSIFICATION, token, found)
    return found


def _classify(database: sa.Engine, checked: Any, blank: str, confirmed: tuple[int, ...], step: Step) -> Classification:
    return classify_upload(database, checked, blank, confirmed=confirmed, progress=step.share(0.0, 1.0))


def against_database(upload: Upload) -> AgainstDatabase:
    """What Review and Import count for this upload, under the workspace's decisions."""
    return count_against_database(upload.checked, classification_of(upload), decisions.current())


def stored_customers(review: AgainstDatabase, row: int, error: RowError) -> list[dict[str, Any]]:
    """The stored customers a failing row clashes with: the one a rejected change would update, or
    every customer a conflicting row's keys belong to."""
    found = review.classification
    if found is None:
        return []
    if error.code is ErrorCode.CONFLICT:
        by_id = {c["id"]: c for e in review.errors[row] if e.code is ErrorCode.CONFLICT and e.value
                 for c in existing_customers(engine(), e.field, [e.value])}
        return [by_id[i] for i in sorted(by_id)]
    ids = [int(i) for i in found.rows.loc[found.rows["row"] == row, "customer_id"] if i >= 0]
    details = [customer_detail(engine(), i) for i in ids]
    return [d["customer"] for d in details if d is not None]


def choose_blank_mode() -> None:
    """The radio for blank cells of rows that match a customer: a decision saved in the workspace."""
    options = list(BLANK_LABELS)
    if st.session_state.get(keys.BLANK_WIDGET) != blank_mode():  # shows the decision in force (after an undo)
        st.session_state[keys.BLANK_WIDGET] = blank_mode()

    def keep() -> None:
        decisions.decide(BlankChoice(st.session_state[keys.BLANK_WIDGET]))

    st.radio("A blank cell in a row that matches a customer", options,
             format_func=BLANK_LABELS.__getitem__, key=keys.BLANK_WIDGET, on_change=keep, horizontal=True,
             help="Keep: a blank optional cell leaves the stored value as it is. Clear: it empties it.")


def _shown(value: Any) -> str:
    return "blank" if value is None or pd.isna(value) or value == "" else str(value)


def changes_frame(found: Classification, accepted: Set[int] | None, field: str | None,
                  limit: int = CHANGES_SHOWN) -> tuple[pd.DataFrame, int]:
    """One line per changed row: Row, Customer, Accept, then a column per changed field holding
    "old -> new" (blank where that row did not change it). Optionally only rows changing `field`.
    Returns the frame (at most `limit` rows) and how many rows matched."""
    changes = found.changes
    if field is not None:
        changes = changes[changes["row"].isin(changes.loc[changes["field"] == field, "row"])]
    rows = pd.unique(changes["row"])
    shown = rows[:limit]
    part = changes[changes["row"].isin(shown)]
    fields = [f for f in FIELD_NAMES if (part["field"] == f).any()]
    frame = pd.DataFrame({"Row": shown.astype(np.int64)})
    ids = part.drop_duplicates("row").set_index("row")["customer_id"]
    frame["Customer"] = [f"#{ids[r]}" for r in shown]
    frame["Accept"] = [accepted is not None and int(r) in accepted for r in shown]
    for f in fields:
        one = part[part["field"] == f].set_index("row")
        text = {int(r): f"{_shown(o)} → {_shown(n)}" for r, o, n in zip(one.index, one["old"], one["new"], strict=True)}
        frame[label_of(f)] = [text.get(int(r), "") for r in shown]
    return frame, len(rows)


def _highlight(frame: pd.DataFrame) -> Any:
    fields = [c for c in frame.columns if c not in ("Row", "Customer", "Accept")]
    return frame.style.map(lambda v: "background-color: #fff3cd; color: #5c4400" if v else "", subset=fields)


def show_changes(upload: Upload, review: AgainstDatabase) -> None:
    """Review's "Changes to existing customers": old -> new per field, highlighted; a filter by field;
    accept or reject each row, or all."""
    found = review.classification
    counts = review.counts
    if found is None or not counts["changed"]:
        return
    st.subheader("Changes to existing customers")
    one = counts["changed"] == 1
    st.caption(f"{counts['changed']:,} row{'' if one else 's'} match{'es' if one else ''} a customer already in "
               f"the database and change{'s' if one else ''} some of its values. **Accept** a change to update the "
               "customer; a "
               "rejected change is not imported and goes in the failure report with what differs.")
    accepted = review.accepted
    left, middle, right = st.columns([3, 2, 2], vertical_alignment="bottom")
    fields = [ANY_FIELD, *[f for f in FIELD_NAMES if (found.changes["field"] == f).any()]]
    with left:
        pick = render.pick("Show changes to", {f: "any field" if f == ANY_FIELD else label_of(f) for f in fields},
                           key=keys.CHANGES_FIELD)
    field_name = None if pick == ANY_FIELD else pick
    # The bulk buttons decide exactly the rows the filter shows (never the hidden ones), and say so.
    for column, accept, key, icon in ((middle, True, keys.ACCEPT_ALL, ":material/done_all:"),
                                      (right, False, keys.REJECT_ALL, ":material/remove_done:")):
        if column.button(bulk_label(found, field_name, accept), key=key, icon=icon):
            decision = bulk_decision(found, field_name, accept)
            if decision is not None:
                decisions.decide(decision)
            _bump_grid()
            st.rerun()
    frame, matched = changes_frame(found, accepted, field_name)
    if matched > len(frame):
        st.caption(f"Showing the first {len(frame):,} of {matched:,} changed rows; the Accept and Reject "
                   "buttons apply to all of them.")
    edited = st.data_editor(
        _highlight(frame), key=f"{keys.CHANGES_GRID}_{state.version()}_{pick}_{state.get(keys.CHANGES_NONCE, 0)}",
        hide_index=True, num_rows="fixed", width="stretch",
        disabled=[c for c in frame.columns if c != "Accept"],
        column_config={
            "Row": st.column_config.NumberColumn("Row", format="%d", help="Row number in the file"),
            "Accept": st.column_config.CheckboxColumn("Accept", help="Ticked: the import updates this customer"),
        },
    )
    now = {int(r): bool(a) for r, a in zip(edited["Row"], edited["Accept"], strict=True)}
    answered = [ChangeDecision(tuple(r for r, a in now.items() if a == accept and (r in accepted) != a), accept)
                for accept in (True, False) if any(a == accept and (r in accepted) != a for r, a in now.items())]
    if answered:
        if not decisions.decide(*answered):
            _bump_grid()  # not saved: the grid shows the decisions in force again
        st.rerun()
    st.caption(f"{counts['accepted']:,} accepted (the import updates these customers), "
               f"{counts['rejected']:,} rejected.")


def _bump_grid() -> None:
    st.session_state[keys.CHANGES_NONCE] = state.get(keys.CHANGES_NONCE, 0) + 1


def summary(review: AgainstDatabase) -> str:
    """One sentence of what the import will do with rows that match the database."""
    c = review.counts
    parts = [f"{c['new']:,} new"]
    if c["unchanged"]:
        parts.append(f"{c['unchanged']:,} unchanged (already stored as they are; not failures)")
    if c["changed"]:
        parts.append(f"{c['accepted']:,} change{'' if c['accepted'] == 1 else 's'} to existing customers "
                     f"accepted, {c['rejected']:,} rejected")
    if c["conflict"]:
        parts.append(f"{c['conflict']:,} conflicting with two or more customers")
    return "; ".join(parts)


def show_possible_different_people(review: AgainstDatabase) -> None:
    """Rows whose keys point to a stored customer whose mark or whole name differs: a conflict each, which
    the analyst may confirm one row at a time ("this is customer #N"); no bulk button reaches them."""
    found = review.classification
    if found is None or not found.different:
        return
    st.subheader("Possible different people")
    st.caption(f"{len(found.different):,} row{'' if len(found.different) == 1 else 's'} share a key with a "
               "stored customer but carry another shipping mark or another name. They fail as conflicts and "
               "no Accept button updates them; confirm a row only if it is the same customer.")
    rows = sorted(found.different)
    pick = render.pick("Row", {r: f"Row {r}: customer #{found.different[r]}" for r in rows[:CHANGES_SHOWN]},
                       key=keys.DIFFERENT_PICK)
    for error in review.errors[int(pick)]:
        if error.code is ErrorCode.CONFLICT:
            st.markdown(f"- {error.message}")
    if st.button(f"Row {pick} is customer #{found.different[pick]}: update it", key=keys.CONFIRM_PERSON,
                 icon=":material/how_to_reg:"):
        decisions.decide(ConfirmPerson(int(pick), int(found.different[pick])))
        st.rerun()
