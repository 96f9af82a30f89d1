"""Benchmark: this importer vs the seed system's strategy vs the floor (calamine + one COPY), with history.

Usage: .venv/bin/python bench/bench_load.py [--rows 10000 100000] [--repeat 3] [--database-url URL]
       [--full-baseline] [--tree PATH --label TEXT] [--no-history] [--no-results]

Every timed import goes into a fresh PostgreSQL database whose schema is already there (made by the
importer's own `init-db`, untimed), as a server's database or any import but the very first has it; the
baseline gets the same. The strategies run back to back, `--repeat` times each, and the medians are
compared. The import into an empty database (the schema created by the import itself, as this bench
timed "ours" before 2026-12-06) is timed once beside them.

- ours (warm): the CLI's import command in a long-lived process that has imported a small file first
  (as the dashboard's server is warm), driven over a pipe: bench_load.py --child TREE;
- ours (CLI): `python -m importer import` as a user runs it, with Python's start-up and imports;
- seed baseline: bench/seed_baseline.py; floor: calamine read + one COPY.

`--tree PATH` measures another checkout (an older commit: `git worktree add /work/wt/speed-old COMMIT`
with the .venv symlink); the seed baseline, the workbook and this driver stay this checkout's. Each run
appends one JSON line to bench/history/load.jsonl (date, commit, rows, seconds, ratios, transactions) and
prints the earlier entries' ratios beside today's; a ratio more than 20% below the last runs' is shouted.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HISTORY_FILE = ROOT / "bench" / "history" / "load.jsonl"
BASELINE_LIMIT_S = 180
RATIO_NAMES = ["warm", "cli", "first"]


# -- the child: a warm process of the measured tree, driven over a pipe -----------------------------------------
def child(tree: str) -> None:
    """Import the tree's CLI, then answer one JSON command per line: init (schema) or import (timed).

    Only the standard library and the tree's own modules are imported here, so an old commit can be measured.
    """
    sys.path.insert(0, tree)
    os.chdir(tree)
    reply = sys.stdout
    from importer.cli import main as cli_main  # the tree's

    def run(argv: list[str]) -> tuple[int, str]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = cli_main(argv)
        return code, out.getvalue()

    for line in sys.stdin:
        job = json.loads(line)
        if job["do"] == "init":
            code, _ = run(["init-db", "--database-url", job["url"]])
            answer: dict[str, Any] = {"code": code}
        else:
            start, cpu = time.perf_counter(), time.process_time()
            code, text = run(["import", job["file"], "--json", "--database-url", job["url"]])
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
            data = json.loads(text)
            answer = {"code": code, "seconds": seconds, "cpu": cpu, "created": data["total_created"],
                      "failed": data["total_failed"]}
        gc.collect()  # the CLI's pooled connections close: a backend reports its commits when it exits
        reply.write(json.dumps(answer) + "\n")
        reply.flush()


class Warm:
    """The child process (bench_load.py --child TREE)."""

    def __init__(self, tree: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, "--child", str(tree)], cwd=tree, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def ask(self, **job: Any) -> dict:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline())
        assert answer["code"] == 0, answer
        return answer

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


# -- the parent ----------------------------------------------------------------------------------------------
class Db:
    """A fresh database on the server, with its transaction counter."""

    def __init__(self, admin: Any) -> None:
        import sqlalchemy as sa

        self.admin, self.name = admin, f"bench_{uuid.uuid4().hex[:10]}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{self.name}"'))
        self.url = admin.url.set(database=self.name).render_as_string(hide_password=False)

    def commits(self) -> int:
        import sqlalchemy as sa

        time.sleep(1.1)  # PostgreSQL 15 flushes backend stats at most once a second
        with self.admin.connect() as conn:
            conn.execute(sa.text("SELECT pg_stat_clear_snapshot()"))
            return conn.execute(sa.text("SELECT xact_commit FROM pg_stat_database WHERE datname = :n"),
                                {"n": self.name}).scalar_one()

    def drop(self) -> None:
        import sqlalchemy as sa

        with self.admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))


Result = tuple[float, int, dict]


class Bench:
    """The strategies, each into a fresh database with a tree's schema already made (except `first`). Ours
    run in each tree given (a warm child each); the baseline and the floor once, into the first tree's schema."""

    def __init__(self, admin: Any, trees: list[Path]) -> None:
        self.admin, self.trees = admin, trees
        self.warms = {tree: Warm(tree) for tree in trees}
        self.tree, self.warm = trees[0], self.warms[trees[0]]

    def on(self, tree: Path) -> Bench:
        """This bench with `tree`'s child doing ours (and making the schema)."""
        self.tree, self.warm = tree, self.warms[tree]
        return self

    def ready(self, schema: bool = True) -> Db:
        db = Db(self.admin)
        if schema:
            self.warm.ask(do="init", url=db.url)
        return db

    def measured(self, fn: Any, path: Path, schema: bool = True) -> Result:
        db = self.ready(schema)
        try:
            before = db.commits()
            seconds, counts = fn(path, db)
            return seconds, db.commits() - before, counts
        finally:
            db.drop()

    def ours(self, path: Path, db: Db) -> tuple[float, dict]:
        answer = self.warm.ask(do="import", file=str(path), url=db.url)
        return answer["seconds"], {"created": answer["created"], "failed": answer["failed"]}

    def cli(self, path: Path, db: Db) -> tuple[float, dict]:
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "importer", "import", str(path), "--json", "--database-url",
                              db.url], cwd=self.tree, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - start
        if out.returncode != 0:  # say why (a venv rebuilt under the bench once cost a 27-minute run)
            raise RuntimeError(f"the CLI in {self.tree} exited {out.returncode}: {out.stderr[-2000:]}")
        data = json.loads(out.stdout)
        return seconds, {"created": data["total_created"], "failed": data["total_failed"]}

    @staticmethod
    def baseline(path: Path, db: Db) -> tuple[float, dict]:
        from bench.seed_baseline import baseline_import

        start = time.perf_counter()
        counts = baseline_import(path, db.url.replace("postgresql+psycopg2", "postgresql"))
        return time.perf_counter() - start, counts

    @staticmethod
    def floor(path: Path, db: Db) -> tuple[float, dict]:
        import psycopg2
        from python_calamine import CalamineWorkbook

        from bench.workbook import HEADERS

        conn = psycopg2.connect(db.url.replace("postgresql+psycopg2", "postgresql"))
        with conn, conn.cursor() as cur:
            cur.execute(f"CREATE TABLE floor ({', '.join(f'c{i} text' for i in range(len(HEADERS)))})")
        start = time.perf_counter()
        # The data rows: below the title row, the blank row and the header of bench/workbook.py.
        rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).to_python()[3:]
        width = len(HEADERS)
        buf = io.StringIO("".join("\t".join(str(v) for v in [*r, *[""] * width][:width]) + "\n" for r in rows))
        with conn, conn.cursor() as cur:
            cur.copy_expert("COPY floor FROM STDIN", buf)
        seconds = time.perf_counter() - start
        conn.close()
        return seconds, {"rows": len(rows)}

    def close(self) -> None:
        for warm in self.warms.values():
            warm.close()


def run_methods(path: Path, admin: Any) -> dict[str, float]:
    """run_import alone (file already read and validated) with each PostgreSQL insert method (this tree)."""
    sys.path.insert(0, str(ROOT))
    from importer.api import read_upload
    from importer.database.loader import run_import
    from importer.database.schema import ensure_schema, make_engine
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


def git(tree: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(tree), *args], capture_output=True, text=True, check=True).stdout.strip()


def median_of(results: list[Result]) -> Result:
    """The run with the median time (the lower middle of an even number), its transactions and counts with it."""
    return sorted(results, key=lambda r: r[0])[(len(results) - 1) // 2]


def entry_of(tree: Path, rows: int, res: dict[str, Result], runs: dict[str, list[float]], label: str,
             extrapolated: bool) -> dict:
    """The history line of one size."""
    commit = git(tree, "rev-parse", "HEAD")
    dirty = bool(git(tree, "status", "--porcelain", "--untracked-files=no"))
    seconds = {name: round(r[0], 4) for name, r in res.items()}
    b = seconds["baseline"]
    ratios = {"warm": b / seconds["ours"], "cli": b / seconds["ours_cli"], "first": b / seconds["ours_first"]}
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"), "commit": commit[:12] + ("+dirty" if dirty else ""),
        "commit_date": git(tree, "log", "-1", "--format=%cd", "--date=format:%Y-%m-%d %H:%M"),
        "subject": git(tree, "log", "-1", "--format=%s")[:100], "label": label, "rows": rows,
        "seconds": seconds, "runs": {k: [round(x, 4) for x in v] for k, v in runs.items()},
        "ratios": {k: round(v, 2) for k, v in ratios.items()},  # baseline / ours: higher is better
        "over_floor": round(seconds["ours"] / seconds["floor"], 2),
        "transactions": {name: r[1] for name, r in res.items()},
        "created": res["ours"][2]["created"], "failed": res["ours"][2]["failed"],
        "baseline_extrapolated": extrapolated, "loadavg": round(os.getloadavg()[0], 2),
    }


def report_lines(rows: int, res: dict[str, Result], entry: dict, methods: dict[str, float] | None) -> list[str]:
    o, ot, oc = res["ours"]
    c, ct, _ = res["ours_cli"]
    first, first_t, _ = res["ours_first"]
    b, bt, _ = res["baseline"]
    f, ft, _ = res["floor"]
    r = entry["ratios"]
    extra = " (EXTRAPOLATED from the smaller run's rows/s; pass --full-baseline to measure)" \
        if entry["baseline_extrapolated"] else ""
    lines = [
        f"### {rows:,} rows ({oc['created']:,} created, {oc['failed']:,} failed)",
        "",
        "| strategy | seconds (median) | transactions (xact_commit) |",
        "|---|---:|---:|",
        f"| this importer, warm process (import command end to end, in process) | {o:.2f} | {ot} |",
        f"| this importer, fresh CLI (`python -m importer import`, with start-up) | {c:.2f} | {ct} |",
        f"| this importer, warm, into an empty database (the import creates the schema) | {first:.2f} | {first_t} |",
        f"| seed baseline{extra} | {b:.2f} | {bt if not entry['baseline_extrapolated'] else '~' + str(rows)} |",
        f"| floor (calamine + one COPY) | {f:.2f} | {ft} |",
        "",
        f"- baseline / ours: warm **{r['warm']:.1f}x** (target 25x: {'met' if r['warm'] >= 25 else 'NOT met'});"
        f" fresh CLI **{r['cli']:.1f}x** (target 10x: {'met' if r['cli'] >= 10 else 'NOT met'});"
        f" into an empty database {r['first']:.1f}x; ours / floor: {o / f:.1f}x",
        f"- transactions per 10,000 rows: {ot * 10_000 / rows:.0f} (target <= 60:"
        f" {'met' if ot * 10_000 / rows <= 60 else 'NOT met'})",
    ]
    if methods:
        lines.append(f"- loader alone: INSERT..VALUES..ON CONFLICT RETURNING {methods['values']:.2f} s;"
                     f" COPY to temp + INSERT..SELECT {methods['copy']:.2f} s")
    return [*lines, ""]


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each strategy; the medians are compared")
    parser.add_argument("--database-url", default="postgresql+psycopg2://postgres@127.0.0.1:5432/postgres",
                        help="a server login that may CREATE DATABASE")
    parser.add_argument("--full-baseline", action="store_true",
                        help="run the baseline even where it would take over 3 minutes")
    parser.add_argument("--tree", nargs="+", default=[str(ROOT)],
                        help="the checkouts to measure, each against the same baseline runs (default: this one)")
    parser.add_argument("--no-methods", action="store_true", help="skip the loader-alone comparison")
    parser.add_argument("--label", default="", help="a note for the history line")
    parser.add_argument("--no-history", action="store_true", help="do not append to bench/history/load.jsonl")
    parser.add_argument("--no-results", action="store_true", help="do not rewrite bench/RESULTS.md's section")
    parser.add_argument("--history", default=str(HISTORY_FILE))
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import sqlalchemy as sa

    from bench.results import append_history, history_table, read_history, write_section
    from bench.workbook import customer_workbook

    trees = [Path(t).resolve() for t in args.tree]
    admin = sa.create_engine(args.database_url.replace("postgres://", "postgresql+psycopg2://"),
                             isolation_level="AUTOCOMMIT")
    history = Path(args.history)
    bench = Bench(admin, trees)
    lines, tables, base_rate = [], [], None
    scratch = ROOT / "bench" / f"bench_load_{uuid.uuid4().hex[:6]}"
    scratch.mkdir()
    try:
        # Warm both strategies once on a small file (first-use costs: metadata, dialect set-up, caches),
        # so the timed runs compare steady-state work.
        warm = scratch / "warmup.xlsx"
        warm.write_bytes(customer_workbook(200))
        for tree in trees:
            bench.on(tree).measured(bench.ours, warm)
        bench.on(trees[0]).measured(bench.baseline, warm)
        for rows in args.rows:
            path = scratch / f"bench_{rows}.xlsx"
            path.write_bytes(customer_workbook(rows))  # the same generated workbook every time: ~2% invalid rows
            ours: dict[Path, dict[str, list[Result]]] = {t: {"ours": [], "ours_cli": []} for t in trees}
            shared: dict[str, list[Result]] = {"baseline": [], "floor": []}
            extrapolated = bool(base_rate and rows * base_rate > BASELINE_LIMIT_S and not args.full_baseline)
            for _ in range(args.repeat):  # back to back, interleaved: the machine is shared
                for tree in trees:
                    ours[tree]["ours"].append(bench.on(tree).measured(bench.ours, path))
                    ours[tree]["ours_cli"].append(bench.measured(bench.cli, path))
                bench.on(trees[0])
                shared["floor"].append(bench.measured(bench.floor, path))
                if not extrapolated:
                    shared["baseline"].append(bench.measured(bench.baseline, path))
            for tree in trees:
                ours[tree]["ours_first"] = [bench.on(tree).measured(bench.ours, path, schema=False)]
            for tree in trees:
                runs = {**ours[tree], **shared}
                res = {name: median_of(r) for name, r in runs.items() if r}
                if extrapolated:
                    assert base_rate is not None
                    res["baseline"] = (rows * base_rate, 0, {"extrapolated": True})
                else:
                    base_rate = res["baseline"][0] / rows
                entry = entry_of(tree, rows, res, {k: [r[0] for r in v] for k, v in runs.items()}, args.label,
                                 extrapolated)
                methods = run_methods(path, admin) if tree == ROOT and not args.no_methods else None
                if methods:
                    entry["loader_alone"] = {k: round(v, 4) for k, v in methods.items()}
                if len(trees) > 1:
                    lines.append(f"#### {tree.name} ({entry['commit']}, {entry['commit_date']})\n")
                lines += report_lines(rows, res, entry, methods)
                previous = [e for e in read_history(history) if e.get("rows") == rows]
                table = history_table(previous, entry, RATIO_NAMES)
                tables.append(f"#### {rows:,} rows: baseline / ours\n\n{table}\n")
                print("\n".join(lines[-15:]), "\n", tables[-1], sep="\n", flush=True)
                if not args.no_history:
                    append_history(history, entry)
    finally:
        bench.close()
        for leftover in scratch.iterdir():
            leftover.unlink()
        scratch.rmdir()
    if not args.no_results and ROOT in trees:
        write_section("Loading (bench/bench_load.py)",
                      f"PostgreSQL 15 on 127.0.0.1, {time.strftime('%Y-%m-%d')}; "
                      f"`{' '.join(['python bench/bench_load.py', *sys.argv[1:]])}`; medians of {args.repeat}\n\n"
                      + "\n".join(lines) + "\n### History (bench/history/load.jsonl)\n\n" + "\n".join(tables))


if __name__ == "__main__":
    main()
