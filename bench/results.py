"""bench/RESULTS.md holds one section per benchmark script; each run replaces its own section.

bench/history/*.jsonl keep every run's numbers, one JSON line each, so each run can show the earlier ones
beside its own and name a regression the day it lands.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def write_section(title: str, body: str, path: Path = RESULTS) -> None:
    """Replace (or append) the `## title` section of the results file with `body`."""
    header = f"## {title}\n"
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    if header in text:
        before, rest = text.split(header, 1)
        after = rest[rest.find("\n## ") + 1:] if "\n## " in rest else ""
    else:
        before, after = text, ""
    path.write_text(before.rstrip() + "\n\n" + header + "\n" + body.strip() + "\n\n" + after)


# -- history: one JSON line per benchmark run, so a regression shows the day it lands -------------------
HISTORY = Path(__file__).resolve().parent / "history"
REGRESSION = 0.8  # a ratio below 80% of the reference (the median of the previous three) is a regression


def read_history(path: Path) -> list[dict]:
    """Every entry of a JSON-lines history file, oldest first (a blank or damaged line is skipped)."""
    if not path.exists():
        return []
    entries = []
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def append_history(path: Path, entry: dict) -> None:
    """Add one entry as one line (the file and its folder are created when missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as out:
        out.write(json.dumps(entry, sort_keys=True) + "\n")


def regressions(previous: list[dict], today: dict, key: str = "ratios") -> dict[str, tuple[float, float]]:
    """{ratio name: (today's, the reference)} for each of today's `key` ratios that fell more than 20%
    below the median of the same ratio in the last three `previous` entries that have it (higher is better)."""
    out = {}
    for name, value in today.get(key, {}).items():
        past = [e[key][name] for e in previous if isinstance(e.get(key, {}).get(name), int | float)][-3:]
        if value is None or not past:
            continue
        reference = statistics.median(past)
        if value < REGRESSION * reference:
            out[name] = (value, reference)
    return out


def history_table(previous: list[dict], today: dict, names: list[str], last: int = 8, key: str = "ratios") -> str:
    """A Markdown table of the last `last` entries' ratios with today's beneath, and a loud line per regression."""
    def cells(entry: dict) -> str:
        ratios = entry.get(key, {})
        return " | ".join("" if ratios.get(n) is None else f"{ratios[n]:.1f}x" for n in names)

    def label(entry: dict) -> str:
        return f"{entry.get('date', '?')} | {str(entry.get('commit', '?'))[:9]} | {entry.get('label', '')}"

    lines = [f"| date | commit | note | {' | '.join(names)} |", "|---|---|---|" + "---:|" * len(names)]
    lines += [f"| {label(e)} | {cells(e)} |" for e in previous[-last:]]
    lines.append(f"| **{label(today)}** | {cells(today)} |")
    for name, (value, reference) in regressions(previous, today, key).items():
        lines.append(f"\n!!!! REGRESSION: {name} is {value:.1f}x, more than 20% below the last runs' "
                     f"{reference:.1f}x !!!!")
    return "\n".join(lines)
