#!/usr/bin/env bash
# Every benchmark figure in one run: the Extism peer first, then
# `hotreload bench` (release) with it and with the other languages' handlers
# when they are built (handlers/build-all.sh). Extra arguments go to
# `hotreload bench` (e.g. --json).
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2 >/dev/null
cargo build --release
extism_json=target/extism-bench.json
args=()
if bash benches/extism/run.sh > "$extism_json"; then
  args+=(--extism "$extism_json")
else
  echo "the Extism peer did not run; continuing without it" >&2
fi
for lang in python javascript c wat; do
  f=handlers/target/lang/logging-$lang.wasm
  [ -f "$f" ] && args+=(--handler "$lang=$f")
done
exec target/release/hotreload bench "${args[@]}" "$@"
