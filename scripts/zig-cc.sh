#!/usr/bin/env bash
# The C compiler for the one C dependency of the musl builds (the allocator, see
# scripts/check-pure-rust.sh): zig's clang for `zig cc -target <arch>-linux-musl`, called by the
# cc crate as CC_<rust target>. Zig ships musl's headers for every architecture, so no C cross
# toolchain or foreign-arch package is installed on the host. The cc crate passes the Rust
# triple as --target=...; zig wants its own, taken from this script's name: zig-cc.sh is
# symlinked as <zig triple>-cc and <zig triple>-ar by scripts/static.sh.
set -euo pipefail
name=$(basename "$0")
zig=${SPIS_ZIG:?SPIS_ZIG names the zig binary (set by scripts/static.sh)}
case "$name" in
  *-ar) exec "$zig" ar "$@" ;;
  *-cc) triple=${name%-cc} ;;
  *) echo "zig-cc.sh: call me as <zig triple>-cc or -ar" >&2; exit 2 ;;
esac
args=()
for a in "$@"; do
  case "$a" in
    --target=*) ;;
    *) args+=("$a") ;;
  esac
done
exec "$zig" cc -target "$triple" "${args[@]}"
