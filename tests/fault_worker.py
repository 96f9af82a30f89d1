"""Helper run as a subprocess by the reliability tests (docs/RELIABILITY.md); never imported by pytest.

    python tests/fault_worker.py fuzz --seed 1 --count 300 --seconds 30 --crash-dir DIR
        Mutates valid .xlsx/.xls/.csv files and feeds each to importer.api.read_upload under an
        address-space limit; prints one JSON summary. Anything but a successful read or an
        importer.errors.ImporterError is a crash: its input is saved to DIR and listed.

    python tests/fault_worker.py read FILE NAME
        read_upload of one file under the same address-space limit; prints {"outcome", "message"}.

    python tests/fault_worker.py rss -- CMD ARG...
        Runs CMD (with a timeout) and prints its exit status, output and peak RSS as JSON.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import resource
import subprocess
import sys
import time
import traceback
import zipfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Headroom above the interpreter's own address space (pandas, calamine and their threads already
# reserve ~1.5 GB of virtual memory before reading anything).
AS_HEADROOM = 1536 << 20


def _vm_size() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


# --- the valid files we start from ---------------------------------------------------------------


def bases() -> list[tuple[str, bytes]]:
    """(file name, bytes) of valid files of every format the reader accepts."""
    from bench.workbook import customer_rows, customer_workbook
    from tests.fixtures import corpus

    rows = [["Shipping Mark", "First Name", "Last Name", "Email", "Phone"]]
    rows += [[str(c) for c in r[:5]] for r in customer_rows(40, seed=3)]
    csv_text = corpus.csv_text(rows, ",")
    return [
        ("customers.xlsx", customer_workbook(40, seed=3)),
        ("simple.xlsx", corpus.simple_xlsx()),
        ("formulas.xlsx", corpus.formulas_xlsx()),
        ("titled.xlsx", corpus.titled_xlsx()),
        ("legacy.xls", corpus.xls()),
        ("customers.csv", csv_text.encode("utf-8")),
        ("semicolon.csv", corpus.cp1252_semicolon_csv()),
        ("utf16.csv", corpus.utf16_tab_csv()),
        ("bom.csv", corpus.utf8_bom_csv()),
    ]


# --- mutations -----------------------------------------------------------------------------------


def bit_flips(data: bytes, rnd: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rnd.randint(1, 16)):
        pos = rnd.randrange(len(buf))
        buf[pos] ^= 1 << rnd.randrange(8)
    return bytes(buf)


def truncation(data: bytes, rnd: random.Random) -> bytes:
    return data[: rnd.randrange(len(data))]


_INTERESTING = [b"\x00", b"\xff\xfe", b"\xef\xbb\xbf", b'"', b"\r", b"\n", b",", b";", b"\t", b"=", b"<", b">",
                b"&", b"PK\x03\x04", b"\xd0\xcf\x11\xe0", b"\xff" * 8, b"9" * 30]


def insertions(data: bytes, rnd: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rnd.randint(1, 8)):
        pos = rnd.randrange(len(buf) + 1)
        chunk = rnd.choice(_INTERESTING) if rnd.random() < 0.5 else rnd.randbytes(rnd.randint(1, 64))
        buf[pos:pos] = chunk
    return bytes(buf)


def _rezip(data: bytes, edit: Callable[[str, bytes], bytes]) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, edit(info.filename, src.read(info.filename)))
    return out.getvalue()


_XML_NOISE = [b"&#0;", b"&#xFFFF;", b"&lol;", b"<c>", b"</row>", b"<row r=\"0\">", b"<row r=\"1048577\">",
              b' r="XFD1048576"', b' r="A0"', b' t="e"', b' t="s"><v>999999</v', b"<v>1E+308</v>",
              b"<v>nan</v>", b"\xc3\x28", b"\x00", b"<![CDATA[", b"<?xml", b"]]>", b"<f>1/0</f>", b"<is><t>x</t></is>"]


def _mutate_xml(body: bytes, rnd: random.Random) -> bytes:
    buf = bytearray(body)
    for _ in range(rnd.randint(1, 6)):
        op = rnd.randrange(4)
        if not buf:
            break
        pos = rnd.randrange(len(buf))
        if op == 0:
            buf[pos:pos] = rnd.choice(_XML_NOISE)
        elif op == 1:
            del buf[pos : pos + rnd.randint(1, 200)]
        elif op == 2:
            end = min(len(buf), pos + rnd.randint(1, 200))
            buf[pos:pos] = buf[pos:end] * rnd.randint(1, 5)
        else:
            digits = [i for i in range(len(buf)) if 48 <= buf[i] <= 57]
            if digits:
                i = rnd.choice(digits)
                buf[i : i + 1] = str(rnd.choice([0, 9, 99999999, 2**31, 2**64, 10**20])).encode()
    return bytes(buf)


def zip_member(data: bytes, rnd: random.Random) -> bytes:
    """Corrupt a zip's members: re-zipped mutated XML (valid CRC), raw damage, or lying headers."""
    try:
        names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    except zipfile.BadZipFile:
        return bit_flips(data, rnd)
    choice = rnd.random()
    if choice < 0.6:
        targets = set(rnd.sample(names, k=min(len(names), rnd.randint(1, 2))))
        return _rezip(data, lambda n, b: _mutate_xml(b, rnd) if n in targets else b)
    if choice < 0.7:
        victim = rnd.choice(names)
        return _rezip(data, lambda n, b: b"" if n == victim else b)
    buf = bytearray(data)
    # Damage a local or central header field: sizes, offsets, compression method, name length.
    heads = [i for i in range(len(buf) - 4) if buf[i : i + 4] in (b"PK\x03\x04", b"PK\x01\x02")]
    if not heads:
        return bit_flips(data, rnd)
    head = rnd.choice(heads)
    field = rnd.choice([8, 10, 18, 20, 22, 24, 26, 28, 42])
    width = 2 if field in (8, 10, 26, 28) else 4
    value = rnd.choice([0, 1, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, rnd.randrange(1 << (8 * width))]) & ((1 << (8 * width)) - 1)
    buf[head + field : head + field + width] = value.to_bytes(width, "little")
    return bytes(buf)


MUTATORS: dict[str, Callable[[bytes, random.Random], bytes]] = {
    "bit_flips": bit_flips, "truncation": truncation, "insertions": insertions, "zip_member": zip_member,
}


def mutate(name: str, data: bytes, kind: str, rnd: random.Random) -> bytes:
    if kind == "zip_member" and not data.startswith(b"PK"):
        kind = "insertions"
    return MUTATORS[kind](data, rnd)


# --- the fuzz loop -------------------------------------------------------------------------------


def fuzz(seed: int, count: int, seconds: float, crash_dir: Path) -> dict:
    from importer.api import read_upload
    from importer.errors import ImporterError
    from importer.settings import Settings

    files = bases()
    settings = Settings()
    for name, data in files:  # the bases themselves must read
        read_upload(data, name, settings)
    limit = _vm_size() + AS_HEADROOM
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    kinds = list(MUTATORS)
    outcomes: dict[str, int] = {}
    by_kind: dict[str, int] = dict.fromkeys(kinds, 0)
    crashes: list[dict] = []
    slowest = (0.0, "")
    start = time.monotonic()
    done = 0
    for i in range(count):
        if time.monotonic() - start > seconds:
            break
        rnd = random.Random(seed * 1_000_003 + i)
        name, base = files[i % len(files)]
        kind = kinds[(i // len(files)) % len(kinds)]
        data = mutate(name, base, kind, rnd)
        # Written before the attempt: if the process dies (a native abort), the parent names the input.
        crash_dir.mkdir(parents=True, exist_ok=True)
        (crash_dir / "current.json").write_text(json.dumps({"index": i, "base": name, "kind": kind}))
        (crash_dir / "current.bin").write_bytes(data)
        t0 = time.monotonic()
        try:
            read_upload(data, name, settings)
            outcome = "read"
        except ImporterError as exc:
            outcome = type(exc).__name__
        except BaseException as exc:  # noqa: BLE001 - exactly what the fuzzer hunts for
            outcome = "CRASH"
            saved = crash_dir / f"crash_{seed}_{i}_{name}"
            saved.write_bytes(data)
            crashes.append({"index": i, "base": name, "kind": kind, "file": str(saved),
                            "error": f"{type(exc).__name__}: {exc}"[:300],
                            "where": traceback.format_exc().splitlines()[-3:]})
            if isinstance(exc, KeyboardInterrupt):
                raise
        took = time.monotonic() - t0
        if took > slowest[0]:
            slowest = (took, f"{name}/{kind}/{i}")
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        by_kind[kind] += 1
        done += 1
    return {
        "mutations": done, "seconds": round(time.monotonic() - start, 1), "outcomes": outcomes,
        "by_kind": by_kind, "crashes": crashes, "bases": [n for n, _ in files],
        "address_space_limit_mb": limit >> 20,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "slowest_seconds": round(slowest[0], 2), "slowest": slowest[1],
    }


def read_one(path: Path, name: str) -> dict:
    from importer.api import read_upload
    from importer.errors import ImporterError
    from importer.settings import Settings

    limit = _vm_size() + AS_HEADROOM
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        upload = read_upload(path.read_bytes(), name, Settings())
        return {"outcome": "read", "message": f"{upload.checked.total} rows"}
    except ImporterError as exc:
        return {"outcome": type(exc).__name__, "message": str(exc)}
    except BaseException as exc:  # noqa: BLE001 - reported, not raised
        return {"outcome": "CRASH", "message": f"{type(exc).__name__}: {exc}"}


def rss(cmd: list[str], timeout: float) -> dict:
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    return {
        "returncode": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr,
        "seconds": round(time.monotonic() - start, 2),
        "maxrss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    f = sub.add_parser("fuzz")
    f.add_argument("--seed", type=int, default=1)
    f.add_argument("--count", type=int, default=300)
    f.add_argument("--seconds", type=float, default=30)
    f.add_argument("--crash-dir", type=Path, default=Path("fuzz_crashes"))
    one = sub.add_parser("read")
    one.add_argument("file", type=Path)
    one.add_argument("name")
    r = sub.add_parser("rss")
    r.add_argument("--timeout", type=float, default=120)
    r.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    if args.mode == "fuzz":
        print(json.dumps(fuzz(args.seed, args.count, args.seconds, args.crash_dir)))
    elif args.mode == "read":
        print(json.dumps(read_one(args.file, args.name)))
    else:
        cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
        print(json.dumps(rss(cmd, args.timeout)))


if __name__ == "__main__":
    main()
