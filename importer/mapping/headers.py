"""Header texts -> fields: the record's names, labels and synonyms (schemas.customer) and a few of our own,
exactly (case, spacing and punctuation aside), then fuzzily for typos; a header naming one field several ways
("Tel/WhatsApp", "WhatsApp No.") is that field. importer.mapping.columns maps whole header rows with it.
"""

from __future__ import annotations

import re
from functools import lru_cache

from rapidfuzz import fuzz

from schemas.customer import FIELDS

# A mapping choice beside the fields: one column holding "First Last", split into first_name and last_name.
FULL_NAME = "full_name"
# Header texts for choices the record's own synonyms (schemas.customer) do not cover: Location, City, Town
# feed Region (their values then get suggestions from the gazetteer), Cust. Name feeds FULL_NAME.
EXTRA_SYNONYMS: dict[str, tuple[str, ...]] = {
    "region": ("location", "city", "town", "city town", "town city", "locality", "district", "hometown", "place",
               "region state", "branch location", "customer location"),
    FULL_NAME: ("name", "names", "full name", "fullname", "full names", "customer name", "customers name",
                "customer s name", "cust name", "client name", "clients name", "customer full name", "name of customer",
                "consignee", "consignee name", "account name", "contact name", "receiver name", "customer", "client"),
}

FUZZY_MIN_SCORE = 88
# Fuzzy matching only for texts this long: "Date" is 89% like "state" but means nothing of ours.
FUZZY_MIN_LENGTH = 5
_PUNCT = re.compile(r"[\s.\-_/\\*:;,()\[\]{}#'\"`?!&+|]+")
_MARKERS = re.compile(r"(\(\s*(required|optional|mandatory)\s*\)|\*)\s*$")


def normalise(text: str) -> str:
    """Casefold, drop a trailing "(required)"/"*", turn punctuation into spaces, collapse spaces."""
    text = str(text).casefold().strip()
    text = _MARKERS.sub("", text)
    return " ".join(_PUNCT.sub(" ", text).split())


@lru_cache(maxsize=1)
def _vocabulary() -> tuple[dict[str, str], tuple[tuple[str, str], ...]]:
    """Exact keys (normalised, spaces removed) -> field, and (normalised text, field) pairs for fuzzy."""
    exact: dict[str, str] = {}
    pairs: list[tuple[str, str]] = []
    names = [(spec.name, (spec.name, spec.label, *spec.synonyms)) for spec in FIELDS]
    names += [(name, (name, *texts)) for name, texts in EXTRA_SYNONYMS.items()]
    for name, texts in names:
        for text in texts:
            norm = normalise(text)
            exact.setdefault(norm.replace(" ", ""), name)
            pairs.append((norm, name))
    return exact, tuple(pairs)


# A header naming one field several ways: "Tel/WhatsApp", "Mobile & WhatsApp", "Phone or WhatsApp".
_ALTERNATIVES = re.compile(r"\s*(?:[/&|+,;()]|\bor\b|\band\b)\s*")
# Words after a phone's name that do not change it: "WhatsApp No.", "Tel Number", "Telephone Nos" (not after
# other names: "Customer No." is a customer's number, not a name).
_PHONES = ("phone", "other_phones")
_NUMBER_WORDS = ("no", "nos", "num", "number", "numbers", "nr", "line")
# A header ending in a second number's mark names the other phones: "Tel/WhatsApp 2".
_SECOND = re.compile(r"^(?P<head>.*\S)\s+(?:2|ii|two|second)$")


def _exact(norm: str) -> str | None:
    """The field a normalised header names exactly, also a phone with "No."/"Number" after it."""
    exact, _ = _vocabulary()
    field = exact.get(norm.replace(" ", ""))
    words = norm.split(" ")
    while field is None and len(words) > 1 and words[-1] in _NUMBER_WORDS:
        words.pop()
        field = exact.get("".join(words))
        if field not in _PHONES:
            field = None
    return field


def _alternatives(text: str) -> str | None:
    """The field every part of a header joined by "/", "&", "or"... names exactly, when they agree."""
    raw = _MARKERS.sub("", str(text).casefold().strip())
    second = _SECOND.match(normalise(raw))
    parts = [normalise(p) for p in _ALTERNATIVES.split(raw)]
    parts = [p for p in parts if p]
    if len(parts) < 2:
        if second is None:
            return None
        parts = [second.group("head")]
    elif second is not None:  # "Tel/WhatsApp 2": the mark is on the last part
        last = _SECOND.match(parts[-1])
        if last is None:
            return None
        parts[-1] = last.group("head")
    fields = {_exact(p) for p in parts}
    if len(fields) != 1 or None in fields:
        return None
    field = fields.pop()
    if second is not None:
        return "other_phones" if field == "phone" else None
    return field


def _score(text: str) -> tuple[str | None, float]:
    """The field a header text names and how sure we are (100 = exact)."""
    norm = normalise(text)
    if not norm:
        return None, 0.0
    exact, pairs = _vocabulary()
    field = exact.get(norm.replace(" ", "")) or _exact(norm) or _alternatives(text)
    if field:
        return field, 100.0
    if len(norm) < FUZZY_MIN_LENGTH:
        return None, 0.0
    best: tuple[str | None, float] = (None, 0.0)
    for candidate, name in pairs:
        if len(candidate) < FUZZY_MIN_LENGTH - 1:
            continue
        score = fuzz.token_sort_ratio(norm, candidate)
        if score >= FUZZY_MIN_SCORE and score > best[1]:
            best = (name, score)
    return best


def match_header(text: str) -> str | None:
    """One header text -> field name (or FULL_NAME), or None when it names no field."""
    return _score(text)[0]
