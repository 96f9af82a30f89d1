"""Bounded buffers (issue 20, item 2): an operation whose result would be too big is refused before it builds
anything (engine, replay and CLI); exports and failure reports are written a chunk at a time to a file on disk
and sent from disk by the front door's download route, which deletes the file once sent."""

from __future__ import annotations

import csv
import io
import json
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from importer import cli
from importer.checks.validate import check_frame
from importer.database.schema import ensure_schema, make_engine
from importer.output import customer_export, downloads
from importer.review import conversions
from importer.review.conversions import (
    Conversion,
    OperationTooBig,
    Replace,
    apply_operation,
    new_values,
    preview,
)
from importer.settings import Settings
from importer.workspace.replay import replay_operations
from tests.test_front_door import _asgi, _Inner, _scope

S = Settings()
HEADER = ["Shipping Mark", "First Name", "Last Name", "Phone", "Region", "Company Name"]


def _checked(n: int, company: str = ""):
    frame = pd.DataFrame({
        "shipping_mark": [f"PM{i:05d}" for i in range(n)], "first_name": ["Kofi"] * n, "last_name": ["Mensah"] * n,
        "phone": [f"024{i:07d}" for i in range(n)], "region": ["VOLTA"] * n, "company_name": [company] * n,
    }, index=pd.Index(range(2, n + 2), name="source_row_number"))
    return check_frame(frame, S)


@pytest.fixture
def built(monkeypatch) -> list[int]:
    """The chunks of new text the operations build (conversions._new_in's results), recorded."""
    sizes: list[int] = []
    real = conversions._new_in

    def recording(column, operation):
        found = real(column, operation)
        sizes.append(len(found))
        return found

    monkeypatch.setattr(conversions, "_new_in", recording)
    return sizes


# -- operations refused before they run --------------------------------------------------------------------
def test_a_replacement_past_the_cell_limit_is_refused_before_anything_is_built(built) -> None:
    checked = _checked(50)
    before = checked.original.copy()
    op = Replace("company_name", "", "C" * (S.max_cell_chars + 1), whole_cell=True)
    for attempt in (lambda: preview(checked, op, S), lambda: apply_operation(checked, op, S)):
        with pytest.raises(OperationTooBig) as refused:
            attempt()
        assert str(refused.value) == (
            f"Not applied: this would make the Company Name of row 2 and 49 other rows {S.max_cell_chars + 1:,} "
            f"characters long, and a cell can hold at most {S.max_cell_chars:,}. Use a shorter replacement.")
    assert built == []  # no new text was made
    pd.testing.assert_frame_equal(checked.original, before)
    # At the limit it runs.
    after = apply_operation(checked, Replace("company_name", "", "C" * S.max_cell_chars, whole_cell=True), S)
    assert (after.original["company_name"].str.len() == S.max_cell_chars).all()


def test_the_text_an_operation_adds_is_limited_in_mb(built) -> None:
    small = S.with_(max_operation_mb=1)
    checked = _checked(3_000)
    with pytest.raises(OperationTooBig, match=r"^Not applied: this would add 1 MB of text to the upload \(3,000 "
                                              r"Company Name cells\), and one change can add at most 1 MB\."):
        preview(checked, Replace("company_name", "", "é" * 200, whole_cell=True), small)  # 400 bytes a cell
    assert built == []
    assert preview(checked, Replace("company_name", "", "C" * 300, whole_cell=True), small).changes == 3_000


def test_occurrences_inside_a_cell_are_counted_and_a_shrinking_long_cell_is_not_refused() -> None:
    checked = _checked(3, company="a a")
    eleven = S.with_(max_cell_chars=11)
    assert new_values(checked, Replace("company_name", "a", "b" * 5), eleven).iloc[0] == "bbbbb bbbbb"
    with pytest.raises(OperationTooBig, match="of row 2 and 2 other rows 13 characters long"):
        new_values(checked, Replace("company_name", "a", "b" * 6), eleven)
    long = _checked(2, company="x" * 40)  # already longer than the limit (it fails as too long)
    shorter = new_values(long, Replace("company_name", "xx", "y"), eleven)
    assert shorter.tolist() == ["y" * 20] * 2


def test_a_conversion_to_a_too_long_target_is_refused() -> None:
    checked = _checked(4, company="Acme")
    with pytest.raises(OperationTooBig, match="Company Name of row 2 and 3 other rows"):
        preview(checked, Conversion("company_name", {"Acme": "A" * (S.max_cell_chars + 1)}), S)


def test_new_values_a_chunk_at_a_time_give_what_one_pass_gives(monkeypatch) -> None:
    checked = _checked(10, company="Acme Ltd")
    ops = [Replace("company_name", "acme", "ACME", match_case=False), Replace("company_name", "Acme Ltd", "A",
                                                                                whole_cell=True),
           Conversion("company_name", {"Acme Ltd": "Acme Limited"})]
    whole = [new_values(checked, op, S) for op in ops]
    monkeypatch.setattr(conversions, "CHUNK_ROWS", 3)
    for op, expected in zip(ops, whole, strict=True):
        pd.testing.assert_series_equal(new_values(checked, op, S), expected)


def test_a_replayed_workspace_refuses_the_same_operation(tmp_path) -> None:
    data = ("\n".join([",".join(HEADER), *(f"PM{i:05d},Kofi,Mensah,024{i:07d},Volta," for i in range(20))]) + "\n")
    op = Replace("company_name", "", "C" * (S.max_cell_chars + 1), whole_cell=True)
    with pytest.raises(OperationTooBig, match="Company Name of row 2 and 19 other rows"):
        replay_operations(data.encode(), "branch.csv", S, None, None, [op])


def test_the_cli_refuses_an_operations_file_that_would_grow_the_upload_too_much(tmp_path, monkeypatch, capsys):
    upload = tmp_path / "branch.csv"
    upload.write_text("\n".join([",".join(HEADER), *(f"PM{i:05d},Kofi,Mensah,024{i:07d},Volta," for i in range(30))]))
    ops = tmp_path / "ops.json"
    ops.write_text(json.dumps([{"kind": "replace", "field": "company_name", "find": "", "replace": "C" * 2_000,
                                "whole_cell": True}]))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    code = cli.main(["import", str(upload), "--dry-run", "--operations", str(ops)])
    err = capsys.readouterr().err
    assert code == cli.EXIT_FILE
    assert err == ("error: Not applied: this would make the Company Name of row 2 and 29 other rows 2,000 characters "
                   f"long, and a cell can hold at most {S.max_cell_chars:,}. Use a shorter replacement.\n")
    assert not (tmp_path / "cli.db").exists() or "import_runs" not in (tmp_path / "cli.db").read_bytes().decode(
        "latin-1")


# -- exports and reports: chunks to disk, sent from disk -----------------------------------------------------
class _Watched:
    """A binary file that records, at each write, how many customers the export had taken by then."""

    def __init__(self) -> None:
        self.buffer = io.BytesIO()
        self.taken = 0
        self.at_writes: list[int] = []

    def write(self, data: bytes) -> int:
        self.at_writes.append(self.taken)
        return self.buffer.write(data)

    def flush(self) -> None:
        pass

    def rows(self) -> Iterator[dict[str, Any]]:
        for i in range(5_000):
            self.taken += 1
            yield {"id": i + 1, "shipping_mark": f"PM{i:05d}", "first_name": "Kofi", "last_name": "Mensah",
                   "phone": f"+23324{i:07d}", "region": "VOLTA", "created_at": None, "import_run_id": 1,
                   "source_row_number": i + 2}


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_an_export_is_written_while_its_customers_are_read(fmt) -> None:
    """The customers taken between two writes are bounded (a flush every 1,000 CSV rows, 500 XLSX rows after
    the 200 sampled for widths): never the whole set held, then written."""
    out = _Watched()
    assert customer_export.write_customers(out.rows(), fmt, out) == 5_000  # type: ignore[arg-type]
    gaps = [b - a for a, b in zip([0, *out.at_writes], out.at_writes, strict=False)]
    assert max(gaps) <= 1_000
    assert out.at_writes[-1] == 5_000 and len([g for g in gaps if g]) >= 5


def _seed(url: str) -> None:
    from importer.api import import_upload, read_upload

    engine = make_engine(url)
    ensure_schema(engine)
    data = "\n".join([",".join(HEADER), *(f"PM{i:05d},Kofi,Mensah,024{i:07d},Volta,Acme {i}" for i in range(30))])
    import_upload(engine, read_upload(data.encode(), "branch.csv", S), S)
    engine.dispose()


def test_an_export_file_is_sent_from_disk_once_then_deleted(sqlite_url) -> None:
    _seed(sqlite_url)
    engine = make_engine(sqlite_url)
    path = downloads.export_file(engine, "zip", "PM0001")
    engine.dispose()
    token = downloads.offer(path, "customers-pm0001-csv.zip", "application/zip", owner="tab-1")
    assert _asgi(downloads_door(), _scope(f"/app/_importer/download/{token}", "HEAD"))[0] == 200
    assert path.exists()  # HEAD sends nothing: the file stays
    status, body = _asgi(downloads_door(), _scope(f"/app/_importer/download/{token}"))
    assert status == 200
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        rows = list(csv.DictReader(io.StringIO(archive.read("customers.csv").decode("utf-8-sig"))))
    assert [r["Shipping Mark"] for r in rows] == [f"PM{i:05d}" for i in range(10, 20)]
    assert not path.exists()  # sent whole: gone
    assert _asgi(downloads_door(), _scope(f"/app/_importer/download/{token}")) == (
        404, b"This download has expired: build it again on its page.\n")


def downloads_door():
    from importer.server.front_door import FrontDoor

    return FrontDoor(_Inner())


def test_a_closed_tabs_and_an_old_files_downloads_are_deleted(tmp_path) -> None:
    files = []
    for owner in ("tab-a", "tab-b"):
        path = downloads.report_file([], "csv")
        files.append((path, downloads.offer(path, "report.csv", "text/csv", owner=owner)))
    downloads.discard_owners(["tab-a"])
    assert not files[0][0].exists() and downloads.offered(files[0][1]) is None
    assert files[1][0].exists() and downloads.offered(files[1][1]) is not None
    downloads.discard_expired(now=time.monotonic() + downloads.MAX_AGE_SECONDS + 1)
    assert not files[1][0].exists() and downloads.offered(files[1][1]) is None


def test_the_route_answers_only_offered_tokens() -> None:
    inner = _Inner()
    door = __import__("importer.server.front_door", fromlist=["FrontDoor"]).FrontDoor(inner)
    assert _asgi(door, _scope("/_importer/download/" + "A" * 32))[0] == 404
    assert _asgi(door, _scope("/_importer/download/short"))[0] == 204  # not a token: Streamlit's
    assert len(inner.scopes) == 1


def test_a_report_file_holds_the_report(tmp_path) -> None:
    path = downloads.report_file([], "xlsx")
    try:
        assert Path(path).read_bytes()[:2] == b"PK"
    finally:
        downloads.delete_file(path)


@pytest.mark.slow
def test_the_customers_page_builds_its_export_on_disk_and_links_to_it(monkeypatch, sqlite_url) -> None:
    """Served through the front door (as importer.server.serve runs it): the button builds the file, the
    session keeps a token, and the link fetches the file from disk."""
    import threading

    from importer.server import front_door
    from tests.app_support import make_app
    from tests.test_app_customers import PASSWORD, sign_in
    from tests.test_app_customers import _seed as seed_customers
    from ui import keys

    monkeypatch.setattr(front_door, "_serving", threading.Event())
    front_door.mark_serving()
    seed_customers(sqlite_url)
    at = sign_in(make_app(monkeypatch, sqlite_url, password=PASSWORD))
    at.switch_page("views/customers.py").run()
    assert not at.get("link_button")
    at.button(key=keys.CUSTOMERS_CSV).click().run()
    assert not at.exception, [e.value for e in at.exception]
    [link] = at.get("link_button")
    assert link.proto.label.startswith("Save customers.csv (")
    url = link.proto.url
    assert url.startswith(downloads.ROUTE)
    token, name, size = at.session_state["_download_token_" + keys.CUSTOMERS_CSV]  # not the file
    assert (url, name) == (downloads.ROUTE + token, "customers.csv") and size > 0
    status, body = _asgi(downloads_door(), _scope("/" + url))
    assert status == 200
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert len(rows) == 61 and rows[0]["Shipping Mark"] == "KSI-00001"
    at.run()
    assert not at.get("link_button")  # sent: the file is gone, and the button builds it again


@pytest.mark.slow
def test_the_review_pages_find_and_replace_shows_the_refusal_and_changes_nothing() -> None:
    from tests.test_cleaning_ui import app, texts
    from ui import cleaning

    at = app("replace")
    before = at.session_state["checked"].original.copy()
    at.selectbox(key=cleaning.REPLACE_FIELD).set_value("nickname").run()
    at.checkbox(key=cleaning.REPLACE_WHOLE).check().run()
    at.text_input(key=cleaning.REPLACE_WITH).input("N" * 2_000).run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        f"Not applied: this would make the Nickname of row {before.index[0]} and 39 other rows 2,000 characters long, "
        f"and a cell can hold at most {S.max_cell_chars:,}. Use a shorter replacement."]
    assert all(b.key != cleaning.REPLACE_APPLY for b in at.button)  # no Replace button to press
    assert "Fixes" not in texts(at)
    pd.testing.assert_frame_equal(at.session_state["checked"].original, before)
