"""importer.mapping.columns: header detection, synonyms, positional layout, source row numbers, sheet choice."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from importer.api import read_upload
from importer.errors import FileRefused, LimitExceeded, NoHeader, UsageError
from importer.intake.delimited import SheetRows
from importer.intake.readers import open_file
from importer.mapping.columns import (
    FULL_NAME,
    ColumnMapping,
    apply_mapping,
    choice_label,
    choose_sheet,
    detect_mapping,
    fed_fields,
    mapping_choices,
    match_header,
    one_word_names,
    sheet_notes,
    split_full_name,
    split_preview,
)
from importer.review.conversions import mapping_warnings
from importer.settings import Settings
from schemas.customer import FIELD_NAMES, FIELDS
from tests.fixtures import branch_files, corpus

S = Settings()


@pytest.mark.parametrize(
    ("text", "field"),
    [
        # the contract's synonyms
        ("Surname", "last_name"), ("Family Name", "last_name"), ("Given Name", "first_name"),
        ("Forename", "first_name"), ("Mobile", "phone"), ("Tel", "phone"), ("Phone No.", "phone"),
        ("E-mail", "email"), ("Mark", "shipping_mark"), ("S/Mark", "shipping_mark"),
        ("Company", "company_name"), ("Business Name", "company_name"),
        # case, spacing, punctuation, required markers
        ("SHIPPING_MARK", "shipping_mark"), ("Shipping mark", "shipping_mark"), ("shipping-mark", "shipping_mark"),
        ("  shipping   MARK ", "shipping_mark"), ("ShippingMark", "shipping_mark"), ("Phone *", "phone"),
        ("Phone (required)", "phone"), ("First Name:", "first_name"), ("e.mail", "email"), ("TEL.", "phone"),
        # fuzzy: typos
        ("Shiping Mark", "shipping_mark"), ("Phone Numbr", "phone"), ("Frist Name", "first_name"),
        # places feed Region, whole names the full-name split
        ("Location", "region"), ("City", "region"), ("Town", "region"), ("Area", "region"), ("LOCATION:", "region"),
        ("Full Name", "full_name"), ("Customer Name", "full_name"), ("Cust. Name", "full_name"),
        ("Name", "full_name"), ("Customer's Name", "full_name"), ("NAMES", "full_name"),
        # nothing of ours
        ("Date", None), ("Notes", None), ("Address", None), ("", None), ("   ", None), ("Amount", None),
        ("S/No", None), ("Remarks", None),
    ],
)  # fmt: skip
def test_match_header(text, field):
    assert match_header(text) == field


@pytest.mark.parametrize("spec", FIELDS, ids=lambda s: s.name)
def test_every_field_matches_by_name_label_and_synonyms(spec):
    for text in (spec.name, spec.label, spec.label.upper(), spec.name.replace("_", "-"), *spec.synonyms):
        assert match_header(text) == spec.name, text


def _detect(data: bytes, name: str = "x.xlsx") -> tuple[list[list[str]], ColumnMapping]:
    f = open_file(data, name, S)
    rows = f.rows(f.sheet_names[0], 1000)
    return rows, detect_mapping(rows)


def test_title_rows_are_skipped_to_the_header():
    rows, m = _detect(corpus.titled_xlsx())
    assert m.header_row == 4 and not m.positional
    assert m.fields == ("shipping_mark", "first_name", "last_name", "email", "phone", "region")
    frame = apply_mapping(rows, m, 100)
    assert list(frame.index) == [5, 6, 7]
    assert frame.loc[5, "shipping_mark"] == "PM1 KOFI"


def test_synonym_headers_unknown_columns_listed():
    _, m = _detect(corpus.synonyms_xlsx())
    assert m.header_row == 1
    assert m.fields == (
        "shipping_mark",
        "first_name",
        "last_name",
        "email",
        "phone",
        "company_name",
        None,
        None,
    )
    assert m.unknown_columns == ("Notes", "Date")
    assert m.missing_required == ()


def test_header_needs_two_fields_including_a_required_one():
    rows = [
        ["Email", "Region"],
        ["Shipping Mark", "Notes"],
        ["Mark", "Phone", "Email"],
        ["PM1", "024", "a@b"],
    ]
    assert detect_mapping(rows).header_row == 3


def test_best_row_wins_and_ties_go_to_the_earliest():
    rows = [["Mark", "Phone"], ["Mark", "Phone", "First Name"], ["Mark", "Phone", "Surname"]]
    assert detect_mapping(rows).header_row == 2


def test_only_the_first_scan_rows_are_searched():
    rows = [["title"]] * 5 + [corpus.HEADER]
    assert detect_mapping(rows, scan_rows=6).header_row == 6
    with pytest.raises(NoHeader):
        detect_mapping(rows, scan_rows=5)


def test_each_field_feeds_one_column_exact_beats_fuzzy():
    m = detect_mapping([["Phone", "Mobile", "Shiping Mark", "Shipping Mark"]])
    assert m.fields == ("phone", None, None, "shipping_mark")
    assert m.unknown_columns == ("Mobile", "Shiping Mark")
    assert m.field_columns() == {"phone": 0, "shipping_mark": 3}


def test_missing_required_are_listed_in_field_order():
    m = detect_mapping([["Phone", "Mark", "Address", ""]])
    assert m.missing_required == ("first_name", "last_name")
    assert m.unknown_columns == ("Address",)


def test_legacy_positional_layout():
    rows, m = _detect(corpus.legacy_xlsx())
    assert m.positional and m.header_row is None
    assert m.headers == ("Column A", "Column B", "Column C", "Column D", "Column E", "Column F")
    assert m.fields[:5] == ("shipping_mark", "first_name", "last_name", "email", "phone")
    assert m.missing_required == ()
    frame = apply_mapping(rows, m, 100)
    assert list(frame.index) == [1, 2]
    assert frame.loc[1, "phone"] == "241234567"
    assert frame.loc[2, "phone"] == "020 123 4567"


@pytest.mark.parametrize(
    "rows",
    [
        [["PM1", "Kofi", "Mensah", "k@x.com"]],  # fewer than five columns
        [["PM1", "Kofi", "Mensah", "k@x.com", "not a phone"]],  # column E is no phone
        [["Accra", "42"], ["Kumasi", "17"]],
    ],
)
def test_no_header_and_not_legacy_says_what_is_expected(rows):
    with pytest.raises(NoHeader) as err:
        detect_mapping(rows)
    message = str(err.value)
    assert "Shipping Mark" in message and "Phone" in message
    # The sentence is for people; the command is the detail the CLI prints beside it (issue 23).
    assert "python -m" not in message and "Download the template on the Upload page" in message
    assert "python -m importer template" in (err.value.detail or "")


def test_empty_rows_have_no_header():
    with pytest.raises(NoHeader, match="no data"):
        detect_mapping([[], ["", "  "]])


def test_blank_rows_skipped_every_other_row_counts_with_its_excel_number():
    rows, m = _detect(corpus.blank_and_total_xlsx())
    frame = apply_mapping(rows, m, 100)
    # Excel rows: 3 blank, 5 spaces only, 8-9 blank; 6 a note in an ignored column and 10 "Total": listed.
    assert list(frame.index) == [2, 4, 7]
    assert frame.index.name == "source_row_number"
    assert list(frame.columns) == list(FIELD_NAMES)
    skipped = sheet_notes(rows).skipped_rows
    assert [(s.row, s.text) for s in skipped] == [(6, "only a note"), (10, "Total | 3")]
    assert skipped[0].reason == "a note outside the customer columns"
    assert skipped[1].reason == "a footer or note (starts with 'Total')"
    assert frame.loc[7, "region"] == ""  # short row: missing cells are ""
    assert frame.loc[2, "company_name"] == ""  # unmapped field
    assert all(isinstance(v, str) for v in frame.to_numpy().ravel())


def test_values_are_kept_as_read():
    m = detect_mapping([corpus.HEADER])
    frame = apply_mapping([corpus.HEADER, ["  pm1 kofi ", " Kofi", "Mensah ", "", "241234567.0"]], m, 10)
    assert frame.loc[2, "shipping_mark"] == "  pm1 kofi "
    assert frame.loc[2, "phone"] == "241234567.0"


def test_max_rows_counts_data_rows_exactly():
    rows = [corpus.HEADER, *corpus.ROWS, [], ["", "  "]]
    m = detect_mapping(rows)
    assert len(apply_mapping(rows, m, 3)) == 3
    with pytest.raises(LimitExceeded) as err:
        apply_mapping(rows, m, 2)
    assert "more than 2 data rows (MAX_ROWS)" in str(err.value)


def test_with_fields_is_the_user_s_choice_checked():
    m = detect_mapping([["Mark", "First", "Last", "Phone", "Mobile", "Notes"]])
    moved = m.with_fields(("shipping_mark", "first_name", "last_name", None, "phone", "nickname"))
    assert moved.fields == ("shipping_mark", "first_name", "last_name", None, "phone", "nickname")
    assert moved.unknown_columns == ("Phone",)
    assert m.fields[3] == "phone"  # frozen: the original is unchanged
    with pytest.raises(UsageError, match="one column only; pick one column for: Phone"):
        m.with_fields(("shipping_mark", "first_name", "last_name", "phone", "phone", None))
    with pytest.raises(UsageError, match="missing required field.*Last Name"):
        m.with_fields(("shipping_mark", "first_name", None, "phone", None, None))
    with pytest.raises(UsageError, match="unknown field"):
        m.with_fields(("shipping_mark", "first_name", "last_name", "phone", "not_a_field", None))
    with pytest.raises(UsageError, match="6 columns"):
        m.with_fields(("shipping_mark",))


def test_to_dict_is_json_and_round_trips():
    m = detect_mapping([["S/Mark", "Tel", "Notes"]])
    data = json.loads(json.dumps(m.to_dict()))
    assert data["header_row"] == 1 and data["fields"] == ["shipping_mark", "phone", None]
    assert data["unknown_columns"] == ["Notes"]
    assert data["missing_required"] == ["first_name", "last_name"]
    assert ColumnMapping.from_dict(data) == m


# --- choose_sheet ------------------------------------------------------------------------------


def test_first_sheet_with_all_required_fields_is_chosen():
    f = open_file(corpus.multi_sheet_xlsx(), "m.xlsx", S)
    name, rows, m = choose_sheet(f, None, 100)
    assert name == "Customers" and m.header_row == 1 and m.missing_required == ()
    assert rows[1] == corpus.ROWS[0]


def test_else_the_first_sheet_with_a_header_and_its_missing_columns():
    f = open_file(corpus.partial_only_xlsx(), "p.xlsx", S)
    name, _, m = choose_sheet(f, None, 100)
    assert name == "Partial"
    assert m.missing_required == ("first_name", "last_name")
    assert m.unknown_columns == ("Address",)


def test_named_sheet_is_used_even_when_incomplete():
    f = open_file(corpus.multi_sheet_xlsx(), "m.xlsx", S)
    name, _, m = choose_sheet(f, "Partial", 100)
    assert name == "Partial" and m.fields == ("shipping_mark", "phone")
    with pytest.raises(FileRefused) as err:
        choose_sheet(f, "Missing", 100)
    assert "'Notes', 'Partial', 'Customers'" in str(err.value)


def test_no_sheet_with_a_header():
    f = open_file(corpus.no_header_xlsx(), "n.xlsx", S)
    with pytest.raises(NoHeader) as err:
        choose_sheet(f, None, 100)
    assert "'Sheet1'" in str(err.value) and "python -m" not in str(err.value)
    assert "python -m importer template" in (err.value.detail or "")


def test_choose_sheet_row_limit_names_the_setting():
    f = open_file(corpus.many_rows_xlsx(300), "many.xlsx", S)
    with pytest.raises(LimitExceeded) as err:
        choose_sheet(f, None, 100)
    assert "more than 100 data rows (MAX_ROWS)" in str(err.value)
    # Title and header rows do not count against the limit; apply_mapping counts data rows exactly.
    _, rows, m = choose_sheet(f, None, 300)
    assert len(apply_mapping(rows, m, 300)) == 300


@pytest.mark.parametrize(
    ("builder", "name", "header_row", "numbers"),
    [
        (corpus.pipe_csv, "p.csv", 2, [3, 4]),
        (corpus.quoted_multiline_csv, "q.csv", 1, [2, 3, 5]),  # record 3 spans lines 3-4
        (corpus.cp1252_semicolon_csv, "c.csv", 1, [2, 3]),
        (corpus.xls, "x.xls", 3, [4]),
        (corpus.typed_cells_xlsx, "t.xlsx", 1, [2]),
    ],
)
def test_source_row_numbers_end_to_end(builder, name, header_row, numbers):
    f = open_file(builder(), name, S)
    _, rows, m = choose_sheet(f, None, 100)
    frame = apply_mapping(rows, m, 100)
    assert m.header_row == header_row
    assert list(frame.index) == numbers


def test_numeric_phone_reaches_the_frame_as_typed():
    f = open_file(corpus.typed_cells_xlsx(), "t.xlsx", S)
    _, rows, m = choose_sheet(f, None, 100)
    assert apply_mapping(rows, m, 100).loc[2, "phone"] == "241234567"


# --- bounded memory: only the chosen sheet in full, only the mapped columns (issue 8) -----------------


def test_row_limit_applies_to_the_chosen_sheet_not_to_a_long_sheet_before_it():
    """A first sheet "Notes" longer than the limit was read in full, and refused, before "Customers"."""
    f = open_file(corpus.notes_then_customers_xlsx(notes=300, customers=5), "notes.xlsx", S)
    name, rows, m = choose_sheet(f, None, 100)
    assert name == "Customers" and not m.missing_required
    assert apply_mapping(rows, m, 100)["shipping_mark"].tolist() == [f"PM{i} NOTE" for i in range(5)]
    with pytest.raises(LimitExceeded, match="more than 3 data rows"):
        apply_mapping(rows, m, 3)  # the chosen sheet is held to the limit


def test_unmapped_columns_are_dropped_as_the_rows_are_read_and_still_listed():
    header = ["Shipping Mark", "First Name", "Last Name", "Email", "Phone"] + [f"Extra {i}" for i in range(40)]
    row = ["PM1", "Kofi", "Mensah", "", "0241234567"] + ["x"] * 40
    data = corpus.csv_text([header, row, [""] * 44 + ["only in an extra column"]], ",").encode()
    f = open_file(data, "wide.csv", S)
    _, rows, m = choose_sheet(f, None, 100)
    assert rows.columns == (0, 1, 2, 3, 4)
    assert max(len(r) for r in rows) == 5  # 40 columns never kept
    assert m.unknown_columns == tuple(f"Extra {i}" for i in range(40))
    frame = apply_mapping(rows, m, 100)
    # a row with one value, in an ignored column, is a note beside the table: listed, not counted
    assert frame.index.tolist() == [2]
    assert sheet_notes(rows).skipped_rows[0].row == 3


def test_a_users_mapping_of_a_dropped_column_reads_it_again():
    data = corpus.csv_text([["Mark", "First Name", "Last Name", "Digits", "Notes"],
                            ["PM1", "Kofi", "Mensah", "0241234567", "hi"]], ",").encode()
    f = open_file(data, "cell.csv", S)
    _, rows, detected = choose_sheet(f, None, 100)
    assert detected.missing_required == ("phone",) and 3 not in (rows.columns or ())
    mine = detected.with_fields(["shipping_mark", "first_name", "last_name", "phone", "nickname"])
    frame = apply_mapping(rows, mine, 100)  # the rows hold columns 0-2 only: the sheet is read again
    assert frame.loc[2, "phone"] == "0241234567" and frame.loc[2, "nickname"] == "hi"
    _, rows, _ = choose_sheet(f, None, 100, mapping=mine)  # or read once with the user's columns
    assert rows.columns == (0, 1, 2, 3, 4)


# -- issue 11: hidden columns, full names, warnings ----------------------------------------------------------
def test_a_visible_column_beats_a_hidden_one_with_the_same_field():
    f = open_file(branch_files.hidden_phone_xlsx(), "h.xlsx", S)
    _, rows, m = choose_sheet(f, None, 100)
    assert m.hidden_columns == (3,)
    assert m.fields == ("shipping_mark", "first_name", "last_name", None, "phone")
    assert m.unknown_columns == ("Phone",)
    frame = apply_mapping(rows, m, 100)
    assert frame["phone"].tolist() == ["0241234567", "0241234568"]
    assert ColumnMapping.from_dict(json.loads(json.dumps(m.to_dict()))).hidden_columns == (3,)


def test_a_hidden_column_still_feeds_a_field_no_visible_column_gives():
    assert detect_mapping([["Mark", "First Name", "Last Name", "Phone"]]).fields[3] == "phone"
    sheet = SheetRows()
    sheet.put(0, ["Mark", "First Name", "Last Name", "Phone", "Mobile"])
    sheet.hidden_columns = frozenset({4})
    assert detect_mapping(sheet).fields[3:] == ("phone", None)  # Phone visible wins over hidden Mobile
    sheet.hidden_columns = frozenset({3, 4})
    assert detect_mapping(sheet).fields[3:] == ("phone", None)  # both hidden: the surest, leftmost


@pytest.mark.parametrize("header", ["Cust. Name", "Customer Name", "Full Name", "Name", "NAMES", "Client Name"])
def test_a_whole_name_column_is_split_when_no_column_gives_first_or_last(header):
    m = detect_mapping([["Mark", header, "Phone"]])
    assert m.fields == ("shipping_mark", FULL_NAME, "phone")
    assert m.missing_required == () and m.full_name_column == 1
    plain = header.casefold() in ("name", "names")  # "Name" beside "Surname" is the first name
    with_last = detect_mapping([["Mark", header, "Surname", "Phone"]])
    assert with_last.fields == ("shipping_mark", "first_name" if plain else None, "last_name", "phone")
    with_first = detect_mapping([["Mark", "Forename", header, "Phone"]])
    assert with_first.fields == ("shipping_mark", "first_name", "last_name" if plain else None, "phone")
    with_both = detect_mapping([["Mark", "First Name", header, "Last Name", "Phone"]])
    assert with_both.fields == ("shipping_mark", "first_name", None, "last_name", "phone")


def test_full_name_choice_is_checked_and_round_trips():
    m = detect_mapping([["Mark", "First Name", "Cust. Name", "Phone"]])
    assert m.fields == ("shipping_mark", "first_name", None, "phone")
    with pytest.raises(UsageError, match="First Name .a full name column already gives first and last name"):
        m.with_fields(("shipping_mark", "first_name", FULL_NAME, "phone"))
    moved = m.with_fields(("shipping_mark", None, FULL_NAME, "phone"))
    assert moved.missing_required == ()
    assert ColumnMapping.from_dict(json.loads(json.dumps(moved.to_dict()))) == moved
    assert mapping_choices()[0] is None and mapping_choices()[-1] == FULL_NAME
    assert choice_label(FULL_NAME) == "Full name → First Name + Last Name" and choice_label(None) == "(ignore)"
    assert fed_fields(FULL_NAME) == ("first_name", "last_name") and fed_fields("phone") == ("phone",)


@pytest.mark.parametrize(
    ("full", "first", "last"),
    [
        ("Kofi Mensah", "Kofi", "Mensah"),
        ("Ama Serwaa Owusu", "Ama Serwaa", "Owusu"),  # all but the last word
        ("  Yaw \t Boateng  ", "Yaw", "Boateng"),
        ("Mensah, Kofi Atta", "Kofi Atta", "Mensah"),  # comma: surname first
        ("MENSAH Kofi", "Kofi", "MENSAH"),  # capitals first: surname first
        ("KOFI MENSAH", "KOFI", "MENSAH"),  # all capitals: the usual order
        ("Mr. Kofi Mensah", "Kofi", "Mensah"),
        ("Dr Mrs Ama Owusu", "Ama", "Owusu"),
        ("Mr Mensah", "Mensah", ""),  # a title and one name: one word
        ("Kwame", "Kwame", ""),
        ("", "", ""),
        ("Kwabena O'Neil-Asante", "Kwabena", "O'Neil-Asante"),
        ("Ádwoa Ñyarko", "Ádwoa", "Ñyarko"),
        ("Mensah,", "Mensah,", ""),
    ],
)
def test_split_full_name(full, first, last):
    firsts, lasts = split_full_name(pd.Series([full, "Kofi Mensah"], dtype="str"))
    assert (firsts.iloc[0], lasts.iloc[0]) == (first, last)
    assert (firsts.iloc[1], lasts.iloc[1]) == ("Kofi", "Mensah")


def test_split_full_name_of_nothing_but_single_words_and_missing_values():
    firsts, lasts = split_full_name(pd.Series(["Kwame", None, "Ama"], dtype="str"))
    assert firsts.tolist() == ["Kwame", "", "Ama"] and lasts.tolist() == ["", "", ""]
    assert split_full_name(pd.Series([], dtype="str"))[0].empty


@pytest.mark.parametrize("name", ["names.xlsx", "names.csv"])
def test_a_full_name_file_is_read_split_and_its_one_word_names_named(name):
    data = branch_files.full_name_xlsx() if name.endswith("xlsx") else branch_files.full_name_csv()
    upload = read_upload(data, name, S)
    original = upload.checked.original
    assert list(zip(original["first_name"], original["last_name"], strict=True)) == list(branch_files.SPLITS)
    assert sorted(upload.checked.errors) == [7]
    assert [e.field for e in upload.checked.errors[7]] == ["last_name"]
    assert one_word_names(original, upload.mapping) == [
        (7, "Row 7: Customer Name 'Kwame' is one word, so the last name is blank; type the customer's last name "
            "in the Last Name cell (or exclude the row)")]


def test_split_preview_shows_the_first_rows():
    f = open_file(branch_files.full_name_csv(), "n.csv", S)
    _, rows, m = choose_sheet(f, None, 100)
    apply_mapping(rows, m, 100)
    notes = sheet_notes(rows)
    assert notes.full_names[:2] == ((2, "Kofi Mensah"), (3, "Ama Serwaa Owusu"))
    preview = split_preview(notes.full_names)
    assert list(preview.columns) == ["Row", "Full name", "First name", "Last name", "Note"]
    assert preview.iloc[5].tolist() == [7, "Kwame", "Kwame", "", "one word: the last name is left blank; type it in Review"]


def _warnings(data: bytes, name: str, mapping=None):
    f = open_file(data, name, S)
    _, rows, detected = choose_sheet(f, None, 1000, mapping=mapping)
    used = mapping or detected
    frame = apply_mapping(rows, used, 1000)
    return mapping_warnings(used, sheet_notes(rows), len(frame), "GREATER_ACCRA")


def test_an_ignored_column_of_places_is_named_with_its_share():
    data = branch_files.kumasi_csv(40)
    detected = detect_mapping(corpus_rows(data))
    assert detected.fields[4] == "region"  # Location feeds Region by itself
    ignoring = detected.with_fields(tuple(None if f == "region" else f for f in detected.fields))
    (warning,) = _warnings(data, "k.csv", ignoring)
    assert (warning.field, warning.rows, warning.header, warning.column) == ("region", 40, "Location", 4)
    # 7 of the 9 non-blank values are places or regions (the typo Kumassi does not count): 28 of 36 cells
    assert warning.share == pytest.approx(28 / 36)
    assert warning.message.startswith("Location looks like regions: 78% of its values are towns or regions. ")
    assert "all 40 rows get the default region Greater Accra" in warning.message


def test_no_region_column_is_warned_about_and_a_mapped_one_is_not():
    data = corpus.csv_text([["Mark", "First", "Last", "Phone", "Notes"], ["PM1", "Kofi", "Mensah", "0241234567", "vip"]],
                           ",").encode()
    (warning,) = _warnings(data, "n.csv")
    assert warning.column is None and warning.rows == 1
    assert warning.message == ("No column is mapped to Region: the row gets the default region Greater Accra. "
                               "If the file says where customers are, map that column to Region.")
    assert _warnings(branch_files.kumasi_xlsx(), "k.xlsx") == ()


def test_a_column_of_user_types_is_named():
    rows = [["Mark", "First", "Last", "Phone", "Region", "Kind"]]
    rows += [[f"PM{i}", "Kofi", "Mensah", f"024{i:07d}", "Ashanti", "Company" if i % 2 else "personal"] for i in range(6)]
    data = corpus.csv_text(rows, ",").encode()
    (warning,) = _warnings(data, "t.csv")
    assert (warning.field, warning.header, warning.share) == ("user_type", "Kind", 1.0)
    assert "Kind looks like user types: 100%" in warning.message and "default user type Individual" in warning.message


def test_an_ignored_column_left_out_of_the_read_is_judged_from_what_was_counted():
    rows = [["Mark", "First", "Last", "Phone", "Town"]] + [
        [f"PM{i}", "Kofi", "Mensah", f"024{i:07d}", "Kumasi"] for i in range(5)] + [["TOTAL", "", "", "", "Tema"]]
    data = corpus.csv_text(rows, ",").encode()
    m = detect_mapping(corpus_rows(data))
    ignoring = m.with_fields((*m.fields[:4], None))
    f = open_file(data, "t.csv", S)
    _, sheet, _ = choose_sheet(f, None, 100, mapping=ignoring)
    assert 4 not in (sheet.columns or ())  # Town was left out of the read and counted as it went by
    apply_mapping(sheet, ignoring, 100)
    assert sheet_notes(sheet).values_of(4) == {"Kumasi": 5}  # header and the TOTAL row not counted


def corpus_rows(data: bytes) -> list[list[str]]:
    return [line.split(",") for line in data.decode().splitlines()[:1]]
