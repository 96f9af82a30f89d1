"""The engine's few exceptions. The CLI and the dashboard turn them into one-line messages.

Each carries what a face needs to act on it besides the sentence: the mapping that lacks columns (so
the dashboard can offer to fix it without reading the file again), the limit that was passed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importer.mapping.columns import ColumnMapping


class ImporterError(Exception):
    """Base of every error the engine raises on purpose.

    str(error) is the sentence for people (an analyst on the dashboard); `detail`, when given, is what an
    administrator or the command line needs besides it (a command, a setting's name), kept out of that
    sentence: the CLI prints both, the dashboard shows the detail only under "Details".
    """

    def __init__(self, *args: object, detail: str | None = None) -> None:
        super().__init__(*args)
        self.detail = detail


class UsageError(ImporterError):
    """A command or setting was given a value it cannot take (exit status 2), not a problem of the file."""


class FileRefused(ImporterError):
    """The file cannot be used (exit status 2)."""


class UnsupportedFile(FileRefused):
    """The file is not a format the importer reads."""


class UnreadableFile(FileRefused):
    """The file is corrupt, truncated, encrypted or otherwise unreadable."""


class NoHeader(FileRefused):
    """No usable header row was found."""


class MissingColumns(FileRefused):
    """Required columns are missing from the header; `mapping` and `sheet` are what was detected."""

    def __init__(self, message: str, mapping: ColumnMapping | None = None, sheet: str | None = None, *,
                 detail: str | None = None) -> None:
        super().__init__(message, detail=detail)
        self.mapping, self.sheet = mapping, sheet


class LimitExceeded(FileRefused):
    """The file is over a size, row or inflation limit: `setting` (e.g. MAX_ROWS), its `limit`, what was `found`."""

    def __init__(self, message: str, *, setting: str | None = None, limit: int | None = None,
                 found: int | None = None) -> None:
        super().__init__(message)
        self.setting, self.limit, self.found = setting, limit, found


class HostileFile(FileRefused):
    """The file looks built to harm the reader (zip bomb, XML entity expansion)."""


class FileMismatch(FileRefused):
    """The file given to resume a run is not the file that run was importing."""


class DatabaseError(ImporterError):
    """The database cannot be reached or failed during the run (exit status 3)."""


class RunError(ImporterError):
    """A run cannot be acted on (unknown id, still running, already undone)."""


class WorkspaceError(ImporterError):
    """A workspace cannot be acted on: unknown, expired, discarded, someone else's, or a bad operation."""


class NotYours(ImporterError):
    """The acting account may not do this: it belongs to another account, and the actor is no admin
    (importer.database.accounts.check_may_act; the message names the owner and whom to ask)."""


class WorkspaceBusy(WorkspaceError):
    """A run is importing the workspace right now: a change made meanwhile would not be in it."""


class ResumeRefused(UsageError):
    """An import of a file whose interrupted run came from a reviewed workspace: it would not resume that run
    (the run's fixes are in the workspace, not in the file), and the caller did not ask for a new run."""

    def __init__(self, message: str, *, run_id: int, workspace_id: int) -> None:
        super().__init__(message)
        self.run_id, self.workspace_id = run_id, workspace_id


class WorkspaceChanged(WorkspaceError):
    """Another tab or instance changed the workspace since this frame was built."""


