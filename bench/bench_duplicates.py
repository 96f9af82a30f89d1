"""Benchmark: possible duplicates (issue 11, part 8) of an upload against the stored customers.

Usage: .venv/bin/python bench/bench_duplicates.py [--rows 100000] [--customers 100000]
       [--pg-admin-url URL] [--no-write]

For each database (SQLite, PostgreSQL) a fresh database gets N customers; an upload of M rows is built as
Checked.normalised holds it (pandas' string dtype), with planted near misses: 1% of rows are a customer
with one phone digit changed, 0.3% a customer's e-mail with its dots removed and a +tag, 0.3% a
customer's name and company under another mark, 0.3% the previous row's name with two phone digits
swapped. Two child processes per database: the baseline builds the same frame and stops; the search
builds it, then runs `importer.review.lookalikes.find_possible_duplicates` against the database (timed).
Memory is each child's VmHWM (peak RSS); the search's extra memory is its VmHWM minus the baseline's.
Targets: at most 5 s and 150 MB extra.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results import write_section  # noqa: E402

FIRST = ["Kofi", "Ama", "Kwame", "Abena", "Yaw", "Akosua", "Kwabena", "Adwoa", "Kwaku", "Afua", "Kojo",
         "Efua", "Kwesi", "Esi", "Fiifi", "Araba", "John", "Mary", "Samuel", "Grace", "Emmanuel", "Comfort",
         "Daniel", "Joyce", "Isaac", "Mercy", "Joseph", "Gifty", "Michael", "Felicia", "Prince", "Vida",
         "Richard", "Patience", "Eric", "Rita", "George", "Linda", "Francis", "Doris"]
LAST = ["Mensah", "Owusu", "Boateng", "Asante", "Osei", "Darko", "Appiah", "Agyeman", "Ofori", "Amoah",
        "Addo", "Annan", "Quaye", "Tetteh", "Nkrumah", "Acheampong", "Ansah", "Badu", "Bonsu", "Danso",
        "Frimpong", "Gyamfi", "Kyei", "Larbi", "Manu", "Nyarko", "Opoku", "Poku", "Sarpong", "Yeboah",
        "Adjei", "Amponsah", "Antwi", "Baah", "Donkor", "Fosu", "Gyasi", "Kusi", "Marfo", "Wiredu"]
COLUMNS = ["shipping_mark", "first_name", "last_name", "email", "phone", "region", "company_name", "nickname",
           "user_type"]


def people(count: int, phones: np.ndarray, mark: str, rng: np.random.Generator) -> pd.DataFrame:
    """`count` distinct people (names from small pools, unique phones and e-mails, 20% with a company)."""
    first = rng.choice(FIRST, count)
    last = rng.choice(LAST, count)
    numbers = np.arange(count)
    email = [f"{f}.{s}{n}@example.com".lower() if n % 10 < 7 else None
             for f, s, n in zip(first, last, numbers, strict=True)]
    company = [f"{s} Trading {n % 5000}" if n % 5 == 0 else None for s, n in zip(last, numbers, strict=True)]
    return pd.DataFrame({
        "shipping_mark": [f"{mark}{n}" for n in numbers], "first_name": first, "last_name": last,
        "email": email, "phone": [f"+233{p}" for p in phones], "region": "GREATER_ACCRA",
        "company_name": company, "nickname": None, "user_type": "INDIVIDUAL",
    })


def phone_pool(total: int, rng: np.random.Generator) -> np.ndarray:
    """Unique 9-digit Ghana mobile numbers (24x, 54x, 55x, 20x, 50x)."""
    prefixes = np.array([24, 54, 55, 20, 50])
    # Drawn with repeats, then made unique (choice without replacement would hold a 50-million permutation,
    # whose peak would hide the search's in VmHWM).
    picked = np.unique(rng.integers(0, 5 * 10_000_000, size=total + total // 10 + 100))
    picked = rng.permutation(picked)[:total]
    return np.array([f"{prefixes[p // 10_000_000]}{p % 10_000_000:07d}" for p in picked])


def data(rows: int, stored: int, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """(customers, upload as Checked.normalised holds it, planted pairs by rule)."""
    rng = np.random.default_rng(seed)
    phones = phone_pool(rows + stored, rng)
    customers = people(stored, phones[:stored], "CM", rng)
    upload = people(rows, phones[stored:], "UM", rng)
    upload["email"] = upload["email"].map(lambda e: e.replace("@", ".u@") if isinstance(e, str) else None)
    upload["company_name"] = upload["company_name"].map(lambda c: c + " U" if isinstance(c, str) else None)
    planted = {"name_phone": rows // 100, "email": rows * 3 // 1000, "name_company": rows * 3 // 1000,
               "in_file": rows * 3 // 1000}
    spots = rng.choice(np.arange(1, rows), size=sum(planted.values()), replace=False)
    taken = 0
    for rule, count in planted.items():
        for spot in spots[taken:taken + count].tolist():
            source = customers.iloc[int(rng.integers(stored))]
            if rule == "name_phone":
                digits = list(source["phone"][4:])
                at = int(rng.integers(2, len(digits)))
                digits[at] = str((int(digits[at]) + 1) % 10)
                upload.loc[spot, ["first_name", "last_name", "phone"]] = [
                    source["first_name"], source["last_name"], "+233" + "".join(digits)]
            elif rule == "email":
                local, domain = f"{source['first_name']}.{source['last_name']}{spot}".lower(), "example.com"
                customers.loc[source.name, "email"] = f"{local}@{domain}"
                upload.loc[spot, "email"] = f"{local.replace('.', '')}+shop@{domain}"
            elif rule == "name_company":
                company = source["company_name"] if isinstance(source["company_name"], str) else f"{source['last_name']} Farms {spot}"
                customers.loc[source.name, "company_name"] = company
                upload.loc[spot, ["first_name", "last_name", "company_name"]] = [
                    source["first_name"], source["last_name"], company.upper() + " LTD"]
            else:
                before = upload.loc[spot - 1]
                digits = list(before["phone"][4:])
                digits[4], digits[5] = digits[5], digits[4]
                if digits[4] == digits[5]:
                    digits[4] = str((int(digits[4]) + 1) % 10)
                upload.loc[spot, ["first_name", "last_name", "phone"]] = [
                    before["first_name"], before["last_name"], "+233" + "".join(digits)]
        taken += count
    upload.index = pd.Index(range(2, rows + 2), name="source_row_number")
    return customers, upload.astype("str"), planted


def seed(url: str, customers: pd.DataFrame) -> None:
    from importer.database.matching import insert_many
    from importer.database.schema import ensure_schema, make_engine

    engine = make_engine(url)
    ensure_schema(engine)
    records = [tuple(None if pd.isna(v) else v for v in r) for r in customers[COLUMNS].itertuples(index=False)]
    with engine.begin() as conn:
        insert_many(conn, "customers", COLUMNS, records)
    engine.dispose()


def vm_hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def worker(mode: str, url: str, rows: int, stored: int) -> None:
    """A child: build the upload frame (baseline), then, in `search` mode, find the possible duplicates."""
    _, upload, planted = data(rows, stored)
    del _
    out: dict[str, object] = {"frame_mb": round(upload.memory_usage(deep=True).sum() / 2**20, 1)}
    # Both children import the same modules and open the engine: the difference is the search itself.
    from importer.database.schema import make_engine
    from importer.review.lookalikes import find_possible_duplicates

    engine = make_engine(url)
    with engine.connect():
        pass
    if mode == "search":
        out["hwm_before_mb"] = vm_hwm_mb()
        started, cpu = time.perf_counter(), time.process_time()
        found = find_possible_duplicates(upload, engine, limit=1_000_000)
        out["seconds"] = time.perf_counter() - started
        out["cpu_seconds"] = time.process_time() - cpu
        pairs = found.pairs
        out["found"] = found.found
        stored = pairs[pairs["customer_id"].notna()]
        out["by_rule"] = {rule: int(stored["rule"].str.contains(rule).sum()) for rule in planted if rule != "in_file"}
        out["in_file"] = int(pairs["other_row"].notna().sum())
        out["planted"] = planted
        out["oversized"] = len(found.oversized)
    out["hwm_mb"] = vm_hwm_mb()
    print(json.dumps(out))


def child(mode: str, url: str, rows: int, stored: int) -> dict:
    done = subprocess.run([sys.executable, __file__, "--worker", mode, "--url", url, "--rows", str(rows),
                           "--customers", str(stored)], cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{mode} child failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--pg-admin-url", default="postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--worker", choices=["baseline", "search"])
    parser.add_argument("--url")
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.url, args.rows, args.customers)
        return
    customers, _, planted = data(args.rows, args.customers)
    lines = ["| database | search s | CPU s of this process | found pairs | planted found / planted | baseline VmHWM MB "
             "| search VmHWM MB | extra MB | within 5 s, 150 MB |", "|---|---:|---:|---:|---|---:|---:|---:|---|"]
    admin = sa.create_engine(args.pg_admin_url, isolation_level="AUTOCOMMIT")
    name = f"bench_dupes_{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as folder:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        pg_url = args.pg_admin_url.rsplit("/", 1)[0] + f"/{name}"
        try:
            for label, url in (("SQLite", f"sqlite:///{folder}/bench.db"), ("PostgreSQL", pg_url)):
                seed(url, customers)
                base = child("baseline", url, args.rows, args.customers)
                run = child("search", url, args.rows, args.customers)
                extra = run["hwm_mb"] - base["hwm_mb"]
                hits = run["by_rule"] | {"in_file": run["in_file"]}
                recall = ", ".join(f"{rule} {hits[rule]:,}/{count:,}" for rule, count in planted.items())
                ok = run["seconds"] <= 5 and extra <= 150
                lines.append(f"| {label} | {run['seconds']:.2f} | {run['cpu_seconds']:.2f} | {run['found']:,} | {recall} | {base['hwm_mb']:.0f} "
                             f"| {run['hwm_mb']:.0f} | {extra:.0f} | {'yes' if ok else 'NO'} |")
                print(lines[-1], flush=True)
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                             {"n": name})
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
            admin.dispose()
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    body = (f"`bench/bench_duplicates.py --rows {args.rows} --customers {args.customers}`: an upload of "
            f"{args.rows:,} rows (as Checked.normalised holds it) against {args.customers:,} stored customers, "
            "with planted near misses. Each line: two child processes, the baseline building the same frame, "
            "the search building it and running find_possible_duplicates; extra = the search's VmHWM minus the "
            "baseline's. \"found pairs\" includes chance pairs (a name pool of 40 x 40 makes real namesakes "
            "whose phones happen to be one digit apart). The 2-core machine was shared with other work (load average "
            f"{load} at the end), so the times are an upper bound; the CPU time is what the search itself used "
            "(the database server's work not included).\n\n" + "\n".join(lines))
    if not args.no_write:
        write_section("Possible duplicates", body)
    print(body)


if __name__ == "__main__":
    main()
