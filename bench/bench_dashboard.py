"""Memory and time of the real dashboard server through the whole flow, driven in Chromium.

For each size a fresh `python -m streamlit run app.py` process (the venv's python is the server itself:
no wrapper, its pid is what /proc is read for) on an empty SQLite file; Chromium then does
upload -> review -> a bulk fix over every row -> dry run -> import -> both failure reports -> History.
Recorded: the time of each step (action to its result on screen), the server's RSS after each step and
its peak during the step (VmRSS sampled every 20 ms), and VmHWM (the kernel's peak RSS) at the end.

    .venv/bin/python bench/bench_dashboard.py              # 10,000 and 100,000 rows, writes bench/RESULTS.md
    .venv/bin/python bench/bench_dashboard.py --rows 10000 --no-write
    .venv/bin/python bench/bench_dashboard.py --rows 100000 --parallel 2 --no-write   # two analysts at once
    .venv/bin/python bench/bench_dashboard.py --rows 100000 --flows 3 --after 40 --no-write  # three in a row

With --parallel N, N analysts (each its own Chromium and browser session, in threads) run the flow at
the same time; a step that waited for another analyst's (importer.server.governor) records the message seen.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    """VmRSS of one process every `interval` seconds, in a thread; the peak of each open window."""

    def __init__(self, server: Server, interval: float = 0.02) -> None:
        self.server, self.interval = server, interval
        self._windows: dict[int, int] = {}
        self._ids = iter(range(1, 1 << 30))
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
                for key, peak in self._windows.items():
                    self._windows[key] = max(peak, rss)
            time.sleep(self.interval)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def open(self) -> int:
        """Start a window (one step of one analyst); close(window) gives its peak RSS in kB."""
        with self._lock:
            key = next(self._ids)
            self._windows[key] = self.server.status("VmRSS")
            return key

    def close(self, key: int) -> int:
        with self._lock:
            return max(self._windows.pop(key), self.server.status("VmRSS"))

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
    waited: str = ""  # the "Waiting for another ... (N ahead of you)" message seen during the step, if any


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
    parallel: int = 1
    after_wait: tuple[float, int] | None = None  # (seconds after the last tab closed, VmRSS then)
    invalid_share: float = 0.02  # of the generated rows
    same_file: bool = False  # every flow uploads the first flow's file
    lock: threading.Lock = field(default_factory=threading.Lock)


def assert_is_server(server: Server) -> None:
    """The pid measured is the streamlit server itself, with no child processes doing the work."""
    cmdline = Path(f"/proc/{server.pid}/cmdline").read_bytes().split(b"\0")
    assert (b"streamlit" in cmdline or b"importer.server.serve" in cmdline) and b"run" in cmdline, cmdline
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    assert not children, f"the server has child processes {children}: measure them too"


def measure(rows: int, workdir: Path, database_url: str | None, flows: int = 1, pause: float = 0,
            parallel: int = 1, after: float = 0, invalid_share: float = 0.02, same_file: bool = False) -> Run:
    """The whole flow `flows` times on one server (each a new browser session and new customers), by
    `parallel` analysts at once; then `after` seconds idle (closed tabs' sessions are freed)."""
    env = {"DATABASE_URL": database_url} if database_url else {}
    server = Server(workdir / f"customers-{rows}.db", workdir / f"server-{rows}.log", env).start()
    sampler: Sampler | None = None
    run = Run(rows=rows, file_mb=0.0, parallel=parallel, invalid_share=invalid_share, same_file=same_file)
    try:
        assert_is_server(server)
        time.sleep(1)
        run.idle_kb = server.status("VmRSS")
        sampler = Sampler(server).start()
        for flow in range(1, flows + 1):
            if flow > 1 and pause:
                time.sleep(pause)
            if parallel == 1:
                analyst(server, sampler, run, flow, 1)
            else:
                errors: list[BaseException] = []
                threads = [threading.Thread(target=analyst, args=(server, sampler, run, flow, a, errors))
                           for a in range(1, parallel + 1)]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                if errors:
                    raise errors[0]
            run.after_flow_kb.append((server.status("VmRSS"), server.status("VmHWM")))
        if after:
            time.sleep(after)
            run.after_wait = (after, server.status("VmRSS"))
        run.final_hwm_kb = server.status("VmHWM")
    finally:
        if sampler is not None:
            sampler.stop()
        server.stop()
    return run


def analyst(server: Server, sampler: Sampler, run: Run, flow: int, number: int,
            errors: list[BaseException] | None = None) -> None:
    """One analyst's whole flow in its own Chromium (Playwright's sync API is per thread)."""
    try:
        # --same-file: every flow uploads the first flow's file again (from the 2nd on, every row exists).
        first = 1 if run.same_file else flow
        data = customer_workbook(run.rows, seed=first * 10 + number,
                                 start=((first - 1) * run.parallel + number - 1) * run.rows,
                                 invalid_share=run.invalid_share)
        run.file_mb = len(data) / 1e6
        with sync_playwright() as playwright:
            expect.set_options(timeout=STEP_TIMEOUT_MS)
            browser = launch_chromium(playwright)
            try:
                one_flow(server, browser, sampler, run, data, flow, number)
            finally:
                browser.close()
    except BaseException as exc:
        if errors is None:
            raise
        errors.append(exc)


WAITING = re.compile(r"Waiting for another .+? to finish \(\d+ ahead of you\)")


def wait_showing(page, done, seen: list[str]) -> None:
    """Until `done` (a locator) is visible; meanwhile note any governor waiting message on the page."""
    deadline = time.monotonic() + STEP_TIMEOUT_MS / 1000
    waiting = page.get_by_text(WAITING)
    while not done.first.is_visible():
        if waiting.count():
            try:
                match = WAITING.search(waiting.first.inner_text(timeout=1_000))
            except Exception:  # noqa: BLE001 - the message went away meanwhile
                match = None
            if match and match.group(0) not in seen:
                seen.append(match.group(0))
        if time.monotonic() > deadline:
            raise TimeoutError(f"not visible after {STEP_TIMEOUT_MS / 1000:.0f} s: {done}")
        page.wait_for_timeout(100)


def download(page, label: str, timeout_s: float = 600,
             look: Callable[[], None] | None = None) -> tuple[str, int]:
    """Click the download button `label`: (file name, size). Either Streamlit's own download (a download
    event), or, with downloads built on disk (issue 20), the "Save NAME (SIZE)" link the button then shows,
    fetched in the page's own session as a browser would. look(): called while waiting (it may raise)."""
    from urllib.parse import urljoin

    ending = ".xlsx" if "Excel" in label else ".zip" if "zipped" in label else ".csv"
    got: list[Any] = []

    def on_download(download) -> None:
        got.append(download)

    page.on("download", on_download)
    try:
        page.get_by_role("button", name=label).click()
        link = page.get_by_role("link", name=re.compile(r"^Save .*" + re.escape(ending)))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if got:
                size = got[0].path().stat().st_size
                assert size > 0, f"{label}: an empty file"
                return got[0].suggested_filename, size
            if link.count() and link.first.is_visible():
                response = page.request.get(urljoin(page.url, link.first.get_attribute("href") or ""),
                                            timeout=timeout_s * 1000)
                assert response.ok, f"the Save link answered {response.status}"
                shown = re.search(r"Save (\S+)", link.first.inner_text())
                assert response.body(), f"{label}: an empty file"
                return (shown.group(1) if shown else "the file"), len(response.body())
            if look is not None:
                look()
            page.wait_for_timeout(250)
        raise TimeoutError(f"no download after {timeout_s:.0f} s: {label}")
    finally:
        page.remove_listener("download", on_download)


@dataclass
class Hooks:
    """How one_flow waits, checks and downloads. bench_512mb's end at once when the server dies or the page
    shows an error, and fetch a download the server built on disk."""
    wait_showing: Callable[[Any, Any, list[str]], None] = wait_showing
    wait_idle: Callable[[Any], None] = field(default=lambda page: wait_idle(page, STEP_TIMEOUT_MS))
    download: Callable[[Any, str], Any] = download
    check: Callable[[Any], None] = field(default=lambda page: None)  # raises when the page shows a refusal
    sign_in: Callable[[Any], None] = field(default=lambda page: None)  # passes a login gate, if there is one


def one_flow(server: Server, browser, sampler: Sampler, run: Run, data: bytes, flow: int,
             number: int = 1, hooks: Hooks | None = None) -> None:
    """One analyst's steps: upload -> review -> bulk fix over every row -> dry run -> import -> both
    failure reports -> History, each timed with the server's memory around it."""
    hooks = hooks or Hooks()
    rows = run.rows
    page = new_page(browser, server)
    page.set_default_timeout(STEP_TIMEOUT_MS)
    hooks.sign_in(page)
    expect(page.get_by_role("heading", name="Upload a customer file")).to_be_visible()
    if flow == 1 and number == 1:
        run.first_page_kb = server.status("VmRSS")
    who = [f"flow {flow}"] if flow > 1 else []
    who += [f"analyst {number}"] if run.parallel > 1 else []
    suffix = f" ({', '.join(who)})" if who else ""

    def step(name: str, action, done) -> None:
        window = sampler.open()
        started = time.perf_counter()
        seen: list[str] = []
        action()
        if done is not None:
            hooks.wait_showing(page, done, seen)
        hooks.wait_idle(page)
        seconds = time.perf_counter() - started
        with run.lock:
            run.steps.append(Step(name + suffix, seconds, server.status("VmRSS"), sampler.close(window),
                                  server.status("VmHWM"), "; ".join(seen)))
            last = run.steps[-1]
        print(f"  {rows:,} rows · {name}{suffix}: {seconds:.2f} s, RSS {mb(last.rss_after_kb):.0f} MB, "
              f"peak {mb(last.peak_kb):.0f} MB" + (f", saw: {last.waited}" if last.waited else ""), flush=True)

    step("upload (read, map, validate)",
         lambda: upload_file(page, "customers.xlsx", data),
         page.get_by_text("rows read from sheet"))
    step("review (metrics, chart, grid, fix counts)",
         lambda: page.get_by_role("button", name=f"Continue to review {rows:,} rows").click(),
         page.get_by_role("heading", name="Bulk fixes"))
    step("bulk fix preview over every row",
         lambda: page.locator(".st-key-review_fix_only_failing label").click(),
         page.get_by_text(f"changes {rows:,} rows"))
    step("bulk fix applied (trim spaces, every row)",
         lambda: page.locator(".st-key-review_fix_trim button").first.click(),
         page.get_by_text("Trim and collapse spaces in every column: changed"))
    goto_page(page, "3. Import")
    step("dry run",
         lambda: page.get_by_role("button", name="Dry run (saves nothing)").click(),
         page.get_by_text("Dry run: what the import would do"))
    done = page.get_by_text(re.compile(r"^Run #\d+: Created"))

    def start_import() -> None:
        # Another analyst's import of the same file makes this dry run stale: the page names it and the
        # Import button waits for a new dry run (what an analyst does then is part of this step).
        # A click at the moment the other import starts finds the button disabled on its rerun: try again.
        stale = page.get_by_text("These counts are out of date")
        button = page.get_by_role("button", name=re.compile(r"^Import [\d,]+ customers$"))
        started = page.get_by_text("on the server: you can go to another page")
        deadline = time.monotonic() + STEP_TIMEOUT_MS / 1000
        while time.monotonic() < deadline:
            hooks.wait_idle(page)
            if started.count() or done.count():
                return
            if stale.count():
                page.get_by_role("button", name="Dry run (saves nothing)").click()
            elif button.count() and button.is_enabled():
                button.click()
            else:
                hooks.check(page)
            page.wait_for_timeout(500)
        shot = Path(tempfile.gettempdir()) / f"bench-import-{flow}-{number}.png"
        page.screenshot(path=str(shot), full_page=True)
        raise TimeoutError(f"the import did not start (the page: {shot})")

    step("import (runs on the server; result shown)", start_import, done)
    created, failed = parse_counts(done.inner_text())
    with run.lock:
        run.created, run.failed = run.created + created, run.failed + failed
    step("failure report (CSV)", lambda: hooks.download(page, "Download failure report (CSV)"), None)
    step("failure report (Excel)",
         lambda: hooks.download(page, "Download failure report (Excel, failing cells marked)"), None)
    step("history",
         lambda: goto_page(page, "History"),
         page.get_by_text(re.compile(r"^Run #\d+: [\d,]+ rows")))
    page.context.close()


def parse_counts(text: str) -> tuple[int, int]:
    """(created, failed) of "Run #2: Created 0 customers; 98,085 unchanged; 1,915 rows failed."."""
    def count(pattern: str) -> int:
        found = re.search(pattern, text)
        return int(found.group(1).replace(",", "")) if found else 0
    return count(r"Created (\d[\d,]*) customer"), count(r"(\d[\d,]*) rows? failed")


def table(runs: list[Run]) -> str:
    """Steps down, and for each size: seconds, RSS after the step, peak RSS during the step (MB)."""
    def row(*cells: object) -> str:
        return "| " + " | ".join(str(c) for c in cells) + " |"

    header = ["step"] + [f"{label} ({r.rows:,} rows)" for r in runs
                         for label in ("s", "RSS after, MB", "peak in step, MB")]
    lines = [row(*header), "|---|" + "---:|" * (3 * len(runs))]
    lines.append(row("server started, idle", *[c for r in runs for c in ("", f"{mb(r.idle_kb):.0f}", "")]))
    lines.append(row("first page shown", *[c for r in runs for c in ("", f"{mb(r.first_page_kb):.0f}", "")]))
    by_name = [{s.name: s for s in r.steps} for r in runs]
    for name in (s.name for s in runs[0].steps):
        cells = []
        for steps in by_name:
            s = steps.get(name)
            cells += ("", "", "") if s is None else (
                f"{s.seconds:.2f}", f"{mb(s.rss_after_kb):.0f}", f"{mb(s.peak_kb):.0f}")
        lines.append(row(name, *cells))
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
        if r.after_wait is not None:
            out.append(f"  - {r.after_wait[0]:.0f} s after the last tab closed: RSS {mb(r.after_wait[1]):.0f} MB")
        for s in r.steps:
            if s.waited:
                out.append(f"  - {s.name} waited {s.seconds:.1f} s in all; the page said: {s.waited}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--flows", type=int, default=1,
                        help="run the whole flow this many times on each server (new session, new rows)")
    parser.add_argument("--pause", type=float, default=0, help="seconds to wait between flows")
    parser.add_argument("--parallel", type=int, default=1,
                        help="analysts running each flow at the same time (each its own browser session)")
    parser.add_argument("--after", type=float, default=0,
                        help="after the last flow, wait this many seconds and record RSS (closed tabs freed)")
    parser.add_argument("--invalid-share", type=float, default=0.02,
                        help="share of generated rows that fail (0.5, 1.0: the failure sweep)")
    parser.add_argument("--same-file", action="store_true",
                        help="every flow uploads the first flow's file: from the 2nd flow on every row already exists")
    parser.add_argument("--database-url", help="default: a fresh SQLite file per size")
    parser.add_argument("--no-write", action="store_true", help="do not write bench/RESULTS.md")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp:
        runs = [measure(rows, Path(tmp), args.database_url, args.flows, args.pause, args.parallel, args.after,
                        args.invalid_share, args.same_file)
                for rows in args.rows]
    database = "PostgreSQL" if args.database_url and args.database_url.startswith("postgres") else "SQLite"
    body = (
        f"{database}, one fresh `streamlit run app.py` server per size, Chromium driving it; "
        f"{dt.date.today():%Y-%m-%d}. `python bench/bench_dashboard.py --rows "
        + " ".join(str(r) for r in args.rows)
        + (f" --flows {args.flows}" if args.flows > 1 else "") + (f" --parallel {args.parallel}" if args.parallel > 1 else "")
        + (f" --after {args.after:g}" if args.after else "") + "`\n\n"
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
