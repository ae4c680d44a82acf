#!/usr/bin/env bash
# Fails when any dependency built for a shipped target can compile C or assembly: spis must
# link fully static for x86_64/aarch64 musl with rust-lld alone. Two exceptions, both compiled
# by the same C compiler (zig, fetched by scripts/static.sh; scripts/zig-cc.sh):
#   libmimalloc-sys, the allocator of the musl builds, earned by measurement (BENCHMARKS.md,
#     issue 17: musl's malloc doubled the warm restart);
#   ring, the crypto of HTTPS (src/tls.rs): the pure-Rust providers are graviola, which needs the
#     ARMv8 crypto extensions the CM4's BCM2711 lacks, and rustls-rustcrypto, an alpha that says
#     not to use it in production. Asks cargo for the dependency
# graph of each musl target (normal and build dependencies, features as the build resolves
# them), so a crate that only some other platform or `cfg(fuzzing)` pulls in (rav1e's
# libfuzzer-sys) does not count, and one that the targets do build always does.
set -euo pipefail
cd "$(dirname "$0")/.."

# Build-time crates that drive a C compiler or a native build system.
forbidden='cc|cmake|pkg-config|bindgen|autocfg-c|nasm-rs|vcpkg|psm|stacker'
# The crates allowed to use them.
exceptions='libmimalloc-sys|ring'
status=0
for target in x86_64-unknown-linux-musl aarch64-unknown-linux-musl; do
  found=""
  for crate in $(cargo tree --locked --target "$target" -e normal,build --prefix none --format '{p}' \
    | awk '{print $1}' | sort -u | grep -Ex "$forbidden" || true); do
    # Who depends on it directly: only the exception, or a crate that is a violation.
    users=$(cargo tree --locked --target "$target" -e normal,build -i "$crate" --depth 1 --prefix none --format '{p}' \
      | awk 'NR > 1 {print $1}' | sort -u | grep -vEx "$exceptions" || true)
    [ -z "$users" ] || found="$found $crate"
  done
  found=${found# }
  if [ -n "$found" ]; then
    echo "check-pure-rust: $target builds crates that compile C: $found" >&2
    for crate in $found; do
      cargo tree --locked --target "$target" -e normal,build -i "$crate" >&2 || true
    done
    echo "(tera's parser pest >= 2.9 needs psm via pest_stack_guard: keep pest at 2.8.x)" >&2
    status=1
  fi
done
[ "$status" = 0 ] && echo "check-pure-rust: no dependency of either musl target compiles C, but libmimalloc-sys (the allocator) and ring (TLS)"
exit "$status"
