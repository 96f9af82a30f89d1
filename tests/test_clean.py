"""The normalisers of CONTRACT.md's record table, over awkward values."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from importer.checks import normalise as clean
from importer.checks.normalise import InvalidValue
from importer.outcomes.row_errors import ErrorCode
from schemas.customer import REGIONS

GH = "+233241234567"


@pytest.mark.parametrize(
    "typed",
    [
        "0241234567", "024 123 4567", "+233 24 123 4567", "233241234567", "241234567", "241234567.0",
        " 0241234567 ", "024-123-4567", "(024) 123.4567", "00233241234567", "+233-24-123-4567",
        "０２４１２３４５６７", "2.33241234567E+11", "'0241234567", "024\u00a0123\u00a04567",
    ],
)
def test_phone_forms_become_e164(typed: str) -> None:
    assert clean.normalise_phone(typed, "GH") == GH


@pytest.mark.parametrize("typed", ["5412345", "12", "0301234567", "abc", "+233", "#N/A"])
def test_invalid_phones_are_refused_naming_the_value(typed: str) -> None:
    with pytest.raises(InvalidValue) as info:
        clean.normalise_phone(typed, "GH")
    assert info.value.code is ErrorCode.INVALID_PHONE
    assert info.value.message == f"{typed.strip()} is not a valid phone number"


@pytest.mark.parametrize("typed", ["", "   ", None, "\t"])
def test_blank_phone_is_required(typed) -> None:
    with pytest.raises(InvalidValue) as info:
        clean.normalise_phone(typed, "GH")
    assert info.value.code is ErrorCode.REQUIRED


def test_phone_default_region_setting_is_used() -> None:
    assert clean.normalise_phone("020 7946 0958", "GB") == "+442079460958"
    assert clean.normalise_phone("+44 20 7946 0958", "GH") == "+442079460958"


@pytest.mark.parametrize(
    ("typed", "stored"),
    [(" pm4   kofi ", "PM4 KOFI"), ("PM4 KOFI", "PM4 KOFI"), ("pm-4_kofi", "PM-4_KOFI"), ("", None),
     ("  ", None), ("a\tb\nc", "A B C"), ("pm\x004", "PM4")],
)
def test_shipping_mark(typed: str, stored: str | None) -> None:
    assert clean.normalise_shipping_mark(typed) == stored


@pytest.mark.parametrize(
    ("typed", "stored"),
    [("  Kofi  ", "Kofi"), ("ama   serwaa", "ama serwaa"), ("McDONALD", "McDONALD"), ("", None),
     ("Kofi\x00", "Kofi"), ("'=cmd", "=cmd"), ("אבי 😀", "אבי 😀")],
)
def test_names_keep_case_and_lose_extra_spaces(typed: str, stored: str | None) -> None:
    assert clean.normalise_name(typed) == stored


@pytest.mark.parametrize(
    ("typed", "stored"),
    [(" Kofi@Example.COM ", "kofi@example.com"), ("", None), ("a.b+c@mail.example.org", "a.b+c@mail.example.org"),
     ("ÁMA@example.com", "áma@example.com")],
)
def test_email(typed: str, stored: str | None) -> None:
    assert clean.normalise_email(typed) == stored


@pytest.mark.parametrize("typed", ["kofi@", "kofi", "a..b@example.com", "a@b", "kofi@example.invalid", "a b@c.com"])
def test_invalid_email(typed: str) -> None:
    with pytest.raises(InvalidValue) as info:
        clean.normalise_email(typed)
    assert info.value.code is ErrorCode.INVALID_EMAIL
    assert typed.lower() in info.value.message


@pytest.mark.parametrize(
    ("typed", "code"),
    [("Ashanti Region", "ASHANTI"), ("greater accra", "GREATER_ACCRA"), ("BONO_EAST", "BONO_EAST"),
     ("bono east", "BONO_EAST"), ("  Upper   West region ", "UPPER_WEST"), ("", "GREATER_ACCRA"),
     ("Western North", "WESTERN_NORTH"), ("SAVANNAH REGION", "SAVANNAH")],
)
def test_region(typed: str, code: str) -> None:
    assert clean.normalise_region(typed, "GREATER_ACCRA") == code


def test_blank_region_takes_the_default_setting() -> None:
    assert clean.normalise_region("", "VOLTA") == "VOLTA"


def test_unknown_region() -> None:
    with pytest.raises(InvalidValue) as info:
        clean.normalise_region("Lagos")
    assert info.value.code is ErrorCode.INVALID_REGION
    assert "Lagos" in info.value.message


@pytest.mark.parametrize(("typed", "stored"), [("", "INDIVIDUAL"), ("business", "BUSINESS"), (" Individual ", "INDIVIDUAL")])
def test_user_type(typed: str, stored: str) -> None:
    assert clean.normalise_user_type(typed) == stored


def test_invalid_user_type() -> None:
    with pytest.raises(InvalidValue) as info:
        clean.normalise_user_type("VIP")
    assert info.value.code is ErrorCode.INVALID_CHOICE


# Property-based: every normaliser is idempotent on any value it accepts. The text normalisers accept any
# text; the strategies of the others generate only what they accept (a refused value has no second step).
_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)


def _as_typed(words: list[str]) -> st.SearchStrategy[str]:
    """One of `words` as a person types it: any case, spaces around it, or blank."""
    return st.tuples(st.sampled_from(["", *words]), st.sampled_from(["", " ", "  ", "\t"]),
                     st.sampled_from([str, str.lower, str.upper, str.title])).map(lambda t: t[1] + t[2](t[0]) + t[1])


def _accepts(normaliser, value) -> bool:
    try:
        normaliser(value)
    except InvalidValue:
        return False
    return True


@given(_text)
def test_text_normalisers_are_idempotent(value: str) -> None:
    for normaliser in (clean.normalise_name, clean.normalise_shipping_mark, clean.normalise_optional_text):
        once = normaliser(value)
        assert normaliser(once) == once


@given(st.one_of(_as_typed(list(REGIONS)), _as_typed([f"{label}{word}" for label in REGIONS.values()
                                                      for word in ("", " Region", "  region")])))
def test_region_normaliser_is_idempotent(value: str) -> None:
    once = clean.normalise_region(value)
    assert once in REGIONS and clean.normalise_region(once) == once


@given(_as_typed(list(clean.USER_TYPES)))
def test_user_type_normaliser_is_idempotent(value: str) -> None:
    once = clean.normalise_user_type(value)
    assert clean.normalise_user_type(once) == once


@given(st.one_of(st.emails(), _text), st.sampled_from(["", " ", "\t"]), st.booleans())
def test_email_normaliser_is_idempotent(address: str, space: str, upper: bool) -> None:
    value = space + (address.upper() if upper else address) + space
    assume(_accepts(clean.normalise_email, value))
    once = clean.normalise_email(value)
    assert clean.normalise_email(once) == once


@given(
    st.sampled_from(["0", "233", "+233", "00233", "+ 233", ""]),
    st.sampled_from(["24", "20", "55", "50", "27"]),
    st.text(alphabet="0123456789", min_size=7, max_size=7),
    st.lists(st.sampled_from([" ", "-", ".", "(", ")"]), max_size=6),
    st.randoms(use_true_random=False),
)
def test_phone_normaliser_is_idempotent(prefix: str, operator: str, subscriber: str, noise: list[str], rnd) -> None:
    chars = list(operator + subscriber)
    for mark in noise:
        chars.insert(rnd.randint(0, len(chars)), mark)
    typed = prefix + "".join(chars)
    # A minus before bare digits is a sign: refused (issue 22), also with spaces around it (" -240000000").
    assume(re.fullmatch(r"-\d+", typed.strip()) is None)
    once = clean.normalise_phone(typed, "GH")
    assert once == "+233" + operator + subscriber and clean.normalise_phone(once, "GH") == once


_VALID_NATIONAL = ["241234567", "201234567", "551234567", "501234567", "271234567"]


@given(
    st.sampled_from(_VALID_NATIONAL),
    st.sampled_from(["0", "233", "+233", "00233", "+ 233", ""]),
    st.lists(st.sampled_from([" ", "-", ".", "(", ")", "  "]), min_size=0, max_size=9),
    st.randoms(use_true_random=False),
)
def test_valid_phone_survives_any_punctuation(national: str, prefix: str, noise: list[str], rnd) -> None:
    chars = list(national)
    for mark in noise:
        chars.insert(rnd.randint(0, len(chars)), mark)
    typed = prefix + "".join(chars)
    assume(re.fullmatch(r"-\d+", typed.strip()) is None)  # a minus before bare digits is a sign: refused (issue 22)
    assert clean.normalise_phone(typed, "GH") == "+233" + national


@pytest.mark.parametrize("code", list(REGIONS))
def test_every_region_code_and_label_round_trips(code: str) -> None:
    assert clean.normalise_region(code) == code
    assert clean.normalise_region(REGIONS[code] + " Region") == code


def test_scientific_notation_that_lost_digits_is_refused_with_advice() -> None:
    with pytest.raises(InvalidValue) as info:
        clean.normalise_phone("2.33241E+11", "GH")
    assert info.value.code is ErrorCode.INVALID_PHONE
    assert "scientific notation" in info.value.message and "Text" in info.value.message


@st.composite
def _fast_path_candidates(draw) -> tuple[str, str]:
    """(digits, region): random digits, or the region's example mobile number with its last digits drawn
    (mostly numbers its metadata calls valid, so the fast path takes them), after a prefix."""
    import phonenumbers

    region = draw(st.sampled_from(["GH", "GB", "NG", "US"]))
    code = str(phonenumbers.country_code_for_region(region))
    example = str(phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE).national_number)
    prefix = draw(st.sampled_from(["", "+", "0", "1", "00", "233", "+233", code, "+" + code, "0" + code]))
    digits = draw(st.text(alphabet="0123456789", min_size=5, max_size=13)
                  | st.text(alphabet="0123456789", min_size=4, max_size=4).map(lambda t: example[:-4] + t)
                  | st.text(alphabet="0123456789", min_size=3, max_size=3).map(lambda t: example[:-3] + t))
    return prefix + digits, region


@given(_fast_path_candidates())
# The fast path declines most random digits (assume below): a run that draws few it takes is not a failure.
@settings(suppress_health_check=[HealthCheck.filter_too_much])
def test_fast_phone_path_agrees_with_phonenumbers(candidate_region: tuple[str, str]) -> None:
    candidate, region = candidate_region
    fast = clean._fast_e164(candidate, region)
    assume(fast is not None)  # the fast path declines the rest, which go to the library
    assert clean._library_e164(candidate, region) == fast


@given(
    st.sampled_from(["+", "+233", "+2332", "+44", "+234", "+1", "233", "+233 ", "＋233"]),
    st.text(alphabet="0123456789", min_size=0, max_size=12),
    st.sampled_from(["GH", "GB", "NG", "US"]),
)
def test_a_phone_already_in_e164_is_taken_as_it_is_only_when_valid(prefix: str, digits: str, region: str) -> None:
    candidate = prefix + digits
    kept = clean._as_e164(candidate, region)
    if kept is not None:
        assert kept == candidate
        assert clean._library_e164(candidate, region) == candidate
    for normalise in (clean.normalise_phone, lambda v, r: clean.split_phones(v, r)[0]):
        try:
            assert normalise(candidate, region) == (clean._fast_e164(clean._phone_digits(candidate), region)
                                                    or clean._library_e164(clean._phone_digits(candidate), region))
        except InvalidValue:
            assert kept is None


def test_fast_phone_path_is_taken_for_common_ghana_numbers() -> None:
    for typed in ("0241234567", "241234567", "233241234567", "+233241234567", "0551234567"):
        assert clean._fast_e164(typed, "GH") == clean._library_e164(typed, "GH")


# -- several phones or e-mails in one cell (issue 11) ----------------------------------------------------
@pytest.mark.parametrize(
    "typed",
    [
        "0277229773, 0248503716", "0277229773 / 0248503716", "0277229773;0248503716", "0277229773\n0248503716",
        "0277229773 or 0248503716", "0277229773 OR 0248503716", "0277229773 & 0248503716",
        "0277229773 and 0248503716", "0277229773 0248503716", "0277229773|0248503716",
        "+233 27 722 9773 / 024 850 3716", "0277229773,\r\n0248503716", "0277229773 , , 0248503716",
    ],
)
def test_a_cell_with_two_phones_keeps_the_first_and_the_other(typed: str) -> None:
    assert clean.split_phones(typed, "GH") == ("+233277229773", ("+233248503716",))


@pytest.mark.parametrize("typed", ["024 123 4567", "024/123/4567", "(024) 123-4567", "0241234567;", "+233 24 123 4567"])
def test_one_number_with_punctuation_is_not_split(typed: str) -> None:
    assert clean.split_phones(typed, "GH") == (GH, ())


def test_a_list_of_numbers_is_never_read_as_one_number() -> None:
    # phonenumbers parses "0277229773;0248503716" as one valid number with RFC 3966 parameters, dropping
    # the second: normalise_phone (which a bulk fix also uses) refuses it, split_phones keeps both.
    import phonenumbers

    assert phonenumbers.is_valid_number(phonenumbers.parse("0277229773;0248503716", "GH"))
    with pytest.raises(InvalidValue) as info:
        clean.normalise_phone("0277229773;0248503716", "GH")
    assert info.value.code is ErrorCode.INVALID_PHONE and "holds several numbers" in info.value.message
    assert clean.split_phones("0277229773;0248503716", "GH")[1] == ("+233248503716",)


def test_the_first_valid_number_wins_and_invalid_others_are_kept_as_typed() -> None:
    assert clean.split_phones("12345, 0248503716, 0277229773", "GH") == (
        "+233248503716", ("12345", "+233277229773"))
    assert clean.split_phones("0248503716, 0248503716 / 024 850 3716", "GH") == ("+233248503716", ())
    assert clean.split_phones("0248503716, 055 12", "GH") == ("+233248503716", ("055 12",))


def test_a_cell_whose_every_number_is_invalid_names_each() -> None:
    with pytest.raises(InvalidValue) as info:
        clean.split_phones("0277, 12345 / 2.33241E+11", "GH")
    assert info.value.code is ErrorCode.INVALID_PHONE
    assert info.value.message.startswith("holds 3 numbers and none is a valid phone number: ")
    assert "0277 is not a valid phone number" in info.value.message
    assert "12345 is not a valid phone number" in info.value.message
    assert "2.33241E+11 lost its last digits" in info.value.message


@pytest.mark.parametrize("typed", ["", " , ", None, ";"])
def test_a_blank_list_of_phones_is_required(typed) -> None:
    with pytest.raises(InvalidValue) as info:
        clean.split_phones(typed, "GH")
    assert info.value.code is ErrorCode.REQUIRED


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("a@x.com, b@y.com", ("a@x.com", ("b@y.com",))),
        ("A@X.com; B@Y.COM", ("a@x.com", ("b@y.com",))),
        ("a@x.com b@y.com", ("a@x.com", ("b@y.com",))),
        ("a@x.com\nb@y.com", ("a@x.com", ("b@y.com",))),
        ("a@x.com or b@y.com", ("a@x.com", ("b@y.com",))),
        ("a@x.com / b@y.com", ("a@x.com", ("b@y.com",))),
        ("not-an-address, b@y.com", ("b@y.com", ("not-an-address",))),
        ("a/b@x.com", ("a/b@x.com", ())),
        ("", (None, ())),
    ],
)
def test_a_cell_with_several_emails(typed: str, stored) -> None:
    assert clean.split_emails(typed) == stored


def test_a_cell_whose_every_email_is_invalid_names_each() -> None:
    with pytest.raises(InvalidValue) as info:
        clean.split_emails("kofi at mail, ama@")
    assert info.value.code is ErrorCode.INVALID_EMAIL
    assert "none is a valid email address" in info.value.message
    assert "ama@ is not a valid email address" in info.value.message


def test_other_lists_are_normalised_where_valid_and_never_refused() -> None:
    assert clean.phone_list("0248503716; 123 / 0248503716", "GH") == ("+233248503716", "123")
    assert clean.phone_list("", "GH") == ()
    assert clean.email_list("B@Y.com, zz, b@y.com") == ("b@y.com", "zz")
    assert clean.join_others(("+1",), ("+2", "+1"), without="+2") == "+1"
    assert clean.join_others((), (), without=None) is None


@given(st.lists(st.sampled_from(["0277229773", "0248503716", "024 123 4567", "12345", "x"]), min_size=1, max_size=4),
       st.sampled_from([", ", " / ", ";", "\n", " or "]))
def test_splitting_phones_is_idempotent_and_loses_no_number(numbers: list[str], separator: str) -> None:
    typed = separator.join(numbers)
    # A cell with one valid number is split (a cell of none is refused: test_a_cell_whose_every_number_...).
    assume(any(_accepts(lambda v: clean.normalise_phone(v, "GH"), number) for number in numbers))
    phone, others = clean.split_phones(typed, "GH")
    kept = {phone, *others}
    for number in numbers:
        try:
            assert clean.normalise_phone(number, "GH") in kept
        except InvalidValue:
            assert number in kept
    assert clean.split_phones(phone, "GH") == (phone, ())


def _clean_text_by_the_rules(value: object) -> str | None:
    """clean_text as its rules say, without its shortcut for text that needs nothing."""
    if value is None or not str(value):
        return None
    text = re.sub(r"\s+", " ", re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", "", str(value))).strip()
    if len(text) > 1 and text[0] == "'" and text[1] in clean.FORMULA_PREFIXES:
        text = text[1:]
    return text or None


@given(st.text(alphabet=st.sampled_from([" ", "a", "B", "é", "'", "=", "+", "\t", "\n", "\r", "\x00", "\x1c",
                                         "\x7f", "\x85", "\xa0", "\u2028", "\u200b", "\u3000", "\x0b"]),
               max_size=8))
def test_clean_text_s_shortcut_gives_what_its_rules_give(text: str) -> None:
    assert clean.clean_text(text) == _clean_text_by_the_rules(text)


def test_a_dotted_phone_with_a_leading_zero_is_not_a_number_cell() -> None:
    """`024.0000000` is a phone typed with dots, not a spreadsheet number `24.0`: a number cell never keeps a
    leading zero (Hypothesis found it once its examples were all checked)."""
    assert clean.normalise_phone("024.0000000") == clean.normalise_phone("0240000000")
    assert clean.normalise_phone("241234567.0") == clean.normalise_phone("0241234567")
