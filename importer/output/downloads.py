"""Downloads served from disk: an export or a failure report is written in chunks to a temporary file, and the
dashboard's front door (importer.server.front_door) sends that file in chunks to the browser, then deletes it.

Streamlit's own download button holds its whole file in the server's memory (bytes, plus a copy while it is
sent): the Excel export of 250,000 customers with long fields took the server past 1.2 GB, and a zipped CSV
stayed in memory after its tab had closed. Here nothing whole-file is held: the file is written a chunk at a
time (customer_export and failure_report stream), the session keeps only a token, and the file goes when its
download has been sent, when its session closes (`discard_owners`, called by the dashboard's janitor), or
after MAX_AGE_SECONDS whatever happens.

    path = export_file(engine, "xlsx", text="kofi")
    token = offer(path, "customers-kofi.xlsx", "application/zip", owner=session_id)
    ...  GET <app>/_importer/download/<token>  ->  send_chunks(path), then the file is deleted
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from importer.output.customer_export import CSV_FOR_EXCEL, export_customers
from importer.output.failure_report import ReportRow, write_report

# The URL path a download is served at, under the app's own path: <app>/_importer/download/<token>.
ROUTE = "_importer/download/"
CHUNK_BYTES = 256 * 1024
# A download not fetched within this long is deleted anyway (a tab left open over lunch builds it again).
MAX_AGE_SECONDS = 30 * 60
_PREFIX = "importer-download-"


@dataclass(frozen=True)
class Offered:
    """A file waiting to be downloaded: where it is, the name and type it is sent with, whose it is."""

    path: Path
    file_name: str
    mime: str
    owner: str | None
    size: int
    created: float


_offered: dict[str, Offered] = {}
_lock = threading.Lock()


def _temporary(suffix: str) -> tuple[Any, Path]:
    """A new temporary file (kept when closed: the download route deletes it) and its path."""
    handle = tempfile.NamedTemporaryFile(prefix=_PREFIX, suffix=suffix, delete=False)  # noqa: SIM115
    return handle, Path(handle.name)


def export_file(engine: sa.Engine, fmt: str, text: str | None = None, *, region: str | None = None,
                run_id: int | None = None, csv_for: str = CSV_FOR_EXCEL) -> Path:
    """The Customers page's export written to a temporary file as it is read from the database (its path);
    the file is removed again if writing fails."""
    handle, path = _temporary(f".{fmt}")
    try:
        with handle:
            export_customers(engine, fmt, handle, text, region=region, run_id=run_id, csv_for=csv_for)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def report_file(failed: Iterable[ReportRow], fmt: str) -> Path:
    """A failure report written to a temporary file as its rows come (its path)."""
    handle, path = _temporary(f".{fmt}")
    try:
        with handle:
            write_report(failed, fmt, handle)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def offer(path: Path, file_name: str, mime: str, owner: str | None = None) -> str:
    """Register a written file for one download; the token of its URL (ROUTE + token). Files older than
    MAX_AGE_SECONDS are deleted first."""
    discard_expired()
    token = secrets.token_urlsafe(24)
    with _lock:
        _offered[token] = Offered(Path(path), file_name, mime, owner, Path(path).stat().st_size, time.monotonic())
    return token


def offered(token: str) -> Offered | None:
    """The file a token offers, if it is still there."""
    with _lock:
        found = _offered.get(token)
    return found if found is not None and found.path.exists() else None


def take(token: str) -> Offered | None:
    """The file a token offers, unregistered (the route sends it once, then deletes it)."""
    with _lock:
        found = _offered.pop(token, None)
    if found is not None and not found.path.exists():
        return None
    return found


def send_chunks(path: Path, size: int = CHUNK_BYTES) -> Iterator[bytes]:
    """The file's bytes, `size` at a time."""
    with open(path, "rb") as handle:
        while chunk := handle.read(size):
            yield chunk


def _delete(entries: Iterable[Offered]) -> None:
    for entry in entries:
        with contextlib.suppress(OSError):
            entry.path.unlink(missing_ok=True)


def discard(token: str | None) -> None:
    """Delete an offered file that will not be downloaded (the page built another one)."""
    if not token:
        return
    with _lock:
        found = _offered.pop(token, None)
    _delete([found] if found is not None else [])


def delete_file(path: Path) -> None:
    """Delete a file once it has been sent."""
    with contextlib.suppress(OSError):
        os.unlink(path)


def discard_owners(owners: Iterable[str]) -> None:
    """Delete every file offered to these sessions (they closed)."""
    gone = set(owners)
    with _lock:
        tokens = [t for t, entry in _offered.items() if entry.owner in gone]
        entries = [_offered.pop(t) for t in tokens]
    _delete(entries)


def discard_expired(now: float | None = None) -> None:
    """Delete the offered files older than MAX_AGE_SECONDS."""
    now = time.monotonic() if now is None else now
    with _lock:
        tokens = [t for t, entry in _offered.items() if now - entry.created > MAX_AGE_SECONDS]
        entries = [_offered.pop(t) for t in tokens]
    _delete(entries)


__all__ = ["CHUNK_BYTES", "MAX_AGE_SECONDS", "ROUTE", "Offered", "delete_file", "discard", "discard_expired",
           "discard_owners", "export_file", "offer", "offered", "report_file", "send_chunks", "take"]
