"""Issue 22: the changes record (what normalising changed beyond formatting) in the CLI's JSON, the
failure report's Instructions sheet and the run's settings (History)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import openpyxl

from importer.cli import main
from importer.database.ledger import get_run
from tests.support import ready_engine

BRANCH = ("Shipping Mark,First Name,Last Name,Phone,Region\n"
          "PM1 KOFI,Kofi,Mensah,024-123-4567 ext 12,Ashanti\n"
          "PM2 AMA,Ama,Owusu,12345,Ashanti\n")


def test_the_json_the_report_and_the_run_carry_the_changes(capsys, tmp_path: Path, sqlite_url: str) -> None:
    path = tmp_path / "branch.csv"
    path.write_text(BRANCH, encoding="utf-8")
    report = tmp_path / "failed.xlsx"
    code = main(["import", str(path), "--json", "--report", str(report), "--database-url", sqlite_url])
    out, err = capsys.readouterr()
    assert code == 0, err
    result = json.loads(out)
    change = {c["rule"]: c for c in result["changes"]}["phone_extension"]
    assert (change["rule"], change["field"], change["count"]) == ("phone_extension", "phone", 1)
    assert change["message"] == "Kept 1 phone extension in Other Phones"
    assert change["examples"][0]["source_row_number"] == 2 and change["examples"][0]["typed"] == "024-123-4567 ext 12"
    assert list(result)[-3:] == ["changes", "failed_customers", "updated_customers"]
    # The run keeps them in its settings, for History.
    run = get_run(ready_engine(sqlite_url), result["run_id"])
    assert run.settings["changes"] == result["changes"]
    # The report's Instructions sheet lists them, in words, without command lines.
    book = openpyxl.load_workbook(io.BytesIO(report.read_bytes()))
    text = "\n".join(str(c) for row in book["Instructions"].iter_rows(values_only=True) for c in row if c)
    assert "Changed while reading" in text and "Kept 1 phone extension in Other Phones (row 2: " in text
    assert "--" not in text
    failed = [c for row in book["Failed rows"].iter_rows(values_only=True) for c in row if c]
    assert "12345" in failed


def test_a_file_that_only_needed_formatting_has_no_changes(capsys, tmp_path: Path, sqlite_url: str) -> None:
    path = tmp_path / "plain.csv"
    path.write_text("Shipping Mark,First Name,Last Name,Phone,Region\n pm1  kofi ,Kofi,Mensah,024 123 4567,ashanti\n")
    code = main(["import", str(path), "--json", "--dry-run", "--database-url", sqlite_url])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["changes"] == []
