"""Possible duplicates: people who are probably the same customer under different keys.

`importer.checks.in_file` and the matching against the database catch rows that share a shipping mark, phone or
email. This module finds the near misses, within the upload and against the stored customers:

- `name_phone`: the same name (case, accents, punctuation and word order ignored) and phones one edit
  apart (a digit changed, added or dropped, or two neighbours swapped);
- `name_company`: the same name and the same company (case, punctuation, "Ltd"/"Limited" ignored) under
  another shipping mark;
- `email`: e-mails equal once the dots and any `+tag` of the local part are removed (gmail-style).

Never all pairs: each rule has blocking keys (hashed to uint64): the name with every one-deletion
variant of the phone (two phones one edit apart always share one), name + company, the canonical e-mail.
Only people who share a key are compared, with rapidfuzz. Customers are streamed from the database in
keyset pages; of each page only the customers whose keys meet the upload's are kept. A block of more
than `block_limit` people is not compared (5,000 rows of "John Mensah" at one company would be 12
million pairs and say nothing): it is counted in `PossibleDuplicates.oversized` instead.

Pairs that share an exact key are left out: the exact duplicate checks already report them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

import numpy as np
import pandas as pd
import sqlalchemy as sa
from rapidfuzz import fuzz
from rapidfuzz.distance import OSA

from importer.checks.validate import Checked, exclude, recheck
from importer.database.schema import customers, reading, to_database_error
from importer.errors import UsageError
from importer.settings import Settings
from schemas.customer import FIELD_NAMES

RULES: dict[str, str] = {
    "name_phone": "same name, phone one digit apart",
    "name_company": "same name and company, another shipping mark",
    "email": "same e-mail once dots and +tags are removed",
}
_RULE_NAMES = tuple(RULES)
_RULE_BITS = np.uint64(3)  # a key's low two bits say its rule: 1 + its place in RULES
BLOCK_LIMIT = 25  # people (upload rows + customers) in one block, beyond which it is not compared
PAIR_LIMIT = 1_000  # pairs returned; `found` says how many there were
# Candidate pairs compared, at most: a file of many namesakes under small blocks (the name + phone rule)
# yielded 1.1 million candidates, held as a dict of sets: 1.4 GB. Past the limit they are only counted.
CANDIDATE_LIMIT = 20_000
CUSTOMER_PAGE = 20_000  # customers read per keyset page
_SOURCE_FIELDS = ("shipping_mark", "first_name", "last_name", "email", "phone", "company_name")
FIELD_COLUMNS = _SOURCE_FIELDS
_COMPANY_SUFFIXES = frozenset({"ltd", "limited", "co", "company", "inc", "plc", "llc", "gh"})
_NOT_WORD = re.compile(r"[^0-9a-z]+")
_FILE, _DB = 0, 1


@dataclass(frozen=True)
class OversizedBlock:
    """Blocks too big to compare, by rule and who is in them (an example): how many, and the largest's size."""

    rule: str
    example: str
    size: int
    blocks: int = 1

    def describe(self) -> str:
        groups = f"{self.blocks:,} groups, the largest of" if self.blocks > 1 else "a group of"
        return f"{self.example} ({RULES[self.rule]}): {groups} {self.size:,} people"


@dataclass(frozen=True)
class PossibleDuplicates:
    """The pairs found, as columns, in a stable order, at most `limit` of `found`.

    `pairs`: row (source row of the upload), other_row (an earlier row of the upload, or <NA>),
    customer_id (a stored customer, or <NA>), rule (the rules that matched, comma-separated, in RULES
    order), score (0-100, rapidfuzz's similarity of the two records). Ordered by row, then the other
    row, then the customer. `oversized`: the blocks not compared, largest first; `skipped_rows`: how many
    rows of the upload are in one or more of them.
    """

    pairs: pd.DataFrame
    found: int
    limit: int
    oversized: tuple[OversizedBlock, ...] = ()
    skipped_rows: int = 0
    unexamined: int = 0  # candidate pairs past CANDIDATE_LIMIT, counted but not compared

    @property
    def truncated(self) -> bool:
        return self.found > len(self.pairs) or self.unexamined > 0

    def summary(self) -> str:
        """One sentence for people: how many pairs, how many shown, which blocks were left out."""
        if not self.found:
            text = "No possible duplicates found."
        else:
            text = f"{self.found:,} possible duplicate pair{'' if self.found == 1 else 's'} found"
            text += f"; the first {len(self.pairs):,} are listed." if self.found > len(self.pairs) else "."
        if self.unexamined:
            text += (f" The comparison stopped after {CANDIDATE_LIMIT:,} candidate pairs (to keep within the "
                     f"server's memory): {self.unexamined:,} more were not compared; resolve these and look again.")
        if self.oversized:
            shown = "; ".join(b.describe() for b in self.oversized[:3])
            rows = f"{self.skipped_rows:,} row{' is' if self.skipped_rows == 1 else 's are'}"
            text += (f" {rows} in groups of more than {BLOCK_LIMIT} people, too common to compare: {shown}"
                     f"{'; ...' if len(self.oversized) > 3 else ''}.")
        return text


# --- normalised keys ---------------------------------------------------------------------------------


def _fold(text: str) -> str:
    """Case-folded, accents of Latin letters removed (other scripts keep their marks), the rest -> space."""
    text = text.casefold()
    if text.isascii():
        return _NOT_WORD.sub(" ", text)
    out: list[str] = []
    base_latin = False
    for ch in unicodedata.normalize("NFKD", text):
        kind = unicodedata.category(ch)[0]
        if kind == "M":  # a combining mark: an accent on a Latin letter, or a vowel sign of another script
            if not base_latin:
                out.append(ch)
        elif kind in "LN":
            base_latin = ch < "\u0250"
            out.append(ch)
        else:
            base_latin = False
            out.append(" ")
    return unicodedata.normalize("NFC", "".join(out))


@lru_cache(maxsize=65_536)
def name_key(full_name: str) -> str | None:
    """The name's words folded and sorted: `'Mensah,  KOFI'` and `'Kofi Mensah'` -> `'kofi mensah'`."""
    words = sorted(_fold(full_name).split())
    return " ".join(words) or None


def company_key(company: str) -> str | None:
    """`'Mensah & Sons Ltd.'` -> `'mensah sons'`; None when blank (or only a legal suffix)."""
    words = [w for w in _fold(company).split() if w not in _COMPANY_SUFFIXES]
    return " ".join(words) or None


def email_key(email: str) -> str | None:
    """`'Kofi.Mensah+shop@gmail.com'` -> `'kofimensah@gmail.com'`: plus-tag and local dots removed."""
    local, at, domain = email.strip().lower().rpartition("@")
    if not at or not local:
        return None
    local = local.split("+", 1)[0].replace(".", "")
    if domain == "googlemail.com":
        domain = "gmail.com"
    return f"{local}@{domain}" if local else None


def _mapped(values: pd.Series, function: Callable[[str], str | None]) -> pd.Series:
    """`function` over a text column, once per distinct value; blanks stay missing (None)."""
    present = values.notna().to_numpy()
    texts = values[present].astype(str).tolist()
    lookup = {v: function(v) for v in set(texts)}
    out = np.full(len(values), None, dtype=object)
    out[present] = [lookup[v] for v in texts]
    return pd.Series(out, index=values.index, dtype=object)


def _derived(frame: pd.DataFrame) -> pd.DataFrame:
    """What the rules compare, per person: name, phone digits, e-mail, company and mark keys."""
    first = frame["first_name"].fillna("").astype(str)
    last = frame["last_name"].fillna("").astype(str)
    full = (first + " " + last).str.strip()
    full = full.where(full != "", None)
    phone = frame["phone"].astype(object).where(frame["phone"].notna(), None)
    email = frame["email"].astype(object).where(frame["email"].notna(), None)
    mark = frame["shipping_mark"].astype(object).where(frame["shipping_mark"].notna(), None)
    return pd.DataFrame({
        "name": _mapped(full, name_key),
        "phone": phone.map(lambda p: p.lstrip("+") if isinstance(p, str) else None),
        "email": email,
        "email_key": _mapped(email, email_key),
        "company": _mapped(frame["company_name"], company_key),
        "mark": mark,
        "phone_raw": phone,
    }, index=frame.index)


Person = tuple[object, ...]  # one person's _derived values, in _derived's column order


def _people(frame: pd.DataFrame) -> list[Person]:
    """The derived values of a few people (the candidates of pairs), in the frame's order."""
    return [tuple(v) for v in _derived(frame).to_numpy(dtype=object)]


def _avalanche(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every input bit moves every output bit (so XOR-ed parts do not cancel)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58_476D_1CE4_E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D0_49BB_1331_11EB)
    return x ^ (x >> np.uint64(31))


def _hashed_keys(texts: pd.Series, function: Callable[[str], str | None]) -> tuple[np.ndarray, np.ndarray]:
    """(uint64 hash of function(text), has a key) per value; the function and the hash run once per
    distinct text (names and companies repeat a lot)."""
    codes, distinct = pd.factorize(texts, use_na_sentinel=True)
    keyed = [function(v) for v in np.asarray(distinct, dtype=object).tolist()]
    has = np.array([k is not None for k in keyed] + [False], dtype=bool)
    folded = np.array([k or "" for k in keyed], dtype=object)
    hashes = np.append(pd.util.hash_array(folded, categorize=False), np.uint64(0))
    return hashes[codes], has[codes]  # code -1 (blank) takes the appended last entry


def _tagged(hashes: np.ndarray, rule: str) -> np.ndarray:
    return (hashes & ~_RULE_BITS) | np.uint64(1 + _RULE_NAMES.index(rule))


def _rule_of(key: int) -> str:
    return _RULE_NAMES[(int(key) & 3) - 1]


def _phone_numbers(phones: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """E.164 phones as (digits as an integer, number of digits); 0 digits for blank or not E.164."""
    digits = phones.astype("str").str.slice(1)
    valid = (phones.astype("str").str.slice(0, 1) == "+") & digits.str.fullmatch(r"[0-9]{1,15}")
    valid = valid.fillna(False).to_numpy(dtype=bool)
    numbers = np.zeros(len(phones), dtype=np.int64)
    lengths = np.zeros(len(phones), dtype=np.int64)
    if valid.any():
        numbers[valid] = digits[valid].astype("int64").to_numpy()
        lengths[valid] = digits[valid].str.len().to_numpy(dtype=np.int64)
    return numbers, lengths


def _phone_keys(name: np.ndarray, numbers: np.ndarray, lengths: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(keys, positions) for the phone itself, then for each of its one-digit deletions, with the name's hash:
    a part per deleted digit, so the caller joins the parts once (no intermediate whole-length copies).

    Two phones one edit apart (a digit changed, added, dropped, or two neighbours swapped) always share
    one of these: deleting the changed digit, the added one, or either of the swapped pair. Deleting
    either of two equal neighbours gives the same variant, so only the first is kept.
    """
    yield (_avalanche(name ^ _avalanche(numbers.astype(np.uint64) ^ (lengths.astype(np.uint64) << np.uint64(56)))),
           np.arange(len(numbers), dtype=np.int32))
    shorter = (lengths - 1).astype(np.uint64) << np.uint64(56)
    for cut in range(int(lengths.max(initial=0))):
        low_power = 10 ** np.clip(lengths - cut - 1, 0, None)
        digit = (numbers // low_power) % 10
        keep = cut < lengths
        if cut:
            keep &= digit != (numbers // (low_power * 10)) % 10
        where = np.flatnonzero(keep)
        variant = (numbers[where] // (low_power[where] * 10)) * low_power[where] + numbers[where] % low_power[where]
        yield _avalanche(name[where] ^ _avalanche(variant.astype(np.uint64) ^ shorter[where])), where.astype(np.int32)


def _block_keys(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(key, position) for every blocking key of every person of a frame of text (_SOURCE_FIELDS);
    a person's keys are distinct. Vectorised: no Python work per row, only per distinct name, company
    and e-mail. The keys are made a part at a time (each at most one per row) and joined once: for
    100,000 rows about a million keys, which whole-length intermediate copies made 78 MB at the peak.
    Positions are int32 (a frame holds far fewer than 2**31 rows)."""
    full = (frame["first_name"].fillna("").astype("str") + " " + frame["last_name"].fillna("").astype("str"))
    name, named = _hashed_keys(full, name_key)
    del full
    name = _avalanche(name)
    keys: list[np.ndarray] = []
    positions: list[np.ndarray] = []
    numbers, lengths = _phone_numbers(frame["phone"])
    with_phone = np.flatnonzero(named & (lengths > 0)).astype(np.int32)
    if len(with_phone):
        for part, at in _phone_keys(name[with_phone], numbers[with_phone], lengths[with_phone]):
            keys.append(_tagged(part, "name_phone"))
            positions.append(with_phone[at])
    del numbers, lengths
    company, has_company = _hashed_keys(frame["company_name"], company_key)
    with_company = np.flatnonzero(named & has_company).astype(np.int32)
    if len(with_company):
        keys.append(_tagged(_avalanche(name[with_company] ^ company[with_company]), "name_company"))
        positions.append(with_company)
    del company, has_company
    email, has_email = _hashed_keys(frame["email"], email_key)
    with_email = np.flatnonzero(has_email).astype(np.int32)
    if len(with_email):
        keys.append(_tagged(_avalanche(email[with_email]), "email"))
        positions.append(with_email)
    if not keys:
        return np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.int32)
    return np.concatenate(keys), np.concatenate(positions)


# --- the stored customers, streamed ------------------------------------------------------------------


# A page of customers by id (keyset), the columns in _SOURCE_FIELDS' order; tests check the two agree.
_PAGE_SQL = {
    "sqlite": "SELECT id, shipping_mark, first_name, last_name, email, phone, company_name FROM customers "
              "WHERE id > ? ORDER BY id LIMIT ?",
    "postgresql": "SELECT id, shipping_mark, first_name, last_name, email, phone, company_name FROM customers "
                  "WHERE id > %s ORDER BY id LIMIT %s",
}


def _text_frame(columns: list[tuple[object, ...]]) -> pd.DataFrame:
    """A page of stored customers (_SOURCE_FIELDS columns, as read) as a frame of text like the upload's."""
    return pd.DataFrame({f: pd.array(list(values), dtype="str") for f, values in zip(_SOURCE_FIELDS, columns,
                                                                                          strict=True)})


def _customer_hits(engine: sa.Engine, wanted: pd.Index, page: int
                   ) -> tuple[np.ndarray, np.ndarray, dict[int, Person]]:
    """(key, customer id) for each stored customer's key that is in `wanted` (distinct), and the derived
    values of those customers, read a keyset page at a time (memory: one page, plus the hits)."""
    hit_keys: list[np.ndarray] = []
    hit_ids: list[np.ndarray] = []
    people: dict[int, Person] = {}
    with reading(engine) as conn:
        if not len(wanted) or not sa.inspect(conn).has_table("customers"):
            return np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.int64), people
        # The driver's own cursor: SQLAlchemy's rows cost twice the query for 100,000 customers.
        sql = _PAGE_SQL[conn.dialect.name]
        last = 0
        while True:
            try:
                with closing(conn.connection.cursor()) as cursor:
                    cursor.execute(sql, (last, page))
                    rows = cursor.fetchall()
            except conn.dialect.loaded_dbapi.Error as exc:
                raise to_database_error(exc, conn) from exc
            if not rows:
                break
            values = list(zip(*rows, strict=True))
            ids = np.array(values[0], dtype=np.int64)
            chunk = _text_frame(values[1:])
            del values, rows
            keys, positions = _block_keys(chunk)
            hit = wanted.get_indexer(keys) >= 0
            if hit.any():
                hit_keys.append(keys[hit])
                hit_ids.append(ids[positions[hit]])
                found = np.unique(positions[hit])
                for customer_id, person in zip(ids[found].tolist(), _people(chunk.iloc[found]), strict=True):
                    people[customer_id] = person
            last = int(ids[-1])
            if len(ids) < page:
                break
    if not hit_keys:
        return np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.int64), people
    return np.concatenate(hit_keys), np.concatenate(hit_ids), people


# --- pairs -------------------------------------------------------------------------------------------

_NAME, _PHONE, _EMAIL, _EMAIL_KEY, _COMPANY, _MARK, _PHONE_RAW = range(7)


def _shares_a_key(a: Person, b: Person) -> bool:
    """Same shipping mark, phone or e-mail: an exact duplicate, reported by the exact checks."""
    return any(a[i] is not None and a[i] == b[i] for i in (_MARK, _PHONE_RAW, _EMAIL))


def _confirmed(rule: str, a: Person, b: Person) -> bool:
    """Whether the pair really meets the rule (blocking keys are hashes and one-deletion variants)."""
    if rule == "name_phone":
        return (a[_NAME] is not None and a[_NAME] == b[_NAME] and a[_PHONE] is not None and b[_PHONE] is not None
                and OSA.distance(str(a[_PHONE]), str(b[_PHONE]), score_cutoff=1) <= 1)
    if rule == "name_company":
        return a[_NAME] is not None and a[_NAME] == b[_NAME] and a[_COMPANY] is not None \
            and a[_COMPANY] == b[_COMPANY]
    return a[_EMAIL_KEY] is not None and a[_EMAIL_KEY] == b[_EMAIL_KEY]


def _score(a: Person, b: Person) -> float:
    """0-100: rapidfuzz's ratio of name, phone, e-mail, company and mark, averaged over the fields both have."""
    ratios = [fuzz.ratio(str(a[i]), str(b[i])) for i in (_NAME, _PHONE_RAW, _EMAIL, _COMPANY, _MARK)
              if a[i] is not None and b[i] is not None]
    return round(sum(ratios) / len(ratios), 1) if ratios else 0.0


def _example(normalised: pd.DataFrame, pos: int, rule: str) -> str:
    """How a block is named for people: by its first upload row's own values."""
    row = normalised.iloc[pos]
    name = " ".join(str(v) for v in (row["first_name"], row["last_name"]) if pd.notna(v)) or "(no name)"
    if rule == "name_company":
        return f"the name {name} at {row['company_name']}"
    if rule == "email":
        return f"e-mails like {row['email']}"
    return f"the name {name}"


def _empty_pairs() -> pd.DataFrame:
    return pd.DataFrame({"row": pd.Series(dtype=np.int64), "other_row": pd.Series(dtype="Int64"),
                         "customer_id": pd.Series(dtype="Int64"), "rule": pd.Series(dtype="str"),
                         "score": pd.Series(dtype=np.float64)})


def _block_bounds(*columns: np.ndarray, chunk: int = 50_000) -> Iterator[tuple[int, ...]]:
    """The blocks' (start, end, key, stored from, stored to) as Python numbers, a chunk at a time: a re-import
    of 100,000 customers has a million blocks, and five whole lists of a million Python ints were 200 MB."""
    for at in range(0, len(columns[0]), chunk):
        yield from zip(*(column[at:at + chunk].tolist() for column in columns), strict=True)


def find_possible_duplicates(normalised: pd.DataFrame, engine: sa.Engine | None = None, *,
                             kept: frozenset[tuple[int, str, int]] = frozenset(), limit: int = PAIR_LIMIT,
                             block_limit: int = BLOCK_LIMIT, page: int = CUSTOMER_PAGE) -> PossibleDuplicates:
    """Pairs of people that are probably one customer, within `normalised` (Checked.normalised: index =
    source row) and, given an engine, against the stored customers.

    `kept`: pairs the analyst decided to keep both of, as (row, "row" or "customer", other); they are
    not found again. At most `limit` pairs are returned; `found` counts them all.
    """
    frame = normalised.reindex(columns=list(FIELD_COLUMNS))
    rows = frame.index.to_numpy(dtype=np.int64)
    keys, member = _block_keys(frame)
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    member = member[order]
    del order
    distinct = pd.Index(keys[np.r_[True, keys[1:] != keys[:-1]]] if len(keys) else keys)  # a hash table
    stored_keys, stored_ids, people = (_customer_hits(engine, distinct, page) if engine is not None
                                       else (np.empty(0, np.uint64), np.empty(0, np.int64), {}))
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if len(keys) else np.empty(0, np.int64)
    sizes = np.diff(np.r_[starts, len(keys)])
    # The blocks to look at: upload keys held by two or more rows, and keys a stored customer shares.
    stored_order = np.argsort(stored_keys, kind="stable")
    stored_keys, stored_ids = stored_keys[stored_order], stored_ids[stored_order]
    shared = np.unique(stored_keys)
    shared_starts = np.searchsorted(keys, shared)
    blocks = np.union1d(starts[sizes > 1], shared_starts)
    block_keys = keys[blocks]
    ends = np.searchsorted(keys, block_keys, side="right")
    stored_from = np.searchsorted(stored_keys, block_keys)
    stored_to = np.searchsorted(stored_keys, block_keys, side="right")
    oversized: dict[tuple[str, str], tuple[int, int]] = {}  # (rule, example) -> (largest, blocks)
    skipped: set[int] = set()
    candidates: dict[tuple[int, int, int], set[str]] = {}  # (upload pos, side, other pos or id) -> rules
    unexamined = 0

    def candidate(pair: tuple[int, int, int], rule: str) -> None:
        nonlocal unexamined
        found_rules = candidates.get(pair)
        if found_rules is not None:
            found_rules.add(rule)
        elif len(candidates) < CANDIDATE_LIMIT:
            candidates[pair] = {rule}
        else:
            unexamined += 1
    for start, end, key, low, high in _block_bounds(blocks, ends, block_keys, stored_from, stored_to):
        in_file = sorted(member[start:end].tolist())
        stored = stored_ids[low:high].tolist()
        rule = _rule_of(key)
        if len(in_file) + len(stored) > block_limit:
            example = (rule, _example(frame, in_file[0], rule))
            largest, count = oversized.get(example, (0, 0))
            oversized[example] = (max(largest, len(in_file) + len(stored)), count + 1)
            skipped.update(in_file)
            continue
        for i, a in enumerate(in_file):
            for b in in_file[:i]:
                later, earlier = (a, b) if rows[a] > rows[b] else (b, a)
                candidate((later, _FILE, earlier), rule)
            for customer_id in stored:
                candidate((a, _DB, customer_id), rule)
    involved = sorted({pos for pos, _, _ in candidates} | {o for _, s, o in candidates if s == _FILE})
    upload = dict(zip(involved, _people(frame.iloc[involved]), strict=True)) if involved else {}
    found: list[tuple[int, int, int, str, int, int]] = []  # row, side, other row or id, rules, pos, other
    for (pos, other_side, other), rules in candidates.items():
        a = upload[pos]
        b = upload[other] if other_side == _FILE else people[other]
        if _shares_a_key(a, b):
            continue
        matched = [r for r in _RULE_NAMES if r in rules and _confirmed(r, a, b)]
        other_label = int(rows[other]) if other_side == _FILE else other
        if not matched or (int(rows[pos]), "row" if other_side == _FILE else "customer", other_label) in kept:
            continue
        found.append((int(rows[pos]), other_side, other_label, ",".join(matched), pos, other))
    found.sort(key=lambda f: (f[0], f[1], f[2]))
    shown = found[:limit]
    pairs = _empty_pairs() if not shown else pd.DataFrame({
        "row": np.array([f[0] for f in shown], dtype=np.int64),
        "other_row": pd.array([f[2] if f[1] == _FILE else None for f in shown], dtype="Int64"),
        "customer_id": pd.array([f[2] if f[1] == _DB else None for f in shown], dtype="Int64"),
        "rule": pd.array([f[3] for f in shown], dtype="str"),
        "score": np.array([_score(upload[f[4]], upload[f[5]] if f[1] == _FILE else people[f[5]])
                           for f in shown], dtype=np.float64),
    })
    big = sorted((OversizedBlock(rule, example, size, count) for (rule, example), (size, count) in oversized.items()),
                 key=lambda b: (-b.size, b.rule, b.example))
    return PossibleDuplicates(pairs, len(found), limit, tuple(big), len(skipped), unexamined)


def stored_customers(engine: sa.Engine, ids: list[int]) -> dict[int, dict[str, object]]:
    """The stored records of some customers, by id (what a page shows beside the upload's row)."""
    wanted = sorted({int(i) for i in ids})
    if not wanted:
        return {}
    with reading(engine) as conn:
        found = conn.execute(sa.select(customers.c.id, *(customers.c[f] for f in FIELD_NAMES))
                             .where(customers.c.id.in_(wanted))).all()
    return {int(r.id): dict(r._mapping) for r in found}


# --- the analyst's decisions -------------------------------------------------------------------------


class Action(StrEnum):
    """What the analyst chose for one pair."""

    KEEP_BOTH = "keep_both"  # they are different people: import both, stop showing the pair
    EXCLUDE_ROW = "exclude_row"  # the row repeats someone: leave it out (importer.checks.validate.exclude)
    UPDATE_CUSTOMER = "update_customer"  # the row is that stored customer: the import updates it


@dataclass(frozen=True)
class Decision:
    """One decision on one pair, as JSON-ready values (a workspace stores `to_json()` as an operation).

    `row` is the upload's row; `other_row` or `customer_id` the other side. An update carries the
    customer's shipping mark, so that replaying it needs no database.
    """

    action: Action
    row: int
    other_row: int | None = None
    customer_id: int | None = None
    shipping_mark: str | None = None

    def __post_init__(self) -> None:
        if (self.other_row is None) == (self.customer_id is None):
            raise UsageError(f"a decision on row {self.row} names either another row or a customer, not "
                             f"{'both' if self.other_row is not None else 'neither'}")
        if self.action is Action.UPDATE_CUSTOMER and (self.customer_id is None or not self.shipping_mark):
            raise UsageError(f"row {self.row} can only update a stored customer (its id and shipping mark)")

    @property
    def pair(self) -> tuple[int, str, int]:
        """(row, "row" or "customer", other): the `kept` form of find_possible_duplicates."""
        if self.other_row is not None:
            return (self.row, "row", self.other_row)
        assert self.customer_id is not None
        return (self.row, "customer", self.customer_id)

    def to_json(self) -> dict[str, object]:
        return {"op": "possible_duplicate", "action": self.action.value, "row": self.row,
                "other_row": self.other_row, "customer_id": self.customer_id, "shipping_mark": self.shipping_mark}

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Decision:
        """The decision of a `to_json()` record; a malformed record raises UsageError saying what is wrong."""
        def number(name: str) -> int | None:
            value = data.get(name)
            if value is None:
                return None
            if isinstance(value, bool) or not isinstance(value, int):
                raise UsageError(f"possible duplicate decision: {name} must be a whole number, not {value!r}")
            return value

        try:
            action = Action(str(data.get("action")))
        except ValueError:
            raise UsageError(f"possible duplicate decision: unknown action {data.get('action')!r}; use one of "
                             + ", ".join(a.value for a in Action)) from None
        row = number("row")
        if row is None:
            raise UsageError("possible duplicate decision: row is missing")
        mark = data.get("shipping_mark")
        return cls(action, row, number("other_row"), number("customer_id"),
                   None if mark is None else str(mark))


def update_decision(engine: sa.Engine, row: int, customer_id: int) -> Decision:
    """"Row `row` is customer `customer_id`": a decision that carries the customer's shipping mark."""
    found = stored_customers(engine, [customer_id]).get(customer_id)
    if found is None:
        raise UsageError(f"customer #{customer_id} is not in the database any more; row {row} cannot update it")
    return Decision(Action.UPDATE_CUSTOMER, row, customer_id=customer_id, shipping_mark=str(found["shipping_mark"]))


def apply_decision(checked: Checked, decision: Decision, settings: Settings) -> Checked:
    """The upload after one decision: unchanged (keep both), without the row (exclude), or with the row
    given the customer's shipping mark (update: matched by mark, an import with `--existing update`
    then updates that customer with the row's values; with `skip` the row fails as already_exists)."""
    if decision.action is Action.KEEP_BOTH:
        return checked
    if decision.row not in checked.original.index:
        raise UsageError(f"row {decision.row} is not in the upload any more (excluded already?)")
    if decision.action is Action.EXCLUDE_ROW:
        return exclude(checked, [decision.row])
    changed = checked.original.loc[[decision.row]].copy()
    changed["shipping_mark"] = decision.shipping_mark
    return recheck(checked, changed, settings)


def apply_decisions(checked: Checked, decisions: list[Decision], settings: Settings) -> Checked:
    """Replay decisions in order (a workspace's list); keep-both ones change nothing here."""
    for decision in decisions:
        checked = apply_decision(checked, decision, settings)
    return checked


def kept_pairs(decisions: list[Decision]) -> frozenset[tuple[int, str, int]]:
    """The pairs the analyst kept both of: `kept` for find_possible_duplicates."""
    return frozenset(d.pair for d in decisions if d.action is Action.KEEP_BOTH)
