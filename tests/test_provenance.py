"""A run started from a workspace records the workspace and the operation it reached: its resume replays
exactly that state, the file as it is never adopts it (the CLI says what to do, exit 2), and no change is
lost to a running import. On SQLite and PostgreSQL (issue 19, items 2 and 3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from importer.api import import_upload
from importer.cli import main
from importer.errors import ResumeRefused, WorkspaceBusy
from importer.review import operations as op_kinds
from importer.workspace import resume as ws_resume
from importer.workspace import store as ws
from tests.support import SETTINGS, ready_engine
from tests.test_workspace import csv_file, new_workspace

EXCLUDED = tuple(range(30, 40))  # source rows (data rows start at 2)


def reviewed(engine: sa.Engine) -> ws.Opened:
    opened = new_workspace(engine, csv_file(60))
    opened = ws.perform(engine, opened, op_kinds.Exclude(EXCLUDED, "not ours"), SETTINGS)
    return ws.perform(engine, opened, op_kinds.CellEdit(((10, "first_name", "kofi", "Yaw"),)), SETTINGS)


def cut_off(engine: sa.Engine, opened: ws.Opened) -> int:
    """Tab A's import of the workspace, killed after 20 rows: the run is left interrupted with its workspace."""
    def stop(progress: Any) -> None:
        if progress.rows_done >= 20:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_upload(engine, opened.upload, SETTINGS, batch_size=10, progress=stop,
                      workspace=(opened.info.id, opened.seqs))
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT id FROM import_runs")).scalar_one()


def marks(engine: sa.Engine) -> dict[int, str]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.text("SELECT source_row_number, first_name FROM customers")).all())


def test_the_run_records_its_workspace_and_seq(database_url: str) -> None:
    engine = ready_engine(database_url)
    opened = reviewed(engine)
    run_id = cut_off(engine, opened)
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT workspace_id, workspace_seq, status FROM import_runs WHERE id = :r"),
                           {"r": run_id}).one()
    assert tuple(row) == (opened.info.id, opened.version, "interrupted") and opened.version == 2


def test_scenario_a_the_raw_file_never_adopts_a_reviewed_run(database_url: str, tmp_path: Path, capsys) -> None:
    engine = ready_engine(database_url)
    opened = reviewed(engine)
    run_id = cut_off(engine, opened)
    path = tmp_path / "kumasi.csv"
    path.write_bytes(csv_file(60))
    code = main(["import", str(path), "--database-url", database_url])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    wid = opened.info.id
    assert err == (f"error: Run #{run_id} was started from a reviewed workspace (10 rows excluded, 1 edit) and was "
                   f"cut off after 20 rows: importing kumasi.csv as it is would not resume it (the fixes are in "
                   f"workspace {wid}, not in the file). Resume it in the dashboard or with `--workspace {wid}`; "
                   f"`--new-run` imports the file as it is (a new run; run #{run_id} stays resumable)\n")
    with pytest.raises(ResumeRefused):  # the engine refuses too, whoever calls it
        import_upload(engine, opened.upload.__class__(**{**opened.upload.__dict__, "workspace": None}), SETTINGS)
    assert not set(marks(engine)) & set(EXCLUDED)
    # --workspace resumes it with the same exclusions and edit
    code = main(["import", "--workspace", str(wid), "--database-url", database_url])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"(run {run_id}, resumed)" in out
    created = marks(engine)
    assert not set(created) & set(EXCLUDED) and created[10] == "Yaw"
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM import_runs")).scalar_one() == 1
        assert conn.execute(sa.text("SELECT count(*) FROM workspaces")).scalar_one() == 0  # done with


def test_a_workspace_run_with_no_change_is_resumed_by_the_file_as_it_is(database_url: str, tmp_path: Path,
                                                                        capsys) -> None:
    """A workspace with no operation imported the file as it is: the plain CLI import of the same bytes
    resumes its run (nothing to lose), as a re-upload on the dashboard does."""
    engine = ready_engine(database_url)
    opened = new_workspace(engine, csv_file(60))
    run_id = cut_off(engine, opened)
    path = tmp_path / "kumasi.csv"
    path.write_bytes(csv_file(60))
    code = main(["import", str(path), "--database-url", database_url])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"(run {run_id}, resumed)" in out
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM import_runs")).scalar_one() == 1
        counts = conn.execute(sa.text("SELECT count(*), count(DISTINCT source_row_number) FROM customers")).one()
    fresh = import_upload(ready_engine(f"sqlite:///{tmp_path / 'fresh.db'}"), opened.upload, SETTINGS, dry_run=True)
    assert tuple(counts) == (fresh.total_created, fresh.total_created)  # each valid row once, none twice


def test_new_run_imports_the_file_as_it_is_and_leaves_the_old_run_resumable(database_url: str, tmp_path: Path,
                                                                            capsys) -> None:
    engine = ready_engine(database_url)
    opened = reviewed(engine)
    run_id = cut_off(engine, opened)
    path = tmp_path / "kumasi.csv"
    path.write_bytes(csv_file(60))
    code = main(["import", str(path), "--new-run", "--database-url", database_url])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"(run {run_id + 1})" in out
    with engine.connect() as conn:
        statuses = dict(conn.execute(sa.text("SELECT id, status FROM import_runs")).all())
    assert statuses == {run_id: "interrupted", run_id + 1: "completed"}
    assert ws_resume.run_of_workspace(engine, opened.info.id) == run_id


def test_a_resume_replays_the_state_the_run_began_with(database_url: str, capsys) -> None:
    engine = ready_engine(database_url)
    opened = reviewed(engine)
    run_id = cut_off(engine, opened)
    later = ws.perform(engine, opened, op_kinds.Exclude((11,), "later"), SETTINGS)  # after the run stopped
    upload = ws_resume.upload_for_workspace_resume(engine, run_id, SETTINGS)
    assert upload.workspace == (opened.info.id, opened.seqs)
    assert 11 in upload.checked.original.index and 11 not in later.upload.checked.original.index
    code = main(["import", "--workspace", str(opened.info.id), "--database-url", SETTINGS_URL(engine)])
    _, err = capsys.readouterr()
    assert code == 0, err
    assert "note: 1 change made to workspace" in err and "were not imported" in err
    assert 11 in marks(engine)  # the run's state: row 11 was not excluded when it began
    assert ws.load_workspace(engine, opened.info.id, SETTINGS).version == 3  # kept, with the later change


def SETTINGS_URL(engine: sa.Engine) -> str:  # noqa: N802 - reads like the constant it stands for
    return engine.url.render_as_string(hide_password=False)


def test_scenario_b_no_change_is_lost_to_a_running_import(database_url: str) -> None:
    engine = ready_engine(database_url)
    opened = reviewed(engine)
    refused: list[str] = []

    def tab_b(progress: Any) -> None:
        if progress.rows_done == 10:
            try:
                ws.perform(engine, ws.open_workspace(engine, opened.info.id, SETTINGS),
                           op_kinds.CellEdit(((12, "first_name", "kofi", "Esi"),)), SETTINGS)
            except WorkspaceBusy as exc:
                refused.append(str(exc))

    result = import_upload(engine, opened.upload, SETTINGS, batch_size=10, progress=tab_b,
                           workspace=(opened.info.id, opened.seqs))
    assert refused == [f"Run #{result.run_id} is importing this file; your change would not be in it. "
                       "Wait for it to finish."]
    assert ws.discard_workspace(engine, opened.info.id) == 0  # nothing newer: done with


def test_a_change_made_before_the_run_recorded_keeps_the_workspace(database_url: str) -> None:
    engine = ready_engine(database_url)
    opened = reviewed(engine)
    newer = ws.perform(engine, opened, op_kinds.CellEdit(((12, "first_name", "kofi", "Esi"),)), SETTINGS)
    result = import_upload(engine, opened.upload, SETTINGS, workspace=(opened.info.id, opened.seqs))
    assert ws_resume.changes_after_run(engine, opened.info.id, result.run_id) == 1
    assert ws.discard_workspace(engine, opened.info.id) == 1  # kept: the edit is not in the run
    assert ws.load_workspace(engine, newer.info.id, SETTINGS).version == newer.version
    ws.discard_workspace(engine, opened.info.id, "ama")  # the analyst's own Discard still discards
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM workspaces")).scalar_one() == 0
