"""Values stored as the cell showed them, or the change listed, or the value refused with a reason (issue 22,
items 2, 3 and 4: "Values stored differently from the cell").

Each example of the issue is a test here; each failed before the change (stored silently changed).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from openpyxl import Workbook

from importer.api import read_upload
from importer.checks import normalise as clean
from importer.checks.changes import Changes, upload_changes
from importer.checks.validate import check_frame, exclude
from importer.cli import main
from importer.intake.zip_guard import format_whole_number, long_number_text, number_format_tokens
from importer.mapping.columns import split_full_name, split_preview
from importer.settings import Settings
from schemas.customer import FIELD_NAMES
from tests.fixtures import corpus

SETTINGS = Settings()


def frame(*rows: dict[str, str]) -> pd.DataFrame:
    data = pd.DataFrame([{f: row.get(f, "") for f in FIELD_NAMES} for row in rows], dtype="str")
    data.index = pd.Index(range(2, 2 + len(rows)), name="source_row_number")
    return data


def customer(mark: str = "KSI-1", phone: str = "0241234567", **more: str) -> dict[str, str]:
    return {"shipping_mark": mark, "first_name": "Kofi", "last_name": "Mensah", "phone": phone, **more}


# -- phone extensions --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("typed", "phone", "other"), [
    ("024-123-4567 ext 12", "+233241234567", "+233241234567 ext 12"),
    ("0241234568 x205", "+233241234568", "+233241234568 ext 205"),
    ("0302 123 456 Ext. 3", "+233302123456", "+233302123456 ext 3"),
])
def test_phone_extension_is_kept_in_other_phones_and_listed(typed: str, phone: str, other: str) -> None:
    """Before: `024-123-4567 ext 12` was stored as +233241234567 and the extension dropped."""
    checked = check_frame(frame(customer(phone=typed)), SETTINGS)
    assert len(checked.errors) == 0
    row = checked.normalised.iloc[0]
    assert (row["phone"], row["other_phones"]) == (phone, other)
    assert checked.changes.count("phone_extension") == 1
    (change,) = checked.changes.without("region_default")  # the blank region got the default: listed too
    assert change.message == "Kept 1 phone extension in Other Phones"
    assert change.examples == ((2, typed, f"{phone}, {other}"),)
    assert change.to_json()["field"] == "phone"


def test_extensions_are_counted_per_row_with_examples_and_survive_rechecks() -> None:
    rows = [customer(f"KSI-{i}", f"024123456{i} ext {i}") for i in range(4)] + [customer("KSI-9", "0241111111")]
    checked = check_frame(frame(*rows), SETTINGS)
    assert checked.changes.lines()[0].startswith("Kept 4 phone extensions in Other Phones (row 2: 0241234560 ext 0")
    assert exclude(checked, [6]).changes == checked.changes  # the record stays on the upload
    assert Changes.from_json(json.loads(json.dumps(checked.changes.to_json()))) == checked.changes
    assert clean.phone_list("+233241234567 ext 12, 0248503716") == ("+233241234567 ext 12", "+233248503716")


def test_other_phones_cell_keeps_its_extension() -> None:
    checked = check_frame(frame(customer(other_phones="0241234568 x205")), SETTINGS)
    assert checked.normalised.iloc[0]["other_phones"] == "+233241234568 ext 205"


def test_negative_phone_fails_with_a_reason() -> None:
    """Before: `-241234574` (a number Excel made negative) became +233241234574 without a note."""
    checked = check_frame(frame(customer(phone="-241234574")), SETTINGS)
    assert pd.isna(checked.normalised.iloc[0]["phone"])
    (error,) = checked.errors[2]
    assert (error.field, error.code.value) == ("phone", "invalid_phone")
    assert "negative number" in error.message
    assert clean.normalise_phone("-024-123-4567") == "+233241234567"  # a dash as punctuation is still formatting


# -- shipping marks ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("mark", ["PM6 ß", "pm6 ß", "PM ı", "KSI ﬁ"])
def test_upper_casing_never_makes_a_refused_character_valid(mark: str) -> None:
    """Before: `PM6 ß` became `PM6 SS`: upper-casing turned a character the pattern refuses into one it accepts."""
    checked = check_frame(frame(customer(mark=mark)), SETTINGS)
    (error,) = checked.errors[2]
    assert (error.field, error.code.value) == ("shipping_mark", "invalid_format")
    assert "SS" not in (error.value or "") and "is not a valid shipping mark" in error.message
    assert clean.normalise_shipping_mark(" pm4   kofi ") == "PM4 KOFI"


def test_mark_excel_showed_in_scientific_notation_fails_with_advice() -> None:
    with pytest.raises(clean.InvalidValue, match="scientific notation"):
        clean.normalise_shipping_mark("1.23457E+21")


# -- names -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("full", "first", "last"), [
    ("Kwame Nkrumah Jr.", "Kwame", "Nkrumah Jr."),
    ("Nana Yaa Asantewaa II", "Nana Yaa", "Asantewaa II"),
    ("Kofi Annan Snr", "Kofi", "Annan Snr"),
    ("Ama Owusu (Mrs)", "Ama", "Owusu"),
    ("Mensah Kofi, Mrs", "Mensah", "Kofi"),
    ("Mr. Kofi Mensah", "Kofi", "Mensah"),
])
def test_suffixes_stay_with_the_surname_and_honorifics_are_dropped(full: str, first: str, last: str) -> None:
    """Before: Jr. and II became the last name, (Mrs) the last name, and `Mensah Kofi, Mrs` first name Mrs."""
    firsts, lasts = split_full_name(pd.Series([full], dtype="str"))
    assert (firsts.iloc[0], lasts.iloc[0]) == (first, last)


def _workbook(header: list[str], rows: list[list[object]], formats: dict[int, str] | None = None) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = "Customers"
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    for column, code in (formats or {}).items():
        for r in range(2, len(rows) + 2):
            sheet.cell(r, column).number_format = code
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def test_dropped_honorifics_are_listed_on_the_upload() -> None:
    data = _workbook(["S/Mark", "Customer Name", "Phone"], [
        ["KSI-1", "Ama Owusu (Mrs)", "0241234567"], ["KSI-2", "Mensah Kofi, Mrs", "0241234568"],
        ["KSI-3", "Kwame Nkrumah Jr.", "0241234569"], ["KSI-4", "Kofi Boateng", "0241234570"],
    ])
    upload = read_upload(data, "names.xlsx", SETTINGS)
    names = upload.checked.normalised[["first_name", "last_name"]].values.tolist()
    assert names == [["Ama", "Owusu"], ["Mensah", "Kofi"], ["Kwame", "Nkrumah Jr."], ["Kofi", "Boateng"]]
    changes = upload_changes(upload)
    assert changes.count("name_honorific") == 2
    assert changes.without("region_default").lines() == ["Dropped 2 honorifics (Mr, Mrs, Dr...) from full names (row 2: Ama Owusu (Mrs) -> "
                               "Ama + Owusu (dropped Mrs); row 3: Mensah Kofi, Mrs -> Mensah + Kofi (dropped Mrs))"]
    preview = split_preview(upload.notes.full_names)
    assert preview["Note"].tolist()[:2] == ["honorific dropped: Mrs", "honorific dropped: Mrs"]


# -- cells as the user sees them ---------------------------------------------------------------------------


def test_padded_number_format_keeps_the_displayed_text() -> None:
    """Before: a numeric mark formatted `0000` (Excel shows 0042) was stored as 42; 0123 as 123; a phone
    formatted `0000000000` lost its zero only to have it guessed back."""
    data = _workbook(["Shipping Mark", "First Name", "Last Name", "Phone"], [
        [42, "Kofi", "Mensah", 241234567], [123, "Ama", "Owusu", 241234568],
    ], formats={1: "0000", 4: "0000000000"})
    upload = read_upload(data, "padded.xlsx", SETTINGS)
    assert upload.checked.original["shipping_mark"].tolist() == ["0042", "0123"]
    assert upload.checked.original["phone"].tolist() == ["0241234567", "0241234568"]
    assert upload.checked.normalised["shipping_mark"].tolist() == ["0042", "0123"]


def test_long_number_keeps_its_digits_or_fails() -> None:
    """Before: a 22-digit mark was stored as 1234567890123457000000 (a float's digits). openpyxl writes such a
    number as `1.234567890123457e+21` (digits lost in the file: Excel shows 1.23457E+21); another writer may put
    all 22 digits in the XML, and then they are the cell's."""
    data = _workbook(["Shipping Mark", "First Name", "Last Name", "Phone"], [
        [1, "Kofi", "Mensah", "0241234567"],
        [1234567890123456789012, "Ama", "Owusu", "0241234568"],
    ])
    data = corpus.patch_zip(data, "xl/worksheets/sheet1.xml",
                            lambda xml: xml.replace('<c r="A2" t="n"><v>1</v>', '<c r="A2" t="n"><v>1234567890123456789012</v>'))
    upload = read_upload(data, "long.xlsx", SETTINGS)
    marks = upload.checked.original["shipping_mark"].tolist()
    assert marks[0] == "1234567890123456789012"  # the file's own digits
    assert marks[1] == "1.23457E+21"  # a float: what Excel's General shows, and it fails with advice
    (error,) = upload.checked.errors[3]
    assert error.field == "shipping_mark" and "scientific notation" in error.message


def test_number_format_helpers() -> None:
    assert format_whole_number(42, number_format_tokens("0000") or ()) == "0042"
    assert format_whole_number(241234567, number_format_tokens("000 000 0000") or ()) == "024 123 4567"
    assert format_whole_number(12345, number_format_tokens("000") or ()) == "12345"
    assert format_whole_number(7, number_format_tokens('"KSI-"000') or ()) == "KSI-007"
    assert number_format_tokens("0") is None and number_format_tokens("0.00") is None
    assert number_format_tokens("General") is None and number_format_tokens("dd/mm/yyyy") is None
    assert long_number_text("1234567890123456789012") == "1234567890123456789012"
    assert long_number_text("1.2345678901234568E+21") == "1.23457E+21"
    assert long_number_text("241234567") is None and long_number_text("1E+21") == "1E+21"


# -- one identity per mailbox ------------------------------------------------------------------------------


def test_idn_and_punycode_domains_are_one_mailbox() -> None:
    """Before: the same mailbox spelled with an IDN domain and with its punycode became two customers."""
    checked = check_frame(frame(customer("KSI-1", "0241234567", email="kofi@bücher.com"),
                                customer("KSI-2", "0241234568", email="Kofi@XN--BCHER-KVA.COM")), SETTINGS)
    assert checked.normalised["email"].tolist() == ["kofi@bücher.com", "kofi@bücher.com"]
    (error,) = checked.errors[3]
    assert (error.field, error.code.value) == ("email", "duplicate_in_file")
    assert checked.changes.count("email_unicode_domain") == 1
    assert clean.normalise_email("Kofi.Mensah+x@Gmail.com") == "kofi.mensah+x@gmail.com"  # local part as typed


# -- the integrity.xlsx through the CLI, read back from the database ---------------------------------


def test_integrity_workbook_is_stored_as_shown_or_listed_or_refused(tmp_path: Path, sqlite_url: str,
                                                                   capsys) -> None:
    book = Workbook()
    sheet = book.active
    sheet.title = "Customers"
    sheet.append(["Shipping Mark", "Customer Name", "Email", "Phone"])
    rows = [
        ["KSI-1", "Kwame Nkrumah Jr.", "kofi@bücher.com", "024-123-4567 ext 12"],
        ["KSI-2", "Nana Yaa Asantewaa II", "ama@xn--bcher-kva.com", "0241234568 x205"],
        ["KSI-3", "Ama Owusu (Mrs)", "", "0241234569"],
        ["KSI-4", "Mensah Kofi, Mrs", "", "0241234570"],
        ["PM6 ß", "Yaw Boateng", "", "0241234571"],
        [42, "Esi Addo", "", "0241234572"],
        [1234567890123456789012, "Kojo Asante", "", "0241234573"],
        ["KSI-8", "Efua Darko", "", -241234574],
        ["KSI-9", "Abena Osei", "kofi@xn--bcher-kva.com", "0241234575"],
    ]
    for row in rows:
        sheet.append(row)
    sheet.cell(7, 1).number_format = "0000"
    path = tmp_path / "integrity.xlsx"
    book.save(path)
    assert main(["import", str(path), "--json", "--database-url", sqlite_url]) == 0
    result = json.loads(capsys.readouterr().out)
    failed = {f["source_row_number"]: f["errors"][0]["code"] for f in result["failed_customers"]}
    # PM6 ß and the 22-digit mark (openpyxl wrote it as 1.234567890123457e+21: Excel shows 1.23457E+21) fail
    # with a reason, as do the negative phone and the second spelling of kofi@bücher.com.
    assert failed == {6: "invalid_format", 8: "invalid_format", 9: "invalid_phone", 10: "duplicate_in_file"}
    engine = sa.create_engine(sqlite_url)
    with engine.connect() as conn:
        stored = {r.shipping_mark: r for r in conn.execute(sa.text("SELECT * FROM customers"))}
    assert (stored["KSI-1"].phone, stored["KSI-1"].other_phones) == ("+233241234567", "+233241234567 ext 12")
    assert stored["KSI-2"].other_phones == "+233241234568 ext 205"
    assert (stored["KSI-1"].first_name, stored["KSI-1"].last_name) == ("Kwame", "Nkrumah Jr.")
    assert (stored["KSI-2"].first_name, stored["KSI-2"].last_name) == ("Nana Yaa", "Asantewaa II")
    assert (stored["KSI-3"].first_name, stored["KSI-3"].last_name) == ("Ama", "Owusu")
    assert stored["KSI-4"].first_name != "Mrs" and stored["KSI-4"].last_name != "Mrs"
    assert "0042" in stored and "1234567890123457000000" not in stored
    assert "PM6 SS" not in stored
    assert stored["KSI-2"].email == "ama@bücher.com"
