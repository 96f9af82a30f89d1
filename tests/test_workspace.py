"""importer.workspace.store: a saved upload and its operations, replay equal to live, undo/redo, expiry,
resume from a workspace, and naming a stale dry run; on a real SQLite file and a real PostgreSQL."""

from __future__ import annotations

import csv
import io
import random
import zlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar

import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from importer import errors as importer_errors
from importer.api import import_upload, read_upload
from importer.checks import validate as validate
from importer.checks.validate import Checked
from importer.database import schema as schema
from importer.database.ledger import get_run, undo
from importer.errors import LimitExceeded, RunError
from importer.review import operations as op_kinds
from importer.review import staleness as staleness
from importer.workspace import replay as ws_replay
from importer.workspace import resume as ws_resume
from importer.workspace import snapshot as ws_snapshot
from importer.workspace import store as ws
from schemas.customer import FIELD_NAMES
from tests.support import SETTINGS, ready_engine

HEADERS = ["Shipping Mark", "First Name", "Last Name", "Email", "Phone", "Region", "Company", "Other Phone"]


def _row(i: int) -> list[str]:
    return [f"pm{i}  kofi", "kofi", f"Mensah{i}", f"Kofi{i}@Example.com " if i % 4 else "", f"24{i:07d}",
            "" if i % 3 else "Ashanti", "Trading Ltd" if i % 5 == 0 else "", f"054{i:07d}"]


def csv_file(count: int = 16) -> bytes:
    """A branch list: double spaces, dropped zeros, blank regions, a bad phone, a repeated mark, a blank name."""
    rows = [_row(i) for i in range(count)]
    rows[3][4] = "54123"
    rows[5][0] = "pm1 kofi"
    rows[7][1] = ""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADERS)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def error_list(checked: Checked) -> list[tuple[str, ...]]:
    return sorted((str(row), e.field, e.code.value, e.message, str(e.value), str(e.other_row))
                  for row, e in checked.errors.pairs())


def assert_same(a: Checked, b: Checked) -> None:
    pd.testing.assert_frame_equal(a.original, b.original)
    pd.testing.assert_frame_equal(a.normalised, b.normalised)
    assert error_list(a) == error_list(b)


def new_workspace(engine: sa.Engine, data: bytes, owner: str = "ama", name: str = "kumasi.csv",
                  snapshot: bool = True) -> ws.Opened:
    """A workspace as the dashboard makes one: with its snapshot (the file as read and checked), unless not."""
    upload = read_upload(data, name, SETTINGS)
    wid = ws.create_workspace(engine, owner, data, name, SETTINGS, upload.sheet, upload.mapping,
                              rows=upload.checked.total, snapshot=ws_snapshot.snapshot_bytes(upload) if snapshot else None)
    return ws.open_workspace(engine, wid, SETTINGS)


def test_a_workspace_is_kept_listed_and_replayed_as_read(database_url: str) -> None:
    engine = ready_engine(database_url)
    data = csv_file()
    opened = new_workspace(engine, data)
    assert_same(opened.upload.checked, read_upload(data, "kumasi.csv", SETTINGS).checked)
    assert opened.version == 0 and opened.seqs == ()
    [info] = ws.list_workspaces(engine, "ama")
    assert (info.file_name, info.rows, info.operations, info.file_size) == ("kumasi.csv", 16, 0, len(data))
    assert ws.list_workspaces(engine, "kofi") == []
    stored = ws.load_workspace(engine, info.id, SETTINGS)
    assert stored.data == data and stored.mapping == opened.upload.mapping


def test_blobs_of_megabytes_are_stored_whole_and_postgresql_gets_them_a_part_per_statement(database_url: str) -> None:
    """The stored file and the snapshot, 5 and 3 MB here (random bytes: zlib keeps their size), read back
    byte for byte. On PostgreSQL no statement carries more than one part of a blob (psycopg2 sends bytea as
    hex text inside the query: the whole blob in one statement held several copies of it at once), and
    the parts are at most BLOB_WRITES statements per blob."""
    engine = ready_engine(database_url)
    rng = random.Random(7)
    data, snapshot = rng.randbytes(5 * ws.BLOB_CHUNK), rng.randbytes(3 * ws.BLOB_CHUNK + 17)
    sent: list[int] = []

    def blob_sizes(conn, cursor, statement, parameters, context, executemany) -> None:
        values = parameters.values() if isinstance(parameters, dict) else parameters or ()
        raw = [getattr(v, "adapted", v) for v in values]  # psycopg2 gets bytes wrapped in its Binary
        sent.extend(len(v) for v in raw if isinstance(v, bytes | bytearray | memoryview) and len(v))

    sa.event.listen(engine, "before_cursor_execute", blob_sizes)
    try:
        wid = ws.create_workspace(engine, "ama", data, "big.csv", SETTINGS, snapshot=snapshot)
        ws.store_snapshot(engine, wid, ws.load_workspace(engine, wid, SETTINGS, file=False).info.sha256, snapshot[::-1])
    finally:
        sa.event.remove(engine, "before_cursor_execute", blob_sizes)
    assert ws.stored_file(engine, wid, SETTINGS) == data
    assert ws.load_workspace(engine, wid, SETTINGS).snapshot == snapshot[::-1]
    stored = len(zlib.compress(data, 6))
    if engine.dialect.name == "postgresql":
        assert max(sent) <= ws.BLOB_CHUNK, sent
        parts = -(-stored // ws.BLOB_CHUNK) + 2 * -(-len(snapshot) // ws.BLOB_CHUNK)  # the snapshot twice
        assert (len(sent), sum(sent)) == (parts, stored + 2 * len(snapshot)) and parts == 14
    else:
        assert sorted(sent) == sorted([stored, len(snapshot), len(snapshot)])


def test_a_snapshot_replays_what_the_file_gives_and_a_broken_one_falls_back_to_the_file(
        sqlite_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """The snapshot is a cache of the file as read and checked: the same upload either way (notes, report
    columns, errors), and a snapshot that cannot be read costs only the time of reading the file."""
    engine = ready_engine(sqlite_url)
    data = csv_file(30)
    upload = read_upload(data, "kumasi.csv", SETTINGS)
    start = ws_snapshot.load_snapshot(ws_snapshot.snapshot_bytes(upload), SETTINGS)
    assert start is not None
    assert (start.upload.file_name, start.upload.sha256, start.upload.mapping, start.upload.notes,
            start.upload.report_columns) == (upload.file_name, upload.sha256, upload.mapping, upload.notes,
                                             upload.report_columns)
    assert_same(Checked(start.text, start.normalised, start.errors), upload.checked)
    opened = new_workspace(engine, data)
    ops = [op_kinds.CellEdit.of(opened.upload.checked, {3: {"phone": "0241234567"}}), op_kinds.BulkFix("region", "ASHANTI"),
           op_kinds.Exclude((5,), "test")]
    for op in ops:
        opened = ws.perform(engine, opened, op, SETTINGS)
    from_snapshot = ws.open_workspace(engine, opened.info.id, SETTINGS)
    with engine.begin() as conn:
        conn.execute(schema.workspaces.update().values(snapshot=b"PK\x03\x04 not a zip"))
    ws.SHARED.clear()  # replayed again, not the frame from_snapshot shares (importer.workspace.shared)
    with caplog.at_level("WARNING"):
        from_file = ws.open_workspace(engine, opened.info.id, SETTINGS)
    assert "snapshot could not be read" in caplog.text
    assert_same(from_snapshot.upload.checked, from_file.upload.checked)
    assert_same(from_file.upload.checked, opened.upload.checked)
    assert [e.source_row for e in from_snapshot.excluded] == [5] == [e.source_row for e in from_file.excluded]


def test_operations_are_summarised_in_the_users_words(database_url: str) -> None:
    engine = ready_engine(database_url)
    opened = new_workspace(engine, csv_file())
    opened = ws.perform(engine, opened, op_kinds.BulkFix("region", "ASHANTI"), SETTINGS)
    edit = op_kinds.CellEdit.of(opened.upload.checked, {5: {"phone": "0541234567"}})
    assert edit is not None
    opened = ws.perform(engine, opened, edit, SETTINGS)
    opened = ws.perform(engine, opened, op_kinds.BulkFix("trim"), SETTINGS)
    opened = ws.perform(engine, opened, op_kinds.Exclude((9,), "failing on first name"), SETTINGS)
    opened = ws.perform(engine, opened, op_kinds.Include((9,)), SETTINGS)
    fields = [None if f == "company_name" else f for f in opened.upload.mapping.fields]
    opened = ws.perform(engine, opened, op_kinds.MappingChange.of(opened.upload.mapping, fields), SETTINGS)
    assert [(e.seq, e.summary, e.undone) for e in ws.history(engine, opened.info.id)] == [
        (1, "Filled 10 blank regions with Ashanti", False),
        (2, "Row 5: phone 54123 -> 0541234567", False),
        (3, "Trimmed spaces in 16 rows", False),
        (4, "Excluded row 9 (failing on first name)", False),
        (5, "Included row 9 again", False),
        (6, "Mapping changed: Company -> ignored", False),
    ]
    assert set(opened.upload.checked.normalised["region"]) == {"ASHANTI"}
    assert opened.upload.checked.normalised.at[5, "phone"] == "+233541234567"
    assert "company_name" not in opened.upload.mapping.fields
    assert_same(ws.replay(engine, opened.info.id, SETTINGS).checked, opened.upload.checked)
    assert ws.list_workspaces(engine, "ama")[0].operations == 6


def test_edit_summary_names_several_cells() -> None:
    edit = op_kinds.CellEdit(((14, "phone", "0241", "0541"), (14, "email", "", "a@b.co"), (15, "region", "x", "")))
    assert edit.describe() == "Edited 3 cells in 2 rows: 14, 15"
    assert op_kinds.CellEdit(((15, "region", "Kumasi", ""),)).describe() == "Row 15: region Kumasi -> (blank)"


def test_undo_redo_and_a_new_operation_clears_the_redo_stack(database_url: str) -> None:
    engine = ready_engine(database_url)
    data = csv_file()
    opened = new_workspace(engine, data)
    wid = opened.info.id
    for op in (op_kinds.BulkFix("region", "VOLTA"), op_kinds.BulkFix("phones"), op_kinds.Exclude((4, 6))):
        opened = ws.perform(engine, opened, op, SETTINGS)
    after_three = opened.upload.checked
    assert [e.seq for e in ws.history(engine, wid)] == [1, 2, 3]
    assert ws.undo(engine, wid) == ws.HistoryEntry(3, "Excluded 2 rows", True)
    assert ws.undo(engine, wid).seq == 2
    assert ws.undo(engine, wid).seq == 1
    assert ws.undo(engine, wid) is None
    assert_same(ws.replay(engine, wid, SETTINGS).checked, read_upload(data, "kumasi.csv", SETTINGS).checked)
    assert [e.undone for e in ws.history(engine, wid)] == [True, True, True]
    assert ws.redo(engine, wid).seq == 1
    assert ws.redo(engine, wid).seq == 2
    assert ws.redo(engine, wid).seq == 3
    assert ws.redo(engine, wid) is None
    assert_same(ws.replay(engine, wid, SETTINGS).checked, after_three)
    ws.go_to(engine, wid, 1)  # a click on the first line of the history
    assert [e.undone for e in ws.history(engine, wid)] == [False, True, True]
    opened = ws.open_workspace(engine, wid, SETTINGS)
    assert opened.version == 1 and len(opened.upload.checked.original) == 16
    opened = ws.perform(engine, opened, op_kinds.BulkFix("emails"), SETTINGS)
    assert [(e.seq, e.undone) for e in ws.history(engine, wid)] == [(1, False), (4, False)]  # seq never reused
    assert ws.redo(engine, wid) is None


def test_a_second_tab_working_on_an_old_frame_replays_first(database_url: str) -> None:
    engine = ready_engine(database_url)
    tab_a = new_workspace(engine, csv_file())
    tab_b = ws.open_workspace(engine, tab_a.info.id, SETTINGS)
    tab_a = ws.perform(engine, tab_a, op_kinds.BulkFix("region", "ASHANTI"), SETTINGS)
    with pytest.raises(importer_errors.WorkspaceChanged):
        ws.append_operation(engine, tab_b.info.id, op_kinds.BulkFix("emails"), expected_version=tab_b.version)
    tab_b = ws.perform(engine, tab_b, op_kinds.BulkFix("emails"), SETTINGS)
    assert tab_b.version == 2 and tab_b.seqs == (1, 2)
    assert set(tab_b.upload.checked.normalised["region"]) == {"ASHANTI"}  # tab A's fix is kept
    assert_same(ws.replay(engine, tab_a.info.id, SETTINGS).checked, tab_b.upload.checked)


def test_discard_expire_and_what_a_resumable_run_keeps(database_url: str) -> None:
    engine = ready_engine(database_url)
    data = csv_file()
    first, second, third = (new_workspace(engine, data) for _ in range(3))
    with pytest.raises(importer_errors.NotYours, match="belongs to ama"):
        ws.discard_workspace(engine, first.info.id, "kofi")
    ws.discard_workspace(engine, first.info.id, " AMA ")  # the same account (names compare trimmed, case-folded)
    assert [i.id for i in ws.list_workspaces(engine, "ama")] == [third.info.id, second.info.id]
    with pytest.raises(importer_errors.WorkspaceError, match="discarded"):
        ws.load_workspace(engine, first.info.id, SETTINGS)
    with engine.begin() as conn:  # the second is a month old; an interrupted run imports from the third
        conn.execute(schema.workspaces.update().where(schema.workspaces.c.id.in_([second.info.id, third.info.id]))
                     .values(updated_at=ws.now() - timedelta(days=30)))
        conn.execute(sa.text("INSERT INTO import_runs (file_name, sha256, status, started_at, workspace_id) "
                             "VALUES ('kumasi.csv', 'x', 'interrupted', CURRENT_TIMESTAMP, :w)"), {"w": third.info.id})
    assert ws.expire_workspaces(engine, 14) == 1
    assert [i.id for i in ws.list_workspaces(engine, "ama")] == [third.info.id]
    ws.discard_workspace(engine, third.info.id)  # hidden, kept for the run's resume
    assert ws.list_workspaces(engine, "ama") == []
    assert ws.load_workspace(engine, third.info.id, SETTINGS, discarded=True).data == data
    assert ws.expire_workspaces(engine, 14) == 0


def test_workspace_days_setting_and_upload_limit(sqlite_url: str) -> None:
    from importer.settings import Settings

    assert Settings.from_env({"WORKSPACE_DAYS": "3"}).workspace_days == 3
    assert Settings.from_env({}).workspace_days == 14
    with pytest.raises(LimitExceeded, match="MAX_UPLOAD_MB"):
        ws.create_workspace(ready_engine(sqlite_url), "ama", b"x" * (2 * 1024 * 1024), "big.csv",
                            SETTINGS.with_(max_upload_mb=1))


def test_bad_operations_are_refused_in_words() -> None:
    with pytest.raises(importer_errors.WorkspaceError, match="not a region code"):
        op_kinds.BulkFix("region", "KUMASI")
    with pytest.raises(importer_errors.WorkspaceError, match="there is no bulk fix 'shout'"):
        op_kinds.BulkFix("shout")
    with pytest.raises(importer_errors.WorkspaceError, match="cannot replay a 'teleport' operation"):
        op_kinds.operation_from_dict("teleport", {})
    checked = read_upload(csv_file(), "k.csv", SETTINGS).checked
    with pytest.raises(importer_errors.WorkspaceError, match="row 99 is not in this upload"):
        op_kinds.CellEdit.of(checked, {99: {"phone": "1"}})
    with pytest.raises(importer_errors.WorkspaceError, match="'mobile' is not a customer field"):
        op_kinds.CellEdit.of(checked, {2: {"mobile": "1"}})
    assert op_kinds.CellEdit.of(checked, {2: {"first_name": checked.original.at[2, "first_name"]}}) is None


@op_kinds.register
@dataclass(frozen=True)
class Shout:
    """A plug-in operation known only by apply(checked): upper-cases one column's text."""

    kind: ClassVar[str] = "test_shout"
    field: str

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Shout:
        return cls(data["field"])

    def apply(self, checked: Checked, settings: Any) -> Checked:
        from importer.checks.validate import recheck

        return recheck(checked, checked.original.assign(**{self.field: checked.original[self.field].str.upper()}),
                       settings)

    def describe(self) -> str:
        return f"Upper-cased {self.field}"


# --- replay is applying the operations live ---------------------------------------------------------------

PALETTE = ["", "  ", "0241234567", "+233 24 123 4567", "241234567", "54123", "kofi@example.com",
           "KOFI@EXAMPLE.COM ", "pm2  kofi", "PM1 KOFI", "Ashanti", "kumasi", "#N/A", "x" * 120, "ama  mensah",
           "individual", "BUSINESS", "0541000002"]


def live_fold(data: bytes, initial_mapping: Any, ops: list[Any]) -> Checked:
    """The reference: each operation applied to the frame as the page does, one after another."""
    mapping = initial_mapping
    for op in ops:
        if isinstance(op, op_kinds.MappingChange):
            mapping = op.mapping
    checked = read_upload(data, "kumasi.csv", SETTINGS, mapping=mapping).checked
    excluded: dict[int, pd.Series] = {}
    for op in ops:
        if isinstance(op, op_kinds.Include):
            rows = [r for r in op.rows if r in excluded]
            back = pd.DataFrame([excluded.pop(r) for r in rows], index=pd.Index(rows, name="source_row_number"))
            checked = validate.include_again(checked, back, SETTINGS)
        elif isinstance(op, op_kinds.Exclude):
            excluded.update({r: checked.original.loc[r] for r in op.rows if r in checked.original.index})
            checked = op.apply(checked, SETTINGS)
        elif not isinstance(op, op_kinds.MappingChange):
            checked = op_kinds.applier(op)(checked, SETTINGS)
    return checked


def draw_operation(data: st.DataObject, checked: Checked, excluded: list[int], mapping: Any) -> Any:
    kind = data.draw(st.sampled_from(["edit", "edit", "fix", "exclude", "include", "include", "mapping", "plug-in",
                                      "convert"]))
    rows = checked.original.index.tolist()
    if kind == "include" and not excluded:
        kind = "exclude"  # an include needs excluded rows: exclude some first
    if kind == "edit" and rows:
        cells = data.draw(st.lists(st.tuples(st.sampled_from(rows), st.sampled_from(FIELD_NAMES),
                                             st.sampled_from(PALETTE)), min_size=1, max_size=4))
        changes: dict[int, dict[str, str]] = {}
        for row, field, text in cells:
            changes.setdefault(row, {})[field] = text
        return op_kinds.CellEdit.of(checked, changes)
    if kind == "fix":
        key = data.draw(st.sampled_from(["region", "trim", "phones", "emails", "names"]))
        return op_kinds.BulkFix(key, data.draw(st.sampled_from(["ASHANTI", "VOLTA"])) if key == "region" else None,
                          data.draw(st.booleans()))
    if kind == "exclude" and rows:
        return op_kinds.Exclude(tuple(data.draw(st.lists(st.sampled_from(rows), min_size=1, max_size=3, unique=True))))
    if kind == "include" and excluded:
        return op_kinds.Include(tuple(data.draw(st.lists(st.sampled_from(excluded), min_size=1, max_size=3,
                                                   unique=True))))
    if kind == "mapping":
        phone, other = mapping.headers.index("Phone"), mapping.headers.index("Other Phone")
        fields = list(mapping.fields)
        fields[phone], fields[other] = fields[other], fields[phone]  # the other column feeds the phone
        return op_kinds.MappingChange.of(mapping, fields)
    if kind == "plug-in":
        return Shout(data.draw(st.sampled_from(["first_name", "email", "region"])))
    if kind == "convert":
        from importer.review.conversions import Conversion, Replace

        return data.draw(st.sampled_from([
            Conversion("region", {"Ashanti": "VOLTA", "": "Kumasi", "kumasi": "ASHANTI"}),
            Replace("first_name", "KOFI", "Kwame", match_case=False), Replace("region", "", "Tema", whole_cell=True),
            Replace("phone", "24", "54"), Conversion("email", {"": "new@example.com"})]))
    return None


@pytest.mark.parametrize(("backend", "snapshot"), [("sqlite", True), ("sqlite", False),
                                                   pytest.param("postgresql", True, marks=pytest.mark.postgres)])
def test_replaying_saved_operations_equals_applying_them_live(backend: str, snapshot: bool,
                                                               request: pytest.FixtureRequest) -> None:
    """Replay from the snapshot (the file as read and checked) or from the file: the same as applied live."""
    engine = ready_engine(request.getfixturevalue(f"{backend}_url" if backend == "sqlite" else "pg_url"))
    data = csv_file(14)
    initial = read_upload(data, "kumasi.csv", SETTINGS).mapping

    @hyp_settings(max_examples=40 if backend == "sqlite" else 15, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow])
    @given(st.data())
    def check(draw: st.DataObject) -> None:
        opened = new_workspace(engine, data, snapshot=snapshot)
        wid = opened.info.id
        done: list[Any] = []  # every operation saved, in order, with the active ones flagged via history
        for _ in range(draw.draw(st.integers(1, 9))):
            step = draw.draw(st.sampled_from(["op", "op", "op", "undo", "redo"]))
            if step == "undo":
                ws.undo(engine, wid)
                opened = ws.open_workspace(engine, wid, SETTINGS)
                continue
            if step == "redo":
                ws.redo(engine, wid)
                opened = ws.open_workspace(engine, wid, SETTINGS)
                continue
            live = live_fold(data, initial, [done[s - 1] for s in opened.seqs])
            excluded = sorted(set(read_upload(data, "k.csv", SETTINGS, mapping=opened.upload.mapping)
                                  .checked.original.index) - set(live.original.index))
            op = draw_operation(draw, live, excluded, opened.upload.mapping)
            if op is None:
                continue
            opened = ws.perform(engine, opened, op, SETTINGS)
            done.extend([None] * (opened.version - len(done) - 1) + [op])  # seqs skip what a redo stack held
            assert_same(opened.upload.checked, live_fold(data, initial, [done[s - 1] for s in opened.seqs]))
        replayed = ws.replay(engine, wid, SETTINGS)
        active = [e.seq for e in ws.history(engine, wid) if not e.undone]
        expected = live_fold(data, initial, [done[s - 1] for s in active])
        assert_same(replayed.checked, expected)
        # and without a snapshot to start from or to store (a resume's replay): the columns held in memory
        stored = ws.load_workspace(engine, wid, SETTINGS)
        bare = ws_replay.replay_operations(stored.data, stored.info.file_name, SETTINGS, stored.info.sheet, stored.mapping,
                                    [op for _, op in stored.operations])
        assert_same(bare.checked, expected)

    check()


# --- resume from a workspace ------------------------------------------------------------------------------


def test_an_interrupted_run_resumes_from_its_workspace_with_the_fixes_kept(database_url: str) -> None:
    engine = ready_engine(database_url)
    data = csv_file(60)
    opened = new_workspace(engine, data)
    opened = ws.perform(engine, opened, op_kinds.BulkFix("region", "ASHANTI"), SETTINGS)
    opened = ws.perform(engine, opened, op_kinds.BulkFix("phones"), SETTINGS)

    def stop(progress: Any) -> None:
        if progress.rows_done >= 20:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_upload(engine, opened.upload, SETTINGS, batch_size=10, progress=stop)
    with engine.begin() as conn:  # what the run records once load.py takes the workspace (see the README)
        run_id = conn.execute(sa.text("SELECT id FROM import_runs")).scalar_one()
        settings_json = get_run(engine, run_id).settings | ws_resume.workspace_run_settings(opened)
        conn.execute(sa.text("UPDATE import_runs SET workspace_id = :w, status = 'interrupted' WHERE id = :r"),
                     {"w": opened.info.id, "r": run_id})
        conn.execute(sa.update(sa.table("import_runs", sa.column("id"), sa.column("settings", sa.JSON)))
                     .where(sa.column("id") == run_id).values(settings=settings_json))
    opened_later = ws.perform(engine, opened, op_kinds.BulkFix("region", "VOLTA"), SETTINGS)  # edits after the run
    assert ws.history(engine, opened_later.info.id)[-1].seq == 3
    upload = ws_resume.upload_for_workspace_resume(engine, run_id, SETTINGS)
    assert_same(upload.checked, opened.upload.checked)  # what the run was importing, not the later state
    result = import_upload(engine, upload, SETTINGS, batch_size=10)
    assert result.resumed and result.run_id == run_id
    with engine.connect() as conn:
        regions = dict(conn.execute(sa.text("SELECT region, count(*) FROM customers GROUP BY region")).all())
    assert regions == {"ASHANTI": result.total_created}
    with pytest.raises(RunError, match="only an interrupted run"):
        ws_resume.upload_for_workspace_resume(engine, run_id, SETTINGS)


def test_resume_without_a_workspace_says_to_upload_again(database_url: str) -> None:
    engine = ready_engine(database_url)
    upload = read_upload(csv_file(30), "kumasi.csv", SETTINGS)

    def stop(progress: Any) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_upload(engine, upload, SETTINGS, batch_size=10, progress=stop)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE import_runs SET status = 'interrupted'"))
        run_id = conn.execute(sa.text("SELECT id FROM import_runs")).scalar_one()
    with pytest.raises(RunError, match=f"run #{run_id} was not imported from a saved workspace; upload kumasi.csv"):
        ws_resume.upload_for_workspace_resume(engine, run_id, SETTINGS)


# --- stale dry runs ---------------------------------------------------------------------------------------


def test_a_stale_dry_run_is_named(database_url: str) -> None:
    engine = ready_engine(database_url)
    upload = read_upload(csv_file(), "kumasi.csv", SETTINGS)
    other = read_upload(csv_file(30), "tema.csv", SETTINGS)
    seen = staleness.database_state(engine)
    import_upload(engine, upload, SETTINGS, dry_run=True)
    assert staleness.stale_reason(engine, seen, upload.sha256) is None  # a dry run changes nothing
    run = import_upload(engine, upload, SETTINGS, user_name="kofi")
    assert staleness.stale_reason(engine, seen, upload.sha256) == (
        f"Run #{run.run_id} (kofi) imported this file just now; run the dry run again.")
    seen = staleness.database_state(engine)
    assert staleness.stale_reason(engine, seen, upload.sha256) is None
    second = import_upload(engine, other, SETTINGS)
    assert staleness.stale_reason(engine, seen, upload.sha256) == (
        f"Run #{second.run_id} imported tema.csv just now; run the dry run again.")
    seen = staleness.database_state(engine)
    undo(engine, run.run_id)
    assert staleness.stale_reason(engine, seen, upload.sha256) == (
        f"Run #{run.run_id} (kofi) of this file was undone just now; run the dry run again.")


def test_state_of_a_database_without_tables(sqlite_url: str) -> None:
    from importer.database.schema import make_engine

    engine = make_engine(sqlite_url)
    assert staleness.database_state(engine) == staleness.DatabaseState()
    assert ws.expire_workspaces(engine, 14) == 0


def test_ago_words() -> None:
    assert staleness.ago(ws.now()) == "just now"
    assert staleness.ago(ws.now() - timedelta(minutes=2, seconds=5)) == "2 minutes ago"
    assert staleness.ago(ws.now() - timedelta(hours=1)) == "1 hour ago"
    assert staleness.ago(ws.now() - timedelta(days=3)) == "3 days ago"


def test_value_conversions_of_importer_convert_are_replayed(database_url: str) -> None:
    from importer.review.conversions import Conversion, Replace

    engine = ready_engine(database_url)
    data = csv_file()
    opened = new_workspace(engine, data)
    opened = ws.perform(engine, opened, Conversion("region", {"": "Kumasi"}), SETTINGS)
    opened = ws.perform(engine, opened, Replace("first_name", "kofi", "Kwame"), SETTINGS)
    assert [e.summary for e in ws.history(engine, opened.info.id)] == [
        "Region: (blank) → Kumasi", "First Name: text 'kofi' → 'Kwame'"]
    assert_same(ws.replay(engine, opened.info.id, SETTINGS).checked, opened.upload.checked)
    assert set(opened.upload.checked.original["first_name"]) <= {"Kwame", ""}


def test_excluded_rows_keep_their_text_through_fixes_and_come_back_as_they_were(database_url: str) -> None:
    engine = ready_engine(database_url)
    data = csv_file()
    opened = new_workspace(engine, data)
    edit = op_kinds.CellEdit.of(opened.upload.checked, {4: {"phone": "0201234567"}})
    ops = [edit, op_kinds.Exclude((3, 4)), op_kinds.BulkFix("trim"), op_kinds.BulkFix("names"), op_kinds.Include((3, 4)),
           op_kinds.Exclude((2,)),  # row 7 repeats row 3's mark: with row 3 back it fails, with row 2 gone too
           op_kinds.BulkFix("region", "VOLTA", only_failing=True)]
    for op in ops:
        opened = ws.perform(engine, opened, op, SETTINGS)
    live = live_fold(data, None, ops)
    assert_same(opened.upload.checked, live)
    assert_same(ws.replay(engine, opened.info.id, SETTINGS).checked, live)
    assert live.original.at[3, "shipping_mark"] == "pm1  kofi"  # untrimmed: it was excluded during the trim
    assert live.original.at[4, "phone"] == "0201234567"


def _snapshot_meta(engine: sa.Engine, workspace_id: int) -> dict[str, Any]:
    import json
    import zipfile

    with engine.connect() as conn:
        blob = conn.execute(sa.select(schema.workspaces.c.snapshot).where(schema.workspaces.c.id == workspace_id)).scalar_one()
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        return dict(json.loads(archive.read("meta.json")))


def test_a_mapping_change_reads_the_file_once_and_later_replays_start_from_its_snapshot(
        database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first replay with a new mapping reads the file and stores its snapshot; a refresh then starts
    from it (no read), with the same frame as reading the file; undoing the change brings the workspace's
    own reading back the same way."""
    engine = ready_engine(database_url)
    opened = new_workspace(engine, csv_file(30))
    wid = opened.info.id
    opened = ws.perform(engine, opened, op_kinds.BulkFix("region", "ASHANTI"), SETTINGS)
    fields = [None if f == "company_name" else f for f in opened.upload.mapping.fields]
    reads: list[str] = []
    real_read = ws_replay._read_text
    monkeypatch.setattr(ws_replay, "_read_text", lambda *a, **k: (reads.append("read"), real_read(*a, **k))[1])
    changed = ws.perform(engine, opened, op_kinds.MappingChange.of(opened.upload.mapping, fields), SETTINGS)
    assert reads == ["read"] and _snapshot_meta(engine, wid)["remapped"] is True
    edit = op_kinds.CellEdit.of(changed.upload.checked, {3: {"phone": "0241234567"}})
    changed = ws.perform(engine, changed, edit, SETTINGS)
    refreshed = ws.open_workspace(engine, wid, SETTINGS)
    assert reads == ["read"]  # from the stored snapshot
    assert set(refreshed.upload.checked.original["company_name"]) == {""}
    assert_same(refreshed.upload.checked, changed.upload.checked)
    with engine.begin() as conn:  # the same frame as reading the file with the mapping change again
        conn.execute(schema.workspaces.update().where(schema.workspaces.c.id == wid).values(snapshot=None))
    ws.SHARED.clear()  # replayed, not the frame `refreshed` shares (importer.workspace.shared)
    assert_same(ws.open_workspace(engine, wid, SETTINGS).upload.checked, changed.upload.checked)
    assert reads == ["read", "read"]
    ws.undo(engine, wid)
    ws.undo(engine, wid)  # the edit, then the mapping change: the workspace's own mapping again
    back = ws.open_workspace(engine, wid, SETTINGS)
    assert reads == ["read", "read", "read"] and not _snapshot_meta(engine, wid)["remapped"]
    assert "Trading Ltd" in set(back.upload.checked.original["company_name"])
    ws.SHARED.clear()
    assert_same(ws.open_workspace(engine, wid, SETTINGS).upload.checked, back.upload.checked)
    assert reads == ["read", "read", "read"]


def test_a_snapshot_of_an_older_format_is_read_again_from_the_file_and_stored_anew(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Snapshots stored before the format changed (version 1 held Parquet frames) are not used: the first
    replay reads the file and stores a snapshot of the current format, which later replays start from."""
    import json
    import zipfile

    engine = ready_engine(sqlite_url)
    opened = new_workspace(engine, csv_file(30))
    wid = opened.info.id
    opened = ws.perform(engine, opened, op_kinds.BulkFix("region", "ASHANTI"), SETTINGS)
    with engine.connect() as conn:
        blob = conn.execute(sa.select(schema.workspaces.c.snapshot).where(schema.workspaces.c.id == wid)).scalar_one()
    old = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(blob)) as current, zipfile.ZipFile(old, "w") as archive:
        for name in current.namelist():
            member = current.read(name)
            archive.writestr(name, json.dumps({**json.loads(member), "version": 1}) if name == "meta.json" else member)
    with engine.begin() as conn:
        conn.execute(schema.workspaces.update().where(schema.workspaces.c.id == wid).values(snapshot=old.getvalue()))
    reads: list[str] = []
    real_read = ws_replay._read_text
    monkeypatch.setattr(ws_replay, "_read_text", lambda *a, **k: (reads.append("read"), real_read(*a, **k))[1])
    assert_same(ws.open_workspace(engine, wid, SETTINGS).upload.checked, opened.upload.checked)
    assert reads == ["read"] and _snapshot_meta(engine, wid)["version"] == 2
    ws.SHARED.clear()
    assert_same(ws.open_workspace(engine, wid, SETTINGS).upload.checked, opened.upload.checked)
    assert reads == ["read"]
