"""JSON files a user hands the CLI (`--mapping FILE.json`, `--operations FILE.json`), read defensively.

A hostile or broken file ends in one line (UsageError: exit status 2, no traceback), never in a
RecursionError, a ValueError from a 5,000-digit integer or a TypeError deep in the engine:

- size: at most MAX_JSON_BYTES are read (checked with stat first, and the read itself is bounded);
- depth and keys: nesting and the keys of objects are counted on the text before it is parsed
  (MAX_JSON_DEPTH levels, MAX_JSON_KEYS keys: a file of two million keys is refused unparsed);
- numbers: integers of more than MAX_INT_DIGITS digits, NaN and Infinity are refused while parsing;
- shape: mapping_fields and operation_dicts check every key's type and name the key that is wrong.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from importer.errors import UsageError

MAX_JSON_BYTES = 1024 * 1024
MAX_JSON_DEPTH = 16
MAX_INT_DIGITS = 20
MAX_KEY_CHARS = 1_000
# Keys in all the file's objects: a mapping names at most one a column (MAX_COLUMNS, 1,000 by default); an
# operations file's conversions one a distinct value.
MAX_JSON_KEYS = 50_000


def read_json_file(path: str | Path, what: str, *, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """The parsed content of a JSON file (UTF-8, a BOM allowed); UsageError with one line when it cannot be used.

    `what` names the file in messages: "the mapping file customers.json".
    """
    return parse_json(read_json_text(path, what, max_bytes=max_bytes), what, max_chars=max_bytes)


def read_json_text(path: str | Path, what: str, *, max_bytes: int = MAX_JSON_BYTES) -> str:
    """A JSON file's text, at most max_bytes read (UTF-8, a BOM dropped); UsageError with one line.

    A file refused for its size is named by its name, not the path `what` may hold (one-line errors)."""
    path = Path(path)
    named = what.replace(str(path), path.name)
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > max_bytes:  # refused by its size, before a byte of it is read
                raise UsageError(f"{named} is over {max_bytes // 1024:,} KB ({size / 1024:,.0f} KB); a mapping or "
                                 "operations file is far smaller")
            data = handle.read(max_bytes + 1)
    except FileNotFoundError:
        raise UsageError(f"{what} does not exist") from None
    except IsADirectoryError:
        raise UsageError(f"{what} is a folder, not a JSON file") from None
    except OSError as exc:
        raise UsageError(f"cannot read {what}: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise UsageError(f"{named} is over {max_bytes // 1024:,} KB; a mapping or operations file is far smaller")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{what} is not UTF-8 text (byte {exc.start:,}); save it as UTF-8") from None
    return text


def parse_json(text: str, what: str, *, max_chars: int = MAX_JSON_BYTES, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """json.loads with limits checked first (length, nesting depth) and while parsing (integer digits,
    NaN/Infinity); UsageError with one line naming what is wrong."""
    if len(text) > max_chars:
        raise UsageError(f"{what} is over {max_chars // 1024:,} KB; a mapping or operations file is far smaller")
    depth, line = nesting_depth(text)
    if depth > max_depth:
        raise UsageError(f"{what} nests more than {max_depth} levels deep (line {line:,}); "
                         "a mapping or operations file needs two or three")
    keys = count_keys(text)
    if keys > MAX_JSON_KEYS:
        raise UsageError(f"{what} holds {keys:,} keys, over the {MAX_JSON_KEYS:,} a mapping or operations file "
                         "may have; a mapping names one column header a key")
    try:
        return json.loads(text, parse_int=_bounded_int, parse_constant=_no_constant)
    except UsageError as exc:
        raise UsageError(f"{what}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except (ValueError, RecursionError) as exc:  # nothing else should get here; never a traceback
        raise UsageError(f"{what} is not valid JSON ({exc.__class__.__name__})") from None


def nesting_depth(text: str) -> tuple[int, int]:
    """(the deepest nesting of [ and { outside strings, the line where it is first reached), in one pass."""
    depth = deepest = 0
    line = deepest_line = 1
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest, deepest_line = depth, line
        elif ch in "]}":
            depth -= 1
        if ch == "\n":
            line += 1
    return deepest, deepest_line


def count_keys(text: str) -> int:
    """The keys of every object in JSON text (its ':' outside strings), counted before it is parsed: the
    text split on '"' alternates outside and inside strings once escaped quotes are taken out."""
    if "\\" in text:
        text = text.replace("\\\\", "").replace('\\"', "")
    return sum(part.count(":") for part in text.split('"')[::2])


def _bounded_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise UsageError(f"a number of {digits:,} digits; no setting here needs more than {MAX_INT_DIGITS}")
    return int(text)


def _no_constant(name: str) -> Any:
    raise UsageError(f"{name} is not a value JSON allows")


def _kind(value: object) -> str:
    """A JSON value's type in the file's words."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _short(key: object) -> str:
    text = repr(key)
    return text if len(text) <= 60 else text[:57] + "..."


def mapping_fields(raw: Any, what: str, example: str = '{"Mobile No": "phone", "S/No": null}') -> dict[str, str | None]:
    """A mapping file's content checked: one object of column header (text) -> field name (text) or null."""
    if not isinstance(raw, dict):
        raise UsageError(f"{what} must be one JSON object of column header -> field name (null to ignore a "
                         f"column), e.g. {example}; it holds {_kind(raw)}")
    for key, value in raw.items():
        if len(key) > MAX_KEY_CHARS:
            raise UsageError(f"{what}: the header {_short(key)} is over {MAX_KEY_CHARS:,} characters")
        if value is not None and not isinstance(value, str):
            raise UsageError(f"{what} must be one JSON object of column header -> field name (text) or null; "
                             f"the value of {_short(key)} is {_kind(value)}")
    return dict(raw)


# Each operation kind's keys: name -> (required, the Python type, the type in words).
_OPERATION_KEYS: dict[str, dict[str, tuple[bool, type | tuple[type, ...], str]]] = {
    "convert": {"kind": (True, str, "text"), "field": (True, str, "text"), "targets": (True, dict, "an object")},
    "replace": {"kind": (True, str, "text"), "field": (True, str, "text"), "find": (True, str, "text"),
                "replace": (True, str, "text"), "whole_cell": (False, bool, "true or false"),
                "match_case": (False, bool, "true or false")},
}


def operation_dicts(raw: Any, what: str) -> list[dict[str, Any]]:
    """An operations file's content checked: one operation object or a list of them, each with the keys its
    kind needs and of the right types (convert: text -> text or null targets). UsageError names the operation
    and the key."""
    items = raw if isinstance(raw, list) else [raw]
    checked: list[dict[str, Any]] = []
    for number, item in enumerate(items, start=1):
        where = f"{what}, operation {number}"
        if not isinstance(item, Mapping):
            raise UsageError(f"{where}: expected an object with a 'kind', not {_kind(item)}")
        kind = item.get("kind")
        if not isinstance(kind, str) or kind not in _OPERATION_KEYS:
            raise UsageError(f"{where}: unknown operation kind {_short(kind)}; expected 'convert' or 'replace'")
        keys = _OPERATION_KEYS[kind]
        for key, (required, wanted, words) in keys.items():
            if key not in item:
                if required:
                    raise UsageError(f"{where}: {key!r} is missing")
                continue
            value = item[key]
            if not isinstance(value, wanted) or (wanted is not bool and isinstance(value, bool)):
                raise UsageError(f"{where}: {key!r} must be {words}, not {_kind(value)}")
        if kind == "convert":
            for source, target in item["targets"].items():
                if len(source) > MAX_KEY_CHARS:
                    raise UsageError(f"{where}: the value {_short(source)} in 'targets' is over "
                                     f"{MAX_KEY_CHARS:,} characters")
                if target is not None and not isinstance(target, str):
                    raise UsageError(f"{where}: 'targets' {_short(source)} must map to text or null, "
                                     f"not {_kind(target)}")
        checked.append(dict(item))
    return checked


__all__ = ["MAX_JSON_BYTES", "MAX_JSON_DEPTH", "MAX_JSON_KEYS", "count_keys", "mapping_fields", "operation_dicts", "parse_json", "read_json_file", "read_json_text"]
