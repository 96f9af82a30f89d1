"""Mapping profiles: a column -> field mapping the analyst confirmed, remembered by the header signature of
its file (and by a name when she gives one), so next month's file with the same headers is mapped the same
way, with a notice ("Mapping from kumasi-oct.xlsx, saved 3 Nov"). The CLI takes one by name, or a JSON file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from importer.api import Upload, read_upload
from importer.checks.validate import check_frame
from importer.database.ledger import aware, now
from importer.database.schema import db_errors, is_postgres, mapping_profiles, reading
from importer.errors import DatabaseError, MissingColumns, UsageError
from importer.intake.readers import open_file
from importer.mapping.columns import (
    SCAN_ROWS,
    ColumnMapping,
    apply_mapping,
    mapped_columns,
    match_header,
    normalise,
)
from importer.settings import Settings

JSON_EXAMPLE = '{"Location": "region", "Mobile": "phone", "S/No": null}'


def _names(headers: Sequence[object]) -> list[str]:
    names = [normalise(str(h)) for h in headers]
    while names and not names[-1]:
        names.pop()  # trailing blank header cells: a wider used range is the same layout
    return names


def header_signature(headers: Sequence[object]) -> str:
    """The same for header rows that differ only in case, spacing, punctuation or trailing blank cells."""
    return hashlib.sha256(json.dumps(_names(headers)).encode()).hexdigest()


@dataclass(frozen=True)
class Profile:
    """A saved mapping: the headers it was made for, the field each column feeds, where it came from."""

    id: int
    signature: str
    name: str | None
    headers: tuple[str, ...]
    fields: tuple[str | None, ...]
    file_name: str | None
    saved_by: str | None
    saved_at: datetime

    @property
    def notice(self) -> str:
        """`Mapping from kumasi-oct.xlsx, saved 3 Nov` (the year when it is not this year)."""
        when = f"{self.saved_at.day} {self.saved_at:%b}"
        if self.saved_at.year != now().year:
            when += f" {self.saved_at.year}"
        source = f" from {self.file_name}" if self.file_name else ""
        if self.name:
            source = f" '{self.name}'" + (f" ({source.strip()})" if source else "")
        return f"Mapping{source}, saved {when}" + (f" by {self.saved_by}" if self.saved_by else "")

    def apply_to(self, detected: ColumnMapping) -> ColumnMapping:
        """The detected mapping with this profile's fields; UsageError when the headers are not the same."""
        if header_signature(detected.headers) != self.signature:
            raise UsageError(f"the saved mapping {self.label} is for the headers {', '.join(self.headers)}; "
                             f"this file's headers are {', '.join(h for h in detected.headers if h.strip())}")
        width = len(detected.headers)
        fields = (list(self.fields) + [None] * width)[:width]
        return detected.with_fields(fields)

    @property
    def label(self) -> str:
        return f"'{self.name}'" if self.name else f"from {self.file_name or 'an earlier file'}"


def _profile(row: Any) -> Profile:
    return Profile(row.id, row.signature, row.name or None, tuple(row.headers), tuple(row.mapping["fields"]),
                   row.file_name, row.saved_by, aware(row.saved_at) or now())


def _has_table(conn: sa.Connection) -> bool:
    """False on a database not migrated yet (a dry run creates no schema): it has no profiles."""
    return sa.inspect(conn).has_table("mapping_profiles")


def save_profile(engine: sa.Engine, mapping: ColumnMapping, *, name: str | None = None,
                 file_name: str | None = None, user: str | None = None) -> Profile:
    """Remember a confirmed mapping under its header signature (and `name`); a second save replaces it."""
    name = " ".join((name or "").split())[:255]
    if mapping.positional:
        raise UsageError("a file without a header row cannot have a saved mapping; add a header row first")
    values = {"signature": header_signature(mapping.headers), "name": name, "headers": list(mapping.headers),
              "mapping": {"fields": list(mapping.fields)}, "file_name": (file_name or "")[:255] or None,
              "saved_by": (user or "")[:255] or None, "saved_at": now()}
    with db_errors(engine), engine.begin() as conn:
        insert = (postgresql.insert if is_postgres(conn) else sqlite.insert)(mapping_profiles).values(**values)
        conn.execute(insert.on_conflict_do_update(
            index_elements=["signature", "name"],
            set_={k: insert.excluded[k] for k in ("headers", "mapping", "file_name", "saved_by", "saved_at")}))
        row = conn.execute(sa.select(mapping_profiles).where(mapping_profiles.c.signature == values["signature"],
                                                             mapping_profiles.c.name == name)).one()
    return _profile(row)


def find_profile(engine: sa.Engine, headers: Sequence[object]) -> Profile | None:
    """The most recently saved profile for these headers, named or not; None when there is none."""
    with reading(engine) as conn:
        if not _has_table(conn):
            return None
        row = conn.execute(sa.select(mapping_profiles)
                           .where(mapping_profiles.c.signature == header_signature(headers))
                           .order_by(mapping_profiles.c.saved_at.desc(), mapping_profiles.c.id.desc())).first()
    return _profile(row) if row else None


def remembered_mapping(engine: sa.Engine, detected: ColumnMapping) -> tuple[ColumnMapping, Profile] | None:
    """The rule both faces follow: a file whose headers have a saved mapping is read with it. The mapping to
    read with and its profile, or None when there is none, the file has no header row, or the saved mapping
    changes nothing of the detected one."""
    if detected.positional:
        return None
    profile = find_profile(engine, detected.headers)
    if profile is None:
        return None
    mapping = profile.apply_to(detected)
    return None if mapping.fields == detected.fields else (mapping, profile)


def list_profiles(engine: sa.Engine) -> list[Profile]:
    """Every saved profile, named ones first, by name, then the newest."""
    with reading(engine) as conn:
        if not _has_table(conn):
            return []
        rows = conn.execute(sa.select(mapping_profiles).order_by(
            (mapping_profiles.c.name == "").asc(), mapping_profiles.c.name, mapping_profiles.c.saved_at.desc())).all()
    return [_profile(row) for row in rows]


def profiles_named(engine: sa.Engine, name: str) -> list[Profile]:
    """The profiles saved under a name (one per header layout), the newest first."""
    name = " ".join(name.split())
    return sorted((p for p in list_profiles(engine) if p.name == name), key=lambda p: p.saved_at, reverse=True)


def delete_profile(engine: sa.Engine, profile_id: int) -> None:
    """Forget a profile (the page's "drop it")."""
    with db_errors(engine), engine.begin() as conn:
        conn.execute(mapping_profiles.delete().where(mapping_profiles.c.id == profile_id))


# --- the CLI's --mapping NAME | FILE.json ------------------------------------------------------------------


def _heads(data: bytes, file_name: str, settings: Settings, sheet: str | None) -> list[tuple[str, list[list[str]]]]:
    """(sheet, its first SCAN_ROWS rows) of the named sheet, or of every sheet."""
    spreadsheet = open_file(data, file_name, settings)
    names = [sheet] if sheet is not None else list(spreadsheet.sheet_names)
    return [(name, [[str(c) for c in cells] for cells in
                    list(spreadsheet.rows(name, settings.max_rows + SCAN_ROWS, head=SCAN_ROWS))[:SCAN_ROWS]])
            for name in names]


def _mapping_of(headers: list[str], row_number: int, fields: Sequence[str | None]) -> ColumnMapping:
    width = len(headers)
    blank = ColumnMapping(row_number, tuple(headers), (None,) * width, positional=False)
    return blank.with_fields((list(fields) + [None] * width)[:width])


def _with_profiles(engine: sa.Engine, name: str, data: bytes, file_name: str, settings: Settings,
                   sheet: str | None) -> tuple[str, ColumnMapping]:
    candidates = profiles_named(engine, name)
    if not candidates:
        saved = sorted({p.name for p in list_profiles(engine) if p.name})
        known = f"saved mappings: {', '.join(saved)}" if saved else "no mapping has been saved yet"
        raise UsageError(f"there is no saved mapping named {name!r} ({known}); or give a .json file, e.g. "
                         f"{JSON_EXAMPLE}")
    for sheet_name, rows in _heads(data, file_name, settings, sheet):
        for index, cells in enumerate(rows):
            for profile in candidates:
                if _names(cells) and header_signature(cells) == profile.signature:
                    return sheet_name, _mapping_of(cells, index + 1, profile.fields)
    raise UsageError(f"the saved mapping {name!r} is for the headers {', '.join(candidates[0].headers)}; no row in "
                     f"the first {SCAN_ROWS} rows of {file_name} has them")


def _json_fields(path: str) -> dict[str, str | None]:
    from importer.intake.json_input import mapping_fields, read_json_file

    what = f"the mapping file {path}"
    raw = mapping_fields(read_json_file(path, what), what, JSON_EXAMPLE)  # size, depth, types: one line
    return {normalise(k): v for k, v in raw.items() if normalise(k)}


def _with_json(path: str, data: bytes, file_name: str, settings: Settings,
               sheet: str | None) -> tuple[str, ColumnMapping]:
    """Columns the file names take its field; the others keep the field detected for them, unless the file
    gave that field to another column. The header row is the first row holding every header named."""
    wanted = _json_fields(path)
    best: tuple[int, str, int, list[str]] | None = None
    for sheet_name, rows in _heads(data, file_name, settings, sheet):
        for index, cells in enumerate(rows):
            found = len(set(wanted) & {normalise(c) for c in cells})
            if found and (best is None or found > best[0]):
                best = (found, sheet_name, index, cells)
    if best is None or best[0] < len(wanted):
        have = {normalise(c) for c in best[3]} if best else set()
        missing = [k for k in wanted if k not in have]
        raise UsageError(f"the mapping file {path} names column(s) {file_name} does not have in its first "
                         f"{SCAN_ROWS} rows: {', '.join(missing)}")
    _, sheet_name, index, cells = best
    taken = {f for f in wanted.values() if f}
    fields: list[str | None] = []
    for cell in cells:
        key = normalise(cell)
        field = wanted[key] if key in wanted else match_header(cell) if key else None
        if key not in wanted and field in taken:
            field = None  # the file gave that field to another column (or an earlier column has it)
        if field:
            taken.add(field)
        fields.append(field)
    try:
        return sheet_name, _mapping_of(cells, index + 1, fields)
    except UsageError as exc:
        raise UsageError(f"the mapping file {path}: {exc}") from None


def resolve_mapping(engine: sa.Engine, spec: str, data: bytes, file_name: str, settings: Settings,
                    sheet: str | None = None) -> tuple[str, ColumnMapping]:
    """(sheet, mapping) for `--mapping NAME` (a saved profile) or `--mapping FILE.json`; UsageError, in one
    line, for an unknown name, a bad file, or headers the file does not have."""
    if spec.lower().endswith(".json"):
        return _with_json(spec, data, file_name, settings, sheet)
    return _with_profiles(engine, spec, data, file_name, settings, sheet)


def read_with_mapping(data: bytes, file_name: str, settings: Settings, sheet: str, mapping: ColumnMapping) -> Upload:
    """read_upload with a mapping and sheet already settled (resolve_mapping's): the header row need not be
    one the detection recognises, which is what a mapping file is for."""
    spreadsheet = open_file(data, file_name, settings)
    rows = spreadsheet.rows(sheet, settings.max_rows + SCAN_ROWS, columns=mapped_columns(mapping))
    frame = apply_mapping(rows, mapping, settings.max_rows)
    del rows
    return Upload(spreadsheet.file_name, spreadsheet.sha256, spreadsheet.format, spreadsheet.sheet_names, sheet,
                  mapping, check_frame(frame, settings))


def read_remembered(engine: sa.Engine, data: bytes, file_name: str, settings: Settings,
                    sheet: str | None = None) -> tuple[Upload, Profile | None]:
    """read_upload, then the remembered-mapping rule (remembered_mapping): a file whose headers have a saved
    mapping is read again with it, also when the detection alone finds too few columns. The upload and the
    profile used (None: the detected mapping). A database that cannot be asked leaves the detected one."""
    upload: Upload | None = None
    refused: MissingColumns | None = None
    at_sheet: str | None
    try:
        upload = read_upload(data, file_name, settings, sheet=sheet)
        detected, at_sheet = upload.mapping, upload.sheet
    except MissingColumns as exc:
        if exc.mapping is None:
            raise
        refused, detected, at_sheet = exc, exc.mapping, exc.sheet
    try:
        found = remembered_mapping(engine, detected)
    except DatabaseError:
        found = None
    if found is None:
        if upload is None and refused is not None:
            raise refused
        assert upload is not None
        return upload, None
    mapping, profile = found
    return read_upload(data, file_name, settings, sheet=at_sheet, mapping=mapping), profile
