#!/usr/bin/env bash
# AVIF benchmark (issue 16), run by `make bench`: for each photo, an 800 px AVIF from spis
# (`/resize?format=avif`, rav1e at speed 8, quality 70, 4:4:4) against libvips
# (`vips thumbnail ... .avif[Q=60]`, libheif with aom at its default effort and 4:2:0), one
# core each:
#  - the CPU of the first encode (decode, resize and encode, as a site's first request costs);
#  - the bytes, beside spis's JPEG q80 of the same size;
#  - SSIM (luma, 7x7 windows as scikit-image computes it) of each against the same picture
#    resized losslessly, so bytes are compared at a known quality, not at a nominal "Q".
# A benchmark, not a test: it prints ratios and exits 0 on a miss. Only 127.0.0.1 is used.
#
#   BENCH_BIN=path   benchmark a binary built earlier
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CORPUS="${CORPUS:-$ROOT/../shared/corpus}"
RUN="$(mktemp -d "${TMPDIR:-/tmp}/spis-bench-avif.XXXXXX")"
PID=""
cleanup() {
  [[ -n "$PID" ]] && kill "$PID" 2>/dev/null
  wait 2>/dev/null || true
  rm -rf "$RUN"
}
trap cleanup EXIT
say() { echo "bench-avif: $*" >&2; }
die() { echo "bench-avif: $*" >&2; exit 1; }
# The binary that ships (scripts/bench/common.sh).
# shellcheck source=scripts/bench/common.sh
. "$ROOT/scripts/bench/common.sh"

need vips libvips-tools
need curl curl
command -v heif-convert >/dev/null 2>&1 || command -v heif-dec >/dev/null 2>&1 || need heif-convert libheif-examples
HEIF_DEC="$(command -v heif-dec || command -v heif-convert)"

# numpy for SSIM, pinned, in a virtualenv under the cache.
# shellcheck source=tests/api/venv.sh
. "$ROOT/tests/api/venv.sh"
VENV="${SPIS_CACHE:-/var/cache/spis-ci}/numpy-2.2.6"
ensure_venv avif.sh "$VENV" "numpy==2.2.6"

bench_binaries shipped

# Camera photos and two wallpapers (smooth skies, fine detail): 9-12 MP.
PHOTOS=(
  "drewnoakes-metadata-extractor-images/jpg/Canon EOS 1000D.jpg"
  "drewnoakes-metadata-extractor-images/jpg/Canon PowerShot G11.jpg"
  "drewnoakes-metadata-extractor-images/jpg/Kodak Z1012 IS.jpg"
  "debian-lomiri-wallpapers-16.04/backgrounds/sunset_by_Aitzol_Berasategi.jpg"
  "debian-lomiri-wallpapers-16.04/backgrounds/Wine_by_Jakkub_Mede.jpg"
)
mkdir -p "$RUN/photos" "$RUN/out"
for i in "${!PHOTOS[@]}"; do cp "$CORPUS/${PHOTOS[$i]}" "$RUN/photos/$(printf 'p%02d.jpg' "$i")"; done


export VIPS_CONCURRENCY=1
taskset -c 0 env SPIS_THUMB_WORKERS=0 SPIS_RESIZE_SIZES=800 "$BIN" --media "$RUN/photos" \
  --state-dir "$RUN/state" --listen 127.0.0.1:0 --log warn --no-auth >"$RUN/spis.out" 2>"$RUN/spis.err" &
PID=$!
spis_base "$RUN/spis"
for ((i = 0; i < 600; i++)); do
  curl -fsS "$BASE/api/status" | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["indexing"]["done"] else 1)' && break
  sleep 0.1
done
curl -fsS "$BASE/api/media?limit=100" | python3 -c '
import json, sys
for i in json.load(sys.stdin)["items"]: print(i["id"], i["name"])' >"$RUN/ids.txt"

printf '%-12s %8s %8s %9s %9s %9s %7s %7s %7s\n' photo "spis ms" "vips ms" "spis B" "vips B" "JPEG B" \
  "SSIM s" "SSIM v" "SSIM j"
total_s=0 total_v=0 bytes_s=0 bytes_v=0 bytes_j=0
while read -r id name; do
  stem="${name%.jpg}"
  box="w=800&h=800"
  before=$(proc_cpu_ms "$PID")
  curl -fsS -o "$RUN/out/$stem-spis.avif" "$BASE/api/media/$id/resize?$box&format=avif"
  ms_s=$(($(proc_cpu_ms "$PID") - before))
  curl -fsS -o "$RUN/out/$stem-spis.jpg" "$BASE/api/media/$id/resize?$box&format=jpeg"
  ms_v=$(cpu_ms taskset -c 0 vips thumbnail "$RUN/photos/$name" "$RUN/out/$stem-vips.avif[Q=60]" 800 --height 800)
  # The reference: the same resize, stored losslessly.
  vips thumbnail "$RUN/photos/$name" "$RUN/out/$stem-ref.png" 800 --height 800
  for who in spis vips; do "$HEIF_DEC" "$RUN/out/$stem-$who.avif" "$RUN/out/$stem-$who.png" >/dev/null; done
  vips copy "$RUN/out/$stem-spis.jpg" "$RUN/out/$stem-jpeg.png"
  read -r ssim_s ssim_v ssim_j < <("$VENV/bin/python" - "$RUN/out/$stem" <<'PY'
import subprocess, sys
import numpy as np

def luma(path):
    # The picture's luma as vips computes it, through a binary PGM: no imaging library needed.
    pgm = path + ".pgm"
    subprocess.run(["vips", "colourspace", path, pgm, "b-w"], check=True)
    data = open(pgm, "rb").read()
    fields, pos = [], 0
    while len(fields) < 4:  # P5, width, height, maxval: separated by whitespace
        while data[pos : pos + 1].isspace():
            pos += 1
        if data[pos : pos + 1] == b"#":  # a comment, to the end of its line
            pos = data.index(b"\n", pos)
            continue
        end = pos
        while not data[end : end + 1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    w, h = int(fields[1]), int(fields[2])
    pixels = data[pos + 1 : pos + 1 + w * h]
    return np.frombuffer(pixels, dtype=np.uint8).reshape(h, w).astype(np.float64)

def ssim(a, b):
    h, w = min(a.shape[0], b.shape[0]), min(a.shape[1], b.shape[1])
    a, b = a[:h, :w], b[:h, :w]
    k = 7
    def mean(x):
        c = np.cumsum(np.cumsum(np.pad(x, ((1, 0), (1, 0))), 0), 1)
        return (c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]) / (k * k)
    n = k * k / (k * k - 1)
    ma, mb = mean(a), mean(b)
    va, vb, cov = n * (mean(a * a) - ma**2), n * (mean(b * b) - mb**2), n * (mean(a * b) - ma * mb)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    s = ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2))
    return s.mean()

stem = sys.argv[1]
ref = luma(stem + "-ref.png")
print(" ".join(f"{ssim(ref, luma(stem + '-' + who + '.png')):.4f}" for who in ["spis", "vips", "jpeg"]))
PY
)
  b_s=$(stat -c %s "$RUN/out/$stem-spis.avif") b_v=$(stat -c %s "$RUN/out/$stem-vips.avif") b_j=$(stat -c %s "$RUN/out/$stem-spis.jpg")
  printf '%-12s %8d %8d %9d %9d %9d %7s %7s %7s\n' "$stem" "$ms_s" "$ms_v" "$b_s" "$b_v" "$b_j" \
    "$ssim_s" "$ssim_v" "$ssim_j"
  total_s=$((total_s + ms_s)) total_v=$((total_v + ms_v))
  bytes_s=$((bytes_s + b_s)) bytes_v=$((bytes_v + b_v)) bytes_j=$((bytes_j + b_j))
done <"$RUN/ids.txt"
awk -v ts="$total_s" -v tv="$total_v" -v bs="$bytes_s" -v bv="$bytes_v" -v bj="$bytes_j" 'BEGIN {
  printf "first 800 px AVIF, CPU: spis/vips %.2fx; bytes: spis/vips %.2fx, spis AVIF/JPEG q80 %.2fx\n", ts / tv, bs / bv, bs / bj }'
