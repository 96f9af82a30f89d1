"""Pure normalisers for each field of the record. Each is idempotent: normalising twice changes nothing.

A normaliser returns the stored value (None for blank) or raises InvalidValue with the contract's code.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from decimal import Decimal
from functools import cache, lru_cache

import phonenumbers
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email
from phonenumbers import PhoneMetadata

from importer.outcomes.row_errors import ErrorCode
from schemas.customer import REGIONS, USER_TYPES


class InvalidValue(ValueError):
    """A value that cannot be normalised; carries the contract's error code."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
EXCEL_ERRORS = frozenset(
    {"#N/A", "#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#GETTING_DATA", "#SPILL!", "#CALC!"}
)
_SPACES = re.compile(r"\s+")
# Control characters break databases (PostgreSQL refuses NUL) and terminals; line breaks become spaces.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_PHONE_PUNCTUATION = re.compile(r"[\s\-.()\[\]/]")
_NUMERIC_CELL = re.compile(r"^[1-9]\d*\.0+$")  # a number cell as text: `241234567.0` (never a leading 0)
_SCIENTIFIC = re.compile(r"^\d(?:\.\d+)?[eE]\+?\d+$")
_SCIENTIFIC_ANY = re.compile(r"^-?\d\.\d+[eE][+-]\d+$")
# An extension after a number: "024-123-4567 ext 12", "0241234568 x205", "0302 123456 ext. 3", "... #12".
_EXTENSION = re.compile(
    r"^(?P<number>.*\d[\s\-.()\[\]/]*?)\s*(?:,\s*)?(?:ext(?:ension|n)?\.?|x|#)\s*:?\s*(?P<ext>\d{1,7})$",
    re.IGNORECASE,
)
EXTENSION_MARK = " ext "
_NEGATIVE = re.compile(r"^[-\u2212]\d+(?:\.0+)?$")
_EMAIL_FAST = re.compile(
    r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
)
_REGION_LOOKUP: dict[str, str] = {}
for _code, _label in REGIONS.items():
    _REGION_LOOKUP[_code.replace("_", " ").casefold()] = _code
    _REGION_LOOKUP[_label.casefold()] = _code
_REGION_LOOKUP["brong-ahafo"] = "BRONG_AHAFO"


def clean_text(value: object) -> str | None:
    """Trim, turn control characters and line breaks into nothing or spaces, collapse inner spaces.

    >>> clean_text("  Kofi \\t  Mensah ")
    'Kofi Mensah'
    """
    if value is None:
        return None
    text = str(value)
    if not text:
        return None
    # Printable text without a leading, trailing or double space has nothing to remove or collapse (only
    # the ASCII space is both printable and whitespace): most cells, and the regular expressions are skipped.
    if not (text.isprintable() and "  " not in text and text[0] != " " and text[-1] != " "):
        text = _CONTROL.sub("", text)
        text = _SPACES.sub(" ", text).strip()
    # Undo the apostrophe our own reports put before formula-like text, so a report uploads as it was.
    if len(text) > 1 and text[0] == "'" and text[1] in FORMULA_PREFIXES:
        text = text[1:]
    return text or None


def normalise_name(value: object) -> str | None:
    """Names keep their case: trimmed, inner spaces collapsed. `'  ama   serwaa '` -> `'ama serwaa'`."""
    return clean_text(value)


def normalise_shipping_mark(value: object) -> str | None:
    """Trimmed, inner spaces collapsed, upper case: `' pm4   kofi '` -> `'PM4 KOFI'`.

    Only ASCII letters change case: upper-casing `ß` gives `SS`, `ı` gives `I`, `ﬁ` gives `FI`, which would
    turn a character the pattern refuses into ones it accepts. Such a mark keeps the character and fails.
    A number Excel showed in scientific notation (`1.23457E+21`: a mark of more than 15 digits typed into a
    number cell) fails with advice: its digits are gone.
    """
    text = clean_text(value)
    if not text:
        return None
    if _SCIENTIFIC_ANY.match(text):
        raise InvalidValue(
            ErrorCode.INVALID_FORMAT,
            f"{text} is a long number Excel shows in scientific notation, so its digits are lost; format the "
            "column as Text in Excel and type the mark again",
        )
    if text.isascii():
        return text.upper()
    return "".join(ch.upper() if ch.isascii() else ch for ch in text)


def normalise_optional_text(value: object) -> str | None:
    """Company name and nickname: trimmed; blank -> None."""
    return clean_text(value)


def _phone_digits(text: str) -> str:
    """Undo what spreadsheets do to phone numbers: `241234567.0`, `2.33241E+11`, full-width digits."""
    text = unicodedata.normalize("NFKC", text).strip()
    if _NUMERIC_CELL.match(text):
        text = text.split(".", 1)[0]
    elif _SCIENTIFIC.match(text):
        mantissa, exponent = text.lower().split("e")
        decimals = len(mantissa.split(".", 1)[1]) if "." in mantissa else 0
        if decimals < int(exponent):
            # 2.33241E+11: the spreadsheet kept 6 digits of 12; the rest cannot be recovered.
            raise InvalidValue(
                ErrorCode.INVALID_PHONE,
                f"{text} lost its last digits to scientific notation; format the column as Text in "
                "Excel and type the number again",
            )
        text = str(int(Decimal(text)))
    text = _PHONE_PUNCTUATION.sub("", text)
    if text.startswith("00"):
        text = "+" + text[2:]
    return text


_NUMBER_TYPES = ("fixed_line", "mobile", "toll_free", "premium_rate", "shared_cost", "personal_number", "voip",
                 "pager", "uan", "voicemail")


def phone_rules(region: str, extra_ranges: tuple[str, ...] = ()) -> str:
    """The `region` the phone normalisers take: the default region ("GH"), with the national number ranges
    accepted beyond phonenumbers' metadata after a "+" ("GH+25,590": numbers starting 025 or 0590).

    A range is a national prefix, typed with or without the trunk 0 ("025" or "25"); a number in it is valid
    when it has a mobile number's length. Settings.phone_rules builds it from PHONE_EXTRA_RANGES."""
    prefixes = [p.strip() for p in extra_ranges if p.strip()]
    for prefix in prefixes:
        if not prefix.isdigit() or not prefix.isascii():
            raise ValueError(f"{prefix!r} is not a phone number range: digits only, such as 025")
    metadata = PhoneMetadata.metadata_for_region(region)
    trunk = (metadata.national_prefix if metadata is not None else None) or ""
    national = [p[len(trunk):] if trunk and p.startswith(trunk) else p for p in prefixes]
    return f"{region}+{','.join(national)}" if national else region


def _rules(region: str) -> tuple[str, tuple[str, ...]]:
    """(the region code, the extra national ranges) of a phone_rules string."""
    code, _, extra = region.partition("+")
    return code, tuple(p for p in extra.split(",") if p)


@lru_cache(maxsize=8)
def _region_patterns(region: str) -> tuple[str, str, re.Pattern[str]] | None:
    """The default region's country code, trunk prefix and valid national numbers (every number type's
    pattern in one), from phonenumbers' metadata, and the extra ranges of a phone_rules string."""
    region, extra = _rules(region)
    metadata = PhoneMetadata.metadata_for_region(region)
    if metadata is None or metadata.national_prefix_for_parsing not in (None, metadata.national_prefix):
        return None
    patterns = []
    for kind in _NUMBER_TYPES:
        desc = getattr(metadata, kind)
        if desc is not None and desc.national_number_pattern:
            general_desc = metadata.general_desc
            assert general_desc is not None  # every region's metadata has one
            lengths = desc.possible_length or general_desc.possible_length
            patterns.append((re.compile(f"(?:{desc.national_number_pattern})"), frozenset(lengths or ())))
    assert metadata.general_desc is not None
    general = re.compile(f"(?:{metadata.general_desc.national_number_pattern})")
    # One pattern for every number type: a national number is valid when any type's pattern matches it.
    alternatives = [f"(?:(?=(?:{general.pattern})$)(?:{p.pattern})$)" for p, lengths in patterns if lengths]
    if extra:  # a configured range: a mobile number's length, starting with one of the prefixes
        assert metadata.mobile is not None
        lengths = metadata.mobile.possible_length or metadata.general_desc.possible_length or ()
        starts = "|".join(re.escape(p) for p in extra)
        alternatives += [f"(?:(?=\\d{{{n}}}$)(?:{starts})\\d*$)" for n in lengths]
    valid = re.compile("|".join(alternatives) or "(?!)")
    return str(metadata.country_code), metadata.national_prefix or "", valid


def _fast_e164(digits: str, region: str) -> str | None:
    """E.164 for a plain national or international number of the default region, when its metadata says valid.

    This skips phonenumbers' general parser for the common case (100,000 phones: ~3 s -> ~0.3 s); anything
    it does not accept goes through phonenumbers, so a refusal always comes from the library itself.
    """
    known = _region_patterns(region)
    if known is None:
        return None
    country_code, trunk, valid = known
    number = digits[1:] if digits.startswith("+") else digits
    if not number.isdigit() or not number.isascii():
        return None
    if digits.startswith("+") or (number.startswith(country_code) and len(number) > 9 + len(country_code) - 1):
        if not number.startswith(country_code):
            return None
        national = number[len(country_code):]
    elif trunk and number.startswith(trunk):
        national = number[len(trunk):]
    else:
        national = number
    if valid.match(national):
        return f"+{country_code}{national}"
    return None


def _as_e164(value: object, region: str) -> str | None:
    """`value` itself when it is already a valid number of the default region in E.164 (`+233241234567`),
    else None: what normalise_phone would give it, without cleaning it first (a replay checks again every
    phone a bulk fix has just normalised)."""
    if type(value) is not str or not value.startswith("+"):
        return None
    return value if _fast_e164(value, region) == value else None


def _library_e164(digits: str, region: str) -> str | None:
    """E.164 by phonenumbers' own parser and validity rules, or None when the number is not valid."""
    candidates = [digits]
    region, _ = _rules(region)
    country_code = phonenumbers.country_code_for_region(region)
    # A number typed with its country code but no "+" (233241234567) is international, not national.
    if country_code and digits.isdigit() and digits.startswith(str(country_code)):
        candidates.insert(0, f"+{digits}")
    for candidate in candidates:
        try:
            parsed = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(parsed):
            return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return None


def normalise_phone(value: object, region: str = "GH") -> str:
    """A valid number for its country in E.164: `024 123 4567` -> `+233241234567`.

    Raises InvalidValue(required) when blank and InvalidValue(invalid_phone) when not a valid number.
    """
    done = _as_e164(value, region)
    if done is not None:
        return done
    text = clean_text(value)
    if text is None:
        raise InvalidValue(ErrorCode.REQUIRED, "is blank; every customer needs a phone number")
    if _HARD_SEPARATOR.search(text):
        # phonenumbers would read "0277229773;0248503716" as one number and drop the second; split_phones
        # keeps both.
        raise InvalidValue(ErrorCode.INVALID_PHONE, f"{text} holds several numbers; keep one phone per cell")
    if _NEGATIVE.match(text):
        # Excel made the number negative (a number cell -241234574, from a typed "-" or a formula): a minus
        # before bare digits is a sign, not punctuation ("-024-123-4567" is still punctuation).
        raise InvalidValue(
            ErrorCode.INVALID_PHONE,
            f"{text} is a negative number (a spreadsheet took the phone for a sum or a formula); format the "
            "column as Text in Excel and type the number again",
        )
    if found := _EXTENSION.match(text):
        # phonenumbers would read the extension and drop it; split_phones keeps it in Other Phones.
        if _with_extension(found, region) is None:
            raise InvalidValue(ErrorCode.INVALID_PHONE, f"{text} is not a valid phone number")
        raise InvalidValue(ErrorCode.INVALID_PHONE, f"{text} has an extension; put the number in Phone and "
                           "the number with its extension in Other Phones")
    digits = _phone_digits(text)
    fast = _fast_e164(digits, region)
    if fast is not None:
        return fast
    slow = _library_e164(digits, region)
    if slow is not None:
        return slow
    raise InvalidValue(ErrorCode.INVALID_PHONE, f"{text} is not a valid phone number")


def normalise_email(value: object) -> str | None:
    """Trimmed, lower case, syntax checked without DNS; blank -> None.

    One mailbox, one key: a domain typed in punycode (`kofi@xn--bcher-kva.com`) is written in Unicode
    (`kofi@bücher.com`) as email-validator normalises it (IDNA 2008, Unicode NFC), whatever its case. The
    local part (before @) is compared as typed, lower-cased and NFC-normalised: no dots or +tags removed.
    """
    text = clean_text(value)
    if text is None:
        return None
    text = text.lower()
    if _EMAIL_FAST.match(text) and len(text) <= 254 and "xn--" not in text:
        tld = text.rsplit(".", 1)[-1]
        # The fast path covers plain ASCII addresses; special-use domains go to email-validator's rules.
        if tld not in SPECIAL_USE_DOMAIN_NAMES and len(text.split("@", 1)[0]) <= 64:
            return text
    try:
        checked = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidValue(
            ErrorCode.INVALID_EMAIL, f"{text} is not a valid email address ({str(exc).rstrip('.')})"
        ) from None
    return checked.normalized.lower()


def normalise_region(value: object, default: str = "GREATER_ACCRA") -> str:
    """Region code from a code or label, any case, a trailing word 'Region' ignored; blank -> default (or,
    with no default: refused as required, when the default is turned off for an upload)."""
    text = clean_text(value)
    if text is None:
        if not default:
            raise InvalidValue(ErrorCode.REQUIRED, "is blank, and the default region is turned off for this "
                                                   "upload; type the customer's region")
        return default
    key = text.replace("_", " ").casefold()
    key = _SPACES.sub(" ", key).strip()
    if key.endswith(" region"):
        key = key[: -len(" region")].strip()
    code = _REGION_LOOKUP.get(key)
    if code is None:
        raise InvalidValue(
            ErrorCode.INVALID_REGION,
            f"{text} is not a region of Ghana; use one of: {', '.join(REGIONS.values())}",
        )
    return code


def normalise_user_type(value: object) -> str:
    """INDIVIDUAL or BUSINESS, any case; blank -> INDIVIDUAL."""
    text = clean_text(value)
    if text is None:
        return "INDIVIDUAL"
    choice = text.upper()
    if choice not in USER_TYPES:
        raise InvalidValue(ErrorCode.INVALID_CHOICE, f"{text} is not a user type; use INDIVIDUAL or BUSINESS")
    return choice


# -- several phones or e-mails in one cell ---------------------------------------------------------------
# Branch lists put a second number or address in the same cell: "0277229773, 0248503716", "... / ...",
# "...;...", one per line, "... or ...". A cell is split only when it is not one valid value as a whole,
# so "024/123/4567" stays one number. Spaces split numbers only when every piece is a number of its own
# (at least MIN_SPLIT_DIGITS digits): "024 123 4567" is one number, "0277229773 0248503716" two.
OTHERS_SEPARATOR = ", "
MIN_SPLIT_DIGITS = 9
# Numbers separated only by spaces, each with spaces of its own ("0566 016 827  0247266135"), are split only
# when every group is a valid number; a piece of more words than this is not tried.
MAX_SPACED_WORDS = 12
_LIST_SPLIT = re.compile(r"\s*(?:[,;|/&\n\r]|\b(?:or|and)\b)\s*", re.IGNORECASE)
# Separators no single number holds. phonenumbers itself reads "0277229773;0248503716" as one number
# with parameters and drops the second, so a cell with one of these is always split first.
_HARD_SEPARATOR = re.compile(r"[,;|&\n\r]|\b(?:or|and)\b", re.IGNORECASE)
# A cell of digits and phone punctuation only is tried as one number first; anything else (letters,
# which phonenumbers may read as an extension and drop) is split first.
_PLAIN_PHONE = re.compile(r"^[\d\s+\-.()\[\]/]*$")
_EMAIL_SPLIT = re.compile(r"[\s,;|/]+|\b(?:or|and)\b", re.IGNORECASE)


def _valid_phone(text: str, region: str) -> bool:
    try:
        normalise_phone(text, region)
    except InvalidValue:
        return False
    return True


def _spaced_numbers(words: list[str], region: str) -> list[str] | None:
    """Words of one piece grouped into two or more numbers that are each valid ("0566 016 827  0247266135" ->
    "0566 016 827", "0247266135"), the fewest groups first; None when no grouping makes every group a number.
    Only tried on a piece that is not one valid number itself: a number's own spaces stay in it."""
    if len(words) > MAX_SPACED_WORDS or _valid_phone(" ".join(words), region):
        return None

    @cache
    def valid(start: int, end: int) -> bool:
        return _valid_phone(" ".join(words[start:end]), region)

    @cache
    def groups(start: int) -> tuple[int, ...] | None:
        """Ends of the groups from word `start` on, each a valid number (the longest first group first)."""
        if start == len(words):
            return ()
        for end in range(len(words), start, -1):
            if valid(start, end) and (rest := groups(end)) is not None:
                return (end, *rest)
        return None

    ends = groups(0)
    if ends is None or len(ends) < 2:
        return None
    starts = (0, *ends[:-1])
    return [" ".join(words[a:b]) for a, b in zip(starts, ends, strict=True)]


def _phone_parts(value: object, region: str = "GH") -> list[str]:
    """The pieces of a cell that may hold several numbers, each cleaned; blanks left out."""
    parts: list[str] = []
    for piece in _LIST_SPLIT.split(str(value)):
        text = clean_text(piece)
        if text is None:
            continue
        words = text.split()
        if len(words) > 1 and all(sum(ch.isdigit() for ch in w) >= MIN_SPLIT_DIGITS for w in words):
            parts.extend(words)
        elif len(words) > 1 and _PLAIN_PHONE.match(text) and (numbers := _spaced_numbers(words, region)):
            parts.extend(numbers)
        else:
            parts.append(text)
    return parts


def _unique(values: list[str], without: str | None) -> tuple[str, ...]:
    """Values in order, each once, without `without` (the main phone or email)."""
    return tuple(v for v in dict.fromkeys(values) if v != without)


def _each(parts: list[str], normalise: Callable[[str], str]) -> tuple[str, ...]:
    """Each part normalised when valid, else as typed, once each, in order; never an error."""
    found = []
    for part in parts:
        try:
            found.append(normalise(part))
        except InvalidValue:
            found.append(part)
    return _unique(found, None)


def _first_valid(parts: list[str], normalise: Callable[[str], str], code: ErrorCode, plural: str,
                 singular: str) -> tuple[str, tuple[str, ...]]:
    """(the first part that normalises, the others: normalised when valid, else as typed); every part
    invalid raises `code` naming each reason."""
    outcomes: list[str | InvalidValue] = []
    for part in parts:
        try:
            outcomes.append(normalise(part))
        except InvalidValue as exc:
            outcomes.append(exc)
    first = next((o for o in outcomes if isinstance(o, str)), None)
    if first is None:
        reasons = "; ".join(o.message for o in outcomes if isinstance(o, InvalidValue))
        raise InvalidValue(code, f"holds {len(parts)} {plural} and none is a valid {singular}: {reasons}")
    others = [o if isinstance(o, str) else part for o, part in zip(outcomes, parts, strict=True)]
    return first, _unique(others, first)


def split_phones(value: object, region: str = "GH") -> tuple[str, tuple[str, ...]]:
    """(phone, other numbers) of a cell that may hold several numbers; the first valid one is the phone.

    The others are kept, never dropped: in E.164 when valid, else as typed (cleaned). A cell with one
    number behaves as normalise_phone; a cell whose every number is invalid raises invalid_phone naming
    each one.

    >>> split_phones("0277229773 / 0248503716")
    ('+233277229773', ('+233248503716',))
    """
    done = _as_e164(value, region)
    if done is not None:
        return done, ()
    text = "" if value is None else str(value)
    if _PLAIN_PHONE.match(text) and not _HARD_SEPARATOR.search(text):
        try:
            return normalise_phone(value, region), ()
        except InvalidValue as whole:
            if whole.code is not ErrorCode.INVALID_PHONE or len(_phone_parts(text, region)) < 2:
                raise
    parts = _phone_parts(text, region)
    parts, extended = _extensions(parts, region)
    others: tuple[str, ...] = ()
    if len(parts) < 2:
        phone = normalise_phone(parts[0] if parts else None, region)
    else:
        phone, others = _first_valid(parts, lambda part: normalise_phone(part, region), ErrorCode.INVALID_PHONE,
                                     "numbers", "phone number")
    return phone, _unique([*extended, *others], None) if extended else others


def _extensions(parts: list[str], region: str) -> tuple[list[str], list[str]]:
    """(the parts with each valid number's extension cut off, the numbers with their extensions in the stored
    form `+233241234567 ext 12`). An extension is never dropped: the number counts as the phone, and the
    number with its extension goes to Other Phones. A part whose number is not valid stays as typed."""
    if not any(_EXTENSION.match(part) for part in parts):
        return parts, []
    plain: list[str] = []
    extended: list[str] = []
    for part in parts:
        found = _EXTENSION.match(part)
        number = _with_extension(found, region) if found else None
        if found and number is not None:
            plain.append(found.group("number").strip())
            extended.append(number)
        else:
            plain.append(part)
    return plain, extended


def _with_extension(found: re.Match[str], region: str) -> str | None:
    """`+233241234567 ext 12` for an extension match whose number is valid, else None."""
    try:
        return f"{normalise_phone(found.group('number').strip(), region)}{EXTENSION_MARK}{found.group('ext')}"
    except InvalidValue:
        return None


def has_extension(text: str) -> bool:
    """Whether a Phone cell holds a number with an extension (`024-123-4567 ext 12`)."""
    return any(_EXTENSION.match(part) for part in _phone_parts(text))


def phone_list(value: object, region: str = "GH") -> tuple[str, ...]:
    """The numbers of an Other Phones cell: E.164 when valid, else as typed; never an error."""
    if clean_text(value) is None:
        return ()

    def one(part: str) -> str:
        found = _EXTENSION.match(part)
        if found:
            return _with_extension(found, region) or part
        return normalise_phone(part, region)

    return _each(_phone_parts(value, region), one)


def _email_parts(value: object) -> list[str]:
    return [text for piece in _EMAIL_SPLIT.split(str(value)) if (text := clean_text(piece)) is not None]


def split_emails(value: object) -> tuple[str | None, tuple[str, ...]]:
    """(email, other addresses) of a cell that may hold several; the first valid one is the email.

    The others are kept: lower case when valid, else as typed. Blank -> (None, ()). A cell whose every
    address is invalid raises invalid_email naming each one.
    """
    try:
        return normalise_email(value), ()
    except InvalidValue:
        parts = _email_parts(value)
        if len(parts) < 2:
            raise
    return _first_valid(parts, lambda part: normalise_email(part) or part, ErrorCode.INVALID_EMAIL,
                        "addresses", "email address")


def email_list(value: object) -> tuple[str, ...]:
    """The addresses of an Other Emails cell: lower case when valid, else as typed; never an error."""
    return _each(_email_parts(value), lambda part: normalise_email(part) or part)


def join_others(*groups: tuple[str, ...], without: str | None = None) -> str | None:
    """The stored Other Phones / Other Emails: each value once, in order, `, `-separated; None when none."""
    values = _unique([v for group in groups for v in group], without)
    return OTHERS_SEPARATOR.join(values) if values else None
