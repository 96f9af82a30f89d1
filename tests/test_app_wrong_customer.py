"""Issue 22 item 5 on the Review page (Streamlit AppTest, a real SQLite file): the bulk buttons decide what
the filter shows and say so; a possible different person is confirmed on its own; the changes record is
listed with its one-click answers (default region off, broken CSV lines joined)."""

from __future__ import annotations

from schemas.customer import label_of
from tests.app_support import GOOD_ROWS, HEADER, import_file, make_app, select_box, texts, to_review
from tests.fixtures import corpus
from ui import keys


def _editor(at, key_prefix: str):
    return next(e for e in at.data_editor if e.key.startswith(key_prefix))


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_accept_acts_on_the_filter_and_a_different_person_needs_its_own_confirmation(monkeypatch, sqlite_url):
    at = make_app(monkeypatch, sqlite_url)
    import_file(at, "october.xlsx", corpus.xlsx({"Customers": [HEADER, *GOOD_ROWS]}))
    rows = [list(r) for r in GOOD_ROWS]
    rows[0][5] = "Volta"  # row 2: customer #1's region
    rows[1][3] = "ama.new@example.com"  # row 3: customer #2's email
    rows[2][:3] = ["HO-016330", "Ibrahim", "Issah"]  # row 4: customer #3's phone, another mark and name
    to_review(at, "november.xlsx", corpus.xlsx({"Customers": [HEADER, *rows]}))
    assert not at.exception
    assert (metrics(at)["Changed"], metrics(at)["Failing"]) == ("2", "3")
    shown = select_box(at, "Show changes to")
    shown.select_index(shown.options.index(label_of("region"))).run()
    assert at.button(key=keys.ACCEPT_ALL).label == "Accept the region change shown"
    assert at.button(key=keys.REJECT_ALL).label == "Reject the region change shown"
    at.button(key=keys.ACCEPT_ALL).click().run()
    assert not at.exception
    assert "1 accepted" in texts(at) and "1 rejected" in texts(at)  # the hidden email change stays rejected
    # The different person is listed apart, naming the key that matched; confirming it is one click per row.
    assert "Possible different people" in [h.value for h in at.subheader]
    assert select_box(at, "Row").options == ["Row 4: customer #3"]
    assert "possible different person: phone" in texts(at)
    at.button(key=keys.CONFIRM_PERSON).click().run()
    assert not at.exception
    assert "2 accepted" in texts(at)
    assert metrics(at)["Failing"] == "1"


def test_the_changes_record_and_the_default_region_off(monkeypatch, sqlite_url):
    at = make_app(monkeypatch, sqlite_url)
    data = (b"S/Mark,First Name,Last Name,Phone,Location\n"
            b"KSI-1,Kofi,Mensah,0241234567,Ashanti\n"
            b"KSI-2,Ama,Owusu,0241234568,\n"
            b"KSI-3,Yaw,Boateng,0241234569,\n")
    to_review(at, "kumasi.csv", data)
    assert not at.exception
    assert "What reading the file changed" in [h.value for h in at.subheader]
    assert "2 blank regions got the default region GREATER_ACCRA" in texts(at).replace("\\", "")
    assert metrics(at)["Failing"] == "0"
    at.button(key=keys.REGION_DEFAULT_OFF).click().run()
    assert not at.exception
    assert metrics(at)["Failing"] == "2"
    assert "2 blank regions got the default region" not in texts(at)


def test_lines_broken_in_two_are_named_and_joined_in_one_click(monkeypatch, sqlite_url):
    at = make_app(monkeypatch, sqlite_url)
    data = (b"S/Mark,First Name,Last Name,Phone,Location\n"
            b"KSI-1,Kofi,Mensah,0241234567,Ashanti\n"
            b"KSI-2,Ama,Ow\nusu,0241234568,Ashanti\n"
            b"KSI-3,Yaw,Boateng,0241234569,Ashanti\n")
    to_review(at, "broken.csv", data)
    assert not at.exception
    assert any("Rows 3-4 look like one customer broken over two lines" in w.value for w in at.warning)
    at.button(key=keys.JOIN_SPLIT).click().run()
    assert not at.exception
    upload = at.session_state[keys.UPLOAD]
    assert not upload.notes.split_records and len(upload.checked.errors) == 0
    assert upload.checked.original.loc[3, "last_name"] == "Ow usu"


def test_octobers_conversions_are_offered_for_novembers_file(monkeypatch, sqlite_url):
    from ui import cleaning

    at = make_app(monkeypatch, sqlite_url)
    october = (b"S/Mark,First Name,Last Name,Phone,Location\n"
               b"KSI-1,Kofi,Mensah,0241234567,China\n"
               b"KSI-2,Ama,Owusu,0241234568,\"Accra Rd, Kumasi\"\n")
    to_review(at, "kumasi-oct.csv", october)
    grid = _editor(at, cleaning.CONVERT_GRID)
    values = grid.value["Value"].tolist()
    assert grid.value["Convert to"].isna().all()  # China is a question (Chiana?), not pre-filled
    at.session_state[grid.key] = {"edited_rows": {values.index("Accra Rd, Kumasi"): {"Convert to": "ASHANTI"}},
                                  "added_rows": [], "deleted_rows": []}
    at.run()
    at.button(key=cleaning.CONVERT_APPLY).click().run()
    assert not at.exception
    to_review(at, "kumasi-nov.csv", october.replace(b"KSI-", b"HO-"))
    assert not at.exception
    table = _editor(at, cleaning.CONVERT_GRID).value.set_index("Value")
    assert table.loc["Accra Rd, Kumasi", "Convert to"] == "ASHANTI"
    assert "earlier file" in table.loc["Accra Rd, Kumasi", "Why"]
    assert "leave it as it is" in table.loc["China", "Why"]
