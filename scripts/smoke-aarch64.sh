#!/usr/bin/env bash
# Smoke test of the static aarch64 binary (the Pi's) under user-mode QEMU on this machine: it starts
# on a small folder of real photos, indexes them, and answers /api/status and a thumbnail.
# Usage: scripts/smoke-aarch64.sh [BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."

bin="${1:-${CARGO_TARGET_DIR:-$PWD/target}/aarch64-unknown-linux-musl/release/spis}"
corpus="../shared/corpus"
work="$(mktemp -d)"
pid=""
cleanup() {
    [ -z "$pid" ] || kill "$pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/media/2024"
cp "$corpus/pypi-scikit-image-0.26.0/skimage/data/rocket.jpg" "$work/media/"
cp "$corpus/pypi-scikit-image-0.26.0/skimage/data/astronaut.png" "$work/media/2024/"
cp "$corpus/image-rs-jpeg-decoder/tests/reftest/images/mozilla/jpg-progressive.jpg" "$work/media/2024/"

qemu-aarch64-static "$bin" --media "$work/media" --state-dir "$work/state" --listen 127.0.0.1:0 \
    --no-auth --thumb-workers 0 >"$work/out" 2>"$work/log" &
pid=$!
base=""
for _ in $(seq 300); do
    base="$(sed -n 's/^spis listening on //p' "$work/out")"
    [ -n "$base" ] && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/log" >&2; echo "smoke-aarch64: spis exited" >&2; exit 1; }
    sleep 0.1
done
[ -n "$base" ] || { echo "smoke-aarch64: no port after 30 s" >&2; exit 1; }

status=""
for _ in $(seq 300); do
    status="$(curl -fsS "$base/api/status")"
    grep -q '"done":true' <<<"$status" && break
    sleep 0.1
done
grep -q '"items":3' <<<"$status" || { echo "smoke-aarch64: expected 3 items: $status" >&2; exit 1; }
id="$(curl -fsS "$base/api/media?limit=1" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')"
[ -n "$id" ] || { echo "smoke-aarch64: no item id in the list" >&2; exit 1; }
curl -fsS -o "$work/thumb.jpg" "$base/api/media/$id/thumb"
[ "$(head -c 2 "$work/thumb.jpg" | od -An -tx1 | tr -d ' ')" = ffd8 ] || { echo "smoke-aarch64: thumbnail is not a JPEG" >&2; exit 1; }
# HTTPS on the same port, with the certificate of the device's own CA: ring's aarch64 code
# (compiled by zig) signs the handshake and encrypts the answer.
sed -n '/BEGIN CERTIFICATE/,/END CERTIFICATE/p' "$work/state/tls/ca.pem" >"$work/ca.crt"
https="${base/http:/https:}"
curl -fsS --cacert "$work/ca.crt" --resolve "localhost:${base##*:}:127.0.0.1" \
    "https://localhost:${base##*:}/api/health" | grep -q '"status":"ok"' ||
    { echo "smoke-aarch64: no answer over HTTPS at $https" >&2; exit 1; }
echo "smoke-aarch64: $(file -b "$bin" 2>/dev/null | cut -d, -f1-2 || echo "$bin") answered /api/status (3 items), a thumbnail and HTTPS under qemu-aarch64"
