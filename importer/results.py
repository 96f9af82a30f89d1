"""Row and run outcomes as frozen dataclasses: what every other module hands around."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any


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
    DATABASE_ERROR = "database_error"


class RowStatus(Enum):
    """Where a data row ended: every row ends in exactly one."""

    CREATED = "created"
    FAILED = "failed"


@dataclass(frozen=True)
class RowError:
    """One problem of one row: which field, which code, and a sentence for people."""

    field: str
    code: ErrorCode
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "code": self.code.value, "message": self.message}

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> RowError:
        return cls(data["field"], ErrorCode(data["code"]), data["message"])


def error_text(errors: tuple[RowError, ...] | list[RowError]) -> str:
    """The one-line `error` of a failed row: `Phone: 5412345 is not a valid phone number`."""
    from schemas.customer import label_of

    return "; ".join(f"{label_of(e.field)}: {e.message}" for e in errors)


@dataclass(frozen=True)
class RowResult:
    """The outcome of one data row, with its values as they were in the file."""

    source_row_number: int
    status: RowStatus
    errors: tuple[RowError, ...] = ()
    customer_data: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "source_row_number": self.source_row_number,
            "error": error_text(self.errors),
            "errors": [e.to_dict() for e in self.errors],
            "customer_data": dict(self.customer_data),
        }


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


@dataclass(frozen=True)
class RunResult:
    """The summary of one import: `total_created + total_failed == total_attempted`, always."""

    run_id: int | None
    dry_run: bool
    resumed: bool
    file: str
    sheet: str | None
    total_attempted: int
    total_created: int
    failed: tuple[RowResult, ...] = ()

    def __post_init__(self) -> None:
        if self.total_created + len(self.failed) != self.total_attempted:
            raise AssertionError(
                f"accounting broken: {self.total_created} created + {len(self.failed)} failed"
                f" != {self.total_attempted} attempted"
            )

    @property
    def total_failed(self) -> int:
        return len(self.failed)

    @property
    def success(self) -> bool:
        """The run completed; failed rows are part of a completed run."""
        return True

    def has_errors(self) -> bool:
        return bool(self.failed)

    @property
    def message(self) -> str:
        if self.dry_run:
            text = f"Would create {_plural(self.total_created, 'customer')}"
            if self.total_failed:
                text += f"; {_plural(self.total_failed, 'row')} would fail"
            return text
        text = f"Created {_plural(self.total_created, 'customer')}"
        if self.total_failed:
            text += f"; {_plural(self.total_failed, 'row')} failed"
        return text

    def failures_by_code(self) -> dict[str, int]:
        """How many failed rows carry each error code (a row with two codes counts in both)."""
        counts: dict[str, int] = {}
        for row in self.failed:
            for code in {e.code.value for e in row.errors}:
                counts[code] = counts.get(code, 0) + 1
        return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))

    def to_json(self) -> dict[str, Any]:
        """The CLI's JSON object, key for key as CONTRACT.md shows it."""
        return {
            "run_id": self.run_id,
            "dry_run": self.dry_run,
            "resumed": self.resumed,
            "file": self.file,
            "sheet": self.sheet,
            "success": self.success,
            "message": self.message,
            "total_attempted": self.total_attempted,
            "total_created": self.total_created,
            "total_failed": self.total_failed,
            "failed_customers": [row.to_json() for row in self.failed],
        }
