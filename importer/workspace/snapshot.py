"""The snapshot: the file as read and checked, kept beside it so a replay need not read the file again.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import zipfile
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, cast

import numpy as np
import pandas as pd
import pyarrow as pa

from importer.api import Upload
from importer.checks.validate import (
    TEXT,
    Checked,
)
from importer.mapping.columns import ColumnMapping
from importer.outcomes.error_table import ErrorTable
from importer.settings import Settings

# --- the snapshot: the file as read and checked ------------------------------------------------------------

_SNAPSHOT_VERSION = 2  # 1: Parquet frames (read again from the file, then stored as 2)
_LOG = logging.getLogger(__name__)


def _arrow_file(frame: pd.DataFrame) -> bytes:
    """A frame as an Arrow IPC file, its buffers zstd-compressed. Not Parquet: a replay would import
    pyarrow.parquet and pandas' Parquet reader for it, 15 MB of a fresh process's memory (measured)."""
    table = pa.Table.from_pandas(frame, preserve_index=True)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema, options=pa.ipc.IpcWriteOptions(compression="zstd")) as writer:
        writer.write_table(table)
    return cast(bytes, sink.getvalue().to_pybytes())


def snapshot_bytes(upload: Upload, *, remapped: bool = False) -> bytes:
    """The upload as read and checked (before any operation): its text and normalised frames (Arrow IPC), its
    errors (arrays) and what the reading learned (JSON). A replay starts from it instead of reading and
    validating the file again. Store it with create_workspace(snapshot=...). remapped: read with a mapping
    change's mapping (a replay uses it only while that mapping change is in force), not the workspace's."""
    checked = upload.checked
    arrays, texts = checked.errors.to_arrays()
    notes = upload.notes
    meta = {
        "version": _SNAPSHOT_VERSION, "remapped": remapped, "file_name": upload.file_name, "sha256": upload.sha256,
        "format": upload.format, "sheet_names": list(upload.sheet_names), "sheet": upload.sheet,
        "mapping": upload.mapping.to_dict(), "texts": texts,
        "report_columns": None if upload.report_columns is None else [c.to_json() for c in upload.report_columns],
        "report": None if upload.report is None else dataclasses.asdict(upload.report),
        "notes": {"skipped_rows": [dataclasses.asdict(r) for r in notes.skipped_rows],
                  "ignored_values": notes.ignored_values, "full_names": notes.full_names},
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("meta.json", json.dumps(meta))
        archive.writestr("original.arrow", _arrow_file(checked.original))
        archive.writestr("normalised.arrow", _arrow_file(checked.normalised))
        if upload.other_columns is not None:
            archive.writestr("other.arrow", _arrow_file(upload.other_columns))
        errors = io.BytesIO()
        np.savez(errors, **cast(dict[str, Any], arrays))
        archive.writestr("errors.npz", errors.getvalue())
    return buffer.getvalue()


class ArrowColumns:
    """The text columns of a frame stored as an Arrow IPC file (a snapshot's), read one at a time when
    asked for: the file is held (compressed: 1 MB for 100,000 rows), its columns are not."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        with pa.ipc.open_file(pa.BufferReader(data)) as reader:
            schema = reader.schema
        index_field = (schema.pandas_metadata or {}).get("index_columns", [None])[0]
        if not isinstance(index_field, str):
            raise ValueError("the snapshot's frame has no stored index")
        self._fields = {name: i for i, name in enumerate(schema.names)}
        self.columns = [name for name in schema.names if name != index_field]
        rows = self._read(index_field).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
        self.index = pd.Index(rows, name=None if index_field.startswith("__index_level_") else index_field)

    def _read(self, name: str) -> pa.Array:
        options = pa.ipc.IpcReadOptions(included_fields=[self._fields[name]], use_threads=False)
        with pa.ipc.open_file(pa.BufferReader(self.data), options=options) as reader:
            return reader.read_all().column(0).combine_chunks()

    def column(self, name: str) -> pd.Series:
        return pd.Series(self._read(name).cast(pa.large_string()), index=self.index, dtype=TEXT, copy=False)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({name: self.column(name).array for name in self.columns}, index=self.index, copy=False)


class _Start(NamedTuple):
    upload: Upload
    text: Any  # pd.DataFrame, or ArrowColumns when loaded lazily
    normalised: Any
    errors: ErrorTable


def _other_columns(archive: zipfile.ZipFile) -> pd.DataFrame | None:
    """The columns the mapping left out (as read: any types), when the snapshot has them."""
    if "other.arrow" not in archive.namelist():
        return None
    with pa.ipc.open_file(pa.BufferReader(archive.read("other.arrow"))) as reader:
        return cast(pd.DataFrame, reader.read_all().to_pandas())


def _no_rows(frame: ArrowColumns) -> pd.DataFrame:
    """A snapshot frame's text columns with no rows, sharing no memory with it (a slice such as
    frame.iloc[:0] keeps every column's whole Arrow buffer alive)."""
    return pd.DataFrame({column: pd.Series([], dtype=TEXT) for column in frame.columns},
                        index=frame.index[:0].copy())


def _offer(store: Callable[[bytes], None], blob: bytes) -> None:
    try:
        store(blob)
    except Exception:  # noqa: BLE001 - a snapshot is a cache: the replay goes on without storing it
        _LOG.warning("a workspace snapshot could not be stored", exc_info=True)


def _same_mapping(meta: Mapping[str, Any], remapped: ColumnMapping | None) -> bool:
    """Whether a snapshot was read with the mapping in force: the workspace's own (no mapping change), or
    the last mapping change's."""
    if remapped is None:
        return not meta.get("remapped")
    return bool(meta.get("remapped")) and meta.get("mapping") == json.loads(json.dumps(remapped.to_dict()))


def load_snapshot(blob: bytes, settings: Settings, *, remapped: ColumnMapping | None = None,
                  sheet: str | None = None, lazy: bool = False) -> _Start | None:
    """The upload a snapshot holds, ready for the replay's fold; None when it was read with another mapping
    than the one in force (`remapped`: the last mapping change's, None for the workspace's own) or when it
    cannot be read (and a log line), and the replay reads the file instead. lazy: its text and normalised
    frames as ArrowColumns, read a column at a time when asked for."""
    from importer.intake.delimited import SkippedRow
    from importer.mapping.columns import SheetNotes
    from importer.mapping.roundtrip import ReportUpload
    from importer.outcomes.failed_rows import ReportColumn

    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as archive:
            meta = json.loads(archive.read("meta.json"))
            if (meta.get("version") != _SNAPSHOT_VERSION or not _same_mapping(meta, remapped)
                    or (sheet is not None and meta.get("sheet") != sheet)):
                return None
            text = ArrowColumns(archive.read("original.arrow"))
            normalised = ArrowColumns(archive.read("normalised.arrow"))
            others = _other_columns(archive)
            with np.load(io.BytesIO(archive.read("errors.npz")), allow_pickle=False) as arrays:
                errors = ErrorTable.from_arrays({k: arrays[k] for k in arrays.files}, meta["texts"])
        notes = meta["notes"]
        report = meta["report"]
        upload = Upload(
            meta["file_name"], meta["sha256"], meta["format"], tuple(meta["sheet_names"]), meta["sheet"],
            ColumnMapping.from_dict(meta["mapping"]), Checked(_no_rows(text), _no_rows(normalised), ErrorTable.empty()),
            report_columns=None if meta["report_columns"] is None else tuple(
                ReportColumn.from_json(c) for c in meta["report_columns"]),
            other_columns=others,
            report=None if report is None else ReportUpload(
                report["fixes_run_id"], tuple(report["columns"]), tuple(tuple(p) for p in report["renumbered"])),
            notes=SheetNotes(tuple(SkippedRow(**r) for r in notes["skipped_rows"]),
                             tuple((int(i), tuple((str(v), int(n)) for v, n in values))
                                   for i, values in notes["ignored_values"]),
                             tuple((int(r), str(t)) for r, t in notes["full_names"])),
        )
        if len(text.index) > settings.max_rows or not text.index.equals(normalised.index):
            return None
        if not lazy:
            text, normalised = text.frame(), normalised.frame()
    except Exception:  # noqa: BLE001 - a snapshot is a cache: any fault means reading the file instead
        _LOG.warning("a workspace snapshot could not be read; the file is read instead", exc_info=True)
        return None
    return _Start(upload, text, normalised, errors)


