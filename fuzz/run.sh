#!/usr/bin/env bash
# Fuzzes arena's parsers with libFuzzer (cargo fuzz) for a fixed budget per target.
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 600 s, every target)
#
# With the nightly toolchain installed, targets build with AddressSanitizer; without it (or with
# ARENA_FUZZ_TOOLCHAIN=pinned), on the pinned toolchain with coverage instrumentation only
# (`-s none`). ARENA_FUZZ_DEV=1 builds the dev profile (arena's crates unoptimized, dependencies
# optimized): a shorter build, for CI's smoke run, where the build takes longer than the fuzzing.
# New inputs that reach new coverage are added to fuzz/corpus/TARGET; a crash, a timeout or an
# out-of-memory input is written to fuzz/artifacts/TARGET and stops the run with its status.
# Every input that ever failed belongs in a regression test (fuzz/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
shift || true
if [ -n "${ARENA_FUZZ_TOOLCHAIN:-}" ]; then
  toolchain=$ARENA_FUZZ_TOOLCHAIN
elif rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  toolchain=nightly
else
  toolchain=
fi
if [ "$toolchain" = nightly ]; then
  run=(cargo +nightly fuzz run --fuzz-dir fuzz)
else
  run=(cargo fuzz run --fuzz-dir fuzz -s none)
fi
[ "${ARENA_FUZZ_DEV:-0}" = 1 ] && run+=(--dev)
export CARGO_TARGET_DIR=${ARENA_FUZZ_TARGET_DIR:-${CARGO_TARGET_DIR:-target}/fuzz}
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list --fuzz-dir fuzz)
fi
lscpu | grep -E '^(Model name|CPU\(s\))' || true
echo "toolchain: ${toolchain:-pinned (no sanitizer)}; $secs s per target: ${targets[*]}"
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  echo "== $t"
  start=$(date +%s)
  "${run[@]}" "$t" "fuzz/corpus/$t" -- \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -artifact_prefix="fuzz/artifacts/$t/" -print_final_stats=1 2>&1 | tail -n 20
  echo "== $t: $(( $(date +%s) - start )) s, corpus $(ls "fuzz/corpus/$t" | wc -l) inputs"
done
