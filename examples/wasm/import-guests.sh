#!/usr/bin/env bash
# Builds the example guests and imports them into skiff's image store (DATA dir from
# $SKIFF_DATA_DIR, default ./skiff-data). Works whether or not the server runs.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bash "$root/examples/guests/build.sh" >/dev/null
skiff="${SKIFF:-$root/target/release/skiff}"
for guest in hello memory-hog spinner exit-code sleeper chatter ci-check; do
  "$skiff" image import "$root/examples/guests/target/wasm32-wasip1/release/$guest.wasm" "$guest:v1"
done
for guest in hello-p2 hello_http echo_json http_lab; do
  "$skiff" image import "$root/examples/guests/target/wasm32-wasip2/release/$guest.wasm" "${guest//_/-}:v1"
done
for wat in "$root"/examples/wasm/hostile/*.wat; do
  "$skiff" image import "$wat" "hostile/$(basename "$wat" .wat):v1"
done
