"""Workspaces: an upload kept in the database as its file plus an ordered, undoable list of operations.

What the analyst sees is replay(file, operations) (OpenRefine's project model): deterministic, so a refresh,
another tab, a restart or another dashboard instance against the same database rebuilds the same frame.
A live operation is applied at once to the frame in hand (perform); replay folds all of them, with the text
changes batched and the rows validated once at the end, so 1,000 operations cost about one read of the file.
Also here: the database state a dry run saw (stale_reason), and resuming a run from its workspace.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import inspect
import io
import json
import logging
import zipfile
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any, ClassVar, NamedTuple, Protocol, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from importer.api import Upload, read_unchecked
from importer.checks.in_file import duplicate_rows, find_duplicates_in_file
from importer.checks.validate import (
    TEXT,
    Checked,
    check_cells,
    check_frame,
    coupled_fields,
    coupled_groups,
    exclude,
    recheck,
    row_numbers,
)
from importer.database.ledger import aware, get_run, now
from importer.database.schema import current_revision, db_errors, metadata, reading
from importer.errors import FileMismatch, ImporterError, LimitExceeded, RunError
from importer.intake.zip_guard import MB
from importer.mapping.columns import ColumnMapping
from importer.outcomes.results import ErrorCode, ErrorTable, RunStatus
from importer.review.fixes import Fix, apply_fix, arrow_text, available_fixes, changed_cells, fill_region_fix
from importer.server.memory import release_free_memory, trim_heap
from importer.settings import Settings
from schemas.customer import FIELD_NAMES, REGIONS, UNIQUE_FIELDS, label_of

workspaces = sa.Table(
    "workspaces",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("owner", sa.String(255), nullable=False, index=True),
    sa.Column("file_name", sa.String(255), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("file_size", sa.Integer, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),  # the file, zlib-compressed
    sa.Column("sheet", sa.String(255)),
    sa.Column("mapping", sa.JSON),
    sa.Column("rows", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("discarded_at", sa.DateTime(timezone=True)),
    sa.Column("snapshot", sa.LargeBinary),  # the file as read and checked (snapshot_bytes; migration 0007)
)

# Active operations are a prefix of seq; the undone ones after them are the redo stack (a new operation
# deletes them), so the last active seq names the state: it is the workspace's version.
workspace_operations = sa.Table(
    "workspace_operations",
    metadata,
    sa.Column("workspace_id", sa.Integer, sa.ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("undone", sa.Boolean, nullable=False, server_default=sa.false()),
)

# import_runs.workspace_id (migration 0004), named here so this module needs nothing new in importer.database.schema.
_runs = sa.table("import_runs", sa.column("id", sa.Integer), sa.column("status", sa.String),
                 sa.column("workspace_id", sa.Integer), sa.column("file_name", sa.String),
                 sa.column("sha256", sa.String), sa.column("user_name", sa.String),
                 sa.column("rows_done", sa.Integer), sa.column("started_at", sa.DateTime(timezone=True)),
                 sa.column("finished_at", sa.DateTime(timezone=True)),
                 sa.column("undone_at", sa.DateTime(timezone=True)))
_RESUMABLE = (RunStatus.RUNNING.value, RunStatus.INTERRUPTED.value)


class WorkspaceError(ImporterError):
    """A workspace cannot be acted on: unknown, expired, discarded, someone else's, or a bad operation."""


class WorkspaceChanged(WorkspaceError):
    """Another tab or instance changed the workspace since this frame was built."""


# --- operations ------------------------------------------------------------------------------------------


class Operation(Protocol):
    """What every operation is: a kind, a JSON payload and a sentence for the history list."""

    kind: ClassVar[str]

    def to_dict(self) -> dict[str, Any]: ...


REGISTRY: dict[str, Any] = {}
# Plug-in kinds without an apply method: kind -> (apply(checked, op, settings), new_values(checked, op) or
# None). new_values, when a kind has it, gives the new text of the rows it changes from the text alone.
_APPLIERS: dict[str, tuple[Callable[..., Checked], Callable[..., pd.Series] | None]] = {}


def register(cls: Any, apply: Callable[..., Checked] | None = None,
             new_values: Callable[..., pd.Series] | None = None) -> Any:
    """Make an operation class replayable by its `kind` (other modules' operations plug in here); a class
    without an apply(checked, settings) method names a function apply(checked, op, settings) instead."""
    REGISTRY[cls.kind] = cls
    if apply is not None:
        _APPLIERS[cls.kind] = (apply, new_values)
    return cls


def _plugins() -> None:
    """importer.review.conversions's operations (value conversion, find and replace), when that module exists."""
    try:
        convert = importlib.import_module("importer.review.conversions")
    except ImportError:
        return
    for name in ("Conversion", "Replace"):
        cls = getattr(convert, name, None)
        if cls is not None and hasattr(cls, "from_dict") and REGISTRY.get(str(getattr(cls, "kind", ""))) in (None, cls):
            register(cls, getattr(convert, "apply_operation", None), getattr(convert, "new_values", None))


def applier(op: Any) -> Callable[[Checked, Settings], Checked]:
    """apply(checked, settings) of an operation, its own or its plug-in module's."""
    if hasattr(op, "apply"):
        return op.apply
    if kind_of(op) not in _APPLIERS:
        _plugins()
    found = _APPLIERS.get(kind_of(op))
    if found is None:
        raise WorkspaceError(f"{type(op).__name__} cannot be applied: it has no apply method")
    return lambda checked, settings: found[0](checked, op, settings)


def kind_of(op: Any) -> str:
    """The registry key of an operation (registering a plug-in class the first time it is seen)."""
    kind = getattr(type(op), "kind", type(op).__name__.lower())
    if kind not in REGISTRY:
        _plugins()
    if kind not in REGISTRY:
        if not hasattr(type(op), "from_dict"):
            raise WorkspaceError(f"{type(op).__name__} cannot be saved in a workspace: it has no from_dict")
        REGISTRY[kind] = type(op)
    return str(kind)


def operation_from_dict(kind: str, payload: Mapping[str, Any]) -> Any:
    """The operation a workspace stored; WorkspaceError for a kind this version does not know."""
    if kind not in REGISTRY:
        _plugins()
    cls = REGISTRY.get(kind)
    if cls is None:
        raise WorkspaceError(f"this version cannot replay a {kind!r} operation; update the importer")
    return cls.from_dict(dict(payload))


def summary_of(op: Any, before: Checked | None = None, after: Checked | None = None) -> str:
    """The history line of an operation: its describe(before, after), describe() or summary."""
    for name in ("describe", "summary"):
        attr = getattr(op, name, None)
        if isinstance(attr, str):
            return attr
        if callable(attr):
            wants = len(inspect.signature(attr).parameters)
            return str(attr(before, after) if wants >= 2 else attr())
    return f"{kind_of(op)} applied"


def _plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count:,} {one if count == 1 else (many or one + 's')}"


def _shown(text: str) -> str:
    text = " ".join(text.split())
    return "(blank)" if not text else text if len(text) <= 40 else text[:37] + "..."


def _rows_text(rows: Sequence[int]) -> str:
    head = ", ".join(str(r) for r in rows[:5])
    return head + (f" and {len(rows) - 5:,} more" if len(rows) > 5 else "")


def _text(value: object) -> str:
    return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


@register
@dataclass(frozen=True)
class CellEdit:
    """Cells typed in the grid: (source row, field, text before, text after) each."""

    kind: ClassVar[str] = "edit"
    edits: tuple[tuple[int, str, str, str], ...]

    @classmethod
    def of(cls, checked: Checked, changes: Mapping[int, Mapping[str, object]]) -> CellEdit | None:
        """The edit of `changes` ({row: {field: new text}}) against the frame; None when nothing changes."""
        edits: list[tuple[int, str, str, str]] = []
        for row, fields in changes.items():
            if int(row) not in checked.original.index:
                raise WorkspaceError(f"row {row} is not in this upload (not in the file, or excluded)")
            for field, value in fields.items():
                if field not in FIELD_NAMES:
                    raise WorkspaceError(f"{field!r} is not a customer field; fields are: {', '.join(FIELD_NAMES)}")
                before, after = str(checked.original.at[int(row), field]), _text(value)
                if after != before:
                    edits.append((int(row), field, before, after))
        return cls(tuple(edits)) if edits else None

    def to_dict(self) -> dict[str, Any]:
        return {"edits": [list(edit) for edit in self.edits]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CellEdit:
        return cls(tuple((int(r), str(f), str(b), str(a)) for r, f, b, a in data["edits"]))

    def apply(self, checked: Checked, settings: Settings) -> Checked:
        rows = [r for r in dict.fromkeys(edit[0] for edit in self.edits) if r in checked.original.index]
        if not rows:
            return checked
        changed = checked.original.loc[rows].copy()
        for row, field, _before, after in self.edits:
            if row in changed.index:
                changed.at[row, field] = after
        return recheck(checked, changed, settings)

    def describe(self, before: Checked | None = None, after: Checked | None = None) -> str:
        if len(self.edits) == 1:
            row, field, old, new = self.edits[0]
            return f"Row {row}: {label_of(field).lower()} {_shown(old)} -> {_shown(new)}"
        rows = sorted({edit[0] for edit in self.edits})
        return f"Edited {_plural(len(self.edits), 'cell')} in {_plural(len(rows), 'row')}: {_rows_text(rows)}"


def _rows_changed(before: pd.DataFrame, after: pd.DataFrame, columns: Sequence[str]) -> int:
    """How many rows differ in any of `columns`, a column at a time (no copy of either frame: a bulk fix over
    100,000 rows is described on a server where every MB counts)."""
    if not before.index.equals(after.index):
        rows = before.index.intersection(after.index)
        before, after = before.loc[rows, list(columns)], after.loc[rows, list(columns)]
    changed = np.zeros(len(before), dtype=bool)
    for column in columns:
        changed |= before[column].to_numpy(dtype=object) != after[column].to_numpy(dtype=object)
    return int(changed.sum())


_FIX_WORDS = {"trim": ("Trimmed spaces in", "row"), "phones": ("Normalised", "phone number"),
              "emails": ("Lower-cased", "email"), "names": ("Title-cased the names of", "row")}


@register
@dataclass(frozen=True)
class BulkFix:
    """A bulk fix of importer.review.fixes by key ("region" takes the region code to fill blanks with)."""

    kind: ClassVar[str] = "fix"
    key: str
    region: str | None = None
    only_failing: bool = False

    def __post_init__(self) -> None:
        if self.key == "region" and self.region not in REGIONS:
            raise WorkspaceError(f"{self.region!r} is not a region code; codes are: {', '.join(REGIONS)}")
        if self.key != "region" and self.key not in _FIX_WORDS:
            raise WorkspaceError(f"there is no bulk fix {self.key!r}; fixes are: region, {', '.join(_FIX_WORDS)}")

    def fix(self, settings: Settings) -> Fix:
        return fill_region_fix(str(self.region)) if self.key == "region" else available_fixes(settings)[self.key]

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "region": self.region, "only_failing": self.only_failing}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BulkFix:
        return cls(str(data["key"]), data.get("region"), bool(data.get("only_failing", False)))

    def apply(self, checked: Checked, settings: Settings) -> Checked:
        return apply_fix(checked, self.fix(settings), settings, self.only_failing)[0]

    def describe(self, before: Checked | None = None, after: Checked | None = None) -> str:
        count = None
        if before is not None and after is not None:
            columns = ["region"] if self.key == "region" else list(available_fixes(Settings())[self.key].columns)
            count = _rows_changed(before.original, after.original, columns)
        tail = " (failing rows only)" if self.only_failing else ""
        if self.key == "region":
            what = "blank regions" if count is None else _plural(count, "blank region")
            return f"Filled {what} with {REGIONS[str(self.region)]}{tail}"
        verb, noun = _FIX_WORDS[self.key]
        return f"{verb} {noun + 's' if count is None else _plural(count, noun)}{tail}"


@register
@dataclass(frozen=True)
class Exclude:
    """Rows left out of the import (and of its counts); `reason` says why, for the history list."""

    kind: ClassVar[str] = "exclude"
    rows: tuple[int, ...]
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"rows": list(self.rows), "reason": self.reason}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Exclude:
        return cls(tuple(int(r) for r in data["rows"]), str(data.get("reason", "")))

    def apply(self, checked: Checked, settings: Settings) -> Checked:
        return exclude(checked, list(self.rows))

    def describe(self, before: Checked | None = None, after: Checked | None = None) -> str:
        what = f"row {self.rows[0]}" if len(self.rows) == 1 else _plural(len(self.rows), "row")
        return f"Excluded {what}" + (f" ({self.reason})" if self.reason else "")


@register
@dataclass(frozen=True)
class Include:
    """Excluded rows taken back, with their text as it was when they were excluded (a replay: perform)."""

    kind: ClassVar[str] = "include"
    rebuild: ClassVar[bool] = True
    rows: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"rows": list(self.rows)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Include:
        return cls(tuple(int(r) for r in data["rows"]))

    def describe(self, before: Checked | None = None, after: Checked | None = None) -> str:
        what = f"row {self.rows[0]}" if len(self.rows) == 1 else _plural(len(self.rows), "row")
        return f"Included {what} again"


@register
@dataclass(frozen=True)
class MappingChange:
    """A new column -> field mapping: the file is read again with it and every other operation replayed."""

    kind: ClassVar[str] = "mapping"
    rebuild: ClassVar[bool] = True
    mapping: ColumnMapping
    previous: tuple[str | None, ...] = ()

    @classmethod
    def of(cls, current: ColumnMapping, fields: Sequence[str | None]) -> MappingChange:
        """The change from `current` to `fields` (one per column, None = ignored); UsageError if unusable."""
        return cls(current.with_fields(fields), current.fields)

    def to_dict(self) -> dict[str, Any]:
        return {"mapping": self.mapping.to_dict(), "previous": list(self.previous)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MappingChange:
        return cls(ColumnMapping.from_dict(data["mapping"]), tuple(data.get("previous", ())))

    def describe(self, before: Checked | None = None, after: Checked | None = None) -> str:
        previous = self.previous or (None,) * len(self.mapping.fields)
        changes = [f"{header.strip() or f'column {i + 1}'} -> {label_of(new) if new else 'ignored'}"
                   for i, (header, old, new) in enumerate(zip(self.mapping.headers, previous, self.mapping.fields,
                                                              strict=False)) if old != new]
        return "Mapping changed: " + "; ".join(changes) if changes else "Mapping confirmed"


def include_again(checked: Checked, rows: pd.DataFrame, settings: Settings) -> Checked:
    """The upload with excluded rows back (`rows`: their text, index = source row), validated again.

    importer.checks.validate has exclude() but not its inverse; this is it.
    """
    rows = rows[~rows.index.isin(checked.original.index)].reindex(columns=list(FIELD_NAMES)).fillna("").astype(TEXT)
    if rows.empty:
        return checked
    blank = pd.DataFrame(pd.NA, index=rows.index, columns=list(FIELD_NAMES)).astype(TEXT)
    widened = Checked(original=pd.concat([checked.original, rows]).sort_index(),
                      normalised=pd.concat([checked.normalised, blank]).sort_index(), errors=checked.errors)
    return recheck(widened, rows, settings, every_field=True)  # their blank checked values are not theirs


# --- replay ------------------------------------------------------------------------------------------------


def _read_text(data: bytes, file_name: str, settings: Settings, sheet: str | None,
               mapping: ColumnMapping | None) -> tuple[Upload, pd.DataFrame]:
    """What read_upload reads, before validation: an Upload without rows (with the report's columns, the
    skipped rows and a report's own numbering, as read_upload has them), and the mapped text."""
    upload, frame = read_unchecked(data, file_name, settings, sheet, mapping)
    text = frame.reindex(columns=list(FIELD_NAMES), fill_value="").fillna("").astype(TEXT)
    del frame
    return upload, text


_DUPLICATE = ErrorCode.DUPLICATE_IN_FILE


def _differs(old: pd.Series, new: pd.Series) -> np.ndarray:
    """Where two text columns of the same rows differ (a missing value equals a missing one), compared in
    Arrow: comparing object arrays made a Python string of every cell on both sides."""
    a, b = arrow_text(old), arrow_text(new)
    same = pc.or_(pc.fill_null(pc.equal(a, b), False), pc.and_(pc.is_null(a), pc.is_null(b)))
    return ~np.asarray(same.to_numpy(zero_copy_only=False), dtype=bool)


def _packed(array: pa.Array) -> pa.Buffer:
    """One column as an Arrow IPC stream, zstd-compressed (in this thread: see ArrowColumns)."""
    batch = pa.record_batch([array], names=["cells"])
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression="zstd", use_threads=False)
    with pa.ipc.new_stream(sink, batch.schema, options=options) as writer:
        writer.write_batch(batch)
    return sink.getvalue()


def _unpacked(packed: pa.Buffer) -> pa.Array:
    with pa.ipc.open_stream(packed, options=pa.ipc.IpcReadOptions(use_threads=False)) as reader:
        return reader.read_all().column(0).combine_chunks()


def _positions(index: pd.Index, rows: Sequence[int] | pd.Index | np.ndarray) -> np.ndarray:
    """Where each of `rows` is in `index` (-1: not there), as Index.get_indexer gives, by binary search when
    the index is in order (source rows are): pandas' lookups build a hash table of the index, 2 MB per
    100,000 rows, kept with the index for as long as it lives."""
    labels = np.asarray(rows, dtype=np.int64)
    if not index.is_monotonic_increasing or not index.is_unique:
        return np.asarray(index.get_indexer(labels), dtype=np.intp)
    values = index.to_numpy()
    at = np.searchsorted(values, labels)
    found = at < len(values)
    found[found] = values[at[found]] == labels[found]
    return np.where(found, at, -1)


class _Patched:
    """Text columns (index: source rows) and the cells operations changed in them, kept beside the columns.

    The columns are not written while a replay runs: each write of an Arrow string column makes the column
    anew, and glibc seldom reuses the freed one (Arrow asks for aligned blocks a little larger than the
    ones it gave back), so a replay's memory grew with each of its hundred column writes. The changed cells
    are kept by column, as sorted row numbers and their values, and written in when a column has many
    (a quarter of its rows) or at the end, once. The columns come from a frame, or from a snapshot
    (`source`), read one at a time when an operation needs one and let go after it, so a replay holds
    only the cells it changed and the columns it rewrote."""

    def __init__(self, frame: pd.DataFrame | None = None, source: ArrowColumns | None = None) -> None:
        self.source = source
        if frame is not None:
            self.index, self.columns = frame.index, list(frame.columns)
            self.held: dict[str, pd.Series] = {column: frame[column] for column in self.columns}
        else:
            assert source is not None
            self.index, self.columns, self.held = source.index, list(source.columns), {}
        self.rows: dict[str, np.ndarray] = {}
        self.values: dict[str, np.ndarray] = {}  # object arrays: text, or None/NaN for a missing value
        self.packed: dict[str, pa.Buffer] = {}  # columns rewritten while read from a snapshot, compressed as it

    def base(self, column: str) -> pd.Series:
        """A column as the frame or the snapshot has it, before the changes kept beside it."""
        held = self.held.get(column)
        if held is not None:
            return held
        packed = self.packed.get(column)
        if packed is not None:
            return pd.Series(_unpacked(packed), index=self.index, dtype=TEXT, copy=False)
        return cast(ArrowColumns, self.source).column(column)

    def set(self, column: str, new: pd.Series) -> None:
        """Some cells of a column take new values (new: index = source rows, each once)."""
        if not len(new):
            return
        held = self.rows.get(column)
        if (len(new) + (0 if held is None else len(held))) * 4 > len(self.index):
            # Many cells: written into the column now (in Arrow: no Python object per cell).
            current = self.column(column)
            positions = _positions(self.index, new.index)
            order = np.argsort(positions, kind="stable")
            mask = np.zeros(len(self.index), dtype=bool)
            mask[positions] = True
            array = pc.replace_with_mask(arrow_text(current), pa.array(mask),
                                         arrow_text(new).take(pa.array(order)))
            if self.source is not None:  # kept compressed, like the snapshot's columns: 0.5 MB, not 2.5
                self.packed[column] = _packed(array)
            else:
                self.held[column] = pd.Series(array, index=self.index, dtype=current.dtype, copy=False)
            self.rows.pop(column, None)
            self.values.pop(column, None)
            return
        rows, values = new.index.to_numpy(dtype=np.int64), new.to_numpy(dtype=object)
        if held is not None:  # the new value of a cell changed before wins
            rows = np.concatenate([held, rows])
            values = np.concatenate([self.values[column], values])
        order = np.argsort(rows, kind="stable")
        rows, values = rows[order], values[order]
        last = np.ones(len(rows), dtype=bool)
        last[:-1] = rows[1:] != rows[:-1]
        self.rows[column], self.values[column] = rows[last], values[last]

    def column(self, column: str, rows: Sequence[int] | pd.Index | np.ndarray | None = None) -> pd.Series:
        """A column as it is now: all rows, or `rows` in their order (rows of the frame)."""
        base = self.base(column)
        array = arrow_text(base)
        if rows is None:
            index = self.index
        else:
            index = pd.Index(np.asarray(rows, dtype=np.int64), name=self.index.name)
            array = array.take(pa.array(_positions(self.index, index), type=pa.int64()))
        held = self.rows.get(column)
        if held is not None:
            labels = index.to_numpy(dtype=np.int64)
            at = np.searchsorted(held, labels)
            at[at == len(held)] = 0
            hit = held[at] == labels
            if hit.any():
                new = pa.array(self.values[column][at[hit]], type=pa.large_string(), from_pandas=True)
                array = pc.replace_with_mask(array, pa.array(hit), new)
        return pd.Series(array, index=index, dtype=base.dtype, copy=False)

    def take(self, columns: Sequence[str], rows: Sequence[int] | pd.Index | np.ndarray | None = None) -> pd.DataFrame:
        """Some columns as they are now, for all rows or `rows` (in their order)."""
        taken = {column: self.column(column, rows).array for column in columns}
        index = self.index if rows is None else pd.Index(np.asarray(rows, dtype=np.int64), name=self.index.name)
        return pd.DataFrame(taken, index=index, copy=False)

    def give_up(self, rows: pd.Index | None) -> pd.DataFrame:
        """The frame as it is now, for all rows or `rows`, made a column at a time while this one lets
        each column go once it is made: one column on top of what is held, not a second frame."""
        taken: dict[str, Any] = {}
        for column in self.columns:
            taken[column] = self.column(column, rows).array
            self.held.pop(column, None)
            self.packed.pop(column, None)
            self.rows.pop(column, None)
            self.values.pop(column, None)
            trim_heap()  # the column's transient copies, before the next column's come on top of them
        self.source = None
        return pd.DataFrame(taken, index=self.index if rows is None else rows, copy=False)


class _Replay:
    """The fold of replay(). Every row read stays in `text` (excluded ones too: an include-again is then only
    a set operation) with its normalised values and its own errors (`normalised`, `errors`, duplicates
    aside). Neither frame is written while operations run: the cells they change are kept beside them
    (_Patched). Cell edits are batched; rows are validated when an operation needs the errors (a fix of
    failing rows, a plug-in) and at the end, and then only the cells changed since; duplicates are found
    over the rows not excluded. The last step makes the frames, a column at a time."""

    def __init__(self, text: _Patched, settings: Settings, normalised: _Patched | None = None,
                 errors: ErrorTable | None = None) -> None:
        """normalised, errors: the text's normalised values and errors when they are known (a snapshot, or
        the file checked as read); else the first update checks every row."""
        self.text, self.settings = text, settings
        self.excluded: set[int] = set()
        self.pending: dict[tuple[int, str], str] = {}
        self.normalised = normalised
        self.errors = ErrorTable.empty() if errors is None else errors.without_code(_DUPLICATE)
        self.marked: dict[str, list[np.ndarray]] = {}  # field -> rows whose text changed since the last check
        # The duplicates among the rows kept, as of `changes`, the count of changes to the keys or to the rows
        # kept: fixes of failing rows one after another find them once when they change no key.
        self.changes = 0
        self.duplicates: tuple[int, np.ndarray] | None = None

    def present(self) -> pd.Index:
        keep = self.kept()
        return self.text.index if keep is None else self.text.index[keep]

    def flush(self) -> None:
        """Take the batched cell edits into the text, a column at a time."""
        by_field: dict[str, dict[int, str]] = {}
        for (row, field), value in self.pending.items():
            by_field.setdefault(field, {})[row] = value
        for field, values in by_field.items():
            rows = np.fromiter(values, dtype=np.int64, count=len(values))
            self.text.set(field, pd.Series(list(values.values()), index=rows, dtype=object))
            self.mark(field, rows)
        self.pending.clear()

    def mark(self, field: str, rows: np.ndarray) -> None:
        """Note that some rows' text of a field changed (they are checked again at the next update)."""
        self.marked.setdefault(field, []).append(rows)

    def update(self) -> _Patched:
        """Normalised values and own errors of every row, brought up to date with the text."""
        self.flush()
        dirty = {field: row_numbers(np.concatenate(parts)) for field, parts in self.marked.items()}
        self.marked = {}
        rows = row_numbers(np.concatenate(list(dirty.values()))) if dirty else np.zeros(0, np.int64)
        if self.normalised is None or (len(rows) * 2 >= len(self.text.index)
                                       and len(coupled_fields(dirty)) == len(FIELD_NAMES)):
            self.normalised = None  # most rows and every field changed: check afresh, the old frame let go first
            text = self.text.give_up(None)
            release_free_memory()  # and what the text changes freed handed back, so the check does not add to it
            fresh = check_frame(text, self.settings)
            self.text = _Patched(fresh.original)
            self.normalised, self.errors = _Patched(fresh.normalised), fresh.errors.without_code(_DUPLICATE)
            self.changes += 1
        elif len(rows) and len(rows) * 2 < len(self.text.index):
            # Only the cells whose text changed (each field's value and errors are its own cell's), of the
            # changed rows only: a few rows' cells looked up in each column.
            self.check(coupled_fields(dirty), dirty, rows)
        elif len(rows):
            # Most rows: a field (and its coupled one) at a time, so that only one field's columns are made
            # at once (whole columns when most of its rows changed); a trim of every row's names
            # normalises no phone again.
            for group in coupled_groups(dirty):
                cells = {field: dirty[field] for field in group if field in dirty}
                changed = row_numbers(np.concatenate(list(cells.values())))
                self.check(group, cells, None if len(changed) * 2 >= len(self.text.index) else changed)
        return self.normalised

    def check(self, fields: list[str], cells: Mapping[str, np.ndarray], rows: np.ndarray | None) -> None:
        """check_cells for the changed cells of some fields (`cells`: field -> rows; rows: those to look up,
        None: whole columns), their new values and errors kept in place of the old ones."""
        normalised = cast(_Patched, self.normalised)
        values, errors = check_cells(self.text.take(fields, rows), normalised.take(fields, rows), cells,
                                     self.settings)
        for column, new in values.items():
            normalised.set(column, new)
        if not set(values).isdisjoint(UNIQUE_FIELDS):
            self.changes += 1
        self.errors = (self.errors.without_cells({column: new.index for column, new in values.items()})
                       .with_rows(errors).compacted())

    def keys(self) -> pd.DataFrame:
        """The normalised key columns of every row (importer.checks.in_file reads only these), as update() left them:
        the callers update first, then trim the heap before these columns are made."""
        return cast(_Patched, self.normalised).take(UNIQUE_FIELDS)

    def kept(self) -> np.ndarray | None:
        """Which rows are not excluded (None: all)."""
        return ~self.text.index.isin(list(self.excluded)) if self.excluded else None

    def failing(self) -> pd.Index:
        """Rows not excluded that fail, as Checked.errors.rows() would list them."""
        self.update()
        if self.duplicates is None or self.duplicates[0] != self.changes:
            trim_heap()  # the check's transient columns, before the key columns come on top
            self.duplicates = (self.changes, duplicate_rows(self.keys(), self.kept()))
        present = self.present()
        return present[np.isin(present.to_numpy(), row_numbers(np.concatenate([self.errors.rows(),
                                                                               self.duplicates[1]])))]

    def validated(self, final: bool = False) -> Checked:
        """The Checked of the rows not excluded (final: the fold gives its frames up to make it)."""
        self.update()
        trim_heap()  # the check's transient columns, before the key columns and the duplicates come on top
        keys, keep = self.keys(), self.kept()
        errors = (self.errors.without_rows(self.excluded) if self.excluded else self.errors).with_rows(
            find_duplicates_in_file(keys, keep))  # the duplicates among the rows kept, before any copy
        del keys
        normalised = cast(_Patched, self.normalised)
        rows = None if keep is None else self.text.index[keep]
        if not final:
            return Checked(self.text.take(self.text.columns, rows), normalised.take(normalised.columns, rows), errors)
        release_free_memory()  # the columns made below come on top of what is held, not of what was freed
        original = self.text.give_up(rows)
        trim_heap()
        self.normalised = None
        return Checked(original, normalised.give_up(rows), errors)

    def edit(self, op: CellEdit) -> None:
        for row, field, _before, after in op.edits:
            if row not in self.excluded and _positions(self.text.index, [row])[0] >= 0:
                self.pending[(row, field)] = after

    def change(self, column: str, new: pd.Series, compared: bool = False) -> None:
        """New text for some rows of a column (index: source rows); compared: all of it differs from the
        text as it is (else the rows whose text is the same are left out)."""
        changed = np.ones(len(new), dtype=bool) if compared else _differs(self.text.column(column, new.index), new)
        if changed.any():
            self.text.set(column, new[changed].astype(str))
            self.mark(column, new.index.to_numpy(dtype=np.int64)[changed])

    def fix(self, op: BulkFix) -> None:
        """A bulk fix, a column and a chunk of rows at a time (fixes.changed_cells)."""
        self.flush()
        rows = self.failing() if op.only_failing else self.present()
        fix = op.fix(self.settings)
        for column in fix.columns:
            new = changed_cells(self.text.column(column, rows), fix.change)
            if len(new):  # its cells are changed ones
                self.change(column, new, compared=True)

    def plug_in(self, op: Any) -> None:
        """An operation of another module: a text change when the module says how (new_values), else applied
        to the validated rows and taken back into the text (rows it dropped count as excluded)."""
        new_values = _APPLIERS.get(kind_of(op), (None, None))[1]
        if new_values is not None and isinstance(getattr(op, "field", None), str):
            self.flush()
            column = self.text.take([op.field], self.present())
            self.change(op.field, new_values(Checked(column, column, ErrorTable.empty()), op))
            return
        self.flush()
        checked = applier(op)(self.validated(), self.settings)
        kept = checked.original.index
        self.excluded |= set(self.present().difference(kept).tolist())
        for column in FIELD_NAMES:
            self.change(column, checked.original[column])

    def apply(self, op: Any) -> None:
        if isinstance(op, CellEdit):
            self.edit(op)
        elif isinstance(op, BulkFix):
            self.fix(op)
            trim_heap()  # a check's freed memory, before the next operation adds to it
        elif isinstance(op, Exclude):  # pending edits stay pending: an excluded row keeps its text
            self.excluded.update(row for row, at in zip(op.rows, _positions(self.text.index, op.rows), strict=True)
                                 if at >= 0)
            self.changes += 1
        elif isinstance(op, Include):
            self.excluded.difference_update(op.rows)
            self.changes += 1
        else:
            self.plug_in(op)
            self.changes += 1
            trim_heap()


class Handed:
    """A value handed over once: the giver keeps no reference, so the taker alone decides when it goes (an
    argument passed as such stays referenced by the caller's frame until the call returns)."""

    def __init__(self, value: bytes | None) -> None:
        self.value = value

    def __call__(self) -> bytes | None:
        value, self.value = self.value, None
        return value


def replay_operations(data: bytes | Callable[[], bytes], file_name: str, settings: Settings, sheet: str | None,
                      mapping: ColumnMapping | None, operations: Iterable[Any],
                      excluded: list[Any] | None = None, *, snapshot: bytes | Handed | None = None,
                      on_snapshot: Callable[[bytes], None] | None = None) -> Upload:
    """The upload that applying `operations` in order to the file gives: the same frame and errors as
    applying them live one by one. The last mapping change decides how the file is read; every other
    operation is applied after that read, in order. `excluded`, when given, receives the excluded rows as
    importer.review.exclusions.Excluded records (their text as excluded, why, their errors), for Review's list.
    `data` may be a function that gives the file: it is called only when the file must be read.

    `snapshot` (snapshot_bytes, or Handed over so that it goes once read) is the file as read and checked with some mapping: the replay starts from it
    when that is the mapping in force, else it reads the file, and then hands `on_snapshot` the snapshot of
    that reading, so the next replay with this mapping starts from it (a mapping change reads the file once)."""
    operations = list(operations)
    remapped = None
    for op in operations:
        if isinstance(op, MappingChange):
            mapping = remapped = op.mapping
    blob = snapshot() if isinstance(snapshot, Handed) else snapshot
    del snapshot
    start = None if blob is None else load_snapshot(blob, settings, remapped=remapped, sheet=sheet, lazy=True)
    del blob  # what the fold needs of it is read out (8 MB for a file of which 89% of rows fail)
    upload = None if start is None else start.upload
    text: pd.DataFrame | None = None
    checked: Checked | None = None
    if upload is None:
        upload, text = _read_text(data() if callable(data) else data, file_name, settings, sheet, mapping)
        if on_snapshot is not None:  # checked now (the fold would check every row anyway) and stored
            checked = check_frame(text, settings)
            text = checked.original  # the text as read let go before the snapshot is made
            blob = snapshot_bytes(replace(upload, checked=checked), remapped=remapped is not None)
            # The fold starts from it, as the next replay will: the checked frames are let go, before the
            # snapshot is stored (PostgreSQL's driver writes it out as hex text in its statement).
            start = load_snapshot(blob, settings, remapped=remapped, sheet=sheet, lazy=True)
            if start is not None:
                text = checked = None
                release_free_memory()
            _offer(on_snapshot, blob)
            del blob
    if start is not None:  # the columns read from the snapshot as the operations need them
        fold = _Replay(_Patched(source=start.text), settings, _Patched(source=start.normalised), start.errors)
    else:
        fold = _Replay(_Patched(cast(pd.DataFrame, text)), settings,
                       None if checked is None else _Patched(checked.normalised),
                       None if checked is None else checked.errors)
    del start, text, checked
    del data
    release_free_memory()  # the reader's buffers, before the rows are validated
    why: dict[int, str] = {}
    for op in operations:
        if not isinstance(op, MappingChange):
            fold.apply(op)
        if isinstance(op, Exclude):
            why.update(dict.fromkeys(op.rows, op.reason))
    if excluded is not None and fold.excluded:
        excluded.extend(_excluded_records(fold, upload, why))
    checked = fold.validated(final=True)
    return replace(upload, checked=checked)


def _excluded_records(fold: _Replay, upload: Upload, why: Mapping[int, str]) -> list[Any]:
    from importer.review.exclusions import (  # importer.review.exclusions imports this module
        EXCLUDED_BY_ANALYST,
        Excluded,
    )

    fold.update()
    rows = sorted(fold.excluded)
    texts = fold.text.take(list(FIELD_NAMES), rows).to_dict("index")
    others = (upload.other_columns.reindex(rows).fillna("").astype(str).to_dict("index")
              if upload.other_columns is not None else {})
    return [Excluded(row, {f: str(v) for f, v in texts[row].items()}, why.get(row) or EXCLUDED_BY_ANALYST,
                     tuple(fold.errors[row]) if row in fold.errors else (), others.get(row, {}))
            for row in rows]


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
    from importer.outcomes.results import ReportColumn

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


# --- storage -------------------------------------------------------------------------------------------------


class HistoryEntry(NamedTuple):
    """One line of a workspace's history: undone entries are the ones redo would bring back."""

    seq: int
    summary: str
    undone: bool


@dataclass(frozen=True)
class WorkspaceInfo:
    """A workspace as the Upload page lists it."""

    id: int
    owner: str
    file_name: str
    sha256: str
    file_size: int
    sheet: str | None
    rows: int
    operations: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class StoredWorkspace:
    """A workspace as stored: its file and its active operations, (seq, operation) in order."""

    info: WorkspaceInfo
    data: bytes
    mapping: ColumnMapping | None
    operations: tuple[tuple[int, Any], ...]
    snapshot: bytes | None = None

    @property
    def version(self) -> int:
        """The last active seq (0 for none): the same version means the same frame."""
        return self.operations[-1][0] if self.operations else 0


@dataclass(frozen=True)
class Opened:
    """A workspace's frame as replayed (or kept up to date by perform), and the version it shows."""

    info: WorkspaceInfo
    upload: Upload
    version: int
    seqs: tuple[int, ...]
    excluded: tuple[Any, ...] = ()  # importer.review.exclusions.Excluded records of the rows left out


def _active_count() -> Any:
    ops = workspace_operations
    return (sa.select(sa.func.count()).where(ops.c.workspace_id == workspaces.c.id, ops.c.undone == sa.false())
            .scalar_subquery())


def _info(row: Any) -> WorkspaceInfo:
    return WorkspaceInfo(row.id, row.owner, row.file_name, row.sha256, row.file_size, row.sheet, row.rows,
                         row.operations, aware(row.created_at) or now(), aware(row.updated_at) or now())


_INFO_COLUMNS = (workspaces.c.id, workspaces.c.owner, workspaces.c.file_name, workspaces.c.sha256,
                 workspaces.c.file_size, workspaces.c.sheet, workspaces.c.rows, workspaces.c.created_at,
                 workspaces.c.updated_at, _active_count().label("operations"))


def create_workspace(engine: sa.Engine, owner: str, data: bytes, file_name: str, settings: Settings,
                     sheet: str | None = None, mapping: ColumnMapping | None = None, *, rows: int = 0,
                     snapshot: bytes | None = None) -> int:
    """Keep an upload (its bytes compressed, sheet and mapping) as a new workspace; returns its id.

    Pass the sheet and mapping the upload was read with (upload.sheet, upload.mapping), so that a later
    version of the header detection cannot read the file differently. Expired workspaces go at the same time.
    """
    if len(data) > settings.max_upload_mb * MB:
        raise LimitExceeded(f"{file_name} is {len(data) / MB:.1f} MB; the limit is {settings.max_upload_mb} MB "
                            "(MAX_UPLOAD_MB)", setting="MAX_UPLOAD_MB", limit=settings.max_upload_mb)
    expire_workspaces(engine, settings.workspace_days)
    stamp = now()
    with db_errors(engine), engine.begin() as conn:
        return int(conn.execute(workspaces.insert().returning(workspaces.c.id).values(
            owner=owner[:255], file_name=file_name[:255], sha256=hashlib.sha256(data).hexdigest(),
            file_size=len(data), data=zlib.compress(data, 6), sheet=sheet, snapshot=snapshot,
            mapping=mapping.to_dict() if mapping else None, rows=rows, created_at=stamp, updated_at=stamp)).scalar_one())


def list_workspaces(engine: sa.Engine, owner: str) -> list[WorkspaceInfo]:
    """The owner's open workspaces, the most recently changed first."""
    stmt = (sa.select(*_INFO_COLUMNS).where(workspaces.c.owner == owner, workspaces.c.discarded_at.is_(None))
            .order_by(workspaces.c.updated_at.desc(), workspaces.c.id.desc()))
    with reading(engine) as conn:
        return [_info(row) for row in conn.execute(stmt).all()]


def _decompress(blob: bytes, limit_mb: int) -> bytes:
    inflater = zlib.decompressobj()
    data = inflater.decompress(blob, limit_mb * MB + 1)
    if len(data) > limit_mb * MB or inflater.unconsumed_tail:
        raise WorkspaceError(f"the stored file is over {limit_mb} MB (MAX_UPLOAD_MB); upload it again")
    return data


def _operations(conn: sa.Connection, workspace_id: int, seqs: Sequence[int] | None = None) -> list[tuple[int, Any]]:
    ops = workspace_operations
    where = ops.c.undone == sa.false() if seqs is None else ops.c.seq.in_(list(seqs))
    rows = conn.execute(sa.select(ops.c.seq, ops.c.kind, ops.c.payload)
                        .where(ops.c.workspace_id == workspace_id, where).order_by(ops.c.seq)).all()
    return [(row.seq, operation_from_dict(row.kind, row.payload)) for row in rows]


def _gone(workspace_id: int, settings: Settings) -> WorkspaceError:
    return WorkspaceError(f"workspace {workspace_id} is gone: it was discarded, or expired after "
                          f"{settings.workspace_days} days untouched (WORKSPACE_DAYS); upload the file again")


def load_workspace(engine: sa.Engine, workspace_id: int, settings: Settings | None = None, *,
                   seqs: Sequence[int] | None = None, discarded: bool = False, file: bool = True) -> StoredWorkspace:
    """A workspace's file and active operations (or the operations `seqs`); WorkspaceError if it is gone.
    file=False: without the file (`data` is empty; stored_file reads it when it is needed)."""
    settings = settings or Settings()
    with reading(engine) as conn:
        data = (workspaces.c.data,) if file else ()
        row = conn.execute(sa.select(*_INFO_COLUMNS, *data, workspaces.c.mapping,
                                     workspaces.c.discarded_at).where(workspaces.c.id == workspace_id)).first()
        if row is None or (row.discarded_at is not None and not discarded):
            raise _gone(workspace_id, settings)
        operations = _operations(conn, workspace_id, seqs)
        snapshot = _read_blob(conn, workspaces.c.snapshot, workspace_id)
    return StoredWorkspace(_info(row), _decompress(row.data, settings.max_upload_mb) if file else b"",
                           ColumnMapping.from_dict(row.mapping) if row.mapping else None, tuple(operations),
                           snapshot)


BLOB_CHUNK = 1 << 20
"""Bytes of a stored blob read per query (_read_blob)."""


def _read_blob(conn: sa.Connection, column: sa.Column, workspace_id: int) -> bytes | None:
    """A workspace's blob column (the snapshot: 8 MB when most rows fail), read a megabyte at a time.
    Read whole, PostgreSQL sends it as hex text: its driver held the hex (twice the blob), the blob and a
    copy at once, and libpq's input buffer stayed at the hex's size for as long as the pooled connection
    lived (15 MB more for the rest of a replay)."""
    size = conn.execute(sa.select(sa.func.length(column)).where(workspaces.c.id == workspace_id)).scalar()
    if size is None:
        return None
    part = sa.func.substr(column, sa.bindparam("start"), BLOB_CHUNK, type_=sa.LargeBinary())
    query = sa.select(part).where(workspaces.c.id == workspace_id)
    parts = [conn.execute(query, {"start": start + 1}).scalar_one() for start in range(0, int(size), BLOB_CHUNK)]
    return b"".join(parts)


def stored_file(engine: sa.Engine, workspace_id: int, settings: Settings) -> bytes:
    """A workspace's file, alone (a replay that starts from the snapshot never reads it)."""
    with reading(engine) as conn:
        blob = _read_blob(conn, workspaces.c.data, workspace_id)
    if blob is None:
        raise _gone(workspace_id, settings)
    return _decompress(blob, settings.max_upload_mb)


def store_snapshot(engine: sa.Engine, workspace_id: int, sha256: str, blob: bytes) -> None:
    """Keep a replay's snapshot of the file as read (after a mapping change: with that mapping), so the
    next replay starts from it. load_snapshot checks what it was read with, so a stale one is only unused."""
    with db_errors(engine), engine.begin() as conn:
        conn.execute(workspaces.update().where(workspaces.c.id == workspace_id, workspaces.c.sha256 == sha256)
                     .values(snapshot=blob))


def replay(engine: sa.Engine, workspace_id: int, settings: Settings) -> Upload:
    """The workspace's upload: its file read again and its active operations applied in order."""
    return open_workspace(engine, workspace_id, settings).upload


def open_workspace(engine: sa.Engine, workspace_id: int, settings: Settings) -> Opened:
    """Replay a workspace: what a new session, a refresh or another instance shows."""
    stored = load_workspace(engine, workspace_id, settings, file=False)
    snapshot, stored = Handed(stored.snapshot), replace(stored, snapshot=None)
    excluded: list[Any] = []
    upload = replay_operations(partial(stored_file, engine, workspace_id, settings), stored.info.file_name, settings, stored.info.sheet, stored.mapping,
                               [op for _, op in stored.operations], excluded, snapshot=snapshot,
                               on_snapshot=partial(store_snapshot, engine, workspace_id, stored.info.sha256))
    return Opened(stored.info, upload, stored.version, tuple(seq for seq, _ in stored.operations), tuple(excluded))


def _lock(conn: sa.Connection, workspace_id: int) -> None:
    """Serialise changes to one workspace (SQLite: the write lock BEGIN IMMEDIATE took already)."""
    found = conn.execute(sa.select(workspaces.c.id).where(workspaces.c.id == workspace_id,
                                                          workspaces.c.discarded_at.is_(None))
                         .with_for_update()).first()
    if found is None:
        raise WorkspaceError(f"workspace {workspace_id} is gone: it was discarded or expired; upload the file again")


def _versions(conn: sa.Connection, workspace_id: int) -> tuple[int, int]:
    """(last active seq, last seq) of a workspace, 0 when none."""
    ops = workspace_operations
    active = sa.func.max(sa.case((ops.c.undone == sa.false(), ops.c.seq)))
    row = conn.execute(sa.select(sa.func.coalesce(active, 0), sa.func.coalesce(sa.func.max(ops.c.seq), 0))
                       .where(ops.c.workspace_id == workspace_id)).one()
    return int(row[0]), int(row[1])


def append_operation(engine: sa.Engine, workspace_id: int, op: Any, *, summary: str | None = None,
                     expected_version: int | None = None, rows: int | None = None) -> int:
    """Add an operation after the active ones (the redo stack is cleared); returns its seq.

    WorkspaceChanged when `expected_version` is given and the workspace moved on since (another tab).
    """
    kind, payload = kind_of(op), op.to_dict()
    with db_errors(engine), engine.begin() as conn:
        _lock(conn, workspace_id)
        version, last = _versions(conn, workspace_id)
        if expected_version is not None and version != expected_version:
            raise WorkspaceChanged(f"workspace {workspace_id} was changed in another tab or window; "
                                   "it has been reloaded, so check the change and make it again")
        ops = workspace_operations
        conn.execute(ops.delete().where(ops.c.workspace_id == workspace_id, ops.c.undone == sa.true()))
        stamp = now()
        conn.execute(ops.insert().values(workspace_id=workspace_id, seq=last + 1, kind=kind, payload=payload,
                                         summary=summary or summary_of(op), created_at=stamp, undone=False))
        values: dict[str, Any] = {"updated_at": stamp} | ({} if rows is None else {"rows": rows})
        conn.execute(workspaces.update().where(workspaces.c.id == workspace_id).values(**values))
    return last + 1


def record(engine: sa.Engine, opened: Opened, op: Any, after: Checked, settings: Settings) -> Opened:
    """Save an operation the page already applied live (`after`: the frame it gave). If another tab changed
    the workspace meanwhile, its state is replayed and the operation applied to that instead."""
    try:
        seq = append_operation(engine, opened.info.id, op, summary=summary_of(op, opened.upload.checked, after),
                               expected_version=opened.version, rows=after.total)
    except WorkspaceChanged:
        return perform(engine, open_workspace(engine, opened.info.id, settings), op, settings)
    return replace(opened, upload=replace(opened.upload, checked=after), version=seq, seqs=(*opened.seqs, seq),
                   info=replace(opened.info, rows=after.total, updated_at=now(), operations=len(opened.seqs) + 1))


def restart_workspace(engine: sa.Engine, workspace_id: int, sheet: str | None, mapping: ColumnMapping | None,
                      rows: int, snapshot: bytes | None = None) -> None:
    """The file read again with another sheet or mapping on the Upload page: what was done on the old read
    is dropped (its row numbers may not hold), as the page drops it."""
    with db_errors(engine), engine.begin() as conn:
        _lock(conn, workspace_id)
        conn.execute(workspace_operations.delete().where(workspace_operations.c.workspace_id == workspace_id))
        conn.execute(workspaces.update().where(workspaces.c.id == workspace_id).values(
            sheet=sheet, mapping=mapping.to_dict() if mapping else None, rows=rows, updated_at=now(),
            snapshot=snapshot))


def perform(engine: sa.Engine, opened: Opened, op: Any, settings: Settings) -> Opened:
    """Apply an operation to the frame in hand and save it, in that order, so the history line can say what
    it did; a mapping change or an include-again replays the workspace. If another tab changed the
    workspace meanwhile, its current state is replayed first and the operation applied to that."""
    for attempt in range(2):
        try:
            if getattr(op, "rebuild", False):
                append_operation(engine, opened.info.id, op, summary=summary_of(op), expected_version=opened.version)
                rebuilt = open_workspace(engine, opened.info.id, settings)
                if rebuilt.upload.checked.total != rebuilt.info.rows:
                    with db_errors(engine), engine.begin() as conn:
                        conn.execute(workspaces.update().where(workspaces.c.id == opened.info.id)
                                     .values(rows=rebuilt.upload.checked.total))
                    rebuilt = replace(rebuilt, info=replace(rebuilt.info, rows=rebuilt.upload.checked.total))
                return rebuilt
            before = opened.upload.checked
            after = applier(op)(before, settings)
            seq = append_operation(engine, opened.info.id, op, summary=summary_of(op, before, after),
                                   expected_version=opened.version, rows=after.total)
            return replace(opened, upload=replace(opened.upload, checked=after), version=seq,
                           seqs=(*opened.seqs, seq), info=replace(opened.info, rows=after.total, updated_at=now(),
                                                                  operations=len(opened.seqs) + 1))
        except WorkspaceChanged:
            if attempt:
                raise
            opened = open_workspace(engine, opened.info.id, settings)
    raise AssertionError("unreachable")


def _go_to(engine: sa.Engine, workspace_id: int, pick: str) -> HistoryEntry | None:
    ops = workspace_operations
    with db_errors(engine), engine.begin() as conn:
        _lock(conn, workspace_id)
        undone = pick == "undo"
        where = ops.c.undone == (sa.false() if undone else sa.true())
        seq = conn.execute(sa.select((sa.func.max if undone else sa.func.min)(ops.c.seq))
                           .where(ops.c.workspace_id == workspace_id, where)).scalar()
        if seq is None:
            return None
        conn.execute(ops.update().where(ops.c.workspace_id == workspace_id, ops.c.seq == seq).values(undone=undone))
        conn.execute(workspaces.update().where(workspaces.c.id == workspace_id).values(updated_at=now()))
        summary = conn.execute(sa.select(ops.c.summary).where(ops.c.workspace_id == workspace_id,
                                                              ops.c.seq == seq)).scalar_one()
        return HistoryEntry(int(seq), summary, undone)


def undo(engine: sa.Engine, workspace_id: int) -> HistoryEntry | None:
    """Step back the last active operation (None when there is none); replay shows the result."""
    return _go_to(engine, workspace_id, "undo")


def redo(engine: sa.Engine, workspace_id: int) -> HistoryEntry | None:
    """Bring back the first undone operation (None when there is none)."""
    return _go_to(engine, workspace_id, "redo")


def go_to(engine: sa.Engine, workspace_id: int, seq: int) -> None:
    """Step back (or forward) to just after operation `seq` (0 = the file as read): a click in the history."""
    ops = workspace_operations
    with db_errors(engine), engine.begin() as conn:
        _lock(conn, workspace_id)
        conn.execute(ops.update().where(ops.c.workspace_id == workspace_id).values(undone=ops.c.seq > seq))
        conn.execute(workspaces.update().where(workspaces.c.id == workspace_id).values(updated_at=now()))


def history(engine: sa.Engine, workspace_id: int) -> list[HistoryEntry]:
    """The workspace's operations in order: (seq, summary, undone)."""
    ops = workspace_operations
    with reading(engine) as conn:
        rows = conn.execute(sa.select(ops.c.seq, ops.c.summary, ops.c.undone)
                            .where(ops.c.workspace_id == workspace_id).order_by(ops.c.seq)).all()
    return [HistoryEntry(int(row.seq), row.summary, bool(row.undone)) for row in rows]


def _resumable_ids(conn: sa.Connection) -> set[int]:
    """Workspaces a running or interrupted run imports from: kept until the run ends, for its resume."""
    return set(conn.execute(sa.select(_runs.c.workspace_id).where(
        _runs.c.workspace_id.is_not(None), _runs.c.status.in_(_RESUMABLE))).scalars())


def _delete(conn: sa.Connection, ids: list[int]) -> None:
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        conn.execute(workspace_operations.delete().where(workspace_operations.c.workspace_id.in_(chunk)))
        conn.execute(workspaces.delete().where(workspaces.c.id.in_(chunk)))


def discard_workspace(engine: sa.Engine, workspace_id: int, owner: str | None = None) -> None:
    """Drop a workspace from its owner's list; deleted at once unless an interrupted run resumes from it."""
    with db_errors(engine), engine.begin() as conn:
        row = conn.execute(sa.select(workspaces.c.owner).where(workspaces.c.id == workspace_id)).first()
        if row is None:
            return
        if owner is not None and row.owner != owner:
            raise WorkspaceError(f"workspace {workspace_id} belongs to {row.owner}; only they can discard it")
        if workspace_id in _resumable_ids(conn):
            conn.execute(workspaces.update().where(workspaces.c.id == workspace_id).values(discarded_at=now()))
        else:
            _delete(conn, [workspace_id])


def expire_workspaces(engine: sa.Engine, days: int) -> int:
    """Delete workspaces untouched for `days` days (WORKSPACE_DAYS) and discarded ones, except those an
    interrupted run still resumes from; returns how many went."""
    if current_revision(engine) is None:
        return 0
    cutoff = now() - timedelta(days=days)
    with db_errors(engine), engine.begin() as conn:
        old = conn.execute(sa.select(workspaces.c.id).where(
            sa.or_(workspaces.c.updated_at < cutoff, workspaces.c.discarded_at.is_not(None)))).scalars().all()
        ids = sorted(set(old) - _resumable_ids(conn))
        _delete(conn, ids)
    return len(ids)


# --- runs: what they import from, what a dry run saw -------------------------------------------------------


def workspace_run_settings(opened: Opened) -> dict[str, Any]:
    """What a run records (in import_runs.settings, beside the mapping) to resume from this workspace."""
    return {"workspace_id": opened.info.id, "workspace_operations": list(opened.seqs)}


def upload_for_workspace_resume(engine: sa.Engine, run_id: int, settings: Settings) -> Upload:
    """The upload an interrupted run was importing, replayed from its workspace: no re-upload, fixes kept.

    RunError when the run is not interrupted, has no workspace, or its workspace is gone or changed.
    """
    run = get_run(engine, run_id)
    if run.status is not RunStatus.INTERRUPTED:
        raise RunError(f"run {run_id} is {run.status.value}; only an interrupted run can be resumed")
    with reading(engine) as conn:
        workspace_id = conn.execute(sa.select(_runs.c.workspace_id).where(_runs.c.id == run_id)).scalar()
    workspace_id = workspace_id or run.settings.get("workspace_id")
    again = f"upload {run.file_name} again to resume it"
    if workspace_id is None:
        raise RunError(f"run #{run_id} was not imported from a saved workspace; {again}")
    seqs = run.settings.get("workspace_operations")
    try:
        stored = load_workspace(engine, int(workspace_id), settings, seqs=seqs, discarded=True)
    except WorkspaceError as exc:
        raise RunError(f"run #{run_id} cannot be resumed from its workspace: {exc}") from exc
    if seqs is not None and len(stored.operations) != len(seqs):
        raise RunError(f"the workspace of run #{run_id} changed since the run started (operations it used were "
                       f"undone and replaced); {again}")
    snapshot, stored = Handed(stored.snapshot), replace(stored, snapshot=None)
    upload = replay_operations(stored.data, stored.info.file_name, settings, stored.info.sheet, stored.mapping,
                               [op for _, op in stored.operations], snapshot=snapshot)
    if upload.sha256 != run.sha256:
        raise FileMismatch(f"the workspace of run #{run_id} holds another file than {run.file_name}; {again}")
    return upload


@dataclass(frozen=True)
class DatabaseState:
    """A cheap fingerprint of the import history: any import, resume or undo changes it."""

    runs: int = 0
    last_run_id: int = 0
    last_finished_at: datetime | None = None
    last_undone_at: datetime | None = None
    rows_done: int = 0


def database_state(engine: sa.Engine) -> DatabaseState:
    """The state a dry run saw (record it with the dry run's result; see stale_reason)."""
    if current_revision(engine) is None:
        return DatabaseState()
    with reading(engine) as conn:
        row = conn.execute(sa.select(sa.func.count(), sa.func.max(_runs.c.id), sa.func.max(_runs.c.finished_at),
                                     sa.func.max(_runs.c.undone_at), sa.func.sum(_runs.c.rows_done))).one()
    return DatabaseState(int(row[0]), int(row[1] or 0), aware(row[2]), aware(row[3]), int(row[4] or 0))


def ago(when: datetime | None) -> str:
    """`just now`, `2 minutes ago`, `3 hours ago`, `5 days ago`."""
    seconds = max(0, int((now() - (aware(when) or now())).total_seconds()))
    for size, unit in ((86_400, "day"), (3_600, "hour"), (60, "minute")):
        if seconds >= size:
            return f"{_plural(seconds // size, unit)} ago"
    return "just now"


def stale_reason(engine: sa.Engine, seen: DatabaseState, sha256: str) -> str | None:
    """Why a dry run's counts are out of date, naming the run that changed the database since; None if not.

    `Run #3 imported this file 2 minutes ago; run the dry run again.`
    """
    if database_state(engine) == seen:
        return None
    changed = sa.or_(_runs.c.id > seen.last_run_id, _runs.c.status == RunStatus.RUNNING.value,
                     _runs.c.finished_at > seen.last_finished_at if seen.last_finished_at
                     else _runs.c.finished_at.is_not(None),
                     _runs.c.undone_at > seen.last_undone_at if seen.last_undone_at else _runs.c.undone_at.is_not(None))
    with reading(engine) as conn:
        rows = conn.execute(sa.select(_runs).where(changed)).all()
    if not rows:
        return "The import history changed since the dry run; run the dry run again."

    def moment(row: Any) -> datetime:
        return max(t for t in (aware(row.undone_at), aware(row.finished_at), aware(row.started_at)) if t)

    row = max(rows, key=moment)
    what = "this file" if row.sha256 == sha256 else row.file_name
    who = f" ({row.user_name})" if row.user_name else ""
    undone_at = aware(row.undone_at)
    if undone_at is not None and (seen.last_undone_at is None or undone_at > seen.last_undone_at):
        return f"Run #{row.id}{who} of {what} was undone {ago(row.undone_at)}; run the dry run again."
    status = get_run(engine, row.id).status
    if status is RunStatus.RUNNING:
        return (f"Run #{row.id}{who} is importing {what} now ({_plural(row.rows_done, 'row')} so far); "
                "wait for it to finish, then run the dry run again.")
    if status is RunStatus.INTERRUPTED:
        return (f"Run #{row.id}{who} imported {_plural(row.rows_done, 'row')} of {what} before it stopped "
                f"{ago(row.finished_at or row.started_at)}; run the dry run again.")
    return f"Run #{row.id}{who} imported {what} {ago(row.finished_at or row.started_at)}; run the dry run again."
