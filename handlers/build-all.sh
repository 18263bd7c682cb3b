#!/usr/bin/env bash
# Builds the logging handler of every other language into OUT_DIR:
#   logging-python.wasm  logging-javascript.wasm  logging-c.wasm  logging-wat.wasm
# and, for contract 0.2 (wit/v0.2), the Python port and docs/handlers.md's
# Python quick start (python-v2/build.sh, which first runs python-v2/test_app.py):
#   logging-python-v2.wasm  quickstart-python-v2.wasm
#
#   handlers/build-all.sh [OUT_DIR] [LANGUAGE...]
#     OUT_DIR   default: handlers/target/lang
#     LANGUAGE  python, javascript, c, wat, python-v2 (default: all five)
#
# Installs nothing: a missing tool stops that language's build with a message
# naming the tool (handlers/install-toolchains.sh installs them all). Every
# language is attempted; the exit status is 1 if any failed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/target/lang}
shift || true
langs=("$@")
[ ${#langs[@]} -eq 0 ] && langs=(python javascript c wat python-v2)
mkdir -p "$out"
out=$(cd "$out" && pwd)
# cargo install puts wasm-tools and wit-bindgen here.
[ -d "$HOME/.cargo/bin" ] && PATH="$HOME/.cargo/bin:$PATH"

failed=()
for lang in "${langs[@]}"; do
  script=$here/$lang/build.sh
  if ! [ -x "$script" ]; then
    echo "error: unknown language $lang (no $script)" >&2
    failed+=("$lang")
    continue
  fi
  echo "== $lang"
  start=$(date +%s%N)
  if nice -n 10 "$script" "$out"; then
    ms=$((($(date +%s%N) - start) / 1000000))
    printf '   %s built in %d.%03d s\n' "$lang" $((ms / 1000)) $((ms % 1000))
  else
    echo "   $lang: BUILD FAILED" >&2
    failed+=("$lang")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "build-all: failed: ${failed[*]}" >&2
  exit 1
fi
echo "build-all: every handler is in $out"
