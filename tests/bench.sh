#!/usr/bin/env bash
# Benchmarks NSS lookups through Lanyard in one process (no process start in the figures),
# with the release build and ../shared/tools/nssbench.c. Prints a table; asserts nothing.
# As root: it uses the same private mount namespace as the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
tools=${LANYARD_SHARED_TOOLS:-../shared/tools}
if [ ! -f "$tools/nssbench.c" ]; then
  echo "tests/bench.sh: $tools/nssbench.c not found; set LANYARD_SHARED_TOOLS to the folder holding it" >&2
  exit 1
fi
bash tests/install-deps.sh
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
gcc -O2 -o "$scratch/nssbench" "$tools/nssbench.c"
cargo build --release --workspace --locked --quiet
LANYARD_PROFILE=release cargo run --release -p lanyard-tests --bin lanyard-bench --locked --quiet -- "$scratch/nssbench"
