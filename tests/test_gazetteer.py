"""schemas.gazetteer: Ghana's region abbreviations and towns -> region codes, for the Region conversion."""

from __future__ import annotations

import csv

import pytest

from importer.checks import normalise as clean
from schemas.customer import REGIONS
from schemas.gazetteer import GAZETTEER_CSV, match_region, place_key, places, region_for, region_share


@pytest.mark.parametrize(
    ("text", "region"),
    [
        # abbreviations and spellings of every kind the branches write
        ("Gt. Accra", "GREATER_ACCRA"), ("G/A", "GREATER_ACCRA"), ("g.a.", "GREATER_ACCRA"),
        ("GAR", "GREATER_ACCRA"), ("Greater-Accra", "GREATER_ACCRA"), (" GT ACCRA ", "GREATER_ACCRA"),
        ("Greater Accra Region", "GREATER_ACCRA"), ("ASH", "ASHANTI"), ("Ashanti Region", "ASHANTI"),
        ("W/R", "WESTERN"), ("WR", "WESTERN"), ("C/R", "CENTRAL"), ("E/R", "EASTERN"), ("V/R", "VOLTA"),
        ("N/R", "NORTHERN"), ("UER", "UPPER_EAST"), ("U/E", "UPPER_EAST"), ("UWR", "UPPER_WEST"),
        ("B/A", "BRONG_AHAFO"), ("BA", "BRONG_AHAFO"), ("Brong-Ahafo", "BRONG_AHAFO"),
        ("W/N", "WESTERN_NORTH"), ("Bono-East", "BONO_EAST"), ("North-East", "NORTH_EAST"), ("Savanna", "SAVANNAH"),
        # every region's code and label
        *((code, code) for code in REGIONS), *((label.upper(), code) for code, label in REGIONS.items()),
        # towns -> their current region (2018)
        ("Kumasi", "ASHANTI"), ("Tema", "GREATER_ACCRA"), ("Accra", "GREATER_ACCRA"), ("Takoradi", "WESTERN"),
        ("Sekondi", "WESTERN"), ("Sekondi-Takoradi", "WESTERN"), ("Tamale", "NORTHERN"), ("Cape Coast", "CENTRAL"),
        ("Ho", "VOLTA"), ("Koforidua", "EASTERN"), ("Sunyani", "BONO"), ("Techiman", "BONO_EAST"),
        ("Wa", "UPPER_WEST"), ("Bolgatanga", "UPPER_EAST"), ("Damongo", "SAVANNAH"), ("Nalerigu", "NORTH_EAST"),
        ("Dambai", "OTI"), ("Goaso", "AHAFO"), ("Sefwi Wiawso", "WESTERN_NORTH"), ("sefwi-wiawso", "WESTERN_NORTH"),
        ("Kasoa", "CENTRAL"), ("Chereponi", "NORTH_EAST"), ("Bole", "SAVANNAH"), ("Jasikan", "OTI"),
        # trailing words, places inside a longer text
        ("Kumasi Metropolis", "ASHANTI"), ("Ho Municipal", "VOLTA"), ("Accra, Ghana", "GREATER_ACCRA"),
        ("Adum, Kumasi", "ASHANTI"), ("Tema Comm. 25", "GREATER_ACCRA"), ("Kumasi - Ashanti", "ASHANTI"),
        # typos of longer names
        ("Kumassi", "ASHANTI"), ("Takorady", "WESTERN"), ("Koforydua", "EASTERN"),
    ],
)  # fmt: skip
def test_region_for(text, region):
    assert region_for(text) == region


@pytest.mark.parametrize(
    "text",
    [None, "", "   ", "Atlantis", "xyz", "12345", "-", "Wa Central", "Accra Kumasi", "Lagos", "N/A", "?", "Wx"],
)
def test_no_region_for_what_names_none_or_two(text):
    assert region_for(text) is None


def test_a_match_says_how_it_was_found():
    assert match_region("G/A").how == "exact"
    assert match_region("Adum, Kumasi").how == "contains"
    fuzzy = match_region("Kumassi")
    assert fuzzy.how == "fuzzy" and fuzzy.name == "Kumasi" and 85 <= fuzzy.score < 100


def test_short_names_are_never_fuzzy():
    # "Wx" is one letter from Wa and "Hi" from Ho: two-letter names match exactly or not at all
    assert region_for("Wx") is None and region_for("Hi") is None


def test_keys_ignore_case_punctuation_and_trailing_words():
    assert place_key("Gt. Accra") == place_key("GT ACCRA") == "gtaccra"
    assert place_key("G/A") == place_key(" g.a ") == "ga"
    assert place_key("Ashanti Region") == "ashanti"
    assert place_key("Region") == "region"  # the only word stays


def test_the_file_is_well_formed_and_cited():
    text = GAZETTEER_CSV.read_text(encoding="utf-8")
    assert "wikipedia.org/wiki/Regions_of_Ghana" in text and "B/A" in text.split("name,region,kind")[0]
    rows = places()
    assert {p.kind for p in rows} == {"region", "town"}
    assert {p.region for p in rows} == set(REGIONS)  # every code has names
    assert sum(p.kind == "town" for p in rows) >= 150
    # no key points to two regions (a duplicate name would silently depend on row order)
    seen: dict[str, str] = {}
    for p in rows:
        assert seen.setdefault(place_key(p.name), p.region) == p.region, p.name
    with GAZETTEER_CSV.open(encoding="utf-8") as handle:
        body = [line for line in handle if not line.startswith("#")]
    assert next(csv.reader(body[:1])) == ["name", "region", "kind"]


def test_every_region_name_the_validator_accepts_means_the_same_region():
    for code, label in REGIONS.items():
        for text in (code, label, f"{label} Region", label.lower()):
            assert clean.normalise_region(text) == region_for(text) == code


def test_region_share_counts_values_by_weight():
    assert region_share({"Kumasi": 90, "Tema": 6, "Atlantis": 4, "": 50}) == pytest.approx(0.96)
    assert region_share({"Kumassi": 10}) == 0.0  # typos do not make a column look like regions
    assert region_share({}) == 0.0
