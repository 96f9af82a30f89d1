"""Benchmark: what a workspace costs (issue 10). Replay of 100,000 rows with 1,000 operations of mixed kinds,
its stored size, and its peak memory, beside a plain read_upload of the same file in the same run.

Usage: .venv/bin/python bench/bench_workspace.py [--rows 100000] [--operations 1000] [--pg-admin-url URL]
                                                 [--databases postgresql sqlite] [--no-write]
                                                 [--invalid-share 1.0]   (the worst case: 89% of rows fail)

For each database: the workbook of bench/workbook.py is saved as a workspace with 1,000 operations (cell edits,
exclusions, include-again, bulk fixes, value conversions, find and replace, a mapping change). Then two fresh
child processes, run alternately (--repeat times each): one does read_upload of the file (the baseline: what
an upload costs today), the other open_workspace (load the file and operations from the database, replay
them). Each reports its seconds and peak RSS (VmHWM). Targets: replay <= 3 s; memory <= the upload's.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.databases import Databases  # noqa: E402
from bench.results import write_section  # noqa: E402
from bench.workbook import customer_workbook  # noqa: E402
from importer.settings import Settings  # noqa: E402

SETTINGS = Settings()
PHONES = ["0541234567", "0201234567", "0551234567", "0271234567"]


def vmhwm_mb() -> float:
    """Peak resident memory of this process so far (VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def operations(upload, count: int, wide: bool, seed: int = 7, mapping_change: bool = True) -> list:
    """`count` operations in the mix an analyst's review makes: mostly single-cell edits, then exclusions,
    a few bulk fixes, value conversions and replaces, an include-again now and then, one mapping change.
    wide: two of them change most rows (a trim of every row, a replace in 75% of the e-mails)."""
    from importer.review.conversions import Conversion, Replace
    from importer.review.operations import BulkFix, CellEdit, Exclude, Include, MappingChange

    rnd = random.Random(seed)
    checked = upload.checked
    rows = checked.original.index.to_numpy()
    failing = sorted(set(checked.errors.rows().tolist()))
    # Review's bulk fixes change only failing rows unless the analyst unticks that.
    rare = [BulkFix("region", "ASHANTI", only_failing=True), BulkFix("phones", only_failing=True),
            BulkFix("emails", only_failing=True), BulkFix("names", only_failing=True),
            BulkFix("trim") if wide else BulkFix("trim", only_failing=True),
            Conversion("region", {"volta": "VOLTA", "Central": "CENTRAL"}),
            Replace("last_name", "Mensah", "Mensah-Owusu"),
            Replace("email", "@example.com", "@example.org") if wide else Replace("email", "kofi.", "kofi_"),
            BulkFix("region", "VOLTA", only_failing=True)]
    mapping_at = count // 2
    ops: list = []
    excluded: list[int] = []
    fields = list(upload.mapping.fields)
    company = fields.index("company_name")
    for i in range(count):
        if i == mapping_at and mapping_change:
            fields[company] = None
            ops.append(MappingChange.of(upload.mapping, fields))
        elif i % 100 == 50 and rare:
            ops.append(rare.pop(0))
        elif i % 12 == 0:
            picked = [int(r) for r in rnd.sample(failing, 2)]
            excluded.extend(picked)
            ops.append(Exclude(tuple(picked), "bench"))
        elif i % 97 == 0 and excluded:
            ops.append(Include((excluded.pop(),)))
        else:
            row = int(rows[rnd.randrange(len(rows))])
            field = rnd.choice(["phone", "phone", "first_name", "last_name", "email", "region"])
            new = {"phone": rnd.choice(PHONES), "first_name": "Ama", "last_name": "Owusu",
                   "email": f"bench{i}@example.com", "region": "Ashanti"}[field]
            ops.append(CellEdit(((row, field, str(checked.original.at[row, field]), new),)))
    return ops


def child(kind: str, url: str, path: str, workspace_id: int) -> None:
    """One measurement in a fresh process: prints {"seconds", "process_seconds", "peak_mb", "rows", "failing"}
    as JSON. seconds: the call alone (read_upload or open_workspace), its modules imported first, as in the
    dashboard's server, which imports them once; process_seconds: with those imports, as a fresh process."""
    import gc

    from importer.database.schema import make_engine

    before = vmhwm_mb()
    started = time.perf_counter()
    if kind == "read":
        from importer.api import read_upload

        if "://" in url:  # connected to the database, as the dashboard's server always is (psycopg2: 6 MB)
            with make_engine(url).connect() as conn:
                conn.execute(sa.text("select 1"))

        called = time.perf_counter()
        upload = read_upload(Path(path).read_bytes(), Path(path).name, SETTINGS)
    else:
        from importer.workspace.store import open_workspace

        engine = make_engine(url)
        called = time.perf_counter()
        upload = open_workspace(engine, workspace_id, SETTINGS).upload
    done = time.perf_counter()
    gc.collect()
    print(json.dumps({"seconds": done - called, "process_seconds": done - started, "peak_mb": vmhwm_mb(),
                      "start_mb": before, "rows": upload.checked.total, "failing": len(upload.checked.errors)}))


def upload_snapshot(url: str, workspace_id: int, path: Path) -> None:
    """Put back the snapshot the upload stored (read with the old mapping): the next replay reads the file."""
    from importer.database.schema import make_engine, workspaces

    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(workspaces.update().where(workspaces.c.id == workspace_id)
                     .values(snapshot=path.with_suffix(".snapshot").read_bytes()))
    engine.dispose()


def measure(kind: str, url: str, path: Path, workspace_id: int) -> dict:
    from importer.server.serve import SERVER_ENV

    # The allocators as the dashboard runs them (importer.server.serve), for both: Arrow on malloc, two arenas.
    done = subprocess.run([sys.executable, __file__, "--child", kind, url, str(path), str(workspace_id)],
                          cwd=ROOT, capture_output=True, text=True, env={**os.environ, **SERVER_ENV})
    if done.returncode != 0:
        raise SystemExit(f"{kind} child failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout)


def prepare(url: str, data: bytes, path: Path, count: int, wide: bool,
            mapping_change: bool = True) -> tuple[int, dict]:
    """A workspace of the file with `count` operations; (its id, sizes and the cost of a live operation)."""
    from importer.api import read_upload
    from importer.database.schema import ensure_schema, make_engine, workspace_operations, workspaces
    from importer.review.operations import summary_of
    from importer.workspace.snapshot import snapshot_bytes
    from importer.workspace.store import append_operation, create_workspace, open_workspace, perform

    engine = make_engine(url)
    ensure_schema(engine)
    upload = read_upload(data, path.name, SETTINGS)
    started = time.perf_counter()
    snapshot = snapshot_bytes(upload)  # as the dashboard stores it (ui/workspace.start)
    snapshot_seconds = time.perf_counter() - started
    path.with_suffix(".snapshot").write_bytes(snapshot)  # for the first replay after a mapping change
    wid = create_workspace(engine, "bench", data, path.name, SETTINGS, upload.sheet, upload.mapping,
                           rows=upload.checked.total, snapshot=snapshot)
    ops = operations(upload, count, wide, mapping_change=mapping_change)
    started = time.perf_counter()
    for op in ops:
        append_operation(engine, wid, op, summary=summary_of(op))
    appended = time.perf_counter() - started
    opened = open_workspace(engine, wid, SETTINGS)  # then a few operations as the page makes them, live
    from importer.review.operations import CellEdit

    live = []
    for row in opened.upload.checked.original.index[:5]:
        edit = CellEdit.of(opened.upload.checked, {int(row): {"phone": "0541234599"}})
        started = time.perf_counter()
        opened = perform(engine, opened, edit, SETTINGS)
        live.append(time.perf_counter() - started)
    with engine.connect() as conn:
        stored = conn.execute(sa.select(sa.func.length(workspaces.c.data)).where(workspaces.c.id == wid)).scalar_one()
        payloads = conn.execute(sa.select(workspace_operations.c.payload, workspace_operations.c.summary)
                                .where(workspace_operations.c.workspace_id == wid)).all()
    engine.dispose()
    operation_bytes = sum(len(json.dumps(p)) + len(s.encode()) for p, s in payloads)
    kinds: dict[str, int] = {}
    for op in ops:
        kinds[type(op).__name__] = kinds.get(type(op).__name__, 0) + 1
    return wid, {"kinds": kinds, "file_bytes": len(data), "stored_file_bytes": int(stored), "operation_bytes": operation_bytes,
                 "snapshot_bytes": len(snapshot), "snapshot_seconds": snapshot_seconds,
                 "operations": len(payloads), "append_seconds": appended,
                 "live_edit_seconds": sorted(live)[len(live) // 2]}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--operations", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pg-admin-url", default=os.environ.get(
        "TEST_PG_ADMIN_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--databases", nargs="+", default=["postgresql", "sqlite"])
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    parser.add_argument("--mixes", nargs="+", default=["review", "wide", "mapping"],
                        help="review, wide (two operations over most rows), mapping (review + a mapping change)")
    parser.add_argument("--invalid-share", type=float, default=0.02,
                        help="share of rows made invalid by bench/workbook.py (1.0: the worst case, where about "
                             "89%% of rows fail and every bulk fix of failing rows works on most of the file)")
    args = parser.parse_args()
    lines = []
    cold: list[str] = []
    kinds: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = folder / f"customers_{args.rows}.xlsx"
        data = customer_workbook(args.rows, invalid_share=args.invalid_share)
        path.write_bytes(data)
        dbs = Databases(args.pg_admin_url, folder)
        try:
            for kind, mix in [(k, m) for k in args.databases for m in args.mixes]:
                url = dbs.fresh(kind)
                wid, sizes = prepare(url, data, path, args.operations, wide=mix == "wide",
                                     mapping_change=mix == "mapping")
                kinds = sizes["kinds"]
                reads, replays = [], []
                for _ in range(args.repeat):  # alternately, so both see the same machine load
                    reads.append(measure("read", url, path, wid))
                    replays.append(measure("replay", url, path, wid))
                firsts = []
                if mix == "mapping":  # the replay that follows the mapping change reads the file, once
                    for _ in range(args.repeat):
                        upload_snapshot(url, wid, path)  # here, not in the measured process
                        firsts.append(measure("first", url, path, wid))
                    measure("replay", url, path, wid)  # and leaves the snapshot of the new mapping stored
                read = min(reads, key=lambda r: r["seconds"])
                replay = min(replays, key=lambda r: r["seconds"])
                peak_read = max(r["peak_mb"] for r in reads)
                peak_replay = max(r["peak_mb"] for r in replays)
                process = min(r["process_seconds"] for r in replays)
                row = (f"| {kind} | {mix} | {read['seconds']:.2f} | {replay['seconds']:.2f} | "
                       f"{replay['seconds'] / read['seconds']:.2f}x | {process:.2f} | "
                       f"{peak_read:.0f} | {peak_replay:.0f} | "
                       f"{peak_replay / peak_read:.2f}x | {sizes['file_bytes'] / 1e6:.2f} | "
                       f"{sizes['stored_file_bytes'] / 1e6:.2f} | {sizes['snapshot_bytes'] / 1e6:.2f} | "
                       f"{sizes['operation_bytes'] / 1e3:.0f} | "
                       f"{sizes['live_edit_seconds']:.2f} | {replay['rows']:,} | {replay['failing']:,} |")
                print(row, json.dumps({"reads": reads, "replays": replays, "firsts": firsts, **sizes}), flush=True)
                lines.append(row)
                if firsts:
                    first = min(firsts, key=lambda r: r["seconds"])
                    peak_first = max(r["peak_mb"] for r in firsts)
                    cold.append(f"| {kind} | {first['seconds']:.2f} | {first['seconds'] / read['seconds']:.2f}x | "
                                f"{peak_first:.0f} | {peak_first / peak_read:.2f}x |")
        finally:
            dbs.drop()
    load = os.getloadavg()[0]
    worst = args.invalid_share > 0.5
    failing_share = replay["failing"] / replay["rows"] if lines else 0.0
    body = (
        (f"**The worst case: {failing_share:.0%} of the rows fail** (`--invalid-share {args.invalid_share}`), so "
         "each bulk fix of failing rows works on most of the file, and each check after it re-checks most "
         "of a column. " if worst else "")
        + f"{args.rows:,} rows (the {len(data) / 1e6:.1f} MB workbook of bench/workbook.py), {args.operations:,} "
        f"operations, {time.strftime('%Y-%m-%d')}; `bench/bench_workspace.py`, load average {load:.1f} on 2 cores. "
        "Each figure is a fresh child process: read = `read_upload` of the file (today's upload; the process "
        "connected to the same database first, as the dashboard's server always is), replay = "
        "`open_workspace` (the file and operations loaded from the database, then replayed); best time and "
        f"highest peak RSS (VmHWM) of {args.repeat} alternating runs. The times are of the call alone, its "
        "modules imported first, as in the dashboard's server, which imports them once at start; `replay s, "
        "fresh process` adds those imports (about 0.6 s: pandas, pandera, pyarrow...), which every command "
        "line run pays. The peaks are of the whole process, imports included. The operations: "
        + ", ".join(f"{n:,} {k}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1]))
        + " (one-cell edits; exclusions of two failing rows; bulk fixes on failing rows only, as Review does by "
        "default; a value conversion and two replaces of importer.review.conversions). The workspace is stored as the "
        "dashboard stores it: the file and its snapshot (the file as read and checked: Arrow IPC frames, zstd, "
        "and the errors' arrays), so a replay starts from the checked rows, reads their columns one at a time as "
        "operations need them, keeps the cells they change beside the columns, and validates only those. "
        "Mix `review`: every operation changes few rows. Mix `wide`: the same, but the trim is over every row "
        "and one replace changes 75% of the e-mails. Mix `mapping`: `review` plus one mapping change (the "
        "Company column ignored): the replay that follows a mapping change reads the file with the new "
        "mapping and stores the snapshot of that reading, so later replays (the table) start from it; the "
        "first one is in the second table. Both "
        "children run with the dashboard's allocator settings (importer.server.serve). Live "
        "edit = one cell edit through `perform` (applied to the frame in hand and saved), median of 5. Targets: "
        "replay <= 3 s, memory <= the upload's.\n\n"
        "| database | mix | read s | replay s | replay / read | replay s, fresh process | read MB | replay MB "
        "| MB ratio | file MB | stored MB | snapshot MB | operations KB | live edit s | rows | failing |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n" + "\n".join(lines)
    )
    if cold:
        body += ("\n\nThe first replay after the mapping change (the workspace holding the upload's snapshot, "
                 "read with the old mapping: the file is read again, checked, and its snapshot stored):\n\n"
                 "| database | first replay s | / read | peak MB | MB ratio |\n|---|---:|---:|---:|---:|\n"
                 + "\n".join(cold))
    print(body)
    if not args.no_write:
        write_section("Workspace, worst case (issue 10, bench/bench_workspace.py --invalid-share 1.0)" if worst
                      else "Workspace (issue 10, bench/bench_workspace.py)", body)


if __name__ == "__main__":
    main()
