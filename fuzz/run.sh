#!/usr/bin/env bash
# Builds the fuzz targets with libFuzzer's coverage instrumentation on the stable toolchain
# (the flags cargo-fuzz would pass, minus the nightly-only sanitizer) and runs each one.
# Usage: fuzz/run.sh [seconds per target, default 30] [target ...]
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-30}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(frame datagram snapshot_delta)
host="$(rustc -vV | sed -n 's/^host: //p')"
# An explicit --target keeps these flags off build scripts and proc macros.
RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cdebug-assertions" \
  cargo build --release --locked --target "$host" --target-dir target/fuzz
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  echo "== fuzzing $t for ${seconds}s"
  "target/fuzz/$host/release/$t" -max_total_time="$seconds" -max_len=70000 \
    -artifact_prefix="artifacts/$t/" "corpus/$t" 2>&1 | grep -E "DONE|Done|ERROR|panicked|SUMMARY" || true
  if ls "artifacts/$t"/crash-* > /dev/null 2>&1; then
    echo "fuzz target $t found a crash: see fuzz/artifacts/$t" >&2
    exit 1
  fi
done
