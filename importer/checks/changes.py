"""What normalising changed beyond formatting, per rule, with counts and examples (issue 22).

Trimming spaces, changing case and removing phone punctuation is formatting, and is not listed. Moving or
rewriting information is: a phone extension kept in Other Phones, a punycode e-mail domain written in
Unicode, an honorific dropped from a full name. Each such rule is counted here so Review, the CLI's JSON,
the failure report and History can say "Kept 2 phone extensions in Other Phones".

The record is data: `Checked.changes` (what the field normalisers did, importer.checks.validate) and
`SheetNotes.changes` (what splitting full names did, importer.mapping.columns); `upload_changes(upload)`
gives both as one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

# rule -> (field, message with {count} and {s}/{es} for plurals). The order is the order they are listed in.
RULES: dict[str, tuple[str, str]] = {
    "phone_extension": ("phone", "Kept {count:,} phone extension{s} in Other Phones"),
    "email_unicode_domain": ("email", "Wrote {count:,} e-mail domain{s} typed in punycode (xn--) in Unicode, so "
                                      "both spellings are one mailbox"),
    "name_honorific": ("first_name", "Dropped {count:,} honorific{s} (Mr, Mrs, Dr...) from full names"),
    "name_business": ("company_name", "Read {count:,} business name{s} (Ltd, & Sons, Enterprise, Ventures...) as "
                                      "company names with user type BUSINESS"),
    "region_default": ("region", "{count:,} blank region{s} got the default region {stored}"),
}
EXAMPLES = 5


@dataclass(frozen=True)
class Change:
    """One rule's changes: how many cells, and the first few as (source row, as typed, as stored)."""

    rule: str
    count: int
    examples: tuple[tuple[int, str, str], ...] = ()

    @property
    def field(self) -> str:
        return RULES[self.rule][0] if self.rule in RULES else ""

    @property
    def message(self) -> str:
        template = RULES[self.rule][1] if self.rule in RULES else self.rule + ": {count:,}"
        stored = self.examples[0][2] if self.examples else ""
        return template.format(count=self.count, s="" if self.count == 1 else "s", stored=stored)

    def line(self) -> str:
        """`Kept 2 phone extensions in Other Phones (row 4: 024-123-4567 ext 12 -> +233241234567 ext 12; ...)`."""
        shown = "; ".join(f"row {row}: {typed or '(blank)'} -> {stored}" for row, typed, stored in self.examples[:3])
        return f"{self.message} ({shown})" if shown else self.message

    def to_json(self) -> dict[str, Any]:
        return {"rule": self.rule, "field": self.field, "count": self.count, "message": self.message,
                "examples": [{"source_row_number": row, "typed": typed, "stored": stored}
                             for row, typed, stored in self.examples]}


@dataclass(frozen=True)
class Changes:
    """Every rule that changed something, in RULES order; empty when normalising only formatted."""

    items: tuple[Change, ...] = ()

    def __iter__(self) -> Iterator[Change]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __bool__(self) -> bool:
        return bool(self.items)

    def count(self, rule: str) -> int:
        return sum(c.count for c in self.items if c.rule == rule)

    def lines(self) -> list[str]:
        return [c.line() for c in self.items]

    def to_json(self) -> list[dict[str, Any]]:
        return [c.to_json() for c in self.items]

    @classmethod
    def from_json(cls, data: list[dict[str, Any]]) -> Changes:
        """The inverse of to_json (a workspace snapshot keeps the record with the upload)."""
        return changes_of(Change(str(c["rule"]), int(c["count"]), tuple(
            (int(e["source_row_number"]), str(e["typed"]), str(e["stored"])) for e in c.get("examples", ())))
            for c in data)

    def without(self, rule: str) -> Changes:
        """The record without one rule's changes (the default region turned off: no blank got it)."""
        return Changes(tuple(c for c in self.items if c.rule != rule))

    def merged(self, *others: Changes) -> Changes:
        return changes_of([*self.items, *(c for other in others for c in other.items)])


EMPTY_CHANGES = Changes()


def changes_of(found: Iterable[Change]) -> Changes:
    """One Change per rule (counts added, examples in row order), in RULES order."""
    by_rule: dict[str, list[Change]] = {}
    for change in found:
        if change.count:
            by_rule.setdefault(change.rule, []).append(change)
    order = {rule: i for i, rule in enumerate(RULES)}
    merged = []
    for rule in sorted(by_rule, key=lambda r: (order.get(r, len(order)), r)):
        parts = by_rule[rule]
        examples = sorted(e for part in parts for e in part.examples)[:EXAMPLES]
        merged.append(Change(rule, sum(p.count for p in parts), tuple(examples)))
    return Changes(tuple(merged))


def upload_changes(upload: Any) -> Changes:
    """Everything an upload's reading and normalising changed: its notes' (full names) and its checked
    values' (field normalisers). Accepts an importer.api.Upload, or anything with `notes` / `checked`."""
    notes = getattr(getattr(upload, "notes", None), "changes", EMPTY_CHANGES)
    checked = getattr(getattr(upload, "checked", None), "changes", EMPTY_CHANGES)
    return notes.merged(checked)


__all__ = ["EMPTY_CHANGES", "RULES", "Change", "Changes", "changes_of", "upload_changes"]
