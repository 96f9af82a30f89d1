"""Review's possible duplicates section (ui/duplicates.py) in Streamlit's AppTest, on real SQLite and PostgreSQL:
pairs side by side, keep both, exclude this row, update that customer."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from importer.database.loader import run_import
from tests.app_support import select_box
from tests.support import SETTINGS, checked_of, person, ready_engine
from ui import duplicates as section
from ui import keys

LOOKALIKES = [  # rows 2-4 of the file
    person(1, first_name="Ama", last_name="Serwaa", phone="0201111111"),
    person(2, first_name="Kofi", last_name="Mensah", phone="0241234568", email="k.m@example.com"),
    person(3, first_name="Ama", last_name="Serwaa", phone="0201111112"),
]


def lookalikes_csv() -> bytes:
    fields = ["shipping_mark", "first_name", "last_name", "email", "phone", "region"]
    lines = ["Shipping Mark,First Name,Last Name,Email,Phone,Region",
             *(",".join(p[f] for f in fields) for p in LOOKALIKES)]
    return ("\n".join(lines) + "\n").encode()


def page(url: str, existing: str = "skip") -> None:
    """What views/review.py does with the section (AppTest runs this function's body as the script): the file
    is a saved workspace, as the Upload page makes it, and the decisions are its operations."""
    import streamlit as st

    from importer.api import read_upload
    from importer.database.schema import make_engine
    from tests.support import SETTINGS
    from tests.test_duplicates_ui import lookalikes_csv
    from ui import decisions, state, workspace
    from ui.duplicates import show_possible_duplicates

    if state.upload() is None:
        data = lookalikes_csv()
        upload = read_upload(data, "lookalikes.csv", SETTINGS)
        state.set_upload(upload)
        workspace.start(data, upload)
    if notice := state.pop_notice():
        st.success(notice)
    upload = state.upload()
    assert upload is not None
    new = show_possible_duplicates(make_engine(url), upload.checked, SETTINGS, existing=existing)
    st.text(f"kept: {sorted(decisions.current().kept)}; accepted: {sorted(decisions.current().accepted)}")
    if new is not None:
        workspace.set_checked(new)
        st.rerun()


def app(monkeypatch, database_url: str, existing: str = "skip") -> AppTest:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("APP_PASSWORD", raising=False)
    engine = ready_engine(database_url)
    run_import(engine, checked_of([person(1, first_name="Kofi", last_name="Mensah", phone="0241234567")]),
               file_name="seed.csv", sha256="0" * 64, sheet=None, settings=SETTINGS)
    engine.dispose()
    return AppTest.from_function(page, args=(database_url, existing), default_timeout=60).run()


def replayed(database_url: str, at: AppTest):
    """The session's workspace as a refresh or another tab would open it."""
    from importer.workspace import store as ws

    engine = ready_engine(database_url)
    try:
        return ws.open_workspace(engine, at.session_state[keys.WORKSPACE][0].id, SETTINGS)
    finally:
        engine.dispose()


def shown(at: AppTest) -> str:
    return "\n".join(str(e.value) for kind in ("subheader", "caption", "success", "warning", "error")
                     for e in getattr(at, kind))


def test_pairs_side_by_side(monkeypatch, database_url):
    at = app(monkeypatch, database_url)
    assert not at.exception
    assert "2 possible duplicate pairs found." in shown(at)
    assert select_box(at, "Pair to compare").options == [
        "Row 3 and customer #1: same name, phone one digit apart",
        "Row 4 and row 2: same name, phone one digit apart"]
    table = at.dataframe[0].value
    assert list(table.columns) == ["Field", "Row 3 (this row)", "Customer #1 in the database", "Compared"]
    phone = table[table["Field"] == "Phone"].iloc[0]
    assert (phone["Row 3 (this row)"], phone["Customer #1 in the database"], phone["Compared"]) == (
        "0241234568", "+233241234567", "differs")
    compared = dict(zip(table["Field"], table["Compared"], strict=True))
    # Compared on the stored forms: a blank region is the default region the customer has.
    assert (compared["First Name"], compared["Region"], compared["Shipping Mark"]) == ("same", "same", "differs")
    # Without updates, a stored customer's pair offers keep both and exclude, and says how to update.
    assert [o for o in at.radio[0].options] == ["Keep both: they are different people",
                                                "Exclude this row from the import"]
    assert "import with existing customers updated" in shown(at)
    select_box(at, "Pair to compare").set_value(1).run()
    assert list(at.dataframe[0].value.columns)[1:3] == ["Row 4 (this row)", "Row 2"]


def test_keep_both_then_exclude(monkeypatch, database_url):
    at = app(monkeypatch, database_url)
    at.radio[0].set_value("keep_both").run()
    at.button(key=section.APPLY).click().run()
    assert not at.exception
    assert "Row 3 and customer #1 are kept as different people." in shown(at)
    assert "1 possible duplicate pair found." in shown(at)
    assert at.text[0].value == "kept: [(3, 'customer', 1)]; accepted: []"  # the workspace's decision
    at.radio[0].set_value("exclude_row").run()
    at.button(key=section.APPLY).click().run()
    assert "Excluded row 4: it will not be imported." in shown(at)
    assert list(at.session_state[keys.UPLOAD].checked.original.index) == [2, 3]
    assert "No possible duplicates found." in shown(at)
    again = replayed(database_url, at)  # a refresh: the pair kept, the row excluded and listed
    assert list(again.upload.checked.original.index) == [2, 3]
    assert [(e.source_row, e.why) for e in again.excluded] == [(4, "possible duplicate of row 2")]


def test_update_that_customer(monkeypatch, database_url):
    at = app(monkeypatch, database_url, existing="update")
    assert at.radio[0].options[-1] == "Update that customer with this row"
    at.radio[0].set_value("update_customer").run()
    at.button(key=section.APPLY).click().run()
    assert not at.exception
    assert "Row 3 now has customer #1's shipping mark (PM1 KOFI)" in shown(at)
    assert at.session_state[keys.UPLOAD].checked.original.at[3, "shipping_mark"] == "PM1 KOFI"
    assert replayed(database_url, at).upload.checked.original.at[3, "shipping_mark"] == "PM1 KOFI"
    assert select_box(at, "Pair to compare").options == ["Row 4 and row 2: same name, phone one digit apart"]
    assert at.text[0].value == "kept: []; accepted: [3]"  # its change to customer #1 accepted


def test_database_down_still_compares_the_file(monkeypatch):
    down = "postgresql+psycopg2://nobody@127.0.0.1:1/none"
    monkeypatch.setenv("DATABASE_URL", down)
    at = AppTest.from_function(page, args=(down,), default_timeout=60).run()
    assert not at.exception
    assert "Only the rows of the file were compared with each other." in shown(at)
    assert select_box(at, "Pair to compare").options == ["Row 4 and row 2: same name, phone one digit apart"]


def test_widget_keys_do_not_clash_with_the_pages():
    page_keys = {v for k, v in vars(keys).items() if k.isupper() and isinstance(v, str)}
    assert not page_keys & {section.PAIRS, section.PICK, section.CHOICE, section.APPLY}


def test_side_by_side_compares_stored_forms():
    table = section.side_by_side({"phone": "024 123 4567", "email": ""}, {"phone": "+233241234567", "email": None},
                                 "Row 2", "Customer #1", {"phone": "+233241234567"})
    assert table.to_dict("records") == [
        {"Field": "Phone", "Row 2": "024 123 4567", "Customer #1": "+233241234567", "Compared": "same"}]
