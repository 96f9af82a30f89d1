"""Row errors and their codes, the run statuses, and the error text a report or a page shows.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from json.encoder import encode_basestring, encode_basestring_ascii
from typing import Any, Protocol

import numpy as np

# At module level: `from schemas.customer import ...` inside a function costs a failed `__path__` lookup
# through that module's __getattr__ on every call, which was most of a per-row ErrorTable lookup.
from schemas.customer import label_of


class ErrorCode(StrEnum):
    """Stable reason codes of CONTRACT.md: code branches on these, people read the message."""

    REQUIRED = "required"
    TOO_LONG = "too_long"
    INVALID_FORMAT = "invalid_format"
    INVALID_PHONE = "invalid_phone"
    INVALID_EMAIL = "invalid_email"
    INVALID_REGION = "invalid_region"
    INVALID_CHOICE = "invalid_choice"
    DUPLICATE_IN_FILE = "duplicate_in_file"
    ALREADY_EXISTS = "already_exists"
    CONFLICT = "conflict"
    DATABASE_ERROR = "database_error"
    # Only in a report the analyst asks for (importer.review.exclusions): a row she left out; never stored by a run.
    EXCLUDED = "excluded"

    @property
    def meaning(self) -> str:
        """The reason in plain words: `Not a valid phone number`."""
        return _MEANINGS[self]


_MEANINGS = {
    ErrorCode.REQUIRED: "Required field is blank",
    ErrorCode.TOO_LONG: "Too long",
    ErrorCode.INVALID_FORMAT: "Not allowed characters or shape",
    ErrorCode.INVALID_PHONE: "Not a valid phone number",
    ErrorCode.INVALID_EMAIL: "Not a valid email address",
    ErrorCode.INVALID_REGION: "Not a known region",
    ErrorCode.INVALID_CHOICE: "Not an allowed value",
    ErrorCode.DUPLICATE_IN_FILE: "Duplicate inside the file",
    ErrorCode.ALREADY_EXISTS: "Already a customer in the database",
    ErrorCode.CONFLICT: "Matches two or more different customers",
    ErrorCode.DATABASE_ERROR: "Refused by the database",
    ErrorCode.EXCLUDED: "Excluded by the analyst",
}
# A stored code's member by its text: a dict lookup, not the Enum call (100,000 failures are read back).
_CODE_OF: dict[str, ErrorCode] = {code.value: code for code in ErrorCode}
# Codes that mean "this row's key is taken", in the file or in the database.
DUPLICATE_CODES = (ErrorCode.DUPLICATE_IN_FILE, ErrorCode.ALREADY_EXISTS)


class RunStatus(StrEnum):
    """Where a run is in its life; the ledger stores these strings."""

    RUNNING = "running"
    COMPLETED = "completed"
    INTERRUPTED = "interrupted"
    UNDONE = "undone"


@dataclass(frozen=True)
class RowError:
    """One problem of one row: which field, which code, a sentence for people, and what caused it.

    `value` is the offending value (as normalised, or as typed when it could not be); `other_row` is,
    for a duplicate inside the file, the earlier row that keeps the value.
    """

    field: str
    code: ErrorCode
    message: str
    value: str | None = None
    other_row: int | None = None

    def to_dict(self) -> dict[str, str]:
        """The contract's `errors[]` item: field, code, message."""
        return {"field": self.field, "code": self.code.value, "message": self.message}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RowError:
        code = data["code"]
        return cls(data["field"], _CODE_OF.get(code) or ErrorCode(code), data["message"])


class _Described(Protocol):
    @property
    def field(self) -> str: ...
    @property
    def message(self) -> str: ...


def error_text(errors: Iterable[_Described]) -> str:
    """The one-line `error` of a failed row: `Phone: 5412345 is not a valid phone number`."""
    return "; ".join(f"{label_of(e.field)}: {e.message}" for e in errors)


# json.dumps' own text, piece by piece (its separators ", " and ": "): the JSON a run stores of a row's
# errors and values, and the CLI's JSON of a failed row, without a dict and a json.dumps call per row.
def _error_head(field: str, ascii_only: bool) -> str:
    enc = encode_basestring_ascii if ascii_only else encode_basestring
    return '{"field": ' + enc(field) + ', "code": '


def errors_json(errors: Iterable[RowError]) -> str:
    """`json.dumps([e.to_dict() for e in errors])`: the text import_failures.errors stores."""
    enc = encode_basestring_ascii
    return "[" + ", ".join(_error_head(e.field, True) + enc(e.code.value) + ', "message": ' + enc(e.message) + "}"
                           for e in errors) + "]"


_CODES = tuple(ErrorCode)
_CODE_INDEX = {code: i for i, code in enumerate(_CODES)}


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """np.unique of integers, by one sort (none when already increasing). numpy 2's np.unique of integers
    hashes them: 25 ms for 150,000 row numbers, against 2 ms sorted (0.05 ms when already in order), and a
    replay makes sets of rows hundreds of times."""
    values = np.asarray(values)
    if len(values) < 2:
        return values.copy()
    if bool((values[1:] > values[:-1]).all()):
        return values.copy()  # a new array, as np.unique gives: callers may write to it
    values = np.sort(values)
    first = np.empty(len(values), dtype=bool)
    first[0] = True
    np.not_equal(values[1:], values[:-1], out=first[1:])
    return values[first]


def _numbers(values: array, dtype: type) -> np.ndarray:
    """A typed array's numbers seen as a numpy array (no copy; ErrorTable._sorted makes its own)."""
    return np.frombuffer(values, dtype=dtype)


