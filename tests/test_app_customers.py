"""The Customers page (issue 9), run with a signed-in user on real SQLite and PostgreSQL: search, region and run
filters, keyset pages, a customer's detail with an update's diff, and the export of what the filters select.
The customers come from the engine: two imports of uploaded workbooks, the second with existing="update"."""

from __future__ import annotations

import csv
import io

import pytest

from importer.api import import_upload, read_upload
from importer.database import customers as customers_engine
from importer.database.schema import ensure_schema, make_engine
from importer.output import customer_export as export
from importer.output.customer_export import export_bytes
from importer.settings import Settings
from tests.app_support import HEADER, make_app, texts
from tests.fixtures import corpus
from ui import keys

PASSWORD = "customers-page-pw"
REGION_NAMES = ("Volta", "Ashanti")


def _row(i: int, phone: str | None = None) -> list[str]:
    return [f"KSI-{i:05d}", "Kofi" if i % 3 else "Ama", f"Mensah{i}", f"kofi{i}@example.com",
            phone or f"024{i:07d}", REGION_NAMES[i % 2]]


def _seed(url: str) -> tuple[int, int]:
    """61 customers: 60 from run 1, then run 2 changes KSI-00007's phone and adds KSI-00100. (run ids)"""
    settings = Settings.from_env({"DATABASE_URL": url})
    engine = make_engine(url)
    ensure_schema(engine)
    first = import_upload(engine, read_upload(corpus.xlsx({"Customers": [HEADER, *(_row(i) for i in range(1, 61))]}),
                                              "october.xlsx", settings), settings)
    november = [_row(i) for i in range(1, 11)]
    november[6] = _row(7, phone="0559876543")
    second = import_upload(engine, read_upload(corpus.xlsx({"Customers": [HEADER, *november, _row(100)]}),
                                               "november.xlsx", settings), settings, existing="update")
    assert (first.total_created, second.total_created, second.total_updated, second.total_unchanged) == (60, 1, 1, 9)
    engine.dispose()
    return first.run_id, second.run_id


def sign_in(at):
    at.text_input(key=keys.LOGIN_NAME).input("Efua")
    at.text_input(key=keys.LOGIN_PASSWORD).input(PASSWORD)
    at.get("form_submit_button")[0].click()
    return at.run()


@pytest.fixture
def page(monkeypatch, database_url):
    """The Customers page, signed in, over the two imports."""
    runs = _seed(database_url)
    at = sign_in(make_app(monkeypatch, database_url, password=PASSWORD))
    at.switch_page("views/customers.py").run()
    assert not at.exception, [e.value for e in at.exception]
    at.runs = runs
    at.url = database_url
    return at


def _marks(at) -> list[str]:
    return list(at.dataframe[0].value["Shipping Mark"])


def _caption(at) -> str:
    return at.caption[0].value


def test_search_finds_a_customer_by_mark_name_phone_or_email(page):
    assert _caption(page) == "Rows 1-50 of 61 customers"
    for typed in ("ksi-00042", "Ama Mensah42", "024 000 0042", "KOFI42@example"):
        page.text_input(key=keys.CUSTOMERS_SEARCH).input(typed).run()
        assert _marks(page) == ["KSI-00042"], typed
        assert _caption(page) == "Rows 1-1 of 1 customer"
    page.text_input(key=keys.CUSTOMERS_SEARCH).input("nobody here").run()
    assert "No customer matches." in texts(page)


def test_region_and_run_filters(page):
    first, second = page.runs
    page.selectbox(key=keys.CUSTOMERS_REGION).set_value("VOLTA").run()
    table = page.dataframe[0].value
    assert _caption(page) == "Rows 1-31 of 31 customers"  # the even ones, KSI-00100 too
    assert set(table["Region"]) == {"Volta"}
    page.selectbox(key=keys.CUSTOMERS_REGION).set_value(None).run()
    page.selectbox(key=keys.CUSTOMERS_RUN).set_value(second).run()
    assert _marks(page) == ["KSI-00007", "KSI-00100"]  # updated by run 2, created by run 2
    assert list(page.dataframe[0].value["Run"]) == [f"#{first}", f"#{second}"]  # the run that created each
    page.selectbox(key=keys.CUSTOMERS_REGION).set_value("VOLTA").run()
    assert _marks(page) == ["KSI-00100"]


def test_pages_go_forward_back_and_to_the_first(page):
    page.selectbox(key=keys.CUSTOMERS_PAGE_SIZE).set_value(25).run()
    assert _caption(page) == "Rows 1-25 of 61 customers"
    assert page.button(key=keys.CUSTOMERS_PREVIOUS).disabled
    page.button(key=keys.CUSTOMERS_NEXT).click().run()
    assert _caption(page) == "Rows 26-50 of 61 customers"
    assert _marks(page)[0] == "KSI-00026"
    page.button(key=keys.CUSTOMERS_NEXT).click().run()
    assert _caption(page) == "Rows 51-61 of 61 customers"
    assert _marks(page)[-2:] == ["KSI-00060", "KSI-00100"]
    assert page.button(key=keys.CUSTOMERS_NEXT).disabled
    page.button(key=keys.CUSTOMERS_PREVIOUS).click().run()
    assert _caption(page) == "Rows 26-50 of 61 customers"
    page.button(key=keys.CUSTOMERS_NEXT).click().run()
    page.button(key=keys.CUSTOMERS_FIRST).click().run()
    assert _caption(page) == "Rows 1-25 of 61 customers"
    page.button(key=keys.CUSTOMERS_NEXT).click().run()
    page.text_input(key=keys.CUSTOMERS_SEARCH).input("ama").run()  # new filters start at the first page
    assert _caption(page) == "Rows 1-20 of 20 customers"


def test_detail_shows_the_creating_run_and_the_update_with_its_diff(page):
    first, second = page.runs
    page.text_input(key=keys.CUSTOMERS_SEARCH).input("KSI-00007").run()
    [customer_id] = page.dataframe[0].value["ID"]
    page.selectbox(key=keys.CUSTOMERS_DETAIL).set_value(customer_id).run()
    assert not page.exception
    record = dict(page.dataframe[1].value[["Field", "Value"]].itertuples(index=False, name=None))
    assert (record["Shipping Mark"], record["Phone"], record["Region"]) == ("KSI-00007", "+233559876543", "Ashanti")
    assert f"Created by run **#{first}** (october.xlsx, row 8)" in texts(page)
    assert "Updated by 1 import:" in texts(page)
    assert f"- run **#{second}** (november.xlsx, row 8) on " in texts(page)
    changes = page.dataframe[2].value
    assert changes[["Run", "Field", "Before", "After"]].values.tolist() == [
        [f"#{second}", "Phone", "+233240000007", "+233559876543"]]
    page.text_input(key=keys.CUSTOMERS_SEARCH).input("KSI-00008").run()
    [other] = page.dataframe[0].value["ID"]
    page.selectbox(key=keys.CUSTOMERS_DETAIL).set_value(other).run()
    assert "No import has changed this customer since." in texts(page)


def test_export_holds_what_the_filters_select(page):
    first, second = page.runs
    page.selectbox(key=keys.CUSTOMERS_RUN).set_value(second).run()
    assert page.download_button(key=keys.CUSTOMERS_CSV).label == "Export as CSV"
    assert page.download_button(key=keys.CUSTOMERS_XLSX).label == "Export as Excel"
    text, region, run_id, _ = page.session_state[keys.CUSTOMERS_QUERY]
    assert (text, region, run_id) == ("", None, second)
    engine = make_engine(page.url)
    data = export_bytes(engine, "csv", text or None, region=region, run_id=run_id)
    engine.dispose()
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    # A leading + is defused like any formula-like text (and read back as the number on upload).
    assert [(r["Shipping Mark"], r["Phone"], r["Import Run"]) for r in rows] == [
        ("KSI-00007", "'+233559876543", str(first)), ("KSI-00100", "'+233240000100", str(second))]
    assert [r["Shipping Mark"] for r in rows] == _marks(page)


def test_a_big_set_exports_as_zipped_csv_and_not_as_excel(page, monkeypatch):
    """The limits made small: a search whose count stops is counted on for the export, up to the Excel limit."""
    monkeypatch.setattr(customers_engine, "SEARCH_COUNT_CAP", 5)
    monkeypatch.setattr(export, "ZIP_CSV_PAST", 10)
    monkeypatch.setattr(export, "XLSX_DOWNLOAD_LIMIT", 30)
    page.text_input(key=keys.CUSTOMERS_SEARCH).input("ksi-0000").run()  # KSI-00001..KSI-00009
    assert _caption(page) == "Rows 1-9 of at least 9 customers"  # counting stopped at 5
    assert page.download_button(key=keys.CUSTOMERS_CSV).label == "Export as CSV"
    assert not page.download_button(key=keys.CUSTOMERS_XLSX).disabled
    page.text_input(key=keys.CUSTOMERS_SEARCH).input("ksi").run()  # 61 customers
    assert _caption(page) == "Rows 1-50 of at least 50 customers"
    assert page.download_button(key=keys.CUSTOMERS_CSV).label == "Export as CSV (zipped)"
    assert page.download_button(key=keys.CUSTOMERS_XLSX).disabled
    assert "Excel takes up to 30 customers at a time here" in texts(page)
    page.text_input(key=keys.CUSTOMERS_SEARCH).input("").run()
    page.selectbox(key=keys.CUSTOMERS_REGION).set_value("VOLTA").run()  # 31, counted exactly
    assert page.download_button(key=keys.CUSTOMERS_CSV).label == "Export as CSV (zipped)"
    assert page.download_button(key=keys.CUSTOMERS_XLSX).disabled
