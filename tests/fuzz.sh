#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets, cargo-fuzz + libFuzzer) for SECONDS each (default
# 60), one after the other, and fails if any finds a crash. Corpora stay in fuzz/corpus/<target>
# (gitignored) and grow from run to run; crashing inputs land in fuzz/artifacts/<target>.
#
# cargo-fuzz passes -Z flags (sanitizer, coverage instrumentation); RUSTC_BOOTSTRAP=1 lets the
# stable toolchain accept them. The first build takes ~7.5 min on 2 cores (ASan, release).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install --locked cargo-fuzz
fi
cd fuzz
cargo fuzz build
mkdir -p corpus/config
[ -e corpus/config/lanyard.toml ] || cp ../packaging/lanyard.toml corpus/config/
failed=()
for target in $(cargo fuzz list); do
  mkdir -p "corpus/$target"
  extra=()
  # A request may be up to MAX_REQUEST (64 KiB): let inputs grow past libFuzzer's 4 KiB default.
  [ "$target" = frame ] && extra=(-max_len=70000)
  echo "fuzz: $target for ${seconds}s"
  if ! cargo fuzz run "$target" "corpus/$target" -- -max_total_time="$seconds" "${extra[@]}" 2>"/tmp/lanyard-fuzz-$target.log"; then
    tail -40 "/tmp/lanyard-fuzz-$target.log" >&2
    failed+=("$target")
  else
    grep -a '^Done\|^#.*DONE' "/tmp/lanyard-fuzz-$target.log" | tail -1
  fi
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: crashes in: ${failed[*]} (inputs in fuzz/artifacts/, logs in /tmp/lanyard-fuzz-*.log)" >&2
  exit 1
fi
echo "fuzz: every target ran ${seconds}s without a crash"
