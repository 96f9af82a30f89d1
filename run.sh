#!/usr/bin/env bash
# Start the dashboard on the embedded SQLite default (customers.db here), installing what it needs.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
exec .venv/bin/streamlit run app.py "$@"
