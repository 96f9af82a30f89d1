"""importer.intake.readers: formats, text cells, row numbers, and every refusal of CONTRACT.md "Reading a file"/"Limits"."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from importer.errors import FileRefused, HostileFile, LimitExceeded, UnreadableFile, UnsupportedFile
from importer.intake import readers as read
from importer.intake.ole_guard import ole_stream_names
from importer.intake.readers import cell_text, open_file
from importer.settings import Settings
from tests.fixtures import corpus

S = Settings()
ROOT = Path(__file__).resolve().parents[1]
BAD_WORKBOOK = "is not a valid Excel file"
PASSWORD = "password-protected"


def rows_of(data: bytes, name: str, sheet: str | None = None, limit: int = 1000, settings: Settings = S):
    f = open_file(data, name, settings)
    return f.rows(sheet or f.sheet_names[0], limit)


# --- formats and cell text -------------------------------------------------------------------


def test_simple_xlsx_reads_every_cell_as_text():
    f = open_file(corpus.simple_xlsx(), "customers.xlsx", S)
    assert (f.format, f.sheet_names) == ("xlsx", ("Customers",))
    assert f.sha256 == hashlib.sha256(corpus.simple_xlsx()).hexdigest()
    assert f.rows("Customers", 10) == [
        corpus.HEADER,
        corpus.ROWS[0],
        ["PM2 AMA", "Ama", "Owusu", "", "0201234567", "greater accra"],
        ["PM3 YAW", "Yaw", "Boateng", "yaw@example.com", "+233 24 765 4321"],  # trailing blank dropped
    ]


def test_xlsm_extension_is_read_as_xlsx():
    assert open_file(corpus.simple_xlsx(), "macros.XLSM", S).format == "xlsx"


def test_typed_cells_read_as_the_user_typed_them():
    row = rows_of(corpus.typed_cells_xlsx(), "t.xlsx")[1]
    assert row == [
        "PM1 KOFI", "Kofi", "Mensah", "", "241234567", "1.5", "TRUE", "FALSE",
        "2024-03-01", "2024-03-01 13:45:00", "1.23457E+19", "0.0000001", "241234567", "-3",  # issue 22: as Excel shows it
    ]  # fmt: skip


def test_formulas_give_cached_values_and_errors_read_as_excel_shows_them():
    row = rows_of(corpus.formulas_xlsx(), "f.xlsx")[1]
    assert row[6:] == ["2", "PM9", "", "#N/A", "#DIV/0!"]  # I2 has no cached value: blank, no crash


def test_title_rows_and_leading_blank_rows_keep_excel_row_numbers():
    rows = rows_of(corpus.titled_xlsx(), "t.xlsx")
    assert rows[0] == ["Customer list – March 2024"]
    assert rows[2] in ([], [""])
    assert rows[3] == corpus.HEADER  # Excel row 4


def test_data_starting_away_from_a1_is_padded_to_its_excel_position():
    data = corpus.xlsx(
        {"S": [[], [], [], [], [None, None, "Shipping Mark", "Phone"], [None, None, "PM1", 5]]}
    )
    rows = rows_of(data, "o.xlsx")
    assert len(rows) == 6
    assert all(not any(r) for r in rows[:4])
    assert rows[4] == ["", "", "Shipping Mark", "Phone"]
    assert rows[5] == ["", "", "PM1", "5"]


def test_xls_is_read_with_numbers_and_dates_as_text():
    f = open_file(corpus.xls(), "legacy.xls", S)
    assert (f.format, f.sheet_names) == ("xls", ("Customers",))
    rows = f.rows("Customers", 10)
    assert rows[0] == ["Customer list"]
    assert rows[2] == corpus.HEADER
    assert rows[3] == ["PM1 KOFI", "Kofi", "Mensah", "", "241234567", "Ashanti", "2024-03-01"]


ACCENTED_ROWS = [corpus.HEADER[:5], *corpus.ACCENTED]


@pytest.mark.parametrize(
    ("builder", "encoding", "delimiter", "expected"),
    [
        (corpus.cp1252_semicolon_csv, "cp1252", ";", [corpus.HEADER[:5] + ["Balance"]] + [r + ["1,5"] for r in corpus.ACCENTED]),
        (corpus.utf16_tab_csv, "utf-16", "\t", ACCENTED_ROWS),
        (corpus.utf16_be_csv, "utf-16", ",", ACCENTED_ROWS),
        (corpus.utf8_bom_csv, "utf-8-sig", ",", ACCENTED_ROWS),
        (corpus.pipe_csv, "utf-8", "|", [["Customer export"], *ACCENTED_ROWS]),
    ],
)  # fmt: skip
def test_csv_encodings_and_delimiters(builder, encoding, delimiter, expected):
    f = open_file(builder(), "export.csv", S)
    assert (f.format, f.sheet_names) == ("csv", ("export",))
    assert f._csv == (encoding, delimiter)
    assert f.rows("export", 10) == expected
    assert "Mensáh" in f.rows("export", 10)[-2]


def test_csv_quoted_delimiters_newlines_and_nul_bytes():
    rows = rows_of(corpus.quoted_multiline_csv(), "q.csv")
    assert rows[1][2] == "Mensah, Jr."
    assert rows[2][0] == "PM2\nAMA"  # the record starts on line 3 and continues on line 4
    assert rows[3] == []
    assert rows[4] == ["PM3 YAW", "Yaw", "Boateng", "", "0241112222"]  # line 5, NUL removed


def test_csv_with_bytes_undefined_in_cp1252_does_not_crash():
    rows = rows_of(b"Shipping Mark;Phone\nPM1 \x81\xe9;024\n", "x.csv")
    assert rows[1] == ["PM1 \ufffdé", "024"]


def test_csv_line_endings_crlf_and_cr_count_as_lines():
    rows = rows_of(b"Mark,Phone\r\n\r\nPM1,1\rPM2,2\r\n", "x.csv")
    assert rows == [["Mark", "Phone"], [], ["PM1", "1"], ["PM2", "2"]]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""), ("  as typed ", "  as typed "), (241234567.0, "241234567"), (1.5, "1.5"), (0.1 + 0.2, "0.30000000000000004"),
        (1e20, "100000000000000000000"), (-0.0, "0"), (7, "7"), (True, "TRUE"), (False, "FALSE"),
        (dt.date(2024, 3, 1), "2024-03-01"), (dt.datetime(2024, 3, 1), "2024-03-01"),
        (dt.datetime(2024, 3, 1, 13, 44, 59, 999_000), "2024-03-01 13:45:00"), (dt.time(13, 45), "13:45:00"),
    ],
)  # fmt: skip
def test_cell_text(value, text):
    assert cell_text(value) == text


# --- format detection and refusals ------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["customers.txt", "customers.pdf", "customers", "customers.ods", "x.xlsx.zip"]
)
def test_other_extensions_are_refused_with_the_accepted_formats(name):
    with pytest.raises(UnsupportedFile) as err:
        open_file(corpus.simple_xlsx(), name, S)
    assert all(ext in str(err.value) for ext in (".xlsx", ".xlsm", ".xls", ".csv"))


def test_empty_file_is_refused():
    with pytest.raises(UnreadableFile, match="empty"):
        open_file(b"", "customers.xlsx", S)


@pytest.mark.parametrize(
    ("builder", "name", "fmt"),
    [
        (corpus.simple_xlsx, "misnamed.xls", "xlsx"),
        (corpus.xls, "misnamed.xlsx", "xls"),
        (corpus.utf8_bom_csv, "really_csv.xls", "csv"),
        (corpus.simple_xlsx, "really_xlsx.csv", "xlsx"),
    ],
)
def test_content_decides_the_format(builder, name, fmt):
    f = open_file(builder(), name, S)
    assert f.format == fmt
    assert any("Mark" in " ".join(r) for r in f.rows(f.sheet_names[0], 10))


@pytest.mark.parametrize(
    ("builder", "name", "exc", "words"),
    [
        (corpus.truncated_xlsx, "half.xlsx", UnreadableFile, [BAD_WORKBOOK, "truncated or damaged", "save it again", "CSV"]),
        (corpus.random_bytes, "noise.xlsx", UnreadableFile, [BAD_WORKBOOK]),
        (corpus.random_bytes, "noise.xls", UnreadableFile, [BAD_WORKBOOK]),
        (corpus.junk_ole2, "word.xls", UnreadableFile, [BAD_WORKBOOK]),
        (corpus.html_as_xls, "page.xls", UnreadableFile, [BAD_WORKBOOK, "web page"]),
        (corpus.encrypted_xlsx, "locked.xlsx", UnreadableFile, [PASSWORD, "File > Info > Protect Workbook"]),
        (corpus.encrypted_xlsx, "locked.xls", UnreadableFile, [PASSWORD]),
        (corpus.billion_laughs_xlsx, "lol.xlsx", HostileFile, ["entities", "billion-laughs"]),
        (corpus.xxe_xlsx, "xxe.xlsx", HostileFile, ["entities", "external-entity"]),
        (corpus.zip_bomb, "bomb.xlsx", HostileFile, ["zip bomb", "100:1", "MAX_INFLATION_RATIO"]),
        (corpus.lying_size_xlsx, "liar.xlsx", HostileFile, ["inflates beyond the size it declares"]),
    ],
)  # fmt: skip
def test_refusals_name_the_problem(builder, name, exc, words):
    with pytest.raises(exc) as err:
        open_file(builder(), name, S)
    message = str(err.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_ole2_reader_finds_real_directory_entries():
    assert "workbook" in ole_stream_names(corpus.xls())
    assert {"encryptioninfo", "encryptedpackage"} <= ole_stream_names(corpus.encrypted_xlsx())
    # The name merely appearing in the bytes is not enough: it must be a directory entry.
    decoy = corpus.ole2({"Workbook": "EncryptedPackage".encode("utf-16-le") * 300})
    assert "encryptedpackage" not in ole_stream_names(decoy)


def test_upload_size_is_checked_before_anything_else():
    settings = S.with_(max_upload_mb=1)
    with pytest.raises(LimitExceeded) as err:
        open_file(corpus.random_bytes(1024 * 1024 + 1), "big.xlsx", settings)
    assert "MAX_UPLOAD_MB" in str(err.value)
    open_file(corpus.simple_xlsx(), "ok.xlsx", settings)


def test_total_inflated_size_limit():
    with pytest.raises(LimitExceeded) as err:
        open_file(corpus.big_total_xlsx(parts=3, megabytes=1), "media.xlsx", S.with_(max_inflated_mb=2))
    assert "MAX_INFLATED_MB" in str(err.value)


def test_a_high_ratio_alone_is_no_bomb_the_inflated_size_decides():
    # Issue 22: 2 MB of zeros inflates 1000:1 but stays far under MAX_INFLATED_MB: not a bomb; the zip then
    # fails as a workbook. Past the limit, the same ratio names it a zip bomb.
    with pytest.raises(UnreadableFile):
        open_file(corpus.zip_bomb(2), "two.xlsx", S)
    with pytest.raises(HostileFile, match="looks like a zip bomb.*MAX_INFLATED_MB"):
        open_file(corpus.zip_bomb(2), "two.xlsx", S.with_(max_inflated_mb=1))
    # Past the limit at an ordinary ratio: too big, not hostile.
    with pytest.raises(LimitExceeded) as err:
        open_file(corpus.big_total_xlsx(parts=3, megabytes=1), "media.xlsx", S.with_(max_inflated_mb=2))
    assert not isinstance(err.value, HostileFile)


def test_repetitive_32767_character_text_is_read_not_refused_as_a_bomb():
    """A genuine workbook whose Notes cells hold 32,767 characters of repeated text compresses some
    hundreds to one: it is read (time and peak memory: bench/RESULTS.md, 'Zip-bomb guard')."""
    import zipfile

    data = corpus.repetitive_text_xlsx(cells=400)
    sheet = next(i for i in zipfile.ZipFile(io.BytesIO(data)).infolist() if "sharedStrings" in i.filename
                 or "worksheets/" in i.filename and i.file_size > 1024 * 1024)
    assert sheet.file_size - 1024 * 1024 > S.max_inflation_ratio * sheet.compress_size  # the ratio the old guard refused
    from importer.api import read_upload

    upload = read_upload(data, "notes.xlsx", S)
    assert upload.checked.total == 400


def test_zip_bomb_is_refused_quickly(monkeypatch):
    # Quickly: from the declared sizes, before a byte of it is inflated.
    def inflate(*args, **kwargs):
        raise AssertionError("a part of the bomb was inflated")

    monkeypatch.setattr("importer.intake.zip_guard._scan_member", inflate)
    data = corpus.zip_bomb()
    with pytest.raises(HostileFile, match="looks like a zip bomb"):
        open_file(data, "bomb.xlsx", S)


def test_huge_declared_dimensions_do_not_allocate_the_declared_grid():
    script = (
        "import sys; from importer.intake.readers import open_file; from importer.settings import Settings;"
        "from tests.fixtures import corpus;"
        "f = open_file(corpus.huge_dimension_xlsx(), 'h.xlsx', Settings());"
        "rows = f.rows('Customers', 10);"
        "assert rows == [['Shipping Mark', 'First Name'], ['PM1 KOFI', 'Kofi']], rows;"
        # VmHWM belongs to this process image; ru_maxrss can carry the (large) pytest parent's peak
        # across fork and exec.
        "print(open('/proc/self/status').read().split('VmHWM:')[1].split()[0])"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    assert int(out.stdout.strip()) < 400_000  # KB: the full grid would need many GB


def test_a_stray_cell_far_from_the_data_is_refused_before_calamine_allocates_the_grid():
    with pytest.raises(LimitExceeded) as err:
        open_file(corpus.stray_far_cell_xlsx(), "stray.xlsx", S)
    assert "row 1,048,576 and column 16,384" in str(err.value) and "Ctrl+End" in str(err.value)


def test_wide_or_long_sheets_within_the_grid_limit_are_read():
    wide = corpus.xlsx({"S": [["Mark", "Phone"] + [f"c{i}" for i in range(40)], ["PM1", "1"] + ["v"] * 40]})
    assert rows_of(wide, "w.xlsx")[1][-1] == "v"


# --- row limit --------------------------------------------------------------------------------


def test_row_limit_counts_non_blank_rows_only():
    data = corpus.xlsx({"S": [["Mark", "Phone"], [], ["PM1", "1"], [], ["PM2", "2"]]})
    assert len(rows_of(data, "x.xlsx", limit=3)) == 5
    with pytest.raises(LimitExceeded) as err:
        rows_of(data, "x.xlsx", limit=2)
    assert "MAX_ROWS" in str(err.value) and "more than 2 data rows" in str(err.value)


def _counting_lines(monkeypatch) -> list[int]:
    """Count the lines the CSV reader takes from the file (importer.intake.delimited._lines): its work."""
    from importer.intake import delimited as csv_read

    taken = [0]
    lines = csv_read._lines

    def counted(*args, **kwargs):
        for line in lines(*args, **kwargs):
            taken[0] += 1
            yield line

    monkeypatch.setattr(csv_read, "_lines", counted)
    return taken


def test_million_row_csv_is_refused_early_and_lean(monkeypatch):
    data = corpus.million_row_csv()
    f = open_file(data, "million.csv", S.with_(max_upload_mb=100))
    taken = _counting_lines(monkeypatch)
    tracemalloc.start()
    try:
        with pytest.raises(LimitExceeded) as err:
            f.rows("million", 100_000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "more than 100,000 data rows (MAX_ROWS)" in str(err.value)
    assert "raise MAX_ROWS" in str(err.value)
    # Early: the header and one row past the limit are read, not the million.
    assert data.count(b"\n") > 900_000 and 100_000 < taken[0] <= 100_002
    assert peak < 50 * 1024 * 1024


def test_xlsx_row_limit():
    data = corpus.many_rows_xlsx(300)
    f = open_file(data, "many.xlsx", S)
    assert len(f.rows("Customers", 301)) == 301
    with pytest.raises(LimitExceeded, match="MAX_ROWS"):
        f.rows("Customers", 300)


def test_unknown_sheet_lists_the_sheets():
    f = open_file(corpus.multi_sheet_xlsx(), "m.xlsx", S)
    with pytest.raises(FileRefused) as err:
        f.rows("Nope", 10)
    assert "'Notes', 'Partial', 'Customers'" in str(err.value)


# --- fallbacks: no library exception escapes ---------------------------------------------------


def test_openpyxl_fallback_reads_the_same_text(monkeypatch):
    expected = {
        b: rows_of(b(), "x.xlsx")
        for b in (
            corpus.titled_xlsx,
            corpus.typed_cells_xlsx,
            corpus.formulas_xlsx,
            corpus.huge_dimension_xlsx,
        )
    }

    def broken(*args, **kwargs):
        raise RuntimeError("calamine cannot read this")

    monkeypatch.setattr(read, "_calamine_rows", broken)
    for builder, rows in expected.items():
        got = rows_of(builder(), "x.xlsx")
        assert [r for r in got if any(r)] == [r for r in rows if any(r)], builder.__name__
        assert [i for i, r in enumerate(got) if any(r)] == [i for i, r in enumerate(rows) if any(r)]


def test_xlrd_fallback_reads_the_same_text(monkeypatch):
    expected = rows_of(corpus.xls(), "x.xls")
    monkeypatch.setattr(read, "_calamine_rows", lambda *a: (_ for _ in ()).throw(ValueError("boom")))
    assert rows_of(corpus.xls(), "x.xls") == expected


def test_library_errors_become_unreadable_file(monkeypatch):
    f = open_file(corpus.simple_xlsx(), "x.xlsx", S)

    def broken(*args, **kwargs):
        raise KeyError("internal")

    monkeypatch.setattr(read, "_calamine_rows", broken)
    monkeypatch.setattr(read, "_openpyxl_rows", broken)
    with pytest.raises(UnreadableFile, match=BAD_WORKBOOK):
        f.rows("Customers", 10)


# --- bounded memory whatever a file declares (issue 8) -------------------------------------------


def _peak_kb(script: str) -> tuple[str, int]:
    """Run a script in a child; its last line of output is VmHWM (KB) of that process image."""
    script += "\nprint(open('/proc/self/status').read().split('VmHWM:')[1].split()[0])"
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    *lines, peak = out.stdout.strip().splitlines()
    return "\n".join(lines), int(peak)


def test_cells_without_references_are_counted_against_max_cells():
    """<c> with no r= (and no <dimension>) gave the guard nothing to measure; calamine stored them all."""
    buf = io.BytesIO()
    corpus.unreferenced_cells_xlsx(buf, rows=30, columns=10)
    with pytest.raises(LimitExceeded) as err:
        open_file(buf.getvalue(), "norefs.xlsx", S.with_(max_cells=299))
    assert "more than 299 cells (MAX_CELLS)" in str(err.value) and "raise MAX_CELLS" in str(err.value)
    assert err.value.setting == "MAX_CELLS"
    assert len(rows_of(buf.getvalue(), "norefs.xlsx", settings=S.with_(max_cells=300))) == 30


def test_a_wide_row_of_unreferenced_cells_counts_as_a_wide_grid():
    """A row of 20 cells without r= stretches calamine's grid over 20 columns for every row."""
    rows = [["Shipping Mark", "Phone"]] + [["PM1", "0241234567"]] * 9
    wide = '<row r="11">' + '<c t="inlineStr"><is><t>x</t></is></c>' * 20 + "</row>"
    data = corpus.patch_zip(corpus.xlsx({"S": rows}), corpus.SHEET1,
                            lambda xml: xml.replace("</sheetData>", wide + "</sheetData>"))
    with pytest.raises(LimitExceeded, match="MAX_CELLS"):
        open_file(data, "wide.xlsx", S.with_(max_cells=150))
    assert len(rows_of(data, "wide.xlsx", settings=S.with_(max_cells=2_000))) == 11  # the bound errs upwards


def test_prefixed_cells_without_references_are_counted_too():
    """calamine matches local names: <x:row><x:c> count like <row><c>."""
    body = "".join("<x:row>" + "<x:c><x:v>1</x:v></x:c>" * 10 + "</x:row>" for _ in range(30))

    def edit(xml: str) -> str:
        start, end = xml.index("<sheetData"), xml.index("</sheetData>") + len("</sheetData>")
        ns = 'xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
        return xml[:start] + f"<x:sheetData {ns}>{body}</x:sheetData>" + xml[end:]

    data = corpus.patch_zip(corpus.simple_xlsx(), corpus.SHEET1, edit)
    with pytest.raises(LimitExceeded, match="MAX_CELLS"):
        open_file(data, "prefixed.xlsx", S.with_(max_cells=200))


@pytest.mark.parametrize(
    ("builder", "name", "words"),
    [
        (corpus.ods_repeated, "customers.xlsx", ["OpenDocument spreadsheet", "renamed .xlsx", "save it as .xlsx"]),
        (corpus.ods_repeated, "customers.csv", ["OpenDocument spreadsheet", "renamed .csv"]),
        (corpus.xlsb_like, "customers.xlsx", ["Excel binary workbook (.xlsb)", "renamed .xlsx", "save it as .xlsx"]),
    ],
)
def test_other_spreadsheet_containers_are_named_and_refused_before_parsing(monkeypatch, builder, name, words):
    data = builder()
    assert len(data) < 1024  # the .ods asks calamine for 16 million cells

    def parse(*args, **kwargs):
        raise AssertionError("the container was inflated or parsed")

    monkeypatch.setattr("importer.intake.zip_guard._scan_member", parse)
    monkeypatch.setattr(read, "_calamine_sheet_names", parse)
    with pytest.raises(UnsupportedFile) as err:
        open_file(data, name, S)
    message = str(err.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_csv_line_longer_than_max_csv_line_kb_is_refused_without_reading_it_whole():
    data = corpus.wide_line_csv()  # 20 million empty fields on the header line
    f = open_file(data, "wide.csv", S)
    tracemalloc.start()
    try:
        with pytest.raises(LimitExceeded) as err:
            f.rows("wide", 100)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "line 1 is longer than 1,024 KB (MAX_CSV_LINE_KB)" in str(err.value)
    assert err.value.setting == "MAX_CSV_LINE_KB"
    assert peak < 20 * 1024 * 1024  # a line of at most 1 MB is ever decoded
    # The limit is a setting; a long quoted field spanning lines is bounded the same way.
    assert len(rows_of(b"Mark,Phone\r\nPM1," + b"9" * 3000 + b"\r\n", "ok.csv")) == 2
    with pytest.raises(LimitExceeded, match="MAX_CSV_LINE_KB"):
        rows_of(b'Mark,Phone\r\nPM1,"' + b"9\n" * 600_000 + b'"\r\n', "q.csv")  # 1.2 MB over many short lines


def test_csv_line_with_more_fields_than_max_columns_is_refused():
    data = b"Shipping Mark,Phone" + b"," * 5_000 + b"\r\nPM1,0241234567\r\n"
    with pytest.raises(LimitExceeded) as err:
        rows_of(data, "many.csv")
    assert "line 1 has 5,002 fields, more than the 1,000 columns the importer reads (MAX_COLUMNS)" in str(err.value)
    assert len(rows_of(data, "many.csv", settings=S.with_(max_columns=5_002))) == 2


def test_only_the_requested_columns_are_kept_and_rows_blank_in_them_still_count():
    data = b"Mark,Notes,Phone\r\nPM1,a,024\r\n,only notes,\r\nPM2,,020\r\n"
    f = open_file(data, "c.csv", S)
    rows = f.rows("c", 10, columns=(0, 2))
    assert list(rows) == [["Mark", "Phone"], ["PM1", "024"], [], ["PM2", "020"]]
    assert rows.columns == (0, 2) and rows.filled == {2} and rows.width == 3
    book = open_file(corpus.xlsx({"S": [["Mark", "Notes", "Phone"], ["PM1", "a", "024"], [None, "n"]]}), "c.xlsx", S)
    rows = book.rows("S", 10, columns=(2,))
    assert list(rows) == [["Phone"], ["024"], []] and rows.filled == {2}


def test_head_reads_stop_after_the_first_rows_whatever_the_sheet_holds():
    data = corpus.notes_then_customers_xlsx(notes=500, customers=3)
    f = open_file(data, "n.xlsx", S)
    with pytest.raises(LimitExceeded):
        f.rows("Notes", 100)
    head = f.rows("Notes", 100, head=30)
    assert len(head) == 30 and head[0] == ["note 0: called the customer back"]
    csv_head = open_file(b"\r\n" * 40 + b"Mark,Phone\r\nPM1,1\r\n", "late.csv", S).rows("late", 10, head=30)
    assert len(csv_head) == 41 and csv_head[40] == ["Mark", "Phone"]  # on to the first non-blank row


def test_read_path_reads_a_file_and_refuses_what_cannot_be_read(tmp_path: Path):
    path = tmp_path / "customers.xlsx"
    data = corpus.simple_xlsx()
    path.write_bytes(data)
    assert read.read_path(path, S) == data
    assert read.read_path(str(path), S) == data
    for target, words in [(tmp_path / "missing.csv", "no such file"), (tmp_path, "is a folder")]:
        with pytest.raises(FileRefused) as err:
            read.read_path(target, S)
        assert words in str(err.value) and "\n" not in str(err.value)
    big = tmp_path / "big.csv"
    big.write_bytes(b"x" * (1024 * 1024 + 1))
    with pytest.raises(LimitExceeded, match="MAX_UPLOAD_MB"):
        read.read_path(big, S.with_(max_upload_mb=1))


@pytest.mark.parametrize("target", ["/dev/zero", "sparse"])
def test_read_path_refuses_an_endless_or_huge_file_in_little_memory(target: str, tmp_path: Path):
    if target == "sparse":
        sparse = tmp_path / "sparse.csv"
        with sparse.open("wb") as fh:
            fh.truncate(1 << 30)  # 1 GB, no blocks on disk
        target = str(sparse)
    script = (
        "from importer.intake.readers import read_path; from importer.settings import Settings\n"
        "from importer.errors import LimitExceeded\n"
        "try:\n"
        f"    read_path({target!r}, Settings())\n"
        "except LimitExceeded as exc:\n"
        "    print(exc)"
    )
    message, peak = _peak_kb(script)
    assert "over the 50 MB upload limit (MAX_UPLOAD_MB)" in message and "\n" not in message
    assert peak < 400_000  # KB; /dev/zero is read at most 50 MB + 1 byte


def test_a_sheet_stored_outside_worksheets_is_measured_too():
    """The workbook's relationships may put a sheet anywhere; calamine follows them, so the guard does."""
    buf = io.BytesIO()
    corpus.unreferenced_cells_xlsx(buf, rows=30, columns=10)
    src, out = zipfile.ZipFile(buf), io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info.filename).replace(b"worksheets/sheet1.xml", b"data/cells.xml")
            dst.writestr(info.filename.replace("worksheets/sheet1.xml", "data/cells.xml"), body)
    moved = out.getvalue()
    assert "xl/data/cells.xml" in zipfile.ZipFile(io.BytesIO(moved)).namelist()
    with pytest.raises(LimitExceeded, match="MAX_CELLS"):
        open_file(moved, "moved.xlsx", S.with_(max_cells=299))
    assert len(rows_of(moved, "moved.xlsx", settings=S.with_(max_cells=300))) == 30


# -- hidden columns (issue 11: a hidden "Phone" column must not beat a visible "Mobile") -------------------
@pytest.mark.parametrize(
    ("cols", "hidden"),
    [
        (b'<cols><col min="4" max="4" width="9" hidden="1" customWidth="1"/></cols>', {3}),
        (b'<cols><col min="2" max="3" hidden="true"/><col min="5" max="5" width="12"/></cols>', {1, 2}),
        (b'<cols><col min="6" max="6" width="0" customWidth="1"/></cols>', {5}),  # zero width
        (b'<x:cols><x:col min="1" max="1" hidden="1"/></x:cols>', {0}),  # a namespace prefix
        (b'<cols><col min="7" max="16384" hidden="1"/></cols>', set(range(6, 1024))),  # "hide the rest"
        (b'<cols><col min="a" max="2" hidden="1"/><col hidden="0" min="1" max="1"/></cols>', set()),
        (b"", set()),
    ],
)
def test_hidden_columns_are_read_from_the_sheet_xml(cols, hidden):
    from importer.intake.zip_guard import hidden_columns

    xml = b'<worksheet><sheetViews/>' + cols + b'<sheetData><row r="1"><c r="A1"/></row></sheetData>' + \
        b'<cols><col min="9" max="9" hidden="1"/></cols></worksheet>'  # after sheetData: not a column setting
    assert hidden_columns(xml) == frozenset(hidden)


def test_open_file_reports_the_hidden_columns_of_each_sheet():
    import openpyxl

    wb = openpyxl.Workbook()
    wb.active.title = "A"
    wb.active.append(["x", "y", "z"])
    wb.active.column_dimensions["B"].hidden = True
    wb.create_sheet("B").append(["x"])
    buf = io.BytesIO()
    wb.save(buf)
    f = open_file(buf.getvalue(), "h.xlsx", S)
    assert f.hidden_columns("A") == frozenset({1}) and f.hidden_columns("B") == frozenset()
    assert f.rows("A", 10).hidden_columns == frozenset({1})
    assert open_file(corpus.simple_xlsx(), "s.xlsx", S).hidden_columns("Customers") == frozenset()
    csv_file = open_file(b"a,b\n1,2\n", "c.csv", S)
    assert csv_file.hidden_columns("c") == frozenset()


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_a_repetitive_column_keeps_one_string_per_distinct_text_and_a_unique_one_is_left_alone(fmt: str):
    """SheetRows shares the repeated texts of a column (SHARE_PROBE_ROWS): a read of 100,000 rows holds each
    cell as a Python string until the frame is built, and first names or regions repeat. The values are the
    same; a column of unique texts is not looked up once the probe has seen it."""
    from importer.intake import delimited

    count = delimited.SHARE_PROBE_ROWS + 300
    header = ["Region", "Email", "Phone"]
    body = [[["Volta", "Ashanti Region", "Greater Accra"][i % 3], f"ama.{i}@example.com", f"024{i:07d}"]
            for i in range(count)]
    if fmt == "xlsx":
        data, name = corpus.xlsx({"Customers": [header, *body]}), "c.xlsx"
    else:
        data, name = ("\n".join(",".join(row) for row in [header, *body]) + "\n").encode(), "c.csv"
    file = open_file(data, name, S)
    rows = file.rows(file.sheet_names[0], count + 5, columns=(0, 1, 2))
    assert [list(r) for r in rows[1:]] == body
    regions = {id(r[0]) for r in rows[1:]}
    assert len(regions) == 3  # one object per distinct region, early and late rows alike
    late = rows[delimited.SHARE_PROBE_ROWS + 50:]
    assert len({id(r[1]) for r in late}) == len(late)
    assert [position for position, _ in rows._shared] == [0]  # the region column alone is still looked up


def test_a_column_that_stops_repeating_is_no_longer_looked_up_past_share_max_distinct(monkeypatch):
    """A column repetitive in the probe (a sorted file: the same city first) but distinct later is looked up
    until it holds SHARE_MAX_DISTINCT texts, then left alone: the lookup never grows past it by much."""
    from importer.intake import delimited

    monkeypatch.setattr(delimited, "SHARE_MAX_DISTINCT", 1_000)
    probe = delimited.SHARE_PROBE_ROWS
    body = [["Accra" if i < probe else f"Town {i}", "Ama"] for i in range(probe * 6)]
    data = ("\n".join(",".join(row) for row in [["City", "First Name"], *body]) + "\n").encode()
    rows = open_file(data, "c.csv", S).rows("c", len(body) + 5, columns=(0, 1))
    assert [list(r) for r in rows[1:]] == body
    assert [position for position, _ in rows._shared] == [1]  # the first names alone
