#!/usr/bin/env bash
# Fails when any dependency can compile C or assembly: spis must link fully static for
# x86_64/aarch64 musl with rust-lld alone. Checks the lock file, so it covers every target.
set -euo pipefail
cd "$(dirname "$0")/.."

# Build-time crates that drive a C compiler or a native build system.
forbidden='cc|cmake|pkg-config|bindgen|autocfg-c|nasm-rs|vcpkg|psm|stacker'
found=$(grep -E "^name = \"($forbidden)\"$" Cargo.lock | sed 's/name = //' | tr -d '"' || true)
if [ -n "$found" ]; then
  echo "check-pure-rust: Cargo.lock pulls in crates that compile C: $found" >&2
  for crate in $found; do cargo tree --target all -e all -i "$crate" >&2 || true; done
  echo "(tera's parser pest >= 2.9 needs psm via pest_stack_guard: keep pest at 2.8.x)" >&2
  exit 1
fi
echo "check-pure-rust: no dependency compiles C"
