#!/usr/bin/env bash
# Thumbnail benchmark (issue 3), run by `make bench` after scripts/bench.sh:
#  1. CPU time per 12 MP JPEG on one core: spis's pipeline against libvips' vipsthumbnail
#     (VIPS_CONCURRENCY=1), for a 400 px thumbnail alone and for 1600 px + 400 px.
#  2. Cached thumbnails over HTTP: spis from memory against nginx serving the same files
#     (sendfile, 2 workers), wrk at 64 connections over 1000 different thumbnails; then the same
#     for signed /img URLs (320 px) against nginx serving the bytes spis answered.
# A benchmark, not a test: it prints ratios and exits 0 on a miss. Only 127.0.0.1 is used; every
# loop is bounded. Installs libvips-tools, nginx and wrk with apt when missing.
#
#   BENCH_BIN=path   the binary measured (default: the static x86_64 musl build, which ships)
#   BENCH_GLIBC_BIN=path  the glibc anchor for CPU per photo (default: the release build; none)
#   BENCH_WRK_DURATION=10s
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CORPUS="${CORPUS:-$ROOT/../shared/corpus}"
WRK_DURATION="${BENCH_WRK_DURATION:-10s}"
RUN="$(mktemp -d "${TMPDIR:-/tmp}/spis-bench-thumbs.XXXXXX")"
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$RUN"
}
trap cleanup EXIT

say() { echo "bench-thumbs: $*" >&2; }
die() { echo "bench-thumbs: $*" >&2; exit 1; }
# shellcheck source=scripts/bench/common.sh
. "$ROOT/scripts/bench/common.sh"

need vipsthumbnail libvips-tools
need nginx nginx-light
need wrk wrk
need curl curl
need ffmpeg ffmpeg

# The binary that ships (static musl) is measured; the glibc build is its anchor on CPU per photo.
bench_binaries both

# The 12 MP-class JPEGs of the corpus: progressive wallpapers and baseline camera photos.
PHOTOS=(
  "debian-lomiri-wallpapers-16.04/backgrounds/seeding_by_Clements_Engelhardt.jpg"
  "debian-lomiri-wallpapers-16.04/backgrounds/Dragonfly_by_Bolly.jpg"
  "debian-lomiri-wallpapers-16.04/backgrounds/sunset_by_Aitzol_Berasategi.jpg"
  "debian-lomiri-wallpapers-16.04/backgrounds/Bridge_by_Sander_Klootwijk.jpg"
  "debian-lomiri-wallpapers-16.04/backgrounds/Wine_by_Jakkub_Mede.jpg"
  "drewnoakes-metadata-extractor-images/jpg/Canon Powershot A2500.JPG"
  "ianare-exif-samples/jpg/tests/42_IndexError.jpg"
  "drewnoakes-metadata-extractor-images/jpg/Canon EOS 1000D.jpg"
  "drewnoakes-metadata-extractor-images/jpg/Kodak Z1012 IS.jpg"
  "drewnoakes-metadata-extractor-images/jpg/Canon PowerShot G11.jpg"
)
N=${#PHOTOS[@]}
mkdir -p "$RUN/photos" "$RUN/vips"
for i in "${!PHOTOS[@]}"; do
  cp "$CORPUS/${PHOTOS[$i]}" "$RUN/photos/$(printf 'p%02d.jpg' "$i")"
done

# cpu_ms COMMAND...: user+system CPU milliseconds of a command and its children.

# proc_cpu_ms PID: CPU milliseconds a process has used so far (utime + stime).

per_image() { awk -v t="$1" -v n="$N" 'BEGIN { printf "%.1f", t / n }'; }

say "vipsthumbnail: $N photos, one core"
export VIPS_CONCURRENCY=1
VIPS_400=$(cpu_ms taskset -c 0 vipsthumbnail -s 400 -o "$RUN/vips/%s_400.jpg[Q=80]" "$RUN"/photos/*.jpg)
VIPS_1600=$(cpu_ms taskset -c 0 vipsthumbnail -s 1600 -o "$RUN/vips/%s_1600.jpg[Q=80]" "$RUN"/photos/*.jpg)
VIPS_PAIR=$((VIPS_400 + VIPS_1600))

# start_spis MEDIA STATE ARGS...: starts spis on one core (taskset) or two; sets PID and BASE.
start_spis() {
  local media=$1 state=$2
  shift 2
  "$@" "$BIN" --media "$media" --state-dir "$state" --listen 127.0.0.1:0 --log warn --no-auth --rate-limit 1000000 >"$state.out" 2>"$state.err" &
  PID=$!
  PIDS+=("$PID")
  spis_base "$state"
}

wait_for() { # wait_for PYTHON-CONDITION-ON-STATUS (bounded: 10 minutes)
  local i
  for ((i = 0; i < 6000; i++)); do
    curl -fsS "$BASE/api/status" | python3 -c "import json,sys; s=json.load(sys.stdin); sys.exit(0 if ($1) else 1)" && return
    sleep 0.1
  done
  die "timed out waiting for: $1"
}

ids() { curl -fsS "$BASE/api/media?limit=500" | python3 -c 'import json,sys; [print(i["id"]) for i in json.load(sys.stdin)["items"]]'; }

# cpu_pass BINARY TAG: CPU per photo of one binary on one core; sets SPIS_400_TAG, SPIS_PAIR_TAG.
cpu_pass() {
  local bin=$1 tag=$2 before
  say "spis ($tag): the same photos, one core"
  BIN_SAVED=$BIN BIN=$bin
  start_spis "$RUN/photos" "$RUN/state-cpu-$tag" taskset -c 0 env SPIS_THUMB_WORKERS=0 SPIS_RESIZE_SIZES=400
  BIN=$BIN_SAVED
  wait_for 's["indexing"]["done"]'
  mapfile -t PHOTO_IDS < <(ids)
  ((${#PHOTO_IDS[@]} == N)) || die "spis listed ${#PHOTO_IDS[@]} photos, not $N"
  before=$(proc_cpu_ms "$PID")
  for id in "${PHOTO_IDS[@]}"; do curl -fsS -o /dev/null "$BASE/api/media/$id/resize?w=400&h=400"; done
  printf -v "SPIS_400_$tag" '%s' $(($(proc_cpu_ms "$PID") - before))
  before=$(proc_cpu_ms "$PID")
  for id in "${PHOTO_IDS[@]}"; do curl -fsS -o /dev/null "$BASE/api/media/$id/thumb"; done
  printf -v "SPIS_PAIR_$tag" '%s' $(($(proc_cpu_ms "$PID") - before))
  kill "$PID"
}
cpu_pass "$BIN" shipped
SPIS_400_glibc="" SPIS_PAIR_glibc=""
# shellcheck disable=SC2154 # set by cpu_pass through printf -v
SPIS_400=$SPIS_400_shipped SPIS_PAIR=$SPIS_PAIR_shipped
[[ "$GLIBC_BIN" == none ]] || cpu_pass "$GLIBC_BIN" glibc

say "serving: 1000 cached thumbnails from spis and from nginx"
mkdir -p "$RUN/many"
for ((i = 0; i < 1000; i++)); do
  cp "$CORPUS/pypi-scikit-image-0.26.0/skimage/data/rocket.jpg" "$RUN/many/$(printf 'r%04d.jpg' "$i")"
done
# A video of about 5 MB, made by ffmpeg, for the originals' throughput.
mkdir -p "$RUN/big"
ffmpeg -nostdin -loglevel error -f lavfi -i testsrc2=size=1280x720:rate=25 -t 10 -b:v 4M -pix_fmt yuv420p "$RUN/big/clip.mp4"
ORIGINAL_BYTES="$(stat -c %s "$RUN/big/clip.mp4")"
# No AVIF pass: it starts when the JPEG pass ends and would encode under the serving rows (it did
# until stop 42, and took a fifth of spis's CPU there). wrk asks for JPEG; a gallery at rest has
# long finished its AVIFs.
start_spis "$RUN/many" "$RUN/state-serve" env SPIS_THUMB_WORKERS=2 SPIS_THUMB_CACHE_MB=256 SPIS_THUMB_AVIF=false
wait_for 's["indexing"]["done"] and s["thumbnails"]["background"]["total"] == 1000 and s["thumbnails"]["background"]["done"] == 1000'
curl -fsS "$BASE/api/media?limit=500" >"$RUN/p1.json"
cursor="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["next_cursor"])' "$RUN/p1.json")"
curl -fsS "$BASE/api/media?limit=500&cursor=$cursor" >"$RUN/p2.json"
python3 -c 'import json,sys; [print(i["thumb"]) for f in sys.argv[1:] for i in json.load(open(f))["items"]]' \
  "$RUN/p1.json" "$RUN/p2.json" >"$RUN/spis-paths.txt"
# Warm spis's memory cache, as a gallery in use would be.
while read -r p; do curl -fsS -o /dev/null "$BASE$p"; done <"$RUN/spis-paths.txt"
(cd "$RUN/state-serve/cache" && find . -name '*-thumb-*.jpg' | sed 's|^\.||') >"$RUN/nginx-paths.txt"
THUMB_BYTES="$(find "$RUN/state-serve/cache" -name '*-thumb-*.jpg' -printf '%s\n' | awk '{ s += $1 } END { printf "%.0f", s / NR }')"

# nginx's workers run as www-data: let them read the cache (mktemp made the run dir private).
chmod -R a+rX "$RUN"
NGINX_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
mkdir -p "$RUN/nginx"
cat >"$RUN/nginx/nginx.conf" <<EOF
worker_processes 2;
pid $RUN/nginx/nginx.pid;
error_log $RUN/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path $RUN/nginx;
  proxy_temp_path $RUN/nginx;
  fastcgi_temp_path $RUN/nginx;
  uwsgi_temp_path $RUN/nginx;
  scgi_temp_path $RUN/nginx;
  types { image/jpeg jpg; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $RUN/state-serve/cache;
    etag on;
  }
}
EOF
nginx -c "$RUN/nginx/nginx.conf" -p "$RUN/nginx" -g 'daemon off;' &
PIDS+=("$!")
for ((i = 0; i < 100; i++)); do curl -fsS -o /dev/null "http://127.0.0.1:$NGINX_PORT$(head -n1 "$RUN/nginx-paths.txt")" && break; sleep 0.05; done

LUA="$ROOT/scripts/bench/paths.lua"
NGINX_WORKERS="$(pgrep -d ' ' -P "${PIDS[-1]}")"
# run_wrk URL PATHS: sets RPS, P50, P99 (ms), ERR and CPU_US (of SERVER_PIDS).
SERVER_PIDS=$PID run_wrk "$BASE" "$RUN/spis-paths.txt"
S_RPS=$RPS S_P50=$P50 S_P99=$P99 S_ERR=$ERR S_CPU=$CPU_US
SERVER_PIDS=$NGINX_WORKERS run_wrk "http://127.0.0.1:$NGINX_PORT" "$RUN/nginx-paths.txt"
N_RPS=$RPS N_P50=$P50 N_P99=$P99 N_ERR=$ERR N_CPU=$CPU_US

say "signed image URLs: 1000 photos at 320 px from spis (made once, then cached) and the same bytes from nginx"
mkdir -p "$RUN/state-serve/cache/img"
: >"$RUN/spis-img.txt"
: >"$RUN/nginx-img.txt"
for ((i = 0; i < 1000; i++)); do
  name="$(printf 'r%04d.jpg' "$i")"
  url="$("$BIN" --media "$RUN/many" --state-dir "$RUN/state-serve" url sign "$name" --width 320)"
  # Made once (this request), then from spis's caches; nginx gets exactly these bytes.
  curl -fsS -o "$RUN/state-serve/cache/img/$name" "$BASE$url"
  echo "$url" >>"$RUN/spis-img.txt"
  echo "/img/$name" >>"$RUN/nginx-img.txt"
done
chmod -R a+rX "$RUN/state-serve/cache/img"
IMG_BYTES="$(find "$RUN/state-serve/cache/img" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%.0f", s / NR }')"
SERVER_PIDS=$PID run_wrk "$BASE" "$RUN/spis-img.txt"
SI_RPS=$RPS SI_P50=$P50 SI_P99=$P99 SI_ERR=$ERR SI_CPU=$CPU_US
SERVER_PIDS=$NGINX_WORKERS run_wrk "http://127.0.0.1:$NGINX_PORT" "$RUN/nginx-img.txt"
NI_RPS=$RPS NI_P50=$P50 NI_P99=$P99 NI_ERR=$ERR NI_CPU=$CPU_US
kill "$PID"

say "originals: a $ORIGINAL_BYTES-byte video from spis and from nginx"
start_spis "$RUN/big" "$RUN/state-big" env SPIS_THUMB_WORKERS=0
wait_for 's["indexing"]["done"]'
echo "/api/media/$(ids)/original" >"$RUN/spis-original.txt"
ln -s "$RUN/big/clip.mp4" "$RUN/state-serve/cache/clip.mp4"
echo "/clip.mp4" >"$RUN/nginx-original.txt"
SERVER_PIDS=$PID run_wrk "$BASE" "$RUN/spis-original.txt"
SO_RPS=$RPS SO_ERR=$ERR SO_CPU=$CPU_US
SERVER_PIDS=$NGINX_WORKERS run_wrk "http://127.0.0.1:$NGINX_PORT" "$RUN/nginx-original.txt"
NO_RPS=$RPS NO_ERR=$ERR NO_CPU=$CPU_US
gbps() { awk -v r="$1" -v b="$ORIGINAL_BYTES" 'BEGIN { printf "%.2f", r * b / 1e9 }'; }
kill "$PID"

say "end to end: index and both renditions of 1000 photos of 10-16 MP (default workers)"
mkdir -p "$RUN/e2e"
for ((i = 0; i < 1000; i++)); do
  # Hard links: 1000 files (1000 ids, 1000 decodes) without 1.3 GB of copies.
  ln "$RUN/photos/$(printf 'p%02d.jpg' $((i % N)))" "$RUN/e2e/$(printf 'e%04d.jpg' "$i")"
done
# e2e_pass BIN TAG: the pass with one binary, fresh state; sets E2E_MS_TAG, E2E_HWM_TAG, E2E_DONE_TAG.
e2e_pass() {
  local bin=$1 tag=$2 start shipped=$BIN
  start="$(date +%s%N)"
  BIN=$bin start_spis "$RUN/e2e" "$RUN/state-e2e-$tag" env
  BIN=$shipped
  wait_for 's["indexing"]["done"] and s["thumbnails"]["background"]["total"] == 1000 and s["thumbnails"]["background"]["done"] == 1000'
  printf -v "E2E_MS_$tag" '%s' $((($(date +%s%N) - start) / 1000000))
  printf -v "E2E_HWM_$tag" '%s' "$(awk '$1 == "VmHWM:" { printf "%.1f", $2 / 1024 }' "/proc/$PID/status")"
  printf -v "E2E_DONE_$tag" '%s' "$(curl -fsS "$BASE/api/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["thumbnails"]["decoded"])')"
  kill "$PID"
  wait "$PID" 2>/dev/null || true
}
E2E_MS_shipped="" E2E_HWM_shipped="" E2E_DONE_shipped="" E2E_MS_glibc="" E2E_HWM_glibc=""
e2e_pass "$BIN" shipped
if [[ "$GLIBC_BIN" != none ]]; then
  # The same cold start: no metadata kept in the files' attributes by the first pass.
  python3 "$ROOT/scripts/bench/tools.py" strip "$RUN/e2e" >/dev/null
  e2e_pass "$GLIBC_BIN" glibc
fi

row() { printf '| %-46s | %-26s | %-22s |\n' "$1" "$2" "$3"; }
echo
row "Thumbnails (${N} JPEGs of 10-16 MP, one core)" "Value" "Goal"
row "----------------------------------------------" "--------------------------" "----------------------"
row "vipsthumbnail 400 px, CPU ms per photo" "$(per_image "$VIPS_400")" "-"
row "spis 400 px, CPU ms per photo (shipped)" "$(per_image "$SPIS_400") ($(ratio "$SPIS_400" "$VIPS_400")x vips)" "<= 0.8x vips"
if [[ -n "$SPIS_400_glibc" ]]; then
  row "  the glibc build, CPU ms per photo" "$(per_image "$SPIS_400_glibc") ($(ratio "$SPIS_400_glibc" "$VIPS_400")x vips)" "-"
  row "  shipped speed vs glibc (glibc / shipped)" "$(ratio "$SPIS_400_glibc" "$SPIS_400")" ">= 0.95"
fi
row "vipsthumbnail 1600 + 400 px (two runs)" "$(per_image "$VIPS_PAIR")" "-"
row "spis 1600 + 400 px (one decode, shipped)" "$(per_image "$SPIS_PAIR") ($(ratio "$SPIS_PAIR" "$VIPS_PAIR")x vips)" "<= 0.45x vips"
if [[ -n "$SPIS_PAIR_glibc" ]]; then
  row "  the glibc build, 1600 + 400 px" "$(per_image "$SPIS_PAIR_glibc") ($(ratio "$SPIS_PAIR_glibc" "$VIPS_PAIR")x vips)" "-"
  row "  shipped speed vs glibc (glibc / shipped)" "$(ratio "$SPIS_PAIR_glibc" "$SPIS_PAIR")" ">= 0.95"
fi
row "Cached thumbnails, wrk 64 conns, 1000 ids" "avg $THUMB_BYTES bytes" "-"
row "nginx (sendfile, 2 workers) req/s, p50 / p99" "$N_RPS, $N_P50 / $N_P99 ms" "-"
row "spis (memory) req/s, p50 / p99" "$S_RPS, $S_P50 / $S_P99 ms" ">= 1.2x, p50 < 1 ms"
row "spis / nginx req/s" "$(ratio "$S_RPS" "$N_RPS")x" ">= 1.2x"
row "  server CPU us per request: spis / nginx" "$S_CPU / $N_CPU ($(ratio "$N_CPU" "$S_CPU")x)" "-"
row "failed requests spis / nginx" "$S_ERR / $N_ERR" "0 / 0"
row "Signed /img URLs, 320 px, wrk 64 conns, 1000" "avg $IMG_BYTES bytes" "-"
row "  nginx req/s, p50 / p99" "$NI_RPS, $NI_P50 / $NI_P99 ms" "-"
row "  spis req/s, p50 / p99 (signature checked)" "$SI_RPS, $SI_P50 / $SI_P99 ms" "-"
row "  spis / nginx req/s" "$(ratio "$SI_RPS" "$NI_RPS")x" ">= 1.2x"
row "  server CPU us per request: spis / nginx" "$SI_CPU / $NI_CPU ($(ratio "$NI_CPU" "$SI_CPU")x)" "-"
row "  failed requests spis / nginx" "$SI_ERR / $NI_ERR" "0 / 0"
row "Original of $(awk -v b="$ORIGINAL_BYTES" 'BEGIN { printf "%.1f", b / 1e6 }') MB, wrk 64 conns: nginx GB/s" "$(gbps "$NO_RPS") ($NO_RPS req/s)" "-"
row "  spis GB/s (256 KiB chunks)" "$(gbps "$SO_RPS") ($SO_RPS req/s)" "-"
row "  spis / nginx" "$(ratio "$SO_RPS" "$NO_RPS")x" ">= 0.8x"
row "  server CPU us per request: spis / nginx" "$SO_CPU / $NO_CPU ($(ratio "$NO_CPU" "$SO_CPU")x)" "-"
row "  failed requests spis / nginx" "$SO_ERR / $NO_ERR" "0 / 0"
secs() { awk -v m="$1" 'BEGIN { printf "%.1f s", m / 1000 }'; }
row "1000 photos end to end (index + both), wall" "$(secs "$E2E_MS_shipped") ($E2E_DONE_shipped decoded)" "-"
row "  peak RSS (VmHWM)" "$E2E_HWM_shipped MiB" "-"
if [[ -n "$E2E_MS_glibc" ]]; then
  row "  the glibc build: wall, peak RSS" "$(secs "$E2E_MS_glibc"), $E2E_HWM_glibc MiB" "-"
  row "  shipped speed vs glibc (glibc / shipped)" "$(ratio "$E2E_MS_glibc" "$E2E_MS_shipped")" ">= 0.95"
fi
echo
echo "CPU per photo includes one process start for vips (amortized over $N photos) and one HTTP"
echo "request for spis. wrk, nginx and spis share the machine's 2 cores: req/s moves with whatever"
echo "else runs; server CPU per request (nginx: its workers) is the steadier figure."
