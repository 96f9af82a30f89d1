"""Memory of the real dashboard server when one analyst opens the same 100,000-row workspace in six tabs.

A fresh server (under the 512 MB memory cgroup of ../shared/tools/in-512mb with --cgroup, as the host runs
it) on an empty SQLite file; Chromium uploads the workbook in one tab (the file is kept as a workspace and
the address names it: `?ws=1`), closes that tab, then opens the address in `--tabs` new tabs (each its own
browser session, as a tab or a refresh is) at once, and waits until every tab shows the file restored.
Recorded: the server's VmRSS after the upload and after the tabs, its VmHWM (the kernel's peak RSS), and
with --cgroup the cgroup's peak (resident memory plus page cache) and its OOM kills.

    .venv/bin/python bench/bench_tabs.py                       # 100,000 rows, six tabs
    .venv/bin/python bench/bench_tabs.py --rows 10000 --tabs 3 --cgroup
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from bench.workbook import customer_workbook  # noqa: E402
from tests.e2e.conftest import _SERVER_ENV_DROP, Server, launch_chromium, new_page, upload_file, wait_idle  # noqa: E402

IN_CGROUP = Path(os.environ.get("IN_512MB", "/work/shared/tools/in-512mb"))
STEP_TIMEOUT_MS = 900_000


class CgroupServer(Server):
    """The server started by in-512mb (a hard memory limit, as the host's): `pid` is the Python server's."""

    def __init__(self, *args: object, limit_mb: int = 512, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.limit_mb = limit_mb

    def start(self, timeout: float = 90) -> Server:
        env = {k: v for k, v in os.environ.items() if k not in _SERVER_ENV_DROP}
        env.update({"DATABASE_URL": f"sqlite:///{self.db_path}", "PYTHONUNBUFFERED": "1"})
        env.update(self.extra_env)
        command = [
            str(IN_CGROUP), "-m", str(self.limit_mb), sys.executable, *self.launcher, "run", "app.py",
            "--server.headless", "true", "--server.port", str(self.port), "--server.address", "127.0.0.1",
            "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
        ]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        self.wait_healthy(timeout)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        return int(children[0])  # in-512mb's bash waits for the server it started

    def cgroup_peak_mb(self) -> int:
        line = next(x for x in Path(f"/proc/{self.pid}/cgroup").read_text().splitlines() if ":memory:" in x)
        peak = Path("/sys/fs/cgroup/memory" + line.split(":", 2)[2]) / "memory.max_usage_in_bytes"
        return int(peak.read_text()) // (1 << 20)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.pid, 15)
            self.proc.wait(timeout=30)


def mb(kb: int) -> float:
    return kb / 1024


def measure(rows: int, tabs: int, workdir: Path, cgroup: bool) -> dict[str, object]:
    cls = CgroupServer if cgroup else Server
    server = cls(workdir / "customers.db", workdir / "server.log").start()
    found: dict[str, object] = {"rows": rows, "tabs": tabs, "cgroup": cgroup}
    data = customer_workbook(rows, seed=10, start=0, invalid_share=0.02)
    try:
        time.sleep(1)
        found["idle_mb"] = mb(server.status("VmRSS"))
        with sync_playwright() as playwright:
            expect.set_options(timeout=STEP_TIMEOUT_MS)
            browser = launch_chromium(playwright)
            try:
                first = new_page(browser, server)
                first.set_default_timeout(STEP_TIMEOUT_MS)
                upload_file(first, "customers.xlsx", data)
                expect(first.get_by_text("rows read from sheet")).to_be_visible()
                wait_idle(first, STEP_TIMEOUT_MS)
                for _ in range(100):
                    if "ws=" in first.url:
                        break
                    first.wait_for_timeout(100)
                address = first.url
                assert "ws=" in address, address
                found["after_upload_mb"] = mb(server.status("VmRSS"))
                first.context.close()
                started = time.perf_counter()
                pages = []
                for _ in range(tabs):
                    context = browser.new_context(viewport={"width": 1280, "height": 900})
                    page = context.new_page()
                    page.set_default_timeout(STEP_TIMEOUT_MS)
                    page.goto(address, wait_until="commit")
                    pages.append(page)
                for page in pages:
                    expect(page.get_by_text("Your work on this file was restored")).to_be_visible()
                    wait_idle(page, STEP_TIMEOUT_MS)
                found["tabs_seconds"] = time.perf_counter() - started
                found["after_tabs_mb"] = mb(server.status("VmRSS"))
                found["hwm_mb"] = mb(server.status("VmHWM"))
                if isinstance(server, CgroupServer):
                    found["cgroup_peak_mb"] = server.cgroup_peak_mb()
                for page in pages:
                    page.context.close()
            finally:
                browser.close()
    finally:
        server.stop()
    if cgroup:
        log = (workdir / "server.log").read_text(errors="replace")
        found["cgroup_line"] = next((x for x in log.splitlines() if x.startswith("in-512mb:")), "")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--tabs", type=int, default=6)
    parser.add_argument("--cgroup", action="store_true", help="run the server under in-512mb")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        found = measure(args.rows, args.tabs, Path(tmp), args.cgroup)
    for key, value in found.items():
        print(f"{key}: {value:.0f}" if isinstance(value, float) else f"{key}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
