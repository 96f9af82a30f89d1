"""Footer and note rows (TOTAL, Prepared by, separators, lone numbers) are skipped at read time and listed."""

from __future__ import annotations

import pytest

from importer.api import read_upload
from importer.intake.delimited import note_reason
from importer.intake.readers import open_file
from importer.mapping.columns import apply_mapping, choose_sheet, sheet_notes
from importer.settings import Settings
from tests.fixtures import corpus

S = Settings()
HEADER = ["S/No", "Mark", "First Name", "Last Name", "Phone", "Location", "Remarks"]
CUSTOMERS = [
    ["1", "PM1", "Kofi", "Mensah", "0241234567", "Kumasi", ""],
    ["2", "PM2", "Ama", "Owusu", "0241234568", "G/A", "paid"],
]


def _read(rows, name="branch.csv"):
    data = corpus.csv_text([HEADER, *rows], ",").encode() if name.endswith(".csv") else corpus.xlsx({"Sheet1": [HEADER, *rows]})
    _, sheet, mapping = choose_sheet(open_file(data, name, S), None, 1000)
    frame = apply_mapping(sheet, mapping, 1000)
    return frame, sheet_notes(sheet).skipped_rows


@pytest.mark.parametrize(
    ("footer", "reason"),
    [
        (["TOTAL"], "a footer or note (starts with 'TOTAL')"),
        (["", "TOTAL CUSTOMERS: 1,300"], "a footer or note (starts with 'TOTAL')"),
        (["TOTAL CUSTOMERS:", "1,300"], "a footer or note (starts with 'TOTAL')"),
        (["Total", "", "", "", "2", "", ""], "a footer or note (starts with 'Total')"),
        (["Grand Total", "", "", "", "", "", "GHS 4,500.00"], "a footer or note (starts with 'Grand Total')"),
        (["Prepared by: Kwesi Appiah", "", "", "Checked by: ________", "", "", "Date: 01/11/2026"],
         "a footer or note (starts with 'Prepared by')"),
        (["", "Checked by", "", "Approved by"], "a footer or note (starts with 'Checked by')"),
        (["Signature: ____"], "a footer or note (starts with 'Signature')"),
        (["NB: customers in red owe money"], "a footer or note (starts with 'NB:')"),
        (["1300"], "only a number"),
        (["", "", "", "", "", "", "1,300"], "only a number"),
        (["57"], "only a number"),  # a numbered row left empty
        (["", "", "", "", "5061", "1300"], "only numbers"),
        (["-----", "-----", "-----", "-----", "-----", "-----", "-----"], "only separators"),
        (["_____", "", "***"], "only separators"),  # (openpyxl writes "=..." as a formula)
        (["", "", "", "", "", "", "call back next week"], "a note outside the customer columns"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("name", ["branch.csv", "branch.xlsx"])
def test_footer_rows_are_skipped_and_listed(footer, reason, name):
    frame, skipped = _read([*CUSTOMERS, footer], name)
    assert frame.index.tolist() == [2, 3]
    assert len(skipped) == 1
    assert skipped[0].row == 4 and skipped[0].reason == reason
    assert skipped[0].text == " | ".join(c for c in footer if c.strip())


@pytest.mark.parametrize(
    "row",
    [
        ["3", "PM3", "Total", "Petroleum", "0241234569", "Tema", ""],  # a name and a phone: a customer
        ["Total", "PM3", "Kofi", "Boateng", "0241234569", "", ""],  # even when the first cell says total
        ["3", "", "", "", "0241234569", "", ""],  # a phone alone: a customer with missing fields, who fails
        ["", "", "Kwame", "", "", "", ""],  # a name alone
        ["3", "PM3"],  # a number and a mark
        ["", "PM-3", "", "", "", "", ""],  # a mark alone (not a number)
        ["", "", "Prepared", "Bymore", "0241234569", "", ""],  # words that only look like a footer's
    ],
)
@pytest.mark.parametrize("name", ["branch.csv", "branch.xlsx"])
def test_rows_that_may_be_customers_are_kept(row, name):
    frame, skipped = _read([*CUSTOMERS, row], name)
    assert frame.index.tolist() == [2, 3, 4] and skipped == ()


def test_rows_above_the_header_are_not_listed_and_a_footer_mid_file_is():
    data = corpus.xlsx({"Sheet1": [["Kumasi branch customers"], ["TOTAL: 3"], HEADER, CUSTOMERS[0],
                                   ["Sub-total", "", "", "", "1"], CUSTOMERS[1], ["TOTAL CUSTOMERS: 2"]]})
    _, sheet, mapping = choose_sheet(open_file(data, "k.xlsx", S), None, 100)
    frame = apply_mapping(sheet, mapping, 100)
    assert frame.index.tolist() == [4, 6]
    assert [s.row for s in sheet_notes(sheet).skipped_rows] == [5, 7]


def test_skipped_rows_are_never_attempted_nor_failures():
    data = corpus.csv_text([HEADER, *CUSTOMERS, ["TOTAL CUSTOMERS: 2"], ["Prepared by Ama"]], ",").encode()
    upload = read_upload(data, "branch.csv", S)
    assert upload.checked.total == 2 and 4 not in upload.checked.original.index
    assert 4 not in upload.checked.errors and 5 not in upload.checked.errors


def test_skipped_rows_do_not_count_against_max_rows():
    rows = [*CUSTOMERS, ["TOTAL"], ["-----"], ["3"]]
    data = corpus.csv_text([HEADER, *rows], ",").encode()
    _, sheet, mapping = choose_sheet(open_file(data, "b.csv", S), None, 10)
    assert len(apply_mapping(sheet, mapping, 2)) == 2


def test_long_footer_text_is_cut_for_the_list():
    _, skipped = _read([*CUSTOMERS, ["Total " + "x" * 500]])
    assert len(skipped[0].text) == 201 and skipped[0].text.endswith("…")


@pytest.mark.parametrize(
    ("cells", "reason"),
    [
        ([], None),
        ([(0, "TOTAL"), (4, "0241234567"), (2, "Kofi")], None),  # name and phone
        ([(0, "TOTAL"), (4, "0241234567")], "a footer or note (starts with 'TOTAL')"),  # no name
        ([(4, "0241234567")], None),  # a phone in the phone column
        ([(6, "0241234567")], "only a number"),  # a phone-like number elsewhere
        ([(0, "+233 24 123 4567")], "only a number"),
        ([(0, "..."), (1, "~~~")], "only separators"),
    ],
)
def test_note_reason(cells, reason):
    assert note_reason(cells, phone_column=4, name_columns=[2, 3], field_columns=[1, 2, 3, 4]) == reason
