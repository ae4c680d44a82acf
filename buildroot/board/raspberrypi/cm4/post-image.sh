#!/bin/sh
# Post-image: the initramfs (the same /init as the Debian-built card's, for a machine ID that
# stays the same from boot to boot on a read-only root), then sdcard.img from boot.vfat,
# rootfs.ext4 and an empty data partition with Buildroot's genimage wrapper and our genimage.cfg.
set -eu
: "${BINARIES_DIR:?}" "${BUILD_DIR:?}" "${TARGET_DIR:?}"

board=$(cd "$(dirname "$0")" && pwd)
"${board}/../../../../scripts/card/initramfs.sh" "${TARGET_DIR}" "${BINARIES_DIR}/initrd.img"

exec support/scripts/genimage.sh -c "$(dirname "$0")/genimage.cfg"
