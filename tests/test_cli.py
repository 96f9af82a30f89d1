"""The CLI of CONTRACT.md: exact JSON, exit codes, one-line errors, help with examples."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest
import sqlalchemy as sa

from importer.cli import build_parser, main
from tests.fixtures import corpus

ROOT = Path(__file__).resolve().parents[1]


def workbook(*rows: list[object], title: str = "Customers") -> bytes:
    return corpus.xlsx({title: [["Shipping Mark", "First Name", "Last Name", "Email", "Phone"], *rows]})


GOOD = ["PM4 KOFI", "Kofi", "Mensah", "kofi@example.com", "0241234567"]
BAD_PHONE = ["PM10 ABENA", "Abena", "", "", "5412345"]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def upload(tmp_path: Path) -> Path:
    path = tmp_path / "customers.xlsx"
    path.write_bytes(workbook(GOOD, BAD_PHONE, [" pm5  ama ", "Ama", "Serwaa", "", 241234568]))
    return path


def test_import_json_is_exactly_the_contract(capsys, upload: Path, database_url: str) -> None:
    code, out, err = run(capsys, "import", str(upload), "--json", "--database-url", database_url)
    assert code == 0, err
    assert err == ""
    result = json.loads(out)
    assert result == {
        "run_id": 1, "dry_run": False, "resumed": False, "file": "customers.xlsx", "sheet": "Customers",
        "success": True, "message": "Created 2 customers; 1 row failed",
        "total_attempted": 3, "total_created": 2, "total_failed": 1, "total_updated": 0, "total_unchanged": 0,
        "changes": [{"rule": "region_default", "field": "region", "count": 3,
                     "message": "3 blank regions got the default region GREATER_ACCRA",
                     "examples": result["changes"][0]["examples"]}],
        "failed_customers": [{
            "source_row_number": 3,
            "error": "Last Name: is blank; every customer needs a last name; Phone: 5412345 is not a valid phone number",
            "errors": [
                {"field": "last_name", "code": "required", "message": "is blank; every customer needs a last name"},
                {"field": "phone", "code": "invalid_phone", "message": "5412345 is not a valid phone number"},
            ],
            "customer_data": {"shipping_mark": "PM10 ABENA", "first_name": "Abena", "phone": "5412345"},
        }],
        "updated_customers": [],
    }
    assert list(result) == [  # the new keys come after total_failed and after failed_customers
        "run_id", "dry_run", "resumed", "file", "sheet", "success", "message", "total_attempted", "total_created",
        "total_failed", "total_updated", "total_unchanged", "changes", "failed_customers", "updated_customers"]
    engine = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg2://"))
    with engine.connect() as conn:
        stored = conn.execute(sa.text(
            "SELECT shipping_mark, phone, email, region, user_type, source_row_number, import_run_id"
            " FROM customers ORDER BY source_row_number")).all()
    engine.dispose()
    assert [tuple(r) for r in stored] == [
        ("PM4 KOFI", "+233241234567", "kofi@example.com", "GREATER_ACCRA", "INDIVIDUAL", 2, 1),
        ("PM5 AMA", "+233241234568", None, "GREATER_ACCRA", "INDIVIDUAL", 4, 1),
    ]


def test_dry_run_gives_the_real_counts_and_saves_nothing(capsys, upload: Path, database_url: str) -> None:
    code, out, _ = run(capsys, "import", str(upload), "--json", "--dry-run", "--database-url", database_url)
    dry = json.loads(out)
    assert code == 0 and dry["dry_run"] is True
    assert (dry["total_created"], dry["total_failed"]) == (2, 1)
    assert dry["message"] == "Would create 2 customers; 1 row would fail"
    code, out, _ = run(capsys, "history", "--json", "--database-url", database_url)
    assert code == 0 and json.loads(out) == []
    code, out, _ = run(capsys, "import", str(upload), "--json", "--database-url", database_url)
    real = json.loads(out)
    assert (real["total_created"], real["total_failed"]) == (2, 1)


def test_second_import_of_the_same_file_is_unchanged(capsys, upload: Path, database_url: str) -> None:
    run(capsys, "import", str(upload), "--json", "--database-url", database_url)
    code, out, _ = run(capsys, "import", str(upload), "--json", "--database-url", database_url)
    again = json.loads(out)
    assert code == 0 and again["run_id"] == 2 and again["resumed"] is False
    assert (again["total_created"], again["total_unchanged"], again["total_failed"]) == (0, 2, 1)
    assert again["message"] == "Created 0 customers; 2 unchanged; 1 row failed"
    assert [row["source_row_number"] for row in again["failed_customers"]] == [3]


def test_existing_skip_then_update_then_undo(capsys, tmp_path: Path, database_url: str) -> None:
    first = tmp_path / "march.xlsx"
    first.write_bytes(workbook(GOOD, ["PM5 AMA", "Ama", "Serwaa", "ama@example.com", "0241234568"]))
    run(capsys, "import", str(first), "--json", "--database-url", database_url)
    second = tmp_path / "april.xlsx"  # Kofi's phone changed, Ama unchanged, one new customer
    second.write_bytes(workbook(["PM4 KOFI", "Kofi", "Mensah", "kofi@example.com", "0241111111"],
                                ["PM5 AMA", "Ama", "Serwaa", "", "0241234568"],
                                ["PM6 YAW", "Yaw", "Osei", "", "0241234569"]))
    code, out, _ = run(capsys, "import", str(second), "--json", "--database-url", database_url)
    skip = json.loads(out)
    assert (skip["total_created"], skip["total_updated"], skip["total_unchanged"], skip["total_failed"]) == (1, 0, 1, 1)
    error = skip["failed_customers"][0]["errors"][0]
    assert error["code"] == "already_exists"
    assert error["message"].startswith("phone differs: stored +233241234567, file +233241111111")
    code, out, _ = run(capsys, "import", str(second), "--json", "--existing", "update", "--database-url", database_url)
    upd = json.loads(out)
    assert code == 0 and upd["message"] == "Created 0 customers; updated 1; 2 unchanged"
    assert upd["updated_customers"] == [
        {"source_row_number": 2, "customer_id": 1, "changes": {"phone": ["+233241234567", "+233241111111"]}}]
    code, out, _ = run(capsys, "import", str(second), "--json", "--existing", "update", "--blank", "clear",
                       "--database-url", database_url)
    clear = json.loads(out)
    assert clear["updated_customers"] == [
        {"source_row_number": 3, "customer_id": 2, "changes": {"email": ["ama@example.com", None]}}]
    # Runs: 1 created Kofi and Ama, 2 created Yaw, 3 changed Kofi's phone, 4 cleared Ama's email.
    code, out, _ = run(capsys, "undo", "3", "--database-url", database_url)
    assert code == 0 and out.strip() == "Run 3 undone: deleted 0 customers, restored 1."
    code, out, _ = run(capsys, "undo", "2", "--database-url", database_url)
    assert code == 0 and out.strip() == "Run 2 undone: deleted 1 customer."
    code, _, err = run(capsys, "undo", "1", "--database-url", database_url)
    assert code == 2 and "later run(s) 4" in err and "undo run(s) 4 first" in err
    code, out, _ = run(capsys, "undo", "4", "--database-url", database_url)
    assert code == 0 and out.strip() == "Run 4 undone: deleted 0 customers, restored 1."
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT shipping_mark, phone, email FROM customers ORDER BY id")).all()
    engine.dispose()
    assert [tuple(r) for r in stored] == [("PM4 KOFI", "+233241234567", "kofi@example.com"),
                                          ("PM5 AMA", "+233241234568", "ama@example.com")]


def test_dry_run_on_an_empty_database_leaves_no_tables(capsys, upload: Path, database_url: str) -> None:
    code, out, _ = run(capsys, "import", str(upload), "--json", "--dry-run", "--database-url", database_url)
    assert code == 0 and (json.loads(out)["total_created"], json.loads(out)["total_failed"]) == (2, 1)
    engine = sa.create_engine(database_url)
    assert sa.inspect(engine).get_table_names() == []
    engine.dispose()


@pytest.mark.parametrize("ending", ["csv", "xlsx"])
def test_report_is_written_and_uploads_again(capsys, upload: Path, tmp_path: Path, ending: str, sqlite_url: str) -> None:
    report = tmp_path / f"failed.{ending}"
    code, _, _ = run(capsys, "import", str(upload), "--json", "--report", str(report), "--database-url", sqlite_url)
    assert code == 0 and report.exists()
    if ending == "csv":
        rows = list(csv.reader(io.StringIO(report.read_text("utf-8-sig"))))
    else:
        rows = [list(r) for r in openpyxl.load_workbook(report).active.iter_rows(values_only=True)]
    assert rows[1][0] in ("3", 3) and rows[1][1] == "PM10 ABENA" and "5412345" in rows[1][-1]
    code, out, _ = run(capsys, "import", str(report), "--json", "--dry-run", "--database-url", sqlite_url)
    again = json.loads(out)
    assert code == 0 and again["total_attempted"] == 1
    assert {e["code"] for e in again["failed_customers"][0]["errors"]} == {"required", "invalid_phone"}


def test_human_output_lists_failures(capsys, upload: Path, sqlite_url: str) -> None:
    code, out, _ = run(capsys, "import", str(upload), "--database-url", sqlite_url)
    assert code == 0
    assert out.splitlines()[0] == "Created 2 customers; 1 row failed (run 1)"
    assert "row 3: Last Name: is blank" in out


@pytest.mark.parametrize(
    ("name", "data", "needle"),
    [
        ("notes.txt", b"hello", "not a supported"),
        ("empty.xlsx", b"", "empty"),
        ("random.xlsx", corpus.random_bytes(), "not a valid"),
        ("truncated.xlsx", corpus.truncated_xlsx(), "truncated"),
        ("bomb.xlsx", corpus.zip_bomb(), "MAX_INFLATION_RATIO"),
        ("laughs.xlsx", corpus.billion_laughs_xlsx(), "entit"),
        ("locked.xlsx", corpus.encrypted_xlsx(), "password"),
        ("nohead.xlsx", corpus.xlsx({"S": [["Name", "Town"], ["Kofi", "Accra"]]}), "header"),
        ("missing.xlsx", corpus.xlsx({"S": [["Shipping Mark", "First Name", "Last Name"], ["PM1", "A", "B"]]}),
         "Phone"),
    ],
)
def test_unusable_files_exit_2_with_one_line(capsys, tmp_path: Path, name: str, data: bytes, needle: str,
                                              sqlite_url: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    code, out, err = run(capsys, "import", str(path), "--json", "--database-url", sqlite_url)
    assert code == 2
    assert out == ""
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert needle.lower() in err.lower(), err
    assert "Traceback" not in err


def test_row_limit_says_which_setting(capsys, tmp_path: Path, monkeypatch, sqlite_url: str) -> None:
    monkeypatch.setenv("MAX_ROWS", "2")
    path = tmp_path / "three.xlsx"
    path.write_bytes(workbook(GOOD, BAD_PHONE, GOOD))
    code, _, err = run(capsys, "import", str(path), "--database-url", sqlite_url)
    assert code == 2 and "MAX_ROWS" in err


def test_missing_file_and_bad_report_path_exit_2(capsys, tmp_path: Path, upload: Path) -> None:
    assert run(capsys, "import", str(tmp_path / "nope.xlsx"))[0] == 2
    code, _, err = run(capsys, "import", str(upload), "--report", str(tmp_path / "r.pdf"))
    assert code == 2 and ".csv or .xlsx" in err


def test_unreachable_database_exits_3_with_one_line(capsys, upload: Path) -> None:
    code, out, err = run(capsys, "import", str(upload), "--json",
                         "--database-url", "postgresql://nobody@127.0.0.1:1/none")
    assert code == 3 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_history_and_undo(capsys, upload: Path, database_url: str) -> None:
    run(capsys, "import", str(upload), "--json", "--database-url", database_url)
    code, out, _ = run(capsys, "history", "--json", "--database-url", database_url)
    runs = json.loads(out)
    assert code == 0 and len(runs) == 1
    assert {k: runs[0][k] for k in ("id", "file_name", "status", "total_attempted", "total_created", "total_failed")} == {
        "id": 1, "file_name": "customers.xlsx", "status": "completed", "total_attempted": 3, "total_created": 2,
        "total_failed": 1,
    }
    code, out, _ = run(capsys, "history", "--database-url", database_url)
    assert "customers.xlsx" in out and "completed" in out
    code, out, _ = run(capsys, "undo", "1", "--database-url", database_url)
    assert code == 0 and out.strip() == "Run 1 undone: deleted 2 customers."
    code, _, err = run(capsys, "undo", "1", "--database-url", database_url)
    assert code == 2 and "undone" in err
    code, _, err = run(capsys, "undo", "99", "--database-url", database_url)
    assert code == 2 and "99" in err
    code, out, _ = run(capsys, "import", str(upload), "--json", "--database-url", database_url)
    assert json.loads(out)["total_created"] == 2


def test_init_db_and_template(capsys, tmp_path: Path, sqlite_url: str) -> None:
    code, out, _ = run(capsys, "init-db", "--database-url", sqlite_url)
    assert code == 0 and out.startswith("Database ready")
    target = tmp_path / "template.xlsx"
    code, out, _ = run(capsys, "template", str(target))
    assert code == 0 and openpyxl.load_workbook(target).sheetnames == ["Customers", "Instructions"]


def test_database_url_comes_from_the_environment(capsys, upload: Path, monkeypatch, sqlite_url: str) -> None:
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    assert run(capsys, "import", str(upload), "--json")[0] == 0
    assert Path(sqlite_url.removeprefix("sqlite:///")).exists()


def test_default_database_is_customers_db_in_the_working_directory(capsys, upload: Path, tmp_path: Path,
                                                                    monkeypatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    assert run(capsys, "init-db")[0] == 0
    assert (tmp_path / "customers.db").exists()


def test_every_command_has_help_with_an_example(capsys) -> None:
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # noqa: SLF001 - the list of commands
    assert set(commands) == {"import", "template", "history", "undo", "init-db", "users"}
    for name in commands:
        with pytest.raises(SystemExit) as info:
            main([name, "--help"])
        assert info.value.code == 0
        out = capsys.readouterr().out
        assert f"Example: python -m importer {name}" in out
        if name != "template":
            assert "--database-url" in out
    for action in ("add", "disable", "reset", "list"):  # the users command's actions, each with its own
        with pytest.raises(SystemExit) as info:
            main(["users", action, "--help"])
        assert info.value.code == 0
        out = capsys.readouterr().out
        assert f"Example: python -m importer users {action}" in out and "--database-url" in out


def test_python_dash_m_importer_runs_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\x00\x01\x02")
    proc = subprocess.run([sys.executable, "-m", "importer", "import", str(bad), "--json"],
                          cwd=tmp_path, capture_output=True, text=True, env={"PYTHONPATH": str(ROOT)}, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr


def test_unwritable_report_is_refused_before_the_import(capsys, upload: Path, sqlite_url: str) -> None:
    code, out, err = run(capsys, "import", str(upload), "--report", "/nonexistent-folder/failed.csv",
                         "--database-url", sqlite_url)
    assert code == 2 and out == ""
    assert err == "error: cannot write the report to /nonexistent-folder/failed.csv: the folder " \
                  "/nonexistent-folder does not exist\n"
    code, out, _ = run(capsys, "history", "--json", "--database-url", sqlite_url)
    assert json.loads(out) == []


def test_unwritable_template_path_exits_2_with_one_line(capsys) -> None:
    code, out, err = run(capsys, "template", "/nonexistent-folder/template.xlsx")
    assert code == 2 and out == ""
    assert err == "error: /nonexistent-folder/template.xlsx: No such file or directory\n"


def test_undo_of_an_impossible_run_id_exits_2_without_traceback(capsys, sqlite_url: str) -> None:
    code, out, err = run(capsys, "undo", "99999999999999999999", "--database-url", sqlite_url)
    assert (code, out) == (2, "")
    assert err == "error: there is no import run 99999999999999999999\n"


def test_report_path_that_is_a_folder_is_refused_before_the_import(
        capsys, upload: Path, tmp_path: Path, sqlite_url: str) -> None:
    folder = tmp_path / "reports.csv"
    folder.mkdir()
    code, out, err = run(capsys, "import", str(upload), "--report", str(folder), "--database-url", sqlite_url)
    assert (code, out) == (2, "")
    assert err.startswith("error: cannot write the report to") and "it is a folder" in err
    engine = sa.create_engine(sqlite_url)
    with engine.connect() as conn:  # refused before the schema or any run was made
        assert not sa.inspect(conn).has_table("import_runs")


def test_json_is_utf8_on_a_cp1252_console(upload: Path, tmp_path: Path, sqlite_url: str) -> None:
    emoji = tmp_path / "emoji.xlsx"
    emoji.write_bytes(workbook(["PM7 😀", "Kofi 😀", "Mensah", "", "5412345"], GOOD))
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "PYTHONIOENCODING": "cp1252", "PYTHONUTF8": "0",
           "DATABASE_URL": sqlite_url}
    proc = subprocess.run([sys.executable, "-m", "importer", "import", str(emoji), "--json"],
                          capture_output=True, env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")
    result = json.loads(proc.stdout.decode("utf-8"))
    assert result["failed_customers"][0]["customer_data"]["first_name"] == "Kofi 😀"
    # The people's text on the same console: what cp1252 cannot show is replaced, never a crash.
    proc = subprocess.run([sys.executable, "-m", "importer", "import", str(emoji), "--dry-run"],
                          capture_output=True, env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0 and b"Traceback" not in proc.stderr
    assert b"row 2:" in proc.stdout


def test_streamed_json_equals_the_json_of_the_whole_result(capsys, tmp_path: Path, sqlite_url: str) -> None:
    path = tmp_path / "many.xlsx"
    rows = [[f"PM{i} X", "Ama", "" if i % 3 else "Owusu", "", f"024{i:07d}" if i % 2 else "123"] for i in range(300)]
    path.write_bytes(workbook(*rows))
    code, out, err = run(capsys, "import", str(path), "--json", "--database-url", sqlite_url)
    assert code == 0, err
    result = json.loads(out)
    assert out == json.dumps(result, ensure_ascii=False) + "\n"
    assert result["total_failed"] == len(result["failed_customers"]) == 250
    assert [r["source_row_number"] for r in result["failed_customers"]] == sorted(
        r["source_row_number"] for r in result["failed_customers"])


def test_history_reads_while_a_dry_run_holds_sqlite_s_write_lock(upload: Path, tmp_path: Path,
                                                                  sqlite_url: str) -> None:
    """A reader (history) must not wait for a writer: the dry run keeps the write lock for its length."""
    from importer.database.ledger import list_runs
    from importer.database.schema import ensure_schema, make_engine, reading

    engine = make_engine(sqlite_url)
    ensure_schema(engine)
    with engine.connect() as writer:
        writer.begin()  # BEGIN IMMEDIATE: the write lock, as a dry run holds it
        writer.exec_driver_sql("INSERT INTO import_runs (file_name, sha256, status, started_at) "
                               "VALUES ('x', 'y', 'running', '2026-01-01')")
        other = make_engine(sqlite_url)  # another user's connection
        # A read takes no write lock: it answers at once with the committed state (a read that asked for
        # the write lock would wait out busy_timeout, then fail as "database is locked").
        assert list_runs(other) == []
        with reading(other) as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM import_runs").scalar_one() == 0
        writer.rollback()


# --- --mapping NAME | FILE.json (importer.mapping.profiles) -------------------------------------------------------

BRANCH_HEADERS = ["S/No", "Shipping Mark", "Given", "Family", "Phone", "Zone"]
BRANCH_ROWS = [[1, "PM1 KOFI", "Kofi", "Mensah", "0241234567", "Ashanti"],
               [2, "PM2 AMA", "Ama", "", "0241234568", "Volta"]]


@pytest.fixture
def branch(tmp_path: Path) -> Path:
    path = tmp_path / "kumasi-nov.xlsx"
    path.write_bytes(corpus.xlsx({"Customers": [["Kumasi branch"], [], BRANCH_HEADERS, *BRANCH_ROWS]}))
    return path


def test_mapping_by_saved_name(capsys, branch: Path, database_url: str) -> None:
    from importer.mapping.columns import ColumnMapping
    from importer.mapping.profiles import save_profile
    from tests.support import ready_engine

    code, _, err = run(capsys, "import", str(branch), "--json", "--database-url", database_url)
    assert code == 2 and err.startswith("error: Missing required column(s): First Name, Last Name")
    # The command line keeps the command the dashboard's text leaves out (issue 23): the error's detail.
    assert err.rstrip().endswith("(From the command line: python -m importer template customers.xlsx)")
    mapping = ColumnMapping(3, tuple(BRANCH_HEADERS), (None, "shipping_mark", "first_name", "last_name", "phone",
                                                        "region"), positional=False)
    save_profile(ready_engine(database_url), mapping, name="kumasi", file_name="kumasi-oct.xlsx", user="ama")
    code, out, err = run(capsys, "import", str(branch), "--json", "--mapping", "kumasi", "--database-url",
                         database_url)
    assert code == 0, err
    result = json.loads(out)
    assert (result["total_created"], result["total_failed"]) == (1, 1)
    assert result["failed_customers"][0]["source_row_number"] == 5
    assert result["failed_customers"][0]["customer_data"]["region"] == "Volta"
    code, out, err = run(capsys, "import", str(branch), "--mapping", "tema", "--database-url", database_url)
    assert (code, out) == (2, "")
    assert err == ("error: there is no saved mapping named 'tema' (saved mappings: kumasi); or give a .json file, "
                   'e.g. {"Location": "region", "Mobile": "phone", "S/No": null}\n')


def test_mapping_by_name_on_a_dry_run_of_an_empty_database(capsys, branch: Path, sqlite_url: str) -> None:
    code, out, err = run(capsys, "import", str(branch), "--dry-run", "--mapping", "kumasi", "--database-url",
                         sqlite_url)
    assert (code, out) == (2, "")
    assert err.startswith("error: there is no saved mapping named 'kumasi' (no mapping has been saved yet)")
    assert err.count("\n") == 1


def test_mapping_from_a_json_file(capsys, branch: Path, tmp_path: Path, sqlite_url: str) -> None:
    spec = tmp_path / "kumasi.json"
    spec.write_text(json.dumps({"Given": "first_name", "Family": "last_name", "Zone": "region"}))
    code, out, err = run(capsys, "import", str(branch), "--json", "--dry-run", "--mapping", str(spec),
                         "--database-url", sqlite_url)
    assert code == 0, err
    assert (json.loads(out)["total_created"], json.loads(out)["total_failed"]) == (1, 1)
    spec.write_text('{"Given": "first_name",}')
    code, out, err = run(capsys, "import", str(branch), "--mapping", str(spec), "--database-url", sqlite_url)
    assert (code, out) == (2, "")
    assert err == (f"error: the mapping file {spec} is not valid JSON: Expecting property name enclosed in double "
                   "quotes at line 1 column 24\n")
    code, _, err = run(capsys, "import", str(branch), "--mapping", str(tmp_path / "none.json"), "--database-url",
                       sqlite_url)
    assert (code, err) == (2, f"error: the mapping file {tmp_path / 'none.json'} does not exist\n")


def test_operations_file_converts_values_before_the_import(capsys, tmp_path: Path, sqlite_url: str) -> None:
    from tests.fixtures.branch_files import kumasi_csv

    source = tmp_path / "kumasi.csv"
    source.write_bytes(kumasi_csv(20))
    before = run(capsys, "import", str(source), "--dry-run", "--json", "--database-url", sqlite_url)
    assert before[0] == 0 and json.loads(before[1])["total_failed"] == 16  # Gt. Accra, G/A, Tema, Kumasi...
    operations = tmp_path / "ops.json"
    operations.write_text(json.dumps([
        {"kind": "convert", "field": "region", "targets": {"Gt. Accra": "GREATER_ACCRA", "G/A": "GREATER_ACCRA",
                                                            "Accra": "GREATER_ACCRA", "Tema": "GREATER_ACCRA",
                                                            "Kumasi": "ASHANTI", "Kumassi": "ASHANTI",
                                                            "B/A": "BRONG_AHAFO"}},
        {"kind": "replace", "field": "region", "find": "Somewhere Else", "replace": "Volta", "whole_cell": True},
    ]))
    code, out, _ = run(capsys, "import", str(source), "--operations", str(operations), "--json",
                       "--database-url", sqlite_url)
    result = json.loads(out)
    assert code == 0 and (result["total_created"], result["total_failed"]) == (20, 0)
    engine = sa.create_engine(sqlite_url)
    with engine.connect() as conn:
        regions = dict(conn.execute(sa.text("select shipping_mark, region from customers")).all())
    engine.dispose()
    assert (regions["KSI-1"], regions["KSI-5"], regions["KSI-10"]) == ("GREATER_ACCRA", "ASHANTI", "VOLTA")


@pytest.mark.parametrize("content, needle", [
    ("{not json", "ops.json"),
    ('[{"kind": "convert", "field": "colour", "targets": {}}]', "colour"),
])
def test_a_bad_operations_file_exits_2_with_one_line(capsys, tmp_path: Path, upload: Path, content: str,
                                                      needle: str, sqlite_url: str) -> None:
    operations = tmp_path / "ops.json"
    operations.write_text(content)
    code, out, err = run(capsys, "import", str(upload), "--operations", str(operations), "--database-url", sqlite_url)
    assert code == 2 and err.count("\n") == 1 and needle in err and out == ""
