"""Value conversion per column and find-and-replace: operations the analyst previews, then applies.

OpenRefine's "cluster and edit" for one column: `failing_values(checked, "region")` lists the distinct
texts that fail on that field, how many rows hold each and a suggested target (for Region from the
gazetteer: `Kumasi -> ASHANTI`, `G/A -> GREATER_ACCRA`). The analyst confirms or edits the targets and
applies them as one `Conversion`. `Replace` is a plain find-and-replace on any column.

Both are frozen, JSON-serialisable operations (`to_dict`, `operation_from_dict`), so a workspace can store
them and replay them. `preview` says how many failing rows an operation fixes and how many rows it
changes; `apply_operation` re-checks only the changed rows (importer.checks.validate.recheck). Everything works on
whole columns with pandas (no Python loop over the rows), so 100,000 rows cost a few column passes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from importer.checks import normalise as clean
from importer.checks.validate import CHUNK_ROWS, Checked, check_frame, recheck
from importer.errors import UsageError
from importer.mapping.columns import ColumnMapping, SheetNotes, fed_fields
from importer.outcomes.row_errors import DUPLICATE_CODES, ErrorCode
from importer.settings import Settings
from schemas.customer import FIELD_NAMES, REGIONS, USER_TYPES, label_of
from schemas.gazetteer import match_region, region_share

# Distinct values listed by failing_values unless asked for more: the most frequent first.
VALUE_LIMIT = 1_000
# Codes that say a value is taken, not wrong: converting the text is not how those rows get fixed.
_NOT_VALUE_CODES = frozenset(c.value for c in (*DUPLICATE_CODES, ErrorCode.CONFLICT, ErrorCode.DATABASE_ERROR))


def _check_field(field: str) -> None:
    if field not in FIELD_NAMES:
        raise UsageError(f"unknown field {field!r}; fields are: {', '.join(FIELD_NAMES)}")


@dataclass(frozen=True)
class Conversion:
    """Replace whole cell values of one field: `Conversion("region", {"Kumasi": "ASHANTI", "G/A": "GREATER_ACCRA"})`.

    A value matches a cell exactly as typed (the values come from failing_values). Targets equal to their
    value, or None (a suggestion the analyst left empty), are dropped. Held as sorted pairs: hashable.
    """

    field: str
    targets: tuple[tuple[str, str], ...]
    kind: ClassVar[str] = "convert"

    def __init__(self, field: str, targets: Mapping[str, str | None] | tuple[tuple[str, str], ...]) -> None:
        _check_field(field)
        pairs = targets.items() if isinstance(targets, Mapping) else targets
        kept = tuple(sorted((str(v), str(t)) for v, t in pairs if t is not None and not pd.isna(t) and str(t) != str(v)))
        object.__setattr__(self, "field", field)
        object.__setattr__(self, "targets", kept)

    @classmethod
    def from_table(cls, field: str, table: pd.DataFrame, target: str = "suggestion") -> Conversion:
        """From failing_values' table (as the analyst edited it): its value and `target` columns."""
        return cls(field, dict(zip(table["value"].astype(str), table[target], strict=True)))

    @property
    def mapping(self) -> dict[str, str]:
        """value -> target."""
        return dict(self.targets)

    def describe(self) -> str:
        """In words, for a notice or a history of operations."""
        shown = ", ".join(f"{v or '(blank)'} → {t or '(blank)'}" for v, t in self.targets[:5])
        more = f" and {len(self.targets) - 5:,} more" if len(self.targets) > 5 else ""
        return f"{label_of(self.field)}: {shown}{more}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "field": self.field, "targets": self.mapping}

    def apply(self, checked: Checked, settings: Settings) -> Checked:
        """apply_operation(checked, self, settings): the method a workspace replays."""
        return apply_operation(checked, self, settings)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Conversion:
        return cls(data["field"], dict(data["targets"]))


@dataclass(frozen=True)
class Replace:
    """Find and replace text in one field's cells.

    whole_cell: the cell (spaces around it ignored) must equal `find`, and becomes `replace`; with
    find "" that fills blank cells. Otherwise every occurrence of `find` inside a cell is replaced.
    match_case False ignores case in both modes.
    """

    field: str
    find: str
    replace: str
    whole_cell: bool = False
    match_case: bool = True
    kind: ClassVar[str] = "replace"

    def __post_init__(self) -> None:
        _check_field(self.field)
        if not self.whole_cell and self.find == "":
            raise UsageError("Type the text to find (or tick 'whole cell' to fill blank cells).")

    def describe(self) -> str:
        where = "cells equal to" if self.whole_cell else "text"
        return f"{label_of(self.field)}: {where} {self.find or '(blank)'!r} → {self.replace!r}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "field": self.field, "find": self.find, "replace": self.replace,
                "whole_cell": self.whole_cell, "match_case": self.match_case}

    def apply(self, checked: Checked, settings: Settings) -> Checked:
        """apply_operation(checked, self, settings): the method a workspace replays."""
        return apply_operation(checked, self, settings)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Replace:
        return cls(data["field"], data["find"], data["replace"], bool(data.get("whole_cell", False)),
                   bool(data.get("match_case", True)))


Operation = Conversion | Replace


def operation_from_dict(data: Mapping[str, Any]) -> Operation:
    """The operation a to_dict() made: {"kind": "convert"|"replace", ...}."""
    kind = data.get("kind")
    if kind == Conversion.kind:
        return Conversion.from_dict(data)
    if kind == Replace.kind:
        return Replace.from_dict(data)
    raise UsageError(f"unknown operation kind {kind!r}; expected 'convert' or 'replace'")


def operations_from_json(text: str, where: str = "the operations file") -> list[Operation]:
    """Operations from JSON: one to_dict() object or a list of them (UsageError naming the bad one)."""
    from importer.intake.json_input import operation_dicts, parse_json

    items = operation_dicts(parse_json(text, where), where)  # limits and key types first: one line, never a traceback
    found: list[Operation] = []
    for number, item in enumerate(items, start=1):
        try:
            if not isinstance(item, Mapping):
                raise UsageError("expected an object with a 'kind'")
            found.append(operation_from_dict(item))
        except (UsageError, KeyError, TypeError) as exc:
            raise UsageError(f"{where}, operation {number}: {exc}") from None
    return found


def apply_operations(checked: Checked, operations: list[Operation], settings: Settings) -> Checked:
    """Each operation in turn (what a workspace replays, or the CLI applies from a file)."""
    for operation in operations:
        checked = apply_operation(checked, operation, settings)
    return checked


class Preview(NamedTuple):
    """What an operation would do: failing rows it fixes (they stop failing on its field) and rows it changes."""

    fixes: int
    changes: int


# -- which rows fail, and on which values -------------------------------------------------------------------
def failing_rows(checked: Checked, field: str) -> np.ndarray:
    """Source rows failing on `field` because of their value (duplicates and conflicts left out), ascending."""
    _check_field(field)
    errors = checked.errors.frame()
    if errors.empty:
        return np.empty(0, dtype=np.int64)
    hit = (errors["field"].astype(str) == field).to_numpy() & ~errors["code"].astype(str).isin(_NOT_VALUE_CODES).to_numpy()
    return np.unique(errors["row"].to_numpy()[hit])


def failing_fields(checked: Checked) -> dict[str, int]:
    """Field -> rows failing on it because of their value, in field order: the fields worth converting."""
    errors = checked.errors.frame()
    if errors.empty:
        return {}
    errors = errors[~errors["code"].astype(str).isin(_NOT_VALUE_CODES)]
    counts = errors.drop_duplicates(["row", "field"])["field"].astype(str).value_counts()
    return {f: int(counts[f]) for f in FIELD_NAMES if f in counts.index}


def failing_values(
    checked: Checked, field: str, settings: Settings | None = None, limit: int = VALUE_LIMIT
) -> pd.DataFrame:
    """The distinct texts of `field` in rows failing on it: columns value, count, suggestion, why.

    Most frequent first, at most `limit` of them (`frame.attrs["distinct"]` says how many there are).
    suggestion is a target that passes the field's checks, or None; why says where it came from. A guess
    that is not sure (a fuzzy region below SURE_SCORE, or a word that names a place outside Ghana) is not
    filled in: suggestion None, and why asks the question ("China: Chiana, Upper East (91%)? ...").
    """
    rows = failing_rows(checked, field)
    values = checked.original.loc[rows, field].fillna("").astype(str)
    counts = values.value_counts(sort=True)
    distinct = len(counts)
    counts = counts.iloc[:limit]
    texts = counts.index.tolist()
    suggestions = [_suggest(field, text, settings or Settings()) for text in texts]
    targets = [s[0] for s in suggestions]
    # A suggestion is only offered if it would pass: checked like any cell, all at once.
    passing = _passing(field, [t for t in targets if t is not None], settings or Settings())
    frame = pd.DataFrame({
        "value": texts,
        "count": counts.to_numpy(dtype=np.int64),
        "suggestion": [t if t is not None and t in passing else None for t in targets],
        # A question (no target, a why) is shown as asked; an answer only when it passes.
        "why": [s[1] if s[0] is None or s[0] in passing else "" for s in suggestions],
    })
    frame.attrs["distinct"] = distinct
    return frame


# -- suggestions -----------------------------------------------------------------------------------------
_USER_TYPE_WORDS = {
    "INDIVIDUAL": ("individual", "individuals", "ind", "indiv", "i", "person", "personal", "private", "retail",
                   "customer", "single", "p"),
    "BUSINESS": ("business", "businesses", "b", "biz", "bus", "company", "co", "corporate", "corp", "firm",
                 "enterprise", "ltd", "limited", "shop", "trader", "wholesale", "organisation", "organization"),
}
_USER_TYPE_LOOKUP = {word: code for code, words in _USER_TYPE_WORDS.items() for word in words}
_NOT_MARK = re.compile(r"[^A-Za-z0-9 _-]+")
_PHONE_LOOKALIKES = str.maketrans({"O": "0", "o": "0", "I": "1", "l": "1", "|": "1", "S": "5"})


# A fuzzy region guess at or above this score is filled in; below it, it is asked as a question.
SURE_SCORE = 92.0
# Words that are places outside Ghana (or not places): a fuzzy match on one is never filled in ("China" is
# not a typo of Chiana). Folded: lower case, single spaces.
PLACES_ELSEWHERE = frozenset({
    "china", "togo", "nigeria", "lagos", "lome", "benin", "cotonou", "ivory coast", "cote d'ivoire", "abidjan",
    "burkina faso", "ouagadougou", "mali", "niger", "senegal", "dakar", "liberia", "sierra leone", "guinea",
    "cameroon", "kenya", "south africa", "egypt", "morocco", "dubai", "uae", "india", "pakistan", "turkey",
    "usa", "america", "uk", "england", "london", "germany", "france", "italy", "spain", "canada", "japan",
    "korea", "vietnam", "thailand", "malaysia", "indonesia", "brazil", "guangzhou", "yiwu", "shenzhen",
    "beijing", "shanghai", "hong kong", "europe", "africa", "asia",
})


def _fold_place(text: str) -> str:
    return " ".join(str(text).casefold().split())


def user_type_for(text: str) -> str | None:
    """The user type a word means (`Company` -> BUSINESS, `personal` -> INDIVIDUAL), or None."""
    word = re.sub(r"[^a-z]", "", str(text).casefold())
    code = word.upper() if word.upper() in USER_TYPES else _USER_TYPE_LOOKUP.get(word)
    return code if code in USER_TYPES else None


def _suggest(field: str, text: str, settings: Settings) -> tuple[str | None, str]:
    """A target for one failing text and why, before checking it passes."""
    stripped = text.strip()
    if not stripped:
        return None, ""
    if field == "region":
        match = match_region(stripped)
        if match is None:
            return None, ""
        if match.how == "fuzzy":
            if match.score < SURE_SCORE or _fold_place(stripped) in PLACES_ELSEWHERE:
                return None, (f"{stripped}: {match.name}, {REGIONS[match.region]} ({match.score:.0f}%)? Not "
                              "filled in: a guess this unsure can misfile customers; choose the region if it "
                              "is right")
            return match.region, f"looks like {match.name} ({match.score:.0f}%)"
        verb = "is in" if match.kind == "town" else "means"
        name = stripped if match.how == "exact" else match.name
        return match.region, f"{name} {verb} {REGIONS[match.region]}"
    if field == "user_type":
        code = user_type_for(stripped)
        return (code, f"{stripped} means {code.title()}") if code else (None, "")
    if field == "phone":
        digits_like = stripped.translate(_PHONE_LOOKALIKES)
        if digits_like != stripped:
            try:
                return clean.normalise_phone(digits_like, settings.phone_rules), "letters read as digits"
            except clean.InvalidValue:
                return None, ""
        return None, ""
    if field == "email":
        fixed = re.sub(r"^mailto:", "", stripped, flags=re.IGNORECASE).replace(" ", "").replace(",", ".")
        fixed = re.sub(r"\.{2,}", ".", fixed).strip("<>()[]\"'.;:").lower()
        return (fixed, "spaces, commas or case fixed") if fixed != stripped else (None, "")
    if field == "shipping_mark":
        fixed = " ".join(_NOT_MARK.sub(" ", stripped).split())
        return (fixed, "characters a mark cannot hold replaced by spaces") if fixed and fixed != stripped else (None, "")
    return None, ""


def _passing(field: str, texts: list[str], settings: Settings) -> set[str]:
    """The texts that pass `field`'s checks, run as the validator runs them (duplicates among them ignored)."""
    distinct = list(dict.fromkeys(texts))
    if not distinct:
        return set()
    frame = pd.DataFrame({field: distinct}, index=pd.RangeIndex(1, len(distinct) + 1, name="source_row_number"))
    bad = set(failing_rows(check_frame(frame, settings), field).tolist())
    return {text for row, text in enumerate(distinct, start=1) if row not in bad}


# -- what an operation changes ---------------------------------------------------------------------------
class OperationTooBig(UsageError):
    """An operation refused before it ran: a cell it writes, or the text it adds, would pass a limit."""


def _chunks(checked: Checked, field: str) -> Iterator[pd.Series]:
    """The field's text a chunk of CHUNK_ROWS rows at a time (blank for missing): no whole-column copy."""
    values = checked.original[field]
    for start in range(0, len(values), CHUNK_ROWS):
        yield values.iloc[start:start + CHUNK_ROWS].fillna("").astype(str)


def _lengths(text: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Each cell's length in characters and in UTF-8 bytes, from Arrow (no Python object per cell)."""
    array = pa.array(text.to_numpy(dtype=object), type=pa.large_string())
    chars = pc.utf8_length(array).to_numpy(zero_copy_only=False)
    return np.asarray(chars, dtype=np.int64), np.asarray(pc.binary_length(array).to_numpy(zero_copy_only=False),
                                                         dtype=np.int64)


def _sizes_after(text: pd.Series, operation: Operation) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For one chunk: which cells the operation touches, their lengths now and after it (characters, and the
    bytes after minus before), computed from the lengths alone: the new text is not built."""
    chars, size = _lengths(text)
    if isinstance(operation, Conversion):
        mapping = operation.mapping
        hit = text.isin(list(mapping)).to_numpy()
        targets = text[hit]
        new_chars = np.zeros(len(text), dtype=np.int64)
        grown = np.zeros(len(text), dtype=np.int64)
        new_chars[hit] = targets.map({k: len(v) for k, v in mapping.items()}).to_numpy(dtype=np.int64)
        grown[hit] = targets.map({k: len(v.encode("utf-8", "replace")) for k, v in mapping.items()}).to_numpy(
            dtype=np.int64) - size[hit]
        return hit, chars, new_chars, grown
    replacement = operation.replace
    if operation.whole_cell:
        key = text.str.strip()
        find = operation.find.strip()
        if not operation.match_case:
            key, find = key.str.casefold(), find.casefold()
        hit = (key == find).to_numpy()
        new_chars = np.where(hit, len(replacement), chars)
        return hit, chars, new_chars, np.where(hit, len(replacement.encode("utf-8", "replace")) - size, 0)
    flags = 0 if operation.match_case else re.IGNORECASE
    found = text.str.count(re.escape(operation.find), flags=flags).to_numpy(dtype=np.int64)
    hit = found > 0
    new_chars = chars + found * (len(replacement) - len(operation.find))
    step = len(replacement.encode("utf-8", "replace")) - len(operation.find.encode("utf-8", "replace"))
    return hit, chars, new_chars, found * step


def check_operation(checked: Checked, operation: Operation, settings: Settings | None = None) -> None:
    """OperationTooBig, before anything is built, when the operation would write a cell longer than
    settings.max_cell_chars characters (one it makes longer), or add more than settings.max_operation_mb MB of
    text to the upload. Works from the cells' lengths a chunk at a time: what it holds is one chunk's lengths."""
    settings = settings or Settings()
    label = label_of(operation.field)
    too_long = 0
    first_row: int | None = None
    longest = cells = 0
    added = 0
    for text in _chunks(checked, operation.field):
        hit, chars, new_chars, grown = _sizes_after(text, operation)
        over = hit & (new_chars > settings.max_cell_chars) & (new_chars > chars)
        if over.any():
            too_long += int(over.sum())
            longest = max(longest, int(new_chars[over].max()))
            if first_row is None:
                first_row = int(text.index[int(np.argmax(over))])
        cells += int(hit.sum())
        added += int(grown[hit].sum())
    if too_long:
        others = f" and {too_long - 1:,} other row{'' if too_long == 2 else 's'}" if too_long > 1 else ""
        raise OperationTooBig(
            f"Not applied: this would make the {label} of row {first_row:,}{others} {longest:,} characters long, "
            f"and a cell can hold at most {settings.max_cell_chars:,}. Use a shorter replacement.")
    limit = settings.max_operation_mb * 1_048_576
    if added > limit:
        raise OperationTooBig(
            f"Not applied: this would add {added / 1_048_576:,.0f} MB of text to the upload ({cells:,} {label} "
            f"cells), and one change can add at most {settings.max_operation_mb:,} MB. Use a shorter replacement, "
            "or change fewer rows (make the text to find more specific).")


def _new_in(column: pd.Series, operation: Operation) -> pd.Series:
    """The new text of one chunk's cells that the operation changes."""
    if isinstance(operation, Conversion):
        mapping = operation.mapping
        hit = column.isin(list(mapping))
        new = column[hit].map(mapping)
    elif operation.whole_cell:
        key = column.str.strip()
        find = operation.find.strip()
        if not operation.match_case:
            key, find = key.str.casefold(), find.casefold()
        new = pd.Series(operation.replace, index=column.index[(key == find).to_numpy()], dtype=object)
    else:
        pattern = re.escape(operation.find)
        flags = 0 if operation.match_case else re.IGNORECASE
        hit = column.str.contains(pattern, regex=True, flags=flags)
        replacement = operation.replace
        new = column[hit].str.replace(pattern, lambda _m: replacement, regex=True, flags=flags)
    new = new.astype(str)
    return new[new.to_numpy() != column.loc[new.index].to_numpy()]


def new_values(checked: Checked, operation: Operation, settings: Settings | None = None) -> pd.Series:
    """The new text of the rows the operation changes (index: source rows); unchanged rows are left out.

    check_operation first (OperationTooBig when the result would be too big), then a chunk of CHUNK_ROWS rows
    at a time: what is held is one chunk's text and the changed cells' new text."""
    check_operation(checked, operation, settings)
    parts = [part for chunk in _chunks(checked, operation.field) if len(part := _new_in(chunk, operation))]
    if not parts:
        return pd.Series([], dtype=object, index=checked.original.index[:0])
    return parts[0] if len(parts) == 1 else pd.concat(parts)


def preview(checked: Checked, operation: Operation, settings: Settings | None = None) -> Preview:
    """How many failing rows the operation fixes (its field passes after it) and how many rows it changes."""
    new = new_values(checked, operation, settings)
    failing = new[new.index.isin(failing_rows(checked, operation.field))]
    passing = _passing(operation.field, failing.unique().tolist(), settings or Settings())
    return Preview(fixes=int(failing.isin(list(passing)).sum()), changes=len(new))


def apply_operation(checked: Checked, operation: Operation, settings: Settings) -> Checked:
    """The upload with the operation applied; only the rows it changes are checked again. OperationTooBig,
    before anything is built, when its result would be too big (check_operation)."""
    new = new_values(checked, operation, settings)
    if new.empty:
        return checked
    changed = checked.original.loc[new.index].copy()
    changed[operation.field] = new.astype(changed[operation.field].dtype)
    return recheck(checked, changed, settings)


def apply_conversion(checked: Checked, conversion: Conversion, settings: Settings) -> Checked:
    """The upload with the conversion applied (apply_operation, named for the call sites that read better)."""
    return apply_operation(checked, conversion, settings)


# -- mapping warnings: an ignored column that looks like a field left to its default ---------------------
LOOKS_LIKE_SHARE = 0.5


@dataclass(frozen=True)
class MappingWarning:
    """An optional field left to its default for `rows` rows, and the ignored column that looks like it."""

    field: str
    default: str
    rows: int
    column: int | None
    header: str | None
    share: float | None
    message: str


def _user_type_share(values: dict[str, int]) -> float:
    total = sum(n for v, n in values.items() if v.strip())
    return sum(n for v, n in values.items() if v.strip() and user_type_for(v)) / total if total else 0.0


def mapping_warnings(mapping: ColumnMapping, notes: SheetNotes, rows: int, default_region: str) -> tuple[MappingWarning, ...]:
    """Optional fields with a default (region, user type) that no column feeds, for all `rows` rows.

    Each says how many rows get the default and, when an ignored column looks like the field (at least
    LOOKS_LIKE_SHARE of its counted values are regions or towns, or user types), which one:
    `Location looks like regions: 96% of its values are towns or regions.` Region is warned about even
    without such a column, since a branch list without regions is usually a mistake; user type is not.
    """
    fed = {f for choice in mapping.fields for f in fed_fields(choice)}
    found: list[MappingWarning] = []
    checks = (("region", default_region, region_share, "regions", "towns or regions"),
              ("user_type", USER_TYPES[0], _user_type_share, "user types", "user types"))
    for name, default, share_of, kind, what in checks:
        if name in fed or rows == 0:
            continue
        best: tuple[float, int] | None = None
        for column, (header, choice) in enumerate(zip(mapping.headers, mapping.fields, strict=True)):
            values = notes.values_of(column)
            if choice is not None or not header.strip() or not values:
                continue
            share = share_of(values)
            if share >= LOOKS_LIKE_SHARE and (best is None or share > best[0]):
                best = (share, column)
        shown = REGIONS.get(default, default) if name == "region" else default.title()
        rows_text = f"all {rows:,} rows get" if rows != 1 else "the row gets"
        if best is not None:
            share, column = best
            header = mapping.headers[column].strip()
            message = (f"{header} looks like {kind}: {share:.0%} of its values are {what}. It is ignored, so "
                       f"{rows_text} the default {label_of(name).lower()} {shown}. Map {header} to {label_of(name)}.")
            found.append(MappingWarning(name, default, rows, column, header, share, message))
        elif name == "region":
            message = (f"No column is mapped to Region: {rows_text} the default region {shown}. "
                       "If the file says where customers are, map that column to Region.")
            found.append(MappingWarning(name, default, rows, None, None, None, message))
    return tuple(found)


__all__ = ["VALUE_LIMIT", "Conversion", "Operation", "Preview", "Replace", "apply_conversion", "apply_operation",
           "apply_operations", "operations_from_json",
           "LOOKS_LIKE_SHARE", "OperationTooBig", "check_operation", "MappingWarning", "mapping_warnings", "failing_fields", "failing_rows", "failing_values", "new_values", "operation_from_dict", "preview",
           "user_type_for"]
