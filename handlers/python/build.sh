#!/usr/bin/env bash
# Builds the Python logging handler into OUT_DIR/logging-python.wasm with
# componentize-py (which generates the bindings for ../../wit itself, in a
# temporary folder: nothing generated lands here).
#
#   handlers/python/build.sh [OUT_DIR]        (default: handlers/target/lang)
#
# componentize-py comes from handlers/python/.venv (handlers/install-toolchains.sh
# makes it, with the pinned version) or from $COMPONENTIZE_PY.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../target/lang}
mkdir -p "$out"
out=$(cd "$out" && pwd)

cpy=${COMPONENTIZE_PY:-$here/.venv/bin/componentize-py}
if ! [ -x "$cpy" ]; then
  echo "error: componentize-py not found at $cpy: run handlers/install-toolchains.sh (pip install componentize-py into handlers/python/.venv) or set COMPONENTIZE_PY" >&2
  exit 1
fi
cd "$here"
"$cpy" -d ../../wit -w handler componentize app -o "$out/logging-python.wasm" >/dev/null
echo "wrote $out/logging-python.wasm ($(stat -c %s "$out/logging-python.wasm") bytes)"
