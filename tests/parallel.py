"""How the suite runs in parallel: ./test.sh runs `pytest -n 2 --dist loadgroup -m "not serial"`, then
`pytest -m serial` on its own. tests/conftest.py applies `mark` to every collected test.

Every test is independent of the others' data: each takes a fresh SQLite file (tmp_path) or a fresh
PostgreSQL database (tests/conftest.py), the dashboard servers of tests/e2e listen on free ports, and
AppTest runs in the worker's own process. What is left to arrange is load:

- GROUPS: tests that start processes doing heavy work (Chromium and a dashboard server; 100,000-row CLI
  imports killed and resumed; several imports at once; the fuzzer) run one after another on one worker
  (xdist_group), never two of a kind at once. Their waits are conditions on the database or the page
  with generous time limits, so the other worker's load only slows them.
- SERIAL: tests that time or measure this process itself with tight limits run alone, after the rest.
"""

from __future__ import annotations

import pytest

# Node id prefix -> xdist group.
GROUPS = {
    "tests/e2e/": "browser",
    # The whole module: its quick tests run between the slow ones, so the 100,000-row workbook (a module
    # fixture) is built once.
    "tests/test_faults.py::": "processes",
    "tests/test_concurrency.py::": "processes",
    "tests/test_fuzz.py::test_mutated_files_never_crash_the_reader": "processes",
}
# Node id prefixes of the tests that must not share the machine.
SERIAL = (
    "tests/test_read.py::test_zip_bomb_is_refused_quickly",  # < 1 s
    "tests/test_read.py::test_million_row_csv_is_refused_early_and_lean",  # < 5 s under tracemalloc
)


def mark(items: list[pytest.Item]) -> None:
    """Add the xdist_group and serial marks GROUPS and SERIAL give."""
    for item in items:
        for prefix, group in GROUPS.items():
            if item.nodeid.startswith(prefix):
                item.add_marker(pytest.mark.xdist_group(group))
                break
        if item.nodeid.startswith(SERIAL):
            item.add_marker(pytest.mark.serial)
