"""Replay: the file read again (or its snapshot) with every operation folded in, text changes batched and the
rows validated once at the end, so 1,000 operations cost about one read of the file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from importer.api import Upload, read_unchecked, with_checked
from importer.checks.in_file import duplicate_rows, find_duplicates_in_file
from importer.checks.validate import (
    TEXT,
    Checked,
    check_cells,
    check_frame,
    coupled_fields,
    coupled_groups,
    row_numbers,
)
from importer.mapping.columns import ColumnMapping
from importer.outcomes.error_table import ErrorTable
from importer.outcomes.row_errors import ErrorCode
from importer.review import decisions as _decisions  # noqa: F401 - registers the decision kinds, replayed here
from importer.review.fixes import arrow_text, changed_cells
from importer.review.operations import (
    _APPLIERS,
    BulkFix,
    CellEdit,
    Exclude,
    Include,
    MappingChange,
    NoDefaultRegion,
    applier,
    kind_of,
)
from importer.server.memory import release_free_memory, trim_heap
from importer.settings import Settings
from importer.workspace.snapshot import ArrowColumns, _offer, load_snapshot, snapshot_bytes
from schemas.customer import FIELD_NAMES, UNIQUE_FIELDS

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
        # The region fix fills every blank region, failing or not (the default filled them first):
        # importer.review.fixes.changed_rows.
        rows = self.failing() if op.only_failing and op.key != "region" else self.present()
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
            self.change(op.field, new_values(Checked(column, column, ErrorTable.empty()), op, self.settings))
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
        elif getattr(type(op), "decision", False):  # importer.review.decisions: changes no cell
            return
        elif isinstance(op, NoDefaultRegion):  # no text changes: the blank regions are checked again without it
            self.flush()
            self.settings = replace(self.settings, default_customer_region="")
            region = self.text.column("region").fillna("").astype(str).str.strip()
            self.mark("region", region.index[(region == "").to_numpy()].to_numpy(dtype=np.int64))
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
    return with_checked(upload, checked)


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


