#!/usr/bin/env bash
# Photos in and out (issue 15), run by `make bench`:
#  1. ZIP download: GET /api/zip of a folder (BENCH_ZIP_MB, 1024 MB of real photos) against nginx
#     serving one file of the same size, each from the page cache, by curl to /dev/null.
#  2. Upload of one BENCH_UPLOAD_MB (1024 MB) file over loopback, PUT and tus (one PATCH),
#     against `cp` of the same bytes to the same disk followed by an fsync (spis fsyncs too).
#  3. 32 clients uploading BENCH_PHOTOS (1000) small photos at once, each photo sent twice by two
#     clients racing for the name: all must land exactly once; list and thumbnail latency during.
# A benchmark, not a test: it prints ratios against its goals and exits 0 on a miss. Only
# 127.0.0.1 is used; every loop is bounded. Installs nginx and curl with apt when missing.
#
#   BENCH_BIN=path  a binary built earlier (default: the static musl build, which ships)
#   BENCH_DIR=/tmp/spis-bench  where the run's files go (on the disk being measured)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CORPUS="${CORPUS:-$ROOT/../shared/corpus}"
ZIP_MB="${BENCH_ZIP_MB:-1024}"
UPLOAD_MB="${BENCH_UPLOAD_MB:-1024}"
PHOTOS="${BENCH_PHOTOS:-1000}"
CLIENTS=32
mkdir -p "${BENCH_DIR:-/tmp/spis-bench}"
RUN="$(mktemp -d "${BENCH_DIR:-/tmp/spis-bench}/transfer.XXXXXX")"
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$RUN"
}
trap cleanup EXIT

say() { echo "bench-transfer: $*" >&2; }
die() { echo "bench-transfer: $*" >&2; exit 1; }
# The binary that ships (scripts/bench/common.sh).
# shellcheck source=scripts/bench/common.sh
. "$ROOT/scripts/bench/common.sh"
need nginx nginx-light
need curl curl
need python3 python3

bench_binaries shipped
[[ -x "$BIN" ]] || die "no spis binary at $BIN"

# start_spis MEDIA STATE: sets PID and BASE.
start_spis() {
  "$BIN" --media "$1" --state-dir "$2" --listen 127.0.0.1:0 --log warn --no-auth --rate-limit 0 \
    --thumb-workers 1 >"$2.out" 2>"$2.err" &
  PID=$!
  PIDS+=("$PID")
  local i
  spis_base "$2"
  for ((i = 0; i < 3000; i++)); do
    curl -fsS "$BASE/api/health" | grep -q '"ready":true' && return
    sleep 0.1
  done
  die "spis did not finish indexing"
}

# secs CMD...: wall seconds of a command, to the millisecond.
secs() {
  local t0 t1
  t0=$(date +%s%N)
  "$@"
  t1=$(date +%s%N)
  awk -v n=$((t1 - t0)) 'BEGIN { printf "%.3f", n / 1e9 }'
}
mbps() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.0f", b / s / 1e6 }'; }
# best3 CMD...: the shortest of three runs, in seconds.
best3() {
  local best="" t
  for _ in 1 2 3; do
    t=$(secs "$@")
    best=$(awk -v a="$t" -v b="${best:-$t}" 'BEGIN { print (a < b ? a : b) }')
  done
  echo "$best"
}

# --- 1. ZIP download against nginx ---------------------------------------------------------------

PHOTO="$CORPUS/pypi-scikit-image-0.26.0/skimage/data/rocket.jpg"
BIG_PHOTO="$CORPUS/debian-lomiri-wallpapers-16.04/backgrounds/Dragonfly_by_Bolly.jpg"
[[ -f "$BIG_PHOTO" ]] || die "missing $BIG_PHOTO in the corpus"
say "zip: a folder of ${ZIP_MB} MB of photos"
mkdir -p "$RUN/zip/Trip"
photo_bytes=$(stat -c %s "$BIG_PHOTO")
n_zip=$(((ZIP_MB << 20) / photo_bytes))
# Real copies (not links): the archive reads every file, as it would on a card.
for ((i = 0; i < n_zip; i++)); do cp "$BIG_PHOTO" "$RUN/zip/Trip/$(printf 'IMG_%05d.jpg' "$i")"; done
start_spis "$RUN/zip" "$RUN/state-zip"
ZIP_URL="$BASE/api/zip?dir=Trip"
zip_len=$(curl -fsSI "$ZIP_URL" | awk 'tolower($1) == "content-length:" { print $2 + 0 }')
((zip_len > 0)) || die "no Content-Length for the ZIP"
fetch_zip() { curl -fsS -o /dev/null "$ZIP_URL"; }
fetch_zip # warms the page cache
ZIP_S=$(best3 fetch_zip)
kill "$PID"
# nginx: one file of the same size, made of the same bytes, in the page cache.
mkdir -p "$RUN/www" "$RUN/nginx"
for ((i = 0; i < n_zip; i++)); do cat "$BIG_PHOTO"; done >"$RUN/www/one.bin"
truncate -s "$zip_len" "$RUN/www/one.bin"
chmod -R a+rX "$RUN"
NGINX_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
cat >"$RUN/nginx/nginx.conf" <<EOF
worker_processes 2;
pid $RUN/nginx/nginx.pid;
error_log $RUN/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  client_body_temp_path $RUN/nginx;
  proxy_temp_path $RUN/nginx;
  fastcgi_temp_path $RUN/nginx;
  uwsgi_temp_path $RUN/nginx;
  scgi_temp_path $RUN/nginx;
  server { listen 127.0.0.1:$NGINX_PORT; root $RUN/www; }
}
EOF
nginx -c "$RUN/nginx/nginx.conf" -p "$RUN/nginx" -g 'daemon off;' &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
for ((i = 0; i < 100; i++)); do curl -fsS -o /dev/null -r 0-0 "http://127.0.0.1:$NGINX_PORT/one.bin" && break; sleep 0.05; done
fetch_nginx() { curl -fsS -o /dev/null "http://127.0.0.1:$NGINX_PORT/one.bin"; }
fetch_nginx
NGINX_S=$(best3 fetch_nginx)
kill "$NGINX_PID"
rm -rf "${RUN:?}/www" "${RUN:?}/zip"

# --- 2. One big upload against cp ----------------------------------------------------------------

say "upload: one ${UPLOAD_MB} MB file (a photo, then bytes past its end), PUT and tus, against cp + fsync"
mkdir -p "$RUN/media" "$RUN/src"
BIGFILE="$RUN/src/big.jpg"
{ cat "$PHOTO"; head -c "$((UPLOAD_MB << 20))" /dev/urandom; } >"$BIGFILE"
big_bytes=$(stat -c %s "$BIGFILE")
cat "$BIGFILE" >/dev/null # in the page cache for every contender
start_spis "$RUN/media" "$RUN/state-up"
put_big() {
  local name=$1
  local code
  code=$(curl -sS -o /dev/null -w '%{http_code}' -T "$BIGFILE" "$BASE/api/upload/Big/$name")
  [[ "$code" == 201 ]] || echo "PUT answered $code" >>"$RUN/failed"
}
tus_big() {
  local name=$1 loc code meta
  meta="filename $(printf '%s' "$name" | base64 -w0),dir $(printf 'Big' | base64 -w0)"
  loc=$(curl -fsS -D - -o /dev/null -X POST -H 'Tus-Resumable: 1.0.0' -H "Upload-Length: $big_bytes" \
    -H "Upload-Metadata: $meta" "$BASE/api/uploads" | awk 'tolower($1) == "location:" { print $2 }' | tr -d '\r')
  [[ -n "$loc" ]] || { echo "tus creation gave no Location" >>"$RUN/failed"; return; }
  # -T streams the file (--data-binary would read all of it into memory first).
  code=$(curl -sS -o /dev/null -w '%{http_code}' -X PATCH -H 'Tus-Resumable: 1.0.0' -H 'Upload-Offset: 0' \
    -H 'Content-Type: application/offset+octet-stream' -T "$BIGFILE" "$BASE$loc")
  [[ "$code" == 204 ]] || echo "tus PATCH answered $code" >>"$RUN/failed"
}
cp_big() { cp "$BIGFILE" "$RUN/media/cp-$1.jpg" && sync "$RUN/media/cp-$1.jpg"; }
# Alternating, three each; the best of each (a fresh name every time: nothing is deduplicated).
PUT_S="" TUS_S="" CP_S=""
best() { awk -v a="$1" -v b="${2:-$1}" 'BEGIN { print (a < b ? a : b) }'; }
# Each starts on a clean page cache: what earlier runs left dirty is written out first (sync),
# else the disk's writeback of one contender's gigabyte would be charged to the next.
# A virtual disk may also take a burst into its host's cache and then slow down: each contender
# waits 10 s after the sync, with the files of the one before removed.
clean() {
  rm -f "$RUN/media/"cp-*.jpg "$RUN/media/Big/"*.jpg
  sync
  sleep 10
}
for r in 1 2 3; do
  clean
  CP_S=$(best "$(secs cp_big "$r")" "$CP_S")
  clean
  PUT_S=$(best "$(secs put_big "put-$r.jpg")" "$PUT_S")
  clean
  TUS_S=$(best "$(secs tus_big "tus-$r.jpg")" "$TUS_S")
done
kill "$PID"
[[ ! -s "$RUN/failed" ]] || die "uploads failed: $(cat "$RUN/failed")"
rm -rf "${RUN:?}/src" "${RUN:?}/media" "${RUN:?}/state-up"

# --- 3. 32 cameras at once ------------------------------------------------------------------------

say "load: $CLIENTS clients uploading $PHOTOS small photos at once, each photo twice"
mkdir -p "$RUN/small" "$RUN/media/Family"
# Small photos with distinct bytes: the photo, then a few bytes of its number past its end.
for ((i = 0; i < PHOTOS; i++)); do
  n=$(printf 'snap-%05d.jpg' "$i")
  { cat "$PHOTO"; printf '%s' "$n"; } >"$RUN/small/$n"
done
for ((i = 0; i < 200; i++)); do cp "$PHOTO" "$RUN/media/Family/old-$i.jpg"; done
start_spis "$RUN/media" "$RUN/state-load"
thumb="$(curl -fsS "$BASE/api/media?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][0]["thumb"])')"
curl -fsS -o /dev/null "$BASE$thumb"
python3 "$ROOT/scripts/bench/uploads.py" "$BASE" "$RUN/small" --clients "$CLIENTS" --photos "$PHOTOS" \
  --thumb "$thumb" >"$RUN/load.txt"
declare -A L
while IFS='=' read -r k v; do L[$k]=$v; done <"$RUN/load.txt"
copies=$(find "$RUN/media/Cameras" -name '* (*' | wc -l)
kill "$PID"

# --- report ---------------------------------------------------------------------------------------

row() { printf '| %-50s | %-30s | %-12s |\n' "$1" "$2" "$3"; }
echo
echo "Photos in and out: $(nproc) cores, $(findmnt -n -o FSTYPE -T "$RUN" 2>/dev/null || echo '?'), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "Binary: $BIN ($("$BIN" --version 2>/dev/null || echo 'version unknown'))"
echo
row "Figure" "Value" "Goal"
row "--------------------------------------------------" "------------------------------" "------------"
row "ZIP of $n_zip photos ($(awk -v b="$zip_len" 'BEGIN { printf "%.0f", b / 1e6 }') MB), spis MB/s" "$(mbps "$zip_len" "$ZIP_S") ($ZIP_S s)" "-"
row "  nginx, one file of the same size, MB/s" "$(mbps "$zip_len" "$NGINX_S") ($NGINX_S s)" "-"
row "  spis / nginx" "$(ratio "$NGINX_S" "$ZIP_S")x" "-"
row "Upload of $(awk -v b="$big_bytes" 'BEGIN { printf "%.0f", b / 1e6 }') MB: cp + fsync, MB/s" "$(mbps "$big_bytes" "$CP_S") ($CP_S s)" "-"
row "  PUT (curl -T), to durable, MB/s" "$(mbps "$big_bytes" "$PUT_S") ($PUT_S s)" "-"
row "  PUT / cp" "$(ratio "$CP_S" "$PUT_S")x" ">= 0.8x"
row "  tus, one PATCH, MB/s" "$(mbps "$big_bytes" "$TUS_S") ($TUS_S s)" "-"
row "  tus / cp" "$(ratio "$CP_S" "$TUS_S")x" ">= 0.8x"
row "$CLIENTS clients, $PHOTOS photos x 2 racing PUTs: statuses" "${L[statuses]}" "201 + 200"
row "  wall / uploads per s" "${L[seconds]} s / ${L[uploads_per_s]}" "-"
row "  landed exactly once (listed / unique / copies)" "${L[exactly_once]} (${L[listed]} / ${L[listed_unique]} / $copies)" "yes, 0 copies"
row "  list limit=100 meanwhile, p50 / p99 / max ms" "${L[list_p50_ms]} / ${L[list_p99_ms]} / ${L[list_max_ms]}" "-"
row "  cached thumbnail meanwhile, p50 / p99 / max ms" "${L[thumb_p50_ms]} / ${L[thumb_p99_ms]} / ${L[thumb_max_ms]}" "-"
row "  samples list / thumb / failed" "${L[list_samples]} / ${L[thumb_samples]} / ${L[sample_failures]}" "0 failed"
echo
echo "Each contender reads from the page cache and, for uploads, writes to the same disk, starting"
echo "with nothing dirty (sync); spis and cp each fsync before they count as done. spis writes while"
echo "the body arrives, so the disk works during the transfer; cp writes to the page cache first and"
echo "then waits for the disk in its fsync. Every figure is the best of three."
