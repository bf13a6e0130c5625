#!/usr/bin/env bash
# Runs skiff's CI example pipeline against a running `skiff serve` and exits with its outcome:
# 0 when the report passes, 1 when it (or the lint shards) failed, 2 on timeout.
#
#   examples/ci/run.sh [SOURCE_DIR]      (default: skiff's own src/)
#
# SKIFF names the skiff binary (default: `skiff` on PATH); SKIFF_DATA_DIR the server's data
# directory (default ./skiff-data), as for every skiff command.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source_dir="$(cd "${1:-$here/../../src}" && pwd)"
skiff="${SKIFF:-skiff}"

# The checker guest, built for wasm32-wasip1 and imported into the node's image store.
if ! built="$(bash "$here/../guests/build.sh" 2>&1)"; then
    echo "$built" >&2
    exit 2
fi
"$skiff" image import "$here/../guests/target/wasm32-wasip1/release/ci-check.wasm" ci-check:v1

# A fresh run: the previous run's Jobs go (their pods with them), the artifacts volume stays.
"$skiff" delete job lint report --ignore-not-found >/dev/null
sed "s|__SOURCE__|$source_dir|" "$here/pipeline.yaml" | "$skiff" apply -f -

# Stream every shard while it runs, then the report; the report's outcome is the exit status.
"$skiff" logs -f job/lint
"$skiff" logs -f job/report
"$skiff" wait job/lint job/report --timeout 10m
