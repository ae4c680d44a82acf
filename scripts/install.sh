#!/usr/bin/env bash
# Installs spis on a systemd machine (Debian, Raspberry Pi OS, ...): `make install` / `make uninstall`.
#   scripts/install.sh install     the binary, the hardened unit, the sysusers file, a sample config
#   scripts/install.sh uninstall   removes them again; keeps an edited config and the state dir
# Environment: BIN (the binary to install, required for install), PREFIX (default /usr/local),
# DESTDIR (a staging root for packages and tests: then nothing on this machine is touched).
# The unit and sysusers files go to /etc, where local admins' files live, not under PREFIX:
# systemd reads neither /usr/local/lib/systemd nor /usr/local/lib/sysusers.d.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
prefix=${PREFIX:-/usr/local}
dest=${DESTDIR:-}
bin_path=$prefix/bin/spis
unit=/etc/systemd/system/spis.service
sysusers=/etc/sysusers.d/spis.conf
config=/etc/spis/spis.toml
sample=$root/spis.example.toml

die() {
	printf 'install.sh: %s\n' "$*" >&2
	exit 1
}

# Real changes to this machine's users and services only without DESTDIR, and only where systemd
# is the running init (the test of sd_booted(3)).
live() { [[ -z $dest ]]; }
systemd_runs() { live && [[ -d /run/systemd/system ]]; }

install_files() {
	[[ -n ${BIN:-} ]] || die "BIN is not set (make install builds it, or pass BIN=path/to/spis)"
	[[ -f $BIN ]] || die "BIN=$BIN is not a file"
	[[ $prefix == /* ]] || die "PREFIX must be an absolute path (got $prefix)"

	# Folders spelled out: install -D would make them with the caller's umask.
	install -d -m 0755 "$dest${bin_path%/*}" "$dest${unit%/*}" "$dest${sysusers%/*}" "$dest${config%/*}"
	install -m 0755 "$BIN" "$dest$bin_path"
	# The unit runs the binary where it was installed; everything else is the appliance's unit.
	sed "s|^ExecStart=/usr/bin/spis |ExecStart=$bin_path |" \
		"$root/rootfs/usr/lib/systemd/system/spis.service" >"$dest$unit.tmp"
	if ! grep -qx "ExecStart=$bin_path serve" "$dest$unit.tmp"; then
		rm -f "$dest$unit.tmp"
		die "could not rewrite ExecStart in the unit"
	fi
	chmod 0644 "$dest$unit.tmp"
	mv -f "$dest$unit.tmp" "$dest$unit"
	install -m 0644 "$root/rootfs/usr/lib/sysusers.d/spis.conf" "$dest$sysusers"
	echo "installed $dest$bin_path, $dest$unit, $dest$sysusers"

	if live && command -v systemd-sysusers >/dev/null; then
		systemd-sysusers "$sysusers"
	fi

	# Never overwrite a config the user may have edited.
	if [[ -e $dest$config || -L $dest$config ]]; then
		echo "kept $dest$config (already there)"
	else
		# 0640: the config may hold password_hash and webhook_secret; spis reads it as group spis.
		install -m 0640 "$sample" "$dest$config"
		if live && getent group spis >/dev/null; then
			chgrp spis "$config"
		fi
		echo "installed $dest$config from spis.example.toml"
	fi

	if systemd_runs; then
		systemctl daemon-reload
		if systemctl is-active --quiet spis.service; then
			echo "spis is running the old binary: systemctl restart spis"
		fi
	fi
	if live; then
		cat <<EOF

Next steps:
  1. Edit $config: media (your photo folder), listen (0.0.0.0:8080 to reach it
     from other machines). The state dir is /var/lib/spis (the unit's StateDirectory).
     The spis user must be able to read the media folder; outside /data, /media, /mnt and /srv
     add ReadWritePaths= (or ReadOnlyPaths=) with \`systemctl edit spis\`.
  2. systemctl enable --now spis
  3. Open the gallery and choose its password; logs: journalctl -u spis -f
EOF
	fi
}

uninstall_files() {
	if systemd_runs && systemctl list-unit-files spis.service >/dev/null 2>&1; then
		systemctl disable --now spis.service 2>/dev/null || true
	fi
	rm -f "$dest$bin_path" "$dest$unit" "$dest$sysusers"
	echo "removed $dest$bin_path, $dest$unit, $dest$sysusers"
	# The config goes only if it is still the untouched sample.
	if [[ -f $dest$config ]] && cmp -s "$sample" "$dest$config"; then
		rm -f "$dest$config"
		rmdir "$dest${config%/*}" 2>/dev/null || true
		echo "removed $dest$config (unchanged sample)"
	elif [[ -e $dest$config ]]; then
		echo "kept $dest$config (edited)"
	fi
	if systemd_runs; then
		systemctl daemon-reload
	fi
	if live; then
		echo "kept the state dir (/var/lib/spis) and the spis user: remove them by hand if you wish"
	fi
}

case ${1:-} in
install) install_files ;;
uninstall) uninstall_files ;;
*) die "usage: scripts/install.sh install|uninstall (BIN, PREFIX, DESTDIR from the environment)" ;;
esac
