"""Read, map, clean and validate a 100,000-row workbook: time and peak memory of the real CLI.

Usage: .venv/bin/python bench/bench_read.py [--rows 100000]
Runs `/usr/bin/time -v python -m importer import FILE --dry-run --json` (a dry run on a fresh SQLite file,
so the database half is included but nothing is kept), then times each engine step in this process,
with openpyxl's read-only reader (what the old system used) as the baseline for the reading step.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.results import write_section  # noqa: E402
from bench.workbook import customer_workbook  # noqa: E402
from importer.checks.validate import check_frame  # noqa: E402
from importer.intake.readers import open_file  # noqa: E402
from importer.mapping.columns import apply_mapping, choose_sheet  # noqa: E402
from importer.settings import Settings  # noqa: E402


def cli_run(path: Path, workdir: Path) -> dict[str, float]:
    """Wall time and peak RSS of one dry-run import through the real CLI."""
    proc = subprocess.run(
        ["/usr/bin/time", "-v", sys.executable, "-m", "importer", "import", str(path), "--dry-run", "--json",
         "--database-url", f"sqlite:///{workdir / 'bench.db'}"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )
    result = json.loads(proc.stdout)
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", proc.stderr)
    hours, minutes, seconds = (float(g) if g else 0.0 for g in wall.groups())
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    return {"seconds": hours * 3600 + minutes * 60 + seconds, "peak_rss_mb": rss / 1024,
            "attempted": result["total_attempted"], "failed": result["total_failed"]}


def steps(data: bytes) -> dict[str, float]:
    """Seconds per engine step, and openpyxl's read-only read of the same bytes as the baseline."""
    import io

    import openpyxl

    settings = Settings()
    timings: dict[str, float] = {}
    start = time.perf_counter()
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    baseline_rows = sum(1 for _ in book.active.iter_rows(values_only=True))
    book.close()
    timings["openpyxl_read_only_baseline"] = time.perf_counter() - start
    start = time.perf_counter()
    spreadsheet = open_file(data, "bench.xlsx", settings)
    sheet, rows, mapping = choose_sheet(spreadsheet, None, settings.max_rows + 50)
    timings["read (calamine)"] = time.perf_counter() - start
    assert len(rows) == baseline_rows
    start = time.perf_counter()
    frame = apply_mapping(rows, mapping, settings.max_rows)
    timings["map"] = time.perf_counter() - start
    start = time.perf_counter()
    check_frame(frame, settings)
    timings["clean + validate + dedupe"] = time.perf_counter() - start
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        path = workdir / f"customers_{args.rows}.xlsx"
        data = customer_workbook(args.rows)
        path.write_bytes(data)
        cli = cli_run(path, workdir)
        timings = steps(data)
    read_ratio = timings["openpyxl_read_only_baseline"] / timings["read (calamine)"]
    lines = [
        f"{args.rows:,} rows ({len(data) / 1e6:.1f} MB .xlsx), {time.strftime('%Y-%m-%d')}.",
        "",
        f"`python -m importer import FILE --dry-run --json` (measured with `/usr/bin/time -v`): "
        f"**{cli['seconds']:.1f} s wall, peak RSS {cli['peak_rss_mb']:.0f} MB**, "
        f"{cli['attempted']:,} rows, {cli['failed']:,} failing.",
        "",
        "| step (in one process) | seconds |",
        "|---|---|",
        *(f"| {name} | {seconds:.2f} |" for name, seconds in timings.items()),
        "",
        f"Reading: calamine is {read_ratio:.1f}x faster than openpyxl read-only (the old system's reader) "
        "on the same bytes.",
    ]
    print("\n".join(lines))
    write_section("Reading and validating (bench/bench_read.py)", "\n".join(lines))
    print("written to bench/RESULTS.md")


if __name__ == "__main__":
    main()
