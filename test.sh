#!/usr/bin/env bash
# Run the whole test suite: installs Python packages, Debian's Chromium, starts PostgreSQL if it is down.
# Extra arguments go to pytest: ./test.sh tests/test_clean.py -x   (TEST_WORKERS=0: no parallel workers)
# ./test.sh --fast: the inner loop, unit and SQLite tests only (no Chromium, no PostgreSQL, nothing marked
# slow: tests/parallel.py FAST), after ruff and mypy; it needs neither Chromium nor PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")"
fast=0
if [ "${1:-}" = "--fast" ]; then fast=1; shift; fi
scripts/setup.sh dev

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if [ "$fast" = 0 ] && [ ! -x /usr/bin/chromium ]; then
  echo "Installing Debian's chromium for the browser tests..."
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium >/dev/null
fi

if [ "$fast" = 0 ] && command -v pg_ctlcluster >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "Starting PostgreSQL..."
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi

.venv/bin/ruff check .
.venv/bin/mypy  # the whole product: [tool.mypy] in pyproject.toml
# Dead code: what the product defines and nothing uses (tests and bench count as users; library-read names
# are listed in scripts/dead_code_allow.py).
dead=$(.venv/bin/vulture importer schemas ui views app.py tests bench scripts/dead_code_allow.py --min-confidence 60 \
  | grep -E '^(importer|schemas|ui|views|app\.py)' || true)
if [ -n "$dead" ]; then echo "Dead code (delete it, or list a library-read name in scripts/dead_code_allow.py):"; echo "$dead"; exit 1; fi

# In parallel on TEST_WORKERS processes (pytest-xdist; 2 by default), grouped as tests/parallel.py says,
# then the tests that time this process with tight limits on their own (tests/parallel.py SERIAL; none
# at present, so that run is left out). With -m among the arguments (your own selection), one parallel
# run. Exit status 5 of one part means it had nothing to run.
workers="${TEST_WORKERS:-2}"
for arg in "$@"; do
  case "$arg" in -m|-m*) exec .venv/bin/python -m pytest -n "$workers" --dist loadgroup "$@" ;; esac
done
{ read -r fast_tier; read -r serial_tests; } < <(.venv/bin/python -c \
  'from tests.parallel import FAST, SERIAL; print(FAST); print(len(SERIAL))')
parallel_only="not serial"
serial_only="serial"
if [ "$fast" = 1 ]; then
  parallel_only="($fast_tier) and not serial"
  serial_only="($fast_tier) and serial"
fi
status=0
.venv/bin/python -m pytest -n "$workers" --dist loadgroup -m "$parallel_only" "$@" || status=$?
serial=5
if [ "$serial_tests" != 0 ]; then
  serial=0
  .venv/bin/python -m pytest -m "$serial_only" "$@" || serial=$?
fi
for code in "$status" "$serial"; do
  if [ "$code" != 0 ] && [ "$code" != 5 ]; then exit "$code"; fi
done
if [ "$status" = 5 ] && [ "$serial" = 5 ]; then exit 5; fi
exit 0
