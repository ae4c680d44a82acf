#!/usr/bin/env bash
# Fully static, stripped release binaries for the given musl targets (default: x86_64 and aarch64),
# linked with the rust-lld that rustup ships (.cargo/config.toml): no C cross toolchain.
# Prints each binary's path and size; the aarch64 one (the Pi) should stay under 8 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl)
out="${CARGO_TARGET_DIR:-$PWD/target}"
installed="$(rustup target list --installed)"
for t in "${targets[@]}"; do
    grep -qx "$t" <<<"$installed" || rustup target add "$t"
done
for t in "${targets[@]}"; do
    cargo build --release --locked --target "$t"
done
for t in "${targets[@]}"; do
    bin="$out/$t/release/spis"
    # A static-pie or plain static ELF has no program interpreter: nothing to load at run time.
    if readelf --program-headers "$bin" | grep -q INTERP; then
        echo "static.sh: $bin is dynamically linked" >&2
        exit 1
    fi
    size=$(stat -c %s "$bin")
    awk -v t="$t" -v s="$size" -v b="$bin" 'BEGIN { printf "%-28s %5.1f MiB  %s\n", t, s / 1048576, b }'
done
