#!/usr/bin/env bash
# Set up everything the suite needs (scripts/setup.sh) and run every test: lint, unit,
# contract, browser, end-to-end and fault drills. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/mypy modelops
exec .venv/bin/python -m pytest "$@"
