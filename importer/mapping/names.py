"""Full names read from one column: split into first and last name (titles dropped with a note, suffixes kept
with the surname), and names that look like a business ("Kofi Boateng & Sons Ltd", "Adom Ventures") read as
a company name with user type BUSINESS. importer.mapping.columns applies them while it reads a sheet."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pandas as pd

from importer.checks.changes import EMPTY_CHANGES, Change, Changes, changes_of

# Titles before a name are not part of it ("Mr. Kofi Mensah" -> Kofi, Mensah); nor after it in brackets or
# after a comma ("Ama Owusu (Mrs)", "Mensah Kofi, Mrs"). Either way they are dropped with a note
# (full_name_changes: "Dropped 3 honorifics from full names").
_TITLES = r"(?:mr|mrs|ms|miss|mister|dr|prof|rev|revd|hon|sir|madam|mdm|eng)\.?"
_HONORIFIC = (rf"^(?:{_TITLES}\s+)+|\s*\(\s*{_TITLES}\s*\)\s*$|\s*,\s*(?:{_TITLES}\s*)+$")
# Suffixes belong to the surname and stay with it: "Kwame Nkrumah Jr." -> Kwame, Nkrumah Jr.;
# "Nana Yaa Asantewaa II" -> Nana Yaa, Asantewaa II (roman numerals in capitals only: "Ama Ii" is a name).
_SUFFIX = r"^(.*\S)\s*,?\s+((?i:jr|jnr|junior|sr|snr|senior)\.?|II|III|IV|VI{0,3}|IX|X)$"


def split_full_name(full: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Split full names into (first names, last names), column-wise: all but the last word is the first name.

    `Ama Serwaa Owusu` -> (`Ama Serwaa`, `Owusu`). Ghanaian names are written given names first and the
    surname last; middle and day names ("Serwaa", "Atta") go with the given names, as the "Other names"
    box of Ghanaian forms has them, and the surname stays one word, the one a branch looks a customer up
    by. Taking only the first word as the first name would make "Serwaa Owusu" the surname.
    Two layouts say the order themselves and are followed: a comma (`Mensah, Kofi Atta` -> Kofi Atta,
    Mensah) and an all-capitals first word before mixed case (`MENSAH Kofi` -> Kofi, MENSAH), the official
    surname-first style. Leading titles (Mr, Mrs, Dr, Rev, Madam...) are dropped. A single word becomes the
    first name and leaves the last name blank, so the row fails asking for it (one_word_names says which).
    """
    text = full.fillna("").astype(str).str.replace(r"\s+", " ", regex=True).str.strip()
    text = text.str.replace(_HONORIFIC, "", case=False, regex=True).str.strip()
    suffixed = text.str.extract(_SUFFIX).fillna("").astype("str")
    has_suffix = suffixed[0].str.contains(" ", regex=False)  # a suffix after two words or more
    suffix = suffixed[1].where(has_suffix, "")
    text = suffixed[0].where(has_suffix, text)
    plain = text.str.rsplit(" ", n=1, expand=True).reindex(columns=[0, 1])
    two_words = plain[1].notna()
    first, last = plain[0].where(two_words, text), plain[1].where(two_words, "")
    caps = text.str.extract(r"^([A-Z][A-Z'\-]+) (.*[a-z].*)$")
    surname_first = caps[0].notna()
    comma = text.str.extract(r"^([^,]*[^,\s]),\s*(\S.*)$")
    by_comma = comma[0].notna()
    first = first.mask(surname_first, caps[1]).mask(by_comma, comma[1].str.strip())
    last = last.mask(surname_first, caps[0]).mask(by_comma, comma[0].str.strip())
    last = last.fillna("").astype("str")
    if has_suffix.any():
        last = last.mask(has_suffix, last + " " + suffix)
    return first.fillna("").astype("str"), last


def honorifics(full: pd.Series) -> pd.Series:
    """Per full name, the honorifics split_full_name drops from it (`Ama Owusu (Mrs)` -> `Mrs`), else ""."""
    text = full.fillna("").astype(str).str.replace(r"\s+", " ", regex=True).str.strip()
    found = text.str.extractall(f"({_HONORIFIC})", flags=re.IGNORECASE)
    if found.empty:
        return pd.Series("", index=full.index, dtype="str")
    words = found[0].str.replace(r"[(),]", " ", regex=True).str.split().str.join(" ")
    joined = words.groupby(level=0).agg(" ".join)
    return joined.reindex(full.index, fill_value="").astype("str")


def full_name_changes(full: pd.Series) -> Changes:
    """What splitting these full names (indexed by source row) drops: the honorifics, counted with examples."""
    dropped = honorifics(full)
    hit = dropped != ""
    if not hit.any():
        return EMPTY_CHANGES
    first, last = split_full_name(full[hit])
    examples = tuple((int(row), str(text), f"{f} + {ln} (dropped {d})") for row, text, f, ln, d in
                     zip(full.index[hit][:5], full[hit][:5], first[:5], last[:5], dropped[hit][:5], strict=True))
    return changes_of([Change("name_honorific", int(hit.sum()), examples)])


def split_preview(full_names: Sequence[tuple[int, str]]) -> pd.DataFrame:
    """Rows, full names and how they split: columns Row, Full name, First name, Last name, Note."""
    rows = [row for row, _ in full_names]
    full = pd.Series([text for _, text in full_names], dtype="str")
    first, last = split_full_name(full)
    notes = [
        "; ".join(n for n in (
            "" if not text.strip() or surname else "one word: the last name is left blank; type it in Review",
            f"honorific dropped: {dropped}" if dropped else "") if n)
        for text, surname, dropped in zip(full.tolist(), last.tolist(), honorifics(full).tolist(), strict=True)
    ]
    return pd.DataFrame({"Row": rows, "Full name": full.tolist(), "First name": first.tolist(),
                         "Last name": last.tolist(), "Note": notes})


# A name that looks like a business, not a person: a company word (Ltd, Limited, Co., Company, Enterprise,
# Ventures, Trading...) or "& Sons" / "and Brothers". Such a full name is the customer's company name, with
# user type BUSINESS; the words before the business words (if any) are the contact's name.
_BUSINESS = re.compile(
    r"(?:^|\s)(?:&|and)\s+(?:sons|daughters|brothers|bros\.?|co\.?|partners|associates)(?=\s|$|[.,])"
    r"|\b(?:ltd|limited|co|company|enterprises?|ventures|trading|traders|industries|holdings|inc|plc|llc|"
    r"gh\s+ltd|group|agency|stores|shop|supermarket|pharmacy|motors|logistics|construction)\b\.?",
    re.IGNORECASE)


def business_names(full: pd.Series) -> pd.Series:
    """Per full name, True when it looks like a business ("Kofi Boateng & Sons Ltd", "Adom Ventures")."""
    text = full.fillna("").astype(str)
    return text.str.contains(_BUSINESS, regex=True)


def contact_of_business(full: pd.Series) -> pd.Series:
    """The words of a business name before its business words: the contact's name ("Kofi Boateng & Sons
    Ltd" -> "Kofi Boateng"; "Adom Ventures" -> "Adom"; "Ventures Ltd" -> "")."""
    text = full.fillna("").astype(str).str.replace(r"\s+", " ", regex=True).str.strip()
    head = text.str.split(_BUSINESS, n=1, regex=True).str[0].fillna("")
    return head.str.replace(r"[\s,&.-]+$", "", regex=True).str.replace(r"\s+and$", "", regex=True).str.strip()


def business_changes(full: pd.Series, first: pd.Series, last: pd.Series) -> Changes:
    """What reading business names as company names did, counted with examples (rows indexed as `full`)."""
    hit = business_names(full)
    if not hit.any():
        return EMPTY_CHANGES
    examples = tuple(
        (int(row), str(text), f"company {text}, user type BUSINESS, name {f} + {ln}".rstrip(" +"))
        for row, text, f, ln in zip(full.index[hit][:5], full[hit][:5], first[hit][:5], last[hit][:5], strict=True))
    return changes_of([Change("name_business", int(hit.sum()), examples)])


def read_businesses(data: dict[str, list[str]], full: pd.Series) -> Changes:
    """Full names that look like a business go to Company Name with user type BUSINESS (when the row's own
    Company Name and User Type cells are blank), and the name fields keep the contact's name before the
    business words ("Kofi Boateng & Sons Ltd" -> company that, Kofi + Boateng; "Adom Ventures" -> Adom, no
    last name, so the row asks for it). `data`: the sheet's columns of text by field, changed in place."""
    hit = business_names(full)
    if not hit.any():
        return EMPTY_CHANGES
    company = pd.Series(data["company_name"], index=full.index, dtype="str").str.strip()
    kind = pd.Series(data["user_type"], index=full.index, dtype="str").str.strip()
    hit &= (company == "") & (kind == "")
    if not hit.any():
        return EMPTY_CHANGES
    first, last = split_full_name(contact_of_business(full[hit]))
    rows = hit.to_numpy().nonzero()[0]
    for position, name, f, ln in zip(rows.tolist(), full[hit].tolist(), first.tolist(), last.tolist(), strict=True):
        data["company_name"][position] = name.strip()
        data["user_type"][position] = "BUSINESS"
        data["first_name"][position], data["last_name"][position] = f, ln
    return business_changes(full[hit], first.set_axis(full.index[hit]), last.set_axis(full.index[hit]))
