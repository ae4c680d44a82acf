#!/bin/sh
# Post-build: name the image in os-release, so `cat /etc/os-release` on the
# appliance says which spis tree it was built from; keep the factory spis.toml
# in the root filesystem, which spis falls back to when the one on the boot
# partition has a mistake (spis.service.d/appliance.conf).
set -eu
: "${TARGET_DIR:?}"

os_release="${TARGET_DIR}/usr/lib/os-release"
sed -i '/^IMAGE_ID=/d; /^IMAGE_VERSION=/d' "${os_release}"
printf 'IMAGE_ID=spis\nIMAGE_VERSION=%s\n' \
	"${BR2_EXTERNAL_SPIS_VERSION:-unknown}" >>"${os_release}"

install -D -m 0644 "$(dirname "$0")/spis.toml" "${TARGET_DIR}/usr/share/spis/spis.toml"
