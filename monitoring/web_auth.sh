#!/bin/sh
# Basic auth for Prometheus and Alertmanager in compose (docker-compose.yml): their images are
# busybox, with no bcrypt, so the hash comes in ready-made (MONITORING_PASSWORD_HASH, which
# scripts/run_all.sh computes from MONITORING_PASSWORD, or `python -m modelops.monitoring_auth hash`
# prints for .env). Local mode does the same from modelops/stack.py (modelops/monitoring_auth.py).
#
#   web_auth.sh COMMAND [FLAG...]   exec COMMAND FLAG... --web.config.file=DIR/web.yml
#   web_auth.sh --probe URL         the healthcheck: GET URL (with the credentials when auth is on)
#
# Environment: WEB_AUTH_HASH (bcrypt; empty = no auth), WEB_AUTH_USER (default modelops),
# WEB_AUTH_PASSWORD (Prometheus: for its own scrape and for Alertmanager; both: the probe),
# WEB_PUBLISHED_ON (the host address the ports are published on: beyond loopback, auth is
# required and the server is not started without it), WEB_AUTH_DIR (default /tmp, a tmpfs).
# For Prometheus (a --config.file=FILE flag), FILE is copied with credentials where it scrapes
# itself and where it sends alerts, as modelops.monitoring_auth.with_basic_auth does.
set -eu
user=${WEB_AUTH_USER:-modelops}
hash=${WEB_AUTH_HASH:-}
password=${WEB_AUTH_PASSWORD:-}
dir=${WEB_AUTH_DIR:-/tmp}

if [ "${1:-}" = --probe ]; then
  if [ -n "$hash" ]; then
    exec wget -q -O /dev/null --header "Authorization: Basic $(printf '%s:%s' "$user" "$password" | base64 | tr -d '\n')" "$2"
  fi
  exec wget -q -O /dev/null "$2"
fi
if [ $# -lt 1 ]; then
  echo "usage: $0 COMMAND [FLAG...] | --probe URL" >&2
  exit 2
fi

if [ -z "$hash" ]; then
  case ${WEB_PUBLISHED_ON:-127.0.0.1} in
    127.*|::1|localhost) exec "$@" ;;
  esac
  if [ -n "$password" ]; then
    echo "web_auth.sh: MONITORING_PASSWORD is set but MONITORING_PASSWORD_HASH is not: start with scripts/run_all.sh, or add the line 'python -m modelops.monitoring_auth hash' prints to .env" >&2
  else
    echo "web_auth.sh: BIND_ADDRESS=${WEB_PUBLISHED_ON} opens Prometheus and Alertmanager to the network: set MONITORING_PASSWORD (docs/security.md)" >&2
  fi
  exit 2
fi
case $hash in
  \$2[aby]\$[0-9][0-9]\$*) ;;
  *) echo "web_auth.sh: MONITORING_PASSWORD_HASH is not a bcrypt hash (\$2b\$...): quote it in .env ('...')" >&2; exit 2 ;;
esac
umask 077
rm -f "$dir/web.yml"
printf 'basic_auth_users:\n  %s: %s\n' "$user" "$hash" > "$dir/web.yml"

# Prometheus: its config gets the credentials it needs (rule files stay where they were).
count=$#  # the flags are rebuilt after the originals, which are then shifted away
for arg in "$@"; do
  case $arg in
    --config.file=*)
      if [ -z "$password" ]; then
        echo "web_auth.sh: Prometheus asks for a password now and needs it to scrape itself: set MONITORING_PASSWORD" >&2
        exit 2
      fi
      config=${arg#--config.file=}
      rm -f "$dir/monitoring-password" "$dir/prometheus.yml"
      printf '%s' "$password" > "$dir/monitoring-password"
      auth="basic_auth: {username: $user, password_file: $dir/monitoring-password}"
      awk -v auth="$auth" -v base="$(dirname "$config")/" '
        /^[^ ]/ { section = $0 }
        section == "rule_files:" && /^  - [^\/]/ { $0 = "  - " base substr($0, 5) }
        $0 == "  - job_name: prometheus" { print; print "    " auth; next }
        $0 == "    - static_configs:" && previous == "  alertmanagers:" { $0 = "    - " auth "\n      static_configs:" }
        { previous = $0; print }' "$config" > "$dir/prometheus.yml"
      if [ "$(grep -c password_file "$dir/prometheus.yml")" -ne 2 ]; then
        echo "web_auth.sh: $config has no prometheus job or alertmanagers entry to give credentials to" >&2
        exit 2
      fi
      arg=--config.file=$dir/prometheus.yml
      ;;
  esac
  set -- "$@" "$arg"
done
shift "$count"
exec "$@" --web.config.file="$dir/web.yml"
