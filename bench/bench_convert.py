"""Value conversion, find and replace, the full-name split and footer detection on 100,000 rows.

Usage: .venv/bin/python bench/bench_convert.py [--rows 100000]
Each case runs in a child process that first builds the same checked upload (100,000 rows, a Location
column of Kumasi-list values, ~64% failing on Region); the baseline child stops there. Times are ratios to
the baseline's own check_frame (validating every row once, what any bulk fix that touches most rows
costs); memory is each child's VmHWM minus the baseline's. Reading is timed with and without the footer
detection (SheetRows._note made a no-op) on the same workbook, in one process.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.results import write_section  # noqa: E402

LOCATIONS = ["Kumasi", "G/A", "Gt. Accra", "Ashanti", "", "Tema", "B/A", "Takorady", "Volta", "Accra", "Atlantis"]


def _checked(rows: int):
    import pandas as pd

    from importer.checks.validate import check_frame
    from importer.settings import Settings

    frame = pd.DataFrame({
        "shipping_mark": [f"PM{i}" for i in range(rows)], "first_name": "Kofi", "last_name": "Mensah",
        "email": "", "phone": [f"024{i:07d}" for i in range(rows)],
        "region": [LOCATIONS[(i * 7) % len(LOCATIONS)] for i in range(rows)],
    }, index=pd.Index(range(2, rows + 2), name="source_row_number"))
    start = time.perf_counter()
    checked = check_frame(frame, Settings())
    return checked, time.perf_counter() - start


def child(step: str, rows: int) -> None:
    """One case: build the checked upload, run the step, print its seconds and this process's VmHWM."""
    import pandas as pd

    from importer.mapping.columns import split_full_name
    from importer.review.conversions import Conversion, Replace, apply_conversion, failing_values, preview
    from importer.settings import Settings

    settings = Settings()
    checked, baseline = _checked(rows)
    start = time.perf_counter()
    if step == "failing_values":
        failing_values(checked, "region", settings)
    elif step == "preview":
        preview(checked, Conversion.from_table("region", failing_values(checked, "region", settings)), settings)
    elif step == "apply":
        conversion = Conversion.from_table("region", failing_values(checked, "region", settings))
        apply_conversion(checked, conversion, settings)
    elif step == "replace_preview":
        preview(checked, Replace("region", "a", "A", match_case=False), settings)
    elif step == "split":
        names = pd.Series([f"Ama Serwaa Owusu{i}" if i % 3 else f"MENSAH Kofi{i}" for i in range(rows)], dtype="str")
        split_full_name(names)
    seconds = time.perf_counter() - start
    hwm = int(Path("/proc/self/status").read_text().split("VmHWM:")[1].split()[0]) / 1024
    print(json.dumps({"step": step, "seconds": seconds, "baseline": baseline, "hwm_mb": hwm}))


def _run_child(step: str, rows: int) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", step, "--rows", str(rows)], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def read_with_and_without_notes(rows: int) -> tuple[float, float, int]:
    """Seconds to read and map a workbook of `rows` customers plus a footer, with and without footer detection."""
    from importer.intake import delimited as csv_read
    from importer.intake.readers import open_file
    from importer.mapping.columns import apply_mapping, choose_sheet, sheet_notes
    from importer.settings import Settings
    from tests.fixtures import branch_files

    data = branch_files.kumasi_xlsx(rows)
    settings = Settings(max_rows=rows + 10)  # without footer detection the two footer rows count too

    def read() -> tuple[float, int]:
        start = time.perf_counter()
        _, sheet, mapping = choose_sheet(open_file(data, "k.xlsx", settings), None, settings.max_rows)
        apply_mapping(sheet, mapping, settings.max_rows)
        return time.perf_counter() - start, len(sheet_notes(sheet).skipped_rows)

    original = csv_read.SheetRows._note
    timings: dict[bool, list[float]] = {True: [], False: []}
    skipped = 0
    for _ in range(3):  # interleaved, best of three each: the machine is shared
        for detect in (True, False):
            if not detect:
                csv_read.SheetRows._note = lambda self, index, cells, text: None  # type: ignore[method-assign]
            try:
                seconds, found = read()
            finally:
                csv_read.SheetRows._note = original  # type: ignore[method-assign]
            timings[detect].append(seconds)
            skipped = found if detect else skipped
    with_notes, without = min(timings[True]), min(timings[False])
    return with_notes, without, skipped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--child")
    parser.add_argument("--read-only", action="store_true", help="only the reading comparison (printed)")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.rows)
        return
    if args.read_only:
        print(read_with_and_without_notes(args.rows))
        return
    base = _run_child("baseline", args.rows)
    lines = ["| step | seconds | x check_frame of every row | extra VmHWM MB |", "|---|---:|---:|---:|",
             f"| baseline: check_frame of {args.rows:,} rows | {base['baseline']:.2f} | 1.00 | 0 (VmHWM "
             f"{base['hwm_mb']:.0f} MB) |"]
    labels = {"failing_values": "failing_values(region): 8 distinct values, counts, suggestions",
              "preview": "preview of the suggested conversion (fixes, changes)",
              "apply": "apply_conversion (~64% of rows changed: recheck re-validates them)",
              "replace_preview": "preview of a case-insensitive find and replace on every row",
              "split": f"split_full_name of {args.rows:,} names"}
    for step, label in labels.items():
        got = _run_child(step, args.rows)
        lines.append(f"| {label} | {got['seconds']:.2f} | {got['seconds'] / got['baseline']:.2f} | "
                     f"{got['hwm_mb'] - base['hwm_mb']:.0f} |")
    with_notes, without, skipped = read_with_and_without_notes(args.rows)
    lines += ["", f"Reading and mapping the Kumasi list of {args.rows:,} rows (xlsx, footer rows included): "
                  f"{with_notes:.2f} s with footer and note detection, {without:.2f} s without "
                  f"({with_notes / without:.2f}x); {skipped} rows skipped."]
    body = (f"`bench/bench_convert.py --rows {args.rows}` (issue 11: value conversion, find and replace, "
            "full-name split, footer rows). Each step in its own child process after building the same "
            "checked upload; ratios to that child's check_frame; the machine was shared with other work.\n\n"
            + "\n".join(lines))
    print(body)
    write_section("Value conversion and cleaning (issue 11)", body)


if __name__ == "__main__":
    main()
