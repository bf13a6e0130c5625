#!/usr/bin/env bash
# Runs each fuzz target for a bounded time (default 60 s each). Needs the nightly toolchain
# and cargo-fuzz (`cargo install cargo-fuzz`).
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
mkdir -p corpus/decode_manifest corpus/patch_object
cp ../examples/manifests/*.yaml corpus/decode_manifest/
for target in decode_manifest patch_object; do
  cargo +nightly fuzz run "$target" "corpus/$target" -- -max_total_time="$seconds" -rss_limit_mb=4096
done
