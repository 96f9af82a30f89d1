"""Benchmark: what failures cost through the CLI. Time and peak RSS of `python -m importer import`
for the same number of rows, from every row clean to every row failing or already in the database.

Usage: .venv/bin/python bench/bench_failures.py [--rows 100000] [--database postgresql|sqlite ...]
                                                [--repeat 3] [--only "100% invalid" ...]
Each case runs the CLI as a user does (a child process, start-up included, `--json` streamed to a
file); peak RSS is the child's own (`wait4`'s ru_maxrss, the kernel's VmHWM of that process), and CPU
seconds are the child's user + system time (`wait4`'s rusage), which other work on a shared machine
disturbs far less than wall-clock seconds. With --repeat N the cases run N times in turn (clean first
each round) and each keeps its fastest wall and CPU times and its highest peak. Ratios are against the
clean import of the same size in the same run. Results go to bench/RESULTS.md.
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
    cpu: float
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


def run_cli(args: list[str], workdir: Path) -> tuple[float, float, float, dict]:
    """(seconds, CPU seconds, peak RSS in MB, the JSON result) of one CLI run in a child process."""
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
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, summary


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


BASELINE = "0% invalid (clean import, the baseline)"


def sweep(rows: int, kind: str, workdir: Path, only: list[str] | None = None, files: dict | None = None,
          ) -> list[Case]:
    """One run of every case (the baseline always; with `only`, the cases whose name starts so)."""
    if files is None:
        files = workbooks(rows, workdir)
    cases: list[Case] = []

    def wanted(name: str) -> bool:
        return name == BASELINE or not only or any(name.startswith(o) for o in only)

    def case(name: str, path: Path, db: Database, *extra: str) -> None:
        seconds, cpu, peak, summary = run_cli([str(path), "--database-url", db.url, *extra], workdir)
        cases.append(Case(name, seconds, cpu, peak, summary["total_created"], summary["total_failed"]))
        print(f"{kind:10} {name:58} {seconds:7.2f} s {cpu:7.2f} s CPU {peak:7.0f} MB  created "
              f"{summary['total_created']:,} failed {summary['total_failed']:,}", flush=True)

    clean_db = Database(kind, workdir)
    try:
        case(BASELINE, files[0.0], clean_db)
        if wanted("100% already in the database"):
            case("100% already in the database", files[0.0], clean_db)
        if wanted("100% already in the database, --report x.xlsx"):
            case("100% already in the database, --report x.xlsx", files[0.0], clean_db,
                 "--report", str(workdir / "existing.xlsx"))
    finally:
        clean_db.drop()
    for share, label in ((0.02, "2% invalid"), (0.5, "50% invalid"), (1.0, "100% invalid")):
        if not wanted(label):
            continue
        db = Database(kind, workdir)
        try:
            case(label, files[share], db)
        finally:
            db.drop()
    db = Database(kind, workdir)
    try:
        if wanted("100% invalid, --report x.xlsx"):
            case("100% invalid, --report x.xlsx", files[1.0], db, "--report", str(workdir / "invalid.xlsx"))
        if wanted("100% invalid, --dry-run --report x.csv"):
            case("100% invalid, --dry-run --report x.csv", files[1.0], db, "--dry-run", "--report",
                 str(workdir / "invalid.csv"))
    finally:
        db.drop()
    return cases


def workbooks(rows: int, workdir: Path) -> dict[float, Path]:
    files = {}
    for share in (0.0, 0.02, 0.5, 1.0):
        path = workdir / f"customers-{int(share * 100)}pct-invalid.xlsx"
        path.write_bytes(workbook(rows, share))
        files[share] = path
    return files


def best_of(rounds: list[list[Case]]) -> list[Case]:
    """Each case's fastest wall and CPU time and highest peak over the rounds (noise only ever adds time)."""
    return [Case(runs[0].name, min(c.seconds for c in runs), min(c.cpu for c in runs), max(c.peak_mb for c in runs),
                 runs[0].created, runs[0].failed) for runs in zip(*rounds, strict=True)]


def table(kind: str, rows: int, cases: list[Case]) -> str:
    base, base_cpu = cases[0].seconds, cases[0].cpu
    lines = [f"### {kind}, {rows:,} rows", "",
             "| case | seconds | x clean | CPU s | x clean (CPU) | peak RSS, MB | created | failed "
             "| targets (<= 1.5x, <= 350 MB) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for c in cases:
        ratio = c.seconds / base
        met = "met" if ratio <= TARGET_RATIO and c.peak_mb <= TARGET_MB else "NOT met"
        lines.append(f"| {c.name} | {c.seconds:.2f} | {ratio:.2f} | {c.cpu:.2f} | {c.cpu / base_cpu:.2f} "
                     f"| {c.peak_mb:.0f} | {c.created:,} | {c.failed:,} | {met} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--database", nargs="+", default=["postgresql", "sqlite"], choices=["postgresql", "sqlite"])
    parser.add_argument("--repeat", type=int, default=1, help="run every case N times; keep each one's best")
    parser.add_argument("--only", nargs="+", help="only the cases whose name starts so (and the baseline)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md as it is")
    args = parser.parse_args()
    sections = []
    with tempfile.TemporaryDirectory() as tmp:
        files = workbooks(args.rows, Path(tmp))
        for kind in args.database:
            rounds = [sweep(args.rows, kind, Path(tmp), args.only, files) for _ in range(max(1, args.repeat))]
            sections.append(table(kind, args.rows, best_of(rounds)))
    body = (f"`python bench/bench_failures.py --rows {args.rows} --repeat {args.repeat}`, {time.strftime('%Y-%m-%d')}. "
            "The CLI in a child process per case (start-up included), `--json` streamed to a file; peak RSS is the "
            "child's VmHWM; CPU s is the child's user + system time. x clean = seconds (CPU seconds) / the clean "
            "import's in the same run; each case's best of the rounds.\n\n" + "\n\n".join(sections))
    print(body)
    if not args.no_write:
        write_section("Failures cost nothing (bench/bench_failures.py)", body)


if __name__ == "__main__":
    main()
