#!/usr/bin/env bash
# Installs what `make test` needs on a fresh machine; does nothing when it is all there.
set -euo pipefail

if command -v rustup >/dev/null 2>&1; then
  for component in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$component" || rustup component add "$component"
  done
fi

# External decoders the thumbnail tests exercise: libheif's heif-convert (HEIC/AVIF) and ffmpeg
# (video posters; the tests also use it to make real videos).
missing=()
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
command -v heif-convert >/dev/null 2>&1 || command -v heif-dec >/dev/null 2>&1 || missing+=(libheif-examples)
# The static aarch64 binary is smoke-tested under user-mode QEMU; readelf checks it is static.
command -v qemu-aarch64-static >/dev/null 2>&1 || missing+=(qemu-user-static)
command -v readelf >/dev/null 2>&1 || missing+=(binutils)
# scripts/static.sh fetches zig (the allocator's C compiler) from PyPI with pip.
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v curl >/dev/null 2>&1 || missing+=(curl)
# HTTPS: the tests offer old protocols and weak ciphers with openssl s_client.
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
# A server alone in a network namespace gets a new address (nsenter is util-linux, always there).
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
# exiftool is the reference the dates taken over the photo corpus are compared with.
command -v exiftool >/dev/null 2>&1 || missing+=(libimage-exiftool-perl)
# Zip downloads are checked with Info-ZIP's unzip -t (and Python's zipfile).
command -v unzip >/dev/null 2>&1 || missing+=(unzip)
# Real nginx in front of spis for the proxy tests (they start their own, on 127.0.0.1 only).
[ -x /usr/sbin/nginx ] || missing+=(nginx-light)
if ((${#missing[@]})); then
  echo "setup-test-deps: installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  # Packages must not start services (nginx would listen on 0.0.0.0:80): policy-rc.d says no.
  guard=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    guard=/usr/sbin/policy-rc.d
    trap 'rm -f "$guard"' EXIT
    printf '#!/bin/sh\nexit 101\n' >"$guard"
    chmod +x "$guard"
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ -z "$guard" ] || rm -f "$guard"
fi
