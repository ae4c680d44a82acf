#!/usr/bin/env bash
# Live benchmark (issue 4), run by `make bench`: latency from close() of a new 12 MP camera JPEG
# to the WebSocket `added` message and to its thumbnail being ready, median and p99 over
# BENCH_LIVE_COUNT (100) files, against the targets (50 ms, 300 ms) and vipsthumbnail measured
# in the same run. A benchmark, not a test: exits 0 on a miss. Only 127.0.0.1 is used.
# Installs python3-websockets and libvips-tools with apt when missing.
#
#   BENCH_BIN=path   benchmark a binary built earlier     BENCH_LIVE_COUNT=100
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CORPUS="${CORPUS:-$ROOT/../shared/corpus}"
RUN="$(mktemp -d "${TMPDIR:-/tmp}/spis-bench-live.XXXXXX")"
trap 'rm -rf "$RUN"' EXIT

say() { echo "bench-live: $*" >&2; }
die() { echo "bench-live: $*" >&2; exit 1; }

need_apt() { # need_apt PACKAGE: install a Debian package when `check` fails
  local pkg=$1
  shift
  "$@" >/dev/null 2>&1 && return
  say "installing $pkg with apt-get"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null; }
}
need_apt python3-websockets /usr/bin/python3 -c "import websockets"
need_apt libvips-tools command -v vipsthumbnail

# The binary that ships, and the glibc build (scripts/bench/common.sh).
# shellcheck source=scripts/bench/common.sh
. "$ROOT/scripts/bench/common.sh"
bench_binaries both

# Baseline 12 MP-class camera photos, as a surveillance camera or phone writes them.
PHOTOS=(
  "drewnoakes-metadata-extractor-images/jpg/Canon Powershot A2500.JPG"
  "ianare-exif-samples/jpg/tests/42_IndexError.jpg"
  "drewnoakes-metadata-extractor-images/jpg/Canon EOS 1000D.jpg"
  "drewnoakes-metadata-extractor-images/jpg/Kodak Z1012 IS.jpg"
  "drewnoakes-metadata-extractor-images/jpg/Canon PowerShot G11.jpg"
)
mkdir -p "$RUN/photos"
for i in "${!PHOTOS[@]}"; do
  cp "$CORPUS/${PHOTOS[$i]}" "$RUN/photos/$(printf 'p%02d.jpg' "$i")"
done

echo "The shipped binary: $BIN"
/usr/bin/python3 "$ROOT/scripts/bench/live.py" --bin "$BIN" --photos "$RUN/photos" \
  --count "${BENCH_LIVE_COUNT:-100}" --vips
if [[ "$GLIBC_BIN" != none ]]; then
  echo
  echo "The glibc build beside it, same photos: $GLIBC_BIN"
  /usr/bin/python3 "$ROOT/scripts/bench/live.py" --bin "$GLIBC_BIN" --photos "$RUN/photos" \
    --count "${BENCH_LIVE_COUNT:-100}"
fi
