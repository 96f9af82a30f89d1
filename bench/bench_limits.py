"""Issue 20's hostile inputs under a real 512 MB memory cgroup: the CLI cases, and uploads before login.

    python bench/bench_limits.py [--files DIR] [--cli] [--pre-login]

--cli: `in-512mb python -m importer import FILE --dry-run --json` for each file of bench/hostile_files.py
(at the issue's sizes, written into DIR once): peak, OOM kills, exit status and the first line said.
--pre-login: the dashboard started as deployed (importer.server.serve, a password set), then 8 uploads of
49 MB to the upload endpoint of a session that has not signed in; the server's VmRSS and VmHWM before and
after, and the statuses it answered. Prints one JSON object a case (bench/RESULTS.md keeps the numbers).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import hostile_files  # noqa: E402

IN_512MB = Path("/work/shared/tools/in-512mb")
_PEAK = re.compile(r"peak (\d+) MB, OOM kills (\d+)")


def _files(folder: Path) -> dict[str, list[str]]:
    """Case -> the importer's arguments; each file is written once."""
    folder.mkdir(parents=True, exist_ok=True)
    made = {
        "max_length.xlsx": lambda p: hostile_files.max_length_workbook(p),
        "shared_strings.xlsx": lambda p: hostile_files.shared_strings_bomb(p),
        "mapping.json": lambda p: hostile_files.big_mapping_json(p),
        "small.xlsx": lambda p: p.write_bytes(__import__("bench.workbook").workbook.customer_workbook(100)),
    }
    for name, build in made.items():
        if not (folder / name).exists():
            build(folder / name)
    return {
        "every field at its maximum length, 100,000 rows": ["import", str(folder / "max_length.xlsx")],
        "shared strings: 10,000,000 entries, 10 rows": ["import", str(folder / "shared_strings.xlsx")],
        "--mapping of 2,000,000 keys": ["import", str(folder / "small.xlsx"), "--mapping",
                                        str(folder / "mapping.json")],
    }


def cli_cases(folder: Path) -> None:
    for case, argv in _files(folder).items():
        with tempfile.TemporaryDirectory() as db:
            env = {**os.environ, "DATABASE_URL": f"sqlite:///{db}/c.db"}
            start = time.monotonic()
            proc = subprocess.run([str(IN_512MB), sys.executable, "-m", "importer", *argv, "--dry-run", "--json"],
                                  cwd=ROOT, capture_output=True, text=True, env=env, timeout=1800)
        found = _PEAK.search(proc.stderr)
        said = next((line for line in proc.stderr.splitlines() if line.startswith("error:")), "")
        print(json.dumps({"case": case, "exit": proc.returncode, "peak_mb": int(found.group(1)) if found else None,
                          "oom_kills": int(found.group(2)) if found else None,
                          "seconds": round(time.monotonic() - start, 1), "said": said[:300]}), flush=True)


def _status(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            fields[line.split(":")[0]] = int(line.split()[1]) // 1024
    return fields


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _upload(port: int, session: str, body: bytes) -> int:
    """PUT one multipart body to the upload endpoint; the status answered (0: the server closed on us)."""
    boundary = uuid.uuid4().hex
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"pre_login.csv\"\r\n"
            "Content-Type: text/csv\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.putrequest("PUT", f"/_stcore/upload_file/{session}/{uuid.uuid4().hex}")
        conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
        conn.putheader("Content-Length", str(len(head) + len(body) + len(tail)))
        conn.endheaders()
        try:
            for part in (head, body, tail):
                for start in range(0, len(part), 1 << 20):
                    conn.send(part[start : start + (1 << 20)])
        except OSError:
            pass  # refused before the body: the server stopped reading
        return conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return 0
    finally:
        conn.close()


def start_server(port: int, database: Path) -> subprocess.Popen:
    """The dashboard as deployed (importer.server.serve, a password set), once it answers its health check."""
    env = {**os.environ, "APP_PASSWORD": "bench-secret", "DATABASE_URL": f"sqlite:///{database}"}
    server = subprocess.Popen([sys.executable, "-m", "importer.server.serve", "run", "app.py", "--server.port",
                               str(port), "--server.headless", "true"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(240):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", "/_stcore/health")
            if conn.getresponse().status == 200:
                break
        except OSError:
            time.sleep(0.5)
        finally:
            conn.close()
    return server


async def login_form_session(port: int, then: Callable[[str], Any]) -> Any:
    """Open a browser-like session (the websocket, a first script run: the login form), then call
    then(session_id) on a thread while the session stays connected; its result."""
    import websockets
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    async with websockets.connect(f"ws://127.0.0.1:{port}/_stcore/stream", subprotocols=["streamlit"],
                                  max_size=None) as ws:
        back = BackMsg()
        back.rerun_script.query_string = ""
        back.rerun_script.page_script_hash = ""
        await ws.send(back.SerializeToString())
        session, finished = "", False
        while not finished:
            msg = ForwardMsg()
            msg.ParseFromString(await asyncio.wait_for(ws.recv(), 120))
            kind = msg.WhichOneof("type")
            session = msg.new_session.initialize.session_id if kind == "new_session" else session
            finished = kind == "script_finished"
        return await asyncio.to_thread(then, session)


def pre_login(folder: Path, uploads: int = 8, mb: int = 49) -> None:
    body = hostile_files.pre_login_upload(folder / "pre_login.csv", mb=mb).read_bytes()
    port = _free_port()
    server = start_server(port, folder / "pre_login.db")
    try:
        def send_all(session: str) -> tuple[dict[str, int], list[int]]:
            time.sleep(2)
            before = _status(server.pid)
            return before, [_upload(port, session, body) for _ in range(uploads)]

        before, statuses = asyncio.run(login_form_session(port, send_all))
        time.sleep(2)
        after = _status(server.pid)
        print(json.dumps({"case": f"before login: {uploads} uploads of {mb} MB to a session showing the login form",
                          "statuses": statuses, "rss_before_mb": before.get("VmRSS"),
                          "rss_after_mb": after.get("VmRSS"), "hwm_after_mb": after.get("VmHWM")}), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", default=str(Path(tempfile.gettempdir()) / "hostile_files"))
    parser.add_argument("--cli", action="store_true")
    parser.add_argument("--pre-login", action="store_true")
    args = parser.parse_args()
    folder = Path(args.files)
    if args.cli or not args.pre_login:
        cli_cases(folder)
    if args.pre_login or not args.cli:
        pre_login(folder)


if __name__ == "__main__":
    main()
