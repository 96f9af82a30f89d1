"""Review's "Possible duplicates" section: people who look like one customer under different keys, as pairs
side by side, each with keep both, exclude this row, or update that customer.

`show_possible_duplicates(engine, checked, settings)` renders the section and returns the upload after a
decision that changes it (exclude, update), or None; the page then keeps it (`workspace.set_checked`) and
reruns. The search (importer.review.lookalikes) runs once per upload version, as a heavy step. A decision
becomes operations of the workspace (importer.review.decisions.duplicate_operations): "keep both" is a
decision saved at once, so a pair kept as two people stays hidden after later edits, a refresh or in
another tab; an exclusion or an update is the row change the page keeps.
"""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa
import streamlit as st

from importer.checks.validate import Checked
from importer.database.ledger import count_customers
from importer.errors import DatabaseError, ImporterError
from importer.review.decisions import duplicate_operations, is_decision
from importer.review.lookalikes import (
    RULES,
    Action,
    Decision,
    PossibleDuplicates,
    find_possible_duplicates,
    stored_customers,
    update_decision,
)
from importer.server import governor
from importer.settings import Settings
from schemas.customer import FIELD_NAMES, label_of
from ui import decisions, render, state
from ui.heavy import heavy_step

# Session values and widget keys of this section (ui/keys.py holds the pages' own).
PAIRS = "possible_duplicates"  # ((upload version, kept pairs), PossibleDuplicates, database note)
PICK = "possible_duplicate_pick"  # the pair picked, by its label; its widget: render.pick
CHOICE = "possible_duplicate_choice"
APPLY = "possible_duplicate_apply"

_CHOICE_TEXT = {
    Action.KEEP_BOTH: "Keep both: they are different people",
    Action.EXCLUDE_ROW: "Exclude this row from the import",
    Action.UPDATE_CUSTOMER: "Update that customer with this row",
}


def _search(engine: sa.Engine, checked: Checked) -> tuple[PossibleDuplicates, str | None]:
    """The pairs of this upload version (cached in the session), and a note when the database was not read."""
    kept = decisions.current().kept
    token = (state.version(), kept)
    cached = st.session_state.get(PAIRS)
    if cached is not None and cached[0] == token:
        return cached[1], cached[2]
    note = None
    try:
        stored = count_customers(engine)
    except DatabaseError:
        stored = 0  # the search below says why the database was not read
    # Charged by the upload's rows and the stored customers (each a candidate when the file is imported again).
    with (heavy_step("duplicate search", cost_mb=governor.cost_of_search(checked.total, stored)),
          st.spinner("Looking for possible duplicates...")):
        try:
            found = find_possible_duplicates(checked.normalised, engine, kept=kept)
        except DatabaseError as exc:
            note = f"{exc} Only the rows of the file were compared with each other."
            found = find_possible_duplicates(checked.normalised, kept=kept)
    st.session_state[PAIRS] = (token, found, note)
    return found, note


def pair_label(row: int, other_row: object, customer_id: object, rule: str) -> str:
    """`Row 12 and customer #40: same name, phone one digit apart`."""
    other = f"row {other_row}" if pd.notna(other_row) else f"customer #{customer_id}"
    return f"Row {row} and {other}: " + "; ".join(RULES[r] for r in rule.split(","))


def _text(value: object) -> str:
    return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


def side_by_side(left: dict[str, object], right: dict[str, object], left_title: str, right_title: str,
                 left_stored: dict[str, object] | None = None,
                 right_stored: dict[str, object] | None = None) -> pd.DataFrame:
    """The two records as typed, one line per field either has, and whether their stored forms (the
    normalised values, when given: `0241234567` and `+233241234567` are the same phone) are the same."""
    left_stored, right_stored = left_stored or left, right_stored or right
    lines = []
    for f in FIELD_NAMES:
        a, b = _text(left.get(f)), _text(right.get(f))
        if a or b:
            same = _text(left_stored.get(f)).strip().casefold() == _text(right_stored.get(f)).strip().casefold()
            lines.append({"Field": label_of(f), left_title: a, right_title: b, "Compared": "same" if same else "differs"})
    return pd.DataFrame(lines, columns=["Field", left_title, right_title, "Compared"])


def show_possible_duplicates(engine: sa.Engine, checked: Checked, settings: Settings, *,
                             existing: str = "skip") -> Checked | None:
    """Render the section; return the upload after an exclude or update decision, else None.

    `existing`: the import's mode for rows matching a customer ("skip" or "update"); "update that
    customer" is offered only under "update", where the import applies it.
    """
    st.subheader("Possible duplicates")
    found, note = _search(engine, checked)
    if note:
        st.warning(note, icon=":material/warning:")
    st.caption(found.summary() + (" Same name with phones one digit apart, same name and company under "
                                  "another shipping mark, or e-mails equal without dots and +tags."
                                  if found.found else ""))
    if found.pairs.empty:
        return None
    pairs = found.pairs
    # Each pair by its label (row, the other row or customer, the rules): the select and the tables below
    # show the same pair after a decision changed the list (render.pick; a decided pair falls to the first).
    labels = [pair_label(r.row, r.other_row, r.customer_id, r.rule) for r in pairs.itertuples(index=False)]
    picked = render.pick("Pair to compare", dict(zip(labels, labels, strict=True)), PICK)
    pick = labels.index(picked)
    pair = pairs.iloc[pick]
    row = int(pair["row"])
    on_file = pd.notna(pair["other_row"])
    typed = checked.original.loc[row].to_dict()
    normalised = checked.normalised.loc[row].to_dict()
    if on_file:
        other_row = int(pair["other_row"])
        other_title = f"Row {other_row}"
        present = other_row in checked.original.index
        other = checked.original.loc[other_row].to_dict() if present else {}
        other_stored = checked.normalised.loc[other_row].to_dict() if present else {}
    else:
        customer_id = int(pair["customer_id"])
        other_title = f"Customer #{customer_id} in the database"
        try:
            other = stored_customers(engine, [customer_id]).get(customer_id, {})
        except DatabaseError as exc:
            render.show_error(exc, escape=False)
            other = {}
        other_stored = other
    st.dataframe(side_by_side(typed, other, f"Row {row} (this row)", other_title, normalised, other_stored),
                 hide_index=True, width="stretch")
    st.caption(f"Similarity {pair['score']:.0f} of 100.")
    choices = [Action.KEEP_BOTH, Action.EXCLUDE_ROW]
    if not on_file and existing == "update":
        choices.append(Action.UPDATE_CUSTOMER)
    texts = {c: _CHOICE_TEXT[c] for c in choices}
    choice = st.radio("What to do with this pair", choices, key=render.pick_widget_key(CHOICE, [picked]),
                      format_func=texts.__getitem__)
    if not on_file and existing != "update":
        st.caption(f"To update customer #{int(pair['customer_id'])} with this row instead, import with "
                   "existing customers updated.")
    if not st.button("Apply", key=APPLY, type="primary", icon=":material/done:"):
        return None
    try:
        if choice == Action.UPDATE_CUSTOMER:
            decision = update_decision(engine, row, int(pair["customer_id"]))
        else:
            decision = Decision(Action(choice), row, other_row=int(pair["other_row"]) if on_file else None,
                                customer_id=None if on_file else int(pair["customer_id"]))
        ops = duplicate_operations(checked, decision)
        changes = [op for op in ops if not is_decision(op)]  # the row left out, or given the customer's mark
        with heavy_step("duplicate decision", checked.total):
            new = changes[0].apply(checked, settings) if changes else None
    except (DatabaseError, ImporterError) as exc:
        render.show_error(exc, escape=False)
        return None
    if not decisions.decide(*(op for op in ops if is_decision(op))):
        st.rerun()  # the notice says why it was not saved
    now = state.upload()
    if changes and now is not None and now.checked is not checked:  # another tab's work was replayed meanwhile
        new = changes[0].apply(now.checked, settings)
    if new is None:
        whom = f"row {pair['other_row']}" if on_file else f"customer #{pair['customer_id']}"
        state.notice(f"Row {row} and {whom} are kept as different people.")
        st.rerun()
    state.operation(changes[0])
    if decision.action is Action.EXCLUDE_ROW:
        state.notice(f"Excluded row {row}: it will not be imported.")
    else:
        state.notice(f"Row {row} now has customer #{decision.customer_id}'s shipping mark "
                     f"({decision.shipping_mark}): the import updates that customer with it.")
    return new
