"""Possible duplicates (importer/review/lookalikes.py): the keys, the rules within a file and against real SQLite and
PostgreSQL customers, oversized blocks, and the analyst's decisions replayed on the upload."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from importer.database.customers import classify_upload
from importer.database.loader import run_import
from importer.errors import UsageError
from importer.review import lookalikes as duplicates
from importer.review.lookalikes import (
    Action,
    Decision,
    apply_decision,
    apply_decisions,
    company_key,
    email_key,
    find_possible_duplicates,
    kept_pairs,
    name_key,
    stored_customers,
    update_decision,
)
from schemas.customer import FIELD_NAMES
from tests.support import SETTINGS, checked_of, person, ready_engine


def seed(engine, rows: list[dict[str, str]]) -> dict[str, int]:
    """Import rows for real; {shipping mark: customer id}."""
    result = run_import(engine, checked_of(rows), file_name="seed.csv", sha256="0" * 64, sheet=None,
                        settings=SETTINGS)
    assert result.total_created == len(rows)
    with engine.connect() as conn:
        return {m: i for i, m in conn.exec_driver_sql("SELECT id, shipping_mark FROM customers")}


def normalised(*records: dict[str, str | None]) -> pd.DataFrame:
    """A normalised frame as Checked holds it, straight from records (to reach values validation refuses)."""
    frame = pd.DataFrame([{f: r.get(f) for f in FIELD_NAMES} for r in records], dtype="str")
    frame.index = pd.Index(range(2, 2 + len(records)), name="source_row_number")
    return frame


def pairs_of(found) -> list[tuple]:
    return [(r.row, None if pd.isna(r.other_row) else int(r.other_row),
             None if pd.isna(r.customer_id) else int(r.customer_id), r.rule)
            for r in found.pairs.itertuples(index=False)]


# --- keys ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "key"), [
    ("Kofi Mensah", "kofi mensah"),
    ("  MENSAH,   kofi ", "kofi mensah"),  # case, punctuation and word order
    ("Kofi", "kofi"),  # one word
    ("Émile Zoë", "emile zoe"),  # Latin accents
    ("Nana Ama O'Brien-Asante", "ama asante brien nana o"),
    ("王 伟", "伟 王"),  # other scripts keep their letters
    ("नमस्ते जी", "जी नमस्ते"),  # and their vowel signs (combining marks are not accents here)
    ("Αννα", "αννα"),
    ("", None), ("   ", None), (" - . ", None),  # blank or punctuation only
])
def test_name_key(text, key):
    assert name_key(text) == key


@pytest.mark.parametrize(("text", "key"), [
    ("Mensah & Sons Ltd.", "mensah sons"), ("MENSAH AND SONS LIMITED", "mensah and sons"),
    ("Ltd", None), ("", None), ("Kumasi Traders Co", "kumasi traders"),
])
def test_company_key(text, key):
    assert company_key(text) == key


@pytest.mark.parametrize(("email", "key"), [
    ("kofi.mensah@gmail.com", "kofimensah@gmail.com"),
    ("Kofi.Mensah+shop@GoogleMail.com", "kofimensah@gmail.com"),
    ("kofi+a+b@example.com", "kofi@example.com"),
    ("+tag@example.com", None),  # nothing left of the local part
    ("no-at-sign", None),
])
def test_email_key(email, key):
    assert email_key(email) == key


# --- rules within one file -------------------------------------------------------------------------


def test_the_three_rules_within_a_file_later_row_first():
    checked = checked_of([
        person(1, first_name="Kofi", last_name="Mensah", phone="0241111111"),
        person(2, first_name="Ama", last_name="Serwaa", email="ama.serwaa@gmail.com", phone="0242222222"),
        person(3, first_name="MENSAH", last_name="kofi", phone="0241111112"),  # one digit, names swapped
        person(4, first_name="Yaw", last_name="Boateng", company_name="Boateng Ltd", phone="0243333333"),
        person(5, first_name="Abena", last_name="Osei", email="amaserwaa+shop@gmail.com", phone="0244444444"),
        person(6, first_name="Yaw", last_name="Boateng", company_name="BOATENG LIMITED", phone="0505555555"),
    ])
    found = find_possible_duplicates(checked.normalised)
    assert pairs_of(found) == [(4, 2, None, "name_phone"), (6, 3, None, "email"), (7, 5, None, "name_company")]
    assert found.found == 3 and not found.truncated and not found.oversized
    assert found.pairs["score"].between(0, 100).all()
    assert found.summary() == "3 possible duplicate pairs found."


@pytest.mark.parametrize(("phone", "other", "pair"), [
    ("+233241234567", "+233241234568", True),  # a digit changed
    ("+233241234567", "+233241234576", True),  # two neighbours swapped
    ("+233241234567", "+23324123567", True),  # a digit dropped
    ("+23324123567", "+233241234567", True),  # a digit added
    ("+233241234567", "+233241234589", False),  # two digits changed
    ("+233241234567", "+233241236547", False),  # swapped, but not neighbours
    ("+233241234567", "+233241234567", False),  # the same phone: an exact duplicate, reported elsewhere
    ("+233241234567", None, False),
])
def test_phone_one_edit_apart(phone, other, pair):
    frame = normalised({"shipping_mark": "A1", "first_name": "Kofi", "last_name": "Mensah", "phone": phone},
                       {"shipping_mark": "A2", "first_name": "Kofi", "last_name": "Mensah", "phone": other})
    assert bool(find_possible_duplicates(frame).found) is pair


def test_country_code_and_local_phones_compare_as_one_number():
    checked = checked_of([person(1, first_name="Esi", last_name="Asante", phone="0241234567"),
                          person(2, first_name="Esi", last_name="Asante", phone="+233 24 123 4568"),
                          person(3, first_name="Esi", last_name="Asante", phone="00233241234577")])
    assert pairs_of(find_possible_duplicates(checked.normalised)) == [
        (3, 2, None, "name_phone"), (4, 2, None, "name_phone")]


@pytest.mark.parametrize(("first", "last", "other_first", "other_last", "pair"), [
    ("Kofi", "", "Kofi", "", True),  # one-word names (the row fails on its last name, but is compared)
    ("Kofi", "", "Kofi", "Mensah", False),  # one word is not the full name
    ("", "", "", "", False),  # blank names are nobody's name
    ("王", "伟", "伟", "王", True),
    ("Émile", "Zoë", "EMILE", "ZOE", True),
    ("Kofi", "Mensah", "Kofi", "Mensa", False),  # names are blocked exactly; a typo is not the same name
])
def test_awkward_names(first, last, other_first, other_last, pair):
    checked = checked_of([person(1, first_name=first, last_name=last, phone="0241234567"),
                          person(2, first_name=other_first, last_name=other_last, phone="0241234568")])
    assert bool(find_possible_duplicates(checked.normalised).found) is pair


def test_blank_names_still_meet_on_email():
    checked = checked_of([person(1, first_name="", last_name="", email="k.m@example.com"),
                          person(2, first_name="", last_name="", email="km+2@example.com")])
    assert pairs_of(find_possible_duplicates(checked.normalised)) == [(3, 2, None, "email")]


def test_pairs_sharing_an_exact_key_are_left_to_the_exact_checks():
    checked = checked_of([person(1, first_name="Kofi", last_name="Mensah", company_name="Acme", phone="0241234567"),
                          person(2, first_name="Kofi", last_name="Mensah", company_name="Acme", phone="0241234567")])
    assert any(e.code == "duplicate_in_file" for e in checked.errors[3])
    assert find_possible_duplicates(checked.normalised).found == 0


def test_several_rules_on_one_pair_are_one_line():
    checked = checked_of([
        person(1, first_name="Kofi", last_name="Mensah", company_name="Acme", email="k.m@x.com", phone="0241234567"),
        person(2, first_name="Kofi", last_name="Mensah", company_name="ACME LTD", email="km@x.com",
               phone="0241234568")])
    assert pairs_of(find_possible_duplicates(checked.normalised)) == [(3, 2, None, "name_phone,name_company,email")]


def test_cap_keeps_the_order_and_counts_everything():
    rows = [person(i, first_name="Ama", last_name=f"Owusu{i}", phone=f"02412345{i:02d}") for i in range(6)]
    rows += [person(10 + i, first_name="Ama", last_name=f"Owusu{i}", phone=f"02412346{i:02d}") for i in range(6)]
    found_all = find_possible_duplicates(checked_of(rows).normalised)
    capped = find_possible_duplicates(checked_of(rows).normalised, limit=2)
    assert found_all.found == 6 and capped.found == 6 and len(capped.pairs) == 2 and capped.truncated
    assert pairs_of(capped) == pairs_of(found_all)[:2]
    assert capped.summary() == "6 possible duplicate pairs found; the first 2 are listed."
    assert list(found_all.pairs["row"]) == sorted(found_all.pairs["row"])


def test_a_huge_block_is_counted_not_compared(monkeypatch):
    """5,000 rows of John Mensah at one company: one block of 5,000, 12.5 million pairs if compared."""
    compared = []
    real = duplicates._confirmed
    monkeypatch.setattr(duplicates, "_confirmed", lambda *a: compared.append(1) or real(*a))
    rows = [person(i, first_name="John", last_name="Mensah", company_name="Mensah Ltd", email="",
                   phone=f"0{[24, 54, 55, 20, 50][i % 5]}{(i * 7919) % 10_000_000:07d}") for i in range(5_000)]
    rows.append(person(9_000, first_name="Kwame", last_name="Darko", email="kwame.darko@example.com",
                       phone="0209990001"))
    rows.append(person(9_001, first_name="Kwame", last_name="Darko", email="kwamedarko@example.com",
                       phone="0509990002"))
    found = find_possible_duplicates(checked_of(rows).normalised)
    assert [b.rule for b in found.oversized] == ["name_company"]
    assert found.oversized[0].size == 5_000
    assert "the name John Mensah at Mensah Ltd" in found.oversized[0].example
    assert (5_003, 5_002, None, "email") in pairs_of(found)  # the real pair is still found
    assert len(compared) < 5_000  # never near 12.5 million
    assert found.skipped_rows == 5_000
    assert found.summary() == (
        "1 possible duplicate pair found. 5,000 rows are in groups of more than 25 people, too common to "
        "compare: the name John Mensah at Mensah Ltd (same name and company, another shipping mark): a group "
        "of 5,000 people.")


def test_thousands_of_namesakes_with_close_phones_stay_linear(monkeypatch):
    """5,000 John Mensahs with phones 0240000000..0240004999: every phone has dozens of one-digit
    neighbours; each key's block is small (or capped), so the comparisons grow with the rows, not their square."""
    compared = []
    real = duplicates._confirmed
    monkeypatch.setattr(duplicates, "_confirmed", lambda *a: compared.append(1) or real(*a))
    checked = checked_of([person(i, first_name="John", last_name="Mensah", email="", phone=f"0240{i:06d}")
                          for i in range(5_000)])
    found = find_possible_duplicates(checked.normalised)
    assert 0 < found.found <= len(compared) < 5_000 * 30
    phones = checked.normalised["phone"]
    for pair in found.pairs.itertuples():
        a, b = phones[pair.row], phones[pair.other_row]
        assert len(a) == len(b) and sum(x != y for x, y in zip(a, b, strict=True)) == 1
    assert {b.rule for b in found.oversized} == {"name_phone"}
    assert "too common to compare: the name John Mensah (same name, phone one digit apart): " in found.summary()


def test_candidates_past_the_limit_are_counted_not_held(monkeypatch):
    """A file of namesakes with close phones gave 1.1 million candidate pairs (1.4 GB held in a dict):
    past CANDIDATE_LIMIT they are counted, and the summary says the comparison stopped."""
    monkeypatch.setattr(duplicates, "CANDIDATE_LIMIT", 100)
    checked = checked_of([person(i, first_name="John", last_name="Mensah", email="", phone=f"0240{i:06d}")
                          for i in range(2_000)])
    found = find_possible_duplicates(checked.normalised)
    assert 0 < found.found <= 100 and found.unexamined > 0 and found.truncated
    assert f"stopped after 100 candidate pairs (to keep within the server's memory): {found.unexamined:,} more" in (
        found.summary())


# --- against the stored customers (real SQLite and PostgreSQL) --------------------------------------


def test_against_the_database(database_url):
    engine = ready_engine(database_url)
    ids = seed(engine, [
        person(1, first_name="Kofi", last_name="Mensah", phone="0241234567", email=""),
        person(2, first_name="Ama", last_name="Serwaa", email="ama.serwaa@gmail.com"),
        person(3, first_name="Yaw", last_name="Boateng", company_name="Boateng Ltd"),
        person(4, first_name="Esi", last_name="Asante", phone="0501112223"),
    ])
    checked = checked_of([
        person(11, first_name="Kofi", last_name="Mensah", phone="+233 24 123 4568", email=""),
        person(12, first_name="Abena", last_name="Osei", email="amaserwaa+shop@googlemail.com"),
        person(13, first_name="Yaw", last_name="Boateng", company_name="BOATENG LIMITED", phone="0557654321"),
        person(4, first_name="Esi", last_name="Asante", phone="0501112224"),  # customer 4's own mark: matched
        person(15, first_name="Kofi", last_name="Mensah", phone="0241234569", email=""),  # and row 2, in the file
    ])
    expected = [(2, None, ids["PM1 KOFI"], "name_phone"), (3, None, ids["PM2 KOFI"], "email"),
                (4, None, ids["PM3 KOFI"], "name_company"), (6, 2, None, "name_phone"),
                (6, None, ids["PM1 KOFI"], "name_phone")]
    assert pairs_of(find_possible_duplicates(checked.normalised, engine)) == expected
    # Keyset pages of two customers find the same pairs.
    assert pairs_of(find_possible_duplicates(checked.normalised, engine, page=2)) == expected
    stored = stored_customers(engine, [ids["PM1 KOFI"]])
    assert stored[ids["PM1 KOFI"]]["phone"] == "+233241234567"


def test_awkward_names_against_the_database(database_url):
    engine = ready_engine(database_url)
    ids = seed(engine, [person(1, first_name="王", last_name="伟", phone="0241234567", email=""),
                        person(2, first_name="Émile", last_name="Zoë", phone="0501234567", email="")])
    checked = checked_of([person(3, first_name="伟", last_name="王", phone="+233241234568", email=""),
                          person(4, first_name="EMILE", last_name="ZOE", phone="0501234576", email=""),
                          person(5, first_name="", last_name="", phone="0501234577", email="")])
    assert pairs_of(find_possible_duplicates(checked.normalised, engine)) == [
        (2, None, ids["PM1 KOFI"], "name_phone"), (3, None, ids["PM2 KOFI"], "name_phone")]


def test_a_database_without_customers_has_no_pairs(database_url):
    from importer.database.schema import make_engine

    checked = checked_of([person(1, first_name="Kofi", last_name="Mensah", phone="0241234567"),
                          person(2, first_name="Kofi", last_name="Mensah", phone="0241234568")])
    assert pairs_of(find_possible_duplicates(checked.normalised, make_engine(database_url))) == [
        (3, 2, None, "name_phone")]


def test_huge_block_against_the_database(database_url):
    """5,000 stored John Mensahs at one company and one more in the upload: reported, not compared."""
    engine = ready_engine(database_url)
    seed(engine, [person(i, first_name="John", last_name="Mensah", company_name="Mensah Ltd", email="",
                         phone=f"0{[24, 54, 55, 20, 50][i % 5]}{(i * 7919) % 10_000_000:07d}") for i in range(5_000)])
    checked = checked_of([person(9_000, first_name="John", last_name="Mensah", company_name="MENSAH LIMITED",
                                 phone="0209876543")])
    found = find_possible_duplicates(checked.normalised, engine)
    assert found.found == 0
    assert [(b.rule, b.size) for b in found.oversized] == [("name_company", 5_001)]


# --- decisions -----------------------------------------------------------------------------------------


def test_decisions_are_json_records():
    decisions = [Decision(Action.KEEP_BOTH, 5, other_row=3), Decision(Action.EXCLUDE_ROW, 7, customer_id=12),
                 Decision(Action.UPDATE_CUSTOMER, 8, customer_id=12, shipping_mark="PM1 KOFI")]
    again = [Decision.from_json(json.loads(json.dumps(d.to_json()))) for d in decisions]
    assert again == decisions
    assert kept_pairs(again) == frozenset({(5, "row", 3)})


@pytest.mark.parametrize(("record", "message"), [
    ({"action": "merge", "row": 2, "other_row": 1}, "unknown action 'merge'"),
    ({"action": "keep_both", "other_row": 1}, "row is missing"),
    ({"action": "keep_both", "row": "2", "other_row": 1}, "row must be a whole number"),
    ({"action": "keep_both", "row": 2}, "names either another row or a customer, not neither"),
    ({"action": "keep_both", "row": 2, "other_row": 1, "customer_id": 3}, "not both"),
    ({"action": "update_customer", "row": 2, "other_row": 1}, "can only update a stored customer"),
])
def test_malformed_decisions_say_what_is_wrong(record, message):
    with pytest.raises(UsageError, match=message):
        Decision.from_json(record)


def test_keep_both_hides_the_pair_and_exclude_drops_the_row():
    checked = checked_of([person(1, first_name="Kofi", last_name="Mensah", phone="0241234567"),
                          person(2, first_name="Kofi", last_name="Mensah", phone="0241234568"),
                          person(3, first_name="Kofi", last_name="Mensah", phone="0241234569")])
    assert len(pairs_of(find_possible_duplicates(checked.normalised))) == 3
    keep = Decision(Action.KEEP_BOTH, 3, other_row=2)
    assert apply_decision(checked, keep, SETTINGS) is checked
    assert pairs_of(find_possible_duplicates(checked.normalised, kept=kept_pairs([keep]))) == [
        (4, 2, None, "name_phone"), (4, 3, None, "name_phone")]
    after = apply_decisions(checked, [keep, Decision(Action.EXCLUDE_ROW, 4, other_row=2)], SETTINGS)
    assert list(after.original.index) == [2, 3]
    assert find_possible_duplicates(after.normalised, kept=kept_pairs([keep])).found == 0
    with pytest.raises(UsageError, match="row 4 is not in the upload any more"):
        apply_decision(after, Decision(Action.EXCLUDE_ROW, 4, other_row=2), SETTINGS)


def test_update_that_customer_makes_the_import_update_it(database_url):
    engine = ready_engine(database_url)
    ids = seed(engine, [person(1, first_name="Kofi", last_name="Mensah", phone="0241234567")])
    customer = ids["PM1 KOFI"]
    checked = checked_of([person(2, first_name="Kofi", last_name="Mensah", phone="0241234568",
                                 email="kofi.new@example.com")])
    assert pairs_of(find_possible_duplicates(checked.normalised, engine)) == [(2, None, customer, "name_phone")]
    decision = update_decision(engine, 2, customer)
    assert decision.to_json()["shipping_mark"] == "PM1 KOFI"
    updated = apply_decision(checked, decision, SETTINGS)
    assert updated.original.at[2, "shipping_mark"] == "PM1 KOFI" and 2 not in updated.errors
    assert find_possible_duplicates(updated.normalised, engine).found == 0  # now the same customer
    assert classify_upload(engine, updated).rows.to_dict("records") == [
        {"row": 2, "outcome": "changed", "customer_id": customer}]
    result = run_import(engine, updated, file_name="b.csv", sha256="1" * 64, sheet=None, settings=SETTINGS,
                        existing="update")
    assert (result.total_updated, result.total_created) == (1, 0)
    assert stored_customers(engine, [customer])[customer]["phone"] == "+233241234568"
    with pytest.raises(UsageError, match="customer #999 is not in the database any more"):
        update_decision(engine, 2, 999)


def test_the_page_query_reads_the_columns_the_search_expects():
    for sql in duplicates._PAGE_SQL.values():
        columns = sql.split("SELECT ", 1)[1].split(" FROM", 1)[0].split(", ")
        assert columns == ["id", *duplicates._SOURCE_FIELDS]


def test_an_unreachable_database_is_one_line():
    from importer.database.schema import make_engine
    from importer.errors import DatabaseError

    checked = checked_of([person(1)])
    with pytest.raises(DatabaseError, match="Cannot reach the database"):
        find_possible_duplicates(checked.normalised, make_engine("postgresql+psycopg2://nobody@127.0.0.1:1/none"))
