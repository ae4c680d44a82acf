#!/usr/bin/env bash
# Lighthouse performance of the web app (issue 16), run by `make bench`: the gallery, the login
# page and a share link's page, mobile and desktop presets, against the release binary over the
# browser tests' library. Timing-dependent, so a benchmark and not a test: it prints the scores
# (and the audits below full marks) and exits 0 whatever they are; `make test` checks the other
# categories. Reports go to target/lighthouse. Only 127.0.0.1 is used.
#
#   BENCH_BIN=path  a binary built earlier (default: the static musl build, which ships)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
say() { echo "bench-lighthouse: $*" >&2; }
die() { say "$*"; exit 1; }
# The binary that ships (scripts/bench/common.sh).
# shellcheck source=scripts/bench/common.sh
. "$ROOT/scripts/bench/common.sh"
bench_binaries shipped
echo "bench-lighthouse: $BIN (goal: performance >= 95 on every page, mobile and desktop)" >&2
LIGHTHOUSE_PERF=1 SPIS_BIN="$BIN" LIGHTHOUSE_DIR="$ROOT/target/lighthouse" \
  "$ROOT/tests/web/run.sh" --test-name-pattern=Lighthouse 2>&1 | grep -E '^(# )?(lighthouse|  performance)' | sed 's/^# //' || true
