"""Benchmark: bounded exports and operations (issue 20, item 2), each case in a real 512 MB memory cgroup.

Usage: .venv/bin/python bench/bench_bounded.py [--cases replace,cli,export] [--limit-mb 512] [--no-write]
       .venv/bin/python bench/bench_bounded.py --case NAME ARG...   (one case, in this process: what the
                                                                  driver runs under the cgroup)

Cases, each a fresh process under /work/shared/tools/in-512mb (the host's limit; a case killed there says so):
- replace N: find and replace on a 100,000-row upload, blank Company Name -> N characters, whole cell: the
  dashboard's preview and then Replace (importer.review.conversions.preview, apply_operation). An operation
  whose result is too big is refused before it builds anything (conversions.check_operation).
- cli N: the same as a CLI `--operations` file: `python -m importer import FILE.csv --dry-run --operations F`.
- export FMT: the Customers page's export of 250,000 customers with long fields (a SQLite database seeded once
  in the bench's scratch folder) to FMT (xlsx or zip), built in a temporary file and sent in chunks, as
  the download route does (importer.output.downloads); `bytes-FMT` is the old way (the whole file as bytes,
  which the download button then held).

Each line reports the cgroup's peak (resident memory plus the page cache the process caused) and the process's
own VmHWM, and whether the kernel killed it. bench/RESULTS.md's section "Bounded exports and operations
(issue 20)" is replaced with the table.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# BENCH_ROOT: measure another checkout (the "before" numbers came from main before this change).
ROOT = Path(os.environ.get("BENCH_ROOT") or Path(__file__).resolve().parent.parent)
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent.parent)]

from bench.results import write_section  # noqa: E402

IN_512MB = Path("/work/shared/tools/in-512mb")
SCRATCH = Path(tempfile.gettempdir()) / "bench_bounded"
ROWS = 100_000
CUSTOMERS = 250_000
SECTION = "Bounded exports and operations (issue 20)"
DEFAULT_CASES = ["replace 2000", "cli 2000", "cli 5000", "cli 20000", "export xlsx", "export zip"]


def _vm_hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _upload_csv(path: Path) -> None:
    """100,000 valid rows, Company Name blank (what the replace fills)."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["Shipping Mark", "First Name", "Last Name", "Phone", "Email", "Region", "Company Name"])
        for i in range(ROWS):
            out.writerow([f"MK{i:07d}", "Ama", "Mensah", f"024{i:07d}", f"ama{i}@example.com", "Volta", ""])


def _customers_db(path: Path) -> str:
    """A SQLite database of 250,000 customers whose text fields are at or near their longest."""
    url = f"sqlite:///{path}"
    if path.exists():
        return url
    import datetime as dt

    import sqlalchemy as sa

    from importer.database.schema import customers, ensure_schema, make_engine
    from schemas.customer import FIELDS, USER_TYPES

    path.parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url)
    ensure_schema(engine)
    now = dt.datetime.now(dt.UTC)
    width = {f.name: min(f.stored_length or 50, 250) for f in FIELDS}
    with engine.begin() as conn:
        for start in range(0, CUSTOMERS, 10_000):
            rows = []
            for i in range(start, min(start + 10_000, CUSTOMERS)):
                # Random letters: a real export's text does not compress to nothing.
                row = {name: os.urandom(width[name] // 2 + 1).hex()[:width[name]] for name in width}
                row.update(shipping_mark=f"MK{i:08d}", phone=f"+23324{i:07d}", region="VOLTA",
                           user_type=USER_TYPES[0], email=f"{i}{os.urandom(100).hex()}@example.com", created_at=now)
                rows.append(row)
            conn.execute(sa.insert(customers), rows)
    engine.dispose()
    return url


# -- the cases, each run in a child process ------------------------------------------------------------------
def case_replace(chars: str) -> str:
    from importer.api import read_upload
    from importer.errors import UsageError
    from importer.review.conversions import Replace, apply_operation, preview
    from importer.settings import Settings

    path = SCRATCH / "upload.csv"
    settings = Settings.from_env()
    upload = read_upload(path.read_bytes(), path.name, settings)
    op = Replace("company_name", "", "C" * int(chars), whole_cell=True)
    try:
        found = preview(upload.checked, op, settings)
        after = apply_operation(upload.checked, op, settings)
        return f"done: previewed {found.changes:,} changes, {len(after.errors):,} rows fail after"
    except UsageError as exc:
        return f"refused: {exc}"


def case_export(fmt: str) -> str:
    from importer.database.schema import make_engine
    engine = make_engine(_customers_db(SCRATCH / "customers.db"))
    if fmt.startswith("bytes-"):  # the old way: the whole file as bytes (and the download button's copy)
        from importer.output.customer_export import export_bytes

        data = export_bytes(engine, fmt.removeprefix("bytes-"))
        held = bytes(data)
        return f"{len(held) / 1e6:,.0f} MB held as bytes"
    from importer.output.downloads import export_file, send_chunks

    spooled = export_file(engine, fmt)
    sent = 0
    with open(os.devnull, "wb") as sink:
        for chunk in send_chunks(spooled):
            sink.write(chunk)
            sent += len(chunk)
    return f"{sent / 1e6:,.0f} MB sent from disk"


def _run_case(args: list[str]) -> None:
    started = time.perf_counter()
    name, arg = args
    outcome = case_replace(arg) if name == "replace" else case_export(arg)
    print(json.dumps({"outcome": outcome[:160], "vm_hwm_mb": round(_vm_hwm_mb()),
                      "seconds": round(time.perf_counter() - started, 1)}))


# -- the driver ------------------------------------------------------------------------------------------------
def _confined(command: list[str], limit_mb: int) -> tuple[subprocess.CompletedProcess[str], int | None, int]:
    """Run `command` under in-512mb (when this machine allows it): the process, the cgroup's peak, OOM kills."""
    wrap = [str(IN_512MB), "-m", str(limit_mb)] if IN_512MB.exists() else []
    proc = subprocess.run(wrap + command, capture_output=True, text=True, cwd=ROOT, check=False)
    found = re.search(r"peak (\d+) MB, OOM kills (\d+)", proc.stderr)
    return proc, (int(found.group(1)) if found else None), (int(found.group(2)) if found else 0)


def run(case: str, limit_mb: int) -> dict[str, object]:
    name, arg = case.split()
    py = str(ROOT / ".venv" / "bin" / "python")
    if name == "cli":
        ops = SCRATCH / f"ops-{arg}.json"
        ops.write_text(json.dumps([{"kind": "replace", "field": "company_name", "find": "", "replace": "C" * int(arg),
                                    "whole_cell": True}]))
        db = SCRATCH / "cli.db"
        command = ["/usr/bin/env", f"DATABASE_URL=sqlite:///{db}", py, "-m", "importer", "import",
                   str(SCRATCH / "upload.csv"), "--dry-run", "--operations", str(ops)]
        proc, peak, kills = _confined(command, limit_mb)
        lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
        outcome = (f"refused (exit {proc.returncode}): {lines[0][7:]}" if lines and proc.returncode == 2
                   else f"exit {proc.returncode}")
        return {"case": case, "peak": peak, "kills": kills, "outcome": outcome[:160], "vm_hwm_mb": None}
    proc, peak, kills = _confined([py, str(Path(__file__).resolve()), "--case", name, arg], limit_mb)
    result: dict[str, object] = {"case": case, "peak": peak, "kills": kills, "vm_hwm_mb": None,
                                 "outcome": "killed" if kills or proc.returncode else "?"}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            result.update(json.loads(line))
    if proc.returncode and not kills:
        result["outcome"] = f"exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}"
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", nargs=2, metavar=("NAME", "ARG"))
    parser.add_argument("--cases", default=",".join(DEFAULT_CASES),
                        help="comma-separated: 'replace N', 'cli N', 'export xlsx|zip|bytes-xlsx|bytes-zip'")
    parser.add_argument("--limit-mb", type=int, default=512)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if args.case:
        _run_case(args.case)
        return
    _upload_csv(SCRATCH / "upload.csv")
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    if any(c.startswith("export") for c in cases):
        _customers_db(SCRATCH / "customers.db")
    rows = []
    for case in cases:
        found = run(case, args.limit_mb)
        print(json.dumps(found), flush=True)
        rows.append(found)
    if args.no_write:
        return
    body = [f"`bench/bench_bounded.py`, each case a fresh process in a {args.limit_mb} MB memory cgroup "
            "(/work/shared/tools/in-512mb: resident memory plus the page cache the process caused; the kernel "
            f"kills at the limit). Upload: {ROWS:,} rows; export: {CUSTOMERS:,} customers with long fields (SQLite).",
            "", "| case | cgroup peak (MB) | VmHWM (MB) | OOM kills | outcome |", "|---|---:|---:|---:|---|"]
    for r in rows:
        body.append(f"| {r['case']} | {r['peak'] if r['peak'] is not None else 'n/a'} | "
                    f"{r['vm_hwm_mb'] if r['vm_hwm_mb'] is not None else '-'} | {r['kills']} | "
                    f"{str(r['outcome']).replace('|', '/')} |")
    write_section(SECTION, "\n".join(body))


if __name__ == "__main__":
    main()
