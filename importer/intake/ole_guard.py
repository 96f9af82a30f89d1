"""Checks on an .xls file's OLE2 compound container before any parser sees it: encryption, looping or
out-of-range sector chains, sheets whose used range would make calamine allocate a huge grid, and what
reading the workbook would cost (its grids and shared-strings table, measured on the BIFF records: `check_ole`
returns it for importer.intake.read_limits.check_read_cost, as zip_guard measures an .xlsx).

Standard library only, on the raw bytes (split from xlsx_guard.py, which guards the zip formats).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from importer.intake.read_limits import ReadSize
from importer.intake.zip_guard import MAX_GRID_CELLS, bad_workbook, grid_limit
from importer.server.governor import XML_BYTES_PER_CELL, XML_BYTES_PER_SHARED_STRING

OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ENCRYPTION_STREAMS = frozenset({"encryptioninfo", "encryptedpackage"})


def ole_stream_names(data: bytes) -> set[str]:
    """Names of the directory entries of an OLE2 compound file (lower case); empty if unparseable."""
    try:
        return _ole_names(data)
    except (struct.error, IndexError, ValueError):
        return set()


def _ole_names(data: bytes) -> set[str]:
    """Walk the compound file's FAT to read its directory sectors (bounded, so loops can't hang)."""
    if len(data) < 512 or not data.startswith(OLE2_MAGIC):
        return set()
    sector = 1 << struct.unpack_from("<H", data, 0x1E)[0]
    if sector not in (512, 4096):
        return set()
    n_sectors = (len(data) - 512) // sector + 1

    def read_sector(i: int) -> bytes:
        off = 512 + i * sector if sector == 512 else sector * (i + 1)
        return data[off : off + sector]

    difat = list(struct.unpack_from("<109I", data, 0x4C))
    next_difat, n_difat = struct.unpack_from("<II", data, 0x44)
    for _ in range(min(n_difat, n_sectors)):
        if next_difat >= 0xFFFFFFFA:
            break
        entries = struct.unpack(f"<{sector // 4}I", read_sector(next_difat))
        difat.extend(entries[:-1])
        next_difat = entries[-1]
    fat: list[int] = []
    for s in difat:
        if s >= 0xFFFFFFFA or s >= n_sectors:
            continue
        fat.extend(struct.unpack(f"<{sector // 4}I", read_sector(s)))
    names: set[str] = set()
    current, seen = struct.unpack_from("<I", data, 0x30)[0], set()
    while current < min(len(fat), n_sectors) and current not in seen:
        seen.add(current)
        block = read_sector(current)
        for off in range(0, len(block) - 127, 128):
            name_len = struct.unpack_from("<H", block, off + 0x40)[0]
            if 2 <= name_len <= 64 and block[off + 0x42] != 0:
                names.add(block[off : off + name_len - 2].decode("utf-16-le", "replace").lower())
        current = fat[current]
    return names


def is_encrypted_ole(data: bytes) -> bool:
    """An OOXML workbook saved with a password is an OLE2 file holding these two streams."""
    return bool(ole_stream_names(data) & ENCRYPTION_STREAMS)


_END = 0xFFFFFFFA  # sector numbers from here up are markers (end of chain, free, FAT, DIFAT)


def check_ole(data: bytes, file_name: str, max_cells: int = MAX_GRID_CELLS,
              max_entries: int | None = None) -> BiffSize | None:
    """Refuse a compound file (.xls) whose sector chains loop, leave the file, hold impossible sizes, or
    whose sheets span more cells than calamine may allocate (max_cells, the MAX_CELLS setting, as for .xlsx).
    What reading it involves (BiffSize: its read_size for read_limits.check_read_cost); None: not measured.
    max_entries: stop counting the shared strings there (enough to know the read cannot fit).

    calamine follows the FAT without cycle detection: one looping chain in a 5 KB .xls made it allocate
    memory until the process was killed; a chain leaving the table makes it panic.
    """
    measured: list[BiffSize] = []
    try:
        problem = _ole_problem(data, max_cells, measured, max_entries)
    except (struct.error, IndexError, ValueError, StopIteration):
        problem = "its internal structure is damaged"
    if problem and problem.startswith("grid:"):
        rows, cols = (int(n) for n in problem.split(":")[1:])
        raise grid_limit(file_name, rows, cols, max_cells)
    if problem:
        raise bad_workbook(file_name, problem)
    return measured[0] if measured else None


def _ole_chain(start: int, table: list[int], limit: int) -> int | None:
    """Length of the chain from `start`, or None when it loops or points outside `limit` sectors."""
    seen: set[int] = set()
    current = start
    while current < _END:
        if current in seen or current >= limit or current >= len(table):
            return None
        seen.add(current)
        current = table[current]
    return len(seen)


def _ole_problem(data: bytes, max_cells: int = MAX_GRID_CELLS, measured: list[BiffSize] | None = None,
                 max_entries: int | None = None) -> str | None:
    """What is wrong with a compound file's FAT, directory and mini FAT chains (None: nothing). The workbook
    stream's BiffSize is appended to `measured` when it could be measured."""
    shift = struct.unpack_from("<H", data, 0x1E)[0]
    if shift not in (9, 12):
        return "its header is damaged"
    sector = 1 << shift
    n_sectors = max(0, len(data) // sector - 1)  # sector i starts at byte (i + 1) * sector

    def read_sector(i: int) -> bytes:
        return data[(i + 1) * sector : (i + 2) * sector].ljust(sector, b"\xff")

    per_sector = sector // 4
    difat = list(struct.unpack_from("<109I", data, 0x4C))
    next_difat, n_difat = struct.unpack_from("<II", data, 0x44)
    seen_difat: set[int] = set()
    while next_difat < _END:
        if next_difat in seen_difat or next_difat >= n_sectors or len(seen_difat) > n_difat:
            return "its sector table loops or is cut short"
        seen_difat.add(next_difat)
        pointers = struct.unpack(f"<{per_sector}I", read_sector(next_difat))
        difat.extend(pointers[:-1])
        next_difat = pointers[-1]
    fat: list[int] = []
    for s in difat:
        if s >= _END:
            continue
        if s >= n_sectors:
            return "its sector table is cut short"
        fat.extend(struct.unpack(f"<{per_sector}I", read_sector(s)))
    loop = "a chain of sectors loops or points outside the file"
    dir_start = struct.unpack_from("<I", data, 0x30)[0]
    if not _ole_chain(dir_start, fat, n_sectors):
        return loop
    mini_cutoff, minifat_start = struct.unpack_from("<II", data, 0x38)
    minifat: list[int] = []
    if minifat_start < _END:
        if _ole_chain(minifat_start, fat, n_sectors) is None:
            return loop
        current = minifat_start
        while current < _END:
            minifat.extend(struct.unpack(f"<{per_sector}I", read_sector(current)))
            current = fat[current]
    entries: list[tuple[int, int, int, str]] = []  # (type, start sector, size, name) of streams and the root
    current = dir_start
    while current < _END:
        block = read_sector(current)
        for off in range(0, sector, 128):
            kind = block[off + 0x42]
            start, size = struct.unpack_from("<II", block, off + 0x74)
            name_len = min(struct.unpack_from("<H", block, off + 0x40)[0], 64)
            if kind in (2, 5) and size:
                entries.append((kind, start, size, block[off : off + max(name_len - 2, 0)].decode("utf-16-le", "replace")))
        current = fat[current]
    mini_sectors = next((size // 64 + 1 for kind, _, size, _ in entries if kind == 5), 0)
    for kind, start, size, _ in entries:
        if size > len(data):
            return "a stream claims more bytes than the file holds"
        in_mini = kind == 2 and size < mini_cutoff
        if _ole_chain(start, minifat if in_mini else fat, mini_sectors if in_mini else n_sectors) is None:
            return loop
    # The chains are sound: read the workbook stream and measure the grid calamine will allocate.
    book = next(((start, size) for kind, start, size, name in entries
                 if kind == 2 and name.lower() in ("workbook", "book")), None)
    if book is None:
        return None
    start, size = book
    try:
        if size < mini_cutoff:
            root = next((s, z) for kind, s, z, _ in entries if kind == 5)
            mini_stream = b"".join(read_sector(s) for s in _ole_sectors(root[0], fat))
            stream = b"".join(mini_stream[s * 64 : (s + 1) * 64] for s in _ole_sectors(start, minifat))
        else:
            stream = b"".join(read_sector(s) for s in _ole_sectors(start, fat))
        biff = _biff_measure(stream[:size], max_entries)
    except (struct.error, IndexError, ValueError, StopIteration):
        return None  # measuring is best effort; the readers judge the stream itself
    rows, cols = biff.extent
    if rows < 0:
        return "a sheet's DIMENSIONS record is inverted"
    if rows * cols > max_cells:
        return f"grid:{rows}:{cols}"
    if measured is not None:
        measured.append(biff)
    return None


def _ole_sectors(start: int, table: list[int]) -> Iterator[int]:
    """The sectors of a chain already checked by _ole_chain."""
    while start < _END:
        yield start
        start = table[start]


# BIFF cell records (row, column first): NUMBER, LABEL, LABELSST, RK, BLANK, BOOLERR, FORMULA, RSTRING;
# MULRK and MULBLANK end with their last column.
_BIFF_CELLS = frozenset({0x0203, 0x0204, 0x00FD, 0x027E, 0x0201, 0x0205, 0x0006, 0x00D6})
_BIFF_MULTI = frozenset({0x00BD, 0x00BE})


@dataclass(frozen=True)
class BiffSize:
    """What a BIFF workbook stream holds, measured record by record before calamine parses it."""

    extent: tuple[int, int]  # the largest (rows, columns) a sheet spans; (-1, -1): an inverted DIMENSIONS
    cells: int  # every sheet's grid, summed: calamine parses every sheet at open, each a dense grid
    rows: int  # rows of the longest sheet
    text_bytes: int  # text held in the cell records themselves (LABEL, RSTRING), not in the table
    shared_strings: int  # entries of the shared-strings table (SST), counted: calamine reads them all
    shared_string_bytes: int  # the table's bytes (its record and CONTINUE records)
    complete: bool = True  # False: counting the entries stopped at max_entries (there are at least that many)

    def read_size(self) -> ReadSize:
        """As read_limits.ReadSize measures an .xlsx (cost_to_read takes XML): markup of XML_BYTES_PER_CELL
        a cell and XML_BYTES_PER_SHARED_STRING an entry added, for the BIFF's own few bytes taken off."""
        entries = self.shared_strings
        table_text = max(0, self.shared_string_bytes - 8 - 3 * entries)  # an entry: 2-byte length, flags
        return ReadSize(cells=self.cells, sheet_bytes=XML_BYTES_PER_CELL * self.cells + self.text_bytes,
                        rows=self.rows, shared_strings=entries,
                        shared_string_bytes=table_text + XML_BYTES_PER_SHARED_STRING * entries)


_SST, _CONTINUE, _LABEL, _RSTRING = 0x00FC, 0x003C, 0x0204, 0x00D6


def _biff_measure(stream: bytes, max_entries: int | None = None) -> BiffSize:
    """The largest (rows, columns) any sheet of a BIFF workbook stream spans, by its cells and DIMENSIONS;
    every sheet's grid; the shared-strings table's entries (counted, at most max_entries) and bytes.

    calamine sizes each sheet's dense grid from these; one flipped bit in DIMENSIONS asked it for 9 GB.
    """
    worst, rows, cols = (0, 0), 0, 0
    grids, longest, text_bytes, table, in_table = 0, 0, 0, [], False
    pos = 0
    while pos + 4 <= len(stream):
        rid, length = struct.unpack_from("<HH", stream, pos)
        body = stream[pos + 4 : pos + 4 + length]
        in_table = rid == _SST or (in_table and rid == _CONTINUE)
        if in_table:
            table.append(body[8:] if rid == _SST else body)
        if rid == 0x0809:  # BOF: a new substream (sheet)
            grids, longest = grids + rows * cols, max(longest, rows)
            rows = cols = 0
        elif rid == 0x0200 and len(body) >= 10:  # DIMENSIONS, BIFF8 (32-bit rows) or BIFF5
            if len(body) >= 14:
                first_row, last_row, first_col, last_col = struct.unpack_from("<IIHH", body)
            else:
                first_row, last_row, first_col, last_col = struct.unpack_from("<HHHH", body)
            if first_row > last_row or first_col > last_col:
                return BiffSize((-1, -1), 0, 0, 0, 0, 0)  # an inverted range underflows in calamine
            rows, cols = max(rows, last_row), max(cols, last_col)
        elif (rid in _BIFF_CELLS or rid in _BIFF_MULTI) and len(body) >= 4:
            row, col = struct.unpack_from("<HH", body)
            if rid in _BIFF_MULTI and len(body) >= 6:
                col = max(col, struct.unpack_from("<H", body, len(body) - 2)[0])
            rows, cols = max(rows, row + 1), max(cols, col + 1)
            if rid in (_LABEL, _RSTRING):
                text_bytes += max(0, length - 8)
        if rows * cols > worst[0] * worst[1]:
            worst = (rows, cols)
        pos += 4 + length
    entries = _sst_entries(table, max_entries)
    return BiffSize(worst, grids + rows * cols, max(longest, rows), text_bytes, entries,
                    sum(len(piece) for piece in table) + 8 * bool(table), max_entries is None or entries < max_entries)


def _sst_entries(pieces: list[bytes], most: int | None = None) -> int:
    """The entries of a shared-strings table whose bodies (the SST record's after its two counts, then each
    CONTINUE record's) are `pieces`, counted up to `most`. The counts the table declares are not used: calamine
    reads every entry whatever they say. An entry: character count (2 bytes), flags (1), rich-text runs (2) and
    extension size (4) if flagged, its characters (one or two bytes each: a CONTINUE record that splits them
    starts with a flags byte of its own), then the runs (4 bytes each) and the extension."""
    count, index, pos = 0, 0, 0
    piece = pieces[0] if pieces else b""
    while index < len(pieces) and (most is None or count < most):
        if pos + 3 > len(piece):  # an entry's header is never split
            index, pos = index + 1, 0
            piece = pieces[index] if index < len(pieces) else b""
            continue
        chars, flags = piece[pos] | piece[pos + 1] << 8, piece[pos + 2]
        pos += 3
        count += 1
        if not flags & 0x0C:  # the plain entry (most of them): characters only
            if pos + (chars << (flags & 1)) <= len(piece):
                pos += chars << (flags & 1)
                continue
            extra = 0
        else:
            runs = struct.unpack_from("<H", piece, pos)[0] if flags & 0x08 else 0
            pos += 2 if flags & 0x08 else 0
            extension = struct.unpack_from("<I", piece, pos)[0] if flags & 0x04 else 0
            pos += 4 if flags & 0x04 else 0
            extra = 4 * runs + extension
        wide = flags & 1
        while chars > (len(piece) - pos) >> wide:  # the characters go on in the next CONTINUE record
            chars -= (len(piece) - pos) >> wide
            index += 1
            if index >= len(pieces):
                return count
            piece = pieces[index]
            wide, pos = (piece[0] & 1 if piece else 0), 1
        pos += chars << wide
        while extra > len(piece) - pos:  # runs and extension go on without a flags byte
            extra -= len(piece) - pos
            index += 1
            if index >= len(pieces):
                return count
            piece, pos = pieces[index], 0
        pos += extra
    return count
