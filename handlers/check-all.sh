#!/usr/bin/env bash
# Checks every handler built by build-all.sh against the shared behaviour
# table handlers/cases/logging.json (see handlers/cases/README.md), under
# Node.js with jco; and, when it is built, the Rust reference handler too.
#
#   handlers/check-all.sh [OUT_DIR]        (default: handlers/target/lang)
#
# Needs handlers/cases/node_modules (handlers/install-toolchains.sh cases).
# Known failures are passed with --expect-fail, each with its reason:
# - javascript, "byte order mark": ComponentizeJS 0.23.0 drops one leading
#   U+FEFF from every string argument before the handler's code sees it, so
#   "\ufeff{}" arrives as "{}" and is accepted (the reference refuses it).
# The WAT handler is a subset (handlers/wat/README.md): --core-only.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/target/lang}
if ! [ -d "$here/cases/node_modules/@bytecodealliance/jco" ]; then
  echo "error: jco not installed in handlers/cases/node_modules: run handlers/install-toolchains.sh cases" >&2
  exit 1
fi
check() {
  node "$here/cases/check.mjs" "$@"
}
failed=()
total_pass=0
total_fail=0
total_skip=0
run() { # name wasm args...
  local name=$1 wasm=$2
  shift 2
  echo "== $name"
  if ! [ -f "$wasm" ]; then
    echo "   missing $wasm (build it with handlers/build-all.sh)" >&2
    failed+=("$name")
    total_fail=$((total_fail + 1))
    return
  fi
  local log
  log=$(check "$wasm" --name "$name" "$@" 2>&1)
  local rc=$?
  echo "$log" | grep -v '^[0-9]* passed, [0-9]* failed' | sed 's/^/   /'
  local line
  line=$(echo "$log" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
  if [ -z "$line" ]; then
    total_fail=$((total_fail + 1))
  else
    set -- $line
    total_pass=$((total_pass + $1))
    total_fail=$((total_fail + $3))
    total_skip=$((total_skip + ${5:-0}))
    echo "   $line"
  fi
  [ $rc -eq 0 ] || failed+=("$name")
}

reference=$here/target/wasm32-wasip2/release/logging.wasm
[ -f "$reference" ] && run rust "$reference"
run python "$out/logging-python.wasm"
run javascript "$out/logging-javascript.wasm" --expect-fail "byte order mark"
run c "$out/logging-c.wasm"
run wat "$out/logging-wat.wasm" --core-only
echo "handlers: $total_pass passed, $total_fail failed, $total_skip skipped"
[ ${#failed[@]} -eq 0 ] || { echo "check-all: failed: ${failed[*]}" >&2; exit 1; }
