"""Many tabs, one copy: the sessions showing the same state of a workspace share one replayed frame.

A replay of 100,000 rows holds about 80 MB (its text and normalised frames, its errors); six tabs of one
analyst on the same workspace held six of them. The process keeps, per state of a workspace, the Opened
the replay gave, and hands the same one to every session that opens that state. The key names the state
by what decides the frame: the database, the workspace, its file, sheet and mapping, its active operations
(seq, kind and payload: an undo followed by a new change may reuse a seq) and the settings.

- The frames are never written in place (an operation makes a new Checked, pandas copies on write), so a
  session that changes its frame gets a copy of its own and the other sessions keep theirs until they
  reload.
- Sessions hold the Upload; the cache holds it by a weak reference, so an entry goes when the last session
  lets its upload go (an edit, another file, an import, the tab closed). A bounded number of entries is
  tracked (MAX_ENTRIES): past it the oldest is no longer shared (its sessions keep it).
- Thread-safe: the dashboard runs each session's script on a thread of its own. Sessions opening the same
  state at once replay it once (the others wait for it, then share it).
"""

from __future__ import annotations

import hashlib
import json
import threading
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

MAX_ENTRIES = 64
"""States of workspaces shared at once (each is one frame some session holds anyway)."""

T = TypeVar("T")  # what is shared: held weakly
E = TypeVar("E")  # what goes with it: held as long as the shared value lives


def state_key(database: str, workspace_id: int, file_sha256: str, sheet: str | None, mapping: Any,
              operations: Iterable[tuple[int, str, Any]], settings: Hashable) -> tuple[Any, ...]:
    """The key of one state of a workspace: (database, workspace id, digest of what makes its frame).
    operations: (seq, kind, payload) of the active ones, in order."""
    digest = hashlib.sha256()
    digest.update(json.dumps([file_sha256, sheet, mapping], sort_keys=True, default=str).encode())
    for seq, kind, payload in operations:
        digest.update(json.dumps([seq, kind, payload], sort_keys=True, default=str).encode())
    return database, workspace_id, digest.hexdigest(), settings


@dataclass
class _Entry(Generic[T, E]):
    ref: weakref.ref[T]
    extra: E


class SharedFrames(Generic[T, E]):
    """Values shared by key while something else holds them (weak references), each with its extra."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, _Entry[T, E]] = OrderedDict()
        self._flights: dict[Hashable, list[Any]] = {}  # key -> [lock, waiters]: one build per key at a time
        # Weak-reference callbacks run wherever the collector does (even inside this class's lock): they only
        # note the dead reference, and the next call under the lock sweeps it.
        self._dead: deque[tuple[Hashable, weakref.ref[T]]] = deque()

    def _sweep(self) -> None:
        while self._dead:
            key, ref = self._dead.popleft()
            entry = self._entries.get(key)
            if entry is not None and entry.ref is ref:
                del self._entries[key]

    def get(self, key: Hashable) -> tuple[T, E] | None:
        """The value shared under key and its extra, if some holder still has it."""
        with self._lock:
            self._sweep()
            entry = self._entries.get(key)
            value = None if entry is None else entry.ref()
            if entry is None or value is None:
                return None
            self._entries.move_to_end(key)
            return value, entry.extra

    def put(self, key: Hashable, value: T, extra: E) -> None:
        """Share value under key (until its last holder lets it go)."""
        dead = self._dead

        def gone(ref: weakref.ref[T], key: Hashable = key) -> None:
            dead.append((key, ref))

        with self._lock:
            self._sweep()
            self._entries[key] = _Entry(weakref.ref(value, gone), extra)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def offer(self, key: Hashable, value: T, extra: E) -> None:
        """Share value under key unless a value some holder has is shared there already."""
        if self.get(key) is None:
            self.put(key, value, extra)

    def shared(self, key: Hashable, build: Callable[[], tuple[T, E]]) -> tuple[T, E]:
        """The value shared under key, else build() shared: sessions asking at once build it once."""
        found = self.get(key)
        if found is not None:
            return found
        with self._lock:
            flight = self._flights.setdefault(key, [threading.Lock(), 0])
            flight[1] += 1
        try:
            with flight[0]:
                found = self.get(key)
                if found is None:
                    found = build()
                    self.put(key, *found)
                return found
        finally:
            with self._lock:
                flight[1] -= 1
                if not flight[1]:
                    self._flights.pop(key, None)

    def __len__(self) -> int:
        """Entries whose value some holder still has."""
        with self._lock:
            self._sweep()
            return sum(1 for entry in self._entries.values() if entry.ref() is not None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._dead.clear()
