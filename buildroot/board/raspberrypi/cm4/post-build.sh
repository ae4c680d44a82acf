#!/bin/sh
# Post-build: name the image in os-release, so `cat /etc/os-release` on the
# appliance says which spis tree it was built from.
set -eu
: "${TARGET_DIR:?}"

os_release="${TARGET_DIR}/usr/lib/os-release"
sed -i '/^IMAGE_ID=/d; /^IMAGE_VERSION=/d' "${os_release}"
printf 'IMAGE_ID=spis\nIMAGE_VERSION=%s\n' \
	"${BR2_EXTERNAL_SPIS_VERSION:-unknown}" >>"${os_release}"
