#!/bin/sh
# Post-image: assemble sdcard.img from boot.vfat, rootfs.ext4 and an empty data
# partition with Buildroot's genimage wrapper and our genimage.cfg.
set -eu
: "${BINARIES_DIR:?}" "${BUILD_DIR:?}"

exec support/scripts/genimage.sh -c "$(dirname "$0")/genimage.cfg"
