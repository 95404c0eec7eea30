#!/usr/bin/env bash
# Start the whole stack: set up (idempotent), then Docker Compose when a Docker engine answers,
# else local processes (--local forces them). Waits until ready, prints the URLs; Ctrl-C stops
# everything. Ports: FRONTEND_PORT, TF_REST_PORT, TF_GRPC_PORT, PROMETHEUS_PORT,
# TRAINER_METRICS_PORT, ALERTMANAGER_PORT (README defaults), all on BIND_ADDRESS (default
# 127.0.0.1). The logic lives in modelops/stack.py.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python -m modelops.stack up "$@"
