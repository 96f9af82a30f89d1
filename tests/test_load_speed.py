"""What issue 20's loading speed work changed, held by tests that can fail: the CLI's start-up imports, the
blank-cell patterns the matcher reads per chunk, and the load benchmark's history (bench/results.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from bench.results import append_history, history_table, read_history, regressions
from importer.database.matching import OPTIONAL_FIELDS, BlankCells
from importer.output import failure_report

ROOT = Path(__file__).resolve().parent.parent


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_starting_the_cli_and_reading_a_file_imports_neither_openpyxl_nor_alembic_nor_argon2() -> None:
    """openpyxl (only the template and a fallback reader need it), Alembic (only an out-of-date schema) and
    argon2 (only the users command) cost every `python -m importer import` their import time; the import path
    does without them."""
    code = ("import sys, importer.cli, importer.api; importer.cli.build_parser(); "
            "print(sorted(m for m in ('openpyxl', 'alembic', 'argon2') if m in sys.modules))")
    assert _run(code) == "[]"


def test_starting_the_cli_computes_no_argon2_hash() -> None:
    """The accounts' dummy hash (19 MiB, 2 passes) is made at the first sign-in, not by every CLI start."""
    code = ("import argon2; calls = []; real = argon2.PasswordHasher.hash\n"
            "argon2.PasswordHasher.hash = lambda self, *a, **k: calls.append(1) or real(self, *a, **k)\n"
            "import importer.cli; importer.cli.build_parser(); print(len(calls))")
    assert _run(code) == "0"


def test_python_m_importer_imports_without_hypothesis_and_leaves_its_modules_frozen(tmp_path: Path) -> None:
    """`python -m importer import` (importer.cli.run_process): hypothesis, which pandera's data synthesis imports
    when it is installed, is not imported; the loaded modules are frozen out of the garbage collector (gc.freeze),
    and the process still exits with the command's status, its JSON whole and its database connection closed."""
    path = tmp_path / "customers.csv"
    path.write_text("Shipping Mark,First Name,Last Name,Phone\nPM4 KOFI,Kofi,Mensah,0241234567\nPM5,Ama,,0241\n")
    url = f"sqlite:///{tmp_path / 'c.db'}"
    probe = tmp_path / "probe.txt"
    # An exit handler registered first runs last: after the command, as the process ends.
    code = ("import atexit, gc, runpy, sqlite3, sys\n"
            "def seen(probe=sys.argv[3]):\n"
            "    open(probe, 'w').write(f'{sys.modules.get(\"hypothesis\") is None} {gc.get_freeze_count() > 10_000}')\n"
            "atexit.register(seen)\n"
            "sys.argv = ['importer', 'import', sys.argv[1], '--json', '--database-url', sys.argv[2]]\n"
            "runpy.run_module('importer', run_name='__main__', alter_sys=True)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(path), url, str(probe)], cwd=ROOT, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert (result["total_created"], result["total_failed"]) == (1, 1)
    assert probe.read_text() == "True True"
    proc = subprocess.run([sys.executable, "-m", "importer", "history", "--json", "--database-url", url], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0 and json.loads(proc.stdout)[0]["status"] == "completed", proc.stderr


def test_the_xml_control_characters_are_openpyxls() -> None:
    assert ILLEGAL_CHARACTERS_RE.pattern == failure_report.ILLEGAL_CONTROLS


def test_blank_cells_per_row_as_the_cells_say() -> None:
    """Each row's blank optional fields (None, NaN, empty or spaces), rows unknown to the file left out."""
    rnd = np.random.default_rng(7)
    choices = np.array([None, "", "  ", "x", "value", np.nan], dtype=object)
    cells = {f: choices[rnd.integers(0, len(choices), 200)] for f in OPTIONAL_FIELDS}
    original = pd.DataFrame(cells, index=range(5, 205))
    blanks = BlankCells(original)
    asked = [7, 5, 204, 1000, 150, 6]
    got = blanks.of(asked)
    expected = {
        n: frozenset(f for f in OPTIONAL_FIELDS
                     if (v := original.at[n, f]) is None or (isinstance(v, float) and np.isnan(v)) or not str(v).strip())
        for n in asked if n in original.index
    }
    assert got == expected
    assert 1000 not in got and blanks.of([]) == {}


def _entry(warm: float, cli: float, commit: str = "abc") -> dict:
    return {"date": "2026-12-06 20:00", "commit": commit, "label": "", "rows": 10_000,
            "ratios": {"warm": warm, "cli": cli}}


def test_a_ratio_more_than_20_percent_below_the_last_runs_is_a_regression(tmp_path: Path) -> None:
    history = tmp_path / "history" / "load.jsonl"
    for warm in (20.0, 24.0, 22.0):
        append_history(history, _entry(warm, 5.0))
    with history.open("a") as out:
        out.write("not json\n\n")
    previous = read_history(history)
    assert [e["ratios"]["warm"] for e in previous] == [20.0, 24.0, 22.0]
    # The reference is the median of the last three (22.0): 17.5 is below 80% of it, 18.0 is not.
    assert regressions(previous, _entry(17.5, 5.0)) == {"warm": (17.5, 22.0)}
    assert regressions(previous, _entry(18.0, 4.1)) == {}
    assert regressions([], _entry(1.0, 1.0)) == {}
    table = history_table(previous, _entry(10.0, 5.0, "new"), ["warm", "cli"])
    assert "REGRESSION: warm is 10.0x" in table and "cli is" not in table
    assert table.count("\n| ") == 4  # three earlier entries and today's under the header
    assert json.loads(history.read_text().splitlines()[0])["ratios"]["warm"] == 20.0
