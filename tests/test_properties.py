"""Property-based: for any table of values, check_frame + run_import account for every row.

Tables mix random unicode text (control characters, NUL, blanks, long strings), valid and invalid
phones in many spellings, Excel errors, and keys drawn from small pools so duplicates are common.
On an empty SQLite database: created + failed == attempted and created == len(valid_index()); with
part of the valid rows already in the database: created == valid rows minus the ones already there, which
are unchanged.

The other properties of the issue live in tests/test_clean.py: every normaliser is idempotent
(test_text_normalisers_are_idempotent, test_phone_normaliser_is_idempotent) and a valid phone survives
any mix of spaces, dashes, dots, brackets, `+` and country prefix (test_valid_phone_survives_any_punctuation).
CI: 25 examples each; RELIABILITY_LONG=1: 300.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from importer.checks.validate import check_frame
from importer.database.loader import run_import
from importer.database.schema import ensure_schema, make_engine
from tests.support import SETTINGS, frame

settings.register_profile("reliability-ci", max_examples=25, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("reliability-long", max_examples=300, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
PROFILE = settings.get_profile("reliability-long" if os.environ.get("RELIABILITY_LONG") == "1" else "reliability-ci")

_any_text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=40)
_long_text = st.text(alphabet="abcXYZ é-", min_size=45, max_size=120)
_blank = st.sampled_from(["", " ", "\t", "  \n "])
_excel = st.sampled_from(["#N/A", "#REF!", "#DIV/0!"])


def _mix(*pool: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(*pool, _blank, _excel, _any_text)


_marks = _mix(st.sampled_from(["pm1 kofi", "PM1  KOFI", "pm2 ama", "PM3", "x", "pm-4_yaw", "PM5 ÉLISE", "P@M"]),
              st.from_regex(r"[A-Za-z0-9 _-]{2,12}", fullmatch=True))
_names = _mix(st.sampled_from(["Kofi", "  ama  serwaa ", "Ōsei", "مرحبا", "👩🏽‍💻"]), _long_text)
_emails = _mix(st.sampled_from(["kofi@example.com", "KOFI@Example.com ", "ama@example.com", "not-an-email",
                                "a@b", "yaw@example.com"]))
_phones = _mix(st.sampled_from([
    "0241234567", "024 123 4567", "+233 24 123 4567", "233241234567", "241234567.0", "0201234567",
    "(020) 123-4567", "0551234567", "00233 55 123 4567", "０２４１２３４５６７", "2.33241234567E+11",
    "2.33241E+11", "54123", "5412345", "+1 202 555 0143", "phone",
]), st.from_regex(r"0[25][0-9]{8}", fullmatch=True))
_regions = _mix(st.sampled_from(["Ashanti", "greater accra", "BONO_EAST", "Volta Region", "Atlantis"]))
_types = _mix(st.sampled_from(["individual", "BUSINESS", "Company"]))
_optional = _mix(st.sampled_from(["Kofi Ltd", "=HYPERLINK(\"x\")", "'); DROP TABLE customers;--"]), _long_text)

_row = st.fixed_dictionaries({
    "shipping_mark": _marks, "first_name": _names, "last_name": _names, "email": _emails, "phone": _phones,
    "region": _regions, "company_name": _optional, "nickname": _optional, "user_type": _types,
})
_tables = st.lists(_row, min_size=1, max_size=25)


def _engine(folder: str) -> sa.Engine:
    engine = make_engine(f"sqlite:///{Path(folder) / 'customers.db'}")
    ensure_schema(engine)
    return engine


def _import(engine: sa.Engine, checked, sha: str):
    return run_import(engine, checked, file_name="p.xlsx", sha256=sha, sheet=None, settings=SETTINGS, batch_size=7)


def _count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM customers")).scalar_one()


@settings(PROFILE)
@given(_tables)
def test_every_row_is_created_or_failed_and_valid_rows_are_created(rows: list[dict[str, str]]) -> None:
    checked = check_frame(frame(rows), SETTINGS)
    valid = checked.valid_index()
    with tempfile.TemporaryDirectory() as folder:
        engine = _engine(folder)
        result = _import(engine, checked, "a" * 64)
        assert result.total_attempted == len(rows)
        assert result.total_created + result.total_failed == result.total_attempted
        assert result.total_created == len(valid)
        assert sorted(r.source_row_number for r in result.failed) == sorted(checked.errors)
        assert all(r.errors for r in result.failed)
        with engine.connect() as conn:
            phones = {p for (p,) in conn.execute(sa.text("SELECT phone FROM customers"))}
        assert phones == set(checked.normalised.loc[valid, "phone"])
        assert _count(engine) == len(valid)
        engine.dispose()


@settings(PROFILE)
@given(_tables, st.data())
def test_rows_already_in_the_database_are_unchanged(rows: list[dict[str, str]], data) -> None:
    checked = check_frame(frame(rows), SETTINGS)
    valid = list(checked.valid_index())
    before = data.draw(st.lists(st.sampled_from(valid), unique=True) if valid else st.just([]))
    with tempfile.TemporaryDirectory() as folder:
        engine = _engine(folder)
        if before:
            first = check_frame(checked.original.loc[sorted(before)], SETTINGS)
            assert _import(engine, first, "b" * 64).total_created == len(before)
        result = _import(engine, checked, "c" * 64)
        assert (result.total_created + result.total_unchanged + result.total_failed
                == result.total_attempted == len(rows))
        assert result.total_created == len(valid) - len(before)
        # The same values again: unchanged, neither failed nor updated.
        assert result.total_unchanged == len(before) and result.total_updated == 0
        assert not {r.source_row_number for r in result.failed} & set(before)
        assert _count(engine) == len(valid)
        engine.dispose()
