#!/usr/bin/env bash
# Builds the Extism plugin and the benchmark host (release, niced, one job by
# default: JOBS=N to change), then runs the benchmark and prints its JSON.
# Extra arguments go to extism-bench (e.g. --iterations 10000).
set -euo pipefail
cd "$(dirname "$0")"
JOBS="${JOBS:-1}"

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    rustup target add wasm32-unknown-unknown
fi

nice -n 19 cargo build --locked -j "$JOBS" --profile wasm \
    --target wasm32-unknown-unknown -p extism-logging-plugin
nice -n 19 cargo build --locked -j "$JOBS" --release -p extism-bench

exec ./target/release/extism-bench \
    target/wasm32-unknown-unknown/wasm/extism_logging_plugin.wasm --json "$@"
