#!/usr/bin/env bash
# Installs what the project needs into .venv: `scripts/setup.sh` (runtime) or `scripts/setup.sh dev`.
# Re-running is cheap: pip is skipped while the requirements files are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
fi
want=requirements.txt
[ "${1:-}" = "dev" ] && want=requirements-dev.txt
stamp=".venv/.installed-$(cat requirements.txt "$want" | sha256sum | cut -c1-16)-$(basename "$want")"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$want"
  touch "$stamp"
fi
