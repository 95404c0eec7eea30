#!/usr/bin/env bash
# One gated retrain now (ingest, train, gate, publish, verify), as the weekly schedule does.
# Arguments go to retrain_pipeline.py (e.g. --config FILE, or 'retrain --wait 600').
# Exit code is the pipeline's: 0 promoted, 3 rejected, 2 usage/config error, 1 failure.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || scripts/setup.sh
exec .venv/bin/python retrain_pipeline.py "$@"
