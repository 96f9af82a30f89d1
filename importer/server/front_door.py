"""The ASGI layer in front of Streamlit's own routes (importer.server.serve installs it).

Two jobs that Streamlit cannot be configured to do:

- **Who the client is.** Behind the host's proxy every connection comes from the proxy, which *appends*
  the address it saw to X-Forwarded-For; whatever the client sent stays on the left. `client_address`
  therefore counts TRUSTED_PROXY_HOPS entries from the right (the connection's peer being the last hop)
  and never takes the leftmost; the result replaces the ASGI scope's client, which is what
  st.context.ip_address (and so the login throttle) reads. Uvicorn's own proxy-header handling is
  switched off (with FORWARDED_ALLOW_IPS='*' it took the leftmost, client-supplied entry).
- **Nothing before login.** `/_stcore/metrics` is refused to everyone (nothing here reads it; it told
  anyone the number of open sessions), and `/_stcore/upload_file/<session>/...` only accepts a file for a
  session the dashboard's gate opened (ui/auth.py calls `mark_signed_in`): a session that has not
  signed in cannot make the server hold its bytes. Refused before the body is read.
- **Bounded uploads per session.** A signed-in session may hold at most MAX_UPLOADS_PER_SESSION uploaded
  files at once, MAX_SESSION_UPLOAD_MB in all (what Streamlit's uploaded-file store holds for it, plus the
  new body's Content-Length, else the most Streamlit reads of one); an upload past either is refused (413)
  before its body is read, with a sentence saying what to do.

It also serves the downloads of importer.output.downloads (exports, failure reports) from disk, a chunk at a
time, at `<app>/_importer/download/<token>`: Streamlit's download button would hold the whole file in memory.
The file is deleted once it has been sent.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import quote

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_SESSIONS = 10_000
MB = 1024 * 1024
_METRICS = re.compile(r"(^|/)_stcore/metrics/?$")
_UPLOAD = re.compile(r"(^|/)_stcore/upload_file/([^/]+)(?:/([^/]+))?")
_DOWNLOAD = re.compile(r"(^|/)_importer/download/([A-Za-z0-9_-]{16,64})$")
_serving = threading.Event()  # set when the server puts a FrontDoor in front: the pages can link to downloads

_signed_in: OrderedDict[str, None] = OrderedDict()
_lock = threading.Lock()


# --- the sessions the gate opened (shared by the script threads and the server's event loop) ----------


def mark_signed_in(session_id: str) -> None:
    with _lock:
        _signed_in.pop(session_id, None)
        _signed_in[session_id] = None
        while len(_signed_in) > MAX_SESSIONS:
            _signed_in.popitem(last=False)


def mark_signed_out(session_id: str) -> None:
    with _lock:
        _signed_in.pop(session_id, None)


def is_signed_in(session_id: str) -> bool:
    with _lock:
        return session_id in _signed_in


# --- the client's address --------------------------------------------------------------------------


def client_address(peer: str | None, forwarded_for: Iterable[str], hops: int) -> str | None:
    """The client's address: the entry `hops` proxies before the connection's peer.

    forwarded_for holds the X-Forwarded-For header values in order. With hops=0 (no proxy) the peer;
    with hops=1 the rightmost X-Forwarded-For entry, the one the host's proxy appended. Entries to the
    left of it were sent by the client and are never used. With fewer entries than hops (a request that
    did not come through the whole chain) the leftmost there is.
    """
    if hops <= 0:
        return peer
    chain = [entry.strip() for value in forwarded_for for entry in value.split(",") if entry.strip()]
    if peer:
        chain.append(peer)
    if not chain:
        return peer
    return chain[max(0, len(chain) - 1 - hops)][:64]


def held_uploads(session_id: str, except_file: str | None = None) -> tuple[int, int]:
    """(files, bytes) Streamlit's uploaded-file store holds for a session (but `except_file`, which a new
    upload of the same id replaces); (0, 0) where there is no running Streamlit or no such store."""
    try:
        from streamlit.runtime import Runtime

        if not Runtime.exists():
            return 0, 0
        manager = Runtime.instance().uploaded_file_mgr
        lock = getattr(manager, "_lock", None)
        storage = getattr(manager, "file_storage", None)
        if storage is None or lock is None:
            return 0, 0
        with lock:
            files = [rec for file_id, rec in (storage.get(session_id) or {}).items() if file_id != except_file]
        return len(files), sum(len(rec.data) for rec in files)
    except Exception:  # noqa: BLE001 - a Streamlit without this store: the per-body limit still holds
        return 0, 0


def upload_refusal(held_files: int, held_bytes: int, new_bytes: int, max_files: int,
                   max_bytes: int) -> tuple[int, bytes] | None:
    """Whether a signed-in session may upload a body of `new_bytes` while it holds `held_files` files of
    `held_bytes`: None, or the refusal (status, text)."""
    if held_files + 1 > max_files:
        return 413, (f"Upload refused: this tab already holds {held_files} uploaded files, the most it may. Remove "
                     "one from the uploader (its x) or open a new tab, then upload again.\n").encode()
    if held_bytes + new_bytes > max_bytes:
        return 413, (f"Upload refused: with this file, this tab would hold {(held_bytes + new_bytes) / MB:,.0f} MB of "
                     f"uploads, over the {max_bytes / MB:,.0f} MB one tab may. Remove a file from the uploader "
                     "or upload a smaller one.\n").encode()
    return None


def _body_size(scope: Scope) -> int:
    """The request's Content-Length; without one (or a bad one), the most Streamlit reads of a body
    (server.maxUploadSize, which it enforces as the body streams)."""
    for name, value in scope.get("headers") or ():
        if name.lower() == b"content-length":
            try:
                return max(0, int(value.decode("latin-1").strip()))
            except ValueError:
                break
    try:
        from streamlit import config

        return int(config.get_option("server.maxUploadSize")) * MB
    except Exception:  # noqa: BLE001 - no Streamlit config here: its default
        return 200 * MB


class FrontDoor:
    """ASGI middleware: the client's real address into the scope, and nothing stored or told before login.

    max_uploads, max_upload_mb: what one session may hold (default: the MAX_UPLOADS_PER_SESSION and
    MAX_SESSION_UPLOAD_MB settings)."""

    def __init__(self, app: ASGIApp, hops: int = 0, max_uploads: int | None = None,
                 max_upload_mb: int | None = None) -> None:
        self.app = app
        self.hops = max(0, hops)
        if max_uploads is None or max_upload_mb is None:
            from importer.settings import Settings

            settings = Settings.from_env()
            max_uploads = settings.max_uploads_per_session if max_uploads is None else max_uploads
            max_upload_mb = settings.max_session_upload_mb if max_upload_mb is None else max_upload_mb
        self.max_uploads = max(1, max_uploads)
        self.max_upload_bytes = max(1, max_upload_mb) * MB

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") in ("http", "websocket"):
            self._set_client(scope)
            if scope["type"] == "http":
                download = _DOWNLOAD.search(scope.get("path") or "")
                if download and scope.get("method") in ("GET", "HEAD"):
                    await _send_download(send, download.group(2), scope["method"] == "HEAD")
                    return
                refusal = self._refusal(scope)
                if refusal is not None:
                    await _respond(send, *refusal)
                    return
        await self.app(scope, receive, send)

    def _set_client(self, scope: Scope) -> None:
        if not self.hops:
            return
        forwarded = [value.decode("latin-1") for name, value in scope.get("headers") or ()
                     if name.lower() == b"x-forwarded-for"]
        client = scope.get("client")
        peer = client[0] if client else None
        address = client_address(peer, forwarded, self.hops)
        if address and address != peer:
            scope["client"] = (address, 0)

    def _refusal(self, scope: Scope) -> tuple[int, bytes] | None:
        path = scope.get("path") or ""
        if _METRICS.search(path):
            return 404, b"Not found\n"
        upload = _UPLOAD.search(path)
        if upload and scope.get("method") in ("PUT", "POST", "DELETE") and not is_signed_in(upload.group(2)):
            return 403, b"Sign in first\n"
        if upload and scope.get("method") in ("PUT", "POST"):
            files, size = held_uploads(upload.group(2), upload.group(3))
            return upload_refusal(files, size, _body_size(scope), self.max_uploads, self.max_upload_bytes)
        return None


async def _respond(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def mark_serving() -> None:
    """This process's server has the front door in front of it (importer.server.serve): downloads are linked."""
    _serving.set()


def serving_downloads() -> bool:
    """Whether this process serves the download route (started through importer.server.serve)."""
    return _serving.is_set()


def _disposition(file_name: str) -> bytes:
    plain = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_.") else "_" for ch in file_name) or "download"
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(file_name)}".encode("latin-1")


async def _send_download(send: Send, token: str, head: bool) -> None:
    """An offered file, a chunk at a time from disk; deleted once all of it has been sent."""
    from importer.output import downloads

    found = downloads.offered(token)
    if found is None:
        await _respond(send, 404, b"This download has expired: build it again on its page.\n")
        return
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", found.mime.encode("latin-1")), (b"content-length", str(found.size).encode()),
        (b"content-disposition", _disposition(found.file_name)), (b"cache-control", b"no-store"),
        (b"x-content-type-options", b"nosniff")]})
    if head:
        await send({"type": "http.response.body", "body": b""})
        return
    with open(found.path, "rb") as handle:
        while chunk := await asyncio.to_thread(handle.read, downloads.CHUNK_BYTES):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})
    if downloads.take(token) is not None:  # sent whole: the file goes (a dropped connection may try again)
        downloads.delete_file(found.path)
