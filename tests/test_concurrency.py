"""Concurrent users: several CLI imports of overlapping files at once create no duplicate customer.

Four processes at once on PostgreSQL (overlapping ranges, one file in reverse order so the same keys
arrive in opposite orders, the deadlock case), the same file twice at once, and two at once on SQLite.
Checks: every summary accounts for every row; the sum of created equals the distinct valid rows of all
the files; each valid row a run did not create is unchanged or failed as already_exists; the table holds
each once.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from openpyxl import Workbook

from bench.workbook import HEADERS, customer_rows
from importer.api import read_upload
from importer.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
LONG = os.environ.get("RELIABILITY_LONG") == "1"
SIZE = 30_000 if LONG else 12_000
Key = tuple[str, str, "str | None"]


def workbook(start: int, count: int, seed: int, reverse: bool = False) -> bytes:
    """customer_workbook's rows for [start, start+count) (~1.3% invalid), optionally in reverse order."""
    rows = customer_rows(count, seed=seed, start=start)
    # A repeated-mark row takes the mark of the row before it; where that row is invalid (or, reversed,
    # comes later) the repeat is the valid one: a key mix no other file has, so "distinct valid rows"
    # would depend on who wins. Drop them: every valid row is then one customer, whoever creates it.
    rows = [r for i, r in zip(range(start, start + count), rows, strict=True) if str(r[0]).startswith(f"pm{i} ")]
    if reverse:
        rows.reverse()
    book = Workbook(write_only=True)
    sheet = book.create_sheet("Customers")
    sheet.append(HEADERS)
    for row in rows:
        sheet.append(row)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def valid_keys(path: Path) -> tuple[int, set[Key]]:
    checked = read_upload(path.read_bytes(), path.name, Settings()).checked
    frame = checked.normalised.loc[checked.valid_index(), ["shipping_mark", "phone", "email"]].astype(object)
    return checked.total, {(m, p, None if e != e or e is None else e) for m, p, e in frame.itertuples(False, None)}


def run_at_once(paths: list[Path], url: str, batch: int) -> list[dict]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    procs = [subprocess.Popen([sys.executable, "-m", "importer", "import", str(p), "--json", "--batch-size",
                               str(batch), "--database-url", url], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for p in paths]
    results = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=600)
            assert proc.returncode == 0, err[-2000:]
            results.append(json.loads(out))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    return results


def check(paths: list[Path], results: list[dict], url: str) -> dict:
    expected = [valid_keys(p) for p in paths]
    union: set[Key] = set().union(*(keys for _, keys in expected))
    for position in range(3):  # precondition: no two distinct valid rows share one key
        values = [k[position] for k in union if k[position] is not None]
        assert len(values) == len(set(values))
    for (rows, keys), result in zip(expected, results, strict=True):
        assert result["total_attempted"] == rows
        assert result["total_created"] + result["total_unchanged"] + result["total_failed"] == rows
        assert result["total_updated"] == 0
        lost = [f for f in result["failed_customers"]
                if {e["code"] for e in f["errors"]} == {"already_exists"}]
        # A valid row this run did not create was created by another run: seen as unchanged, or lost in the
        # race for the insert (already_exists).
        assert result["total_created"] + result["total_unchanged"] + len(lost) == len(keys)
    assert sum(r["total_created"] for r in results) == len(union)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        stored = [tuple(r) for r in conn.execute(sa.text("SELECT shipping_mark, phone, email FROM customers"))]
        per_run = dict(conn.execute(sa.text("SELECT import_run_id, count(*) FROM customers GROUP BY 1")).all())
    engine.dispose()
    assert len(stored) == len(set(stored)) == len(union)
    assert set(stored) == union
    assert sorted(per_run.values()) == sorted(r["total_created"] for r in results if r["total_created"])
    figures = {"files": len(paths), "rows": [r["total_attempted"] for r in results],
               "created": [r["total_created"] for r in results], "distinct_valid": len(union)}
    print(json.dumps(figures))  # quoted in docs/RELIABILITY.md
    return figures


@pytest.mark.slow
@pytest.mark.postgres
def test_four_overlapping_imports_at_once_postgres(pg_url: str, tmp_path: Path) -> None:
    half = SIZE // 2
    specs = [(0, SIZE, 1, False), (half, SIZE, 2, False), (half // 2, SIZE, 3, False), (0, SIZE, 4, True)]
    paths = []
    for n, (start, count, seed, reverse) in enumerate(specs):
        path = tmp_path / f"upload{n}.xlsx"
        path.write_bytes(workbook(start, count, seed, reverse))
        paths.append(path)
    check(paths, run_at_once(paths, pg_url, batch=500), pg_url)


@pytest.mark.slow
@pytest.mark.postgres
def test_the_same_file_twice_at_once_postgres(pg_url: str, tmp_path: Path) -> None:
    path = tmp_path / "same.xlsx"
    path.write_bytes(workbook(0, SIZE, 7))
    results = run_at_once([path, path], pg_url, batch=500)
    assert len({r["run_id"] for r in results}) == 2  # a live run is never claimed by another process
    check([path, path], results, pg_url)


@pytest.mark.slow
def test_two_overlapping_imports_at_once_sqlite(sqlite_url: str, tmp_path: Path) -> None:
    paths = []
    for n, start in enumerate((0, SIZE // 2)):
        path = tmp_path / f"upload{n}.xlsx"
        path.write_bytes(workbook(start, SIZE, n + 1))
        paths.append(path)
    check(paths, run_at_once(paths, sqlite_url, batch=500), sqlite_url)
