#!/usr/bin/env bash
# The appliance image with Buildroot (the BR2_EXTERNAL tree in buildroot/, the overlay in rootfs/).
#   scripts/buildroot.sh image   sdcard.img for a Raspberry Pi CM4 (needs internet for Buildroot's
#                                downloads, and the binary from `make static`)
#   scripts/buildroot.sh check   offline: the defconfig resolves, check-package, shellcheck
# Environment: BUILDROOT (a Buildroot checkout; `image` clones the pinned tag when unset),
# O (output directory, default target/buildroot), BR2_DL_DIR (Buildroot's download cache),
# CARGO_TARGET_DIR (where `make static` put the binary).
set -euo pipefail

# The one place the Buildroot version is pinned: a long-term-support release.
BUILDROOT_VERSION=2026.02.3
BUILDROOT_GIT=https://gitlab.com/buildroot.org/buildroot.git
DEFCONFIG=spis_rpi_cm4_defconfig

root=$(cd "$(dirname "$0")/.." && pwd)
external="$root/buildroot"

die() {
	printf 'buildroot.sh: %s\n' "$*" >&2
	exit 1
}

# The Buildroot checkout to use; `image` may fetch it, `check` must not touch the network.
buildroot_dir() {
	local fetch=$1 dir=${BUILDROOT:-}
	if [[ -z $dir ]]; then
		[[ $fetch == fetch ]] || die "set BUILDROOT to a Buildroot $BUILDROOT_VERSION checkout"
		dir="$root/target/buildroot-$BUILDROOT_VERSION"
		if [[ ! -e $dir/Makefile ]]; then
			echo "fetching Buildroot $BUILDROOT_VERSION into $dir" >&2
			git clone --quiet --depth 1 --branch "$BUILDROOT_VERSION" "$BUILDROOT_GIT" "$dir"
		fi
	fi
	[[ -e $dir/Makefile && -e $dir/utils/check-package ]] || die "$dir is not a Buildroot tree"
	local version
	version=$(make -s --no-print-directory -C "$dir" print-version)
	[[ $version == "$BUILDROOT_VERSION" ]] ||
		die "$dir is Buildroot $version; spis is pinned to $BUILDROOT_VERSION (scripts/buildroot.sh)"
	printf '%s\n' "$dir"
}

image() {
	local br out bin
	br=$(buildroot_dir fetch)
	out=${O:-$root/target/buildroot}
	bin="${CARGO_TARGET_DIR:-$root/target}/aarch64-unknown-linux-musl/release/spis"
	[[ $bin == /* ]] || bin="$root/$bin"
	[[ -f $bin ]] || die "$bin is missing: run 'make static' first"
	echo "Buildroot $BUILDROOT_VERSION, output in $out, downloads in ${BR2_DL_DIR:-$br/dl}" >&2
	make -C "$br" O="$out" BR2_EXTERNAL="$external" "$DEFCONFIG"
	# The package has no source to notice a change: always install the binary anew.
	make -C "$br" O="$out" spis-dirclean
	make -C "$br" O="$out" SPIS_BINARY="$bin"
	echo "image: $out/images/sdcard.img" >&2
}

# Every line of the defconfig must survive into .config: Kconfig silently drops a symbol that
# does not exist or whose dependencies are not met.
check_config() {
	local out=$1 line missing=0
	while IFS= read -r line; do
		# Comments are skipped, but not "# BR2_FOO is not set", which .config must repeat.
		[[ -z $line || ($line == '#'* && $line != '# BR2_'*' is not set') ]] && continue
		if ! grep -qxF -- "$line" "$out/.config"; then
			echo "not in .config: $line" >&2
			missing=1
		fi
	done <"$external/configs/$DEFCONFIG"
	return "$missing"
}

# A Python with what check-package imports (Debian: apt-get install python3-magic flake8).
python_for_check_package() {
	local py
	for py in python3 /usr/bin/python3; do
		if "$py" -c 'import magic, flake8' 2>/dev/null; then
			printf '%s\n' "$py"
			return 0
		fi
	done
	die "check-package needs python3 with magic and flake8 (apt-get install python3-magic flake8)"
}

check() {
	local br out py
	br=$(buildroot_dir nofetch)
	check_dir=$(mktemp -d)
	trap 'rm -rf "$check_dir"' EXIT
	out=$check_dir
	echo "== Buildroot $BUILDROOT_VERSION ($br)"

	echo "== make $DEFCONFIG"
	make -s -C "$br" O="$out" BR2_EXTERNAL="$external" "$DEFCONFIG"
	check_config "$out"
	echo "every line of configs/$DEFCONFIG is in .config"

	echo "== make printvars"
	make -s --no-print-directory -C "$br" O="$out" printvars \
		VARS='BR2_EXTERNAL_SPIS_PATH BR2_PACKAGE_SPIS SPIS_BINARY SPIS_USERS BR2_INIT_SYSTEMD
			BR2_ROOTFS_OVERLAY BR2_TARGET_GENERIC_HOSTNAME BR2_PACKAGE_SYSTEMD_NETWORKD
			BR2_PACKAGE_SYSTEMD_RESOLVED BR2_PACKAGE_SYSTEMD_TIMESYNCD BR2_PACKAGE_WPA_SUPPLICANT
			BR2_PACKAGE_BRCMFMAC_SDIO_FIRMWARE_RPI_WIFI BR2_PACKAGE_RPI_FIRMWARE_EXTRA_FILES
			BR2_INIT_SYSTEMD_VAR_FACTORY' |
		tee "$out/printvars.txt"
	grep -qx 'BR2_PACKAGE_SPIS=y' "$out/printvars.txt" || die "the spis package is not selected"
	grep -q '^SPIS_USERS=.*spis' "$out/printvars.txt" || die "SPIS_USERS did not resolve"
	local dir overlays
	# Words, not lines: BR2_ROOTFS_OVERLAY is a space-separated list.
	read -ra overlays < <(sed -n 's/^BR2_ROOTFS_OVERLAY="\(.*\)"$/\1/p' "$out/printvars.txt")
	for dir in "${overlays[@]}"; do
		[[ -d $dir ]] || die "overlay $dir does not exist"
	done

	echo "== utils/check-package --br2-external"
	py=$(python_for_check_package)
	(cd "$br" && find "$external" -type f -print0 | xargs -0 "$py" utils/check-package --br2-external 2>&1)

	echo "== shellcheck"
	local scripts=()
	mapfile -t scripts < <(grep -rlE '^#!(/usr)?/bin/(env )?(ba)?sh' "$external" "$root/rootfs" "$root/scripts")
	shellcheck "${scripts[@]}"
	printf '%s\n' "${scripts[@]#"$root/"}"
	echo "== ok: Buildroot $BUILDROOT_VERSION"
}

case ${1:-} in
image) image ;;
check) check ;;
*) die "usage: $0 image|check" ;;
esac
