"""Reading a CSV accounts for every physical line (issue 22, item 1: "Lines lost or split while reading a CSV").

Every line ends as a customer row, a skipped row listed with its reason, the header, a blank line, or the
file is refused naming the line. The broken-CSV checklist is the catalogue of datablist/sample-csv-files
(src/broken_csv.py, https://github.com/datablist/sample-csv-files): missing closing quote, newline inside an
unquoted field, unescaped quotes, mixed delimiters, ragged rows (extra and missing columns), BOM and
whitespace in headers, mixed line endings, duplicate headers, Windows-1252 and Latin-1 text; each is
adapted here to a customer list, with our own cases added (a header repeated mid-file, the issue's
`KSI-102,"Ama,Owusu,...` swallowing four customers).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from importer.api import read_upload
from importer.cli import main
from importer.errors import UnreadableFile
from importer.intake.delimited import join_split_lines
from importer.mapping.columns import REPEATED_HEADER
from importer.settings import Settings

SETTINGS = Settings()
HEADER = "Shipping Mark,First Name,Last Name,Email,Phone\n"


def customers(*numbers: int) -> str:
    return "".join(f"KSI-{n},Name{n},Surname{n},,02412345{n:02d}\n" for n in numbers)


def accounted(text: str, upload) -> dict[int, str]:
    """Each physical line -> what became of it; a line missing from the answer was lost."""
    lines = re.split(r"\r\n|\r|\n", text)
    if lines and lines[-1] == "":
        lines.pop()
    fate: dict[int, str] = {}
    header = upload.mapping.header_row
    for number, line in enumerate(lines, start=1):
        if not line.strip(", \t;|"):
            fate[number] = "blank"
        elif number == header:
            fate[number] = "header"
    for number in upload.checked.original.index:
        fate[int(number)] = "row"
    for skipped in upload.notes.skipped_rows:
        fate[skipped.row] = f"skipped: {skipped.reason}"
    missing = [n for n in range(1, len(lines) + 1) if n not in fate]
    assert not missing, f"lines lost without a word: {missing}"
    return fate


# -- a missing closing quote -------------------------------------------------------------------------------


def test_missing_closing_quote_is_refused_naming_the_line() -> None:
    """The issue's file: `KSI-102,"Ama,Owusu,...` swallowed the next four customers into one first name
    (six customer lines, 2 attempted rows, four customers gone without a word)."""
    text = HEADER + customers(101) + 'KSI-102,"Ama,Owusu,,0201234567\n' + customers(103, 104, 105, 106)
    with pytest.raises(UnreadableFile) as refused:
        read_upload(text.encode(), "branch.csv", SETTINGS)
    message = str(refused.value)
    assert message.startswith("branch.csv: line 3 opens a quoted value")
    assert "line 4 inside it looks like a customer row ('KSI-103,Name103" in message
    assert "Close or remove the quote on line 3" in message


def test_missing_closing_quote_closed_by_a_later_quote_is_refused_too() -> None:
    text = HEADER + 'KSI-1,"Ama,Owusu,,0201234567\n' + customers(2, 3) + 'KSI-4,"Esi",Addo,,0241234504\n'
    with pytest.raises(UnreadableFile, match="line 2 opens a quoted value"):
        read_upload(text.encode(), "branch.csv", SETTINGS)


def test_datablist_missing_closing_quote_to_the_end_of_the_file() -> None:
    """datablist missing-closing-quote.csv: `1,Alice,"Started import yesterday` then `2,Bob,Valid row`."""
    text = 'Shipping Mark,First Name,Phone\nKSI-1,Alice,"0241234501 yesterday\nKSI-2,Bob,0241234502\n'
    with pytest.raises(UnreadableFile, match="line 2 opens a quoted value"):
        read_upload(text.encode(), "datablist.csv", SETTINGS)


def test_missing_quote_is_refused_by_the_cli_in_one_line(tmp_path: Path, sqlite_url: str, capsys) -> None:
    path = tmp_path / "branch.csv"
    path.write_text(HEADER + 'KSI-102,"Ama,Owusu,,0201234567\n' + customers(103, 104))
    assert main(["import", str(path), "--dry-run", "--database-url", sqlite_url]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("error: branch.csv: line 2 opens a quoted value") and err.count("\n") == 1


def test_a_quoted_value_that_really_spans_lines_is_read() -> None:
    text = ("Shipping Mark,First Name,Last Name,Phone,Address\n"
            'KSI-1,Ama,Owusu,0241234501,"House 12, Adum\nKumasi"\nKSI-2,Kofi,Mensah,0241234502,Accra\n')
    upload = read_upload(text.encode(), "address.csv", SETTINGS)
    assert upload.checked.original.index.tolist() == [2, 4]  # the record sits at its first line; line 3 continues it
    assert len(upload.checked.errors) == 0


# -- a record broken by a newline in an unquoted field --------------------------------------------------------


def test_record_broken_over_two_lines_is_named_and_joined() -> None:
    """One customer split by a line break inside an unquoted value: two failing rows, with no hint before."""
    text = HEADER + customers(1, 2) + "KSI-3,Ama,Ow\nusu,,0241234503\n" + customers(6)
    upload = read_upload(text.encode(), "split.csv", SETTINGS)
    (split,) = upload.notes.split_records
    assert (split.first, split.second) == (4, 5)
    assert split.message.startswith("Rows 4-5 look like one customer broken over two lines")
    assert split.message in upload.notes.warnings()
    accounted(text, upload)
    joined = join_split_lines(text.encode(), [split.first])
    again = read_upload(joined, "split.csv", SETTINGS)
    assert again.notes.split_records == ()
    assert again.checked.original.index.tolist() == [2, 3, 4, 6]  # later rows keep their line numbers
    assert again.checked.normalised.loc[4, ["last_name", "phone"]].tolist() == ["Ow usu", "+233241234503"]
    assert len(again.checked.errors) == 0


def test_the_cli_names_a_broken_record_and_joins_it_when_asked(tmp_path: Path, sqlite_url: str, capsys) -> None:
    """The CLI's half of the join: without --join-broken-lines the pair is named on stderr (and both rows
    fail); with it the customer is read whole."""
    path = tmp_path / "split.csv"
    path.write_text(HEADER + customers(1, 2) + "KSI-3,Ama,Ow\nusu,,0241234503\n" + customers(6))
    assert main(["import", str(path), "--dry-run", "--json", "--database-url", sqlite_url]) == 0
    out, err = capsys.readouterr()
    assert "Rows 4-5 look like one customer broken over two lines" in err and "--join-broken-lines" in err
    assert '"total_failed": 2' in out
    assert main(["import", str(path), "--dry-run", "--json", "--join-broken-lines", "--database-url", sqlite_url]) == 0
    out, err = capsys.readouterr()
    assert "note: joined 1 customer(s) broken over two lines (first lines 4)" in err
    assert '"total_failed": 0' in out and '"total_created": 4' in out


def test_datablist_newline_inside_the_last_unquoted_field() -> None:
    """datablist newline-inside-unquoted-field.csv: `1,Alice,First line` + `second line should be same field`."""
    text = ("Shipping Mark,First Name,Last Name,Phone,Notes\nKSI-1,Alice,Addo,0241234501,First line\n"
            "second line should be same field\nKSI-2,Bob,Boateng,0241234502,Valid row\n")
    upload = read_upload(text.encode(), "notes.csv", SETTINGS)
    assert [(s.first, s.second) for s in upload.notes.split_records] == [(2, 3)]


def test_ragged_rows_that_do_not_add_up_are_not_named() -> None:
    """datablist ragged-rows-missing-columns.csv: a short row is a short row, not half a customer."""
    text = HEADER + customers(1) + "KSI-2,Bob\n" + customers(3)
    upload = read_upload(text.encode(), "ragged.csv", SETTINGS)
    assert upload.notes.split_records == ()
    accounted(text, upload)


def test_join_keeps_the_encoding_and_its_bom() -> None:
    text = HEADER + "KSI-1,Ama,Ow\nusu,,0241234503\r\n" + customers(4)
    for encoding in ("utf-8-sig", "utf-16", "cp1252"):
        data = text.replace("Ama", "Amá").encode(encoding)
        joined = join_split_lines(data, [2])
        assert joined[:3] == data[:3]
        assert joined.decode(encoding).splitlines()[1:3] == ["KSI-1,Amá,Ow usu,,0241234503", ""]
    assert join_split_lines(b"a\nb\n", []) == b"a\nb\n"


# -- a header repeated mid-file -----------------------------------------------------------------------------


def test_repeated_header_row_is_skipped_and_listed() -> None:
    """Two exports joined: the second header counted as a failed customer before."""
    text = HEADER + customers(1, 2) + "\n" + HEADER.upper().replace(",", " ,") + customers(3)
    upload = read_upload(text.encode(), "joined.csv", SETTINGS)
    assert upload.checked.original.index.tolist() == [2, 3, 6]
    assert len(upload.checked.errors) == 0
    (skipped,) = upload.notes.skipped_rows
    assert (skipped.row, skipped.reason) == (5, REPEATED_HEADER)
    assert accounted(text, upload)[5] == f"skipped: {REPEATED_HEADER}"


def test_repeated_header_in_a_workbook_too() -> None:
    from tests.fixtures import corpus

    head = ["Shipping Mark", "First Name", "Last Name", "Phone"]
    data = corpus.xlsx({"Customers": [head, ["KSI-1", "Ama", "Owusu", "0241234501"], head,
                                      ["KSI-2", "Kofi", "Mensah", "0241234502"]]})
    upload = read_upload(data, "joined.xlsx", SETTINGS)
    assert upload.checked.original.index.tolist() == [2, 4]
    assert [s.row for s in upload.notes.skipped_rows] == [3]


# -- the rest of the datablist catalogue: every line accounted for ------------------------------------------------

CATALOGUE = {
    "unescaped-quotes": HEADER + 'KSI-1,Ama,"Owusu "the elder" Jr",,0241234501\n' + customers(2),
    "mixed-delimiters": HEADER + customers(1) + "KSI-2;Bob;Boateng;;0241234502\n" + customers(3),
    "ragged-rows-extra-columns": HEADER + customers(1) + "KSI-2,Bob,Boateng,,0241234502,unexpected\n",
    "ragged-rows-missing-columns": HEADER + customers(1) + "KSI-2,Bob\n",
    "bom-and-whitespace-headers": "\ufeff Shipping Mark , First Name , Last Name , Email , Phone \n" + customers(1, 2),
    "mixed-line-endings": HEADER + "KSI-1,A,B,,0241234501\r\nKSI-2,C,D,,0241234502\rKSI-3,E,F,,0241234503\n",
    "duplicate-headers": "Shipping Mark,First Name,Last Name,Email,Email,Phone\n"
                         "KSI-1,Ama,Owusu,ama@example.com,ama@work.com,0241234501\n",
    "wrong-delimiter-semicolon": HEADER.replace(",", ";") + customers(1, 2).replace(",", ";"),
}


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_datablist_catalogue_loses_no_line(name: str) -> None:
    text = CATALOGUE[name]
    upload = read_upload(text.encode(), f"{name}.csv", SETTINGS)
    fate = accounted(text, upload)
    assert list(fate.values()).count("row") >= 1


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1"])
def test_datablist_western_encodings_keep_every_letter(encoding: str) -> None:
    text = HEADER + "KSI-1,François,Müller,,0241234501\nKSI-2,Anaïs,José,,0241234502\n"
    upload = read_upload(text.encode(encoding), "western.csv", SETTINGS)
    assert upload.checked.original["first_name"].tolist() == ["François", "Anaïs"]
    accounted(text, upload)
