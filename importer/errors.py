"""The engine's few exceptions. The CLI and the dashboard turn them into one-line messages."""


class ImporterError(Exception):
    """Base of every error the engine raises on purpose."""


class FileRefused(ImporterError):
    """The file cannot be used (exit status 2)."""


class UnsupportedFile(FileRefused):
    """The file is not a format the importer reads."""


class UnreadableFile(FileRefused):
    """The file is corrupt, truncated, encrypted or otherwise unreadable."""


class NoHeader(FileRefused):
    """No usable header row was found."""


class MissingColumns(FileRefused):
    """Required columns are missing from the header."""


class LimitExceeded(FileRefused):
    """The file is over a size, row or inflation limit."""


class HostileFile(FileRefused):
    """The file looks built to harm the reader (zip bomb, XML entity expansion)."""


class DatabaseError(ImporterError):
    """The database cannot be reached or failed during the run (exit status 3)."""


class RunError(ImporterError):
    """A run cannot be acted on (unknown id, still running, already undone)."""
