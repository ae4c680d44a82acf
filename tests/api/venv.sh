# shellcheck shell=bash
# Sourced by the tests in tests/api: a pinned Python tool in a virtualenv under the cache.
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
