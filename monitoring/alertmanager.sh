#!/bin/sh
# Start Alertmanager with monitoring/alertmanager.yml rendered for this start: the webhook URL
# from NOTIFY_WEBHOOK_URL in place of the placeholder, or the "null" receiver when it is unset.
# Alertmanager reads no environment variables, and Debian 12's (0.25) has no url_file.
# POSIX sh with sed and awk only: it runs in the prom/alertmanager image (busybox) and locally.
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

grep -q "\"$placeholder\"" "$template" || { echo "alertmanager.sh: no $placeholder in $template" >&2; exit 2; }
case $url in
  "")
    echo "alertmanager.sh: NOTIFY_WEBHOOK_URL is not set: alerts go to the null receiver (see them in the Alertmanager UI); set it to be notified" >&2
    sed 's/^  receiver: operator$/  receiver: "null"/' "$template" > "$rendered"
    grep -q '^  receiver: "null"$' "$rendered" || { echo "alertmanager.sh: no '  receiver: operator' route in $template" >&2; exit 2; }
    ;;
  *[!A-Za-z0-9._~:/?#@!\$\&\'\(\)*+,\;=%\[\]-]*)
    echo "alertmanager.sh: NOTIFY_WEBHOOK_URL has characters a URL cannot hold unencoded (spaces, quotes, backslashes...): percent-encode them" >&2
    exit 2
    ;;
  http://?*|https://?*)
    # Literal replacement (sed would read & and \ in the URL as its own syntax).
    awk -v placeholder="$placeholder" '{
      i = index($0, placeholder)
      if (i) $0 = substr($0, 1, i - 1) ENVIRON["NOTIFY_WEBHOOK_URL"] substr($0, i + length(placeholder))
      print
    }' "$template" > "$rendered"
    echo "alertmanager.sh: alerts go to the webhook at $(echo "$url" | sed 's|^\(https*://[^/?#]*\).*|\1|')" >&2
    ;;
  *)
    echo "alertmanager.sh: NOTIFY_WEBHOOK_URL must start with http:// or https://" >&2
    exit 2
    ;;
esac
exec "$@" --config.file="$rendered"
