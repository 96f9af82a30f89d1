"""Issue 23 item 4, one truth per page: after each action every widget is drawn from the session's state now.

A select box whose labels carry counts or row numbers kept, in the browser, the label from before the last
action while the page acted on what its value meant now ("Region: ... 2,152 rows" beside "Exclude all 139
rows failing on phone"; "Row 6" above Row 5's tables). tests.app_support.Browser models what Streamlit's
frontend keeps, which AppTest alone does not show. Also: Find and replace stays open while it is used, and
the bulk fixes' settings come back after a refresh.
"""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.app_support import (
    HEADER,
    MESSY_ROWS,
    Browser,
    grid_key,
    make_app,
    select_box,
    texts,
    to_review,
)
from tests.fixtures import corpus
from tests.test_cleaning_ui import conversion_page
from tests.test_exclusions_ui import review
from ui import cleaning, keys
from ui import exclusions as section


def test_exclude_by_reason_shows_the_reason_its_button_excludes(monkeypatch, sqlite_url):
    at = review(monkeypatch, sqlite_url)
    browser = Browser()
    assert browser.look(at)["Exclude by reason"] == "Phone: Not a valid phone number: 3 rows"
    assert at.button(key=section.EXCLUDE_REASON).label == "Exclude all 3 rows failing on phone"
    at.button(key=section.EXCLUDE_REASON).click().run()
    assert not at.exception
    # The phone rows are gone: the select and its button both name the reason left, in the browser too.
    assert at.button(key=section.EXCLUDE_REASON).label == "Exclude the 1 row failing on first name"
    assert browser.look(at)["Exclude by reason"] == "First Name: Required field is blank: 1 row"


def test_a_reason_picked_stays_picked_while_its_count_changes(monkeypatch, sqlite_url):
    at = review(monkeypatch, sqlite_url)
    browser = Browser()
    browser.look(at)
    browser.choose(at, "Exclude by reason", "First Name: Required field is blank: 1 row")
    assert at.button(key=section.EXCLUDE_REASON).label == "Exclude the 1 row failing on first name"
    # Another action changes the counts (the excluded list's "Include all"), the pick is kept by its reason.
    at.button(key=section.EXCLUDE_REASON).click().run()
    assert "rows: 5, failing: 3" in "\n".join(str(t.value) for t in at.text)
    assert browser.look(at)["Exclude by reason"] == "Phone: Not a valid phone number: 3 rows"
    at.button(key=section.INCLUDE_ALL).click().run()
    shown = browser.look(at)["Exclude by reason"]
    assert shown == "Phone: Not a valid phone number: 3 rows"
    assert at.button(key=section.EXCLUDE_REASON).label == "Exclude all 3 rows failing on phone"


# Messy rows and row 8, the same phone as row 7: duplicates at rows 5 (of row 2) and 8 (of row 7).
TWO_DUPLICATES = [*MESSY_ROWS, ["PM7 KOJO", "Kojo", "Addo", "", "0551234567", "Volta"]]


def test_duplicate_to_compare_names_the_row_its_tables_show(monkeypatch, sqlite_url):
    at = make_app(monkeypatch, sqlite_url)
    to_review(at, "dups.xlsx", corpus.xlsx({"Customers": [HEADER, *TWO_DUPLICATES]}))
    assert not at.exception
    browser = Browser()
    assert browser.look(at)["Duplicate to compare"] == "Row 5: same phone as an earlier row"
    assert list(at.dataframe[-1].value.columns)[1:3] == ["Row 2 (kept)", "Row 5 (fails)"]
    # Row 5 gets a phone of its own (the third failing row in the grid): only row 8 is a duplicate now.
    grid = at.data_editor[0].value
    position = grid["Row"].tolist().index(5)
    at.session_state[grid_key(at)] = {"edited_rows": {position: {"phone": "0209998888"}}, "added_rows": [],
                                      "deleted_rows": []}
    at.run()
    assert not at.exception
    assert list(at.dataframe[-1].value.columns)[1:3] == ["Row 7 (kept)", "Row 8 (fails)"]
    assert browser.look(at)["Duplicate to compare"] == "Row 8: same phone as an earlier row"


def test_find_and_replace_stays_open_while_typing():
    at = AppTest.from_function(conversion_page, args=("replace-section",), default_timeout=60).run()
    assert not at.exception
    assert at.expander[0].label == "Find and replace in a column"
    assert not at.expander[0].proto.expanded
    at.session_state[cleaning.REPLACE_OPEN] = True  # the analyst opens it (the browser reports it)
    at.run()
    assert at.expander[0].proto.expanded
    select_box(at, "Column").set_value("region").run()
    at.text_input(key=cleaning.REPLACE_FIND).input("Somewhere Else").run()
    assert not at.exception
    assert "Fixes **4** failing rows" in "\n".join(str(m.value) for m in at.markdown)  # the preview appeared
    # Drawn open from the session: the new preview inside does not fold it (Streamlit issue 2360).
    assert at.expander[0].proto.expanded


def test_bulk_fix_settings_come_back_after_a_refresh(monkeypatch, sqlite_url):
    at = make_app(monkeypatch, sqlite_url)
    to_review(at, "messy.xlsx", corpus.xlsx({"Customers": [HEADER, *MESSY_ROWS]}))
    at.checkbox(key=keys.FIX_ONLY_FAILING).uncheck().run()
    at.selectbox(key=keys.FILL_REGION).set_value("VOLTA").run()
    assert not at.exception
    # Both are bound to the address: the browser writes each change into it (AppTest has no browser to).
    assert at.checkbox(key=keys.FIX_ONLY_FAILING).proto.query_param_key == keys.FIX_ONLY_FAILING
    assert at.selectbox(key=keys.FILL_REGION).proto.query_param_key == keys.FILL_REGION
    address = {"ws": at.query_params["ws"], keys.FIX_ONLY_FAILING: "false", keys.FILL_REGION: "Volta"}
    # A refresh: a new session at that address.
    again = make_app(monkeypatch, sqlite_url)
    for name, value in address.items():
        again.query_params[name] = value
    again.switch_page("views/review.py").run()
    assert not again.exception
    assert "Your work on this file was restored" in texts(again)
    assert again.checkbox(key=keys.FIX_ONLY_FAILING).value is False
    assert again.selectbox(key=keys.FILL_REGION).value == "VOLTA"
