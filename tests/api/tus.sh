#!/usr/bin/env bash
# Resumable uploads with a second, independent tus client: tuspy (pinned, installed into the cache)
# against the real server, through a kill -9 in the middle of an upload (tests/api/tus.py).
#   SPIS_BIN     the server binary (default: target/debug/spis)
#   SPIS_CORPUS  the photo corpus (default: ../shared/corpus beside the repository)
#   SPIS_CACHE   cache root (default /var/cache/spis-ci); the virtualenv lives there
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
bin=${SPIS_BIN:-$repo/target/debug/spis}
corpus=${SPIS_CORPUS:-$repo/../shared/corpus}
version=1.1.0
venv=${SPIS_CACHE:-/var/cache/spis-ci}/tuspy-$version

# shellcheck source=tests/api/venv.sh
. "$here/venv.sh"
ensure_venv tus.sh "$venv" "tuspy==$version"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/media" "$work/state"
# Two real photos: a small one and a camera JPEG of a few MB.
other=$(awk -F'\t' 'NR > 1 && $4 == "JPEG" && $8 > 1000000 && $8 < 6000000 { print $1; exit }' "$corpus/MANIFEST.tsv")
status=0
"$venv/bin/python" "$here/tus.py" "$bin" "$work/state" "$work/media" \
  "$corpus/pypi-scikit-image-0.26.0/skimage/data/rocket.jpg" "$corpus/$other" || status=$?
if [ "$status" != 0 ] || grep -E 'panicked|ERROR' "$work/spis.log" >&2; then
  echo "tus.sh: failed; the server's log:" >&2
  tail -n 40 "$work/spis.log" >&2
  exit 1
fi
