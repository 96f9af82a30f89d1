"""Memory and time of the real dashboard server through the whole flow, driven in Chromium.

For each size a fresh `python -m streamlit run app.py` process (the venv's python is the server itself:
no wrapper, its pid is what /proc is read for) on an empty SQLite file; Chromium then does
upload -> review -> a bulk fix over every row -> dry run -> import -> both failure reports -> History.
Recorded: the time of each step (action to its result on screen), the server's RSS after each step and
its peak during the step (VmRSS sampled every 20 ms), and VmHWM (the kernel's peak RSS) at the end.

    .venv/bin/python bench/bench_dashboard.py              # 10,000 and 100,000 rows, writes bench/RESULTS.md
    .venv/bin/python bench/bench_dashboard.py --rows 10000 --no-write
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from bench.results import write_section  # noqa: E402
from bench.workbook import customer_workbook  # noqa: E402
from tests.e2e.conftest import Server, goto_page, launch_chromium, new_page, upload_file, wait_idle  # noqa: E402

LIMIT_MB = 512
STEP_TIMEOUT_MS = 600_000


def mb(kb: int) -> float:
    return kb / 1024


class Sampler:
    """VmRSS of one process every `interval` seconds, in a thread; `peak()` since the last `reset()`."""

    def __init__(self, server: Server, interval: float = 0.02) -> None:
        self.server, self.interval = server, interval
        self._peak = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                rss = self.server.status("VmRSS")
            except (OSError, AssertionError):
                return
            with self._lock:
                self._peak = max(self._peak, rss)
            time.sleep(self.interval)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def reset(self) -> None:
        with self._lock:
            self._peak = self.server.status("VmRSS")

    def peak(self) -> int:
        with self._lock:
            return max(self._peak, self.server.status("VmRSS"))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@dataclass
class Step:
    name: str
    seconds: float
    rss_after_kb: int
    peak_kb: int
    hwm_kb: int


@dataclass
class Run:
    rows: int
    file_mb: float
    idle_kb: int = 0
    first_page_kb: int = 0
    steps: list[Step] = field(default_factory=list)
    final_hwm_kb: int = 0
    after_flow_kb: list[tuple[int, int]] = field(default_factory=list)  # (VmRSS, VmHWM) after each flow
    created: int = 0
    failed: int = 0


def assert_is_server(server: Server) -> None:
    """The pid measured is the streamlit server itself, with no child processes doing the work."""
    cmdline = Path(f"/proc/{server.pid}/cmdline").read_bytes().split(b"\0")
    assert b"streamlit" in cmdline and b"run" in cmdline, cmdline
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    assert not children, f"the server has child processes {children}: measure them too"


def measure(rows: int, workdir: Path, database_url: str | None, flows: int = 1, pause: float = 0) -> Run:
    """The whole flow `flows` times on one server (each a new browser session and new customers)."""
    env = {"DATABASE_URL": database_url} if database_url else {}
    server = Server(workdir / f"customers-{rows}.db", workdir / f"server-{rows}.log", env).start()
    sampler: Sampler | None = None
    run = Run(rows=rows, file_mb=0.0)
    try:
        assert_is_server(server)
        time.sleep(1)
        run.idle_kb = server.status("VmRSS")
        sampler = Sampler(server).start()
        with sync_playwright() as playwright:
            expect.set_options(timeout=STEP_TIMEOUT_MS)
            browser = launch_chromium(playwright)
            try:
                for flow in range(1, flows + 1):
                    if flow > 1 and pause:
                        time.sleep(pause)
                    data = customer_workbook(rows, seed=flow, start=(flow - 1) * rows)
                    run.file_mb = len(data) / 1e6
                    one_flow(server, browser, sampler, run, data, flow)
                    run.after_flow_kb.append((server.status("VmRSS"), server.status("VmHWM")))
            finally:
                browser.close()
        run.final_hwm_kb = server.status("VmHWM")
    finally:
        if sampler is not None:
            sampler.stop()
        server.stop()
    return run


def one_flow(server: Server, browser, sampler: Sampler, run: Run, data: bytes, flow: int) -> None:
    rows = run.rows
    page = new_page(browser, server)
    page.set_default_timeout(STEP_TIMEOUT_MS)
    expect(page.get_by_role("heading", name="Upload a customer file")).to_be_visible()
    if flow == 1:
        run.first_page_kb = server.status("VmRSS")
    suffix = "" if flow == 1 else f" (flow {flow})"

    def step(name: str, action, done) -> None:
        sampler.reset()
        started = time.perf_counter()
        action()
        done()
        wait_idle(page, STEP_TIMEOUT_MS)
        seconds = time.perf_counter() - started
        run.steps.append(Step(name + suffix, seconds, server.status("VmRSS"), sampler.peak(),
                              server.status("VmHWM")))
        print(f"  {rows:,} rows · {name}{suffix}: {seconds:.2f} s, RSS {mb(run.steps[-1].rss_after_kb):.0f} MB, "
              f"peak {mb(run.steps[-1].peak_kb):.0f} MB", flush=True)

    def download(label: str):
        def go() -> None:
            with page.expect_download() as info:
                page.get_by_role("button", name=label).click()
            assert info.value.path().stat().st_size > 0
        return go

    step("upload (read, map, validate)",
         lambda: upload_file(page, "customers.xlsx", data),
         lambda: expect(page.get_by_text("rows read from sheet")).to_be_visible())
    step("review (metrics, chart, grid, fix counts)",
         lambda: page.get_by_role("button", name=f"Continue to review {rows:,} rows").click(),
         lambda: expect(page.get_by_role("heading", name="Bulk fixes")).to_be_visible())
    step("bulk fix preview over every row",
         lambda: page.locator(".st-key-review_fix_only_failing label").click(),
         lambda: expect(page.get_by_text(f"would change {rows:,} rows")).to_be_visible())
    step("bulk fix applied (trim spaces, every row)",
         lambda: page.locator(".st-key-review_fix_trim button").first.click(),
         lambda: expect(page.get_by_text("Trim and collapse spaces in every column: changed")).to_be_visible())
    goto_page(page, "3. Import")
    step("dry run",
         lambda: page.get_by_role("button", name="Dry run (saves nothing)").click(),
         lambda: expect(page.get_by_text("Dry run: what the import would do")).to_be_visible())
    done = page.get_by_text(re.compile(r"^Run #\d+: Created"))
    step("import",
         lambda: page.get_by_role("button", name=re.compile(r"^Import [\d,]+ customers$")).click(),
         lambda: expect(done).to_be_visible())
    run.created, run.failed = parse_counts(done.inner_text())
    step("failure report (CSV)", download("Download failure report (CSV)"), lambda: None)
    step("failure report (Excel)", download("Download failure report (Excel, failing cells marked)"), lambda: None)
    step("history",
         lambda: goto_page(page, "History"),
         lambda: expect(page.get_by_text(f"Run #{flow}: ")).to_be_visible())
    page.context.close()


def parse_counts(text: str) -> tuple[int, int]:
    numbers = [int(n.replace(",", "")) for n in re.findall(r"\d[\d,]*", text)]
    # "Run #1: Created 97,957 customers; 2,043 rows failed."
    return numbers[1], numbers[2] if len(numbers) > 2 else 0


def table(runs: list[Run]) -> str:
    """Steps down, and for each size: seconds, RSS after the step, peak RSS during the step (MB)."""
    def row(*cells: object) -> str:
        return "| " + " | ".join(str(c) for c in cells) + " |"

    header = ["step"] + [f"{label} ({r.rows:,} rows)" for r in runs
                         for label in ("s", "RSS after, MB", "peak in step, MB")]
    lines = [row(*header), "|---|" + "---:|" * (3 * len(runs))]
    lines.append(row("server started, idle", *[c for r in runs for c in ("", f"{mb(r.idle_kb):.0f}", "")]))
    lines.append(row("first page shown", *[c for r in runs for c in ("", f"{mb(r.first_page_kb):.0f}", "")]))
    for i, name in enumerate(s.name for s in runs[0].steps):
        lines.append(row(name, *[c for r in runs for c in (
            f"{r.steps[i].seconds:.2f}", f"{mb(r.steps[i].rss_after_kb):.0f}", f"{mb(r.steps[i].peak_kb):.0f}")]))
    lines.append(row("**whole flow**", *[c for r in runs for c in (
        f"**{sum(s.seconds for s in r.steps):.1f}**", "", "")]))
    lines.append(row("**peak RSS of the server (VmHWM)**", *[c for r in runs for c in (
        "", "", f"**{mb(r.final_hwm_kb):.0f}**")]))
    return "\n".join(lines)


def summary(runs: list[Run]) -> str:
    out = []
    for r in runs:
        verdict = "under" if mb(r.final_hwm_kb) < LIMIT_MB else "OVER"
        out.append(f"- {r.rows:,} rows ({r.file_mb:.1f} MB .xlsx; {r.created:,} created, {r.failed:,} failed): "
                   f"peak **{mb(r.final_hwm_kb):.0f} MB**, {verdict} the {LIMIT_MB} MB limit; idle server "
                   f"{mb(r.idle_kb):.0f} MB; whole flow {sum(s.seconds for s in r.steps) / len(r.after_flow_kb):.1f} s")
        if len(r.after_flow_kb) > 1:
            out.append("  - after each flow (RSS / VmHWM, MB): " + "; ".join(
                f"{i}: {mb(rss):.0f} / {mb(hwm):.0f}" for i, (rss, hwm) in enumerate(r.after_flow_kb, 1)))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--flows", type=int, default=1,
                        help="run the whole flow this many times on each server (new session, new rows)")
    parser.add_argument("--pause", type=float, default=0, help="seconds to wait between flows")
    parser.add_argument("--database-url", help="default: a fresh SQLite file per size")
    parser.add_argument("--no-write", action="store_true", help="do not write bench/RESULTS.md")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp:
        runs = [measure(rows, Path(tmp), args.database_url, args.flows, args.pause) for rows in args.rows]
    database = "PostgreSQL" if args.database_url and args.database_url.startswith("postgres") else "SQLite"
    body = (
        f"{database}, one fresh `streamlit run app.py` server per size, Chromium driving it; "
        f"{dt.date.today():%Y-%m-%d}. `python bench/bench_dashboard.py --rows "
        + " ".join(str(r) for r in args.rows) + "`\n\n"
        "Seconds are from the click (or upload) to the result on screen. RSS is the server process's "
        "(`/proc/<pid>/status`): VmRSS right after the step, and its highest value sampled every 20 ms "
        "during the step; the last line is the kernel's VmHWM, the peak over the server's whole life. "
        "The bulk fix is \"Trim and collapse spaces in every column\" over every row (\"Only change failing "
        "rows\" unticked), so it rewrites and re-validates the whole file.\n\n"
        + table(runs) + "\n\n" + summary(runs)
    )
    print(body)
    if not args.no_write:
        write_section("Dashboard (bench/bench_dashboard.py)", body)
    return 0 if all(mb(r.final_hwm_kb) < LIMIT_MB for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
