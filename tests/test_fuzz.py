"""Fuzzing the reader: mutated .xlsx/.xls/.csv bytes give a read or an ImporterError, never a crash.

The loop runs in a subprocess (tests/fault_worker.py) under an address-space limit, so a native
allocation blow-up (calamine is Rust) shows up as a failed run naming the input, not as a dead CI box.
CI budget: 600 mutations (about 10 s), capped at 30 s. RELIABILITY_LONG=1: 5,000 mutations per seed over 3 seeds.
The regressions below are the crashes the fuzzer found (docs/RELIABILITY.md).
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from importer.errors import LimitExceeded, UnreadableFile
from importer.intake import readers as read
from importer.intake.readers import open_file
from importer.settings import Settings
from tests.fixtures import corpus

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "fault_worker.py"
LONG = os.environ.get("RELIABILITY_LONG") == "1"
SEEDS = [11, 12, 13] if LONG else [11]
COUNT, SECONDS = (5000, 900) if LONG else (600, 60)  # a count, with a time cap a loaded machine still reaches
S = Settings()


def _worker(*args: str, timeout: float) -> tuple[subprocess.CompletedProcess, dict | None]:
    env = {**os.environ, "RUST_BACKTRACE": "0"}
    proc = subprocess.run([sys.executable, str(WORKER), *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    return proc, (json.loads(lines[-1]) if lines else None)


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_mutated_files_never_crash_the_reader(seed: int, tmp_path: Path) -> None:
    crash_dir = tmp_path / "crashes"
    proc, summary = _worker("fuzz", "--seed", str(seed), "--count", str(COUNT), "--seconds", str(SECONDS),
                            "--crash-dir", str(crash_dir), timeout=SECONDS + 120)
    current = crash_dir / "current.json"
    died_on = current.read_text() if current.exists() else "?"
    assert proc.returncode == 0 and summary is not None, (
        f"the fuzz worker died (status {proc.returncode}) on {died_on}: {proc.stderr[-800:]}"
    )
    print(json.dumps(summary))  # the figures quoted in docs/RELIABILITY.md
    assert summary["crashes"] == [], summary["crashes"]
    assert summary["mutations"] >= min(COUNT, 200)
    assert set(summary["by_kind"]) == {"bit_flips", "truncation", "insertions", "zip_member"}
    assert summary["outcomes"].get("read", 0) > 0  # some mutants still read: the bases were reached
    assert summary["peak_rss_mb"] < 1024
    assert summary["slowest_seconds"] < 10


# --- regressions: each input made the reader crash before the fix ---------------------------------


def _read_isolated(tmp_path: Path, data: bytes, name: str) -> dict:
    """read_upload in a subprocess under the address-space limit: a regression cannot eat the machine."""
    path = tmp_path / name
    path.write_bytes(data)
    proc, result = _worker("read", str(path), name, timeout=120)
    assert proc.returncode == 0 and result is not None, proc.stderr[-800:]
    return result


def _fat_of(data: bytes) -> tuple[int, int, int]:
    """(offset of the first FAT sector, directory start sector, sector size) of a v3 compound file."""
    sector = 1 << struct.unpack_from("<H", data, 0x1E)[0]
    first_fat = struct.unpack_from("<I", data, 0x4C)[0]
    return (first_fat + 1) * sector, struct.unpack_from("<I", data, 0x30)[0], sector


def test_xls_with_a_looping_sector_chain_is_refused_without_eating_memory(tmp_path: Path) -> None:
    data = bytearray(corpus.xls())
    fat, directory, _ = _fat_of(bytes(data))
    struct.pack_into("<I", data, fat + 4 * directory, directory)  # the directory chain points at itself
    start = time.perf_counter()
    result = _read_isolated(tmp_path, bytes(data), "loop.xls")
    assert result["outcome"] == "UnreadableFile", result
    assert "loops" in result["message"]
    assert time.perf_counter() - start < 30


def test_xls_whose_stream_chain_loops_is_refused(tmp_path: Path) -> None:
    """The fuzzer's case: an insertion shifted the sectors, so the FAT read as zeros (0 -> 0 -> ...)."""
    data = bytearray(corpus.xls())
    fat, _, sector = _fat_of(bytes(data))
    data[fat : fat + sector] = bytes(sector)
    result = _read_isolated(tmp_path, bytes(data), "zeros.xls")
    assert result["outcome"] == "UnreadableFile", result


def test_xls_stream_claiming_more_bytes_than_the_file_is_refused() -> None:
    data = bytearray(corpus.xls())
    _, directory, sector = _fat_of(bytes(data))
    entry = (directory + 1) * sector + 128  # the directory's second entry: the Workbook stream
    struct.pack_into("<I", data, entry + 0x78, 0x7FFFFFFF)
    with pytest.raises(UnreadableFile, match="claims more bytes"):
        open_file(bytes(data), "big.xls", S)


def _dimensions_offset(data: bytes) -> int:
    """Where the DIMENSIONS record's body starts in corpus.xls() (BIFF8: rwMic, rwMac u32; colMic, colMac u16)."""
    pos = data.find(b"\x00\x02\x0e\x00")
    assert pos > 0
    return pos + 4


@pytest.mark.parametrize(
    ("field", "value", "outcome"),
    [(4, 0x02000004, "LimitExceeded"),  # last row 33,554,436: calamine asked for 9 GB
     (0, 0x8000, "UnreadableFile")],  # first row after the last: calamine asked for 1.2 TB
)
def test_xls_dimensions_asking_for_a_huge_grid_are_refused(field, value, outcome, tmp_path: Path) -> None:
    data = bytearray(corpus.xls())
    struct.pack_into("<I", data, _dimensions_offset(bytes(data)) + field, value)
    result = _read_isolated(tmp_path, bytes(data), "grid.xls")
    assert result["outcome"] == outcome, result


def test_xls_with_a_stray_cell_far_away_is_refused_like_xlsx() -> None:
    import xlwt

    book = xlwt.Workbook()
    sheet = book.add_sheet("Customers")
    for c, text in enumerate(["Shipping Mark", "First Name", "Last Name", "Email", "Phone"]):
        sheet.write(0, c, text)
    sheet.write(65535, 200, "far")
    buf = io.BytesIO()
    book.save(buf)
    with pytest.raises(LimitExceeded, match="Ctrl\\+End"):
        open_file(buf.getvalue(), "far.xls", S)


def test_cell_reference_past_excels_limits_is_refused_before_calamine(tmp_path: Path) -> None:
    data = corpus.patch_zip(corpus.simple_xlsx(), corpus.SHEET1,
                            lambda xml: xml.replace('r="E2"', 'r="E1100000000000000000000"'))
    result = _read_isolated(tmp_path, data, "far.xlsx")
    assert result["outcome"] == "LimitExceeded", result
    assert "Ctrl+End" in result["message"]


def test_zip_with_an_unknown_version_is_a_damaged_file() -> None:
    data = bytearray(corpus.simple_xlsx())
    pos = -1
    while (pos := data.find(b"PK\x01\x02", pos + 1)) != -1:
        data[pos + 6] = 148  # "version needed to extract" 14.8: zipfile raised NotImplementedError
    with pytest.raises(UnreadableFile, match="not a valid Excel file"):
        open_file(bytes(data), "version.xlsx", S)


# Bit flips in corpus.xls() that made calamine panic inside its BIFF parser (PanicException).
PANIC_FLIPS = [
    [(16, 4), (1444, 1), (1493, 64), (4327, 16), (4559, 32)],
    [(1492, 16), (2830, 8), (3618, 16), (4736, 4)],
]


@pytest.mark.parametrize("flips", PANIC_FLIPS)
def test_calamine_panic_is_a_damaged_file_not_a_traceback(flips: list[tuple[int, int]]) -> None:
    from python_calamine import CalamineWorkbook

    data = bytearray(corpus.xls())
    for offset, mask in flips:
        data[offset] ^= mask
    # The input still makes calamine panic, with pyo3's PanicException, which `except Exception` misses...
    with pytest.raises(BaseException) as panic:
        CalamineWorkbook.from_filelike(io.BytesIO(bytes(data)))
    assert type(panic.value).__name__ == "PanicException" and not isinstance(panic.value, Exception)
    # ...which the reader's guard turns into an ordinary error the fallbacks and messages handle...
    with pytest.raises(RuntimeError, match="calamine panicked"), read._native_panics():
        CalamineWorkbook.from_filelike(io.BytesIO(bytes(data)))
    # ...so the user gets the damaged-file message, not a traceback (and not a silent pass).
    with pytest.raises(UnreadableFile, match="not a valid Excel file"):
        f = open_file(bytes(data), "panic.xls", S)
        f.rows(f.sheet_names[0], 100)


def test_panic_exception_is_caught_even_though_it_is_a_base_exception(monkeypatch) -> None:
    PanicException = type("PanicException", (BaseException,), {})  # what pyo3 raises  # noqa: N806

    def panics(*args, **kwargs):
        raise PanicException("range start index 5227 out of range for slice of length 4096")

    monkeypatch.setattr(read, "_calamine_rows", panics)
    monkeypatch.setattr(read, "_xlrd_rows", lambda *a: (_ for _ in ()).throw(ValueError("no")))
    f = open_file(corpus.xls(), "x.xls", S)
    with pytest.raises(UnreadableFile):
        f.rows(f.sheet_names[0], 10)


def test_xlrd_fallback_writes_nothing_to_stdout(monkeypatch, capfd) -> None:
    """xlrd logged 'WARNING *** file size ...' to stdout, which broke the CLI's --json output."""
    monkeypatch.setattr(read, "_calamine_rows", lambda *a: (_ for _ in ()).throw(ValueError("no")))
    f = open_file(corpus.xls() + b"\0" * 3, "odd.xls", S)
    assert f.rows(f.sheet_names[0], 10)[0] == ["Customer list"]
    assert capfd.readouterr().out == ""


@pytest.mark.parametrize(
    "data",
    [
        b"\xef\xbb\xbfShipping Mark,Phone\r\nPM1 KOFI,024\x83\r\n",  # UTF-8 BOM, then a cp1252 byte
        b"\xff\xfeS\x00h\x00i",  # UTF-16 BOM, odd length
        b"\xff\xfe\x00\xd8a\x00",  # UTF-16 BOM, lone surrogate
    ],
)
def test_csv_whose_bom_lies_is_refused_clearly(data: bytes) -> None:
    with pytest.raises(UnreadableFile, match="byte-order mark"):
        open_file(data, "export.csv", S)
