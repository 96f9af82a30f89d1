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
  Empty for now: a limit on this process's work is a count (rows read, parts inflated) or a tracemalloc
  peak, which another process's load does not change; speed itself is measured in bench/.

The tiers: `./test.sh --fast` runs FAST, the unit and SQLite tests a developer runs while working (no
Chromium, no PostgreSQL, nothing marked slow); ./test.sh and CI run everything. So that FAST needs no
list of its own, mark() also marks what the tests' own decorators do not say: every test of tests/e2e/
`e2e`, every test taking a PostgreSQL fixture `postgres`, and the heavy-process groups `slow`.
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
SERIAL: tuple[str, ...] = ()
# The groups whose every test is `slow` (out of the fast tier), even the quick ones of their modules.
SLOW_GROUPS = {"processes"}
# Fixtures that reach the real PostgreSQL (tests/conftest.py).
POSTGRES_FIXTURES = {"pg_admin", "pg_url"}
# ./test.sh --fast: pytest -m FAST.
FAST = "not e2e and not postgres and not slow"


def mark(items: list[pytest.Item]) -> None:
    """Add the xdist_group and serial marks GROUPS and SERIAL give, and the e2e, postgres and slow marks
    the tiers select on (module docstring)."""
    for item in items:
        for prefix, group in GROUPS.items():
            if item.nodeid.startswith(prefix):
                item.add_marker(pytest.mark.xdist_group(group))
                if group in SLOW_GROUPS:
                    item.add_marker(pytest.mark.slow)
                break
        if SERIAL and item.nodeid.startswith(SERIAL):
            item.add_marker(pytest.mark.serial)
        if item.nodeid.startswith("tests/e2e/"):
            item.add_marker(pytest.mark.e2e)
        if POSTGRES_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)
