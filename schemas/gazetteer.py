"""Ghana's regions, their abbreviations and its towns, read from schemas/gazetteer.csv (sources cited there).

`region_for("Gt. Accra")` -> "GREATER_ACCRA": the region a place or an abbreviation means, or None. It is
what the Region conversion suggests for a value the validator refused; it never changes a value by itself.

How a text is matched, in order (each step only if the one before found nothing):

1. exact: case, punctuation and spaces ignored, a trailing "Region", "Municipal", "District", "Ghana"...
   dropped: `G/A`, `g.a.`, ` GA ` and `Ashanti Region` are keys like any other;
2. contains: the longest known names inside the text, word by word (`Adum, Kumasi`, `Tema Comm. 25`,
   `Kumasi - Ashanti`), when they all point to one region (`Wa Central` points to two: no answer);
3. fuzzy: a typo of a known name of 4+ letters (`Kumassi`, `Takorady`), rapidfuzz ratio >= FUZZY_MIN_SCORE.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from schemas.customer import REGIONS

GAZETTEER_CSV = Path(__file__).with_name("gazetteer.csv")
FUZZY_MIN_SCORE = 85
# Short keys (wa, ho, ga) match too much by fuzzy ratio; they are found exactly or not at all.
FUZZY_MIN_LENGTH = 4
# Longest run of words looked up as one name when scanning a text (Sefwi Wiawso, Dunkwa on Offin).
MAX_NAME_WORDS = 4
_NOT_ALNUM = re.compile(r"[^0-9a-z]+")
# Words a place's name may carry that say nothing about which place it is.
_TRAILING = frozenset(
    {"region", "reg", "rgn", "ghana", "gh", "metropolis", "metro", "metropolitan", "municipal", "municipality",
     "district", "city", "town", "township", "area"}
)


@dataclass(frozen=True)
class Place:
    """One row of the gazetteer: a name as people write it, its region code, and its kind (region or town)."""

    name: str
    region: str
    kind: str


@dataclass(frozen=True)
class RegionMatch:
    """The region a text means, the gazetteer name it matched, how (exact, contains or fuzzy), and the
    kind of that name (region: a name or abbreviation of the region; town: a place in it)."""

    region: str
    name: str
    how: str
    score: float = 100.0
    kind: str = "region"


def _words(text: str) -> list[str]:
    """Lower-case alphanumeric words, trailing words like "Region" dropped (not the only word)."""
    words = _NOT_ALNUM.sub(" ", str(text).casefold()).split()
    while len(words) > 1 and words[-1] in _TRAILING:
        words.pop()
    return words


def place_key(text: str) -> str:
    """The lookup key of a name: `Gt. Accra` -> "gtaccra", `G/A` -> "ga", `Ashanti Region` -> "ashanti"."""
    return "".join(_words(text))


@lru_cache(maxsize=1)
def places() -> tuple[Place, ...]:
    """Every row of gazetteer.csv (comment lines skipped); ValueError on a region code REGIONS lacks."""
    with GAZETTEER_CSV.open(encoding="utf-8", newline="") as handle:
        lines = (line for line in handle if not line.startswith("#"))
        rows = [Place(r["name"].strip(), r["region"].strip(), r["kind"].strip()) for r in csv.DictReader(lines)]
    unknown = sorted({p.region for p in rows} - set(REGIONS))
    if unknown:
        raise ValueError(f"gazetteer.csv names regions that are not in REGIONS: {', '.join(unknown)}")
    return tuple(rows)


@lru_cache(maxsize=1)
def _index() -> dict[str, Place]:
    """Key -> place; each region's code and label are keys too. The first row of a key wins."""
    index: dict[str, Place] = {}
    for code, label in REGIONS.items():
        index.setdefault(place_key(code), Place(code, code, "region"))
        index.setdefault(place_key(label), Place(label, code, "region"))
    for place in places():
        index.setdefault(place_key(place.name), place)
    index.pop("", None)
    return index


@lru_cache(maxsize=1)
def _fuzzy_keys() -> tuple[str, ...]:
    return tuple(k for k in _index() if len(k) >= FUZZY_MIN_LENGTH)


def _contains(words: list[str]) -> RegionMatch | Literal[False] | None:
    """The region of the longest known names found in the words when they all agree; False when they
    disagree (`Wa Central`), None when the words hold no known name."""
    index = _index()
    found: list[Place] = []
    start = 0
    while start < len(words):
        for size in range(min(MAX_NAME_WORDS, len(words) - start), 0, -1):
            place = index.get("".join(words[start:start + size]))
            if place is not None:
                found.append(place)
                start += size
                break
        else:
            start += 1
    regions = {p.region for p in found}
    if len(regions) != 1:
        return False if regions else None
    kind = "town" if any(p.kind == "town" for p in found) else "region"
    return RegionMatch(found[0].region, " + ".join(p.name for p in found), "contains", kind=kind)


def region_for(text: object) -> str | None:
    """The region code a text means (see the module's docstring), or None."""
    match = match_region(text)
    return match.region if match else None


@lru_cache(maxsize=8192)
def _match(key_words: tuple[str, ...]) -> RegionMatch | None:
    key = "".join(key_words)
    if not key:
        return None
    place = _index().get(key)
    if place is not None:
        return RegionMatch(place.region, place.name, "exact", kind=place.kind)
    if len(key_words) > 1 and (found := _contains(list(key_words))) is not None:
        return found or None  # names of two regions: no guess, not even a fuzzy one
    if len(key) < FUZZY_MIN_LENGTH:
        return None
    from rapidfuzz import fuzz, process

    best = process.extractOne(key, _fuzzy_keys(), scorer=fuzz.ratio, score_cutoff=FUZZY_MIN_SCORE)
    if best is None:
        return None
    place = _index()[best[0]]
    return RegionMatch(place.region, place.name, "fuzzy", float(best[1]), place.kind)


def match_region(text: object) -> RegionMatch | None:
    """Like region_for, with the gazetteer name matched and how: for showing why a value was suggested."""
    if text is None:
        return None
    return _match(tuple(_words(str(text))))


def region_share(values: dict[str, int]) -> float:
    """The share (0-1) of non-blank values, weighted by their counts, that name a place or region.

    Exact and contains matches only: a column is judged by what it plainly holds, not by typos.
    """
    known = total = 0
    for text, count in values.items():
        if not str(text).strip():
            continue
        total += count
        match = match_region(text)
        if match is not None and match.how != "fuzzy":
            known += count
    return known / total if total else 0.0


__all__ = ["GAZETTEER_CSV", "Place", "RegionMatch", "match_region", "place_key", "places", "region_for",
           "region_share"]
