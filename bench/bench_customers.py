"""Benchmark: the Customers page's queries with 1,000,000 customers on PostgreSQL (issue 9).

Usage: .venv/bin/python bench/bench_customers.py [--rows 1000000] [--pg-admin-url URL] [--keep] [--reuse]
       [--dashboard] [--no-write]

Seeds a scratch database `bench_customers` (dropped and made again; `--keep` leaves it for a rerun with
`--reuse`) with N customers created by 10 runs and 2% of them updated by an 11th run (customer_changes),
loaded with COPY, then ANALYZEd. Times each query through the engine's functions (importer.database.customers):
search by a mark, a phone fragment, a name, an email and a term that matches nothing; the first page,
a deep page (keyset and OFFSET); a region filter; a run filter; a customer's detail. Each is run once to
warm up, then REPEAT times: the median and the slowest are reported. Target: under 300 ms each.

Then the export of every customer (CSV, zipped CSV and XLSX, importer.output.customer_export) streamed to a file, each
in a child process that reads its own RSS before the export (the baseline) and its peak (VmHWM) after it.
Target: at most 300 MB. With --dashboard, the page's export buttons are also clicked in Chromium on a
dashboard server over the same database, and the server's RSS is read before and its peak after each.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results import write_section  # noqa: E402
from importer.database.customers import SEARCH_COUNT_CAP, CustomerPage, customer_detail, search_customers  # noqa: E402
from importer.database.schema import ensure_schema, make_engine  # noqa: E402
from schemas.customer import REGIONS  # noqa: E402

DATABASE = "bench_customers"
RUNS = 10
REPEAT = 5
TARGET_MS = 300
TARGET_MB = 300
FIRST = ["Kofi", "Ama", "Kwame", "Akosua", "Yaw", "Abena", "Kwaku", "Adwoa", "Kwesi", "Efua", "Kojo", "Esi",
         "Fiifi", "Araba", "Nana", "Afia", "Yaa", "Kobina", "Ekua", "Mensa", "Selasi", "Edem", "Dzifa",
         "Elikem", "Mawuli", "Sena", "Ibrahim", "Fatima", "Abdul", "Zainab", "Samuel", "Grace", "Daniel",
         "Mercy", "Emmanuel", "Comfort", "Isaac", "Patience", "Joseph", "Gifty"]
LAST = ["Mensah", "Owusu", "Boateng", "Asante", "Osei", "Darko", "Addo", "Appiah", "Agyemang", "Amoah",
        "Ansah", "Antwi", "Adjei", "Acheampong", "Bonsu", "Danso", "Frimpong", "Gyamfi", "Kyei", "Nkrumah",
        "Ofori", "Opoku", "Quaye", "Sarpong", "Tetteh", "Yeboah", "Amponsah", "Badu", "Donkor", "Fosu",
        "Kumi", "Larbi", "Nyarko", "Obeng", "Poku", "Sackey", "Wiredu", "Agbeko", "Dogbe", "Fiagbe",
        "Kpodo", "Tsikata", "Abubakar", "Alhassan", "Iddrisu", "Mahama", "Seidu", "Yakubu", "Bawa",
        "Issah", "Quartey", "Lamptey", "Aryee", "Okine", "Tagoe", "Annan", "Ocran", "Essien", "Arthur", "Hagan"]
PREFIXES = ["KSI", "PM", "ACC", "TMA", "GHX", "KMS", "TKD"]
DOMAINS = ["gmail.com", "yahoo.com", "outlook.com", "example.com.gh"]
REGION_CODES = list(REGIONS)


def customer(i: int) -> tuple:
    """Customer i (0-based): unique mark, phone and email; ~70% have an email, ~10% are businesses."""
    first, last = FIRST[i % len(FIRST)], LAST[(i // len(FIRST)) % len(LAST)]
    mark = f"{PREFIXES[i % len(PREFIXES)]}-{i:06d} {first.upper()}"
    email = f"{first.lower()}.{last.lower()}{i}@{DOMAINS[i % len(DOMAINS)]}" if i % 10 < 7 else None
    phone = f"+2332{(4, 0, 4, 7, 5)[i % 5]}{i:07d}"
    business = i % 10 == 9
    return (i + 1, mark, first, last, email, phone, REGION_CODES[(i * 7) % len(REGION_CODES)],
            f"{last} Trading Ltd" if business else None, None, "BUSINESS" if business else "INDIVIDUAL")


def _copy_text(rows: Iterator[tuple]) -> Iterator[str]:
    for row in rows:
        yield "\t".join("\\N" if v is None else str(v) for v in row) + "\n"


class _Lines(io.RawIOBase):
    """A file object over an iterator of text lines, for psycopg2's copy_expert."""

    def __init__(self, lines: Iterator[str]) -> None:
        self.lines, self.rest = lines, b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while len(self.rest) < len(buffer):
            chunk = "".join(line for _, line in zip(range(2_000), self.lines, strict=False))
            if not chunk:
                break
            self.rest += chunk.encode()
        size = min(len(buffer), len(self.rest))
        buffer[:size] = self.rest[:size]
        self.rest = self.rest[size:]
        return size


def _copy(conn: sa.Connection, table: str, columns: str, rows: Iterator[tuple]) -> None:
    raw = conn.connection.dbapi_connection
    with raw.cursor() as cursor:  # type: ignore[union-attr]
        cursor.copy_expert(f"COPY {table} ({columns}) FROM STDIN", io.BufferedReader(_Lines(_copy_text(rows)),
                                                                                       1 << 20))


def seed(url: str, rows: int) -> dict[str, int]:
    """N customers from RUNS runs, 2% of them updated by one more run; ids of the runs."""
    engine = make_engine(url)
    ensure_schema(engine)
    per_run = -(-rows // RUNS)
    started = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with engine.begin() as conn:
        runs = [(r + 1, f"branch-list-{r + 1:02d}.xlsx", f"{r + 1:064x}", "Customers", "completed",
                 min(per_run, rows - r * per_run), min(per_run, rows - r * per_run), 0, 0, 0,
                 min(per_run, rows - r * per_run), (started + dt.timedelta(days=r)).isoformat())
                for r in range(RUNS)]
        updated = rows // 50
        runs.append((RUNS + 1, "branch-list-update.xlsx", f"{RUNS + 1:064x}", "Customers", "completed", updated,
                     0, 0, updated, 0, updated, (started + dt.timedelta(days=RUNS)).isoformat()))
        _copy(conn, "import_runs", "id, file_name, sha256, sheet, status, total_attempted, total_created, "
              "total_failed, total_updated, total_unchanged, rows_done, started_at", iter(runs))
        conn.execute(sa.text("SELECT setval('import_runs_id_seq', :n)"), {"n": RUNS + 1})

        def people() -> Iterator[tuple]:
            for i in range(rows):
                run = i // per_run
                yield (*customer(i), (started + dt.timedelta(days=run)).isoformat(), run + 1, i % per_run + 2)

        _copy(conn, "customers", "id, shipping_mark, first_name, last_name, email, phone, region, company_name, "
              "nickname, user_type, created_at, import_run_id, source_row_number", people())
        conn.execute(sa.text("SELECT setval('customers_id_seq', :n)"), {"n": rows})

        def changes() -> Iterator[tuple]:
            names = ("shipping_mark", "first_name", "last_name", "email", "phone", "region", "company_name",
                     "nickname", "user_type")
            for n in range(updated):
                i = n * 50
                before = dict(zip(names, customer(i)[1:], strict=True))
                after = {**before, "nickname": f"Nick{i}"}
                yield (n + 1, i + 1, RUNS + 1, n + 2, json.dumps(before), json.dumps(after),
                       (started + dt.timedelta(days=RUNS)).isoformat())

        _copy(conn, "customer_changes", "id, customer_id, run_id, source_row_number, before, after, changed_at",
              changes())
        conn.execute(sa.text("UPDATE customers SET nickname = 'Nick' || (id - 1) WHERE (id - 1) % 50 = 0"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))
    engine.dispose()
    return {"first": 1, "update": RUNS + 1}


def timed(call: Callable[[], object]) -> tuple[float, float, object]:
    """(median ms, slowest ms, last result) of REPEAT calls after one to warm up."""
    result = call()
    times = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        result = call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), max(times), result


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def export_child(url: str, fmt: str, path: str) -> None:
    """In a fresh process: RSS once the engine is connected (baseline), then the export to path and VmHWM."""
    from importer.output.customer_export import export_customers

    engine = make_engine(url)
    search_customers(engine, limit=1)  # connected, modules loaded: what any export starts from
    baseline = _status_mb("VmRSS")
    started = time.perf_counter()
    with open(path, "wb") as out:
        rows = export_customers(engine, fmt, out)
    print(json.dumps({"rows": rows, "seconds": time.perf_counter() - started, "baseline_mb": baseline,
                      "peak_mb": _status_mb("VmHWM"), "bytes": os.path.getsize(path)}))


def export_in_child(url: str, fmt: str, folder: Path) -> dict:
    done = subprocess.run([sys.executable, __file__, "--export-child", url, fmt, str(folder / f"customers.{fmt}")],
                          cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def dashboard_exports(url: str, folder: Path, rows: int) -> list[dict]:
    """The page's export buttons clicked in Chromium on a dashboard server over the database (every customer
    as zipped CSV, then one run's as Excel): time, size, the server's RSS before and its peak after each."""
    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import Server, launch_chromium, wait_idle

    server = Server(folder / "unused.db", folder / "server.log", env={"DATABASE_URL": url, "APP_PASSWORD": "pw"})
    server.start()
    out = []
    try:
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            context = browser.new_context(viewport={"width": 1280, "height": 1400}, accept_downloads=True)
            context.set_default_timeout(900_000)
            page = context.new_page()
            page.goto(server.url + "/customers")
            wait_idle(page)
            page.get_by_role("textbox", name="Password").fill("pw")
            page.keyboard.press("Enter")
            wait_idle(page)
            page.get_by_text("Rows 1-50 of").wait_for()
            for what, label in ((f"all {rows:,}: Export as CSV (zipped)", "Export as CSV (zipped)"),
                                (f"one run's {rows // RUNS:,}: Export as Excel", "Export as Excel")):
                if "Excel" in label:  # Excel takes up to 250,000 here: the customers of run #5
                    page.locator("[data-testid=stSelectbox]").filter(has_text="Created or updated by").click()
                    page.get_by_role("option", name="#5 ·", exact=False).first.click()
                    wait_idle(page)
                before = server.status("VmRSS") / 1024
                started = time.perf_counter()
                # The button builds the file on the server's disk; its Save link sends it from there (ui.downloads).
                page.get_by_role("button", name=label).click()
                link = page.get_by_role("link", name=re.compile(r"^Save "))
                link.wait_for(timeout=900_000)
                response = context.request.get(server.url + "/" + (link.get_attribute("href") or ""), timeout=900_000)
                path = folder / "export.bin"
                path.write_bytes(response.body())
                out.append({"what": what, "seconds": time.perf_counter() - started, "bytes": path.stat().st_size,
                            "before_mb": before, "peak_mb": server.status("VmHWM") / 1024,
                            "after_mb": server.status("VmRSS") / 1024})
                print(f"dashboard {out[-1]}", flush=True)
                path.unlink()
            browser.close()
    finally:
        server.stop()
    return out


def sqlite_queries(rows: int) -> list[tuple[str, float, float, str]]:
    """The text searches and pages on SQLite (no trigram index there: a search reads the table)."""
    from importer.database.schema import customers, import_runs

    columns = ("id", "shipping_mark", "first_name", "last_name", "email", "phone", "region", "company_name",
               "nickname", "user_type")
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/customers.db")
        ensure_schema(engine)
        with engine.begin() as conn:
            conn.execute(import_runs.insert(), [{"id": 1, "file_name": "a.xlsx", "sha256": "a" * 64,
                                                 "status": "completed", "started_at": dt.datetime.now(dt.UTC)}])
            for start in range(0, rows, 50_000):
                conn.execute(customers.insert(), [dict(zip(columns, customer(i), strict=True), import_run_id=1,
                                                       source_row_number=i + 2)
                                                  for i in range(start, min(rows, start + 50_000))])
        some = rows // 3 + 5
        cap = {"count_cap": SEARCH_COUNT_CAP}
        cases: list[tuple[str, Callable[[], object]]] = [
            (f"search a mark `{customer(some)[1].split()[0]}`",
             lambda: search_customers(engine, customer(some)[1].split()[0], **cap)),
            ("search a full name `Kofi Owusu`", lambda: search_customers(engine, "Kofi Owusu", **cap)),
            ("search a broad term `ma` (count stops at 10,000)", lambda: search_customers(engine, "ma", **cap)),
            ("search with no match `zzqx`", lambda: search_customers(engine, "zzqx", **cap)),
            ("first page, exact count of all", lambda: search_customers(engine)),
            ("deep page (keyset, three quarters in)", lambda: search_customers(engine, after_id=rows * 3 // 4)),
            ("region filter (Volta), exact count", lambda: search_customers(engine, region="VOLTA")),
        ]
        for what, call in cases:
            median, slowest, result = timed(call)
            assert isinstance(result, CustomerPage)
            shown = f"{'more than ' if result.capped else ''}{result.total:,} match"
            print(f"SQLite {what}: {median:.1f} ms (slowest {slowest:.1f}) {shown}", flush=True)
            out.append((f"SQLite, {rows:,}: {what}", median, slowest, shown))
        engine.dispose()
    return out


def import_cost(admin: sa.Engine, rows: int, rounds: int) -> list[tuple[bool, float]]:
    """What the trigram index costs a load: a clean import of `rows` rows (bench_reimport's file, the CLI in
    a fresh process) into a fresh database with the index and one without it, alternating, `rounds` times."""
    from bench.bench_reimport import row, run_cli, write_csv

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clean.csv"
        write_csv(path, (row(i) for i in range(rows)))
        for _ in range(rounds):
            for with_index in (True, False):
                name = f"{DATABASE}_load"
                with admin.connect() as conn:
                    conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    conn.execute(sa.text(f"CREATE DATABASE {name}"))
                url = admin.url.set(database=name).render_as_string(hide_password=False)
                engine = make_engine(url)
                ensure_schema(engine)
                if not with_index:
                    with engine.begin() as conn:
                        conn.execute(sa.text("DROP INDEX ix_customers_search_trgm"))
                engine.dispose()
                seconds, _, _ = run_cli(path, url)
                print(f"import of {rows:,} rows, trigram index {'on' if with_index else 'off'}: {seconds:.1f} s",
                      flush=True)
                out.append((with_index, seconds))
                with admin.connect() as conn:
                    conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    return out


def queries(url: str, runs: dict[str, int], rows: int) -> list[tuple[str, float, float, str]]:
    """(what, median ms, slowest ms, result) for each query of the page."""
    engine = make_engine(url)
    some = rows // 3 + 5  # a customer in the middle: KSI-, PM-... marks, a phone, an email of its own
    mark = customer(some)[1].split()[0]
    phone = customer(some)[5]
    local = "0" + phone[4:7] + " " + phone[7:10] + " " + phone[10:]  # as typed: 024 000 1234
    email = customer(some - some % 10)[4] or ""
    cap = {"count_cap": SEARCH_COUNT_CAP}
    cases: list[tuple[str, Callable[[], object]]] = [
        (f"search a mark `{mark}`", lambda: search_customers(engine, mark, **cap)),
        (f"search a phone as typed `{local}`", lambda: search_customers(engine, local, **cap)),
        (f"search a phone fragment `{phone[-7:]}`", lambda: search_customers(engine, phone[-7:], **cap)),
        ("search a full name `Kofi Owusu`", lambda: search_customers(engine, "Kofi Owusu", **cap)),
        ("search a last name `owusu` (count stops at 10,000)", lambda: search_customers(engine, "owusu", **cap)),
        ("search a broad term `ma` (count stops at 10,000)", lambda: search_customers(engine, "ma", **cap)),
        (f"search an email `{email.split('@')[0]}@`", lambda: search_customers(engine, email.split("@")[0] + "@",
                                                                               **cap)),
        ("search with no match `zzqx`", lambda: search_customers(engine, "zzqx", **cap)),
        ("first page, exact count of all", lambda: search_customers(engine)),
        ("deep page (keyset: after id 750,000)", lambda: search_customers(engine, after_id=rows * 3 // 4)),
        ("deep page (OFFSET 750,000, not used by the page)", lambda: search_customers(engine, offset=rows * 3 // 4)),
        ("region filter (Volta), exact count", lambda: search_customers(engine, region="VOLTA")),
        ("run filter (a run that created 100,000)", lambda: search_customers(engine, run_id=runs["first"] + 4)),
        ("run filter (the run that updated 20,000)", lambda: search_customers(engine, run_id=runs["update"])),
        ("run + region + text together", lambda: search_customers(engine, "kofi", region="VOLTA",
                                                                  run_id=runs["first"] + 4, **cap)),
        ("a customer's detail (created and updated)", lambda: customer_detail(engine, 1)),
    ]
    out = []
    for what, call in cases:
        median, slowest, result = timed(call)
        if isinstance(result, CustomerPage):
            shown = f"{'more than ' if result.capped else ''}{result.total:,} match, {len(result.rows)} shown"
        else:
            shown = f"{len(result['changes'])} update(s)" if isinstance(result, dict) else "-"
        print(f"{what}: {median:.1f} ms (slowest {slowest:.1f}) {shown}", flush=True)
        out.append((what, median, slowest, shown))
    engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--pg-admin-url", default=os.environ.get(
        "TEST_PG_ADMIN_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--reuse", action="store_true", help="use bench_customers as it is (seeded before)")
    parser.add_argument("--keep", action="store_true", help="leave bench_customers for a --reuse")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    parser.add_argument("--dashboard", action="store_true",
                        help="also click the page's export buttons in Chromium and measure the server")
    parser.add_argument("--import-cost", type=int, default=0, metavar="ROUNDS",
                        help="also time a clean 100,000-row import with and without the trigram index")
    parser.add_argument("--sqlite-rows", type=int, default=0, metavar="N",
                        help="also time the searches on a SQLite file of N customers")
    parser.add_argument("--export-child", nargs=3, metavar=("URL", "FORMAT", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.export_child:
        export_child(*args.export_child)
        return
    admin = sa.create_engine(args.pg_admin_url, isolation_level="AUTOCOMMIT")
    url = admin.url.set(database=DATABASE).render_as_string(hide_password=False)
    try:
        if not args.reuse:
            with admin.connect() as conn:
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
                conn.execute(sa.text(f"CREATE DATABASE {DATABASE}"))
            started = time.perf_counter()
            runs = seed(url, args.rows)
            print(f"seeded {args.rows:,} customers in {time.perf_counter() - started:.0f} s", flush=True)
        else:
            runs = {"first": 1, "update": RUNS + 1}
        with make_engine(url).connect() as conn:
            trigram = bool(conn.execute(sa.text(
                "SELECT 1 FROM pg_indexes WHERE indexname = 'ix_customers_search_trgm'")).first())
        load = os.getloadavg()[0]
        measured = queries(url, runs, args.rows)
        with tempfile.TemporaryDirectory() as tmp:
            exports = {fmt: export_in_child(url, fmt, Path(tmp)) for fmt in ("csv", "zip", "xlsx")}
            for fmt, e in exports.items():
                print(f"export {fmt}: {e}", flush=True)
            clicked = dashboard_exports(url, Path(tmp), args.rows) if args.dashboard else []
        loads = import_cost(admin, 100_000, args.import_cost) if args.import_cost else []
        lite = sqlite_queries(args.sqlite_rows) if args.sqlite_rows else []
    finally:
        if not args.keep:
            with admin.connect() as conn:
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
        admin.dispose()
    lines = ["| query (importer.database.customers) | median ms | slowest ms | result |", "|---|---:|---:|---|"]
    lines += [f"| {what} | {median:.1f} | {slowest:.1f} | {shown} |" for what, median, slowest, shown in measured]
    slowest_query = max(m[2] for m in measured if "OFFSET" not in m[0])
    lines += ["", "| export (importer.output.customer_export, to a file) | s | rows | file MB | RSS before, MB | peak (VmHWM), MB |",
              "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {'CSV, zipped' if fmt == 'zip' else fmt.upper()} | {e['seconds']:.1f} | {e['rows']:,} | {e['bytes'] / 2**20:.0f} | "
              f"{e['baseline_mb']:.0f} | {e['peak_mb']:.0f} |" for fmt, e in exports.items()]
    if clicked:
        lines += ["", "| the page's button, in Chromium (whole dashboard server) | s | file MB | server RSS before, MB | "
                  "peak since start (VmHWM), MB | RSS after, MB |", "|---|---:|---:|---:|---:|---:|"]
        lines += [f"| {c['what']} | {c['seconds']:.1f} | {c['bytes'] / 2**20:.0f} | {c['before_mb']:.0f} | "
                  f"{c['peak_mb']:.0f} | {c['after_mb']:.0f} |" for c in clicked]
    if lite:
        lines += ["", "| on SQLite (the embedded default; no trigram index) | median ms | slowest ms | result |",
                  "|---|---:|---:|---|"]
        lines += [f"| {what} | {median:.1f} | {slowest:.1f} | {shown} |" for what, median, slowest, shown in lite]
    if loads:
        on = [t for index, t in loads if index]
        off = [t for index, t in loads if not index]
        lines += ["", "| a clean import of 100,000 rows (`python -m importer import`, fresh database) | runs, s | "
                  "median s |", "|---|---|---:|"]
        lines += [f"| trigram index {word} | {', '.join(f'{t:.1f}' for t in times)} | {statistics.median(times):.1f} |"
                  for word, times in (("on", on), ("off (dropped)", off))]
    peak = max(e["peak_mb"] for e in exports.values())
    body = (f"{args.rows:,} customers (10 runs of {args.rows // RUNS:,}, 2% then updated by an 11th), PostgreSQL, "
            f"{time.strftime('%Y-%m-%d')}; `bench/bench_customers.py`. Trigram index "
            f"{'present' if trigram else 'ABSENT (pg_trgm not available)'}. Each query once to warm up, then "
            f"{REPEAT} times; a text search counts up to {SEARCH_COUNT_CAP:,}. Load average at the start: "
            f"{load:.1f} on {os.cpu_count()} cores (times grow with it). Each export in a fresh process: "
            f"RSS once connected, then its peak. Targets: each query under {TARGET_MS} ms (slowest of the page's: "
            f"{slowest_query:.0f} ms, {'met' if slowest_query < TARGET_MS else 'NOT met'}), export at most "
            f"{TARGET_MB} MB (peak {peak:.0f} MB, {'met' if peak <= TARGET_MB else 'NOT met'}).\n\n"
            + "\n".join(lines))
    print(body)
    if not args.no_write:
        write_section("Customers page (1,000,000 customers)", body)


if __name__ == "__main__":
    main()
