#!/usr/bin/env bash
# compose smoke: the stack as users start it, under whatever Docker-API engine `docker-compose`
# (or `docker compose`) reaches (DOCKER_HOST honoured). Its own compose project and ports moved by
# COMPOSE_SMOKE_PORT_OFFSET (default 20000), so it never collides with a running stack.
#
#   up -d --build -> every service running and healthy -> the form, /predict (JSON and form
#   fields) -> Prometheus: every target up, Alertmanager ready and known -> simulate + a retrain
#   through `exec trainer` promotes, serving answers from the new version -> down (volumes kept)
#   and up: the same version served -> every README URL answers -> a declared table (docs/your-data.md,
#   "Under Docker Compose", step by step): config.json replaced by examples/penguins' in the mounted
#   config folder, the weekly batches brought in with add-batch, a retrain through exec trainer,
#   served as /v1/models/penguins, predicted by feature name through the running frontend, the
#   trainer service's log saying it took up the new config -> no permission/read-only errors in any
#   log -> down -v.
#
# The config folder is a copy under test-artifacts/ (MODELOPS_CONFIG_DIR), so the checkout's
# config.json is never touched. PYTHON (default .venv/bin/python) writes the penguins batches.
#
# `down -v` runs also when a step fails; the logs stay in test-artifacts/compose-smoke/.
# COMPOSE_SMOKE_WAIT_SECONDS bounds each wait for health (default 900: a cold start trains the
# first model). Last line: `compose smoke: N/M checks passed`; exit 1 when any check fails.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

offset=${COMPOSE_SMOKE_PORT_OFFSET:-20000}
wait_seconds=${COMPOSE_SMOKE_WAIT_SECONDS:-900}
export COMPOSE_PROJECT_NAME=${COMPOSE_SMOKE_PROJECT:-modelops-smoke}
unset MODEL_NAME  # config.json's model_name names the model (docs/your-data.md)
export BIND_ADDRESS=127.0.0.1
export FRONTEND_PORT=$((5002 + offset)) TF_REST_PORT=$((8501 + offset)) TF_GRPC_PORT=$((8500 + offset))
export PROMETHEUS_PORT=$((9090 + offset)) ALERTMANAGER_PORT=$((9093 + offset)) TRAINER_METRICS_PORT=$((9102 + offset))
# Prometheus and Alertmanager behind basic auth, as on a network: the hash as the launcher makes it.
export MONITORING_USER=modelops MONITORING_PASSWORD=${COMPOSE_SMOKE_PASSWORD:-compose-smoke-password}
MONITORING_PASSWORD_HASH=$("${PYTHON:-.venv/bin/python}" -m modelops.monitoring_auth hash | sed "s/^[A-Z_]*='//; s/'$//") || exit 2
export MONITORING_PASSWORD_HASH
monitoring_auth=(-u "$MONITORING_USER:$MONITORING_PASSWORD")
frontend=http://127.0.0.1:$FRONTEND_PORT
model=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["model_name"])' config.json)
rest=http://127.0.0.1:$TF_REST_PORT
serving=$rest/v1/models/$model
prometheus=http://127.0.0.1:$PROMETHEUS_PORT
artifacts=test-artifacts/compose-smoke
python=${PYTHON:-.venv/bin/python}
rm -rf "$artifacts/config" "$artifacts/penguins"
mkdir -p "$artifacts/config"
cp config.json "$artifacts/config/config.json"
chmod -R a+rX "$artifacts/config"  # the containers read it as uid 10001
export MODELOPS_CONFIG_DIR=$PWD/$artifacts/config

if command -v docker-compose >/dev/null 2>&1; then compose=(docker-compose)
elif docker compose version >/dev/null 2>&1; then compose=(docker compose)
else echo "compose smoke: neither docker-compose nor docker compose is installed" >&2; exit 2; fi
services=$("${compose[@]}" config --services | sort | tr '\n' ' ')

passed=0 total=0
say() { printf '[smoke %(%H:%M:%S)T] %s\n' -1 "$*"; }
check() {  # check NAME COMMAND...: run it, count it, say how it went (a failure's last lines too)
  local name=$1 output; shift
  total=$((total + 1))
  output=$("$@" 2>&1); local status=$?
  printf '%s\n' "--- $name (exit $status)" "$output" >>"$artifacts/checks.log"
  if [ "$status" -eq 0 ]; then passed=$((passed + 1)); say "ok   $name"
  else say "FAIL $name (output in $artifacts/checks.log)"; printf '%s\n' "$output" | tail -n 20 | sed 's/^/    | /'; fi
}
finish() {
  "${compose[@]}" logs --no-color >"$artifacts/services.log" 2>&1
  "${compose[@]}" down -v --remove-orphans >>"$artifacts/down.log" 2>&1
  say "logs: $artifacts/services.log"
  echo "compose smoke: $passed/$total checks passed"
  [ "$passed" -eq "$total" ] && [ "$total" -gt 0 ]
}
trap 'finish; exit $?' EXIT
trap 'exit 130' INT TERM
: >"$artifacts/checks.log"

# --- helpers ---------------------------------------------------------------------------------
contains() {  # contains PATTERN: stdin has a line matching it. Reads to the end (unlike grep -q, whose early
  # exit fails a long writer such as curl with EPIPE, and so the whole pipe under pipefail).
  grep -e "$1" >/dev/null
}
json() {  # json URL PYTHON-EXPRESSION-OF-d: exit 0 when the expression over the JSON body is true
  curl -fsS --max-time 10 "${monitoring_auth[@]}" "$1" | python3 -c "import json, sys; d = json.load(sys.stdin); sys.exit(0 if ($2) else 1)"
}
eventually() {  # eventually SECONDS COMMAND...: retry every 2 s until it succeeds
  local end=$((SECONDS + $1)); shift
  until "$@"; do [ "$SECONDS" -lt "$end" ] || return 1; sleep 2; done
}
all_healthy() {  # every service has a running container, healthy where it has a healthcheck
  local service id state
  for service in $services; do
    id=$("${compose[@]}" ps -q "$service" 2>/dev/null | head -1)
    [ -n "$id" ] || return 1
    state=$(docker inspect --format '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$id") || return 1
    case $state in "running healthy" | "running none") ;; *) return 1 ;; esac
  done
}
wait_healthy() {
  if eventually "$wait_seconds" all_healthy; then "${compose[@]}" ps; return 0; fi
  "${compose[@]}" ps; return 1
}
served_version() {  # the version the frontend answers from (X-Model-Version)
  curl -fsS --max-time 10 -o /dev/null -D - -H 'Content-Type: application/json' \
    -d '{"instances": [[1.5, 2.3]]}' "$frontend/predict" | tr -d '\r' | awk 'tolower($1) == "x-model-version:" {print $2}'
}
serves() { [ "$(served_version)" = "$1" ]; }
form_page() { curl -fsS --max-time 10 "$frontend/" | contains 'name="x1"'; }
predict_json() {
  curl -fsS --max-time 10 -H 'Content-Type: application/json' -d '{"instances": [[1.5, 2.3], [0.8, -1.2]]}' \
    "$frontend/predict" | python3 -c "import json, sys; p = json.load(sys.stdin)['predictions']; sys.exit(0 if len(p) == 2 and all(0 <= r[0] <= 1 for r in p) else 1)"
}
predict_form() {
  curl -fsS --max-time 10 -H 'Accept: application/json' -d 'x1=1.5&x2=2.3' "$frontend/predict" | contains predictions
}
targets_up() {
  json "$prometheus/api/v1/targets" "d['data']['activeTargets'] and all(t['health'] == 'up' for t in d['data']['activeTargets'])"
}
alertmanager_known() {
  curl -fsS --max-time 10 "${monitoring_auth[@]}" "http://127.0.0.1:$ALERTMANAGER_PORT/-/ready" >/dev/null &&
    json "$prometheus/api/v1/alertmanagers" "any('alertmanager:9093' in a['url'] for a in d['data']['activeAlertmanagers'])"
}
anonymous_refused() {  # Prometheus and Alertmanager answer 401 without the password
  [ "$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 "$prometheus/api/v1/targets")" = 401 ] &&
    [ "$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 -X POST "http://127.0.0.1:$ALERTMANAGER_PORT/api/v2/silences")" = 401 ]
}
verified() {  # the history holds a verified record for version $1
  "${compose[@]}" exec -T trainer python retrain_pipeline.py history --json |
    python3 -c "import json, sys; sys.exit(0 if any(r.get('event') == 'verified' and r.get('version') == $1 for r in map(json.loads, sys.stdin)) else 1)"
}
retrain_promotes() {
  "${compose[@]}" exec -T trainer python retrain_pipeline.py simulate &&
    "${compose[@]}" exec -T trainer python retrain_pipeline.py
}
readme_urls() {  # every URL the README's Access Points and API sections name, on the moved ports
  local url
  for url in "$frontend/" "$frontend/healthz" "$frontend/readyz" "$frontend/metrics" "$frontend/openapi.json" \
      "http://127.0.0.1:$TRAINER_METRICS_PORT/metrics" "$serving" "$rest/monitoring/prometheus/metrics" \
      "$prometheus/" "http://127.0.0.1:$ALERTMANAGER_PORT/"; do
    curl -fsS --max-time 10 "${monitoring_auth[@]}" -o /dev/null "$url" || { echo "no answer from $url"; return 1; }
  done
  curl -fsS --max-time 10 "http://127.0.0.1:$TRAINER_METRICS_PORT/metrics" | contains '^modelops_trainer_runs_total' &&
    (exec 3<>"/dev/tcp/127.0.0.1/$TF_GRPC_PORT")  # gRPC: the port takes connections
}
# --- a declared table: the steps of docs/your-data.md, "Under Docker Compose" ------------------
use_penguins() {  # replace config.json as an editor does (a new file renamed over the old one)
  cp examples/penguins/config.json "$MODELOPS_CONFIG_DIR/config.json.new" &&
    chmod a+r "$MODELOPS_CONFIG_DIR/config.json.new" &&
    mv "$MODELOPS_CONFIG_DIR/config.json.new" "$MODELOPS_CONFIG_DIR/config.json"
}
add_penguin_batches() {
  local batch
  "$python" examples/penguins/split_batches.py --out "$artifacts/penguins" --weeks 4 || return 1
  for batch in "$artifacts/penguins"/week-*.csv; do
    "${compose[@]}" exec -T trainer python retrain_pipeline.py add-batch --name "${batch##*/}" - <"$batch" || return 1
  done
}
penguin='{"instances": [{"island": "Biscoe", "bill_length_mm": 48.6, "bill_depth_mm": 16.0, "flipper_length_mm": 230, "body_mass_g": 5800, "sex": "male"}]}'
penguins_served() {
  json "$rest/v1/models/penguins" "any(v['state'] == 'AVAILABLE' for v in d['model_version_status'])" &&
    curl -fsS --max-time 10 -d "$penguin" "$rest/v1/models/penguins:predict" | contains '"class"'
}
penguin_predicted() {  # through the frontend started on the demo's config, by feature name
  curl -fsS --max-time 10 -H 'Content-Type: application/json' -d "$penguin" "$frontend/predict" |
    python3 -c "import json, sys; p = json.load(sys.stdin)['predictions']; sys.exit(0 if len(p) == 1 and 'Gentoo' in json.dumps(p) else 1)"
}
config_taken_up() {  # the trainer service's log: it took up the new config.json without a restart
  "${compose[@]}" logs --no-color trainer 2>&1 | contains 'config.json changed (model_name'
}
clean_logs() {
  ! "${compose[@]}" logs --no-color 2>&1 | grep -iE 'permission denied|read-only file system'
}

# --- the run ---------------------------------------------------------------------------------
say "engine: ${DOCKER_HOST:-default}; compose: ${compose[*]}; project $COMPOSE_PROJECT_NAME; services: $services"
start=$SECONDS
check "up -d --build" "${compose[@]}" up -d --build
check "every service running and healthy (${wait_seconds}s bound)" wait_healthy
say "stack healthy after $((SECONDS - start)) s"
check "the form at /" form_page
check "/predict with JSON" predict_json
check "/predict with form fields" predict_form
check "TF Serving REST: an AVAILABLE version" json "$serving" "any(v['state'] == 'AVAILABLE' for v in d['model_version_status'])"
check "Prometheus: every target up" eventually 120 targets_up
check "Alertmanager ready and known to Prometheus" eventually 60 alertmanager_known
check "Prometheus and Alertmanager refuse anonymous clients (401)" anonymous_refused
first=$(served_version)
check "a first version is served" test -n "$first"
check "v$first verified by the trainer once serving answered" eventually 120 verified "$first"
check "simulate, then a retrain through exec trainer promotes" retrain_promotes
next=$((${first:-0} + 1))
check "serving answers from v$next" eventually 60 serves "$next"
check "down (volumes kept)" "${compose[@]}" down
check "up -d again" "${compose[@]}" up -d
check "every service running and healthy after the restart" wait_healthy
check "the same version (v$next) served after the restart" eventually 60 serves "$next"
check "every README URL answers (trainer metrics on :$TRAINER_METRICS_PORT, gRPC, TF Serving metrics ...)" readme_urls
say "a declared table: examples/penguins"
check "config.json replaced by examples/penguins/config.json in the mounted folder" use_penguins
check "the penguin batches brought in with add-batch through exec -T trainer" add_penguin_batches
check "a retrain through exec trainer promotes the penguins model" \
  "${compose[@]}" exec -T trainer python retrain_pipeline.py
check "TF Serving serves it as /v1/models/penguins and answers by feature name" eventually 60 penguins_served
check "the running frontend predicts a penguin by feature name (no restart)" eventually 60 penguin_predicted
check "the trainer service took up the new config.json at its next tick" eventually 90 config_taken_up
check "no permission denied or read-only errors in any service's logs" clean_logs
say "wall time $((SECONDS - start)) s"
