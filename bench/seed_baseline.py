"""The seed system's import strategy, rebuilt faithfully as the benchmark's baseline.

openpyxl read-only read, per-row regex validation, for each row one duplicate SELECT per key
(shipping mark, phone, email), then batches of 25 customers with each customer in its own
transaction (one INSERT + COMMIT per customer).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import openpyxl
import psycopg2

MARK = re.compile(r"^[A-Za-z0-9 _-]{2,100}$")
PHONE = re.compile(r"^(?:\+?233|0)?([2-5][0-9]{8})$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
BATCH = 25


def _validate(row: tuple) -> dict | None:
    """The seed's per-row checks; None when the row is invalid."""
    mark, first, last, email, phone = (("" if v is None else str(v)).strip() for v in (*row, None, None)[:5])
    digits = re.sub(r"[\s-]", "", phone)
    match = PHONE.match(digits)
    if not MARK.match(mark) or not first or not last or not match or (email and not EMAIL.match(email)):
        return None
    return {"shipping_mark": " ".join(mark.split()).upper(), "first_name": first, "last_name": last,
            "email": email.lower() or None, "phone": "+233" + match.group(1)}


def baseline_import(path: str | Path, dsn: str) -> dict[str, int]:
    """Import an .xlsx the seed system's way; returns created / failed counts."""
    wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    rows = list(wb.worksheets[0].iter_rows(values_only=True))
    wb.close()
    # The seed expected the header in row 1; skip the benchmark workbook's title rows the same way a
    # user would have deleted them, so both importers see the same data rows.
    header = next(i for i, row in enumerate(rows) if row and str(row[0] or "").strip().lower() == "shipping mark")
    rows = [row for row in rows[header + 1:] if row and any(v not in (None, "") for v in row)]
    conn = psycopg2.connect(dsn)
    cur = conn.cursor()
    created = failed = 0
    for start in range(0, len(rows), BATCH):
        for row in rows[start:start + BATCH]:
            rec = _validate(row)
            if rec is None:
                failed += 1
                continue
            dup = False
            for field in ("shipping_mark", "phone", "email"):
                if rec[field] is None:
                    continue
                cur.execute(f"SELECT id FROM customers WHERE {field} = %s", (rec[field],))  # noqa: S608 - fixed names
                dup = dup or cur.fetchone() is not None
            if dup:
                conn.rollback()
                failed += 1
                continue
            try:
                cur.execute(
                    "INSERT INTO customers (shipping_mark, first_name, last_name, email, phone, region, user_type)"
                    " VALUES (%(shipping_mark)s, %(first_name)s, %(last_name)s, %(email)s, %(phone)s,"
                    " 'GREATER_ACCRA', 'INDIVIDUAL')", rec)
                conn.commit()
                created += 1
            except psycopg2.Error:
                conn.rollback()
                failed += 1
    conn.close()
    return {"created": created, "failed": failed}


if __name__ == "__main__":
    print(baseline_import(sys.argv[1], sys.argv[2]))
