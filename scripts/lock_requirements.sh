#!/usr/bin/env bash
# Regenerate the hash-pinned locks the images install with --require-hashes:
#   requirements.frontend.lock  <- requirements.frontend.txt (and every transitive dependency)
#   requirements.trainer.lock   <- requirements.trainer.txt  (and every transitive dependency)
#   requirements.serving-api.lock: tensorflow-serving-api alone, installed --no-deps (its own
#     dependency is the full tensorflow, which would sit next to tensorflow-cpu)
# Run it after changing a pin in a requirements file (tests/test_packaging.py checks the locks
# agree with pyproject.toml). It resolves for this machine's Python (3.11 on Linux, as the
# images' python:3.11-slim), from PyPI only (no local mirrors), with pip-tools in a throwaway venv.
set -euo pipefail
cd "$(dirname "$0")/.."
PIP_TOOLS=pip-tools==7.6.2
SERVING_API=tensorflow-serving-api==2.21.0

venv=$(mktemp -d)
trap 'rm -rf "$venv"' EXIT
# Only PyPI: no pip.conf mirrors or find-links, whose files may differ from what a build fetches.
export PIP_CONFIG_FILE=/dev/null
unset PIP_FIND_LINKS PIP_EXTRA_INDEX_URL PIP_INDEX_URL PIP_CONSTRAINT
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet "$PIP_TOOLS"

compile() {  # input output
    "$venv/bin/pip-compile" --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
        --resolver=backtracking --output-file "$2" "$1"
}
compile requirements.frontend.txt requirements.frontend.lock
compile requirements.trainer.txt requirements.trainer.lock
# One wheel, no resolution: pip download fetches the file and pip hash gives its sha256.
"$venv/bin/pip" download --quiet --no-deps --only-binary=:all: --dest "$venv/dl" "$SERVING_API"
{
    echo "# tensorflow-serving-api alone, installed with --no-deps (scripts/lock_requirements.sh)"
    echo "$SERVING_API \\"
    for wheel in "$venv"/dl/*.whl; do
        echo "    --hash=$("$venv/bin/pip" hash "$wheel" | sed -n 's/^--hash=//p')"
    done
} > requirements.serving-api.lock
grep -q -- '--hash=sha256:' requirements.serving-api.lock
