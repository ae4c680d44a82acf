# shellcheck shell=bash
# Sourced by the tests in tests/api: a pinned Python tool in a virtualenv under the cache, and
# the address of a spis they started.
# A virtualenv cannot move (its scripts name their interpreter by path): it is made in place,
# and the marker written last says it is whole.
#   ensure_venv WHO VENV PACKAGE==VERSION
ensure_venv() {
  local who=$1 venv=$2 spec=$3
  [ -e "$venv/.complete" ] && return 0
  if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    echo "$who: installing python3-venv" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
  fi
  echo "$who: installing $spec into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$spec"
  touch "$venv/.complete"
}

# spis_address WHO OUT LOG: the http://IP:PORT a spis started with stdout to OUT prints once it
# listens (10 s at most); otherwise its log and a failure.
spis_address() {
  local who=$1 out=$2 log=$3 base=""
  for _ in $(seq 200); do
    base="$(sed -n 's/^spis listening on //p' "$out")"
    [ -n "$base" ] && break
    sleep 0.05
  done
  [ -n "$base" ] || { cat "$log" >&2; echo "$who: spis did not start" >&2; return 1; }
  echo "$base"
}
