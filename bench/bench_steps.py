"""Each heavy step of the dashboard's engine, alone, in one process: its resident peak over what the process
held before it (VmHWM reset through /proc/self/clear_refs), over one checked 100,000-row upload.

bench/bench_512mb.py measures the whole server under the host's limit; this finds which step a change made
heavier, the day it lands. It runs with the server's allocator settings (importer.server.serve.SERVER_ENV: it
re-executes itself with them), and hands freed memory back before each step, as the server does.

    .venv/bin/python bench/bench_steps.py [--rows 100000] [--label TEXT] [--no-write]

Every run appends one line to bench/history/steps.jsonl and rewrites bench/RESULTS.md's "Engine steps, one
at a time" section (this run beside the previous one). Linux only (/proc).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.results import HISTORY, append_history, read_history, write_section  # noqa: E402
from importer.server.serve import SERVER_ENV  # noqa: E402

HISTORY_FILE = HISTORY / "steps.jsonl"
SECTION = "Engine steps, one at a time (issue 20)"


def _status(key: str) -> int:
    """A VmRSS/VmHWM line of this process, in MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key):
                return int(line.split()[1]) // 1024
    raise RuntimeError(f"no {key} in /proc/self/status")


def measure(name: str, step: Callable[[], Any], out: dict[str, dict[str, float]]) -> Any:
    """Run one step; record its peak over the memory held before it, and its seconds."""
    from importer.server.memory import release_free_memory

    release_free_memory()
    base = _status("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM back to VmRSS
    start = time.perf_counter()
    result = step()
    seconds = time.perf_counter() - start
    out[name] = {"peak_mb": _status("VmHWM") - base, "seconds": round(seconds, 2)}
    print(f"{name:58s} +{out[name]['peak_mb']:4.0f} MB  {seconds:6.2f} s", flush=True)
    return result


def run(rows: int) -> dict[str, dict[str, float]]:
    from bench.workbook import customer_workbook
    from importer.api import import_upload, read_upload
    from importer.checks.in_file import find_duplicates_in_file
    from importer.database.customers import classify_upload
    from importer.database.schema import ensure_schema, make_engine
    from importer.review.fixes import apply_fix, available_fixes, fill_region_fix, fix_preview
    from importer.settings import Settings
    from importer.workspace.snapshot import snapshot_bytes
    from schemas.customer import REGIONS

    out: dict[str, dict[str, float]] = {}
    settings = Settings.from_env()
    data = customer_workbook(rows)
    read_upload(customer_workbook(200), "warm.xlsx", settings)  # first-use costs (metadata, schemas) outside
    upload = measure(f"read, map and check {rows:,} rows", lambda: read_upload(data, "customers.xlsx", settings), out)
    checked = upload.checked
    fixes = [*available_fixes(settings).values(), fill_region_fix(next(iter(REGIONS)))]
    for only_failing in (True, False):
        rows_said = "failing rows" if only_failing else "every row"
        for fix in fixes:
            measure(f"preview '{fix.key}' over {rows_said}",
                    lambda fix=fix, only=only_failing: fix_preview(checked, fix, settings, only), out)
    trim = available_fixes(settings)["trim"]
    measure("apply 'trim' to every row", lambda: apply_fix(checked, trim, settings), out)
    measure("in-file duplicates over every row", lambda: find_duplicates_in_file(checked.normalised), out)
    measure("workspace snapshot", lambda: snapshot_bytes(upload), out)
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{folder}/bench.db")
        ensure_schema(engine)
        measure("compare with the database: no customer stored", lambda: classify_upload(engine, checked), out)
        measure("dry run into an empty database", lambda: import_upload(engine, upload, settings, dry_run=True), out)
        import_upload(engine, upload, settings)
        measure("compare with the database: every row stored", lambda: classify_upload(engine, checked), out)
        engine.dispose()
    return out


def table(runs: list[dict]) -> str:
    """This run beside the previous one, step by step."""
    today, before = runs[-1], runs[-2] if len(runs) > 1 else None
    head = f"| step | {today['date']} {today['commit']} MB | s |"
    rule = "|---|---:|---:|"
    if before is not None:
        head = f"| step | {before['date']} {before['commit']} MB | " + head[len("| step | "):]
        rule = "|---|---:|---:|---:|"
    lines = [f"{today['rows']:,} rows in one process, the server's allocator settings; peak over what the process "
             "held before the step (VmHWM, reset before each). `bench/bench_steps.py`, history in "
             "`bench/history/steps.jsonl`.", "", head, rule]
    old_steps = {step["step"]: step for step in (before or {}).get("steps", [])}
    for value in today["steps"]:
        name, old = value["step"], old_steps.get(value["step"])
        cells = ([f"{old['peak_mb']:.0f}" if old else ""] if before is not None else [])
        cells += [f"{value['peak_mb']:.0f}", f"{value['seconds']:.2f}"]
        lines.append(f"| {name} | {' | '.join(cells)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--label", default="")
    parser.add_argument("--no-write", action="store_true", help="neither the history nor RESULTS.md")
    args = parser.parse_args(argv)
    if any(os.environ.get(k) != v for k, v in SERVER_ENV.items()):  # allocators are set when a process starts
        env = {**os.environ, **SERVER_ENV}
        sys.exit(subprocess.call([sys.executable, __file__, *(argv if argv is not None else sys.argv[1:])], env=env))
    steps = run(args.rows)
    if args.no_write:
        return
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    entry = {"date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M"), "commit": commit.strip(),
             "label": args.label, "rows": args.rows,
             "steps": [{"step": name, **value} for name, value in steps.items()]}  # in the order they ran
    append_history(HISTORY_FILE, entry)
    write_section(SECTION, table([e for e in read_history(HISTORY_FILE) if e.get("rows") == args.rows]))


if __name__ == "__main__":
    main()
