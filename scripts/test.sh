#!/usr/bin/env bash
# Set up everything the suite needs (scripts/setup.sh) and run every test: lint, types, unit,
# contract, browser, end-to-end and fault drills (pytest), then the compose smoke
# (scripts/compose_smoke.sh) whenever a Docker-API engine answers. Extra arguments go to pytest
# and skip the smoke; COMPOSE_SMOKE=0 skips it, COMPOSE_SMOKE=1 runs it with arguments too.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/mypy modelops
status=0
.venv/bin/python -m pytest "$@" || status=$?

smoke=${COMPOSE_SMOKE:-$([ $# -eq 0 ] && echo 1 || echo 0)}
if [ "$smoke" != 1 ]; then
  echo "compose smoke: skipped (COMPOSE_SMOKE=0, or pytest arguments given; COMPOSE_SMOKE=1 runs it)"
elif ! docker info >/dev/null 2>&1; then
  echo "compose smoke: skipped: no Docker-API engine answers (docker info failed; DOCKER_HOST=${DOCKER_HOST:-unset});" \
    "start Docker or podman's API service (podman system service) to run it"
else
  scripts/compose_smoke.sh || status=$?
fi
exit "$status"
