#!/usr/bin/env bash
# Builds the control page's wasm bundle from source into examples/web/pkg (not committed):
# mqtt-client-wasm for wasm32-unknown-unknown (release), then wasm-bindgen --target web. The
# wasm-bindgen CLI must be the version of the wasm-bindgen crate in Cargo.lock:
#   cargo install wasm-bindgen-cli --version "$(scripts/build-wasm.sh --bindgen-version)" --locked
# Extra arguments go to cargo build (e.g. --locked).
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p')
if [ "${1:-}" = "--bindgen-version" ]; then echo "$version"; exit 0; fi
if ! command -v wasm-bindgen >/dev/null 2>&1; then
  echo "wasm-bindgen is missing: cargo install wasm-bindgen-cli --version $version --locked" >&2
  exit 1
fi
have=$(wasm-bindgen --version | awk '{print $2}')
if [ "$have" != "$version" ]; then
  echo "wasm-bindgen $have, but Cargo.lock has $version:" \
    "cargo install wasm-bindgen-cli --version $version --locked --force" >&2
  exit 1
fi
target="${CARGO_TARGET_DIR:-target}"
# Size over speed for the download, for this build only (the workspace's release profile
# also serves the benches).
export CARGO_PROFILE_RELEASE_OPT_LEVEL=s CARGO_PROFILE_RELEASE_LTO=true \
  CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 CARGO_PROFILE_RELEASE_PANIC=abort
cargo build --release --target wasm32-unknown-unknown -p mqtt-client-wasm "$@"
wasm-bindgen --target web --no-typescript --out-dir examples/web/pkg \
  "$target/wasm32-unknown-unknown/release/mqtt_client_wasm.wasm"
ls -l examples/web/pkg
