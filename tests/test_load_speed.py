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


def test_starting_the_cli_and_reading_a_file_imports_neither_openpyxl_nor_alembic() -> None:
    """openpyxl (only the template and a fallback reader need it) and Alembic (only an out-of-date schema)
    cost every `python -m importer import` their import time; the import path does without them."""
    code = ("import sys, importer.cli, importer.api; importer.cli.build_parser(); "
            "print(sorted(m for m in ('openpyxl', 'alembic') if m in sys.modules))")
    assert _run(code) == "[]"


def test_starting_the_cli_computes_no_argon2_hash() -> None:
    """The accounts' dummy hash (19 MiB, 2 passes) is made at the first sign-in, not by every CLI start."""
    code = ("import argon2; calls = []; real = argon2.PasswordHasher.hash\n"
            "argon2.PasswordHasher.hash = lambda self, *a, **k: calls.append(1) or real(self, *a, **k)\n"
            "import importer.cli; importer.cli.build_parser(); print(len(calls))")
    assert _run(code) == "0"


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
