"""SQL only through bound parameters: SQL and HTML fragments are stored verbatim, on both databases.

The fragments go in as names, company and nickname (stored), as shipping marks (refused by the mark
rule, kept verbatim in the failure ledger), as the file name and the sheet name (kept in the run
history). Afterwards every table is still there. Rendering as text in the dashboard is tested there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from tests.fixtures import corpus

ROOT = Path(__file__).resolve().parents[1]
FRAGMENTS = [
    "'); DROP TABLE customers;--",
    "<script>alert(1)</script>",
    "Robert'); --",
    '" OR 1=1 --',
    "1; SELECT pg_sleep(30)",
    "$$; DELETE FROM customers; $$",
    "%(first_name)s :nickname ?",
    "\\N",  # NULL in PostgreSQL's COPY text format
    "\\.",  # end of data in COPY text format
    "C:\\new\\table",
    "<img src=x onerror=alert(1)>",
    "&lt;b&gt; &amp;",
]
SHEET = "Robert'); DROP TABLE x"
FILE = "x'); DROP TABLE import_runs;-- <b>.xlsx"


def _rows() -> list[list[str]]:
    header = ["Shipping Mark", "First Name", "Last Name", "Email", "Phone", "Company", "Nickname"]
    rows = [header]
    for n, bad in enumerate(FRAGMENTS):
        phone = f"024{2_000_000 + n:07d}"
        rows.append([f"PM{n} SQL", bad, bad[:50], "", phone, bad, bad[:50]])  # stored verbatim
        rows.append([bad, "Ama", "Owusu", "", f"024{3_000_000 + n:07d}", "", ""])  # refused mark
    return rows


def test_sql_and_html_fragments_are_stored_verbatim(database_url: str, tmp_path: Path) -> None:
    path = tmp_path / FILE
    path.write_bytes(corpus.xlsx({SHEET: _rows()}))
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    proc = subprocess.run([sys.executable, "-m", "importer", "import", str(path), "--json", "--database-url",
                           database_url], cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert (result["total_created"], result["total_failed"]) == (len(FRAGMENTS), len(FRAGMENTS))
    assert result["file"] == FILE and result["sheet"] == SHEET

    # The shipping mark rule refuses every fragment, naming it; the ledger keeps the value as typed.
    refused = {f["customer_data"]["shipping_mark"]: f["errors"] for f in result["failed_customers"]}
    assert set(refused) == set(FRAGMENTS)
    for errors in refused.values():
        assert [(e["field"], e["code"]) for e in errors] == [("shipping_mark", "invalid_format")]

    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            assert set(sa.inspect(conn).get_table_names()) >= {"customers", "import_runs", "import_failures"}
            stored = {r.shipping_mark: r for r in conn.execute(sa.text(
                "SELECT shipping_mark, first_name, last_name, company_name, nickname FROM customers"))}
            run = conn.execute(sa.text("SELECT file_name, sheet FROM import_runs")).one()
            ledger = [json.loads(d) if isinstance(d, str) else d for (d,) in conn.execute(
                sa.text("SELECT customer_data FROM import_failures ORDER BY source_row_number"))]
    finally:
        engine.dispose()
    assert len(stored) == len(FRAGMENTS)
    for n, bad in enumerate(FRAGMENTS):
        row = stored[f"PM{n} SQL"]
        assert (row.first_name, row.last_name, row.company_name, row.nickname) == (bad, bad[:50], bad, bad[:50])
    assert tuple(run) == (FILE, SHEET)
    assert [d["shipping_mark"] for d in ledger] == FRAGMENTS

    history = subprocess.run([sys.executable, "-m", "importer", "history", "--json", "--database-url", database_url],
                             cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
    assert json.loads(history.stdout)[0]["file_name"] == FILE
