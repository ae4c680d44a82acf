#!/usr/bin/env bash
# Slow storage (issue 17): scripts/bench.sh with its library on a device held to SD-card speed
# and the page cache dropped before every start, as after a reboot of a Pi. The device is an ext4
# image with 512-byte inodes (as the card's data partition) on a loop device with direct I/O, so
# the host's page cache does not hold its blocks twice; the server runs in a cgroup that throttles
# its reads of that device (cgroup v2 io.max, or v1 blkio.throttle where the host has v1).
# Figures: cold index and warm restart of 100k, and the first page after the reboot.
# Needs root. A benchmark, not a test: exits 0 on a miss; skips (exit 0) where the host has no
# loop devices or no throttling cgroup.
#
#   BENCH_SLOW_IOPS=2000  BENCH_SLOW_MBPS=20   the read limits (a good A1 SD card)
#   BENCH_DIR=/tmp/spis-bench    the image (kept there, 4 GiB sparse) and its mount point
#   BENCH_BIN, BENCH_COUNT       as for scripts/bench.sh (the shipped binary, 100000)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
IOPS="${BENCH_SLOW_IOPS:-2000}"
MBPS="${BENCH_SLOW_MBPS:-20}"
DIR="${BENCH_DIR:-/tmp/spis-bench}/slow"
say() { echo "bench-slow: $*" >&2; }
die() { echo "bench-slow: $*" >&2; exit 1; }
skip() { say "skipped: $*"; exit 0; }

[[ $EUID == 0 ]] || skip "needs root (a loop device, a cgroup, dropping the page cache)"
[[ -e /dev/loop-control ]] || skip "no loop devices on this host"
# shellcheck source=scripts/bench/common.sh
. "$ROOT/scripts/bench/common.sh"
bench_binaries shipped

# Where the throttle goes: cgroup v2 with the io controller enabled for children, else v1 blkio.
CG=""
if [[ -f /sys/fs/cgroup/cgroup.subtree_control ]] && grep -qw io /sys/fs/cgroup/cgroup.subtree_control; then
  CG=/sys/fs/cgroup/spis-bench-slow
  CG_KIND=v2
elif [[ -f /sys/fs/cgroup/blkio/blkio.throttle.read_iops_device ]]; then
  CG=/sys/fs/cgroup/blkio/spis-bench-slow
  CG_KIND=v1
elif [[ -f /sys/fs/cgroup/unified/cgroup.subtree_control ]] && grep -qw io /sys/fs/cgroup/unified/cgroup.subtree_control; then
  CG=/sys/fs/cgroup/unified/spis-bench-slow
  CG_KIND=v2
else
  skip "no cgroup that throttles reads (v2 io controller not enabled, no v1 blkio)"
fi

mkdir -p "$DIR/mnt"
LOOP=""
cleanup() {
  mountpoint -q "$DIR/mnt" && umount "$DIR/mnt"
  [[ -z "$LOOP" ]] || losetup -d "$LOOP"
  # The cgroup is empty once the servers are gone (bench.sh stops them on exit).
  [[ ! -d "$CG" ]] || rmdir "$CG" 2>/dev/null || true
}
trap cleanup EXIT

if [[ ! -f "$DIR/card.img" ]]; then
  say "making a 4 GiB ext4 image with 512-byte inodes in $DIR/card.img"
  truncate -s 4G "$DIR/card.img.tmp"
  mkfs.ext4 -q -F -I 512 -L spis-slow "$DIR/card.img.tmp"
  mv "$DIR/card.img.tmp" "$DIR/card.img"
fi
LOOP="$(losetup --find --show --direct-io=on "$DIR/card.img")"
mount -o noatime "$LOOP" "$DIR/mnt"
MAJMIN="$(lsblk -dno MAJ:MIN "$LOOP" | tr -d ' ')"
mkdir -p "$CG"
if [[ $CG_KIND == v2 ]]; then
  echo "$MAJMIN riops=$IOPS rbps=$((MBPS * 1000000))" >"$CG/io.max"
else
  echo "$MAJMIN $IOPS" >"$CG/blkio.throttle.read_iops_device"
  echo "$MAJMIN $((MBPS * 1000000))" >"$CG/blkio.throttle.read_bps_device"
fi
say "$LOOP ($MAJMIN) mounted on $DIR/mnt; reads of the server held to $IOPS IOPS and $MBPS MB/s ($CG_KIND $CG)"

# The server enters the cgroup before it becomes spis (same pid, so bench.sh reads its status).
WRAP="$DIR/spis-throttled"
printf '#!/bin/sh\necho $$ >%q/cgroup.procs || exit 1\nexec %q "$@"\n' "$CG" "$BIN" >"$WRAP"
chmod +x "$WRAP"

# The throttle is real: a file read from the device inside the cgroup, with a cold cache.
probe="$DIR/mnt/probe.bin"
[[ -f "$probe" ]] || head -c $((8 * MBPS * 1000000 / 4)) /dev/urandom >"$probe"
sync
echo 3 >/proc/sys/vm/drop_caches
t0=$(date +%s%N)
sh -c "echo \$\$ >$CG/cgroup.procs && exec cat $probe" >/dev/null
t1=$(date +%s%N)
probe_mbps=$(awk -v b="$(stat -c %s "$probe")" -v ns=$((t1 - t0)) 'BEGIN { printf "%.1f", b / ns * 1000 }')
say "a cold read of $(stat -c %s "$probe") bytes inside the cgroup: $probe_mbps MB/s (limit $MBPS)"

# Goal there: a warm restart under 5 s.
BENCH_DIR="$DIR/mnt" BENCH_BIN="$WRAP" BENCH_GLIBC_BIN=none BENCH_DROP_CACHES=1 \
  BENCH_TARGET_WARM_MS="${BENCH_TARGET_WARM_MS:-5000}" "$ROOT/scripts/bench.sh"
