#!/usr/bin/env bash
# HTTPS benchmark (issue 18), run by `make bench`: the shipped binary against nginx with TLS, both
# with the certificate spis's local CA issued (ECDSA P-256), in the same run:
#  1. cached thumbnails over TLS, wrk at 64 keep-alive connections over 1000 different thumbnails
#     (and spis over plain HTTP on the same port, for what TLS costs);
#  2. handshakes: wrk at 64 connections with `Connection: close`, a full TLS handshake per request.
# A benchmark, not a test: it prints ratios and exits 0 on a miss. Only 127.0.0.1 is used; every
# loop is bounded. Installs nginx and wrk with apt when missing.
#
#   BENCH_BIN=path   the binary measured (default: the static x86_64 musl build, which ships)
#   BENCH_WRK_DURATION=10s
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CORPUS="${CORPUS:-$ROOT/../shared/corpus}"
WRK_DURATION="${BENCH_WRK_DURATION:-10s}"
RUN="$(mktemp -d "${TMPDIR:-/tmp}/spis-bench-tls.XXXXXX")"
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$RUN"
}
trap cleanup EXIT

say() { echo "bench-tls: $*" >&2; }
die() { echo "bench-tls: $*" >&2; exit 1; }
# shellcheck source=scripts/bench/common.sh
. "$ROOT/scripts/bench/common.sh"

need nginx nginx-light
need wrk wrk
need curl curl

bench_binaries shipped

say "1000 cached thumbnails"
mkdir -p "$RUN/many" "$RUN/state"
for ((i = 0; i < 1000; i++)); do
  cp "$CORPUS/pypi-scikit-image-0.26.0/skimage/data/rocket.jpg" "$RUN/many/$(printf 'r%04d.jpg' "$i")"
done
SPIS_THUMB_WORKERS=2 SPIS_THUMB_CACHE_MB=256 "$BIN" --media "$RUN/many" --state-dir "$RUN/state" \
  --listen 127.0.0.1:0 --log warn --no-auth --rate-limit 1000000 --thumb-avif false >"$RUN/spis.out" 2>"$RUN/spis.err" &
PIDS+=("$!")
spis_base "$RUN/spis"
PORT="${BASE##*:}"
for ((i = 0; i < 1200; i++)); do
  curl -fsS "$BASE/api/status" | python3 -c 'import json,sys; s=json.load(sys.stdin); b=s["thumbnails"]["background"]; sys.exit(0 if s["indexing"]["done"] and b["done"] == 1000 else 1)' && break
  sleep 0.1
done
curl -fsS "$BASE/api/media?limit=500" >"$RUN/p1.json"
cursor="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["next_cursor"])' "$RUN/p1.json")"
curl -fsS "$BASE/api/media?limit=500&cursor=$cursor" >"$RUN/p2.json"
python3 -c 'import json,sys; [print(i["thumb"]) for f in sys.argv[1:] for i in json.load(open(f))["items"]]' \
  "$RUN/p1.json" "$RUN/p2.json" >"$RUN/spis-paths.txt"
while read -r p; do curl -fsS -o /dev/null "$BASE$p"; done <"$RUN/spis-paths.txt"
(cd "$RUN/state/cache" && find . -name '*-thumb-*.jpg' | sed 's|^\.||') >"$RUN/nginx-paths.txt"
THUMB_BYTES="$(find "$RUN/state/cache" -name '*-thumb-*.jpg' -printf '%s\n' | awk '{ s += $1 } END { printf "%.0f", s / NR }')"

# nginx with the very certificate and key spis serves (tls/server.pem holds the key, the
# certificate and the CA), TLS 1.2 and 1.3, its default ciphers.
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
    listen 127.0.0.1:$NGINX_PORT ssl;
    ssl_certificate $RUN/state/tls/server.pem;
    ssl_certificate_key $RUN/state/tls/server.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    root $RUN/state/cache;
    etag on;
  }
}
EOF
nginx -c "$RUN/nginx/nginx.conf" -p "$RUN/nginx" -g 'daemon off;' &
PIDS+=("$!")
for ((i = 0; i < 100; i++)); do
  curl -kfsS -o /dev/null "https://127.0.0.1:$NGINX_PORT$(head -n1 "$RUN/nginx-paths.txt")" && break
  sleep 0.05
done

LUA="$ROOT/scripts/bench/paths.lua"
# run_wrk URL PATHS [WRK ARGS...]: sets RPS, P50, P99 (ms) and ERR.
SPIS_TLS="https://127.0.0.1:$PORT" NGINX_TLS="https://127.0.0.1:$NGINX_PORT"
say "keep-alive over TLS: spis, nginx, and spis over plain HTTP"
run_wrk "$SPIS_TLS" "$RUN/spis-paths.txt"
S_RPS=$RPS S_P50=$P50 S_P99=$P99 S_ERR=$ERR
run_wrk "$NGINX_TLS" "$RUN/nginx-paths.txt"
N_RPS=$RPS N_P50=$P50 N_P99=$P99 N_ERR=$ERR
run_wrk "$BASE" "$RUN/spis-paths.txt"
P_RPS=$RPS
say "a full handshake per request (Connection: close): spis, nginx"
run_wrk "$SPIS_TLS" "$RUN/spis-paths.txt" -H "Connection: close"
SH_RPS=$RPS SH_P50=$P50 SH_P99=$P99 SH_ERR=$ERR
run_wrk "$NGINX_TLS" "$RUN/nginx-paths.txt" -H "Connection: close"
NH_RPS=$RPS NH_P50=$P50 NH_P99=$P99 NH_ERR=$ERR
PROTO="$(curl -ksv -o /dev/null "$SPIS_TLS/api/health" 2>&1 | sed -n 's/.*SSL connection using \([^ ]*\) \/ \([^ ]*\).*/\1 \2/p' | head -n1)"
HWM="$(awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/${PIDS[0]}/status")"

row() { printf '| %-46s | %-26s | %-14s |\n' "$1" "$2" "$3"; }
echo
row "HTTPS, wrk 64 conns, 1000 cached thumbnails" "avg $THUMB_BYTES bytes" "Goal"
row "----------------------------------------------" "--------------------------" "--------------"
row "nginx (TLS, 2 workers) req/s, p50 / p99" "$N_RPS, $N_P50 / $N_P99 ms" "-"
row "spis (TLS, memory) req/s, p50 / p99" "$S_RPS, $S_P50 / $S_P99 ms" "-"
row "spis / nginx req/s" "$(ratio "$S_RPS" "$N_RPS")x" ">= 1.0x"
row "spis TLS / plain HTTP req/s" "$(ratio "$S_RPS" "$P_RPS") ($P_RPS plain)" "-"
row "failed requests spis / nginx" "$S_ERR / $N_ERR" "0 / 0"
row "Handshakes (Connection: close): nginx /s" "$NH_RPS, $NH_P50 / $NH_P99 ms" "-"
row "  spis handshakes/s, p50 / p99" "$SH_RPS, $SH_P50 / $SH_P99 ms" "-"
row "  spis / nginx" "$(ratio "$SH_RPS" "$NH_RPS")x" "-"
row "  failed requests spis / nginx" "$SH_ERR / $NH_ERR" "0 / 0"
row "spis peak RSS (VmHWM)" "$HWM MiB" "-"
echo
echo "Protocol negotiated with curl: ${PROTO:-?}; ECDSA P-256 certificate for both. wrk, nginx and"
echo "spis share the machine's 2 cores. Binary: $BIN"
