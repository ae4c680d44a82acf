#!/usr/bin/env bash
# `make card`: the appliance's card image for a Raspberry Pi CM4, built offline from Debian
# bookworm arm64 packages instead of Buildroot's sources:
#
#   scripts/card/build.sh [SPIS_BIN]
#
# The same card as `make image`: the files of buildroot/board/raspberrypi/cm4/ (genimage.cfg,
# config.txt, cmdline.txt, spis.toml, wifi.conf, the overlay, post-build.sh), the same rootfs/
# overlay and the static aarch64 binary; only the kernel (Debian's, with an initramfs for its
# modular SD driver), the firmware (Debian's raspi-firmware) and the userland (Debian's systemd,
# e2fsprogs, ffmpeg, libheif's heif-convert) come from packages.
#
# SPIS_BIN     the static aarch64 binary (default: where `make static` puts it)
# SPIS_CACHE   cache root (default /var/cache/spis-ci): .debs and apt lists in $SPIS_CACHE/card
# CARD_OUT     output directory (default $CARGO_TARGET_DIR/card, else target/card):
#              spis-cm4.img, spis-cm4.img.xz, SHA256SUMS
# CARD_XZ=0    skip the .xz (the test boots the .img; CI has no use for the archive)
#
# Needs root (the root filesystem's files belong to root, spis, systemd's users); changes nothing
# on the host but its output and cache, and installs only host tools that are missing.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
BOARD=$REPO/buildroot/board/raspberrypi/cm4
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
SPIS_BIN=${1:-${SPIS_BIN:-$TARGET/aarch64-unknown-linux-musl/release/spis}}
CACHE=${SPIS_CACHE:-/var/cache/spis-ci}/card
OUT=${CARD_OUT:-$TARGET/card}
# What the card runs, besides the kernel and the firmware. No Recommends.
PACKAGES=(base-files base-passwd util-linux dash coreutils sed grep findutils hostname
	systemd systemd-sysv systemd-resolved systemd-timesyncd dbus udev kmod busybox-static
	e2fsprogs dosfstools fdisk wpasupplicant firmware-brcm80211 procps
	libheif-examples ffmpeg)
KERNEL_META=linux-image-arm64
DTB_NAME=bcm2711-rpi-cm4-io.dtb

T0=$SECONDS
log() { printf '[card %3ds] %s\n' "$((SECONDS - T0))" "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

[[ $(id -u) == 0 ]] || die "run as root: the root filesystem's files must belong to root and spis"
[[ -f $SPIS_BIN ]] || die "no binary at $SPIS_BIN (make static builds it)"
# ELF e_machine 0xb7 (AArch64), little-endian, at offset 18.
[[ $(od -An -tx1 -j18 -N2 "$SPIS_BIN" | tr -d ' ') == b700 ]] || die "$SPIS_BIN is not an aarch64 ELF binary"

# --- host tools -------------------------------------------------------------------------------
export PATH=$PATH:/usr/sbin:/sbin
# shellcheck disable=SC1091 # checked on its own (make lint)
. "$REPO/scripts/card/apt.sh"
host_tools genimage=genimage mcopy=mtools mkfs.vfat=dosfstools mke2fs=e2fsprogs \
	fdtput=device-tree-compiler depmod=kmod cpio=cpio readelf=binutils xz=xz-utils dpkg-deb=dpkg \
	systemd-sysusers=systemd systemctl=systemd

# --- packages ---------------------------------------------------------------------------------
log "resolving ${#PACKAGES[@]} packages and $KERNEL_META for arm64 (private apt in $CACHE/arm64)"
papt_init "$CACHE/arm64" arm64 "bookworm main non-free-firmware" \
	"bookworm-updates main non-free-firmware" "bookworm-security main non-free-firmware"
mapfile -t DEBS < <(papt_fetch "${PACKAGES[@]}" raspi-firmware) || die "cannot fetch the arm64 packages"
((${#DEBS[@]} > 0)) || die "cannot resolve ${PACKAGES[*]}"
# The kernel on its own: its Depends (initramfs-tools and friends) are not wanted.
KPKG=$(papt_cache depends "$KERNEL_META" | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -n1)
[[ -n $KPKG ]] || die "no kernel package behind $KERNEL_META"
KVERSION=$(papt_cache show --no-all-versions "$KPKG" | sed -n 's/^Version: //p')
KDEB=$(papt_deb "$KPKG" "$KVERSION" arm64)
[[ -f $KDEB ]] || (cd "$PAPT_DIR/debs" && papt download "$KPKG" >/dev/null) || die "cannot fetch $KPKG"
log "${#DEBS[@]} packages and $KPKG $KVERSION in $PAPT_DIR/debs"
# Superseded versions go: the cache holds one card's worth of packages.
declare -A keep=([$KDEB]=1)
for line in "${DEBS[@]}"; do keep[${line##* }]=1; done
for f in "$PAPT_DIR"/debs/*.deb; do
	[[ -e $f && -z ${keep[$f]:-} ]] && rm -f "$f"
done

# --- work directory ---------------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/spis-card.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
ROOT=$WORK/root KDIR=$WORK/kernel STAGE=$WORK/images
mkdir -p "$ROOT" "$KDIR" "$STAGE/rpi-firmware"

log "extracting the packages"
for line in "${DEBS[@]}"; do dpkg-deb -x "${line##* }" "$ROOT"; done
dpkg-deb -x "$KDEB" "$KDIR"
# Merged /usr, as Debian's installers make it.
for d in bin sbin lib; do
	if [[ -d $ROOT/$d && ! -L $ROOT/$d ]]; then
		mkdir -p "$ROOT/usr/$d"
		cp -a "$ROOT/$d/." "$ROOT/usr/$d/"
		rm -rf "${ROOT:?}/$d"
	fi
	ln -sfn "usr/$d" "$ROOT/$d"
done
# Documentation, manuals, translations and the firmware of other boards are not needed on a card.
rm -rf "$ROOT"/usr/share/{doc,man,info,locale,lintian,bug} "$ROOT"/etc/kernel "$ROOT"/etc/initramfs

# The firmware the GPU boots from goes to the boot partition, named as Buildroot names it.
FW=$ROOT/usr/lib/raspi-firmware
for f in start4.elf fixup4.dat; do cp "$FW/$f" "$STAGE/rpi-firmware/"; done
rm -rf "$FW"
mkdir -p "$STAGE/rpi-firmware/overlays" # Debian has no .dtbo overlays: see config.txt below

# --- what the maintainer scripts would have done ----------------------------------------------
# update-alternatives --install LINK NAME PATH PRIORITY [--slave LINK NAME PATH]... in the
# postinst scripts (awk, libblas.so.3 for ffmpeg, ...): the link to the highest priority's PATH.
for line in "${DEBS[@]}"; do
	dpkg-deb --ctrl-tarfile "${line##* }" | tar -xO ./postinst 2>/dev/null || true
done | python3 -c '
import os, re, sys
root = sys.argv[1]
text = sys.stdin.read().replace("\\\n", " ")
best = {}
for m in re.finditer(r"update-alternatives --install ([^;&|\n]*)", text):
    words = m.group(1).split()
    if len(words) < 4 or not words[3].isdigit():
        continue
    prio = int(words[3])
    pairs = [(words[0], words[2])]
    rest = words[4:]
    while len(rest) >= 4 and rest[0] == "--slave":
        pairs.append((rest[1], rest[3]))
        rest = rest[4:]
    for link, target in pairs:
        if "$" in link + target or not os.path.lexists(root + target):
            continue
        if link not in best or best[link][0] < prio:
            best[link] = (prio, target)
for link, (_, target) in best.items():
    path = root + link
    if os.path.lexists(path):
        continue
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.symlink(target, path)
' "$ROOT"
cp "$ROOT/usr/share/base-passwd/passwd.master" "$ROOT/etc/passwd"
cp "$ROOT/usr/share/base-passwd/group.master" "$ROOT/etc/group"
sed 's/:.*/:*:19000:0:99999:7:::/' "$ROOT/etc/passwd" >"$ROOT/etc/shadow"
sed 's/:.*/:*::/' "$ROOT/etc/group" >"$ROOT/etc/gshadow"
chmod 640 "$ROOT/etc/shadow" "$ROOT/etc/gshadow"
ln -sfn /bin/dash "$ROOT/usr/bin/sh"
for a in hexdump stty; do # for the test shell and by_partuuid; util-linux has none of these
	[[ -e $ROOT/usr/bin/$a ]] || ln -s busybox "$ROOT/usr/bin/$a"
done
# An empty machine-id: every card starts out the same, and none is "first boot" with its wizard.
# The initramfs gives systemd one made from the card's CID (scripts/card/init).
: >"$ROOT/etc/machine-id"
echo spis >"$ROOT/etc/hostname"
printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$ROOT/etc/hosts"
ln -sfn ../usr/share/zoneinfo/Etc/UTC "$ROOT/etc/localtime" 2>/dev/null || true
# D-Bus's system bus socket directory and the resolver stub, as their postinst make them.
ln -sfn ../run/systemd/resolve/stub-resolv.conf "$ROOT/etc/resolv.conf"

# --- the overlays, as Buildroot applies them: rootfs/, then the board's -----------------------
cp -a "$REPO/rootfs/." "$ROOT/"
cp -a "$BOARD/rootfs-overlay/." "$ROOT/"
find "$ROOT" -name .empty -delete
rm -f "$ROOT/README.md"
install -m 0755 "$SPIS_BIN" "$ROOT/usr/bin/spis"
systemd-sysusers --root="$ROOT" >/dev/null 2>&1
systemctl --root="$ROOT" preset-all >/dev/null 2>&1
# Debian enables what no preset names; these have no use on the card and fail on it: the D-Bus
# wpa_supplicant (spis-wifi starts wpa_supplicant@wlan0) and e2scrub (needs LVM snapshots).
systemctl --root="$ROOT" disable wpa_supplicant.service e2scrub_reap.service e2scrub_all.timer >/dev/null 2>&1
ln -sfn /usr/lib/systemd/system/multi-user.target "$ROOT/etc/systemd/system/default.target"
grep -q '^spis:' "$ROOT/etc/passwd" || die "sysusers made no spis user"

# /var is a tmpfs on the read-only card (fstab): what the packages put there is its factory
# content, copied in at each boot by systemd-tmpfiles, as Buildroot's var factory does.
mkdir -p "$ROOT/usr/share/factory"
mv "$ROOT/var" "$ROOT/usr/share/factory/var"
mkdir -p "$ROOT/var"
for e in "$ROOT"/usr/share/factory/var/*; do
	[[ -e $e ]] && echo "C /var/${e##*/} - - - - /usr/share/factory/var/${e##*/}"
done >"$ROOT/usr/lib/tmpfiles.d/var-factory.conf"

# Buildroot's post-build step, with its variables (IMAGE_VERSION in os-release).
TARGET_DIR=$ROOT BR2_EXTERNAL_SPIS_VERSION=$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown) \
	"$BOARD/post-build.sh"

# Every shared library the thumbnail tools need is there (a missing alternative link, say, would
# leave spis with placeholders on the card).
python3 - "$ROOT" /usr/bin/ffmpeg /usr/bin/heif-convert <<'PY' || die "a library is missing on the card"
import os, subprocess, sys
root, bins = sys.argv[1], sys.argv[2:]
dirs = ["/usr/lib/aarch64-linux-gnu", "/usr/lib", "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu/blas"]

def inside(path):
    """path (inside the card), with its symbolic links followed inside the card."""
    for _ in range(40):
        full = root + path
        if not os.path.islink(full):
            return full
        target = os.readlink(full)
        path = target if target.startswith("/") else os.path.normpath(os.path.join(os.path.dirname(path), target))
    return root + path

seen, todo, missing = set(), [inside(b) for b in bins], []
while todo:
    f = todo.pop()
    out = subprocess.run(["readelf", "-d", f], capture_output=True, text=True).stdout
    # RUNPATH and RPATH: [/usr/lib/.../pulseaudio]
    run = [p for line in out.splitlines() if "PATH)" in line for p in line.split("[", 1)[1].rstrip("]").split(":")]
    for line in out.splitlines():
        if "(NEEDED)" not in line:
            continue
        lib = line.split("[", 1)[1].rstrip("]")
        if lib in seen:
            continue
        seen.add(lib)
        found = [inside(d + "/" + lib) for d in run + dirs if os.path.exists(inside(d + "/" + lib))]
        if found:
            todo.append(found[0])
        else:
            missing.append(f"{lib} (needed by {f[len(root):]})")
if missing:
    sys.exit("missing: " + ", ".join(missing))
print(f"[card] {len(seen)} shared libraries of {' '.join(bins)} present", file=sys.stderr)
PY

# --- the kernel's modules, without the drivers a CM4 cannot have --------------------------------
KVER=${KPKG#linux-image-}
MODS=$KDIR/lib/modules/$KVER/kernel
rm -rf "$MODS"/drivers/{gpu,media,infiniband,iio,staging,isdn,comedi,target,net/can,net/hamradio} "$MODS"/sound
find "$MODS/drivers/net/wireless" -mindepth 1 -maxdepth 1 ! -name broadcom -exec rm -rf {} +
find "$MODS/drivers/net/ethernet" -mindepth 1 -maxdepth 1 ! -name broadcom -exec rm -rf {} +
mkdir -p "$ROOT/usr/lib/modules"
cp -a "$KDIR/lib/modules/$KVER" "$ROOT/usr/lib/modules/"
depmod -b "$ROOT/usr" "$KVER"

# --- boot partition: kernel, device tree, initramfs, firmware settings --------------------------
cp "$KDIR/boot/vmlinuz-$KVER" "$STAGE/Image" # arm64 Debian kernels are plain Images
DTB=$STAGE/bcm2711-rpi-cm4.dtb # the name the firmware loads on a CM4
cp "$KDIR/usr/lib/linux-image-$KVER/broadcom/$DTB_NAME" "$DTB"
# What config.txt's overlays do on Buildroot's card, done to the tree itself (Debian ships none):
# dwc2,dr_mode=host (the IO board's USB 2.0 ports), and the console on uart0 (miniuart-bt moves
# Bluetooth away from it; here Bluetooth stays off).
fdtput -t s "$DTB" /soc/usb@7e980000 dr_mode host
fdtput -r "$DTB" /soc/serial@7e201000/bluetooth
cp "$BOARD/cmdline.txt" "$BOARD/config.txt" "$BOARD/spis.toml" "$BOARD/wifi.conf" "$STAGE/rpi-firmware/"
# The SD and eMMC hosts (sdhci-iproc), what their probe waits for (regulators, the firmware's
# GPIO expander and reset controller), ext4 for the root filesystem.
"$REPO/scripts/card/initramfs.sh" "$ROOT" "$STAGE/initrd.img" "$ROOT/usr/lib/modules/$KVER" \
	fixed gpio-regulator bcm2835-mailbox raspberrypi gpio-raspberrypi-exp reset-raspberrypi \
	sdhci sdhci-pltfm sdhci-iproc mmc_block crc32c_generic ext4 || die "initramfs.sh failed"

# --- the partitions and the card, with Buildroot's genimage.cfg -------------------------------
log "making rootfs.ext4 (mke2fs -d, read-only on the card)"
size=$(($(du -sm "$ROOT" | cut -f1) * 110 / 100 + 32))
mke2fs -q -t ext4 -L spis-root -E root_owner=0:0 -d "$ROOT" "$STAGE/rootfs.ext4" "${size}M" >/dev/null
log "genimage: boot.vfat, data.ext4, spis-cm4.img"
mkdir -p "$WORK/genroot" "$WORK/gentmp" "$OUT"
genimage --config "$BOARD/genimage.cfg" --rootpath "$WORK/genroot" --tmppath "$WORK/gentmp" \
	--inputpath "$STAGE" --outputpath "$STAGE" >"$WORK/genimage.log" 2>&1 ||
	{ cat "$WORK/genimage.log" >&2; die "genimage failed"; }
mv "$STAGE/sdcard.img" "$OUT/spis-cm4.img"
rm -f "$OUT/spis-cm4.img.xz"
if [[ ${CARD_XZ:-1} == 1 ]]; then
	log "xz -T0 spis-cm4.img"
	xz -T0 -6 -k "$OUT/spis-cm4.img"
fi
(cd "$OUT" && sha256sum spis-cm4.img* >SHA256SUMS)
log "$(du -h --apparent-size "$OUT/spis-cm4.img" | cut -f1) $OUT/spis-cm4.img (root filesystem ${size} MiB)"
log "done: $OUT/spis-cm4.img$([[ ${CARD_XZ:-1} == 1 ]] && echo ", spis-cm4.img.xz"), SHA256SUMS"
