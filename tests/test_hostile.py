"""Hostile files and hostile values, end to end through the CLI (tests/test_read.py covers the reader).

- Hostile files are refused with exit 2 and one line, fast, with the CLI's peak RSS measured.
- Formulas in cells import their cached values; every export (the CSV and XLSX --report) is formula-safe.
- Values that break naive code reach the database stored correctly or fail their own row with a clear
  message, on SQLite and PostgreSQL, never with a traceback.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

import openpyxl
import pytest
import sqlalchemy as sa

from bench import hostile_files
from importer.checks.normalise import FORMULA_PREFIXES
from tests.fixtures import corpus

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "fault_worker.py"
MAX_RSS_MB = 400
HEADER = ["Shipping Mark", "First Name", "Last Name", "Email", "Phone", "Company", "Nickname"]


def _built(build, **sizes) -> bytes:
    """The bytes of a file bench/hostile_files.py writes."""
    with tempfile.TemporaryDirectory() as folder:
        return build(Path(folder) / "file.xlsx", **sizes).read_bytes()


def cli(*argv: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "MAX_ROWS")}
    return subprocess.run([sys.executable, "-m", "importer", *argv], cwd=ROOT, capture_output=True, text=True,
                          env={**base, "RUST_BACKTRACE": "0", **(env or {})}, timeout=timeout)


def cli_measured(*argv: str, env: dict[str, str] | None = None) -> dict:
    """The CLI run under tests/fault_worker.py rss: exit status, output, seconds and peak RSS (MB)."""
    proc = subprocess.run([sys.executable, str(WORKER), "rss", "--timeout", "240", "--", sys.executable, "-m",
                           "importer", *argv], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "RUST_BACKTRACE": "0", **(env or {})})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.splitlines()[-1])


def assert_one_line_refusal(result: dict, code: int = 2) -> str:
    err = result["stderr"]
    assert result["returncode"] == code, err
    assert result["stdout"] == ""
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


# --- hostile files -------------------------------------------------------------------------------

HOSTILE = [
    ("bomb.xlsx", corpus.zip_bomb, {}, ["zip bomb", "MAX_INFLATION_RATIO"]),
    ("lying.xlsx", corpus.lying_size_xlsx, {}, ["inflates beyond the size it declares"]),
    ("total.xlsx", corpus.big_total_xlsx, {"MAX_INFLATED_MB": "2"}, ["MAX_INFLATED_MB"]),
    ("laughs.xlsx", corpus.billion_laughs_xlsx, {}, ["billion-laughs"]),
    ("xxe.xlsx", corpus.xxe_xlsx, {}, ["external-entity"]),
    ("locked.xlsx", corpus.encrypted_xlsx, {}, ["password-protected"]),
    ("locked.xls", corpus.encrypted_xlsx, {}, ["password-protected"]),
    ("stray.xlsx", corpus.stray_far_cell_xlsx, {}, ["Ctrl+End"]),
    ("huge_dimension.xlsx", corpus.huge_dimension_xlsx, {}, ["Missing required column"]),  # read, not allocated
    ("word.xls", corpus.junk_ole2, {}, ["not a valid Excel file"]),
    ("page.xls", corpus.html_as_xls, {}, ["web page"]),
    # Issue 20: refused by their bytes while they stream, before calamine loads them (smaller budgets here;
    # bench/bench_limits.py runs the full-size files under the 512 MB cgroup).
    ("long_fields.xlsx", lambda: _built(hostile_files.max_length_workbook, rows=1_000), {"MEMORY_BUDGET_MB": "50"},
     ["MB of memory to read", "files of at most", "(it has 1,001)"]),
    ("strings.xlsx", lambda: _built(hostile_files.shared_strings_bomb, entries=300_000), {"MEMORY_BUDGET_MB": "45"},
     ["table of distinct texts", "save it again"]),
]


@pytest.mark.parametrize(("name", "builder", "env", "words"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_file_is_refused_by_the_cli_fast_and_lean(name, builder, env, words, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_bytes(builder())
    result = cli_measured("import", str(path), "--json", "--database-url", f"sqlite:///{tmp_path / 'c.db'}",
                          env=env)
    err = assert_one_line_refusal(result)
    for word in words:
        assert word in err
    assert "root:" not in err  # XXE: /etc/passwd never shows up
    assert result["maxrss_mb"] < MAX_RSS_MB, result
    assert result["seconds"] < 30, result


@pytest.mark.slow
def test_million_row_csv_is_refused_fast_without_reading_it_all(tmp_path: Path) -> None:
    path = tmp_path / "million.csv"
    path.write_bytes(corpus.million_row_csv())
    result = cli_measured("import", str(path), "--json", "--database-url", f"sqlite:///{tmp_path / 'c.db'}")
    err = assert_one_line_refusal(result)
    assert "more than 100,000 data rows (MAX_ROWS)" in err
    print(json.dumps({"million_row_csv": {k: result[k] for k in ("seconds", "maxrss_mb")}}))
    assert result["maxrss_mb"] < MAX_RSS_MB, result  # 25 MB file: the rows are never all held
    assert result["seconds"] < 30, result
    assert not (tmp_path / "c.db").exists()  # refused before the database is touched


# --- a workbook written by hand, for formulas, error cells and escapes openpyxl will not write ----------


def tiny_xlsx(rows: list[list[object]]) -> bytes:
    """An .xlsx of inline strings; a cell may be ("f", formula, cached or None, "str"/"n") or ("e", "#N/A")."""
    def cell(ref: str, value: object) -> str:
        if value is None or value == "":
            return ""
        if isinstance(value, tuple) and value[0] == "f":
            _, formula, cached, kind = value
            t = ' t="str"' if kind == "str" else ""
            v = f"<v>{escape(str(cached))}</v>" if cached is not None else ""
            return f'<c r="{ref}"{t}><f>{escape(formula)}</f>{v}</c>'
        if isinstance(value, tuple) and value[0] == "e":
            return f'<c r="{ref}" t="e"><v>{value[1]}</v></c>'
        return f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">{escape(str(value))}</t></is></c>'

    body = "".join(
        f'<row r="{r}">' + "".join(cell(f"{chr(65 + c)}{r}", v) for c, v in enumerate(row)) + "</row>"
        for r, row in enumerate(rows, start=1)
    )
    ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    parts = {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            "</Types>"
        ),
        "_rels/.rels": (
            '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{rel}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
        ),
        "xl/workbook.xml": (
            f'<?xml version="1.0" encoding="UTF-8"?><workbook {ns} xmlns:r="{rel}"><sheets>'
            '<sheet name="Customers" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ),
        "xl/_rels/workbook.xml.rels": (
            '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{rel}/worksheet" Target="worksheets/sheet1.xml"/></Relationships>'
        ),
        "xl/worksheets/sheet1.xml": f'<?xml version="1.0" encoding="UTF-8"?><worksheet {ns}><sheetData>{body}</sheetData></worksheet>',
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in parts.items():
            zf.writestr(name, text)
    return out.getvalue()


# --- values that break naive code -------------------------------------------------------------------

RTL_FIRST, RTL_LAST, RTL_COMPANY = "مرحبا", "שלום", "شركة الأمل"
EMOJI = "👩🏽‍💻 Kofi 🍍"
FIFTY = "L" * 50

# (row values by header, expected): {"stored": {field: value}} or {"failed": (field, code, words)}
XLSX_CASES: list[tuple[list[object], dict]] = [
    (["PM1", "K" * 5000, "Mensah", "", "0241111001"], {"failed": ("first_name", "too_long", "shorten")}),
    (["PM2", "Ama", FIFTY, "", "0241111002"], {"stored": {"last_name": FIFTY}}),
    (["PM3", RTL_FIRST, RTL_LAST, "", "0241111003", RTL_COMPANY],
     {"stored": {"first_name": RTL_FIRST, "last_name": RTL_LAST, "company_name": RTL_COMPANY}}),
    (["PM4", "Yaw", "Boateng", "", "0241111004", "", EMOJI], {"stored": {"nickname": EMOJI}}),
    (["PM5 \u202eLIVE", "Efua", "Quaye", "", "0241111005"], {"failed": ("shipping_mark", "invalid_format", "")}),
    (["PM🍍6", "Kojo", "Addo", "", "0241111006"], {"failed": ("shipping_mark", "invalid_format", "shipping mark")}),
    (["PM7", "Adwoa", "Darko", "", "０２４１１１１００７"], {"stored": {"phone": "+233241111007"}}),
    (["PM8", "Kwame", "Osei", "", "#N/A"], {"failed": ("phone", "invalid_format", "Excel error value")}),
    (["PM9", "Kwame", "Osei", "", ("e", "#N/A")], {"failed": ("phone", "invalid_format", "Excel error value")}),
    (["PM10", "Akosua", "Appiah", "", "2.33241E+11"], {"failed": ("phone", "invalid_phone", "scientific notation")}),
    (["PM11", "Akosua", "Appiah", "", "2.33241111011E+11"], {"stored": {"phone": "+233241111011"}}),
    (["PM12", "Ko_x0007_fi", "Mensah", "", "0241111012"], {"stored": {"first_name": "Kofi"}}),
    (["PM13", "Ama", "Owusu", "", "0241111013", "", ("f", '"Ko"&"fi"', "Kofi", "str")], {"stored": {"nickname": "Kofi"}}),
    (["PM14", "Ama", "Owusu", "", ("f", "241111014", "241111014", "n")], {"stored": {"phone": "+233241111014"}}),
    (["PM15", "Ama", "Owusu", "", "0241111015", ("f", "1+1", None, "n")], {"stored": {"company_name": None}}),
    (["PM16", "Ama", "Owusu", "", "0241111016", "", '=HYPERLINK("http://x","y")'],
     {"stored": {"nickname": '=HYPERLINK("http://x","y")'}}),
    (["PM17", ("e", "#REF!"), "Owusu", "", "0241111017"], {"failed": ("first_name", "invalid_format", "#REF!")}),
]

CSV_CASES: list[tuple[list[str], dict]] = [
    (["PM21", "Ko\x00fi", "Mensah", "", "0241111021"], {"stored": {"first_name": "Kofi"}}),
    (["PM22", "\x01Ama\x1b", "Owusu\x7f", "", "0241111022"], {"stored": {"first_name": "Ama", "last_name": "Owusu"}}),
    (["PM23", "Yaw", "Boateng", "", "0241111023", "", "n" * 300_000], {"failed": ("nickname", "too_long", "shorten")}),
    (["PM24", "\x01\x02", "Osei", "", "0241111024"], {"failed": ("first_name", "required", "")}),
    (["PM25", "Efua", "Quaye", "", "0241111025", "Line1\r\nLine2"], {"stored": {"company_name": "Line1 Line2"}}),
    (["PM26", "Kojo", "Addo", "", "+233 (0)24-111.1026"], {"stored": {"phone": "+233241111026"}}),
    # Full-width letters are legal in an internationalised address: kept (lower-cased), not folded to ASCII.
    (["PM27", "Kojo", "Addo", "ＫＯＪＯ@example.com", "0241111027"], {"stored": {"email": "ｋｏｊｏ@example.com"}}),
]


def check_cases(cases, result: dict, database_url: str) -> None:
    assert result["total_attempted"] == len(cases)
    assert result["total_created"] + result["total_failed"] == len(cases)
    failed = {f["customer_data"].get("shipping_mark", ""): f for f in result["failed_customers"]}
    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        stored = {r.shipping_mark: r._asdict() for r in conn.execute(sa.text("SELECT * FROM customers"))}
    engine.dispose()
    for values, expected in cases:
        mark = str(values[0])
        if "stored" in expected:
            assert mark.upper() in stored, (mark, failed.get(mark))
            row = stored[mark.upper()]
            for field, value in expected["stored"].items():
                assert row[field] == value, (mark, field, row[field])
            assert not any(isinstance(v, str) and any(ord(c) < 32 for c in v) for v in row.values()), row
        else:
            field, code, words = expected["failed"]
            match = failed[mark]
            assert (field, code) in {(e["field"], e["code"]) for e in match["errors"]}, match["errors"]
            message = next(e["message"] for e in match["errors"] if e["field"] == field)
            assert words in message and "\n" not in message, message


def test_values_that_break_naive_code_xlsx(database_url: str, tmp_path: Path) -> None:
    path = tmp_path / "awkward.xlsx"
    path.write_bytes(tiny_xlsx([HEADER, *[values for values, _ in XLSX_CASES]]))
    proc = cli("import", str(path), "--json", "--database-url", database_url)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    check_cases(XLSX_CASES, json.loads(proc.stdout), database_url)


def test_values_that_break_naive_code_csv(database_url: str, tmp_path: Path) -> None:
    path = tmp_path / "awkward.csv"
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(HEADER)
    for values, _ in CSV_CASES:
        writer.writerow(values)
    path.write_bytes(buf.getvalue().encode("utf-8"))
    proc = cli("import", str(path), "--json", "--database-url", database_url)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    check_cases(CSV_CASES, json.loads(proc.stdout), database_url)


# --- formula injection in every export ------------------------------------------------------------------

INJECTIONS = ["=1+2", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A2)", "\t=1+1", "\r=1+1", "=HYPERLINK(\"http://evil\")"]


def _injection_csv() -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([*HEADER, "Region", "User Type"])
    for n, bad in enumerate(INJECTIONS):
        # Every field carries the payload; the shipping mark and phone make each row fail.
        writer.writerow([bad, bad, bad, bad, bad, bad, bad, bad, bad])
        writer.writerow([f"PM{n} OK", bad, bad, "", f"{bad}", "", "", "", ""])
    return buf.getvalue().encode("utf-8")


def _dangerous(text: object) -> bool:
    return isinstance(text, str) and text.startswith(FORMULA_PREFIXES)


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_every_report_is_formula_safe(fmt: str, sqlite_url: str, tmp_path: Path) -> None:
    source = tmp_path / "inject.csv"
    source.write_bytes(_injection_csv())
    report = tmp_path / f"failed.{fmt}"
    proc = cli("import", str(source), "--json", "--dry-run", "--report", str(report), "--database-url", sqlite_url)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["total_failed"] == 2 * len(INJECTIONS)
    if fmt == "csv":
        cells = [c for row in csv.reader(io.StringIO(report.read_bytes().decode("utf-8-sig"))) for c in row]
        assert not [c for c in cells if _dangerous(c)]
        assert any(isinstance(c, str) and c.startswith("'=") for c in cells)  # the payloads are there, defused
    else:
        # XLSX: every value is a text cell, which a spreadsheet never evaluates: shown as typed.
        book = openpyxl.load_workbook(report)
        sheet_cells = [c for ws in book.worksheets for row in ws.iter_rows() for c in row]
        assert not [c.coordinate for c in sheet_cells if c.data_type == "f"]  # no formula anywhere
        payloads = [c for c in sheet_cells if _dangerous(c.value)]
        assert payloads and all(c.data_type == "s" for c in payloads)
        assert "=1+2" in [c.value for c in payloads]
    # A defused report uploads again with the original values (the leading ' is undone on reading).
    again = cli("import", str(report), "--json", "--dry-run", "--database-url", sqlite_url)
    assert again.returncode == 0, again.stderr
    values = {v for f in json.loads(again.stdout)["failed_customers"] for v in f["customer_data"].values()}
    assert "=1+2" in values or "'=1+2" in values


def test_timing_of_a_hostile_refusal_does_not_depend_on_the_database(tmp_path: Path) -> None:
    """A hostile file is refused before any database work: even an unreachable database gives exit 2."""
    path = tmp_path / "bomb.xlsx"
    path.write_bytes(corpus.zip_bomb())
    start = time.monotonic()
    proc = cli("import", str(path), "--json", "--database-url", "postgresql://postgres@127.0.0.1:1/none")
    assert proc.returncode == 2 and "zip bomb" in proc.stderr
    assert time.monotonic() - start < 30


# --- bounded memory whatever the file declares (issue 8) --------------------------------------------
# Before: the wide line took 116 s and 4.6 GB; the renamed .ods 35 s and 2.2 GB; the 16-million-cell
# .xlsx without references 226 s and 1.8 GB; the 245-column CSV 500 MB; the Notes sheet was refused.

BOUNDED = [
    ("wide_line.csv", lambda path: path.write_bytes(corpus.wide_line_csv()), ["line 1", "MAX_CSV_LINE_KB"]),
    ("renamed.xlsx", lambda path: path.write_bytes(corpus.ods_repeated()),
     ["OpenDocument spreadsheet", "renamed .xlsx", "save it as .xlsx"]),
    ("norefs.xlsx", corpus.unreferenced_cells_xlsx, ["more than 10,000,000 cells (MAX_CELLS)"]),
]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "build", "words"), BOUNDED, ids=[b[0] for b in BOUNDED])
def test_inputs_that_imply_huge_grids_are_refused_fast_and_lean(name, build, words, tmp_path: Path) -> None:
    path = tmp_path / name
    build(path)
    result = cli_measured("import", str(path), "--dry-run", "--json", "--database-url",
                          f"sqlite:///{tmp_path / 'c.db'}")
    err = assert_one_line_refusal(result)
    for word in words:
        assert word in err
    print(json.dumps({name: {k: result[k] for k in ("seconds", "maxrss_mb")}}))
    assert result["maxrss_mb"] < MAX_RSS_MB, result
    assert result["seconds"] < 60, result


def _read_peak(path: Path) -> tuple[dict, float]:
    """read_upload of one file in a child: its summary and peak RSS (VmHWM, MB)."""
    script = (
        "import json, sys; from pathlib import Path\n"
        "from importer.api import read_upload; from importer.settings import Settings\n"
        f"up = read_upload(Path({str(path)!r}).read_bytes(), {path.name!r}, Settings())\n"
        "print(json.dumps({'sheet': up.sheet, 'unknown': len(up.mapping.unknown_columns)}))\n"
        "print(open('/proc/self/status').read().split('VmHWM:')[1].split()[0])"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary, peak = proc.stdout.strip().splitlines()[-2:]
    return json.loads(summary), int(peak) / 1024


@pytest.mark.slow
def test_columns_that_feed_no_field_cost_nothing(tmp_path: Path) -> None:
    """100,000 rows x 245 columns (49 MB), 5 of them customer fields, read about as lean as 5 columns."""
    wide, narrow = tmp_path / "wide.csv", tmp_path / "narrow.csv"
    wide.write_bytes(corpus.wide_csv())
    narrow.write_bytes(corpus.wide_csv(extra=0))
    wide_summary, wide_peak = _read_peak(wide)
    narrow_summary, narrow_peak = _read_peak(narrow)
    print(json.dumps({"wide_csv_read_mb": wide_peak, "narrow_csv_read_mb": narrow_peak}))
    assert wide_summary["unknown"] == 240 and narrow_summary["unknown"] == 0
    # The wide file's own 49 MB (held as bytes) and its lines passing through the csv module, no more:
    # before, its 24.5 million cells were kept as strings.
    assert wide_peak < narrow_peak + 100, (wide_peak, narrow_peak)
    assert wide_peak < MAX_RSS_MB
    result = cli_measured("import", str(wide), "--dry-run", "--json", "--database-url",
                          f"sqlite:///{tmp_path / 'c.db'}")
    assert result["returncode"] == 0, result["stderr"]
    assert json.loads(result["stdout"])["total_attempted"] == 100_000
    assert result["maxrss_mb"] < MAX_RSS_MB, result


def test_a_long_notes_sheet_before_the_customers_does_not_refuse_the_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.xlsx"
    path.write_bytes(corpus.notes_then_customers_xlsx())  # Notes: 150,000 rows; Customers: 100
    result = cli_measured("import", str(path), "--dry-run", "--json", "--database-url",
                          f"sqlite:///{tmp_path / 'c.db'}")
    assert result["returncode"] == 0, result["stderr"]
    summary = json.loads(result["stdout"])
    assert (summary["sheet"], summary["total_attempted"], summary["total_created"]) == ("Customers", 100, 100)
    assert result["maxrss_mb"] < MAX_RSS_MB, result
