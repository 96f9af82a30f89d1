"""importer.workspace.shared: the tabs (sessions) of one workspace share one replayed frame, on a real SQLite
file and a real PostgreSQL; an edit in one tab makes that tab a copy of its own; entries go when the last
session lets the frame go; sessions opening at once replay it once."""

from __future__ import annotations

import gc
import threading
import weakref
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from importer.review import operations as op_kinds
from importer.workspace import store as ws
from importer.workspace.shared import SharedFrames
from tests.support import SETTINGS, ready_engine
from tests.test_workspace import assert_same, csv_file, new_workspace


def _frames(opened: ws.Opened) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Deep copies of a session's frames, to compare with later."""
    checked = opened.upload.checked
    return checked.original.copy(deep=True), checked.normalised.copy(deep=True)


def _unchanged(opened: ws.Opened, before: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    pd.testing.assert_frame_equal(opened.upload.checked.original, before[0])
    pd.testing.assert_frame_equal(opened.upload.checked.normalised, before[1])


@pytest.fixture
def replays(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The replays the store runs (the real one, counted)."""
    seen: list[str] = []
    real = ws.replay_operations

    def counted(*args: Any, **kwargs: Any) -> Any:
        seen.append("replay")
        return real(*args, **kwargs)

    monkeypatch.setattr(ws, "replay_operations", counted)
    return seen


def _workspace(engine: sa.Engine) -> int:
    opened = new_workspace(engine, csv_file(40))
    wid = opened.info.id
    ws.perform(engine, opened, op_kinds.BulkFix("region", "ASHANTI"), SETTINGS)
    del opened
    gc.collect()
    return wid


def test_two_sessions_opening_a_workspace_share_one_frame(database_url: str, replays: list[str]) -> None:
    engine = ready_engine(database_url)
    wid = _workspace(engine)
    replays.clear()
    first = ws.open_workspace(engine, wid, SETTINGS)
    second = ws.open_workspace(engine, wid, SETTINGS)
    assert second.upload is first.upload and second.excluded is first.excluded
    assert (second.version, second.seqs) == (first.version, first.seqs)
    assert replays == ["replay"]
    peeked = ws.shared_workspace(engine, wid, SETTINGS)
    assert peeked is not None and peeked.upload is first.upload


def test_an_edit_in_one_session_leaves_the_others_frame_until_it_reloads(database_url: str) -> None:
    engine = ready_engine(database_url)
    wid = _workspace(engine)
    mine, other = ws.open_workspace(engine, wid, SETTINGS), ws.open_workspace(engine, wid, SETTINGS)
    before = _frames(other)
    edit = op_kinds.CellEdit.of(mine.upload.checked, {3: {"phone": "0241234567", "first_name": "Ama"}})
    mine = ws.perform(engine, mine, edit, SETTINGS)
    mine = ws.perform(engine, mine, op_kinds.BulkFix("trim", None), SETTINGS)
    mine = ws.perform(engine, mine, op_kinds.Exclude((5, 6), "test"), SETTINGS)
    assert mine.upload is not other.upload
    assert mine.upload.checked.original.at[3, "first_name"] == "Ama"
    _unchanged(other, before)  # nothing written into the shared frame in place
    assert other.upload.checked.original.at[3, "first_name"] != "Ama"
    reloaded = ws.open_workspace(engine, wid, SETTINGS)
    assert reloaded.upload is not other.upload and reloaded.version == mine.version
    assert_same(reloaded.upload.checked, mine.upload.checked)
    _unchanged(other, before)


def test_an_undo_then_a_new_change_is_not_taken_for_the_state_it_replaced(database_url: str) -> None:
    """A tab holding an undone state shares nothing with a tab opening the state after a new change."""
    engine = ready_engine(database_url)
    wid = _workspace(engine)
    opened = ws.open_workspace(engine, wid, SETTINGS)
    edited = ws.perform(engine, opened, op_kinds.CellEdit.of(opened.upload.checked, {3: {"first_name": "Ama"}}),
                        SETTINGS)
    held = ws.open_workspace(engine, wid, SETTINGS)  # a tab showing the edit
    ws.undo(engine, wid)
    other = ws.perform(engine, ws.open_workspace(engine, wid, SETTINGS),
                       op_kinds.CellEdit.of(opened.upload.checked, {3: {"first_name": "Esi"}}), SETTINGS)
    assert other.seqs[:-1] == edited.seqs[:-1] and other.version != edited.version
    fresh = ws.open_workspace(engine, wid, SETTINGS)
    assert fresh.upload is not held.upload
    assert fresh.upload.checked.original.at[3, "first_name"] == "Esi"
    assert held.upload.checked.original.at[3, "first_name"] == "Ama"


def test_the_shared_frame_goes_when_the_last_session_lets_it_go(database_url: str, replays: list[str]) -> None:
    engine = ready_engine(database_url)
    wid = _workspace(engine)
    first, second = ws.open_workspace(engine, wid, SETTINGS), ws.open_workspace(engine, wid, SETTINGS)
    frame = weakref.ref(first.upload.checked.original)
    del first
    gc.collect()
    assert frame() is not None and ws.shared_workspace(engine, wid, SETTINGS) is not None
    del second
    gc.collect()
    assert frame() is None  # the cache kept no strong reference
    assert ws.shared_workspace(engine, wid, SETTINGS) is None
    replays.clear()
    ws.open_workspace(engine, wid, SETTINGS)
    assert replays == ["replay"]  # replayed again


def test_sessions_opening_at_once_replay_once_and_share(sqlite_url: str, replays: list[str]) -> None:
    engine = ready_engine(sqlite_url)
    wid = _workspace(engine)
    replays.clear()
    barrier = threading.Barrier(6)
    got: list[ws.Opened] = []
    errors: list[BaseException] = []

    def tab() -> None:
        try:
            barrier.wait()
            got.append(ws.open_workspace(engine, wid, SETTINGS))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=tab) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(got) == 6
    assert len({id(opened.upload) for opened in got}) == 1
    assert replays == ["replay"]


class _Frame:
    """A stand-in for an upload: anything weakly referable is shared the same way."""


def test_the_cache_is_bounded_and_thread_safe() -> None:
    shared: SharedFrames[_Frame, int] = SharedFrames(max_entries=3)
    held = [_Frame() for _ in range(5)]
    for number, value in enumerate(held):
        shared.put(number, value, number)
    assert len(shared) == 3 and shared.get(0) is None and shared.get(4) == (held[4], 4)
    builds: list[int] = []
    lock = threading.Lock()
    kept: list[Any] = []

    def worker(seed: int) -> None:
        for i in range(300):
            key = (seed + i) % 7

            def build(key: int = key) -> tuple[_Frame, int]:
                with lock:
                    builds.append(key)
                return _Frame(), key

            value, extra = shared.shared(key, build)
            assert extra == key
            if i % 3 == 0:
                kept.append(value)  # some values held, the others let go at once (their entries die)
            if i % 50 == 0:
                gc.collect()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(shared) <= 3
    del kept[:]
    gc.collect()
    assert len(shared) == 0


def test_a_frame_read_or_changed_in_a_session_is_shared_with_the_next_one_to_open_it(
        sqlite_url: str, replays: list[str]) -> None:
    """The upload as read (a new workspace) and a frame changed live and saved are offered to the sessions
    that open that state next (a refresh, another tab), unless the workspace moved on meanwhile."""
    engine = ready_engine(sqlite_url)
    opened = new_workspace(engine, csv_file(40))
    wid = opened.info.id
    edited = ws.perform(engine, opened, op_kinds.BulkFix("region", "ASHANTI"), SETTINGS)
    replays.clear()
    ws.share(engine, edited, SETTINGS)
    refreshed = ws.open_workspace(engine, wid, SETTINGS)
    assert refreshed.upload is edited.upload and refreshed.seqs == edited.seqs
    assert replays == []
    stale = edited
    ws.undo(engine, wid)
    del refreshed, edited
    gc.collect()
    ws.share(engine, stale, SETTINGS)  # no longer the workspace's state: not shared
    back = ws.open_workspace(engine, wid, SETTINGS)
    assert back.upload is not stale.upload
    assert back.upload is opened.upload and replays == []  # the state before the fix, still held by `opened`
    del back, opened
    gc.collect()
    assert ws.open_workspace(engine, wid, SETTINGS).upload is not stale.upload
    assert replays == ["replay"]
