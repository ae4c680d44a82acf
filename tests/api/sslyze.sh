#!/usr/bin/env bash
# spis's own TLS scanned by sslyze (pinned, installed into the cache) against Mozilla's
# "intermediate" configuration (https://ssl-config.mozilla.org/): TLS 1.2 and 1.3 only, their
# recommended ciphers and curves, certificate key, signature and lifespan, no Heartbleed, ROBOT,
# CCS injection, compression or insecure renegotiation. The certificate path is validated against
# the CA the server made, as a phone that trusts it would. sslyze exits 1 when not compliant.
#   SPIS_BIN     the server binary (default: target/debug/spis)
#   SPIS_CACHE   cache root (default /var/cache/spis-ci); the virtualenv lives there
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
bin=${SPIS_BIN:-$repo/target/debug/spis}
version=6.3.1
venv=${SPIS_CACHE:-/var/cache/spis-ci}/sslyze-$version

# shellcheck source=tests/api/venv.sh
. "$here/venv.sh"
ensure_venv sslyze.sh "$venv" "sslyze==$version"

work=$(mktemp -d)
pid=""
cleanup() {
  [ -z "$pid" ] || kill "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/media"
"$bin" --media "$work/media" --state-dir "$work/state" --listen 127.0.0.1:0 --no-auth \
  >"$work/out" 2>"$work/spis.log" &
pid=$!
base=$(spis_address sslyze.sh "$work/out" "$work/spis.log")
sed -n '/BEGIN CERTIFICATE/,/END CERTIFICATE/p' "$work/state/tls/ca.pem" >"$work/ca.crt"
port=${base##*:}
if ! "$venv/bin/python" -m sslyze --mozilla_config=intermediate --certinfo_ca_file "$work/ca.crt" \
  "localhost:$port{127.0.0.1}" >"$work/sslyze.txt" 2>&1; then
  cat "$work/sslyze.txt" >&2
  echo "sslyze.sh: spis's TLS is not compliant with Mozilla's intermediate configuration" >&2
  exit 1
fi
grep -A3 'COMPLIANCE AGAINST' "$work/sslyze.txt" | tail -n 2 >&2
echo "sslyze.sh: compliant with Mozilla's intermediate configuration" >&2
