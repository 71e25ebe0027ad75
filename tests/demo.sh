#!/usr/bin/env bash
# Shows Lanyard working end to end: a throwaway slapd on 127.0.0.1 with sample users (TLS
# from a CA made for this run), lanyardd, then the system's getent and id through
# libnss_lanyard.so.2 in a private mount namespace. Leaves nothing behind.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "tests/demo.sh: run as root: the demo uses a private mount namespace (unshare -m)" >&2
  exit 1
fi
bash tests/install-deps.sh
cargo build --workspace --locked --quiet
exec cargo run -p lanyard-tests --bin lanyard-demo --locked --quiet
