#!/usr/bin/env bash
# The card's initramfs, for both cards (scripts/card/build.sh and Buildroot's post-image.sh):
#
#   scripts/card/initramfs.sh ROOT OUT [MODDIR MODULE...]
#
# ROOT is the card's root filesystem, whose busybox runs scripts/card/init; OUT is the gzipped
# cpio to write (initrd.img on the boot partition, `initramfs initrd.img followkernel` in
# config.txt). The init mounts the root read-only and hands systemd a machine ID made from the
# card's CID, which is why Buildroot's card, whose kernel needs no modules, has one too.
#
# MODDIR and MODULEs: the kernel modules to load first (Debian's kernel has the SD host and ext4
# as modules), with what they depend on, in modules.dep order; built-in ones are skipped.
#
# A dynamically linked busybox (Buildroot's) is copied with its loader and libraries, as
# readelf lists them: binutils is one of Buildroot's host requirements.
set -euo pipefail

die() { echo "initramfs.sh: $*" >&2; exit 1; }
(($# >= 2)) || die "usage: $0 ROOT OUT [MODDIR MODULE...]"
ROOT=$1 OUT=$2
shift 2
INIT=$(cd "$(dirname "$0")" && pwd)/init

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/bin" "$WORK/modules"
: >"$WORK/modules/load-order"

bb=''
for p in usr/bin/busybox bin/busybox; do
	[[ -f $ROOT/$p ]] && bb=$ROOT/$p && break
done
[[ -n $bb ]] || die "no busybox in $ROOT"
cp -L "$bb" "$WORK/bin/busybox"

# The loader and the libraries, from the target's root, never the host's: an absolute NEEDED
# path or interpreter is looked up in ROOT's /lib and /usr/lib.
copy_lib() {
	local name=$1 src='' d
	for d in '' lib usr/lib lib64 usr/lib64 lib/aarch64-linux-gnu usr/lib/aarch64-linux-gnu; do
		[[ $name == /* ]] && { src=$ROOT$name; break; }
		[[ -e $ROOT/$d/$name ]] && { src=$ROOT/$d/$name; break; }
	done
	[[ -n $src && -e $src ]] || die "$name (needed by busybox) is not in $ROOT"
	local dest=$WORK/${name#/}
	[[ $name == /* ]] || dest=$WORK/lib/$name
	[[ -e $dest ]] && return 0
	mkdir -p "$(dirname "$dest")"
	cp -L "$src" "$dest"
	local n
	for n in $(readelf -d "$src" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p'); do copy_lib "$n"; done
}
interp=$(readelf -l "$WORK/bin/busybox" | sed -n 's/.*program interpreter: \(.*\)\]$/\1/p')
if [[ -n $interp ]]; then
	copy_lib "$interp"
	for n in $(readelf -d "$WORK/bin/busybox" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p'); do copy_lib "$n"; done
fi

install -m 0755 "$INIT" "$WORK/init"

if (($# > 0)); then
	MODDIR=$1
	shift
	for m in "$@"; do
		grep -qE "/${m//-/[-_]}\.ko\$" "$MODDIR/modules.builtin" && continue
		dep=$(grep -E "/${m//-/[-_]}\.ko(\.[a-z]+)?:" "$MODDIR/modules.dep") || die "module $m not in $MODDIR"
		for f in $(echo "${dep#*:}" | tr ' ' '\n' | tac) "${dep%%:*}"; do
			b=$(basename "$f")
			grep -qx "$b" "$WORK/modules/load-order" && continue
			cp "$MODDIR/$f" "$WORK/modules/$b"
			echo "$b" >>"$WORK/modules/load-order"
		done
	done
fi

(cd "$WORK" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 | gzip -9n) >"$OUT"
