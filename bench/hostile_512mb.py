"""Files for bench/bench_512mb.py's cases, written straight as XML into a zip (fast, streamed, exact sizes).

Each is cached under a folder by its parameters, so a case run again does not build it again. Where
bench/hostile_files.py (issue 20's `bytes` branch) has a generator for the same file, bench_512mb uses it.

- max_length_workbook: 100,000 rows, every field at its maximum length, 10 extra columns, shared strings
  (as Excel and openpyxl write them): ~30 MB .xlsx, ~340 MB inflated.
- shared_strings_bomb: a shared-strings table of 10,000,000 entries and a sheet that uses 10 rows.
- operations_json / big_mapping_json: the CLI's --operations (blank -> N characters) and a --mapping of
  2,000,000 keys.
- long customers for the Customers export, seeded straight into a SQLite file.
"""

from __future__ import annotations

import json
import random
import zipfile
from collections.abc import Iterator
from pathlib import Path
from xml.sax.saxutils import escape

HEADERS = ["Shipping Mark", "First Name", "Last Name", "Email", "Phone", "Region", "Company Name", "Nickname",
           "Other Phones", "Other Emails"] + [f"Extra {n}" for n in range(1, 11)]
# 8 words: text that deflates about 10:1, as the 31.6 MB / 340 MB file did.
WORDS = ["kofi", "mensah", "trading", "ventures", "accra", "market", "cargo", "express"]

_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/sharedStrings.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
    '</Types>')
_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    'officeDocument" Target="xl/workbook.xml"/></Relationships>')
_WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="Customers" sheetId="1" r:id="rId1"/></sheets></workbook>')
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    'worksheet" Target="worksheets/sheet1.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    'sharedStrings" Target="sharedStrings.xml"/></Relationships>')
_NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'


def _column(n: int) -> str:
    name = ""
    n += 1
    while n:
        n, rest = divmod(n - 1, 26)
        name = chr(65 + rest) + name
    return name


def _text(rnd: random.Random, length: int, head: str = "") -> str:
    """`head` then words, exactly `length` characters."""
    out = head
    while len(out) < length:
        out += " " + rnd.choice(WORDS)
    return out[:length].rstrip() + "x" * (length - len(out[:length].rstrip()))


def max_length_row(i: int, rnd: random.Random) -> list[str]:
    """Customer i with every field at its maximum length (schemas.customer), valid, plus 10 extra columns."""
    local = _text(rnd, 64, f"u{i:07d}").replace(" ", ".")
    domain = "m" * 63 + "." + "n" * 63 + "." + "p" * (254 - 64 - 1 - 128 - 4) + ".com"
    phones = ", ".join(f"020{(i * 41 + k) % 10_000_000:07d}" for k in range(41))[:500]
    emails = ", ".join(f"o{i:07d}.{k}@example.com" for k in range(25))[:500]
    return [_text(rnd, 100, f"MK{i:07d}").upper().replace(".", "-"), _text(rnd, 50, "Ama").title(),
            _text(rnd, 50, "Mensah").title(), f"{local}@{domain}", f"024{i:07d}", "Greater Accra",
            _text(rnd, 100, "Company").title(), _text(rnd, 50, "Nick"), phones, emails,
            *(_text(rnd, 85, f"extra {k}") for k in range(10))]


def _write_xlsx(path: Path, strings: Iterator[str], count: int, sheet_rows: Iterator[list[int | None]]) -> None:
    """An .xlsx whose cells are indexes into the shared strings `strings` (`count` of them)."""
    tmp = path.with_suffix(".part")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as book:
        book.writestr("[Content_Types].xml", _CONTENT_TYPES)
        book.writestr("_rels/.rels", _RELS)
        book.writestr("xl/workbook.xml", _WORKBOOK)
        book.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        with book.open("xl/sharedStrings.xml", "w", force_zip64=True) as part:
            part.write(f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<sst {_NS} count="{count}" '
                       f'uniqueCount="{count}">'.encode())
            chunk: list[str] = []
            for text in strings:
                chunk.append(f"<si><t>{escape(text)}</t></si>")
                if len(chunk) >= 50_000:
                    part.write("".join(chunk).encode())
                    chunk = []
            part.write(("".join(chunk) + "</sst>").encode())
        with book.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as part:
            part.write(f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet {_NS}><sheetData>'
                       .encode())
            chunk = []
            for r, row in enumerate(sheet_rows, 1):
                cells = "".join(f'<c r="{_column(c)}{r}" t="s"><v>{s}</v></c>'
                                for c, s in enumerate(row) if s is not None)
                chunk.append(f'<row r="{r}">{cells}</row>')
                if len(chunk) >= 5_000:
                    part.write("".join(chunk).encode())
                    chunk = []
            part.write(("".join(chunk) + "</sheetData></worksheet>").encode())
    tmp.rename(path)


def max_length_workbook(folder: Path, rows: int = 100_000) -> Path:
    """The upload at every limit: `rows` customers, every field at its maximum length, 10 extra columns."""
    path = folder / f"max-length-{rows}.xlsx"
    if path.exists():
        return path
    width = len(HEADERS)

    def strings() -> Iterator[str]:
        yield from HEADERS
        rnd = random.Random(20)
        for i in range(rows):
            yield from max_length_row(i, rnd)

    def sheet() -> Iterator[list[int | None]]:
        yield list(range(width))
        for i in range(rows):
            yield list(range(width * (i + 1), width * (i + 2)))

    _write_xlsx(path, strings(), width * (rows + 1), sheet())
    return path


def shared_strings_bomb(folder: Path, entries: int = 10_000_000, used: int = 10) -> Path:
    """A shared-strings table of `entries` distinct strings; the sheet uses `used` customers' worth."""
    path = folder / f"shared-strings-{entries}.xlsx"
    if path.exists():
        return path
    heads = ["Shipping Mark", "First Name", "Last Name", "Phone"]

    def strings() -> Iterator[str]:
        yield from heads
        for i in range(used):
            yield from (f"PM{i:04d}", "Ama", "Mensah", f"024{i:07d}")
        for i in range(entries - len(heads) * (used + 1)):
            yield f"s{i}"

    def sheet() -> Iterator[list[int | None]]:
        for r in range(used + 1):
            yield list(range(4 * r, 4 * r + 4))

    _write_xlsx(path, strings(), entries, sheet())
    return path


def operations_json(folder: Path, chars: int, field: str = "nickname") -> Path:
    """--operations: fill every blank `field` cell with `chars` characters (find and replace, whole cell)."""
    path = folder / f"operations-blank-{chars}.json"
    if not path.exists():
        path.write_text(json.dumps([{"kind": "replace", "field": field, "find": "", "replace": "x" * chars,
                                     "whole_cell": True}]))
    return path


def big_mapping_json(folder: Path, keys: int = 2_000_000) -> Path:
    """--mapping: one JSON object of `keys` headers, each mapped to a field (~60 MB)."""
    path = folder / f"mapping-{keys}.json"
    if not path.exists():
        with path.open("w") as out:
            out.write("{")
            for start in range(0, keys, 100_000):
                out.write(",".join(f'"Column {i:08d}": "nickname"' for i in range(start, min(keys, start + 100_000)))
                          + ("," if start + 100_000 < keys else ""))
            out.write("}")
    return path


def long_customers_db(folder: Path, count: int = 250_000) -> Path:
    """A SQLite file of `count` customers, every text field at its maximum length (one run created them)."""
    import datetime as dt

    from importer.database.schema import customers, ensure_schema, import_runs, make_engine

    path = folder / f"long-customers-{count}.db"
    if path.exists():
        return path
    tmp = folder / f"long-customers-{count}.part.db"
    tmp.unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{tmp}")
    ensure_schema(engine)
    now = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    names = ("shipping_mark", "first_name", "last_name", "email", "phone", "region", "company_name", "nickname",
             "other_phones", "other_emails")
    rnd = random.Random(7)
    with engine.begin() as conn:
        conn.execute(import_runs.insert(), [{"id": 1, "file_name": "long.xlsx", "sha256": "0" * 64, "sheet": "Customers",
                                             "status": "completed", "total_attempted": count, "total_created": count,
                                             "rows_done": count, "started_at": now, "finished_at": now}])
        for start in range(0, count, 10_000):
            batch = []
            for i in range(start, min(count, start + 10_000)):
                row = dict(zip(names, max_length_row(i, rnd)[:10], strict=True))
                row.update(phone=f"+23324{i:07d}", region="GREATER_ACCRA", user_type="INDIVIDUAL", id=i + 1,
                           created_at=now, import_run_id=1, source_row_number=i + 2)
                batch.append(row)
            conn.execute(customers.insert(), batch)
    engine.dispose()
    tmp.rename(path)
    return path
