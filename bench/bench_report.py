"""Failure reports for 100,000 failed rows: time and peak memory of CSV and XLSX, streamed.

Each measurement runs in a fresh child process: the child imports everything, notes its RSS, writes
the report of N failed rows (made one at a time by a generator, as a database cursor would hand them
over) to a file, and reports the time and its peak RSS (VmHWM). "Growth" is that peak minus the RSS
before the report, so 0 rows measures the report's fixed cost.

    .venv/bin/python bench/bench_report.py              # 0, 10,000 and 100,000 rows
    .venv/bin/python bench/bench_report.py --rows 1000 50000
    .venv/bin/python bench/bench_report.py --branch     # also: the branch's own columns and the run id

`--branch` adds the layout a branch file gives (issue 11): two of the file's own columns (S/No before
the fields, Remarks after them) in every row, and the `Report of run` column.

`--read-cost ROWS` measures what keeping the file's own columns costs when the file is read: read_upload
of bench/workbook.py's workbook (its Notes column feeds no field) with them kept and with none kept
(importer.mapping.roundtrip.MAX_OTHER_COLUMNS = 0), each in fresh processes, alternating.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@dataclass(frozen=True)
class FakeError:
    field: str
    code: str
    message: str


@dataclass(frozen=True)
class FakeRow:
    source_row_number: int
    errors: tuple[FakeError, ...]
    customer_data: dict[str, str] = field(default_factory=dict)
    other_columns: dict[str, str] = field(default_factory=dict)


def branch_columns() -> tuple:
    """S/No, the fields, Remarks: the layout of a branch file with two columns of its own."""
    from importer.outcomes.failed_rows import ReportColumn, field_columns

    return (ReportColumn("S/No"), *field_columns(), ReportColumn("Remarks"))


def failed_rows(count: int, branch: bool = False) -> Iterator[FakeRow]:
    """`count` failed rows, each with 1-2 errors on cells of the report (so each is comment-worthy)."""
    for n in range(count):
        phone = f"54{n:07d}"
        data = {"shipping_mark": f"PM{n} KOFI", "first_name": f"Kofi {n}", "last_name": "Mensah",
                "email": f"kofi{n}@example", "phone": phone, "region": "Ashanti Region",
                "company_name": f"Mensah Trading {n % 997}"}
        errors = [FakeError("phone", "invalid_phone", f"{phone} is not a valid phone number")]
        if n % 2:
            errors.append(FakeError("email", "invalid_email", f"kofi{n}@example is not a valid email address"))
        if n % 50 == 0:
            data["nickname"] = "=HYPERLINK(\"http://example.com\")"
        own = {"S/No": str(n + 1), "Remarks": f"called {n % 7} times"} if branch else {}
        yield FakeRow(n + 2, tuple(errors), data, own)


def _status_kb(key: str) -> int:
    with open("/proc/self/status") as status:
        return int(status.read().split(f"{key}:")[1].split()[0])


def child(rows: int, fmt: str, commented: int | None, branch: bool = False) -> dict[str, float]:
    """Run in a fresh process: write one report, return seconds, size and memory."""
    import time

    from importer.output import failure_report as report
    if commented is not None:
        report.COMMENTED_ROWS = commented
    before = _status_kb("VmRSS")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"report.{fmt}"
        start, cpu = time.perf_counter(), time.process_time()
        with path.open("wb") as out:
            layout = {"columns": branch_columns(), "run_id": 7} if branch else {}
            written = report.write_report(failed_rows(rows, branch), fmt, out, **layout)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        size = path.stat().st_size
    assert written == rows
    peak = _status_kb("VmHWM")
    return {"rows": rows, "fmt": fmt, "seconds": seconds, "cpu": cpu, "bytes": size,
            "rss_before_mb": before / 1024, "peak_mb": peak / 1024, "growth_mb": (peak - before) / 1024}


def read_child(rows: int, keep: bool) -> dict[str, float]:
    """Run in a fresh process: read_upload of a `rows`-row workbook; seconds and peak RSS."""
    import time

    from bench.workbook import customer_workbook
    from importer.api import read_upload
    from importer.mapping import roundtrip
    from importer.settings import Settings

    data = customer_workbook(rows)
    if not keep:
        roundtrip.MAX_OTHER_COLUMNS = 0
    before = _status_kb("VmRSS")
    start = time.perf_counter()
    upload = read_upload(data, "customers.xlsx", Settings())
    seconds = time.perf_counter() - start
    assert upload.other_columns is not None and upload.other_columns.shape[1] == (1 if keep else 0)
    return {"seconds": seconds, "growth_mb": (_status_kb("VmHWM") - before) / 1024}


def read_cost(rows: int, repeats: int = 3) -> None:
    print(f"\nread_upload of {rows:,} rows (bench/workbook.py, its Notes column kept or not), fresh processes\n")
    print("| own columns | run | seconds | peak RSS growth, MB |")
    print("|---|---:|---:|---:|")
    times: dict[bool, list[float]] = {True: [], False: []}
    for attempt in range(repeats):
        for keep in (False, True):
            proc = subprocess.run([sys.executable, __file__, "--read-child", str(rows), "1" if keep else "0"],
                                  capture_output=True, text=True, check=True, cwd=ROOT)
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            times[keep].append(r["seconds"])
            print(f"| {'kept (Notes)' if keep else 'none'} | {attempt + 1} | {r['seconds']:.2f} "
                  f"| {r['growth_mb']:.0f} |", flush=True)
    ratio = sorted(times[True])[repeats // 2] / sorted(times[False])[repeats // 2]
    print(f"\nmedian time, kept / none: {ratio:.2f}x")


def measure(rows: int, fmt: str, commented: int | None = None, branch: bool = False) -> dict[str, float]:
    """One measurement in a fresh child process (`commented`: override report.COMMENTED_ROWS; `branch`:
    the file's own columns and the run id)."""
    extra = ["-" if commented is None else str(commented), *(["branch"] if branch else [])]
    proc = subprocess.run([sys.executable, __file__, "--child", str(rows), fmt, *extra], capture_output=True,
                          text=True, check=True, cwd=ROOT)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[0, 10_000, 100_000])
    parser.add_argument("--all-comments", action="store_true",
                        help="also measure XLSX with a comment on every failing cell (no COMMENTED_ROWS cap)")
    parser.add_argument("--branch", action="store_true",
                        help="also measure reports with the branch's own columns (S/No, Remarks) and the run id")
    parser.add_argument("--read-cost", type=int, metavar="ROWS",
                        help="only measure read_upload with and without the file's own columns kept")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--read-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.read_child:
        print(json.dumps(read_child(int(args.read_child[0]), args.read_child[1] == "1")))
        return
    if args.read_cost:
        read_cost(args.read_cost)
        return
    if args.child:
        commented = int(args.child[2]) if len(args.child) > 2 and args.child[2] != "-" else None
        branch = len(args.child) > 3 and args.child[3] == "branch"
        print(json.dumps(child(int(args.child[0]), args.child[1], commented, branch)))
        return
    from importer.output.failure_report import COMMENTED_ROWS

    print(f"Failure report, streamed (comments on the failing cells of the first {COMMENTED_ROWS:,} rows); "
          f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs\n")
    print("| format | failed rows | seconds | CPU seconds | file, MB | RSS before, MB | peak RSS (VmHWM), MB "
          "| growth, MB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    runs = [(fmt, rows, None, False) for fmt in ("csv", "xlsx") for rows in args.rows]
    if args.branch:
        runs += [(fmt, rows, None, True) for fmt in ("csv", "xlsx") for rows in args.rows]
    if args.all_comments:
        runs += [("xlsx", rows, 10**9, False) for rows in args.rows]
    for fmt, rows, commented, branch in runs:
        r = measure(rows, fmt, commented, branch)
        label = fmt if commented is None else f"{fmt}, every failing cell commented"
        label += ", S/No + Remarks + run" if branch else ""
        print(f"| {label} | {rows:,} | {r['seconds']:.2f} | {r['cpu']:.2f} | {r['bytes'] / 1e6:.1f} "
              f"| {r['rss_before_mb']:.0f} | {r['peak_mb']:.0f} | {r['growth_mb']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
