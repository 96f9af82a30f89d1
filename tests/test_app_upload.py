"""The Upload page: no file, refused files, a valid file, sheets, and fixing the column mapping."""

from __future__ import annotations

from tests.app_support import GOOD_ROWS, HEADER, good_xlsx, make_app, texts, upload
from tests.fixtures import corpus
from ui import keys


def test_no_file_shows_how_to_start(monkeypatch, sqlite_url):
    at = make_app(monkeypatch, sqlite_url).run()
    assert not at.exception
    assert at.title[0].value == "Upload a customer file"
    assert "Choose a file above to begin" in texts(at)
    assert at.download_button(key="upload_template") is not None
    assert "0** customers in the database" in texts(at) or "**0** customers" in texts(at)


def test_valid_file_shows_mapping_and_preview(monkeypatch, sqlite_url):
    at = make_app(monkeypatch, sqlite_url).run()
    upload(at, "customers.xlsx", good_xlsx())
    assert not at.exception
    page = texts(at)
    assert "**3** rows read from sheet **Customers**" in page
    assert "Header found in row 1." in page
    assert "**Phone** → Phone" in page
    assert at.dataframe[0].value.shape[0] == 3
    assert at.button(key=keys.CONTINUE).label == "Continue to review 3 rows"
    assert not at.error


def test_refused_file_shows_one_line_reason(monkeypatch, sqlite_url):
    at = make_app(monkeypatch, sqlite_url).run()
    upload(at, "broken.xlsx", corpus.truncated_xlsx())
    assert not at.exception
    assert len(at.error) == 1
    assert "\n" not in at.error[0].value and "Traceback" not in at.error[0].value
    assert keys.UPLOAD not in at.session_state


def test_random_bytes_named_xls_are_refused(monkeypatch, sqlite_url):
    # Other extensions never reach the page: the uploader's type list refuses them in the browser.
    at = make_app(monkeypatch, sqlite_url).run()
    upload(at, "junk.xls", corpus.random_bytes())
    assert not at.exception
    assert len(at.error) == 1 and "junk.xls" in at.error[0].value


def test_missing_column_fixed_with_select_boxes(monkeypatch, sqlite_url):
    header = ["Shipping Mark", "First Name", "Last Name", "Email", "Numero", "Region"]
    data = corpus.xlsx({"Customers": [header, *GOOD_ROWS]})
    at = make_app(monkeypatch, sqlite_url).run()
    upload(at, "odd.xlsx", data)
    assert not at.exception
    assert "Missing required column(s): Phone" in at.error[0].value
    box = at.selectbox(key=f"{keys.MAP_COLUMN}4")
    assert box.label == "Numero (column 5)"
    box.set_value("phone")
    at.get("form_submit_button")[0].click()
    at.run()
    assert not at.exception
    assert not at.error
    assert "**3** rows read" in texts(at)
    assert at.session_state[keys.UPLOAD].mapping.fields[4] == "phone"


def test_mapping_cannot_use_one_field_twice(monkeypatch, sqlite_url):
    at = make_app(monkeypatch, sqlite_url).run()
    upload(at, "customers.xlsx", good_xlsx())
    at.selectbox(key=f"{keys.MAP_COLUMN}3").set_value("phone")
    at.get("form_submit_button")[0].click()
    at.run()
    assert "pick one column for: Phone" in at.error[0].value


def test_sheet_picker_reads_another_sheet(monkeypatch, sqlite_url):
    other = [["PM9 EFUA", "Efua", "Addo", "", "0241112222", ""]]
    data = corpus.xlsx({"Customers": [HEADER, *GOOD_ROWS], "More": [HEADER, *other]})
    at = make_app(monkeypatch, sqlite_url).run()
    upload(at, "two.xlsx", data)
    assert at.selectbox(key=keys.SHEET).value == "Customers"
    at.selectbox(key=keys.SHEET).set_value("More").run()
    assert not at.exception
    assert "**1** rows read from sheet **More**" in texts(at)


def test_continue_frees_the_uploaded_file(monkeypatch, sqlite_url):
    at = make_app(monkeypatch, sqlite_url).run()
    upload(at, "customers.xlsx", good_xlsx())
    at.button(key=keys.CONTINUE).click().run()
    assert at.title[0].value == "Review and fix"
    assert at.session_state[keys.UPLOADER_NONCE] == 1
    at.switch_page("views/upload.py").run()
    assert "**3** rows read" in texts(at)


def test_a_mapping_fixed_by_hand_is_remembered_for_the_next_file_with_those_headers(monkeypatch, sqlite_url):
    header = ["Shipping Mark", "First Name", "Last Name", "Email", "Numero", "Region"]
    at = make_app(monkeypatch, sqlite_url).run()
    upload(at, "kumasi-oct.xlsx", corpus.xlsx({"Customers": [header, *GOOD_ROWS]}))
    at.selectbox(key=f"{keys.MAP_COLUMN}4").set_value("phone")
    at.text_input(key="upload_profile_name").set_value("Kumasi branch")
    at.get("form_submit_button")[0].click()
    at.run()
    assert "Mapping remembered as 'Kumasi branch'" in texts(at)
    # Next month, another analyst session, a new file with the same headers: no refusal, the notice.
    nov = make_app(monkeypatch, sqlite_url).run()
    upload(nov, "kumasi-nov.xlsx", corpus.xlsx({"Customers": [header, *GOOD_ROWS[:2]]}))
    assert not nov.exception
    assert not nov.error
    assert nov.session_state[keys.UPLOAD].mapping.fields[4] == "phone"
    assert "Mapping 'Kumasi branch' (from kumasi-oct.xlsx), saved" in texts(nov)
    # Dropping it reads the file with the detected mapping, which lacks the phone column.
    nov.button(key="profile_drop").click().run()
    assert "Missing required column(s): Phone" in nov.error[0].value
