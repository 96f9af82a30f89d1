"""The summary of a run, and its failures as streamed JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from json.encoder import encode_basestring
from typing import IO, Any

# At module level: `from schemas.customer import ...` inside a function costs a failed `__path__` lookup
# through that module's __getattr__ on every call, which was most of a per-row ErrorTable lookup.
from importer.outcomes.failed_rows import NO_FAILURES, NO_UPDATES, FailedRow, FailedRows, UpdatedRows
from importer.outcomes.row_errors import _error_head, error_text


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


@dataclass(frozen=True)
class RunResult:
    """The summary of one import: `created + updated + unchanged + failed == attempted`, always.

    `failed` streams the failed rows; `failure_codes` counts failed rows per code; `updated` streams the
    rows that updated a customer (with their diffs); `total_unchanged` counts rows equal to their customer.
    """

    run_id: int | None
    dry_run: bool
    resumed: bool
    file: str
    sheet: str | None
    total_attempted: int
    total_created: int
    failed: FailedRows = field(default=NO_FAILURES, compare=False, repr=False)
    failure_codes: Mapping[str, int] = field(default_factory=dict)
    updated: UpdatedRows = field(default=NO_UPDATES, compare=False, repr=False)
    total_unchanged: int = 0
    # What normalising changed beyond formatting, per rule (importer.checks.changes.Changes.to_json()).
    changes: tuple[Mapping[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if self.total_created + self.total_updated + self.total_unchanged + self.total_failed != self.total_attempted:
            raise AssertionError(
                f"accounting broken: {self.total_created} created + {self.total_updated} updated + "
                f"{self.total_unchanged} unchanged + {self.total_failed} failed != {self.total_attempted} attempted"
            )

    @property
    def total_failed(self) -> int:
        return len(self.failed)

    @property
    def total_updated(self) -> int:
        return len(self.updated)

    @property
    def message(self) -> str:
        """`Created 3 customers; updated 2; 5 unchanged; 1 row failed` (parts that are 0 left out)."""
        text = f"{'Would create' if self.dry_run else 'Created'} {_plural(self.total_created, 'customer')}"
        if self.total_updated:
            text += f"; would update {self.total_updated:,}" if self.dry_run else f"; updated {self.total_updated:,}"
        if self.total_unchanged:
            text += f"; {self.total_unchanged:,} unchanged"
        if self.dry_run:
            if self.total_failed:
                text += f"; {_plural(self.total_failed, 'row')} would fail"
            return text
        if self.total_failed:
            text += f"; {_plural(self.total_failed, 'row')} failed"
        return text

    def summary_json(self) -> dict[str, Any]:
        """The JSON object's keys before `failed_customers`, as CONTRACT.md shows them."""
        return {
            "run_id": self.run_id,
            "dry_run": self.dry_run,
            "resumed": self.resumed,
            "file": self.file,
            "sheet": self.sheet,
            # The run completed; failed rows are part of a completed run (a run that did not complete
            # is an exit status, never a result).
            "success": True,
            "message": self.message,
            "total_attempted": self.total_attempted,
            "total_created": self.total_created,
            "total_failed": self.total_failed,
            "total_updated": self.total_updated,
            "total_unchanged": self.total_unchanged,
            "changes": [dict(change) for change in self.changes],
        }

    def to_json(self) -> dict[str, Any]:
        """The CLI's JSON object, key for key as CONTRACT.md shows it (all rows in memory: small runs)."""
        return {**self.summary_json(), "failed_customers": [row.to_json() for row in self.failed],
                "updated_customers": [row.to_json() for row in self.updated]}

    def json_chunks(self, failed_items: Iterable[str] | None = None) -> Iterator[str]:
        """The same JSON text as `json.dumps(self.to_json(), ensure_ascii=False)`, a row at a time.

        `failed_items`: the text of the failed_customers items when it was made already (FailedJson,
        while the failed rows went to a report), so the failed rows are not read again."""
        head = json.dumps(self.summary_json(), ensure_ascii=False)
        yield head[:-1] + ', "failed_customers": ['
        yield from _failed_json_items(self.failed) if failed_items is None else failed_items
        yield '], "updated_customers": ['
        yield from _json_items(updated.to_json() for updated in self.updated)
        yield "]}"


_JSON_BATCH = 500


def _json_items(items: Iterable[Any]) -> Iterator[str]:
    """The items of a JSON array, `, `-separated, without its brackets: `json.dumps` of a batch of items
    at a time (the same text as one call per item, without the cost of a call per item)."""
    items = iter(items)
    first = True
    while batch := list(islice(items, _JSON_BATCH)):
        text = json.dumps(batch, ensure_ascii=False)[1:-1]
        yield text if first else ", " + text
        first = False


def failed_row_json(row: FailedRow) -> str:
    """`json.dumps(row.to_json(), ensure_ascii=False)`, put together from its pieces (a row's dicts and
    json.dumps call were most of the CLI's JSON of 100,000 failed rows)."""
    enc = encode_basestring
    try:
        number = row.source_row_number
        if type(number) is not int:
            raise TypeError(number)
        errors = row.errors
        return ('{"source_row_number": ' + str(number) + ', "error": ' + enc(error_text(errors)) + ', "errors": ['
                + ", ".join([_error_head(e.field, False) + enc(e.code.value) + ', "message": ' + enc(e.message) + "}"
                             for e in errors])
                + '], "customer_data": {'
                + ", ".join([enc(k) + ": " + enc(v) for k, v in row.customer_data.items()]) + "}}")
    except (TypeError, AttributeError):  # not text where text is expected: json.dumps says what it makes of it
        return json.dumps(row.to_json(), ensure_ascii=False)


def _failed_json_items(rows: Iterable[FailedRow]) -> Iterator[str]:
    """The failed_customers items, `, `-separated, without the brackets, a batch of rows at a time."""
    rows = iter(rows)
    first = True
    while batch := [failed_row_json(row) for row in islice(rows, _JSON_BATCH)]:
        text = ", ".join(batch)
        yield text if first else ", " + text
        first = False


class FailedJson:
    """The JSON items of failed rows, written to a text file as the rows pass on to a report: the CLI's
    --report and --json then read the failed rows once (a 100,000-row run's rows come from the database
    or the upload a chunk at a time; the spool holds their JSON text, not objects)."""

    def __init__(self, spool: IO[str]) -> None:
        self._spool = spool
        self._first = True
        self.complete = False

    def passing(self, rows: Iterable[FailedRow]) -> Iterator[FailedRow]:
        """The rows, unchanged; each one's JSON is written once it has been handed on."""
        batch: list[str] = []
        for row in rows:
            yield row
            batch.append(failed_row_json(row))
            if len(batch) >= _JSON_BATCH:
                self._write(batch)
                batch = []
        self._write(batch)
        self.complete = True

    def _write(self, batch: list[str]) -> None:
        if batch:
            self._spool.write(("" if self._first else ", ") + ", ".join(batch))
            self._first = False

    def items(self, block: int = 1 << 20) -> Iterator[str]:
        """The items' text (for RunResult.json_chunks), once every row has passed."""
        if not self.complete:
            raise RuntimeError("the failed rows have not all passed yet")
        self._spool.seek(0)
        while text := self._spool.read(block):
            yield text
