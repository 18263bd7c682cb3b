#!/usr/bin/env bash
# Installs every toolchain that handlers/build-all.sh and handlers/check-all.sh
# need, from the package registries only, at pinned versions. Idempotent: a
# step whose result is already in place (same version) is skipped.
#
#   handlers/install-toolchains.sh [STEP...]
#     STEP: apt wasm-tools wit-bindgen adapter python javascript cases
#           (default: all, in that order)
#
# For a Debian 12 machine with Node.js 20, Python 3.11 and rustc >= 1.88, run
# as root (or with sudo available for the apt step). Each step prints its time.
#
# What goes where:
#   apt          clang, lld, wasi-libc, libclang-rt-<clang major>-dev-wasm32 (system)
#   wasm-tools   ~/.cargo/bin/wasm-tools (cargo install, only the features used)
#   wit-bindgen  ~/.cargo/bin/wit-bindgen (cargo install, C generator only)
#   adapter      handlers/c/.toolchain/wasi_snapshot_preview1.reactor.wasm, from
#                the crate wasi-preview1-component-adapter-provider (the version
#                of the host's wasmtime)
#   python       handlers/python/.venv with componentize-py
#   javascript   handlers/javascript/node_modules (npm ci: ComponentizeJS)
#   cases        handlers/cases/node_modules (npm ci: jco, preview2-shim; for check-all.sh)
set -euo pipefail

WASM_TOOLS_VERSION=1.263.0
WIT_BINDGEN_VERSION=0.61.1
ADAPTER_VERSION=48.0.8 # = the wasmtime version of the host (Cargo.lock)
COMPONENTIZE_PY_VERSION=0.25.1
# ComponentizeJS, jco and preview2-shim: pinned in the package.json and
# package-lock.json files of handlers/javascript and handlers/cases.

here=$(cd "$(dirname "$0")" && pwd)
jobs=${INSTALL_JOBS:-$(nproc)}
export PATH="$HOME/.cargo/bin:$PATH"

steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(apt wasm-tools wit-bindgen adapter python javascript cases)

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else echo "error: the apt step needs root (or sudo)" >&2; return 1
  fi
}

step_apt() {
  local pkgs=(clang lld wasi-libc)
  local missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
  fi
  # The compiler-rt builtins for wasm32 must match clang's major version.
  local major
  major=$(clang --version | sed -n 's/.*clang version \([0-9]*\)\..*/\1/p' | head -n 1)
  local rt=libclang-rt-$major-dev-wasm32
  if ! dpkg-query -W -f='${Status}' "$rt" 2>/dev/null | grep -q 'install ok installed'; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$rt" >/dev/null \
      || { as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$rt" >/dev/null; }
  fi
  echo "   clang $(clang --version | head -n 1), wasi-libc $(dpkg-query -W -f='${Version}' wasi-libc), $rt"
}

cargo_install() { # crate version binary [cargo install args...]
  local crate=$1 version=$2 bin=$3
  shift 3
  if command -v "$bin" >/dev/null && "$bin" --version 2>/dev/null | grep -q " $version\b"; then
    echo "   $bin $version already installed"
    return
  fi
  nice -n 10 cargo install --locked --quiet -j "$jobs" "$crate@$version" "$@"
  echo "   $("$bin" --version)"
}

step_wasm_tools() {
  cargo_install wasm-tools "$WASM_TOOLS_VERSION" wasm-tools \
    --no-default-features --features component,validate,print,parse
}

step_wit_bindgen() {
  cargo_install wit-bindgen-cli "$WIT_BINDGEN_VERSION" wit-bindgen --no-default-features --features c
}

step_adapter() {
  local dest=$here/c/.toolchain
  local stamp=$dest/adapter.version
  if [ -f "$dest/wasi_snapshot_preview1.reactor.wasm" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$ADAPTER_VERSION" ]; then
    echo "   adapter $ADAPTER_VERSION already in place"
    return
  fi
  # The crate carries the adapter binaries in its source: fetch it through a
  # throwaway manifest, then copy the reactor adapter out of cargo's registry.
  local tmp
  tmp=$(mktemp -d)
  mkdir -p "$tmp/src"
  : >"$tmp/src/lib.rs"
  cat >"$tmp/Cargo.toml" <<TOML
[package]
name = "adapter-fetch"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
wasi-preview1-component-adapter-provider = "=$ADAPTER_VERSION"
TOML
  cargo fetch --quiet --manifest-path "$tmp/Cargo.toml"
  local manifest
  manifest=$(cargo metadata --quiet --format-version 1 --manifest-path "$tmp/Cargo.toml" |
    python3 -c 'import json, sys
m = json.load(sys.stdin)
print(next(p["manifest_path"] for p in m["packages"] if p["name"] == "wasi-preview1-component-adapter-provider"))')
  mkdir -p "$dest"
  cp "$(dirname "$manifest")/artefacts/wasi_snapshot_preview1.reactor.wasm" "$dest/"
  echo "$ADAPTER_VERSION" >"$stamp"
  rm -rf "$tmp"
  echo "   adapter $ADAPTER_VERSION ($(stat -c %s "$dest/wasi_snapshot_preview1.reactor.wasm") bytes)"
}

step_python() {
  local venv=$here/python/.venv
  if [ -x "$venv/bin/componentize-py" ] && "$venv/bin/componentize-py" --version 2>/dev/null | grep -q " $COMPONENTIZE_PY_VERSION\$"; then
    echo "   componentize-py $COMPONENTIZE_PY_VERSION already installed"
    return
  fi
  rm -rf "$venv"
  python3 -m venv "$venv"
  nice -n 10 "$venv/bin/pip" install --quiet --disable-pip-version-check "componentize-py==$COMPONENTIZE_PY_VERSION"
  echo "   $("$venv/bin/componentize-py" --version)"
}

npm_ci() { # folder
  local dir=$1
  local stamp=$dir/node_modules/.installed-lock
  if [ -f "$stamp" ] && cmp -s "$stamp" "$dir/package-lock.json"; then
    echo "   $(basename "$dir")/node_modules already matches package-lock.json"
    return
  fi
  (cd "$dir" && nice -n 10 npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  cp "$dir/package-lock.json" "$stamp"
  echo "   $(basename "$dir"): $(cd "$dir" && npm ls --depth=0 2>/dev/null | tail -n +2 | sed 's/^[^@]*//' | tr '\n' ' ')"
}

step_javascript() { npm_ci "$here/javascript"; }
step_cases() { npm_ci "$here/cases"; }

total_start=$(date +%s)
for s in "${steps[@]}"; do
  fn=step_${s//-/_}
  if ! declare -F "$fn" >/dev/null; then
    echo "error: unknown step $s" >&2
    exit 2
  fi
  echo "== $s"
  start=$(date +%s)
  "$fn"
  echo "   $s: $(($(date +%s) - start)) s"
done
echo "install-toolchains: done in $(($(date +%s) - total_start)) s"
