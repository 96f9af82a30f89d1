"""Files a prober would upload to take a 512 MB server down (issue 20), written fast and in bounded memory.

Each generator writes one file and returns its path; the parts of a workbook are streamed into the zip
(zipfile's open(..., "w")), so writing a 340 MB-inflated workbook costs a few MB. Used by
tests/test_hostile.py (small sizes), the memory benches and `python bench/hostile_files.py DIR` (every
case at the issue's size, into DIR):

    max_length_workbook(path, rows=100_000, extra_columns=10)   # every field at its maximum length
    max_length_csv(path, rows=100_000, extra_columns=10)        # the same rows as a CSV
    shared_strings_bomb(path, entries=10_000_000, rows=10)      # a huge sharedStrings.xml, 10 rows used
    big_mapping_json(path, keys=2_000_000)                      # a --mapping file of millions of keys
    big_operations_json(path, replace_chars=2_000)              # --operations: blank -> a long text
    pre_login_upload(path, mb=49)                               # a body just under the upload limit

The functions' names and parameters are stable: other benches call them.
"""

from __future__ import annotations

import json
import random
import sys
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from xml.sax.saxutils import escape

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
    "</Types>"
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="xl/workbook.xml"/></Relationships>'
)
_WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="Customers" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
    'Target="worksheets/sheet1.xml"/>'
    '<Relationship Id="rId2" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" '
    'Target="sharedStrings.xml"/></Relationships>'
)
_SHEET_HEAD = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
)
_SHEET_TAIL = "</sheetData></worksheet>"
_SST_HEAD = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="{n}" uniqueCount="{n}">'
)
_WORDS = ("kofi", "ama", "mensah", "owusu", "accra", "kumasi", "trading", "limited", "market", "road",
          "house", "north", "east", "gold", "coast", "cargo", "star", "union", "river", "hill")
_BUFFER = 1 << 20


def _letters(column: int) -> str:
    """0-based column index -> Excel letters (0 -> A, 26 -> AA)."""
    out = ""
    column += 1
    while column:
        column, rest = divmod(column - 1, 26)
        out = chr(65 + rest) + out
    return out


class _Buffered:
    """Writes text to a zip member in MB-sized pieces (one write per cell would be slow)."""

    def __init__(self, handle) -> None:
        self.handle, self.size = handle, 0
        self.parts: list[str] = []

    def write(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text)
        if self.size >= _BUFFER:
            self.flush()

    def flush(self) -> None:
        if self.parts:
            self.handle.write("".join(self.parts).encode("utf-8"))
            self.parts, self.size = [], 0


def _write_workbook(path: Path, sheet_rows: Iterable[list[int | None]], strings: Iterable[str], count: int) -> Path:
    """An .xlsx whose one sheet holds `sheet_rows` (shared-string indexes; None: no cell) and whose
    shared-strings table holds `strings` (`count` of them)."""
    path = Path(path)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        zf.writestr("[Content_Types].xml", _CONTENT_TYPES)
        zf.writestr("_rels/.rels", _RELS)
        zf.writestr("xl/workbook.xml", _WORKBOOK)
        zf.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        with zf.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as handle:
            out = _Buffered(handle)
            out.write(_SHEET_HEAD)
            for number, cells in enumerate(sheet_rows, start=1):
                out.write(f'<row r="{number}">')
                for column, index in enumerate(cells):
                    if index is not None:
                        out.write(f'<c r="{_letters(column)}{number}" t="s"><v>{index}</v></c>')
                out.write("</row>")
            out.write(_SHEET_TAIL)
            out.flush()
        with zf.open("xl/sharedStrings.xml", "w", force_zip64=True) as handle:
            out = _Buffered(handle)
            out.write(_SST_HEAD.format(n=count))
            for text in strings:
                out.write(f"<si><t>{escape(text)}</t></si>")
            out.write("</sst>")
            out.flush()
    return path


def _text(rnd: random.Random, length: int, start: str = "") -> str:
    """`start` then words up to exactly `length` characters (compresses about as well as real names)."""
    parts = [start] if start else []
    size = len(start)
    while size < length:
        word = rnd.choice(_WORDS)
        parts.append(word)
        size += len(word) + (1 if size else 0)
    return " ".join(parts)[:length].ljust(length, "x")


# The customer fields at their maximum length (schemas.customer.FIELDS: max_length, or a value of the
# longest shape the field allows), in the template's header order.
MAX_LENGTH_HEADERS = ("Shipping Mark", "First Name", "Last Name", "Email", "Phone", "Region", "Company Name",
                      "Nickname", "User Type", "Other Phones", "Other Emails")


def max_length_row(i: int, rnd: random.Random, extra_columns: int, extra_chars: int = 100) -> list[str]:
    """Row `i` with every field at its maximum length (unique shipping mark, phone and e-mail)."""
    mark = f"M{i:07d} " + _text(rnd, 91).replace("x", "X")
    local = f"c{i:07d}." + "a" * 55  # 64 characters, the most an e-mail's local part may have
    domain = ".".join(["d" * 62] * 3) + f".e{i % 10}.com"  # with the @, 254 characters in all
    email = (local + "@" + domain)[:254]
    phone = f"+23324{i:07d}"
    others = ", ".join(f"+23355{(i * 31 + k) % 10_000_000:07d}" for k in range(33))[:500]
    other_emails = ", ".join(f"o{k}.{i:07d}@example.com" for k in range(25))[:500]
    row = [mark[:100], _text(rnd, 50), _text(rnd, 50), email, phone, "Greater Accra", _text(rnd, 100),
           _text(rnd, 50), "INDIVIDUAL", others, other_emails]
    return row + [_text(rnd, extra_chars) for _ in range(extra_columns)]


def max_length_workbook(path: str | Path, rows: int = 100_000, extra_columns: int = 10, seed: int = 20) -> Path:
    """An .xlsx of `rows` customers with every field at its maximum length and `extra_columns` extra
    columns of 100 characters; every cell its own shared string, as Excel writes them. At the issue's
    size (100,000 rows, 10 extra columns): about 30 MB, 340 MB inflated."""
    width = len(MAX_LENGTH_HEADERS) + extra_columns
    headers = list(MAX_LENGTH_HEADERS) + [f"Extra {k + 1}" for k in range(extra_columns)]

    def strings() -> Iterator[str]:
        rnd = random.Random(seed)
        yield from headers
        for i in range(rows):
            yield from max_length_row(i, rnd, extra_columns)

    def sheet() -> Iterator[list[int | None]]:
        for r in range(rows + 1):
            yield list(range(r * width, (r + 1) * width))

    return _write_workbook(Path(path), sheet(), strings(), (rows + 1) * width)


def shared_strings_bomb(path: str | Path, entries: int = 10_000_000, rows: int = 10) -> Path:
    """An .xlsx whose shared-strings table holds `entries` distinct strings, of which only `rows` rows use
    a few: calamine and openpyxl load the whole table before the first cell. At the issue's size
    (10 million entries): about 33 MB, under the upload and inflated-size limits."""
    headers = ["Shipping Mark", "First Name", "Last Name", "Phone"]

    def strings() -> Iterator[str]:
        yield from headers
        for i in range(rows):
            yield from (f"MARK{i:04d}", "Ama", "Mensah", f"024{i:07d}")
        for n in range(max(0, entries - len(headers) - 4 * rows)):
            yield f"{n:x}"

    def sheet() -> Iterator[list[int | None]]:
        for r in range(rows + 1):
            yield list(range(r * 4, r * 4 + 4))

    return _write_workbook(Path(path), sheet(), strings(), max(entries, len(headers) + 4 * rows))


def big_mapping_json(path: str | Path, keys: int = 2_000_000) -> Path:
    """A --mapping file of `keys` column headers (each -> null), written in pieces: ~24 bytes a key."""
    path = Path(path)
    with path.open("w", encoding="utf-8") as handle:
        handle.write("{")
        for start in range(0, keys, 100_000):
            handle.write(",".join(f'"Column {n:09d}": null' for n in range(start, min(keys, start + 100_000))))
            if start + 100_000 < keys:
                handle.write(",")
        handle.write("}")
    return path


def big_operations_json(path: str | Path, replace_chars: int = 2_000, field: str = "nickname") -> Path:
    """An --operations file that replaces every blank `field` with `replace_chars` characters."""
    path = Path(path)
    path.write_text(json.dumps([{"kind": "replace", "field": field, "find": "", "replace": "x" * replace_chars,
                                 "whole_cell": True}]), encoding="utf-8")
    return path


def max_length_csv(path: str | Path, rows: int = 100_000, extra_columns: int = 10, seed: int = 20) -> Path:
    """The rows of max_length_workbook as a CSV (UTF-8, comma-separated, fields quoted where they must be),
    written a row at a time: about 2.7 kB a row (10 extra columns), so 19,000 rows fill the 50 MB upload limit."""
    import csv

    path = Path(path)
    rnd = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(list(MAX_LENGTH_HEADERS) + [f"Extra {k + 1}" for k in range(extra_columns)])
        for i in range(rows):
            out.writerow(max_length_row(i, rnd, extra_columns))
    return path


def pre_login_upload(path: str | Path, mb: int = 49) -> Path:
    """`mb` MB of bytes (a .csv) to send to the upload endpoint of a session that has not signed in."""
    path = Path(path)
    line = b"Shipping Mark,First Name,Phone\n" + b"MARK,Ama,0241234567\n" * 50_000
    with path.open("wb") as handle:
        left = mb * 1024 * 1024
        while left > 0:
            handle.write(line[:left])
            left -= len(line[:left])
    return path


def main(folder: str) -> None:
    """Every case at the issue's size, into `folder`."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for made in (max_length_workbook(out / "max_length.xlsx"), shared_strings_bomb(out / "shared_strings.xlsx"),
                 big_mapping_json(out / "mapping.json"), big_operations_json(out / "operations.json"),
                 pre_login_upload(out / "pre_login.csv")):
        print(f"{made}: {made.stat().st_size / 1024 / 1024:,.1f} MB")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "hostile")
