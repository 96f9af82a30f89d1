"""bench/RESULTS.md holds one section per benchmark script; each run replaces its own section."""

from __future__ import annotations

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
