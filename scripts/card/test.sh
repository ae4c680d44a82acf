#!/usr/bin/env bash
# `make image-test IMAGE=...`: boot a card image as a Raspberry Pi CM4 (qemu-system-aarch64
# -M raspi4b, TCG) and check what a user meets: first boot, growth of the data partition, spis on
# port 80, the first-visit password, photos with real thumbnails (JPEG, HEIC, a video poster), a
# USB stick plugged in and out, settings edited on the boot partition, a reboot, a power cut, and
# a spis.toml with a mistake. Works on any card with this layout (`make card`, `make image`).
#
#   scripts/card/test.sh IMAGE        IMAGE: spis-cm4.img, sdcard.img, or either .xz
#
# The image file is not changed: the test boots a copy, grown to 4 GiB as a bigger card.
# QEMU 10 (bookworm-backports) is downloaded as .debs into $SPIS_CACHE/card/qemu and extracted
# there with the libraries this host lacks: nothing is installed on the host for it.
# QEMU loads the kernel, device tree and initramfs that the image's boot partition holds, with the
# command line of its cmdline.txt (the GPU firmware, which does that on a Pi, never runs here).
# The device tree gets the changes QEMU needs (no SD regulators, GPIO expander or Wi-Fi power
# sequence emulated), and the command line the ones of ../shared/notes/qemu-raspi4b.md, plus a root
# shell on a QEMU USB serial adapter for the checks (systemd.run=, kernel command line only).
#
# SPIS_CACHE        cache root (default /var/cache/spis-ci)
# IMAGE_TEST_KEEP=1 keep the work directory (card, console and shell logs)
# BOOT_TIMEOUT      seconds from QEMU start to the first HTTP 200 (default 400)
set -Eeuo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
IMAGE=${1:-${IMAGE:-}}
CACHE=${SPIS_CACHE:-/var/cache/spis-ci}/card
CORPUS=${SPIS_CORPUS:-/work/shared/corpus}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-400}
PASSWORD=image-test-password
HOSTNAME_SET=spis-test
CARD_SIZE=4G

T0=$SECONDS
log() { printf '[image-test %4ds] %s\n' "$((SECONDS - T0))" "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }
# A command that set -e ends the test on (one without its own die) still says where and what.
trap 'log "FAIL: line $LINENO: \`$BASH_COMMAND\` exited with status $?"' ERR

[[ -n $IMAGE ]] || die "usage: $0 IMAGE (a card image: make card builds one)"
[[ -f $IMAGE ]] || die "no image at $IMAGE"

# --- host tools -------------------------------------------------------------------------------
export PATH=$PATH:/usr/sbin:/sbin
# shellcheck disable=SC1091 # checked on its own (make lint)
. "$REPO/scripts/card/apt.sh"
host_tools mcopy=mtools mkfs.vfat=dosfstools debugfs=e2fsprogs fdtput=device-tree-compiler \
	curl=curl python3=python3 ffmpeg=ffmpeg xz=xz-utils dpkg-deb=dpkg

# --- QEMU 10 from bookworm-backports, extracted into the cache ----------------------------------
papt_init "$CACHE/qemu" amd64 "bookworm main" "bookworm-updates main" "bookworm-security main" \
	"bookworm-backports main"
QEMU_PKGS=(qemu-system-arm/bookworm-backports qemu-system-common/bookworm-backports
	qemu-system-data/bookworm-backports)
# What installing it here would add: resolved against the host's dpkg status (read, not changed).
cp /var/lib/dpkg/status "$PAPT_DIR/status"
mapfile -t QEMU_DEBS < <(papt_closure "${QEMU_PKGS[@]}")
((${#QEMU_DEBS[@]} > 0)) || die "cannot resolve qemu-system-arm in bookworm-backports"
QROOT=$PAPT_DIR/root
stamp=$(printf '%s\n' "${QEMU_DEBS[@]}" | sha256sum | cut -c1-16)
if [[ ! -f $QROOT/.complete-$stamp ]]; then
	log "fetching QEMU and ${#QEMU_DEBS[@]} packages into $PAPT_DIR/debs"
	papt install --download-only -y "${QEMU_PKGS[@]}" >/dev/null || {
		papt update >/dev/null
		mapfile -t QEMU_DEBS < <(papt_closure "${QEMU_PKGS[@]}")
		papt install --download-only -y "${QEMU_PKGS[@]}" >/dev/null
	} || die "downloading QEMU failed"
	rm -rf "$QROOT"
	mkdir -p "$QROOT"
	for line in "${QEMU_DEBS[@]}"; do
		# shellcheck disable=SC2086
		dpkg-deb -x "$(papt_deb $line)" "$QROOT"
	done
	touch "$QROOT/.complete-$stamp"
fi
QEMU=("$QROOT/usr/bin/qemu-system-aarch64" -L "$QROOT/usr/share/qemu")
export LD_LIBRARY_PATH=$QROOT/usr/lib/x86_64-linux-gnu:$QROOT/lib/x86_64-linux-gnu
qver=$("${QEMU[@]}" --version | sed -n 1p) || die "the extracted QEMU does not run"
grep -q '^raspi4b ' <<<"$("${QEMU[@]}" -M help)" || die "$qver has no raspi4b machine"
log "$qver (from $QROOT)"

# --- work directory and clean-up --------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/spis-image-test.XXXXXX")
QEMU_PID='' READER_PID=''
cleanup() {
	local rc=$?
	set +e
	if ((rc != 0)) && [[ -n $QEMU_PID ]] && kill -0 "$QEMU_PID" 2>/dev/null; then
		echo "---- in the guest: failed units, the journal of spis's units, the kernel's last lines ----"
		IN_CLEANUP=1 guest 20 'systemctl --failed --no-legend; journalctl -b -u spis -u spis-grow -u spis-data -u "spis-usb@*" --no-pager -n 60 -o short-monotonic; dmesg | tail -n 25'
	fi
	stop_qemu
	if ((rc != 0)) && [[ -f ${CONSOLE:-} ]]; then
		echo "---- last 60 lines of the serial console ($CONSOLE) ----"
		tail -n 60 "$CONSOLE" | tr -d '\r' | sed 's/\x1b\[[0-9;]*[A-Za-z]//g'
	fi
	if [[ ${IMAGE_TEST_KEEP:-0} == 1 ]]; then
		log "work directory kept: $WORK"
	elif ((rc != 0)); then
		rm -f "$WORK"/*.img "$WORK/Image" "$WORK/initrd.img"
		log "logs kept in $WORK (console*.log, shell.log, qemu.log)"
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the card: a copy of the image, grown as a bigger card -------------------------------------
CARD=$WORK/card.img
case $IMAGE in
*.xz) xz -dc "$IMAGE" >"$CARD" ;;
*) cp --sparse=always "$IMAGE" "$CARD" ;;
esac
flashed=$(stat -c %s "$CARD")
truncate -s "$CARD_SIZE" "$CARD"
# The MBR's partitions, as "start_sector sectors" in P[1..3].
mapfile -t P < <(python3 - "$CARD" <<'EOF'
import struct, sys
mbr = open(sys.argv[1], 'rb').read(512)
assert mbr[510:512] == b'\x55\xaa', 'no MBR'
print('-')
for i in range(4):
    start, count = struct.unpack('<II', mbr[446 + 16 * i + 8:446 + 16 * i + 16])
    print(start, count)
EOF
)
read -r BOOT_START _ <<<"${P[1]}"
read -r DATA_START DATA_SECTORS <<<"${P[3]}"
((DATA_START > 0)) || die "$IMAGE has no third (data) partition"
log "card: $((flashed >> 20)) MiB image grown to $CARD_SIZE; data partition $((DATA_SECTORS / 2048)) MiB at sector $DATA_START"
BOOTFS="$CARD@@$((BOOT_START * 512))"
DATAFS="$CARD?offset=$((DATA_START * 512))"

# The boot partition's kernel, device tree, initramfs (both of our cards have one) and command line.
for f in Image bcm2711-rpi-cm4.dtb cmdline.txt spis.toml wifi.conf; do
	mcopy -n -i "$BOOTFS" "::$f" "$WORK/$f" || die "the boot partition has no $f"
done
INITRD=()
if mcopy -n -i "$BOOTFS" ::initrd.img "$WORK/initrd.img" 2>/dev/null; then INITRD=(-initrd "$WORK/initrd.img"); fi
DTB=$WORK/qemu.dtb
cp "$WORK/bcm2711-rpi-cm4.dtb" "$DTB"
# What QEMU does not emulate: the SD card's regulators and power sequence (they would defer the
# SD host's probe forever), and the Wi-Fi chip on the other SD host.
fdtput -d "$DTB" /soc/mmc@7e300000 non-removable 2>/dev/null || true
fdtput -d "$DTB" /soc/mmc@7e300000 mmc-pwrseq 2>/dev/null || true
fdtput -d "$DTB" /emmc2bus/mmc@7e340000 vqmmc-supply 2>/dev/null || true
fdtput -d "$DTB" /emmc2bus/mmc@7e340000 vmmc-supply 2>/dev/null || true
# QEMU's own: the devices it lacks (synchronous aborts otherwise), and the test shell, a root
# shell on the USB serial adapter that only this command line asks for.
SHELL_CMD="until [ -c /dev/ttyUSB0 ]; do sleep 1; done; exec </dev/ttyUSB0 >/dev/ttyUSB0 2>&1; stty raw -echo; PS1= exec /bin/sh"
APPEND="$(tr -d '\n' <"$WORK/cmdline.txt") initcall_blacklist=brcmstb_l2_driver_init,brcmstb_i2c_driver_init clk_ignore_unused"
APPEND+=" systemd.run=\"/bin/sh -c '$SHELL_CMD'\" systemd.run_success_action=none systemd.wants=kernel-command-line.service"

# --- photos and settings put on the card before its first boot ----------------------------------
PHOTOS=$WORK/photos
mkdir -p "$PHOTOS"
pick() { # pick FORMAT MAX_BYTES: the first corpus file of that format and at most that size
	awk -F'\t' -v f="$1" -v m="$2" 'NR > 1 && $4 == f && $8 + 0 > 0 && $8 + 0 <= m { print $1; exit }' \
		"$CORPUS/MANIFEST.tsv"
}
# A small HEIC: heif-convert has 30 s per picture, and emulation is 10-20 times slower than a Pi.
jpeg=$(pick JPEG 400000) heic=$(pick HEIC 100000)
[[ -n $jpeg && -n $heic ]] || die "no JPEG or HEIC in $CORPUS/MANIFEST.tsv"
cp "$CORPUS/$jpeg" "$PHOTOS/camera.jpg"
cp "$CORPUS/$heic" "$PHOTOS/iphone.heic"
ffmpeg -loglevel error -f lavfi -i testsrc2=size=640x360:rate=25 -t 3 -pix_fmt yuv420p "$PHOTOS/clip.mp4" ||
	die "ffmpeg could not make a test video"
{
	echo "mkdir media"
	echo "mkdir media/before-boot"
	for f in "$PHOTOS"/*; do echo "write $f media/before-boot/${f##*/}"; done
} >"$WORK/debugfs.cmds"
debugfs -w -f "$WORK/debugfs.cmds" "$DATAFS" >/dev/null 2>&1 || die "debugfs could not write the photos"
log "data partition: camera.jpg ($jpeg), iphone.heic ($heic), clip.mp4 (ffmpeg testsrc2) in media/before-boot/"

# Settings edited as a user would, on the FAT boot partition.
grep -q '^hostname = "spis"$' "$WORK/spis.toml" || die "the card's spis.toml has no hostname = \"spis\" line"
{
	sed "s/^hostname = \"spis\"\$/hostname = \"$HOSTNAME_SET\"/" "$WORK/spis.toml"
	# Emulation is 10-20 times slower than a Pi: ffmpeg alone takes about 30 s to start in it.
	printf '\n# image-test\nsession_days = 30\ndecoder_timeout = 300\n'
} >"$WORK/spis.toml.edited"
sed -e 's/^ssid=.*/ssid=Test Net/' -e 's/^psk=.*/psk=test passphrase 1/' -e 's/^country=.*/country=DE/' \
	"$WORK/wifi.conf" >"$WORK/wifi.conf.edited"
mcopy -o -i "$BOOTFS" "$WORK/spis.toml.edited" ::spis.toml
mcopy -o -i "$BOOTFS" "$WORK/wifi.conf.edited" ::wifi.conf
log "boot partition: spis.toml (hostname = \"$HOSTNAME_SET\", session_days = 30, decoder_timeout = 300) and wifi.conf edited"

# --- booting and talking to the guest -----------------------------------------------------------
port_free() { ! grep -q ":$(printf '%04X' "$1") [0-9A-F]*:0000 0A" /proc/net/tcp /proc/net/tcp6 2>/dev/null; }
PORT=
for _ in 1 2 3 4 5 6 7 8; do
	PORT=$((20000 + RANDOM % 40000))
	port_free "$PORT" && break
done
BASE=http://127.0.0.1:$PORT
TLS_PORT=
for _ in 1 2 3 4 5 6 7 8; do
	TLS_PORT=$((20000 + RANDOM % 40000))
	[[ $TLS_PORT != "$PORT" ]] && port_free "$TLS_PORT" && break
done
BOOTS=0

boot() { # boot NAME
	BOOTS=$((BOOTS + 1))
	rm -f "$WORK/shell.in" "$WORK/shell.out" "$WORK/mon.sock"
	mkfifo "$WORK/shell.in" "$WORK/shell.out"
	CONSOLE=$WORK/console-$BOOTS.log
	: >"$WORK/shell.log"
	log "boot $BOOTS ($1): qemu-system-aarch64 -M raspi4b -m 2G, $BASE -> guest :80, :$TLS_PORT -> :443"
	QEMU_START=$SECONDS
	"${QEMU[@]}" -M raspi4b -m 2G -nodefaults -no-user-config -display none -no-reboot \
		-kernel "$WORK/Image" -dtb "$DTB" "${INITRD[@]}" -append "$APPEND" \
		-drive "file=$CARD,if=sd,format=raw,cache=writeback" \
		-serial "file:$CONSOLE" \
		-netdev "user,id=net,restrict=on,hostfwd=tcp:127.0.0.1:$PORT-:80,hostfwd=tcp:127.0.0.1:$TLS_PORT-:443" \
		-chardev "pipe,id=shell,path=$WORK/shell" \
		-monitor "unix:$WORK/mon.sock,server,nowait" >"$WORK/qemu.log" 2>&1 &
	QEMU_PID=$!
	cat "$WORK/shell.out" >>"$WORK/shell.log" &
	READER_PID=$!
	exec {SHELL_FD}<>"$WORK/shell.in"
	plug_usb
	until [[ $(http_code "$BASE/api/health") == 200 ]]; do
		alive
		((SECONDS - QEMU_START < BOOT_TIMEOUT)) || die "no HTTP 200 on /api/health within ${BOOT_TIMEOUT}s"
		sleep 1
	done
	BOOT_SECONDS=$((SECONDS - QEMU_START))
	log "first HTTP 200 on /api/health ${BOOT_SECONDS}s after QEMU started"
	local deadline=$((SECONDS + 120))
	until [[ $(guest 3 'echo hello' 2>/dev/null) == hello ]]; do
		((SECONDS < deadline)) || die "the test shell on the USB serial adapter does not answer"
	done
	guest 5 'export SYSTEMD_COLORS=0 SYSTEMD_URLIFY=0 SYSTEMD_PAGER= PAGER=cat' >/dev/null
}
# The USB network adapter and serial adapter, on a hub, plugged in once the kernel's dwc2 host
# driver is up: QEMU's dwc2 model often loses devices present while the driver initialises the
# port ("dwc2 ... Not connected", enumeration given up). Plugged again if the hub does not
# enumerate.
plug_usb() {
	local deadline=$((SECONDS + BOOT_TIMEOUT)) try
	until grep -aqs 'hub 1-0:1.0: 1 port detected' "$CONSOLE"; do
		alive
		((SECONDS < deadline)) || die "the kernel's USB host (dwc2) did not come up"
		sleep 0.5
	done
	for try in 1 2 3; do
		monitor "device_add usb-hub,id=hub$try" >/dev/null
		monitor "device_add usb-net,netdev=net,id=usbnet$try,port=1.1" >/dev/null
		monitor "device_add usb-serial,chardev=shell,id=usbserial$try,port=1.2" >/dev/null
		deadline=$((SECONDS + 30))
		while ((SECONDS < deadline)); do
			if grep -aq 'ttyUSB0' "$CONSOLE" && grep -aqE 'usb 1-1\.1: New USB device found' "$CONSOLE"; then
				log "USB hub, network and serial adapters plugged in (attempt $try)"
				return 0
			fi
			sleep 1
		done
		log "the USB devices did not enumerate: unplugging and plugging them again"
		monitor "device_del usbserial$try" >/dev/null
		monitor "device_del usbnet$try" >/dev/null
		monitor "device_del hub$try" >/dev/null
		sleep 5
	done
	die "the USB network and serial adapters did not enumerate in 3 attempts"
}
stop_qemu() {
	# wait reports 137 for a process it killed and kill fails on one already gone: under set -e
	# neither may end the test, so both are guarded.
	if [[ -n $QEMU_PID ]]; then
		kill -9 "$QEMU_PID" 2>/dev/null || true
		wait "$QEMU_PID" 2>/dev/null || true
	fi
	if [[ -n $READER_PID ]]; then
		kill "$READER_PID" 2>/dev/null || true
		wait "$READER_PID" 2>/dev/null || true
	fi
	QEMU_PID='' READER_PID=''
	[[ -n ${SHELL_FD:-} ]] && exec {SHELL_FD}>&- && SHELL_FD=
	return 0
}
# A clean shutdown: raspi4b has no PSCI power-off, so QEMU is ended once the guest has halted.
shutdown_guest() {
	echo 'systemctl --no-block poweroff' >&"$SHELL_FD"
	local deadline=$((SECONDS + 120))
	until grep -aqE 'reboot: (System halted|Power down)|Reboot failed' "$CONSOLE"; do
		alive
		((SECONDS < deadline)) || die "the guest did not halt within 120s"
		sleep 1
	done
	stop_qemu
	log "guest shut down cleanly (systemctl poweroff; halted)"
}
IN_CLEANUP=0
alive() {
	kill -0 "$QEMU_PID" 2>/dev/null && return 0
	((IN_CLEANUP)) && return 1
	die "qemu exited: $(tail -n 3 "$WORK/qemu.log")"
}
# A command in the guest's test shell: prints its output, returns its status.
guest() { # guest TIMEOUT COMMAND
	local limit=$1 cmd=$2 n lines
	n=$(date +%s%N)$BASHPID
	# shellcheck disable=SC2016 # $? and $s are for the guest's shell
	printf 'echo "@@""B%s"; %s; s=$?; echo; echo "@@""E%s:$s"\n' "$n" "$cmd" "$n" >&"$SHELL_FD"
	local deadline=$((SECONDS + limit))
	until grep -aq "^@@E$n:" "$WORK/shell.log"; do
		alive || return 1
		((SECONDS < deadline)) || { log "guest command timed out: $cmd"; return 124; }
		sleep 0.2
	done
	mapfile -t lines < <(tr -d '\r' <"$WORK/shell.log" | sed -n "/^@@B$n\$/,/^@@E$n:/p")
	local body=("${lines[@]:1:${#lines[@]}-2}")
	[[ ${#body[@]} -gt 0 && -z ${body[-1]} ]] && unset 'body[-1]'
	((${#body[@]} == 0)) || printf '%s\n' "${body[@]}"
	return "${lines[-1]#@@E"$n":}"
}
# A command of the QEMU monitor.
monitor() {
	python3 - "$WORK/mon.sock" "$1" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.settimeout(10)
def prompt():
    buf = b''
    while not buf.endswith(b'(qemu) '):
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
    return buf.decode(errors='replace')
prompt()
s.sendall(sys.argv[2].encode() + b'\n')
# The monitor echoes the command with line-editing escapes; its answer follows the last of them.
out = prompt().rsplit('\x1b[K', 1)[-1].replace('(qemu) ', '').strip()
print(out)
EOF
}
http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@" || true; }
CURL=(curl -sS --fail-with-body --max-time 60 -b "$WORK/cookies" -c "$WORK/cookies")
api() { "${CURL[@]}" "$BASE$1"; }
# A Python expression over /api/status (as s), printed: status 's["items"]'.
status() { api /api/status | python3 -c "import json,sys; s=json.load(sys.stdin); print($1)"; }
# "id<TAB>dir/name<TAB>favorite" for every item the API lists.
items() {
	api '/api/media?limit=500' | python3 -c '
import json, sys
for it in json.load(sys.stdin)["items"]:
    print(it["id"], (it["dir"] + "/" if it["dir"] else "") + it["name"], str(it["favorite"]).lower(), sep="\t")'
}
wait_items() { # wait_items SECONDS PREDICATE_DESCRIPTION COMMAND...: until COMMAND succeeds on items
	local limit=$1 what=$2 deadline
	shift 2
	deadline=$((SECONDS + limit))
	until items >"$WORK/items" 2>/dev/null && "$@" <"$WORK/items"; do
		((SECONDS < deadline)) || die "$what: not within ${limit}s; listed: $(tr '\n' ' ' <"$WORK/items")"
		sleep 1
	done
}
id_of() { awk -F'\t' -v p="$1" '$2 == p { print $1 }' "$WORK/items"; }
has_all() { local p; for p in "$@"; do grep -qP "\t\Q$p\E\t" "$WORK/items" || return 1; done; }
lists() { items >"$WORK/items" && has_all "$@"; }
# A thumbnail that is a real picture: a JPEG (not the SVG placeholder) at least 100 px across.
real_thumb() { # real_thumb ID WHAT
	local out=$WORK/thumb-$1.jpg head
	head=$("${CURL[@]}" -D - -o "$out" --max-time 320 "$BASE/api/media/$1/thumb") || die "thumbnail of $2: $head"
	grep -qi '^x-spis-placeholder' <<<"$head" && die "thumbnail of $2 is a placeholder: $(grep -i '^x-spis-placeholder' <<<"$head")"
	python3 - "$out" "$2" <<'EOF' || die "thumbnail of $2 is not a real JPEG picture"
import sys
data = open(sys.argv[1], 'rb').read()
assert data[:3] == b'\xff\xd8\xff', 'not a JPEG'
i = 2
while i < len(data):
    marker, length = data[i + 1], int.from_bytes(data[i + 2:i + 4], 'big')
    if 0xc0 <= marker <= 0xc3:
        h, w = int.from_bytes(data[i + 5:i + 7], 'big'), int.from_bytes(data[i + 7:i + 9], 'big')
        assert max(w, h) >= 100, f'{w}x{h}'
        print(f'{w}x{h}')
        break
    i += 2 + length
else:
    raise SystemExit('no frame header')
EOF
}

# ================================================================================================
boot "first boot"
FIRST_BOOT_SECONDS=$BOOT_SECONDS

# The data partition grew to the end of the card, with its 512-byte inodes.
data_dev=$(guest 10 'findmnt -n -o SOURCE /data') || die "/data is not mounted"
disk_sectors=$(guest 10 "cat \$(readlink -f /sys/class/block/${data_dev##*/}/..)/size") ||
	die "cannot read the card's size in the guest"
part=$(guest 10 "cat /sys/class/block/${data_dev##*/}/start /sys/class/block/${data_dev##*/}/size | tr '\n' ' '")
read -r pstart psize <<<"$part"
((pstart + psize >= disk_sectors - 32768)) || die "the data partition ($psize sectors at $pstart) does not reach the end of the card ($disk_sectors)"
fs_bytes=$(guest 10 "df -B1 --output=size /data | tail -n1 | tr -d ' '")
((fs_bytes > psize * 512 * 9 / 10)) ||
	die "the data filesystem is $fs_bytes bytes in a partition of $((psize * 512)): not grown"
inode=$(guest 10 "tune2fs -l $data_dev | sed -n 's/^Inode size:[[:space:]]*//p'")
[[ $inode == 512 ]] || die "the data filesystem has $inode-byte inodes, not 512"
GROWN_SECTORS=$psize
log "data partition grown on the first boot: $((psize / 2048)) MiB, filesystem $((fs_bytes >> 20)) MiB, 512-byte inodes"

# Read-only root and boot partition.
for m in / /boot; do
	opts=$(guest 10 "findmnt -n -o OPTIONS $m") || die "$m is not mounted"
	[[ $opts == ro,* ]] || die "$m is mounted $opts, not read-only"
	guest 10 "touch $m/.image-test 2>/dev/null" && die "a file could be written on $m"
done
log "/ and /boot are read-only"

# spis runs as its own user, and systemd brings it back when it dies.
pid=$(guest 10 'systemctl show -p MainPID --value spis')
owner=$(guest 10 "stat -c %U /proc/$pid") || die "no spis process ($pid) in the guest"
[[ $owner == spis ]] || die "spis runs as '$owner', not as the spis user"
guest 10 "kill -KILL $pid" >/dev/null || die "could not kill spis"
deadline=$((SECONDS + 120))
until newpid=$(guest 10 'systemctl show -p MainPID --value spis') && [[ $newpid != 0 && $newpid != "$pid" ]] &&
	[[ $(http_code "$BASE/api/health") == 200 ]]; do
	((SECONDS < deadline)) || die "spis was not restarted after SIGKILL (MainPID $newpid)"
	sleep 1
done
log "spis runs as user spis; killed with SIGKILL (pid $pid), systemd restarted it (pid $newpid)"

# The first visit chooses the password.
session=$(api /api/session)
grep -q '"setup":true' <<<"$session" || die "a new card does not ask for a password: $session"
"${CURL[@]}" -o /dev/null -H 'Content-Type: application/json' --data "{\"password\":\"$PASSWORD\"}" "$BASE/api/setup" ||
	die "POST /api/setup failed"
grep -q spis_session "$WORK/cookies" || die "no session cookie after choosing the password"
age=$("${CURL[@]}" -o /dev/null -D - -H 'Content-Type: application/json' --data "{\"password\":\"$PASSWORD\"}" "$BASE/api/login" |
	grep -io 'max-age=[0-9]*' | sed -n 1p | cut -d= -f2)
[[ $age == $((30 * 86400)) ]] || die "the session lasts ${age:-?} s, not the 30 days of the edited spis.toml"
why=$(status 's["config_error"] or ""')
[[ -z $why ]] || die "spis did not take the edited spis.toml: $why"
log "first visit chose the password; sessions last 30 days (session_days from the edited spis.toml)"

# The photos put on the card before it booted, with real thumbnails.
wait_items 300 "the photos from before the boot" has_all photos/before-boot/camera.jpg photos/before-boot/iphone.heic photos/before-boot/clip.mp4
decoders=$(status 's["thumbnails"]["decoders"]["heif"], s["thumbnails"]["decoders"]["ffmpeg"]')
[[ $decoders == "True True" ]] || die "the card lacks a HEIC decoder or ffmpeg (heif, ffmpeg: $decoders)"
for f in camera.jpg iphone.heic clip.mp4; do
	dims=$(real_thumb "$(id_of "photos/before-boot/$f")" "$f")
	log "thumbnail of $f: a $dims JPEG"
done

# Settings from the boot partition: the name on the network and Wi-Fi.
name=$(guest 10 hostname)
[[ $name == "$HOSTNAME_SET" ]] || die "the device is called '$name', not '$HOSTNAME_SET' from spis.toml"
mdns=$(guest 20 'resolvectl status 2>&1 | grep -i "multicastdns setting\|+mDNS" | sed -n 1p')
[[ -n $mdns ]] || die "systemd-resolved does not have mDNS on"
grep -qx "$HOSTNAME_SET" <<<"$(guest 10 'hostnamectl --transient 2>/dev/null || cat /proc/sys/kernel/hostname')" ||
	die "the transient hostname is not $HOSTNAME_SET"
log "hostname '$name' from spis.toml; mDNS responder on ($(echo "$mdns" | tr -s ' '))"

# HTTPS on 443 with the device's own CA, by the device's .local name (curl's --resolve stands in
# for mDNS): the CA as a phone downloads it, and a certificate that names the device.
curl -fsS -o "$WORK/ca.der" "$BASE/spis-ca.crt" || die "no CA at $BASE/spis-ca.crt"
openssl x509 -inform der -in "$WORK/ca.der" -out "$WORK/ca.pem" || die "/spis-ca.crt is not a certificate"
tls=$(curl -fsS --cacert "$WORK/ca.pem" --resolve "$HOSTNAME_SET.local:$TLS_PORT:127.0.0.1" \
	"https://$HOSTNAME_SET.local:$TLS_PORT/api/tls") || die "no answer over HTTPS as https://$HOSTNAME_SET.local/"
grep -q '"secure":true' <<<"$tls" || die "/api/tls over HTTPS does not say secure: $tls"
sans=$(openssl s_client -connect "127.0.0.1:$TLS_PORT" -servername "$HOSTNAME_SET.local" </dev/null 2>/dev/null |
	openssl x509 -noout -ext subjectAltName | tail -n 1)
grep -q "DNS:$HOSTNAME_SET.local" <<<"$sans" || die "the certificate does not name $HOSTNAME_SET.local: $sans"
log "HTTPS on :443 as https://$HOSTNAME_SET.local/ with the device's CA; the certificate names $(tr -s ' ' <<<"$sans")"
guest 60 'systemctl start spis-wifi.service' >/dev/null || die "spis-wifi.service failed"
wpa=$(guest 10 'cat /run/spis-wifi/wpa_supplicant-wlan0.conf') || die "no wpa_supplicant configuration from wifi.conf"
ssid_hex=$(printf 'Test Net' | od -An -tx1 | tr -d ' \n')
if ! grep -q "ssid=$ssid_hex" <<<"$wpa" || ! grep -q 'country=DE' <<<"$wpa"; then
	die "wifi.conf was not applied: $(grep -v psk <<<"$wpa")"
fi
log "wifi.conf applied: wpa_supplicant-wlan0.conf has ssid \"Test Net\", country DE (no Wi-Fi chip in QEMU)"

# A USB stick with photos and a label, plugged in and out through the QEMU monitor.
STICK=$WORK/stick.img
mkfs.vfat -n HOLIDAY -C "$STICK" 65536 >/dev/null
mcopy -i "$STICK" "$PHOTOS/camera.jpg" ::beach.jpg
mcopy -i "$STICK" "$PHOTOS/iphone.heic" ::sunset.heic
plug() { # plug ID
	monitor "drive_add 0 if=none,id=$1,file=$STICK,format=raw,cache=writeback" >/dev/null
	out=$(monitor "device_add usb-storage,id=$1,drive=$1,port=1.3")
	[[ -z $out ]] || die "device_add usb-storage: $out"
}
plug stick1
wait_items 90 "the USB stick's photos" has_all HOLIDAY/beach.jpg HOLIDAY/sunset.heic
mounted=$(guest 10 'findmnt -n -o SOURCE,FSTYPE /media/HOLIDAY') || die "the stick is not mounted at /media/HOLIDAY"
log "USB stick HOLIDAY plugged in: mounted at /media/HOLIDAY ($mounted), its 2 photos listed"
beach=$(id_of HOLIDAY/beach.jpg)
"${CURL[@]}" -o /dev/null -X PUT "$BASE/api/media/$beach/favorite" || die "cannot favorite beach.jpg"
guest 10 sync >/dev/null
monitor "device_del stick1" >/dev/null
gone() { ! grep -q $'\tHOLIDAY/' "$WORK/items"; }
wait_items 60 "the stick's photos gone after unplugging" gone
log "USB stick unplugged: its photos are gone"
plug stick2
wait_items 90 "the stick's photos back" has_all HOLIDAY/beach.jpg HOLIDAY/sunset.heic
grep -qP '\tHOLIDAY/beach.jpg\ttrue$' "$WORK/items" || die "beach.jpg lost its favorite across the replug"
log "USB stick plugged in again: its photos are back, beach.jpg still a favorite"
monitor "device_del stick2" >/dev/null

# Favorites and a thumbnail made on disk, for the reboot.
camera=$(id_of photos/before-boot/camera.jpg) heif=$(id_of photos/before-boot/iphone.heic)
for id in "$camera" "$heif"; do
	"${CURL[@]}" -o /dev/null -X PUT "$BASE/api/media/$id/favorite" || die "cannot favorite $id"
done
MACHINE_ID=$(guest 10 'cat /etc/machine-id')
thumbs_on_disk=$(guest 20 'find /data/state/cache -type f | wc -l')
((thumbs_on_disk > 0)) || die "no thumbnails on the data partition"
journal_lines=$(guest 20 'journalctl -b -u spis --no-pager -o cat | wc -l')
shutdown_guest

# ================================================================================================
boot "reboot"
"${CURL[@]}" -o /dev/null "$BASE/api/media?limit=1" || die "the session from before the reboot is no longer valid"
wait_items 120 "the photos after the reboot" has_all photos/before-boot/camera.jpg
for p in photos/before-boot/camera.jpg photos/before-boot/iphone.heic; do
	grep -qP "\t\Q$p\E\ttrue$" "$WORK/items" || die "$p lost its favorite across the reboot"
done
rm -f "$WORK/cookies.login"
code=$(http_code -c "$WORK/cookies.login" -H 'Content-Type: application/json' --data "{\"password\":\"$PASSWORD\"}" "$BASE/api/login")
[[ $code == 200 || $code == 204 ]] || die "the password chosen before the reboot does not log in (HTTP $code)"
# Once the background pass has looked at every item, a thumbnail comes from the cache, not a decode.
thumb_counts() { status 's["thumbnails"]["decoded"], s["thumbnails"]["disk_hits"] + s["thumbnails"]["memory_hits"], int(s["thumbnails"]["background"]["done"] >= s["thumbnails"]["background"]["total"])'; }
deadline=$((SECONDS + 300))
until read -r before hits idle < <(thumb_counts) && ((idle)); do
	((SECONDS < deadline)) || die "the background thumbnail pass did not end within 300s after the reboot"
	sleep 2
done
real_thumb "$camera" camera.jpg >/dev/null
read -r after hits_after _ < <(thumb_counts)
((after == before && hits_after > hits)) ||
	die "the thumbnail of camera.jpg did not come from the cache after the reboot (decodes $before -> $after, cache hits $hits -> $hits_after)"
# One machine ID, so one journal directory: no --merge (systemd 252 refuses it with --list-boots).
boots=$(guest 20 "journalctl --list-boots --no-pager | grep -cE '^ *-?[0-9]+ +[0-9a-f]{32} '" || true)
((boots >= 2)) || die "the journal has $boots boots, not the one before the reboot too"
old=$(guest 30 'journalctl -b -1 -u spis --no-pager -o cat | wc -l')
((old >= journal_lines / 2)) || die "the previous boot's spis journal has $old lines, not about $journal_lines"
id=$(guest 10 'cat /etc/machine-id')
dirs=$(guest 10 'ls /var/log/journal | wc -l')
[[ $id == "$MACHINE_ID" && $dirs == 1 ]] ||
	die "the machine ID changed across the reboot ($MACHINE_ID -> $id; $dirs journal directories)"
# The kernel may number the MMC controllers the other way round on another boot (mmcblk0/1).
data_dev=$(guest 10 'findmnt -n -o SOURCE /data') || die "/data is not mounted after the reboot"
psize2=$(guest 10 "cat /sys/class/block/${data_dev##*/}/size")
((psize2 == GROWN_SECTORS)) || die "the data partition changed on the second boot ($GROWN_SECTORS -> $psize2)"
grep -q 'already reaches the end' <<<"$(guest 20 'journalctl -b -u spis-grow --no-pager -o cat')" ||
	die "spis-grow did not find the partition already grown on the second boot"
log "after the reboot: session, password, favorites, the thumbnail on disk, machine ID $id and $boots boots of journal are there; not grown again"

# A power cut while a client toggles favorites: every acknowledged answer must survive.
ids=("$camera" "$heif" "$(id_of photos/before-boot/clip.mp4)")
declare -A acked=() pending=()
stop_at=$((SECONDS + 20)) n=0
while ((SECONDS < stop_at && n < 400)); do
	id=${ids[$((n % 3))]}
	if ((n / 3 % 2 == 0)); then method=DELETE want=false; else method=PUT want=true; fi
	if "${CURL[@]}" -o /dev/null --max-time 5 -X "$method" "$BASE/api/media/$id/favorite" 2>/dev/null; then
		acked[$id]=$want
	else
		pending[$id]=$want # cut off: it may or may not have been done
		break
	fi
	n=$((n + 1))
	# The cut comes in the middle of the loop, with requests in flight.
	((n == 30)) && { (sleep 0.3 && kill -9 "$QEMU_PID") & }
done
kill -9 "$QEMU_PID" 2>/dev/null || true # in case the loop ended before the cut
wait "$QEMU_PID" 2>/dev/null || true
stop_qemu
log "power cut (kill -9 of QEMU) after $n favorite toggles; acknowledged: $(for k in "${!acked[@]}"; do printf '%s=%s ' "$k" "${acked[$k]}"; done)"

# A mistake in spis.toml, made while the card is out.
printf '\n# image-test: a typo\nthumb_wrokers = 2\n' >>"$WORK/spis.toml.edited"
mcopy -o -i "$BOOTFS" "$WORK/spis.toml.edited" ::spis.toml
log "boot partition: spis.toml now has an unknown key (thumb_wrokers)"

# ================================================================================================
boot "after the power cut, with a broken spis.toml"
data_dev=$(guest 10 'findmnt -n -o SOURCE /data') || die "/data is not mounted after the power cut"
state=$(guest 20 "dumpe2fs -h $data_dev 2>/dev/null | sed -n 's/^Filesystem state:[[:space:]]*//p'")
fsck=$(guest 20 'journalctl -b -u "systemd-fsck@*" --no-pager -o cat | grep -i "clean\|recover\|fix" | head -n 3' || true)
opts=$(guest 10 'findmnt -n -o OPTIONS /data')
[[ -n $state && $state != *error* && $opts == rw,* && -n $fsck ]] ||
	die "the data filesystem is '$state', mounted '$opts', after the power cut (fsck: ${fsck:-none})"
log "data partition mounted clean after the power cut (fsck: $(tr '\n' ' ' <<<"${fsck:-no message}"))"
wait_items 120 "the photos after the power cut" has_all photos/before-boot/camera.jpg
for id in "${!acked[@]}"; do
	got=$(awk -F'\t' -v i="$id" '$1 == i { print $3 }' "$WORK/items")
	[[ $got == "${acked[$id]}" || $got == "${pending[$id]:-}" ]] ||
		die "favorite of $id is $got after the power cut; the last acknowledged was ${acked[$id]}"
done
log "every acknowledged favorite survived the power cut"
why=$(status 's["config_error"] or ""')
grep -q thumb_wrokers <<<"$why" || die "/api/status does not say what is wrong with spis.toml: '$why'"
grep -q 'thumb_wrokers' <<<"$(guest 30 'journalctl -b -u spis --no-pager -o cat')" || die "the journal does not say what is wrong with spis.toml"
name=$(guest 10 hostname)
[[ $name == spis ]] || die "with a broken spis.toml the device is called '$name', not the factory 'spis'"
log "broken spis.toml: spis answers with the factory settings, the journal and /api/status name thumb_wrokers, hostname back to 'spis'"
shutdown_guest

log "PASS: first boot to HTTP 200 in ${FIRST_BOOT_SECONDS}s; $BOOTS boots; whole test $((SECONDS - T0))s"
