#!/usr/bin/env bash
# Builds the Python handlers for contract 0.2 (../../wit/v0.2) with
# componentize-py, which generates the bindings itself, in a temporary folder
# (nothing generated lands here):
#   OUT_DIR/logging-python-v2.wasm     app.py, the logging handler
#   OUT_DIR/quickstart-python-v2.wasm  quickstart/app.py, docs/handlers.md's quick start
# First it runs test_app.py (both handlers' logic under plain python3, against
# ../cases/logging.json; under a second): the host cannot run 0.2 handlers
# yet, so this is their only check in CI.
#
#   handlers/python-v2/build.sh [OUT_DIR]     (default: handlers/target/lang)
#
# componentize-py comes from handlers/python/.venv (handlers/install-toolchains.sh
# python makes it, with the pinned version) or from $COMPONENTIZE_PY.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../target/lang}
mkdir -p "$out"
out=$(cd "$out" && pwd)

cpy=${COMPONENTIZE_PY:-$here/../python/.venv/bin/componentize-py}
if ! [ -x "$cpy" ]; then
  echo "error: componentize-py not found at $cpy: run handlers/install-toolchains.sh python (pip install componentize-py into handlers/python/.venv) or set COMPONENTIZE_PY" >&2
  exit 1
fi
export COMPONENTIZE_PY=$cpy
python3 "$here/test_app.py"

wit=$here/../../wit/v0.2
build() { # folder output
  (cd "$1" && "$cpy" -d "$wit" -w handler componentize app -o "$out/$2") >/dev/null
  echo "wrote $out/$2 ($(stat -c %s "$out/$2") bytes)"
}
build "$here" logging-python-v2.wasm
build "$here/quickstart" quickstart-python-v2.wasm
