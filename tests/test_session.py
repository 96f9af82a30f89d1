"""importer.review.session: one review session for every face. The dry run it last ran is stored with the
workspace, so another tab, a refresh or a second server knows it; the rule "a dry run first, and not a stale
one" is the engine's (readiness), not a page's."""

from __future__ import annotations

from importer.database.customers import classify_upload
from importer.database.loader import run_import
from importer.identity import dashboard_actor
from importer.review.decisions import ChangeDecision
from importer.review.operations import Exclude
from importer.review.session import (
    START_WITH_A_DRY_RUN,
    DryRunSeen,
    ReviewSession,
    choices_of,
    last_dry_run,
)
from importer.review.staleness import database_state
from importer.workspace import store as ws
from tests.support import SETTINGS, checked_of, person
from tests.test_decisions import seeded

AMA = dashboard_actor("ama")


def _arguments(session: ReviewSession) -> dict:
    against = session.against_database(classify_upload(session.engine, session.checked, "keep"))
    return against.import_arguments()


def test_a_dry_run_comes_first_then_stays_true_until_something_changes(database_url):
    engine, opened = seeded(database_url)
    session = ReviewSession(engine, SETTINGS, AMA, opened)
    arguments = _arguments(session)
    first = session.readiness(arguments)
    assert (first.can_import, first.reason, first.stale) == (False, START_WITH_A_DRY_RUN, False)

    result = session.dry_run(arguments)
    assert result.dry_run and result.total_created == 1  # person 9 is new; 1-3 change, 4 is unchanged
    ready = session.readiness(arguments)
    assert ready.can_import and ready.dry_run is not None
    assert ready.dry_run.counts == {"created": 1, "updated": 0, "unchanged": 1, "failed": 3}

    # Another tab (a new session object on the same workspace, as a refresh or a second server opens it)
    # sees the same dry run and the same verdict.
    other = ReviewSession.open(engine, SETTINGS, AMA, session.id)
    assert other.readiness(arguments).can_import

    # A change of the review makes it stale, for every tab.
    changed = other.perform(Exclude((6,), "test"))
    assert "changed the file since the dry run" in str(changed.readiness(_arguments(changed)).reason)
    assert session.version != changed.version


def test_a_decision_on_existing_customers_makes_the_dry_run_stale(database_url):
    engine, opened = seeded(database_url)
    session = ReviewSession(engine, SETTINGS, AMA, opened)
    session.dry_run(_arguments(session))
    accepted = session.perform(ChangeDecision((2,), True))
    arguments = _arguments(accepted)
    assert arguments["existing"] == "update"
    reason = accepted.readiness(arguments).reason
    # A decision is an operation too: the version moved, and the choices differ.
    assert reason is not None and "since the dry run" in reason


def test_another_import_makes_the_dry_run_stale_naming_the_run(database_url):
    engine, opened = seeded(database_url)
    session = ReviewSession(engine, SETTINGS, AMA, opened)
    arguments = _arguments(session)
    session.dry_run(arguments)
    run_import(engine, checked_of([person(50, email=person(9)["email"])]), file_name="tema.csv", sha256="b" * 64,
               sheet=None, settings=SETTINGS)
    ready = session.readiness(arguments)
    assert ready.stale and "tema.csv" in str(ready.reason)


def test_the_stored_dry_run_round_trips_and_a_foreign_one_reads_as_none(database_url):
    engine, opened = seeded(database_url)
    seen = DryRunSeen(3, choices_of({"existing": "update", "rejected": [5, 2]}), database_state(engine),
                      {"created": 1})
    assert DryRunSeen.from_json(seen.to_json()) == seen
    assert seen.choices == ("update", "keep", (2, 5))
    assert last_dry_run(engine, opened.info.id) is None
    import sqlalchemy as sa

    from importer.database.schema import workspaces
    with engine.begin() as conn:
        conn.execute(sa.update(workspaces).values(dry_run={"version": "x"}))
    assert last_dry_run(engine, opened.info.id) is None


def test_undo_and_redo_through_the_session(database_url):
    engine, opened = seeded(database_url)
    session = ReviewSession(engine, SETTINGS, AMA, opened)
    excluded = session.perform(Exclude((6,), "test"))
    assert 6 not in excluded.checked.original.index
    back = excluded.undo()
    assert 6 in back.checked.original.index
    again = back.redo()
    assert 6 not in again.checked.original.index
    assert [e.summary for e in again.history()][-1].startswith("Excluded")
    assert ws.history(engine, session.id) == again.history()


def test_a_colleagues_import_of_other_customers_leaves_the_dry_run_true(database_url):
    """Two branches importing different customers (no mark, phone or e-mail in common) need not run their dry
    runs again after each other's import (issue 23); one sharing a phone with this file does make it stale,
    naming the run and how many rows of this file it touched."""
    engine, opened = seeded(database_url)  # the file: people 1-4 and 9
    session = ReviewSession(engine, SETTINGS, AMA, opened)
    arguments = _arguments(session)
    session.dry_run(arguments)
    run_import(engine, checked_of([person(i) for i in range(100, 120)]), file_name="tema.csv",
               sha256="c" * 64, sheet=None, settings=SETTINGS)
    ready = session.readiness(arguments)
    assert ready.can_import, ready.reason
    assert last_dry_run(engine, session.id).state == database_state(engine)  # checked once, then remembered

    run_import(engine, checked_of([person(200, phone=person(9)["phone"])]), file_name="accra.csv",
               sha256="d" * 64, sheet=None, settings=SETTINGS)
    ready = session.readiness(arguments)
    assert ready.stale and "accra.csv" in str(ready.reason) and "touching 1 row of this file" in str(ready.reason)


def test_an_update_that_moved_a_key_away_from_this_file_makes_it_stale(database_url):
    engine, opened = seeded(database_url)
    session = ReviewSession(engine, SETTINGS, AMA, opened)
    arguments = _arguments(session)
    session.dry_run(arguments)
    # Another file changes customer 4's phone (matched by its mark): this file's row of person 4 now
    # meets a customer with another phone.
    run_import(engine, checked_of([person(4, region="Ashanti", phone="0559999999")]), file_name="kumasi.csv",
               sha256="e" * 64, sheet=None, settings=SETTINGS, existing="update")
    assert session.readiness(arguments).stale


def test_another_account_cannot_open_or_change_the_session(database_url):
    """The session passes its actor to the store, which checks ownership (importer.database.accounts)."""
    import pytest

    from importer.errors import NotYours

    engine, opened = seeded(database_url)  # ama's workspace
    kofi = dashboard_actor("kofi")
    with pytest.raises(NotYours, match="belongs to ama"):
        ReviewSession.open(engine, SETTINGS, kofi, opened.info.id)
    with pytest.raises(NotYours, match="belongs to ama"):
        ReviewSession(engine, SETTINGS, kofi, opened).perform(Exclude((6,), "test"))
    assert ReviewSession.open(engine, SETTINGS, dashboard_actor(" AMA "), opened.info.id).id == opened.info.id
