"""The Customers export case of bench/bench_512mb.py: a SQLite file of customers whose every field is at its
maximum length (bench/hostile_files.py's max_length_row), cached under a folder by its size.

The other files of issue 20's cases (the workbook at every limit, the shared-strings bomb, the --mapping and
--operations files) come from bench/hostile_files.py.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

from bench.hostile_files import MAX_LENGTH_HEADERS, max_length_row

# MAX_LENGTH_HEADERS' fields, in its order.
FIELDS = ("shipping_mark", "first_name", "last_name", "email", "phone", "region", "company_name", "nickname",
          "user_type", "other_phones", "other_emails")


def long_customers_db(folder: Path, count: int = 250_000) -> Path:
    """`folder`/long-customers-N.db: `count` customers, every field at its maximum length, created by one run."""
    from importer.database.schema import customers, ensure_schema, import_runs, make_engine

    assert len(FIELDS) == len(MAX_LENGTH_HEADERS)
    path = folder / f"long-customers-{count}.db"
    if path.exists():
        return path
    tmp = folder / f"long-customers-{count}.part.db"
    tmp.unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{tmp}")
    ensure_schema(engine)
    now = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    rnd = random.Random(7)
    with engine.begin() as conn:
        conn.execute(import_runs.insert(), [{"id": 1, "file_name": "long.xlsx", "sha256": "0" * 64, "sheet": "Customers",
                                             "status": "completed", "total_attempted": count, "total_created": count,
                                             "rows_done": count, "started_at": now, "finished_at": now}])
        for start in range(0, count, 10_000):
            batch = []
            for i in range(start, min(count, start + 10_000)):
                row = dict(zip(FIELDS, max_length_row(i, rnd, 0), strict=True))
                row.update(region="GREATER_ACCRA", id=i + 1, created_at=now, import_run_id=1, source_row_number=i + 2)
                batch.append(row)
            conn.execute(customers.insert(), batch)
    engine.dispose()
    tmp.rename(path)
    return path
