"""Benchmark: what failures cost through the CLI. Time and peak RSS of `python -m importer import`
for the same number of rows, from every row clean to every row failing or already in the database.

Usage: .venv/bin/python bench/bench_failures.py [--rows 100000] [--database postgresql|sqlite ...]
Each case runs the CLI as a user does (a child process, start-up included, `--json` streamed to a
file); peak RSS is the child's own (`wait4`'s ru_maxrss, the kernel's VmHWM of that process). Ratios
are against the clean import of the same size in the same run. Results go to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from openpyxl import Workbook

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results import write_section  # noqa: E402
from bench.workbook import HEADERS, customer_rows  # noqa: E402

PG_ADMIN = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
TARGET_MB = 350
TARGET_RATIO = 1.5


@dataclass
class Case:
    name: str
    seconds: float
    peak_mb: float
    created: int
    failed: int


def workbook(rows: int, invalid_share: float) -> bytes:
    book = Workbook(write_only=True)
    sheet = book.create_sheet("Customers")
    sheet.append(HEADERS)
    for row in customer_rows(rows, invalid_share=invalid_share):
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def run_cli(args: list[str], workdir: Path) -> tuple[float, float, dict]:
    """(seconds, peak RSS in MB, the JSON result) of one CLI run in a child process."""
    out_path = workdir / "out.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    with open(out_path, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "importer", "import", *args, "--json"], cwd=workdir,
                                stdout=out, stderr=subprocess.PIPE, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"CLI failed ({proc.returncode}): {stderr}")
    with open(out_path, "rb") as result:
        head = result.read(2000).decode("utf-8", "replace")
    # Only the summary is parsed: the JSON of 100,000 failures is not loaded into this process.
    summary = json.loads(head[:head.index(', "failed_customers"')] + "}")
    return seconds, usage.ru_maxrss / 1024, summary


class Database:
    """A fresh database: a PostgreSQL database on the local server, or a SQLite file."""

    def __init__(self, kind: str, workdir: Path) -> None:
        self.kind = kind
        if kind == "sqlite":
            self.url = f"sqlite:///{workdir / f'bench-{uuid.uuid4().hex[:8]}.db'}"
            return
        self.admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        self.name = f"bench_{uuid.uuid4().hex[:10]}"
        with self.admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{self.name}"'))
        self.url = self.admin.url.set(database=self.name).render_as_string(hide_password=False)

    def drop(self) -> None:
        if self.kind == "postgresql":
            with self.admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))


def sweep(rows: int, kind: str, workdir: Path) -> list[Case]:
    files = {}
    for share in (0.0, 0.02, 0.5, 1.0):
        path = workdir / f"customers-{int(share * 100)}pct-invalid.xlsx"
        path.write_bytes(workbook(rows, share))
        files[share] = path
    cases: list[Case] = []

    def case(name: str, path: Path, db: Database, *extra: str) -> None:
        seconds, peak, summary = run_cli([str(path), "--database-url", db.url, *extra], workdir)
        cases.append(Case(name, seconds, peak, summary["total_created"], summary["total_failed"]))
        print(f"{kind:10} {name:58} {seconds:7.2f} s {peak:7.0f} MB  created {summary['total_created']:,}"
              f" failed {summary['total_failed']:,}", flush=True)

    clean_db = Database(kind, workdir)
    try:
        case("0% invalid (clean import, the baseline)", files[0.0], clean_db)
        case("100% already in the database", files[0.0], clean_db)
        case("100% already in the database, --report x.xlsx", files[0.0], clean_db,
             "--report", str(workdir / "existing.xlsx"))
    finally:
        clean_db.drop()
    for share, label in ((0.02, "2% invalid"), (0.5, "50% invalid"), (1.0, "100% invalid")):
        db = Database(kind, workdir)
        try:
            case(label, files[share], db)
        finally:
            db.drop()
    db = Database(kind, workdir)
    try:
        case("100% invalid, --report x.xlsx", files[1.0], db, "--report", str(workdir / "invalid.xlsx"))
        case("100% invalid, --dry-run --report x.csv", files[1.0], db, "--dry-run", "--report",
             str(workdir / "invalid.csv"))
    finally:
        db.drop()
    return cases


def table(kind: str, rows: int, cases: list[Case]) -> str:
    base = cases[0].seconds
    lines = [f"### {kind}, {rows:,} rows", "",
             "| case | seconds | x clean | peak RSS, MB | created | failed | targets (<= 1.5x, <= 350 MB) |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for c in cases:
        ratio = c.seconds / base
        met = "met" if ratio <= TARGET_RATIO and c.peak_mb <= TARGET_MB else "NOT met"
        lines.append(f"| {c.name} | {c.seconds:.2f} | {ratio:.2f} | {c.peak_mb:.0f} | {c.created:,} | {c.failed:,}"
                     f" | {met} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--database", nargs="+", default=["postgresql", "sqlite"], choices=["postgresql", "sqlite"])
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md as it is")
    args = parser.parse_args()
    sections = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.database:
            sections.append(table(kind, args.rows, sweep(args.rows, kind, Path(tmp))))
    body = (f"`python bench/bench_failures.py --rows {args.rows}`, {time.strftime('%Y-%m-%d')}. The CLI in a child "
            "process per case (start-up included), `--json` streamed to a file; peak RSS is the child's VmHWM. "
            "x clean = seconds / the clean import's seconds in the same run.\n\n" + "\n\n".join(sections))
    print(body)
    if not args.no_write:
        write_section("Failures cost nothing (bench/bench_failures.py)", body)


if __name__ == "__main__":
    main()
