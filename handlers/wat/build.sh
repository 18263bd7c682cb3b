#!/usr/bin/env bash
# Builds the hand-written WAT logging handler (a subset: see README.md) into
# OUT_DIR/logging-wat.wasm: wasm-tools embeds the `handler` world's type
# information into the core module, then makes the component (no WASI
# adapter: the module imports nothing but the host's `log`).
#
#   handlers/wat/build.sh [OUT_DIR]        (default: handlers/target/lang)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../target/lang}
mkdir -p "$out"
out=$(cd "$out" && pwd)

WASM_TOOLS=${WASM_TOOLS:-wasm-tools}
if ! command -v "$WASM_TOOLS" >/dev/null; then
  echo "error: wasm-tools ($WASM_TOOLS) not found: run handlers/install-toolchains.sh (cargo install wasm-tools)" >&2
  exit 1
fi
build=$here/build
mkdir -p "$build"
cd "$here"
"$WASM_TOOLS" component embed ../../wit --world handler logging.wat -o "$build/core.wasm"
"$WASM_TOOLS" component new "$build/core.wasm" -o "$out/logging-wat.wasm"
"$WASM_TOOLS" validate "$out/logging-wat.wasm"
echo "wrote $out/logging-wat.wasm ($(stat -c %s "$out/logging-wat.wasm") bytes)"
