"""Issue 20: costs in bytes known before allocating, limits checked while the input streams.

- importer.server.governor charges a read by its cells, their text and the shared-strings table, an import by
  its frames' bytes: a row of long fields costs more than an ordinary one;
- importer.intake.read_limits refuses, while zip_guard inflates the workbook and before any parser sees it, a
  read that cannot fit MEMORY_BUDGET_MB (saying how many rows would), a shared-strings table too big to load,
  and a cell past MAX_FILE_CELL_CHARS;
- importer.intake.json_input refuses a --mapping/--operations file by its size and its keys before parsing it;
- importer.server.front_door bounds what one session may hold in uploads.
(Peaks under the 512 MB cgroup: bench/RESULTS.md, "Limits read as the file streams".)
"""

from __future__ import annotations

import io
import json
import random
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from bench.hostile_files import (
    MAX_LENGTH_HEADERS,
    _write_workbook,
    big_mapping_json,
    max_length_csv,
    max_length_row,
    max_length_workbook,
    shared_strings_bomb,
)
from bench.workbook import HEADERS, customer_rows, customer_workbook
from importer.api import read_upload
from importer.errors import FileRefused, LimitExceeded, UsageError
from importer.intake import json_input
from importer.intake.read_limits import TextRuns, declared_read_cost
from importer.intake.readers import open_file
from importer.server import front_door, governor
from importer.server.front_door import FrontDoor, upload_refusal
from importer.settings import Settings
from tests.test_front_door import _asgi, _Inner, _scope

MB = 1024 * 1024


# --- costs in bytes ------------------------------------------------------------------------------------


def test_a_read_costs_by_its_bytes_not_its_rows() -> None:
    ordinary = governor.cost_to_read(cells=8 * 20_000, sheet_bytes=8 * 20_000 * 48)
    long_fields = governor.cost_to_read(cells=21 * 5_000, sheet_bytes=21 * 5_000 * 40, shared_strings=21 * 5_000,
                                        shared_string_bytes=21 * 5_000 * 140)
    assert long_fields > ordinary  # a quarter of the rows, twice the cost
    table_only = governor.cost_to_read(cells=44, sheet_bytes=2_000, shared_strings=10_000_000,
                                       shared_string_bytes=200 * MB)
    assert table_only > 250 * MB  # ten million entries for 44 cells cannot be loaded in the budget


def test_an_import_is_charged_by_its_frames_bytes() -> None:
    short = pd.DataFrame({"a": ["x"] * 20_000}, dtype="str")
    long = pd.DataFrame({"a": ["x" * 2_000] * 20_000}, dtype="str")
    assert governor.frames_bytes(long) > 100 * governor.frames_bytes(short)
    assert governor.cost_of_frames(governor.frames_bytes(long, None)) > 2 * governor.cost_of_frames(
        governor.frames_bytes(short))


def test_rows_within_a_budget_are_rounded_down_and_never_zero() -> None:
    assert governor.rows_within(100_000, 1_000 * MB, 250 * MB) == 25_000
    assert governor.rows_within(100_000, 100 * MB, 250 * MB) == 100_000
    assert governor.rows_within(10, 10_000 * MB, 1 * MB) == 1
    assert governor.rows_within(1_234, 2 * MB, 1 * MB) == 610


# --- a read that cannot fit the budget is refused before a parser allocates ------------------------------


def _refuse_parsers(monkeypatch, what: str, *parsers: tuple[object, str]) -> None:
    """Each (owner, name) fails if anything calls it: a refusal of `what` must come before any parser."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"a parser was asked for {what} the checks should have refused")

    for owner, name in parsers:
        monkeypatch.setattr(owner, name, refuse)


@pytest.fixture()
def no_parser(monkeypatch):
    """calamine and openpyxl fail if anything asks them for the workbook: a refusal must come first."""
    import openpyxl
    import python_calamine

    _refuse_parsers(monkeypatch, "a workbook", (python_calamine.CalamineWorkbook, "from_filelike"),
                    (openpyxl, "load_workbook"))


def test_a_workbook_of_long_fields_is_refused_by_its_bytes_with_the_rows_that_fit(tmp_path: Path, no_parser) -> None:
    path = max_length_workbook(tmp_path / "long.xlsx", rows=1_000, extra_columns=10)
    settings = Settings().with_(memory_budget_mb=50)
    with pytest.raises(LimitExceeded) as caught:
        open_file(path.read_bytes(), path.name, settings)
    text = str(caught.value)
    assert "long.xlsx needs" in text and "MB of memory to read" in text and "at most 50 MB" in text
    fit = int(text.split("files of at most ")[1].split(" rows")[0].replace(",", ""))
    assert 100 <= fit < 1_000 and "(it has 1,001)" in text
    assert caught.value.setting == "MEMORY_BUDGET_MB" and caught.value.found > 50


def test_an_ordinary_workbook_of_the_same_rows_is_read(tmp_path: Path) -> None:
    data = customer_workbook(1_000)
    opened = open_file(data, "ordinary.xlsx", Settings().with_(memory_budget_mb=50))
    assert opened.sheet_names == ("Customers",)


def test_a_shared_strings_bomb_is_refused_while_its_table_streams(tmp_path: Path, no_parser) -> None:
    path = shared_strings_bomb(tmp_path / "table.xlsx", entries=300_000, rows=10)
    with pytest.raises(LimitExceeded) as caught:
        open_file(path.read_bytes(), path.name, Settings().with_(memory_budget_mb=45))
    text = str(caught.value)
    assert "table of distinct texts holds" in text and "for 44 cells" in text and "save it again" in text
    counted = int(text.split("holds ")[1].split(" entries")[0].replace(",", ""))
    assert counted < 300_000  # stopped while it streamed, before the end of the table


def test_the_charge_before_the_scan_comes_from_the_declared_sizes(tmp_path: Path) -> None:
    small = max_length_workbook(tmp_path / "s.xlsx", rows=100, extra_columns=0).read_bytes()
    large = max_length_workbook(tmp_path / "l.xlsx", rows=1_000, extra_columns=0).read_bytes()
    small_cost, large_cost = declared_read_cost(small), declared_read_cost(large)
    assert small_cost is not None and large_cost is not None
    assert large_cost - governor.READ_BASE_BYTES > 5 * (small_cost - governor.READ_BASE_BYTES)
    assert declared_read_cost(b"Shipping Mark,Phone\n") is None


# --- a CSV is refused on its estimate before it is parsed -----------------------------------------------


@pytest.fixture()
def no_csv_parser(monkeypatch):
    """The csv reader fails if anything asks it for rows: a refusal must come first."""
    from importer.intake import readers

    def refuse(*args, **kwargs):
        raise AssertionError("a CSV was parsed that the checks should have refused")

    monkeypatch.setattr(readers, "csv_rows", refuse)


def _ordinary_csv(rows: int) -> bytes:
    buffer = io.StringIO()
    pd.DataFrame(customer_rows(rows), columns=HEADERS).to_csv(buffer, index=False)
    return buffer.getvalue().encode()


def test_a_csv_of_long_fields_is_refused_by_its_bytes_with_the_rows_that_fit(tmp_path: Path, no_csv_parser) -> None:
    """Before: a CSV was never refused on an estimate; its rows were parsed whatever the budget."""
    data = max_length_csv(tmp_path / "long.csv", rows=2_000).read_bytes()  # 5.3 MB
    with pytest.raises(LimitExceeded) as caught:
        read_upload(data, "long.csv", Settings().with_(memory_budget_mb=50))
    text = str(caught.value)
    assert "long.csv needs about" in text and "MB of memory to read" in text and "at most 50 MB" in text
    fit = int(text.split("files of at most ")[1].split(" rows")[0].replace(",", ""))
    assert 1_000 <= fit < 2_000 and "(it has 2,001)" in text
    assert caught.value.setting == "MEMORY_BUDGET_MB" and caught.value.found > 50
    assert "MEMORY_BUDGET_MB" not in text


def test_an_ordinary_csv_of_the_same_rows_is_read() -> None:
    upload = read_upload(_ordinary_csv(2_000), "ordinary.csv", Settings().with_(memory_budget_mb=50))
    assert len(upload.checked.original) == 2_000


def test_the_columns_a_csv_read_drops_are_not_charged_as_kept_text() -> None:
    """20,000 rows x 245 columns, 5 of them customer fields (10 MB): reading keeps the used columns only.
    Before: every byte was costed as kept text (about 114 MB, refused)."""
    from tests.fixtures import corpus

    opened = open_file(corpus.wide_csv(rows=20_000), "wide.csv", Settings().with_(memory_budget_mb=100))
    assert opened.format == "csv"


def test_a_csv_over_max_rows_whose_first_rows_fit_is_refused_for_its_rows() -> None:
    data = _ordinary_csv(3_000)
    opened = open_file(data, "many.csv", Settings().with_(memory_budget_mb=42, max_rows=1_000))  # all: 43 MB
    with pytest.raises(LimitExceeded, match=r"more than 1,000 data rows"):
        opened.rows("many", 1_000)


def test_a_utf16_csv_is_estimated_by_its_characters_not_its_bytes(tmp_path: Path) -> None:
    text = max_length_csv(tmp_path / "long.csv", rows=2_000).read_text(encoding="utf-8")
    settings = Settings().with_(memory_budget_mb=100)
    utf8, utf16 = text.encode("utf-8"), text.encode("utf-16")  # twice the bytes, the same characters
    assert open_file(utf8, "long.csv", settings).format == "csv"
    assert open_file(utf16, "long.csv", settings).format == "csv"
    with pytest.raises(LimitExceeded):
        open_file(utf16, "long.csv", Settings().with_(memory_budget_mb=50))


# --- an .xls is refused on what its BIFF records hold before calamine parses it -----------------------------


def _xls(path: Path, rows: list[list[Any]], unused_strings: int = 0) -> bytes:
    """An .xls written by xlwt; `unused_strings` entries added to its shared-strings table that no cell uses
    (xlwt's own table, as a file saved by a careless exporter holds them)."""
    import xlwt

    book = xlwt.Workbook()
    sheet = book.add_sheet("Customers")
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if value != "":
                sheet.write(r, c, value)
    table = book._Workbook__sst  # type: ignore[attr-defined]
    for n in range(unused_strings):
        table.add_str(f"x{n}")
    book.save(str(path))
    return path.read_bytes()


@pytest.fixture()
def no_xls_parser(monkeypatch):
    """calamine and xlrd fail if anything asks them for the workbook: a refusal must come first."""
    import python_calamine
    import xlrd

    _refuse_parsers(monkeypatch, "an .xls", (python_calamine.CalamineWorkbook, "from_filelike"),
                    (xlrd, "open_workbook"))


def _long_rows(count: int) -> list[list[str]]:
    rnd = random.Random(20)
    return [list(MAX_LENGTH_HEADERS) + [f"Extra {k + 1}" for k in range(10)]] + [
        max_length_row(i, rnd, 10) for i in range(count)]


def test_an_xls_of_long_fields_is_refused_by_its_bytes_with_the_rows_that_fit(tmp_path: Path, no_xls_parser) -> None:
    """Before: an .xls got no byte check; calamine parsed every sheet whatever the budget."""
    data = _xls(tmp_path / "long.xls", _long_rows(1_000))
    with pytest.raises(LimitExceeded) as caught:
        open_file(data, "long.xls", Settings().with_(memory_budget_mb=50))
    text = str(caught.value)
    assert "long.xls needs about" in text and "MB of memory to read" in text and "at most 50 MB" in text
    fit = int(text.split("files of at most ")[1].split(" rows")[0].replace(",", ""))
    assert 100 <= fit < 1_000 and "(it has 1,001)" in text
    assert caught.value.setting == "MEMORY_BUDGET_MB" and caught.value.found > 50


def test_an_ordinary_xls_of_the_same_rows_is_read(tmp_path: Path) -> None:
    data = _xls(tmp_path / "ordinary.xls", [HEADERS, *customer_rows(1_000)])
    opened = open_file(data, "ordinary.xls", Settings().with_(memory_budget_mb=50))
    assert opened.format == "xls" and len(opened.rows("Customers", 2_000)) == 1_001


def test_an_xls_of_a_huge_shared_strings_table_is_refused(tmp_path: Path, no_xls_parser) -> None:
    rows = [["Shipping Mark", "First Name", "Last Name", "Phone"], ["M1", "Ama", "Mensah", "0241234567"]]
    data = _xls(tmp_path / "table.xls", rows, unused_strings=650_000)  # 6.5 MB
    with pytest.raises(LimitExceeded) as caught:
        open_file(data, "table.xls", Settings().with_(memory_budget_mb=45))
    text = str(caught.value)
    assert "table of distinct texts holds 650,008 entries for 8 cells" in text and "save it again" in text
    # The table's own counts are not believed (calamine reads every entry whatever they say): declaring one
    # entry changes nothing.
    at = next(i for i in range(len(data)) if data.startswith(b"\xfc\x00", i)
              and data[i + 8 : i + 12] == (650_008).to_bytes(4, "little"))
    lying = data[: at + 4] + (1).to_bytes(4, "little") * 2 + data[at + 12 :]
    with pytest.raises(LimitExceeded, match="table of distinct texts holds 650,008 entries"):
        open_file(lying, "table.xls", Settings().with_(memory_budget_mb=45))


def test_shared_strings_are_counted_across_continue_records_whatever_they_declare() -> None:
    from importer.intake.ole_guard import _sst_entries

    pieces = [b"\x05\x00\x00abc",  # 5 characters, 3 here: the record ends
              b"\x00de" + b"\x02\x00\x01" + "hi".encode("utf-16-le")  # a flags byte, the rest; 2 wide characters
              + b"\x01\x00\x08\x01\x00x" + b"\x00\x00",  # rich text: 1 run of 4 bytes, split
              b"\x00\x00" + b"\x00\x00\x00"]  # the run's end (no flags byte), an empty entry
    assert _sst_entries(pieces) == 4
    assert _sst_entries(pieces, most=2) == 2


# --- characters per cell -------------------------------------------------------------------------------


def _one_cell_workbook(path: Path, text: str) -> bytes:
    strings = ["Shipping Mark", "First Name", "Last Name", "Phone", "M1", "Ama", text, "0241234567"]
    return _write_workbook(path, [[0, 1, 2, 3], [4, 5, 6, 7]], strings, len(strings)).read_bytes()


def test_a_cell_past_max_cell_chars_is_refused_while_the_xml_streams(tmp_path: Path, no_parser) -> None:
    data = _one_cell_workbook(tmp_path / "cell.xlsx", "Mensah " * 6_000)  # 42,000 characters
    with pytest.raises(LimitExceeded) as caught:
        open_file(data, "cell.xlsx", Settings())
    assert "holds more than 32,767 characters" in str(caught.value)
    assert caught.value.setting == "MAX_FILE_CELL_CHARS"


def test_a_cell_of_excels_most_characters_is_read(tmp_path: Path) -> None:
    data = _one_cell_workbook(tmp_path / "most.xlsx", "x" * 32_767)
    assert open_file(data, "most.xlsx", Settings()).format == "xlsx"


def test_a_long_cell_of_multibyte_text_counts_characters_not_bytes(tmp_path: Path) -> None:
    data = _one_cell_workbook(tmp_path / "accents.xlsx", "é" * 30_000)  # 60,000 bytes, 30,000 characters
    assert open_file(data, "accents.xlsx", Settings()).format == "xlsx"
    with pytest.raises(LimitExceeded):
        open_file(data, "accents.xlsx", Settings().with_(max_file_cell_chars=20_000))


@pytest.mark.parametrize("seed", range(5))
def test_text_runs_measure_the_longest_text_whatever_the_chunks(seed: int) -> None:
    rnd = random.Random(seed)
    runs = [rnd.choice([3, 50, 900, 5_000]) for _ in range(200)]
    xml = b"".join(b"<t>" + b"a" * n + b"</t>" for n in runs)
    meter = TextRuns(6_000 - TextRuns.TAG_ROOM, lambda n: LimitExceeded(f"{n}"))
    position = 0
    while position < len(xml):
        size = rnd.choice([1, 7, 4_096, 65_536])
        meter.feed(xml[position : position + size])
        position += size
    assert max(runs) + 2 <= meter.longest <= max(runs) + 3  # the text and its tag's name: "t>" + text
    too_long = TextRuns(4_000 - TextRuns.TAG_ROOM, lambda n: LimitExceeded(f"{n}"))
    with pytest.raises(LimitExceeded):
        for start in range(0, len(xml), 8_192):
            too_long.feed(xml[start : start + 8_192])


# --- --mapping and --operations files --------------------------------------------------------------------


def test_a_mapping_file_of_millions_of_keys_is_refused_by_its_size_before_it_is_read(tmp_path: Path,
                                                                                       monkeypatch) -> None:
    path = big_mapping_json(tmp_path / "mapping.json", keys=100_000)
    read = []
    real_open = Path.open
    monkeypatch.setattr(Path, "open", lambda self, *a, **k: read.append(self) or real_open(self, *a, **k))
    with pytest.raises(UsageError, match=r"is over 1,024 KB \(2,"):
        json_input.read_json_text(path, "the mapping file mapping.json")
    assert read == [path]


def test_a_json_file_of_too_many_keys_is_refused_before_it_is_parsed(monkeypatch) -> None:
    text = "{" + ",".join(f'"c{n}":0' for n in range(json_input.MAX_JSON_KEYS + 1)) + "}"
    assert len(text) < json_input.MAX_JSON_BYTES
    monkeypatch.setattr(json_input.json, "loads", lambda *a, **k: pytest.fail("parsed before its keys were counted"))
    with pytest.raises(UsageError, match="50,001 keys, over the 50,000"):
        json_input.parse_json(text, "the mapping file m.json")


def test_keys_are_counted_outside_strings_only() -> None:
    assert json_input.count_keys('{"a:b": 1, "c\\"d:": {"x": "y:z"}}') == 3
    assert json_input.count_keys('["a:b", "c"]') == 0
    assert json_input.count_keys(json.dumps({f"k{n}": [1, {"n": n}] for n in range(50)})) == 100


# --- uploads per session ---------------------------------------------------------------------------------


def test_upload_refusal_bounds_files_and_bytes_held_per_session() -> None:
    assert upload_refusal(0, 0, 49 * MB, 4, 100 * MB) is None
    assert upload_refusal(3, 50 * MB, 49 * MB, 4, 100 * MB) is None
    status, text = upload_refusal(4, 10 * MB, 1 * MB, 4, 100 * MB) or (0, b"")
    assert status == 413 and b"already holds 4 uploaded files" in text and b"Remove" in text
    status, text = upload_refusal(1, 60 * MB, 49 * MB, 4, 100 * MB) or (0, b"")
    assert status == 413 and b"would hold 109 MB" in text and b"over the 100 MB" in text


def test_the_front_door_refuses_an_upload_past_the_sessions_limits_before_its_body(monkeypatch) -> None:
    inner = _Inner()
    door = FrontDoor(inner, max_uploads=2, max_upload_mb=100)
    session = "s-limits"
    held = {"files": 2, "bytes": 10 * MB}
    monkeypatch.setattr(front_door, "held_uploads",
                        lambda session_id, except_file=None: (held["files"], held["bytes"]))
    path = f"/_stcore/upload_file/{session}/file-3"
    front_door.mark_signed_in(session)
    try:
        status, body = _asgi(door, _scope(path, "PUT"))
        assert status == 413 and b"already holds 2 uploaded files" in body
        assert inner.scopes == []
        held["files"] = 1
        assert _asgi(door, _scope(path, "PUT"))[0] == 204  # no Content-Length: Streamlit's 50 MB at most
        assert _asgi(door, _scope(path, "DELETE"))[0] == 204  # removing a file is always allowed
    finally:
        front_door.mark_signed_out(session)


def test_upload_settings_have_defaults_and_read_the_environment() -> None:
    assert Settings().max_uploads_per_session == 4 and Settings().max_session_upload_mb == 100
    env = {"MAX_UPLOADS_PER_SESSION": "2", "MAX_SESSION_UPLOAD_MB": "60", "MAX_FILE_CELL_CHARS": "1000"}
    settings = Settings.from_env(env)
    assert (settings.max_uploads_per_session, settings.max_session_upload_mb, settings.max_file_cell_chars) == (2, 60, 1000)
    assert Settings().max_file_cell_chars == 32_767


def test_a_refusal_is_a_file_refusal_the_pages_show(tmp_path: Path) -> None:
    data = io.BytesIO(shared_strings_bomb(tmp_path / "t.xlsx", entries=100_000).read_bytes()).getvalue()
    with pytest.raises(FileRefused):
        open_file(data, "t.xlsx", Settings().with_(memory_budget_mb=41))


# --- nothing accepted before login, on the real server ----------------------------------------------------


@pytest.mark.slow
def test_an_upload_before_login_is_refused_before_its_body_is_sent(tmp_path: Path) -> None:
    """The dashboard as deployed (importer.server.serve), a session showing the login form: an upload
    announcing 49 MB is answered 403 while the client has sent none of its body, eight times over (plain
    Streamlit would wait for the body of an active session's upload). bench/bench_limits.py --pre-login
    measures the server's memory around the same uploads sent whole."""
    import asyncio
    import concurrent.futures
    import http.client
    import uuid

    from bench.bench_limits import _free_port, login_form_session, start_server

    port = _free_port()
    server = start_server(port, tmp_path / "c.db")

    def announce(session: str) -> list[tuple[int, bytes]]:
        assert session
        answers = []
        for _ in range(8):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
            conn.putrequest("PUT", f"/_stcore/upload_file/{session}/{uuid.uuid4().hex}")
            conn.putheader("Content-Type", "multipart/form-data; boundary=x")
            conn.putheader("Content-Length", str(49 * MB))
            conn.endheaders()  # headers only: not one byte of the body is sent
            response = conn.getresponse()
            answers.append((response.status, response.read()))
            conn.close()
        return answers

    try:
        # On a thread of its own: an earlier test in the same worker may leave an event loop running on this
        # one, where asyncio.run refuses to start (as in tests/test_front_door.py).
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            answers = pool.submit(asyncio.run, login_form_session(port, announce)).result()
        assert answers == [(403, b"Sign in first\n")] * 8
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_queue_charges_an_xls_what_reading_it_measures_not_a_guess_from_its_size(tmp_path: Path) -> None:
    """Before: the Upload page queued an .xls at a cost guessed from its size (rows of ordinary width): 76 MB
    for one that needs 64, 145 MB for one that needs 85. Now the charge is what reading measures and refuses by."""
    from importer.intake.readers import estimated_read_mb

    long = _xls(tmp_path / "long.xls", _long_rows(1_000))
    with pytest.raises(LimitExceeded) as caught:
        open_file(long, "long.xls", Settings().with_(memory_budget_mb=50))
    needs = int(str(caught.value).split("needs about ")[1].split(" MB")[0].replace(",", ""))
    assert estimated_read_mb(long, "long.xls", Settings()) == pytest.approx(needs, abs=1)
    rows = [["Shipping Mark", "First Name", "Last Name", "Phone"], ["M1", "Ama", "Mensah", "0241234567"]]
    table = _xls(tmp_path / "table.xls", rows, unused_strings=650_000)
    guess = governor.cost_for_rows(governor.estimate_rows(len(table), "table.xls", Settings().max_rows))
    measured = estimated_read_mb(table, "table.xls", Settings())
    assert measured > 45 and abs(measured - guess) > 10, (measured, guess)  # refused at 45 MB: it needs more
