#!/usr/bin/env bash
# Fully static, stripped release binaries for the given musl targets (default: x86_64 and aarch64),
# linked with the rust-lld that rustup ships (.cargo/config.toml); the allocator's C is compiled
# by zig (from PyPI, cached), so no C cross toolchain is installed on the host.
# Prints each binary's path and size (2026-12, with TLS: aarch64, the Pi's, 10.6 MiB; x86_64 13.4 MiB).
set -euo pipefail
cd "$(dirname "$0")/.."

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl)
# Where cargo puts its output, whether CARGO_TARGET_DIR or a cargo config says so.
out=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
installed="$(rustup target list --installed)"
for t in "${targets[@]}"; do
    grep -qx "$t" <<<"$installed" || rustup target add "$t"
done
# The allocator (mimalloc) is the one C dependency, for the musl targets only: compiled by zig,
# which PyPI ships as a wheel, kept in the cache (see scripts/zig-cc.sh and BENCHMARKS.md).
zig_version=0.17.1
zig_dir="${SPIS_CACHE:-/var/cache/spis-ci}/zig-$zig_version"
if [ ! -x "$zig_dir/ziglang/zig" ]; then
    echo "static.sh: fetching zig $zig_version from PyPI into $zig_dir" >&2
    python3 -m pip --version >/dev/null 2>&1 ||
        { echo "static.sh: pip is needed to fetch zig: apt-get install python3-pip" >&2; exit 1; }
    PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$zig_dir.tmp" "ziglang==$zig_version"
    rm -rf "$zig_dir" && mv "$zig_dir.tmp" "$zig_dir"
fi
export SPIS_ZIG="$zig_dir/ziglang/zig"
mkdir -p "$zig_dir/bin"
for t in "${targets[@]}"; do
    z="${t%%-*}-linux-musl"
    env_t="${t//-/_}"
    ln -sf "$PWD/scripts/zig-cc.sh" "$zig_dir/bin/$z-cc"
    ln -sf "$PWD/scripts/zig-cc.sh" "$zig_dir/bin/$z-ar"
    export "CC_$env_t=$zig_dir/bin/$z-cc" "AR_$env_t=$zig_dir/bin/$z-ar"
    # mimalloc commits its arenas eagerly on Linux: the 100k warm restart peaked at 66 MiB
    # (glibc: 37). Committing on demand, it peaks at 37 MiB, as fast (BENCHMARKS.md).
    export "CFLAGS_$env_t=-DMI_DEFAULT_ARENA_EAGER_COMMIT=0"
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
