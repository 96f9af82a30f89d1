"""The analyst's operations on an upload, each a kind, a JSON payload and a sentence for the history list:
cell edits, bulk fixes, exclusions and inclusions, mapping changes, and the value conversions of
importer.review.conversions, all in one registry so the workspace can replay them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Protocol

import numpy as np
import pandas as pd

from importer.checks.validate import (
    Checked,
    cells_differ,
    exclude,
    recheck,
)
from importer.errors import (
    WorkspaceError,
)
from importer.mapping.columns import ColumnMapping
from importer.review.conversions import Conversion, Replace, apply_operation, new_values
from importer.review.fixes import Fix, apply_fix, available_fixes, fill_region_fix
from importer.settings import Settings
from schemas.customer import FIELD_NAMES, REGIONS, label_of

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


def applier(op: Any) -> Callable[[Checked, Settings], Checked]:
    """apply(checked, settings) of an operation, its own or its plug-in module's."""
    if hasattr(op, "apply"):
        return op.apply
    found = _APPLIERS.get(kind_of(op))
    if found is None:
        raise WorkspaceError(f"{type(op).__name__} cannot be applied: it has no apply method")
    return lambda checked, settings: found[0](checked, op, settings)


def kind_of(op: Any) -> str:
    """The registry key of an operation (registering a plug-in class the first time it is seen)."""
    kind = getattr(type(op), "kind", type(op).__name__.lower())
    if kind not in REGISTRY:
        if not hasattr(type(op), "from_dict"):
            raise WorkspaceError(f"{type(op).__name__} cannot be saved in a workspace: it has no from_dict")
        REGISTRY[kind] = type(op)
    return str(kind)


def operation_from_dict(kind: str, payload: Mapping[str, Any]) -> Any:
    """The operation a workspace stored; WorkspaceError for a kind this version does not know."""
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
        changed |= cells_differ(before[column], after[column])
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
class NoDefaultRegion:
    """This upload's blank regions stay blank (and fail as required) instead of getting the default region
    (Settings.default_customer_region): the default turned off for one upload. Rows edited later are
    checked with the default again; turn it off after editing, or type their regions."""

    kind: ClassVar[str] = "no_default_region"

    def to_dict(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NoDefaultRegion:
        return cls()

    def apply(self, checked: Checked, settings: Settings) -> Checked:
        region = checked.original["region"].fillna("").astype(str).str.strip()
        blank = checked.original.loc[region == ""]
        off = replace(settings, default_customer_region="")
        after = recheck(checked, blank, off, every_field=True) if len(blank) else checked
        return replace(after, changes=after.changes.without("region_default"))

    def describe(self, before: Checked | None = None, after: Checked | None = None) -> str:
        return "Turned off the default region: blank regions stay blank and fail until typed"


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


# importer.review.conversions's operations: value conversion and find and replace.
register(Conversion, apply_operation, new_values)
register(Replace, apply_operation, new_values)
