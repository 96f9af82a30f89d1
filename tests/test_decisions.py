"""importer.review.decisions: accept/reject of changes to stored customers, the blank-cell mode and "keep both"
as workspace operations (saved, replayed, undone and redone like edits), what an import does with them, and
the workspace's one list of excluded rows; on a real SQLite file and a real PostgreSQL."""

from __future__ import annotations

import csv
import io

import pytest
import sqlalchemy as sa

from importer.api import import_upload, read_upload
from importer.checks.validate import exclude
from importer.database.customers import classify_upload
from importer.database.loader import run_import
from importer.database.schema import customers
from importer.errors import WorkspaceError
from importer.outcomes.row_errors import ErrorCode
from importer.review import decisions as dec
from importer.review.decisions import BlankChoice, ChangeDecision, Decisions, KeepBoth
from importer.review.lookalikes import Action, Decision
from importer.review.operations import CellEdit, Exclude, Include, operation_from_dict
from importer.workspace import replay as ws_replay
from importer.workspace import store as ws
from tests.support import SETTINGS, checked_of, person, ready_engine

HEADERS = ["Shipping Mark", "First Name", "Last Name", "Email", "Phone", "Region"]


def csv_file(people: list[dict[str, str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADERS)
    for p in people:
        writer.writerow([p["shipping_mark"], p["first_name"], p["last_name"], p["email"], p["phone"], p["region"]])
    return buffer.getvalue().encode()


def seeded(url: str) -> tuple[sa.Engine, ws.Opened]:
    """Customers 1-4 stored (Ashanti); a workspace of a file whose rows 2-4 change their region (rows 2-4 are
    people 1-3), row 5 is person 4 unchanged and row 6 a new one."""
    engine = ready_engine(url)
    run_import(engine, checked_of([person(i, region="Ashanti") for i in range(1, 5)]), file_name="october.csv",
               sha256="a" * 64, sheet=None, settings=SETTINGS)
    data = csv_file([person(1, region="Volta"), person(2, region="Volta"), person(3, region="Volta"),
                     person(4, region="Ashanti"), person(9, region="Ashanti")])
    upload = read_upload(data, "november.csv", SETTINGS)
    wid = ws.create_workspace(engine, "ama", data, upload.file_name, SETTINGS, upload.sheet, upload.mapping,
                              rows=upload.checked.total)
    return engine, ws.open_workspace(engine, wid, SETTINGS)


# --- the operations and their fold ------------------------------------------------------------------------


def test_decisions_fold_in_order():
    ops = [ChangeDecision((3, 4), True), BlankChoice("clear"), KeepBoth(5, other_row=2),
           ChangeDecision((4,), False), KeepBoth(6, customer_id=7), CellEdit(((2, "phone", "a", "b"),))]
    found = dec.decisions_of(ops)
    assert found == Decisions(False, frozenset({3}), frozenset(), "clear",
                              frozenset({(5, "row", 2), (6, "customer", 7)}))
    assert found.accepts(3) and not found.accepts(4) and not found.accepts(99)
    # Accept all forgets the answers given before it; a row rejected after it is rejected.
    after = dec.decisions_of([*ops, ChangeDecision(default=True), ChangeDecision((8,), False)])
    assert (after.default_accept, after.accepted, after.rejected, after.blank) == (True, frozenset(), {8}, "clear")
    assert after.accepts(3) and not after.accepts(8)
    assert dec.decisions_of([(1, ChangeDecision((2,)))]).accepted == {2}  # (seq, op) pairs as stored
    assert dec.decisions_of([]) == Decisions()


@pytest.mark.parametrize("op", [ChangeDecision((3, 4), False), ChangeDecision(default=True), BlankChoice("clear"),
                                KeepBoth(5, other_row=2), KeepBoth(6, customer_id=7)])
def test_decisions_round_trip_as_json(op):
    assert operation_from_dict(op.kind, op.to_dict()) == op
    assert dec.is_decision(op) and not dec.is_decision(Exclude((2,)))


def test_decisions_describe_themselves_and_refuse_nonsense():
    assert ChangeDecision((14,)).describe() == "Accepted the change of row 14"
    assert ChangeDecision(tuple(range(2, 9)), False).describe() == (
        "Rejected the changes of 7 rows: 2, 3, 4, 5, 6 and 2 more")
    assert ChangeDecision(default=True).describe() == "Accepted every change to existing customers"
    assert ChangeDecision(default=False).describe() == "Rejected every change to existing customers"
    assert BlankChoice("clear").describe() == "A blank cell clears the stored value"
    assert KeepBoth(3, customer_id=1).describe() == "Row 3 and customer #1 kept as different people"
    assert KeepBoth(4, other_row=2).describe() == "Row 4 and row 2 kept as different people"
    for bad in (lambda: ChangeDecision(()), lambda: BlankChoice("erase"), lambda: KeepBoth(3),
                lambda: KeepBoth(3, other_row=2, customer_id=1)):
        with pytest.raises(WorkspaceError):
            bad()


# --- in a workspace ---------------------------------------------------------------------------------------


def test_decisions_survive_reopening_the_workspace(database_url):
    engine, opened = seeded(database_url)
    before = opened.upload.checked
    for op in (ChangeDecision((3,), True), BlankChoice("clear"), KeepBoth(4, customer_id=3)):
        opened = ws.perform(engine, opened, op, SETTINGS)
        assert opened.upload.checked is before  # no row changed, none checked again
    wanted = Decisions(False, frozenset({3}), frozenset(), "clear", frozenset({(4, "customer", 3)}))
    assert dec.load_decisions(engine, opened.info.id) == wanted
    # A refresh, a second tab, a restart or a second server: the workspace replayed from the database.
    engine.dispose()
    other = ready_engine(database_url)
    again = ws.open_workspace(other, opened.info.id, SETTINGS)
    assert again.version == opened.version
    assert dec.load_decisions(other, again.info.id) == wanted
    assert dec.decisions_of(ws.load_workspace(other, again.info.id, SETTINGS, file=False).operations) == wanted
    assert list(again.upload.checked.original.index) == list(before.original.index)
    assert [e.summary for e in ws.history(other, again.info.id)] == [
        "Accepted the change of row 3", "A blank cell clears the stored value",
        "Row 4 and customer #3 kept as different people"]


def test_undo_and_redo_of_a_decision(database_url):
    engine, opened = seeded(database_url)
    opened = ws.perform(engine, opened, ChangeDecision(default=True), SETTINGS)
    opened = ws.perform(engine, opened, ChangeDecision((3,), False), SETTINGS)
    assert dec.load_decisions(engine, opened.info.id) == Decisions(True, frozenset(), frozenset({3}))
    assert ws.undo(engine, opened.info.id).summary == "Rejected the change of row 3"
    assert dec.load_decisions(engine, opened.info.id) == Decisions(True)
    ws.undo(engine, opened.info.id)
    assert dec.load_decisions(engine, opened.info.id) == Decisions()
    ws.redo(engine, opened.info.id)
    assert dec.load_decisions(engine, opened.info.id) == Decisions(True)
    ws.go_to(engine, opened.info.id, 2)
    assert dec.load_decisions(engine, opened.info.id) == Decisions(True, frozenset(), frozenset({3}))


def test_replay_skips_decisions(database_url, monkeypatch):
    engine, opened = seeded(database_url)
    opened = ws.perform(engine, opened, CellEdit(((6, "phone", "0240000009", "0240000019"),)), SETTINGS)
    plain = ws.open_workspace(engine, opened.info.id, SETTINGS).upload.checked
    for op in (ChangeDecision((2,)), BlankChoice("clear"), KeepBoth(6, customer_id=1)):
        opened = ws.perform(engine, opened, op, SETTINGS)

    def no_plug_in(self, op):
        raise AssertionError(f"{op} was applied as a plug-in: the rows were validated again for it")

    monkeypatch.setattr(ws_replay._Replay, "plug_in", no_plug_in)
    replayed = ws.open_workspace(engine, opened.info.id, SETTINGS).upload.checked
    assert replayed.original.equals(plain.original) and replayed.normalised.equals(plain.normalised)
    assert sorted(replayed.errors.pairs()) == sorted(plain.errors.pairs())


# --- what the import does with them -------------------------------------------------------------------------


def test_import_options_and_counts_follow_the_decisions(database_url):
    engine, opened = seeded(database_url)
    checked = opened.upload.checked
    found = classify_upload(engine, checked)
    assert found.counts() == {"new": 1, "unchanged": 1, "changed": 3, "conflict": 0}
    # Nothing decided: every change rejected, so the import skips them (they fail as already_exists).
    none = dec.decisions_of([])
    assert dec.import_options(none, found) == {"existing": "skip", "blank": "keep", "rejected": ()}
    counted = dec.against_database(checked, found, none)
    assert (counted.counts["accepted"], counted.counts["rejected"], counted.rejected) == (0, 3, (2, 3, 4))
    assert {e.code for r in (2, 3, 4) for e in counted.errors[r]} == {ErrorCode.ALREADY_EXISTS}
    # Row 3 accepted: update, rows 2 and 4 rejected; the blank mode as chosen.
    decided = dec.decisions_of([ChangeDecision((3,)), BlankChoice("clear")])
    options = dec.import_options(decided, found)
    assert options == {"existing": "update", "blank": "clear", "rejected": (2, 4)}
    counted = dec.against_database(checked, found, decided)
    assert counted.import_arguments() == options and counted.accepted == {3} and 3 not in counted.errors
    assert (counted.counts["accepted"], counted.counts["rejected"], counted.existing) == (1, 2, "update")
    # Accept all but row 2.
    most = dec.decisions_of([ChangeDecision(default=True), ChangeDecision((2,), False)])
    assert dec.import_options(most, found)["rejected"] == (2,)
    # The database not asked: nothing accepted.
    assert dec.import_options(decided, None) == {"existing": "skip", "blank": "clear", "rejected": ()}
    down = dec.against_database(checked, "the database is down", decided)
    assert down.problem == "the database is down" and down.counts["accepted"] == 0

    result = import_upload(engine, opened.upload, SETTINGS, **options)
    assert (result.total_created, result.total_updated, result.total_unchanged, result.total_failed) == (1, 1, 1, 2)
    with engine.connect() as conn:
        regions = dict(conn.execute(sa.select(customers.c.shipping_mark, customers.c.region)).all())
    assert [regions[f"PM{i} KOFI"] for i in (1, 2, 3)] == ["ASHANTI", "VOLTA", "ASHANTI"]


# --- look-alikes and exclusions ---------------------------------------------------------------------------


def test_duplicate_decisions_become_operations(database_url):
    engine, opened = seeded(database_url)
    checked = opened.upload.checked
    assert dec.duplicate_operations(checked, Decision(Action.KEEP_BOTH, 6, customer_id=1)) == [
        KeepBoth(6, customer_id=1)]
    assert dec.duplicate_operations(checked, Decision(Action.EXCLUDE_ROW, 6, other_row=2)) == [
        Exclude((6,), "possible duplicate of row 2")]
    edit, accept = dec.duplicate_operations(
        checked, Decision(Action.UPDATE_CUSTOMER, 6, customer_id=1, shipping_mark="PM1 KOFI"))
    assert edit == CellEdit(((6, "shipping_mark", "pm9 kofi", "PM1 KOFI"),)) and accept == ChangeDecision((6,))
    gone = ws.perform(engine, opened, Exclude((6,)), SETTINGS).upload.checked
    with pytest.raises(WorkspaceError, match="row 6 is not in the upload"):
        dec.duplicate_operations(gone, Decision(Action.EXCLUDE_ROW, 6, other_row=2))


def test_one_list_of_excluded_rows_for_every_path(database_url):
    """Rows excluded by reason, by row and as a possible duplicate are all the workspace's excluded rows, as the
    operations go and as a replay finds them; included again, they leave the list."""
    engine, opened = seeded(database_url)
    opened = ws.perform(engine, opened, Exclude((2,), "excluded by the analyst: Region: changed"), SETTINGS)
    opened = ws.record(engine, opened, Exclude((3,)), exclude(opened.upload.checked, [3]), SETTINGS)  # as a page does
    (duplicate,) = dec.duplicate_operations(opened.upload.checked, Decision(Action.EXCLUDE_ROW, 6, customer_id=1))
    opened = ws.perform(engine, opened, duplicate, SETTINGS)
    live = [(e.source_row, e.why, e.text["region"]) for e in opened.excluded]
    assert live == [(2, "excluded by the analyst: Region: changed", "Volta"), (3, "excluded by the analyst", "Volta"),
                    (6, "possible duplicate of customer #1", "Ashanti")]
    replayed = ws.open_workspace(engine, opened.info.id, SETTINGS)
    assert [(e.source_row, e.why, e.text["region"]) for e in replayed.excluded] == live
    back = ws.perform(engine, replayed, Include((3, 6)), SETTINGS)
    assert [e.source_row for e in back.excluded] == [2]
    # A decision leaves the list as it is.
    assert ws.perform(engine, back, KeepBoth(4, customer_id=3), SETTINGS).excluded == back.excluded

