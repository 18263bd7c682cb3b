#!/usr/bin/env bash
# Builds the C logging handler into OUT_DIR/logging-c.wasm.
#
#   handlers/c/build.sh [OUT_DIR]        (default: handlers/target/lang)
#
# Steps: wit-bindgen's C generator makes the bindings from ../../wit; clang
# (Debian's, with wasi-libc) compiles them with logging.c into a core module
# (a WASI preview-1 reactor); wasm-tools makes it a component, adapting the
# preview-1 imports with the reactor adapter.
#
# Tools (handlers/install-toolchains.sh installs them all):
#   wit-bindgen (cargo install wit-bindgen-cli), wasm-tools (cargo install),
#   clang + wasm-ld + wasi-libc + libclang-rt wasm32 (Debian), and the adapter
#   .wasm at handlers/c/.toolchain/wasi_snapshot_preview1.reactor.wasm
#   (or $WASI_ADAPTER), taken from the crate wasi-preview1-component-adapter-provider.
# Overridable: CC (default clang), WIT_BINDGEN, WASM_TOOLS, WASI_ADAPTER, WASI_SYSROOT.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../target/lang}
mkdir -p "$out"
out=$(cd "$out" && pwd)

CC=${CC:-clang}
WIT_BINDGEN=${WIT_BINDGEN:-wit-bindgen}
WASM_TOOLS=${WASM_TOOLS:-wasm-tools}
WASI_ADAPTER=${WASI_ADAPTER:-$here/.toolchain/wasi_snapshot_preview1.reactor.wasm}
# Debian's wasi-libc installs its headers and libraries where clang finds them
# by default; WASI_SYSROOT points elsewhere (e.g. a wasi-sdk sysroot).
sysroot=()
[ -n "${WASI_SYSROOT:-}" ] && sysroot=(--sysroot="$WASI_SYSROOT")

missing() {
  echo "error: $1 not found: run handlers/install-toolchains.sh ($2)" >&2
  exit 1
}
command -v "$WIT_BINDGEN" >/dev/null || missing "wit-bindgen ($WIT_BINDGEN)" "cargo install wit-bindgen-cli"
command -v "$WASM_TOOLS" >/dev/null || missing "wasm-tools ($WASM_TOOLS)" "cargo install wasm-tools"
command -v "$CC" >/dev/null || missing "C compiler ($CC)" "apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32"
[ -f "$WASI_ADAPTER" ] || missing "WASI preview-1 reactor adapter ($WASI_ADAPTER)" "crate wasi-preview1-component-adapter-provider"

build=$here/build
rm -rf "$build"
mkdir -p "$build"
"$WIT_BINDGEN" c "$here/../../wit" --world handler --out-dir "$build" >/dev/null
"$CC" --target=wasm32-wasi "${sysroot[@]}" -mexec-model=reactor -O2 -std=c11 \
  -Wall -Wextra -Werror -Wno-unused-parameter \
  -I"$build" "$here/logging.c" "$build/handler.c" "$build/handler_component_type.o" \
  -Wl,--strip-debug -Wl,-z,stack-size=262144 \
  -o "$build/logging.core.wasm" \
  || { echo "error: compiling with $CC failed; if wasi-libc or libclang_rt.builtins-wasm32.a is missing, run handlers/install-toolchains.sh" >&2; exit 1; }
"$WASM_TOOLS" component new "$build/logging.core.wasm" \
  --adapt "wasi_snapshot_preview1=$WASI_ADAPTER" -o "$out/logging-c.wasm"
"$WASM_TOOLS" validate "$out/logging-c.wasm"
echo "wrote $out/logging-c.wasm ($(stat -c %s "$out/logging-c.wasm") bytes)"
