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
- dashboard FMT: the same export clicked in Chromium on the Customers page of a dashboard server that itself runs
  in the cgroup (importer.server.serve, as deployed): the server's VmHWM, the cgroup's peak, and its RSS 35 s
  after the tab closed. With BENCH_ROOT=<a checkout of before>, the old download button is measured the same way.

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
from typing import Any

# BENCH_ROOT: measure another checkout (the "before" numbers came from main before this change).
ROOT = Path(os.environ.get("BENCH_ROOT") or Path(__file__).resolve().parent.parent)
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent.parent)]

from bench.results import write_section  # noqa: E402

IN_512MB = Path("/work/shared/tools/in-512mb")
SCRATCH = Path(tempfile.gettempdir()) / "bench_bounded"
ROWS = 100_000
CUSTOMERS = 250_000
SECTION = "Bounded exports and operations (issue 20)"
DEFAULT_CASES = ["replace 2000", "cli 2000", "cli 5000", "cli 20000", "export xlsx", "export zip", "dashboard xlsx",
                 "dashboard zip"]


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
                row: dict[str, Any] = {name: os.urandom(width[name] // 2 + 1).hex()[:width[name]] for name in width}
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
    if name == "dashboard":
        return run_dashboard(arg, limit_mb)
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


# -- the dashboard: the server itself in the cgroup, the Customers page's export clicked in Chromium -----------
def _cgroup(pid: int) -> Path:
    return Path(f"/sys/fs/cgroup/memory/in512-{pid}")


def _server_pid(wrapper: int) -> int:
    """The dashboard's own process: the one in the wrapper's cgroup that is not the wrapper."""
    for _ in range(100):
        procs = [int(p) for p in (_cgroup(wrapper) / "cgroup.procs").read_text().split()] \
            if _cgroup(wrapper).exists() else []
        others = [p for p in procs if p != wrapper]
        if others:
            return others[0]
        time.sleep(0.1)
    raise RuntimeError("the dashboard did not start in its cgroup")


def _status_mb(pid: int, field: str) -> int:
    found = re.search(rf"^{field}:\s+(\d+) kB$", Path(f"/proc/{pid}/status").read_text(), re.MULTILINE)
    return int(found.group(1)) // 1024 if found else -1


def run_dashboard(fmt: str, limit_mb: int) -> dict[str, object]:
    """The Customers page's "Export as Excel" / "Export as CSV (zipped)" of the 250,000 customers, clicked in
    Chromium on a dashboard server that runs in the cgroup; then the tab is closed and 35 s later the server's
    RSS read again. Works with the download button of before (a download) and the Save link of now."""
    import signal
    import socket
    import urllib.request

    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import launch_chromium, wait_idle

    url = _customers_db(SCRATCH / "customers.db")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "APP_PASSWORD")}
    env.update({"DATABASE_URL": url, "APP_PASSWORD": "pw", "PYTHONUNBUFFERED": "1"})
    log = open(SCRATCH / "server.log", "ab")  # noqa: SIM115 - the child writes to it
    wrapper = subprocess.Popen(
        [str(IN_512MB), "-m", str(limit_mb), str(ROOT / ".venv" / "bin" / "python"), "-m", "importer.server.serve",
         "run", "app.py", "--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1",
         "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    log.close()
    server = _server_pid(wrapper.pid)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2):
                break
        except OSError:
            time.sleep(0.2)
    label = "Export as Excel" if fmt == "xlsx" else "Export as CSV (zipped)"
    result: dict[str, object] = {"case": f"dashboard {fmt}", "vm_hwm_mb": None, "outcome": "?"}
    try:
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            context = browser.new_context(viewport={"width": 1280, "height": 1400}, accept_downloads=True)
            context.set_default_timeout(900_000)
            page = context.new_page()
            page.goto(base + "/customers")
            wait_idle(page, timeout=600_000)
            page.get_by_role("textbox", name="Password").fill("pw")
            page.keyboard.press("Enter")
            wait_idle(page, timeout=600_000)
            page.get_by_text("Rows 1-50 of").wait_for()
            before = _status_mb(server, "VmRSS")
            started = time.perf_counter()
            got: list[Any] = []
            page.on("download", lambda download: got.append(download))
            page.get_by_role("button", name=label).click()
            link = page.get_by_role("link", name=re.compile(r"^Save "))
            while not got and not link.count() and wrapper.poll() is None:
                page.wait_for_timeout(500)
            if got:
                size = Path(got[0].path()).stat().st_size
                how = "download button"
            elif link.count():
                response = context.request.get(base + "/" + (link.get_attribute("href") or "").lstrip("/"),
                                               timeout=900_000)
                size = len(response.body())
                how = "built on disk, sent from disk"
            else:
                size, how = 0, "server killed"
            seconds = time.perf_counter() - started
            peak = _status_mb(server, "VmHWM") if wrapper.poll() is None else None
            page.close()
            time.sleep(35)
            after = _status_mb(server, "VmRSS") if wrapper.poll() is None else None
            browser.close()
        cgroup_peak = int((_cgroup(wrapper.pid) / "memory.max_usage_in_bytes").read_text()) // 1_048_576 \
            if _cgroup(wrapper.pid).exists() else None
        result.update(vm_hwm_mb=peak, peak=cgroup_peak, seconds=round(seconds, 1),
                      outcome=f"{how}: {size / 1e6:,.0f} MB in {seconds:,.0f} s; RSS {before} MB before, "
                              f"{after if after is not None else '-'} MB 35 s after the tab closed")
    finally:
        if wrapper.poll() is None:
            os.kill(server, signal.SIGTERM)
        wrapper.wait(timeout=60)
    tail = (SCRATCH / "server.log").read_text(errors="replace")
    found = re.findall(r"peak (\d+) MB, OOM kills (\d+)", tail)
    if found:
        result["peak"], result["kills"] = int(found[-1][0]), int(found[-1][1])
    if result.get("kills"):
        result["outcome"] = "killed: " + str(result["outcome"])
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
    if any(c.startswith(("export", "dashboard")) for c in cases):
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
