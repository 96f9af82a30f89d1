"""The engine checks ownership (issue 21, part 2): another account cannot open, change, resume, discard or
undo what it does not own; an admin can; the refusal names the owner and whom to ask. Every run, undo,
operation and discard records who did it, and History (list_runs) names the real account of each run and
undo, the command line's as "<OS user> (command line)". On SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from importer import identity
from importer.api import import_upload, read_upload, upload_for_resume
from importer.cli import main
from importer.database import accounts
from importer.database.ledger import get_run, list_runs, undo
from importer.errors import NotYours
from importer.identity import Actor, dashboard_actor
from importer.review import operations as op_kinds
from importer.server import jobs
from importer.workspace import resume as ws_resume
from importer.workspace import store as ws
from tests.support import SETTINGS, ready_engine
from tests.test_workspace import csv_file, new_workspace

PASSWORD = "correct horse battery"
AMA, KOFI, ADMIN = dashboard_actor("ama"), dashboard_actor("kofi"), dashboard_actor("esi")
REFUSAL = r"it belongs to ama, and you are signed in as kofi\. Ask ama to do it, or an admin: esi\."


def with_accounts(database_url: str) -> sa.Engine:
    engine = ready_engine(database_url)
    accounts.add_account(engine, "ama", PASSWORD)
    accounts.add_account(engine, "kofi", PASSWORD)
    accounts.add_account(engine, "esi", PASSWORD, is_admin=True)
    return engine


def other_file() -> bytes:
    """Another branch list: none of csv_file's customers, so undoing one run does not wait on the other."""
    rows = [f"qm{i} yaa,Yaa,Asante{i},yaa{i}@example.com,20{i:07d},,,\n" for i in range(12)]
    return ("Shipping Mark,First Name,Last Name,Email,Phone,Region,Company,Other Phone\n" + "".join(rows)).encode()


def cut_off(engine: sa.Engine, opened: ws.Opened, who: Actor) -> int:
    """An import of the workspace by `who`, killed after 20 rows: interrupted, resumable from its workspace."""
    def stop(progress: Any) -> None:
        if progress.rows_done >= 20:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_upload(engine, opened.upload, SETTINGS, batch_size=10, progress=stop, user_name=who.name,
                      via=who.via, workspace=(opened.info.id, opened.seqs))
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT max(id) FROM import_runs")).scalar_one())


def test_another_account_cannot_open_change_or_discard_a_workspace(database_url: str) -> None:
    engine = with_accounts(database_url)
    opened = new_workspace(engine, csv_file(), owner="ama")
    wid = opened.info.id
    for attempt in (lambda: ws.open_workspace(engine, wid, SETTINGS, actor=KOFI),
                    lambda: ws.load_workspace(engine, wid, SETTINGS, actor=KOFI),
                    lambda: ws.perform(engine, opened, op_kinds.BulkFix("region", "ASHANTI"), SETTINGS, actor=KOFI),
                    lambda: ws.undo(engine, wid, KOFI),
                    lambda: ws.go_to(engine, wid, 0, KOFI),
                    lambda: ws.discard_workspace(engine, wid, KOFI)):
        with pytest.raises(NotYours, match=REFUSAL):
            attempt()
    assert ws.history(engine, wid) == []  # nothing was changed
    # A look-alike name is the same account, not another: " AMA " opens ama's workspace (it is hers).
    assert ws.open_workspace(engine, wid, SETTINGS, actor=dashboard_actor(" AMA ")).info.id == wid
    # The owner changes it: the operation records her.
    opened = ws.perform(engine, opened, op_kinds.BulkFix("region", "ASHANTI"), SETTINGS, actor=AMA)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT actor FROM workspace_operations WHERE workspace_id = :w"),
                            {"w": wid}).scalar_one() == "ama"
    with pytest.raises(NotYours, match="Cannot discard workspace"):
        ws.discard_workspace(engine, wid, KOFI)
    ws.discard_workspace(engine, wid, AMA)
    assert ws.list_workspaces(engine, "ama") == []


def test_an_admin_may_open_change_and_discard_anothers_workspace(database_url: str) -> None:
    engine = with_accounts(database_url)
    opened = new_workspace(engine, csv_file(), owner="ama")
    again = ws.open_workspace(engine, opened.info.id, SETTINGS, actor=ADMIN)
    again = ws.perform(engine, again, op_kinds.BulkFix("region", "ASHANTI"), SETTINGS, actor=ADMIN)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT actor FROM workspace_operations")).scalar_one() == "esi"
    ws.discard_workspace(engine, opened.info.id, ADMIN)
    assert ws.list_workspaces(engine, "ama") == []
    # A disabled admin is no admin.
    other = new_workspace(engine, csv_file(), owner="ama")
    accounts.disable_account(engine, "esi")
    with pytest.raises(NotYours, match="belongs to ama, and you are signed in as esi"):
        ws.open_workspace(engine, other.info.id, SETTINGS, actor=ADMIN)


def test_another_account_cannot_resume_a_run_an_admin_can(database_url: str) -> None:
    engine = with_accounts(database_url)
    opened = ws.perform(engine, new_workspace(engine, csv_file(60), owner="ama"),
                        op_kinds.Exclude((30, 31), "not ours"), SETTINGS, actor=AMA)
    run_id = cut_off(engine, opened, AMA)
    with pytest.raises(NotYours, match=rf"Cannot resume run #{run_id} \(workspace {opened.info.id}\): " + REFUSAL):
        ws_resume.upload_for_workspace_resume(engine, run_id, SETTINGS, actor=KOFI)
    with pytest.raises(NotYours, match=REFUSAL):  # the Import page's path: check_resume
        ws_resume.check_resume(engine, opened.upload, (opened.info.id, opened.seqs), SETTINGS, actor=KOFI)
    # The background job refuses as well, with the refusal as its one line; nothing was imported.
    job = jobs.start_import(engine, opened.upload, SETTINGS, user_name="kofi", workspace=(opened.info.id, opened.seqs),
                            budget_mb=400, owner_token="kofi's tab", actor=KOFI)
    assert job.wait(60)
    assert job.state is jobs.JobState.FAILED and job.error is not None and "belongs to ama" in job.error
    assert get_run(engine, run_id).rows_done == 20
    # The raw file's resume (upload it again) is checked too.
    with pytest.raises(NotYours, match=f"Cannot resume run #{run_id}"):
        upload_for_resume(engine, run_id, csv_file(60), "kumasi.csv", SETTINGS, actor=KOFI)
    # An admin resumes it: the run keeps ama as who started it, and records who resumed.
    upload = ws_resume.upload_for_workspace_resume(engine, run_id, SETTINGS, actor=ADMIN)
    result = import_upload(engine, upload, SETTINGS, user_name=ADMIN.name, via=ADMIN.via)
    assert result.run_id == run_id and result.resumed
    run = get_run(engine, run_id)
    assert run.user_name == "ama" and run.by == "ama"
    assert [(r["by"], r["via"]) for r in run.settings["resumes"]] == [("esi", "dashboard")]


def test_another_account_cannot_undo_a_run_an_admin_can_and_history_names_both(database_url: str) -> None:
    engine = with_accounts(database_url)
    first = import_upload(engine, read_upload(csv_file(10), "a.csv", SETTINGS), SETTINGS, user_name="ama",
                          via=identity.DASHBOARD)
    second = import_upload(engine, read_upload(other_file(), "b.csv", SETTINGS), SETTINGS, user_name="kofi",
                           via=identity.DASHBOARD)
    with pytest.raises(NotYours, match=rf"Cannot undo run #{first.run_id}: " + REFUSAL):
        undo(engine, first.run_id, KOFI)
    assert get_run(engine, first.run_id).undone_by is None
    undo(engine, second.run_id, KOFI)  # his own
    undo(engine, first.run_id, ADMIN)  # an admin undoes ama's
    by_id = {run.id: run for run in list_runs(engine)}
    assert (by_id[first.run_id].by, by_id[first.run_id].undone_by_label) == ("ama", "esi")
    assert (by_id[second.run_id].by, by_id[second.run_id].undone_by_label) == ("kofi", "kofi")
    assert by_id[first.run_id].to_json()["undone_by"] == "esi"


def test_the_command_line_records_the_os_user_and_may_act_on_any_workspace(
        database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI is the administrator's tool (it holds the database URL): it imports and undoes anyone's, and
    History says it was the command line, naming the OS user."""
    engine = with_accounts(database_url)
    monkeypatch.setattr(identity, "os_user", lambda: "kwame")
    opened = new_workspace(engine, csv_file(), owner="ama")
    assert main(["import", "--workspace", str(opened.info.id), "--database-url", database_url]) == 0
    run = list_runs(engine)[0]
    assert (run.user_name, run.via, run.by) == ("kwame", "command line", "kwame (command line)")
    assert main(["undo", str(run.id), "--database-url", database_url]) == 0
    run = get_run(engine, run.id)
    assert run.undone_by_label == "kwame (command line)"
    capsys.readouterr()
    assert main(["history", "--database-url", database_url]) == 0
    assert "(by kwame (command line), undone by kwame (command line))" in capsys.readouterr().out


def test_cancel_of_anothers_run_is_refused(database_url: str) -> None:
    engine = with_accounts(database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO import_runs (file_name, sha256, status, started_at, user_name) "
                             "VALUES ('kumasi.csv', 'x', 'running', CURRENT_TIMESTAMP, 'ama')"))
        run_id = int(conn.execute(sa.text("SELECT max(id) FROM import_runs")).scalar_one())
    with pytest.raises(NotYours, match=rf"Cannot cancel run #{run_id}: " + REFUSAL):
        jobs.request_cancel(engine, run_id, actor=KOFI)
    jobs.request_cancel(engine, run_id, actor=AMA)  # hers (not running anywhere: nothing to stop)
