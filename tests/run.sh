#!/usr/bin/env bash
# Runs every test: unit tests of each crate and the end-to-end suite, which starts its own
# slapd on 127.0.0.1 with a per-run CA, runs lanyardd, and runs the system's getent and id in
# private mount namespaces (so it needs root; it never changes the host's /etc or /run).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "tests/run.sh: run as root: the end-to-end tests use private mount namespaces (unshare -m)" >&2
  exit 1
fi
bash tests/install-deps.sh
bash tests/check-module-deps.sh
# The end-to-end tests run the built agent and load the built NSS module.
cargo build --workspace --locked
cargo test --workspace --locked
# A short smoke of every fuzz target (15 s each, from the committed seeds), after the tests so a
# test failure is reported first. Its build is unoptimized and without ASan to stay around three
# minutes from clean; `bash tests/fuzz.sh` is the long run with both (see that script).
bash tests/fuzz.sh --smoke
