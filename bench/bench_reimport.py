"""Benchmark: re-importing a customer list (issue 9) beside a clean import of the same size.

Usage: .venv/bin/python bench/bench_reimport.py [--rows 100000] [--pg-admin-url URL] [--no-write]

For each database (PostgreSQL, SQLite) and mode (--existing skip, --existing update), on a fresh database:
a clean import of N rows (timed), then a re-import of N rows of which 90% are unchanged, 9% changed (last
name) and 1% new (timed). Each import is a fresh `python -m importer import FILE --json` child process;
its peak RSS comes from wait4's ru_maxrss. Targets: re-import <= 1.5x the clean import's time, <= 350 MB.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.databases import Databases  # noqa: E402
from bench.results import write_section  # noqa: E402

HEADER = ["Shipping Mark", "First Name", "Last Name", "Email", "Phone", "Region"]
REGIONS = ["Greater Accra", "Ashanti", "Volta", "", "Central", "Northern"]


def row(i: int, changed: bool = False) -> list[str]:
    return [f"pm{i} kofi", "Kofi", f"Mensah{i}" + ("-Owusu" if changed else ""), f"kofi{i}@example.com",
            f"024{i:07d}", REGIONS[i % len(REGIONS)]]


def write_csv(path: Path, rows) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        writer.writerows(rows)


def files(folder: Path, n: int) -> tuple[Path, Path]:
    """The clean file (rows 0..n-1) and the re-import: 99% of those (9% of all changed), 1% new."""
    clean, again = folder / "clean.csv", folder / "reimport.csv"
    write_csv(clean, (row(i) for i in range(n)))
    kept = n - n // 100
    write_csv(again, [row(i, changed=(i % 100) < 9) for i in range(kept)] + [row(n + i) for i in range(n // 100)])
    return clean, again


def run_cli(path: Path, url: str, *extra: str) -> tuple[float, float, dict]:
    """(seconds, peak RSS in MB, the JSON summary) of one `python -m importer import` child process."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "importer", "import", str(path), "--json", "--database-url",
                                 url, *extra], cwd=ROOT, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            raise SystemExit(f"import failed ({proc.returncode}): {err.read().decode()[-2000:]}")
        out.seek(0)
        summary = json.loads(out.read())
    summary.pop("failed_customers")
    summary.pop("updated_customers")
    return seconds, usage.ru_maxrss / 1024, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--pg-admin-url", default=os.environ.get(
        "TEST_PG_ADMIN_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--databases", nargs="+", default=["postgresql", "sqlite"])
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    args = parser.parse_args()
    lines = ["| database | mode | clean import: s | MB | re-import: s | MB | re-import / clean | created | updated"
             " | unchanged | failed |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        clean, again = files(folder, args.rows)
        dbs = Databases(args.pg_admin_url, folder)
        try:
            for kind in args.databases:
                for mode in ("skip", "update"):
                    url = dbs.fresh(kind)
                    clean_s, clean_mb, _ = run_cli(clean, url)
                    re_s, re_mb, summary = run_cli(again, url, "--existing", mode)
                    line = (f"| {kind} | {mode} | {clean_s:.1f} | {clean_mb:.0f} | {re_s:.1f} | {re_mb:.0f} | "
                            f"{re_s / clean_s:.2f}x | {summary['total_created']:,} | {summary['total_updated']:,} | "
                            f"{summary['total_unchanged']:,} | {summary['total_failed']:,} |")
                    print(line, flush=True)
                    lines.append(line)
        finally:
            dbs.drop()
    body = (f"{args.rows:,} rows, {time.strftime('%Y-%m-%d')}; `bench/bench_reimport.py`. A clean import of the "
            f"file, then a re-import with 90% unchanged, 9% changed (last name) and 1% new rows, each a fresh "
            f"`python -m importer import --json` process (time includes its start-up; MB = peak RSS from "
            f"wait4). Targets: re-import <= 1.5x the clean import, <= 350 MB.\n\n" + "\n".join(lines))
    print(body)
    if not args.no_write:
        write_section("Re-import (issue 9)", body)


if __name__ == "__main__":
    main()
