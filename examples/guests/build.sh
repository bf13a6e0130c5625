#!/usr/bin/env bash
# Builds skiff's example Wasm guests in release mode:
#   target/wasm32-wasip1/release/{hello,memory-hog,spinner,exit-code,sleeper,chatter,ci-check}.wasm
#   target/wasm32-wasip2/release/hello-p2.wasm   (a WASI preview 2 command component)
#   target/wasm32-wasip2/release/{hello_http,echo_json,http_lab}.wasm   (wasi:http functions)
# Adds the Rust targets with rustup when they are missing.
set -euo pipefail
cd "$(dirname "$0")"

# Build into this directory's target/ whatever the caller's environment says (this script is
# also run from skiff's tests, under cargo).
unset CARGO_BUILD_TARGET RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS
export CARGO_TARGET_DIR="$PWD/target"

if command -v rustup >/dev/null 2>&1; then
    installed="$(rustup target list --installed)"
    for t in wasm32-wasip1 wasm32-wasip2; do
        if ! grep -qx "$t" <<<"$installed"; then
            rustup target add "$t"
        fi
    done
fi

cargo build --release --target wasm32-wasip1 \
    -p hello -p memory-hog -p spinner -p exit-code -p sleeper -p chatter -p ci-check
cargo build --release --target wasm32-wasip2 -p hello-p2 -p hello-http -p echo-json -p http-lab

ls -l target/wasm32-wasip1/release/*.wasm target/wasm32-wasip2/release/*.wasm
