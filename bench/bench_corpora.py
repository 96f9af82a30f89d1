"""Other projects' test corpora through the CLI (issue 22, item 8).

Spreadsheet libraries keep real files from many producers in their tests (Excel 95-365, LibreOffice,
Gnumeric, WPS, Numbers, password-protected and BIFF5 files). This runs

    python -m importer import FILE --dry-run --json     (SQLite in a temporary folder)

over every .xlsx/.xlsm/.xls/.xlsb/.ods/.csv file under the given folders, each in its own process under a
60 s timeout, with its peak memory (the child's own rusage, from os.wait4), and summarises: files, read,
refused by reason, tracebacks (must be 0), over 60 s or 400 MB (must be 0).

The corpora are not in this repository. Extract them first, e.g. from the search tool's mirrors:

    git --git-dir=/work/.mirror/tafia+calamine/repo ls-tree -r --name-only HEAD    # then git show HEAD:path

    python bench/bench_corpora.py /tmp/corpora/python-excel+xlrd /tmp/corpora/tafia+calamine \
        /tmp/corpora/SheetJS+test_files --sample 150 --csv-sample 30 --jobs 2 --out /tmp/corpora.jsonl

`--csv-sample N` takes N CSV files per folder, evenly spread (SheetJS/test_files holds 6,983 CSV files that
are its own conversions of the workbooks; 0 = all of them); `--sample N` N workbooks per folder.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
ENDINGS = (".xlsx", ".xlsm", ".xls", ".xlsb", ".ods", ".csv")
TIMEOUT_S = 60.0
MEMORY_MB = 400.0


@dataclass
class Outcome:
    corpus: str
    path: str
    size: int
    status: int | None  # None: killed at the timeout
    seconds: float
    peak_mb: float
    kind: str  # read | refused | traceback | timeout | other
    reason: str = ""
    message: str = ""


def _spread(paths: list[Path], count: int) -> list[Path]:
    """`count` of `paths`, evenly spread (all of them when count is 0 or more than there are)."""
    if not count or len(paths) <= count:
        return paths
    step = len(paths) / count
    return [paths[int(i * step)] for i in range(count)]


def files_of(folder: Path, csv_sample: int, sample: int = 0) -> list[Path]:
    found = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in ENDINGS)
    csvs = [p for p in found if p.suffix.lower() == ".csv"]
    others = [p for p in found if p.suffix.lower() != ".csv"]
    return _spread(others, sample) + _spread(csvs, csv_sample)


_NUMBER = re.compile(r"\d[\d,.]*")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def reason_of(message: str, path: Path) -> str:
    """The kind of a one-line refusal: its first clause, without the file's name, quoted text or numbers."""
    text = message.removeprefix("error: ").replace(str(path), "FILE").replace(path.name, "FILE")
    text = _QUOTED.sub("'…'", text)
    text = _NUMBER.sub("N", text)
    head = re.split(r"[.;]\s|\s\((?!\.)", text, maxsplit=1)[0]
    return head[:90]


def _classify(out: Outcome, stdout: str, stderr: str, path: Path) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    if "Traceback (most recent call last)" in stderr:
        out.kind, out.message = "traceback", (lines[-1] if lines else "")[:300]
    elif out.status is None:
        out.kind = "timeout"
    elif out.status == 0:
        try:
            result = json.loads(stdout)
            out.kind = "read"
            out.message = str(result.get("message", ""))
        except ValueError:
            out.kind, out.message = "other", "stdout is not one JSON object"
    elif out.status == 2 and len(lines) == 1 and lines[0].startswith("error: "):
        out.kind, out.message = "refused", lines[0][:300]
        out.reason = reason_of(lines[0], path)
    else:
        out.kind, out.message = "other", f"exit {out.status}: " + " | ".join(lines[-3:])[:300]


def run(files: list[tuple[str, Path]], jobs: int, workdir: Path, log: IO[str] | None = None) -> list[Outcome]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    pending = list(enumerate(files))
    running: dict[int, tuple[subprocess.Popen, int, Path, str, float, Path, Path]] = {}
    results: list[Outcome | None] = [None] * len(files)
    done = 0
    while pending or running:
        while pending and len(running) < jobs:
            i, (corpus, path) = pending.pop(0)
            folder = workdir / str(i)
            folder.mkdir()
            out_path, err_path = folder / "out", folder / "err"
            with open(out_path, "wb") as out_file, open(err_path, "wb") as err_file:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "importer", "import", str(path), "--dry-run", "--json"],
                    cwd=ROOT, stdout=out_file, stderr=err_file, stdin=subprocess.DEVNULL,
                    env={**env, "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite'}"})
            running[proc.pid] = (proc, i, path, corpus, time.perf_counter(), out_path, err_path)
        pid, status, usage = os.wait4(-1, os.WNOHANG)
        if pid == 0:
            now = time.perf_counter()
            for proc, _, _, _, started, _, _ in running.values():
                if now - started > TIMEOUT_S and proc.returncode is None:
                    proc.kill()
                    proc.returncode = -9  # marks it killed; wait4 reaps it
            time.sleep(0.02)
            continue
        if pid not in running:
            continue
        proc, i, path, corpus, started, out_path, err_path = running.pop(pid)
        killed = proc.returncode == -9
        proc.returncode = os.waitstatus_to_exitcode(status)
        outcome = Outcome(corpus, str(path), path.stat().st_size, None if killed else proc.returncode,
                          round(time.perf_counter() - started, 2), round(usage.ru_maxrss / 1024, 1), "")
        _classify(outcome, out_path.read_text("utf-8", "replace"), err_path.read_text("utf-8", "replace"), path)
        results[i] = outcome
        if log is not None:
            log.write(json.dumps(asdict(outcome), ensure_ascii=False) + "\n")
            log.flush()
        done += 1
        if done % 50 == 0:
            print(f"  {done:,}/{len(files):,}", file=sys.stderr, flush=True)
    return [r for r in results if r is not None]


def summary(results: list[Outcome]) -> str:
    lines = []
    by_corpus = Counter(r.corpus for r in results)
    for corpus in [*sorted(by_corpus), None]:
        part = [r for r in results if corpus is None or r.corpus == corpus]
        kinds = Counter(r.kind for r in part)
        slow = [r for r in part if r.status is None or r.seconds > TIMEOUT_S]
        big = [r for r in part if r.peak_mb > MEMORY_MB]
        endings = Counter(Path(r.path).suffix.lower() for r in part)
        lines.append(f"{corpus or 'all'}: {len(part):,} files ({', '.join(f'{n} {e}' for e, n in sorted(endings.items()))}); "
                     f"read {kinds['read']:,}, refused {kinds['refused']:,}, tracebacks {kinds['traceback']:,}, "
                     f"other {kinds['other']:,}, over {TIMEOUT_S:.0f} s {len(slow)}, over {MEMORY_MB:.0f} MB {len(big)}; "
                     f"slowest {max((r.seconds for r in part), default=0):.1f} s, "
                     f"largest peak {max((r.peak_mb for r in part), default=0):.0f} MB")
    lines.append("refused by reason:")
    for reason, n in Counter(r.reason for r in results if r.kind == "refused").most_common():
        lines.append(f"  {n:5,}  {reason}")
    for r in results:
        if r.kind in ("traceback", "other", "timeout") or r.peak_mb > MEMORY_MB:
            lines.append(f"  {r.kind}: {r.path}: {r.message}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--csv-sample", type=int, default=300, help="CSV files per folder (0: all)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--sample", type=int, default=0,
                        help="workbooks per folder, evenly spread (0: all); CSV files are --csv-sample's")
    parser.add_argument("--out", type=Path, help="write every outcome as JSON here")
    args = parser.parse_args()
    files: list[tuple[str, Path]] = []
    for folder in args.folders:
        files += [(folder.name, p) for p in files_of(folder, args.csv_sample, args.sample)]
    print(f"{len(files):,} files", file=sys.stderr)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="corpora-") as work, \
            (open(args.out, "w", encoding="utf-8") if args.out else open(os.devnull, "w")) as log:
        results = run(files, args.jobs, Path(work), log)  # the outcomes as JSON lines as they come
    print(summary(results))
    print(f"({time.perf_counter() - started:.0f} s in all, {args.jobs} at a time)")
    bad = [r for r in results if r.kind in ("traceback", "other", "timeout") or r.peak_mb > MEMORY_MB]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
