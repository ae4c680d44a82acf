#!/usr/bin/env bash
# The API against its own OpenAPI document: schemathesis (pinned, installed into the cache) reads
# /api/openapi.json from the real server and sends schema-valid and schema-violating requests to
# every operation. Every check must hold: no 5xx, statuses, content types and bodies as documented,
# bad input refused with a 4xx, valid input accepted, bad credentials refused.
#   SPIS_BIN          the server binary (default: target/debug/spis)
#   SPIS_CORPUS       the photo corpus (default: ../shared/corpus beside the repository)
#   SPIS_CACHE        cache root (default /var/cache/spis-ci); the virtualenv lives there
#   SCHEMATHESIS_SEED the seed (default: fixed, so a failure replays; any integer explores more)
#   SCHEMATHESIS_EXAMPLES  test cases per operation and phase (default 30)
# The WebSocket /api/events is outside what OpenAPI can drive; tests/integration covers it. The
# upload routes speak tus (headers and offsets in a conversation): real tus clients drive them
# (tests/api/tus.sh with tuspy, tests/web with tus-js-client) and tests/integration/uploads.rs.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
bin=${SPIS_BIN:-$repo/target/debug/spis}
corpus=${SPIS_CORPUS:-$repo/../shared/corpus}
version=4.32.5
venv=${SPIS_CACHE:-/var/cache/spis-ci}/schemathesis-$version

# shellcheck source=tests/api/venv.sh
. "$here/venv.sh"
ensure_venv schemathesis.sh "$venv" "schemathesis==$version"

work=$(mktemp -d)
pid=""
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  [ -z "$pid" ] || kill "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/media/trip" "$work/state"
cp "$corpus/pypi-scikit-image-0.26.0/skimage/data/rocket.jpg" "$work/media/plain.jpg"
# A few more of the corpus's kinds, each under 2 MB: a camera JPEG with a date taken, a PNG, a GIF.
for kind in JPEG PNG GIF; do
  f=$(awk -F'\t' -v k="$kind" 'NR > 1 && $4 == k && $8 < 2000000 && (k != "JPEG" || $9 == "yes") {
        print $1; exit }' "$corpus/MANIFEST.tsv")
  [ -z "$f" ] || cp "$corpus/$f" "$work/media/trip/sample.${kind,,}"
done

# Access control on, as shipped; no rate limit, so the run measures the API and not the limiter.
SPIS_THUMB_WORKERS=0 "$bin" --media "$work/media" --state-dir "$work/state" --listen 127.0.0.1:0 \
  --rate-limit 0 --watch off >"$work/out" 2>"$work/log" &
pid=$!
base=$(spis_address schemathesis.sh "$work/out" "$work/log")
curl -fsS -X POST -H 'Content-Type: application/json' -d '{"password":"correct horse battery"}' \
  "$base/api/setup" >/dev/null
token=$("$bin" --state-dir "$work/state" token create schemathesis)
for _ in $(seq 300); do
  curl -fsS "$base/api/health" | grep -q '"ready":true' && break
  sleep 0.1
done

status=0
# One worker: with two threads, Python 3.11's ast module (which hypothesis uses to describe its
# strategies) once failed with "AST constructor recursion depth mismatch"; the run takes seconds.
cd "$work" # schemathesis keeps a .schemathesis folder where it runs
timeout 900 "$venv/bin/schemathesis" run "$base/api/openapi.json" \
  --header "Authorization: Bearer $token" \
  --checks all \
  --exclude-path /api/events \
  --exclude-path-regex '^/api/uploads?(/|$)' \
  --max-examples "${SCHEMATHESIS_EXAMPLES:-30}" \
  --seed "${SCHEMATHESIS_SEED:-20261203}" \
  --generation-database none \
  --workers 1 \
  --request-timeout 30 \
  --no-color || status=$?

if ! kill -0 "$pid" 2>/dev/null; then
  echo "schemathesis.sh: spis died during the run" >&2
  status=1
fi
if grep -E 'panicked|ERROR' "$work/log" >&2; then
  echo "schemathesis.sh: the server logged the errors above" >&2
  status=1
fi
exit "$status"
