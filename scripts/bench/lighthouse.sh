#!/usr/bin/env bash
# Lighthouse performance of the web app (issue 16), run by `make bench`: the gallery, the login
# page and a share link's page, mobile and desktop presets, against the release binary over the
# browser tests' library. Timing-dependent, so a benchmark and not a test: it prints the scores
# (and the audits below full marks) and exits 0 whatever they are; `make test` checks the other
# categories. Reports go to target/lighthouse. Only 127.0.0.1 is used.
#
#   BENCH_BIN=path  a binary built earlier (default: the release build)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if [[ -n "${BENCH_BIN:-}" ]]; then
  BIN="$BENCH_BIN"
else
  echo "bench-lighthouse: building the release binary" >&2
  (cd "$ROOT" && cargo build --release --locked --quiet)
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/spis"
fi
echo "bench-lighthouse: $BIN (goal: performance >= 95 on every page, mobile and desktop)" >&2
LIGHTHOUSE_PERF=1 SPIS_BIN="$BIN" LIGHTHOUSE_DIR="$ROOT/target/lighthouse" \
  "$ROOT/tests/web/run.sh" --test-name-pattern=Lighthouse 2>&1 | grep -E '^(# )?(lighthouse|  performance)' | sed 's/^# //' || true
