#!/usr/bin/env bash
# Start the dashboard on the embedded SQLite default (customers.db here), installing what it needs.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
exec .venv/bin/python -m importer.server.serve run app.py "$@"  # streamlit, with the server's memory settings
