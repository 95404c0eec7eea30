#!/bin/sh
# Start Alertmanager with monitoring/alertmanager.yml rendered for this start: the webhook URL
# from NOTIFY_WEBHOOK_URL in place of the placeholders, routed to the "operator" receiver (or
# "operator-slack" for a Slack incoming webhook), or to the "null" receiver when it is unset.
# Alertmanager reads no environment variables, and Debian 12's (0.25) has no url_file. The URL
# holds a secret: only the receiver in use is rendered (Alertmanager's /api/v2/status shows a
# webhook receiver's URL in plain text), into a file only Alertmanager's user can read (0600).
# POSIX sh with awk and grep only: it runs in the prom/alertmanager image (busybox) and locally.
#
#   alertmanager.sh TEMPLATE RENDERED ALERTMANAGER_COMMAND [FLAG...]
#
# execs ALERTMANAGER_COMMAND FLAG... --config.file=RENDERED.
set -eu
if [ $# -lt 3 ]; then
  echo "usage: $0 TEMPLATE RENDERED ALERTMANAGER_COMMAND [FLAG...]" >&2
  exit 2
fi
template=$1 rendered=$2
shift 2
placeholder=http://notify-webhook-url.invalid/
url=${NOTIFY_WEBHOOK_URL:-}

case $url in
  "")
    receiver='"null"'
    echo "alertmanager.sh: NOTIFY_WEBHOOK_URL is not set: alerts go to the null receiver (see them in the Alertmanager UI); set it to be notified" >&2
    ;;
  *[!A-Za-z0-9._~:/?#@!\$\&\'\(\)*+,\;=%\[\]-]*)
    echo "alertmanager.sh: NOTIFY_WEBHOOK_URL has characters a URL cannot hold unencoded (spaces, quotes, backslashes...): percent-encode them" >&2
    exit 2
    ;;
  https://hooks.slack.com/?*) receiver=operator-slack ;;
  http://?*|https://?*) receiver=operator ;;
  *)
    echo "alertmanager.sh: NOTIFY_WEBHOOK_URL must start with http:// or https://" >&2
    exit 2
    ;;
esac

# Literal replacement (sed would read & and \ in the URL as its own syntax); the receivers not
# in use (a list entry "  - name: X" up to the next entry or section) are left out.
umask 077
rm -f "$rendered"
awk -v placeholder="$placeholder" -v receiver="$receiver" '
  $0 == "  receiver: operator" { $0 = "  receiver: " receiver }
  /^  - name: / { name = $3; skip = (name ~ /^operator/ && name != receiver) }
  /^[^ ]/ { skip = 0 }
  skip { next }
  {
    i = index($0, placeholder)
    if (i && ENVIRON["NOTIFY_WEBHOOK_URL"] != "") $0 = substr($0, 1, i - 1) ENVIRON["NOTIFY_WEBHOOK_URL"] substr($0, i + length(placeholder))
    print
  }' "$template" > "$rendered"
if ! grep -qx "  receiver: $receiver" "$rendered"; then
  echo "alertmanager.sh: $template has no top-level '  receiver: operator' route to set" >&2
  exit 2
fi
if [ -n "$url" ]; then
  grep -qF "\"$url\"" "$rendered" || { echo "alertmanager.sh: no $placeholder in $template to set" >&2; exit 2; }
  echo "alertmanager.sh: alerts go to $receiver at $(echo "$url" | awk -F/ '{print $1 "//" $3}')" >&2
fi
exec "$@" --config.file="$rendered"
