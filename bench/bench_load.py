"""Benchmark: this importer vs the seed system's strategy vs the floor (calamine + one COPY).

Usage: .venv/bin/python bench/bench_load.py [--rows 10000 100000] [--database-url URL] [--full-baseline]
Each case gets a fresh PostgreSQL database; results are printed and written to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import importer.cli  # noqa: E402, F401 - warm, like the baseline's openpyxl
from bench.results import RESULTS, write_section  # noqa: E402
from bench.seed_baseline import baseline_import  # noqa: E402
from bench.workbook import HEADERS, customer_workbook  # noqa: E402
from importer.database.schema import ensure_schema, make_engine  # noqa: E402

BASELINE_LIMIT_S = 180


def make_workbook(path: Path, rows: int) -> None:
    """The same generated workbook every time (bench/workbook.py): ~2% invalid rows."""
    path.write_bytes(customer_workbook(rows))


class Db:
    """A fresh database on the server, with its transaction counter."""

    def __init__(self, admin: sa.Engine) -> None:
        self.admin, self.name = admin, f"bench_{uuid.uuid4().hex[:10]}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{self.name}"'))
        self.url = admin.url.set(database=self.name).render_as_string(hide_password=False)

    def commits(self) -> int:
        time.sleep(1.1)  # PostgreSQL 15 flushes backend stats at most once a second
        with self.admin.connect() as conn:
            conn.execute(sa.text("SELECT pg_stat_clear_snapshot()"))
            return conn.execute(sa.text("SELECT xact_commit FROM pg_stat_database WHERE datname = :n"),
                                {"n": self.name}).scalar_one()

    def drop(self) -> None:
        with self.admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))


def run_ours_in_process(path: Path, db: Db) -> tuple[float, int, dict]:
    """The CLI's import command end to end (read, validate, load, summary) in this warm process,
    as the baseline runs: the fair comparison of the two strategies."""
    from importer.cli import main as cli_main

    before = db.commits()
    out = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out):
        code = cli_main(["import", str(path), "--json", "--database-url", db.url])
    seconds = time.perf_counter() - start
    assert code == 0, code
    # Close the CLI's pooled connections: a backend reports its commits when it exits.
    gc.collect()
    data = json.loads(out.getvalue())
    return seconds, db.commits() - before, {"created": data["total_created"], "failed": data["total_failed"]}


def run_ours(path: Path, db: Db) -> tuple[float, int, dict]:
    """The CLI end to end as a user runs it, including Python's start-up and imports."""
    before = db.commits()
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "importer", "import", str(path), "--json", "--database-url", db.url],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - start
    data = json.loads(out.stdout)
    return seconds, db.commits() - before, {"created": data["total_created"], "failed": data["total_failed"]}


def run_baseline(path: Path, db: Db) -> tuple[float, int, dict]:
    """The seed system's strategy."""
    ensure_schema(make_engine(db.url))
    before = db.commits()
    start = time.perf_counter()
    counts = baseline_import(path, db.url.replace("postgresql+psycopg2", "postgresql"))
    return time.perf_counter() - start, db.commits() - before, counts


def run_floor(path: Path, db: Db) -> tuple[float, int, dict]:
    """calamine read + one COPY: what no importer can beat."""
    import psycopg2
    from python_calamine import CalamineWorkbook

    conn = psycopg2.connect(db.url.replace("postgresql+psycopg2", "postgresql"))
    with conn, conn.cursor() as cur:
        cur.execute(f"CREATE TABLE floor ({', '.join(f'c{i} text' for i in range(len(HEADERS)))})")
    before = db.commits()
    start = time.perf_counter()
    # The data rows: below the title row, the blank row and the header of bench/workbook.py.
    rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).to_python()[3:]
    width = len(HEADERS)
    buf = io.StringIO("".join("\t".join(str(v) for v in [*r, *[""] * width][:width]) + "\n" for r in rows))
    with conn, conn.cursor() as cur:
        cur.copy_expert("COPY floor FROM STDIN", buf)
    seconds = time.perf_counter() - start
    conn.close()
    return seconds, db.commits() - before, {"rows": len(rows)}


def run_methods(path: Path, admin: sa.Engine) -> dict[str, float]:
    """run_import alone (file already read and validated) with each PostgreSQL insert method."""
    from importer.api import read_upload
    from importer.database.loader import run_import
    from importer.settings import Settings

    up = read_upload(path.read_bytes(), path.name, Settings())
    times = {}
    for method in ("values", "copy"):
        db = Db(admin)
        try:
            engine = make_engine(db.url)
            ensure_schema(engine)
            start = time.perf_counter()
            run_import(engine, up.checked, file_name=path.name, sha256=up.sha256, sheet=up.sheet,
                       settings=Settings(), insert_method=method)
            times[method] = time.perf_counter() - start
            engine.dispose()
        finally:
            db.drop()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--database-url", default="postgresql+psycopg2://postgres@127.0.0.1:5432/postgres",
                        help="a server login that may CREATE DATABASE")
    parser.add_argument("--full-baseline", action="store_true",
                        help="run the baseline even where it would take over 3 minutes")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    admin = sa.create_engine(args.database_url.replace("postgres://", "postgresql+psycopg2://"),
                             isolation_level="AUTOCOMMIT")
    lines, base_rate = [], None
    # Warm both strategies once on a small file (first-use costs: metadata, dialect set-up, caches),
    # so the timed runs compare steady-state work.
    warm = ROOT / "bench" / "bench_warmup.xlsx"
    make_workbook(warm, 200)
    for fn in (run_ours_in_process, run_baseline):
        db = Db(admin)
        try:
            fn(warm, db)
        finally:
            db.drop()
    warm.unlink()
    for rows in args.rows:
        path = ROOT / "bench" / f"bench_{rows}.xlsx"
        make_workbook(path, rows)
        res = {}
        steps = (("ours", run_ours_in_process), ("ours_cli", run_ours), ("floor", run_floor),
                 ("baseline", run_baseline))
        for name, fn in steps:
            if name == "baseline" and base_rate and rows * base_rate > BASELINE_LIMIT_S and not args.full_baseline:
                res[name] = (rows * base_rate, None, {"extrapolated": True})
                continue
            db = Db(admin)
            try:
                res[name] = fn(path, db)
            finally:
                db.drop()
            if name == "baseline":
                base_rate = res[name][0] / rows
        methods = run_methods(path, admin)
        (o, ot, oc), (b, bt, _bc), (f, ft, _) = res["ours"], res["baseline"], res["floor"]
        c, ct, _ = res["ours_cli"]
        extra = " (EXTRAPOLATED from the smaller run's rows/s; pass --full-baseline to measure)" if bt is None else ""
        lines += [
            f"### {rows:,} rows ({oc['created']:,} created, {oc['failed']:,} failed)",
            "",
            "| strategy | seconds | transactions (xact_commit) |",
            "|---|---:|---:|",
            f"| this importer (import command end to end, in process) | {o:.2f} | {ot} |",
            f"| this importer (`python -m importer import` subprocess, with start-up) | {c:.2f} | {ct} |",
            f"| seed baseline{extra} | {b:.2f} | {bt if bt is not None else '~' + str(rows)} |",
            f"| floor (calamine + one COPY) | {f:.2f} | {ft} |",
            "",
            f"- baseline / ours: **{b / o:.1f}x** (with the CLI's start-up: {b / c:.1f}x);"
            f" ours / floor: **{o / f:.1f}x**",
            f"- targets: >= 10x baseline: {'met' if b / o >= 10 else 'NOT met'};"
            f" <= 60 transactions per 10,000 rows: {'met' if ot * 10_000 / rows <= 60 else 'NOT met'}"
            f" ({ot * 10_000 / rows:.0f})",
            f"- loader alone: INSERT..VALUES..ON CONFLICT RETURNING {methods['values']:.2f} s;"
            f" COPY to temp + INSERT..SELECT {methods['copy']:.2f} s",
            "",
        ]
        print("\n".join(lines[-13:]), flush=True)
    write_section("Loading (bench/bench_load.py)",
                  f"PostgreSQL 15 on 127.0.0.1, {time.strftime('%Y-%m-%d')}; "
                  f"`{' '.join(['python bench/bench_load.py', *sys.argv[1:]])}`\n\n" + "\n".join(lines),
                  Path(args.out))
    for rows in args.rows:
        (ROOT / "bench" / f"bench_{rows}.xlsx").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
