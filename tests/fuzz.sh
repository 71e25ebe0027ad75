#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets, cargo-fuzz + libFuzzer) one after the other and
# fails if any finds a crash, printing the crashing input's path and the end of the log.
#
#   bash tests/fuzz.sh [SECONDS]          the long run: SECONDS per target (default 60), built
#                                         with AddressSanitizer and optimizations. Corpora stay
#                                         in fuzz/corpus/<target> (gitignored) and grow from run
#                                         to run.
#   bash tests/fuzz.sh --smoke [SECONDS]  what tests/run.sh (CI) runs: SECONDS per target
#                                         (default 15), from the committed seeds only, built
#                                         without a sanitizer and without optimizations.
#
# Both start from fuzz/seeds/<target> (hand-made valid inputs, read only) plus the shipped
# packaging/lanyard.toml for the config target. Crashing inputs land in fuzz/artifacts/<target>;
# a crash found becomes a regression unit test in the crate that owns the code.
#
# Why the smoke's build differs: the default build (ASan, release, one codegen unit) takes about
# eight minutes from clean on 2 cores; the smoke's takes about three. Both keep libFuzzer's
# coverage feedback (the sancov instrumentation does not depend on the sanitizer), debug
# assertions and overflow checks. What the smoke gives up: ASan, whose memory-error checks only
# matter for unsafe code (nss_lanyard's buffer packing has none: it computes offsets into a
# slice), its leak detection, and libFuzzer's -malloc_limit_mb (it needs the
# sanitizer's malloc hooks), which flags a single huge allocation such as a frame length trusted
# before it is checked; -rss_limit_mb still applies. Unoptimized code also runs fewer inputs a
# second, which a 15-second smoke can afford. The long run keeps all of it.
#
# cargo-fuzz passes -Z flags (sanitizer, coverage instrumentation); RUSTC_BOOTSTRAP=1 lets the
# stable toolchain accept them.
set -euo pipefail
cd "$(dirname "$0")/.."
smoke=no
if [ "${1:-}" = --smoke ]; then
  smoke=yes
  shift
fi
if [ "$smoke" = yes ]; then
  seconds="${1:-15}"
  build=(--sanitizer none --dev)
else
  seconds="${1:-60}"
  build=()
fi
export RUSTC_BOOTSTRAP=1
# Pinned: cargo-fuzz's flags and its libfuzzer-sys expectations change between releases.
cargo_fuzz_version=0.13.2
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install --locked cargo-fuzz --version "$cargo_fuzz_version"
fi
cd fuzz
cargo fuzz build "${build[@]}"

if [ "$smoke" = yes ]; then
  # A fresh corpus each time, so the smoke is the same run everywhere: what a developer's long
  # runs collected in corpus/ would make it slower and its result local.
  corpus_root="$(mktemp -d /tmp/lanyard-fuzz-smoke.XXXXXX)"
  trap 'rm -rf "$corpus_root"' EXIT
else
  corpus_root=corpus
fi
failed=()
for target in $(cargo fuzz list); do
  corpus="$corpus_root/$target"
  mkdir -p "$corpus" "artifacts/$target"
  # libFuzzer writes new inputs to the first directory only: the seeds stay as committed.
  dirs=("$corpus")
  [ -d "seeds/$target" ] && dirs+=("seeds/$target")
  [ "$target" = config ] && cp ../packaging/lanyard.toml "$corpus/"
  # -timeout: one input running a minute is a hang, reported as a crash (a peer could stall the
  # agent the same way); libFuzzer's default is twenty minutes.
  extra=(-max_total_time="$seconds" -timeout=60)
  # A request may be up to MAX_REQUEST (64 KiB): let inputs grow past libFuzzer's 4 KiB default.
  [ "$target" = frame ] && extra+=(-max_len=70000)
  log="/tmp/lanyard-fuzz-$target.log"
  echo "fuzz: $target for ${seconds}s"
  if ! cargo fuzz run "${build[@]}" "$target" "${dirs[@]}" -- "${extra[@]}" >"$log" 2>&1; then
    tail -40 "$log" >&2
    # libFuzzer: "Test unit written to <fuzz>/artifacts/<target>/crash-<sha1>" (or timeout-, oom-).
    grep -a 'Test unit written to' "$log" | sed 's|.*Test unit written to |fuzz: crashing input: |' >&2 || true
    failed+=("$target")
  else
    # "Done 123456 runs in 15 second(s)", and the coverage reached.
    grep -a '^#[0-9]*.*DONE' "$log" | tail -1
    grep -a '^Done' "$log" | tail -1
  fi
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: crashes in: ${failed[*]} (inputs in fuzz/artifacts/, logs in /tmp/lanyard-fuzz-*.log)" >&2
  echo "fuzz: reproduce with: cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run ${build[*]} <target> <input>" >&2
  exit 1
fi
echo "fuzz: every target ran ${seconds}s without a crash"
