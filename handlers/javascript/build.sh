#!/usr/bin/env bash
# Builds the JavaScript logging handler into OUT_DIR/logging-javascript.wasm
# (runs build.mjs, which calls ComponentizeJS's componentize()).
#
#   handlers/javascript/build.sh [OUT_DIR]        (default: handlers/target/lang)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v node >/dev/null; then
  echo "error: node not found: install Node.js 20 (the machine's Node.js)" >&2
  exit 1
fi
if ! [ -d "$here/node_modules/@bytecodealliance/componentize-js" ]; then
  echo "error: @bytecodealliance/componentize-js not installed in $here/node_modules: run handlers/install-toolchains.sh (npm ci in handlers/javascript)" >&2
  exit 1
fi
exec node "$here/build.mjs" "$@"
