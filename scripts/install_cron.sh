#!/usr/bin/env bash
# Install the weekly retrain as a crontab line for the current user (idempotent), from
# schedule.cron in the project's config.json:
#   <cron> cd <project> && <project>/.venv/bin/python retrain_pipeline.py >> <project>/runs/cron.log 2>&1
# Usage: scripts/install_cron.sh [--print | --remove]
#   (no option)  install or update the line; other crontab lines are kept
#   --print      show the line that would be installed
#   --remove     take the line out
# The crontab command can be overridden with $CRONTAB (tests use a fake).
set -euo pipefail

project=$(cd "$(dirname "$0")/.." && pwd)
crontab_cmd=${CRONTAB:-crontab}
config=$project/config.json
marker="# modelops weekly retrain ($project)"

usage() {
  sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
}

mode=install
case "${1:-}" in
  "") ;;
  --print) mode=print ;;
  --remove) mode=remove ;;
  -h|--help) usage; exit 0 ;;
  *) echo "install_cron.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
esac

python="$project/.venv/bin/python"
if [ ! -x "$python" ]; then
  echo "install_cron.sh: $python not found; run scripts/setup.sh first" >&2
  exit 1
fi

# The cron expression as the project reads it: config.json validated, so a typo fails here.
schedule=$(cd "$project" && "$python" -c '
import sys
from modelops.core.config import load_config
from modelops.core.errors import ConfigError
try:
    print(load_config(sys.argv[1]).schedule.cron)
except ConfigError as exc:
    sys.exit(f"config error: {exc}")
' "$config")

case "$project" in
  *"'"*|*%*) echo "install_cron.sh: the project path must not contain ' or % (cron): $project" >&2; exit 1 ;;
esac
line="$schedule cd '$project' && '$python' retrain_pipeline.py >> '$project/runs/cron.log' 2>&1 $marker"

# Current crontab without our line ("no crontab for user" is not an error).
current=$("$crontab_cmd" -l 2>/dev/null || true)
others=$(printf '%s\n' "$current" | grep -vF -- "$marker" | sed '/^$/d' || true)

case "$mode" in
  print)
    printf '%s\n' "$line"
    ;;
  install)
    mkdir -p "$project/runs"
    { [ -n "$others" ] && printf '%s\n' "$others"; printf '%s\n' "$line"; } | "$crontab_cmd" -
    echo "installed: $line"
    ;;
  remove)
    if [ "$others" = "$(printf '%s\n' "$current" | sed '/^$/d')" ]; then
      echo "nothing to remove: no modelops line for $project in the crontab"
    else
      { [ -n "$others" ] && printf '%s\n' "$others"; true; } | "$crontab_cmd" -
      echo "removed the modelops retrain line for $project"
    fi
    ;;
esac
