#!/usr/bin/env bash
# Memory (issue 17): peak RSS of the whole process with 100k photos indexed while the background
# pass makes both renditions of 12-16 MP camera JPEGs, default settings, shipped binary and the
# glibc build in the same run. The library is scripts/bench.sh's 100k (hard links, so nothing is
# copied) plus 60 camera photos (five baseline JPEGs of the corpus, 12 links each). RSS is
# sampled every second; VmHWM is the kernel's peak. Goal: VmHWM <= 50 MiB.
# A benchmark, not a test: exits 0 on a miss. Only 127.0.0.1 is used; every wait is bounded.
#
#   BENCH_COUNT=100000   photos in the synthetic library (scripts/bench/gen_library.py)
#   BENCH_DIR=/tmp/spis-bench   where the library is (made there when missing)
#   BENCH_MEMORY_AVIF_SECONDS=60   how long the AVIF pass that follows is sampled too
#   BENCH_BIN, BENCH_GLIBC_BIN   as for scripts/bench.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CORPUS="${CORPUS:-$ROOT/../shared/corpus}"
COUNT="${BENCH_COUNT:-100000}"
BENCH_DIR="${BENCH_DIR:-/tmp/spis-bench}"
AVIF_SECONDS="${BENCH_MEMORY_AVIF_SECONDS:-60}"
say() { echo "bench-memory: $*" >&2; }
die() { echo "bench-memory: $*" >&2; exit 1; }
# shellcheck source=scripts/bench/common.sh
. "$ROOT/scripts/bench/common.sh"
need curl curl
bench_binaries both

mkdir -p "$BENCH_DIR"
RUN="$(mktemp -d "$BENCH_DIR/memory.XXXXXX")"
PID=""
cleanup() {
  [[ -z "$PID" ]] || kill "$PID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$RUN"
}
trap cleanup EXIT

LIB="$BENCH_DIR/library-$COUNT"
if [[ ! -f "$LIB/.spis-bench.json" ]]; then
  say "generating $COUNT photos in $RUN/library"
  LIB="$RUN/library"
  python3 "$ROOT/scripts/bench/gen_library.py" "$LIB" --count "$COUNT" >&2
fi
say "linking the library and 60 camera photos into $RUN/media"
cp -al "$LIB" "$RUN/media"
mkdir -p "$RUN/media/Camera"
CAMERA=(
  "drewnoakes-metadata-extractor-images/jpg/Canon Powershot A2500.JPG"
  "ianare-exif-samples/jpg/tests/42_IndexError.jpg"
  "drewnoakes-metadata-extractor-images/jpg/Canon EOS 1000D.jpg"
  "drewnoakes-metadata-extractor-images/jpg/Kodak Z1012 IS.jpg"
  "drewnoakes-metadata-extractor-images/jpg/Canon PowerShot G11.jpg"
)
for i in "${!CAMERA[@]}"; do cp "$CORPUS/${CAMERA[$i]}" "$RUN/media/Camera/c$i-00.jpg"; done
for ((i = 0; i < 60; i++)); do
  n=$((i % 5)) k=$((i / 5))
  ((k == 0)) || ln "$RUN/media/Camera/c$n-00.jpg" "$RUN/media/Camera/$(printf 'c%d-%02d.jpg' "$n" "$k")"
done
TOTAL=$((COUNT + 60))

status() { curl -fsS "$BASE/api/status" 2>/dev/null || true; }
field() { python3 -c "import json,sys
try: s = json.load(sys.stdin)
except Exception: sys.exit(1)
print($1)"; }
kib() { awk -v k="$1" '$1 == k ":" { print $2 }' "/proc/$PID/status"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# pass BIN TAG: one run; sets IDX_TAG (RSS when indexed), HWM_TAG, END_TAG, WALL_TAG, AVIF_TAG.
pass() {
  local bin=$1 tag=$2 state="$RUN/state-$2" i s t0 idx="" line
  rm -rf "$state"
  "$bin" --media "$RUN/media" --state-dir "$state" --listen 127.0.0.1:0 --log warn --no-auth \
    --rate-limit 1000000 >"$state.out" 2>"$state.err" &
  PID=$!
  t0=$(date +%s.%N)
  spis_base "$state"
  say "$tag: index, then both renditions of $TOTAL photos (at most 30 minutes)"
  for ((i = 0; i < 1800; i++)); do
    s="$(status)"
    line="$(field 's["indexing"]["done"], s["thumbnails"]["background"]["done"], s["thumbnails"]["background"]["total"]' <<<"$s" || true)"
    if [[ -z "$idx" && "$line" == True* ]]; then idx="$(kib VmRSS)"; fi
    read -r _ made total <<<"$line"
    [[ "$line" == True* && "${total:-0}" -ge "$TOTAL" && "$made" -ge "$total" ]] && break
    sleep 1
  done
  [[ "$line" == True* && "${made:-0}" -ge "$TOTAL" ]] || die "$tag: the pass did not end: $line"
  printf -v "WALL_$tag" '%s' "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')"
  printf -v "IDX_$tag" '%s' "$(mib "$idx")"
  printf -v "HWM_$tag" '%s' "$(mib "$(kib VmHWM)")"
  # The AVIF pass follows; sampled for a while, its peak counted too.
  sleep "$AVIF_SECONDS"
  printf -v "AVIF_$tag" '%s' "$(status | field 's["thumbnails"]["avif"]["done"]')"
  printf -v "HWMA_$tag" '%s' "$(mib "$(kib VmHWM)")"
  printf -v "END_$tag" '%s' "$(mib "$(kib VmRSS)")"
  kill "$PID"
  wait "$PID" 2>/dev/null || true
  PID=""
}

pass "$BIN" shipped
[[ "$GLIBC_BIN" == none ]] || pass "$GLIBC_BIN" glibc

# shellcheck disable=SC2154 # set by pass through printf -v
{
  echo
  echo "Memory: $COUNT photos indexed + both renditions of 60 camera JPEGs (12-16 MP), default settings"
  printf '| %-44s | %-16s | %-16s | %-8s |\n' "Figure" "shipped" "glibc" "goal"
  printf '| %-44s | %-16s | %-16s | %-8s |\n' "---" "---" "---" "---"
  printf '| %-44s | %-16s | %-16s | %-8s |\n' "RSS when indexed (VmRSS)" "$IDX_shipped MiB" "${IDX_glibc:--} MiB" "-"
  printf '| %-44s | %-16s | %-16s | %-8s |\n' "peak RSS through the JPEG pass (VmHWM)" "$HWM_shipped MiB" "${HWM_glibc:--} MiB" "<= 50"
  printf '| %-44s | %-16s | %-16s | %-8s |\n' "  pass wall time" "$WALL_shipped s" "${WALL_glibc:--} s" "-"
  printf '| %-44s | %-16s | %-16s | %-8s |\n' "peak RSS after ${AVIF_SECONDS} s of the AVIF pass" "$HWMA_shipped MiB" "${HWMA_glibc:--} MiB" "<= 50"
  printf '| %-44s | %-16s | %-16s | %-8s |\n' "  AVIFs made by then / RSS then" "$AVIF_shipped / $END_shipped MiB" "${AVIF_glibc:--} / ${END_glibc:--} MiB" "-"
  awk -v h="$HWMA_shipped" 'BEGIN { if (h > 50) print "MISS: peak RSS " h " MiB > 50 MiB" }'
}
