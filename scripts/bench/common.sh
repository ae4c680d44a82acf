# Sourced by the benchmark scripts: which binaries they measure. Needs ROOT (the repository) and
# a say/die pair. Sets BIN, the binary that ships (the static x86_64 musl build, built unless
# BENCH_BIN names one built earlier), and GLIBC_BIN, the glibc release build measured beside it
# (BENCH_GLIBC_BIN names one built earlier, or "none" to skip it). `bench_binaries both` measures both; `bench_binaries shipped` skips
# the glibc build unless BENCH_GLIBC_BIN names one.
# shellcheck shell=bash

# Where cargo puts its output, whether CARGO_TARGET_DIR or a cargo config says so.
bench_target_dir() {
  (cd "$ROOT" && "${CARGO:-cargo}" metadata --format-version 1 --no-deps) |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])'
}

bench_binaries() {
  local target_dir
  target_dir="$(bench_target_dir)"
  if [[ -n "${BENCH_BIN:-}" ]]; then
    BIN="$BENCH_BIN"
  else
    say "building the shipped binary (static, x86_64 musl)"
    (cd "$ROOT" && scripts/static.sh x86_64-unknown-linux-musl >&2) ||
      die "the static build failed (BENCH_BIN=/path/to/spis benchmarks a binary built earlier)"
    BIN="$target_dir/x86_64-unknown-linux-musl/release/spis"
  fi
  [[ -x "$BIN" ]] || die "no spis binary at $BIN"
  GLIBC_BIN="${BENCH_GLIBC_BIN:-}"
  [[ -n "$GLIBC_BIN" || "${1:-}" != shipped ]] || GLIBC_BIN=none
  if [[ -z "$GLIBC_BIN" ]]; then
    say "building the glibc release binary (the anchor)"
    (cd "$ROOT" && "${CARGO:-cargo}" build --release --locked --quiet) || die "the glibc release build failed"
    GLIBC_BIN="$target_dir/release/spis"
  fi
  [[ "$GLIBC_BIN" == none || -x "$GLIBC_BIN" ]] || die "no glibc spis binary at $GLIBC_BIN"
  # Exported so that a script run by another (make bench) measures the same binaries unbuilt.
  export BENCH_BIN="$BIN" BENCH_GLIBC_BIN="$GLIBC_BIN"
}
