"""The dashboard's decisions (issue 19) are the workspace's operations: an Accept of a change to a stored customer,
the blank-cell choice and a "keep both" on a possible duplicate survive a refresh (a new session with the same
address, ?ws=N), and Undo takes one back, in Streamlit's AppTest on a real SQLite file."""

from __future__ import annotations

from tests.app_support import GOOD_ROWS, HEADER, import_file, make_app, select_box, texts, to_review
from tests.fixtures import corpus
from ui import duplicates, keys

LABEL = "Pair to compare"
PAIR_IN_FILE = "Row 5 and row 3: same name, phone one digit apart"
PAIR_WITH_CUSTOMER = "Row 5 and customer #2: same name, phone one digit apart"


def _editor(at, key_prefix: str):
    return next(e for e in at.data_editor if e.key.startswith(key_prefix))


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_accept_blank_choice_and_keep_both_survive_a_refresh(monkeypatch, sqlite_url):
    at = make_app(monkeypatch, sqlite_url)
    import_file(at, "customers.xlsx", corpus.xlsx({"Customers": [HEADER, *GOOD_ROWS]}))
    changed = [list(r) for r in GOOD_ROWS]
    changed[0][5] = "Volta"  # row 2 changes customer #1's region
    # Row 5: customer #2's name with a phone one digit apart, under another mark: a possible duplicate.
    lookalike = ["PM9 AMA", "Ama", "Owusu", "", "0201234568", "greater accra"]
    to_review(at, "again.xlsx", corpus.xlsx({"Customers": [HEADER, *changed, lookalike]}))
    assert not at.exception
    assert (metrics(at)["Changed"], metrics(at)["Failing"]) == ("1", "1")

    at.session_state[_editor(at, keys.CHANGES_GRID).key] = {
        "edited_rows": {0: {"Accept": True}}, "added_rows": [], "deleted_rows": []}
    at.run()
    assert metrics(at)["Failing"] == "0" and "1 accepted" in texts(at)
    at.radio(key=keys.BLANK_WIDGET).set_value("clear").run()
    at.toggle(key=keys.DUPLICATES_ON).set_value(True).run()
    assert select_box(at, LABEL).options == [PAIR_IN_FILE, PAIR_WITH_CUSTOMER]
    at.radio[-1].set_value("keep_both").run()
    at.button(key=duplicates.APPLY).click().run()
    assert not at.exception
    assert "Row 5 and row 3 are kept as different people." in texts(at)
    assert select_box(at, LABEL).options == [PAIR_WITH_CUSTOMER]
    listed = texts(at).replace("\\", "")
    assert "1. Accepted the change of row 2" in listed and "2. A blank cell clears the stored value" in listed
    assert "3. Row 5 and row 3 kept as different people" in listed

    # A refresh: a new session, the same address.
    again = make_app(monkeypatch, sqlite_url)
    again.query_params["ws"] = at.query_params["ws"]
    again.switch_page("views/review.py").run()
    assert not again.exception
    assert "Your work on this file was restored" in texts(again)
    assert _editor(again, keys.CHANGES_GRID).value["Accept"].tolist() == [True]
    assert metrics(again)["Failing"] == "0" and "1 accepted" in texts(again)
    assert again.radio(key=keys.BLANK_WIDGET).value == "clear"
    again.toggle(key=keys.DUPLICATES_ON).set_value(True).run()
    # The pair kept as two people stays hidden.
    assert select_box(again, LABEL).options == [PAIR_WITH_CUSTOMER]
    again.switch_page("views/load.py").run()
    assert "1 change to existing customers accepted, 0 rejected" in texts(again)
    assert "A blank cell: clear the stored value." in texts(again)

    # Undo takes the last decision back: the pair is shown again.
    again.switch_page("views/review.py").run()
    again.button(key=keys.WORKSPACE_UNDO).click().run()
    assert not again.exception
    assert "Undone: Row 5 and row 3 kept as different people." in texts(again)
    again.toggle(key=keys.DUPLICATES_ON).set_value(True).run()  # off since the page was left
    assert select_box(again, LABEL).options == [PAIR_IN_FILE, PAIR_WITH_CUSTOMER]
    assert _editor(again, keys.CHANGES_GRID).value["Accept"].tolist() == [True]
