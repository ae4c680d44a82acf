#!/usr/bin/env bash
# Boot test: rootfs/ + the real spis.service + the static aarch64 binary on an emulated aarch64
# machine (qemu-system-aarch64 -M virt -cpu cortex-a72, TCG), systemd as PID 1.
#
#   scripts/qemu-test.sh [SPIS_BIN]
#
# SPIS_BIN       the static aarch64 binary (argument or environment; required)
# SPIS_HOST_BIN  optional binary that runs on this host, for `spis hash-password`: with it the guest
#                has a password and the test logs in; without it the guest runs with no_auth
# SPIS_CACHE     cache root (default /var/cache/spis-ci); the .debs and apt lists live in
#                $SPIS_CACHE/qemu. An empty cache works: everything is downloaded again.
# QEMU_TEST_KEEP=1   keep the work directory (images, console log) for inspection
#
# The test system is assembled from Debian bookworm arm64 packages fetched with a private apt
# configuration (nothing on the host's dpkg/apt state changes, no foreign architecture is added)
# and extracted with dpkg -x; the disks are made with mke2fs -d (no loop mounts).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
HERE=$REPO/scripts/qemu
SPIS_BIN=${1:-${SPIS_BIN:-}}
SPIS_HOST_BIN=${SPIS_HOST_BIN:-}
CACHE=${SPIS_CACHE:-/var/cache/spis-ci}/qemu
CORPUS=${SPIS_CORPUS:-/work/shared/corpus}
BOOT_TIMEOUT=${QEMU_BOOT_TIMEOUT:-300}   # seconds from QEMU start to the first HTTP 200
PASSWORD=qemu-test-password
# What the guest runs: systemd and what it needs, busybox for the initramfs and the test shell,
# base-passwd for /etc/passwd and /etc/group, udev for /dev/disk/by-label. No Recommends.
GUEST_PACKAGES=(systemd systemd-sysv udev kmod base-passwd busybox-static)
KERNEL_META=linux-image-cloud-arm64

T0=$SECONDS
log() { printf '[qemu-test %3ds] %s\n' "$((SECONDS - T0))" "$*" >&2; } # stderr: also from $(...)
die() { log "FAIL: $*"; exit 1; }

[[ -n $SPIS_BIN ]] || die "usage: $0 SPIS_BIN (the static aarch64 spis binary), or set SPIS_BIN"
[[ -f $SPIS_BIN ]] || die "no binary at $SPIS_BIN (make static builds it)"

# --- host tools -------------------------------------------------------------------------------
need_host_tools() {
    local -A pkg_of=([qemu-system-aarch64]=qemu-system-arm [mke2fs]=e2fsprogs [cpio]=cpio
        [depmod]=kmod [curl]=curl [gzip]=gzip [dpkg-deb]=dpkg [apt-get]=apt)
    local missing=() tool
    for tool in "${!pkg_of[@]}"; do
        command -v "$tool" >/dev/null || PATH=$PATH:/usr/sbin:/sbin command -v "$tool" >/dev/null ||
            missing+=("${pkg_of[$tool]}")
    done
    ((${#missing[@]} == 0)) && return
    log "installing host packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
        apt-get update -qq >/dev/null
        apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null
    }
}
export PATH=$PATH:/usr/sbin:/sbin
need_host_tools
# ELF e_machine 0xb7 (AArch64), little-endian, at offset 18.
[[ $(od -An -tx1 -j18 -N2 "$SPIS_BIN" | tr -d ' ') == b700 ]] || die "$SPIS_BIN is not an aarch64 ELF binary"

# --- a private arm64 apt: its own sources, lists, status and cache -----------------------------
APTDIR=$CACHE/apt
DEBS=$CACHE/debs
mkdir -p "$APTDIR/lists/partial" "$APTDIR/etc/sources.list.d" "$APTDIR/etc/preferences.d" \
    "$APTDIR/etc/apt.conf.d" "$DEBS/partial"
: >"$APTDIR/status" # an empty dpkg status: apt resolves the whole closure, the host's is unused
cat >"$APTDIR/etc/sources.list" <<'EOF'
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-updates main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main
EOF
APT_OPTS=(-o APT::Architecture=arm64 -o APT::Architectures=arm64
    -o Dir::State="$APTDIR" -o Dir::State::Lists="$APTDIR/lists" -o Dir::State::status="$APTDIR/status"
    -o Dir::Cache="$APTDIR/cache" -o Dir::Cache::archives="$DEBS"
    -o Dir::Etc::sourcelist="$APTDIR/etc/sources.list" -o Dir::Etc::sourceparts="$APTDIR/etc/sources.list.d"
    -o Dir::Etc::preferencesparts="$APTDIR/etc/preferences.d" -o Dir::Etc::parts="$APTDIR/etc/apt.conf.d"
    -o Debug::NoLocking=1 -o APT::Sandbox::User=root -o Acquire::Languages=none -o APT::Install-Recommends=false -q)
# The host's apt.conf.d is not read (its update hooks must not run); only its proxy is kept.
for p in Acquire::http::Proxy Acquire::https::Proxy; do
    v=$(apt-config dump "$p" 2>/dev/null | sed -n "s/^$p \"\(.*\)\";\$/\1/p" | head -n1)
    [[ -n $v ]] && APT_OPTS+=(-o "$p=$v")
done
papt() { apt-get "${APT_OPTS[@]}" "$@"; }
papt_cache() { apt-cache "${APT_OPTS[@]}" "$@"; }

# Lists are refreshed once a day (or when the cache is empty).
if [[ -z $(find "$APTDIR/lists" -maxdepth 1 -name '*_Packages*' -mmin -1440 2>/dev/null | head -n1) ]]; then
    log "apt-get update (private arm64 lists in $APTDIR)"
    papt update >/dev/null
fi

# The guest's dependency closure and the kernel package the metapackage points at today, as
# "package version arch" lines in INST.
deb_file() { local v=${2//:/%3a}; echo "$DEBS/${1}_${v}_$3.deb"; }
resolve() {
    KPKG=$(papt_cache depends "$KERNEL_META" | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -n1)
    [[ -n $KPKG ]] || return 1
    KVERSION=$(papt_cache show --no-all-versions "$KPKG" | sed -n 's/^Version: //p')
    mapfile -t INST < <(papt install -s "${GUEST_PACKAGES[@]}" |
        sed -n 's/^Inst \([^ ]*\) (\([^ ]*\) .*\[\([a-z0-9]*\)\]).*$/\1 \2 \3/p')
    [[ " ${INST[*]} " == *" libc6 "* && " ${INST[*]} " == *" systemd "* ]] || return 1
    INST+=("$KPKG $KVERSION arm64")
}
# Downloads what the cache lacks (apt-get skips what it has); the kernel on its own, as
# --download-only would also fetch its dependencies (initramfs-tools and friends).
download() {
    local line uncached=0
    for line in "${INST[@]}"; do
        # shellcheck disable=SC2086
        [[ -f $(deb_file $line) ]] || uncached=$((uncached + 1))
    done
    if ((uncached == 0)); then
        log "all ${#INST[@]} packages cached in $DEBS"
        return 0
    fi
    log "downloading $uncached of ${#INST[@]} packages into $DEBS"
    papt install --download-only -y "${GUEST_PACKAGES[@]}" >/dev/null || return 1
    [[ -f $(deb_file "$KPKG" "$KVERSION" arm64) ]] || (cd "$DEBS" && papt download "$KPKG" >/dev/null)
}
if ! { resolve && download; }; then
    log "apt-get update (a package was superseded since the last one) and again"
    papt update >/dev/null
    resolve || die "cannot resolve ${GUEST_PACKAGES[*]} $KERNEL_META for arm64"
    download || die "downloading the arm64 packages failed"
fi
# Superseded versions go: the cache holds one system's worth of packages.
declare -A keep=()
for line in "${INST[@]}"; do
    # shellcheck disable=SC2086
    keep[$(deb_file $line)]=1
done
for f in "$DEBS"/*.deb; do
    [[ -e $f && -z ${keep[$f]:-} ]] && rm -f "$f"
done

# --- work directory and clean-up --------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/spis-qemu-test.XXXXXX")
QEMU_PID=
READER_PID=
IN_CLEANUP=0
cleanup() {
    local rc=$?
    set +e # a kill of what has already exited must not change the outcome
    if ((rc != 0)) && [[ -n $QEMU_PID && -n ${SHELL_FD:-} ]] && kill -0 "$QEMU_PID" 2>/dev/null; then
        IN_CLEANUP=1
        echo "---- spis in the guest: systemctl status, journal ----"
        guest 20 'systemctl status spis --no-pager -n 0; journalctl -b -u spis --no-pager -n 40 -o short-monotonic'
    fi
    if [[ -n $QEMU_PID ]] && kill "$QEMU_PID" 2>/dev/null; then
        sleep 1
        kill -9 "$QEMU_PID" 2>/dev/null
    fi
    [[ -n $READER_PID ]] && kill "$READER_PID" 2>/dev/null
    if ((rc != 0)) && [[ -f $WORK/console.log ]]; then
        echo "---- last 60 lines of the serial console ($WORK/console.log) ----"
        tail -n 60 "$WORK/console.log" | tr -d '\r' | sed 's/\x1b\[[0-9;]*[A-Za-z]//g'
    fi
    if [[ ${QEMU_TEST_KEEP:-0} == 1 ]]; then
        log "work directory kept: $WORK"
    elif ((rc != 0)); then # the logs stay for a look; the images and trees go
        rm -rf "${WORK:?}/root" "$WORK/kernel" "$WORK/initrd" "$WORK/data" "$WORK"/*.img "$WORK/Image"
        log "logs kept in $WORK (console.log, shell.log, qemu.log)"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the root filesystem ----------------------------------------------------------------------
ROOT=$WORK/root
KDIR=$WORK/kernel
mkdir -p "$ROOT" "$KDIR"
log "extracting ${#INST[@]} packages"
for line in "${INST[@]}"; do
    # shellcheck disable=SC2086
    set -- $line
    if [[ $1 == "$KPKG" ]]; then dpkg-deb -x "$(deb_file "$@")" "$KDIR"; else dpkg-deb -x "$(deb_file "$@")" "$ROOT"; fi
done
# Merged /usr, as debootstrap makes it and as the appliance has it.
for d in bin sbin lib; do
    if [[ -d $ROOT/$d && ! -L $ROOT/$d ]]; then
        mkdir -p "$ROOT/usr/$d"
        cp -a "$ROOT/$d/." "$ROOT/usr/$d/"
        rm -rf "${ROOT:?}/$d"
    fi
    ln -sfn "usr/$d" "$ROOT/$d"
done

# What the maintainer scripts would have done.
cp "$ROOT/usr/share/base-passwd/passwd.master" "$ROOT/etc/passwd"
cp "$ROOT/usr/share/base-passwd/group.master" "$ROOT/etc/group"
sed 's/:.*/:*:19000:0:99999:7:::/' "$ROOT/etc/passwd" >"$ROOT/etc/shadow"
sed 's/:.*/:*::/' "$ROOT/etc/group" >"$ROOT/etc/gshadow"
chmod 640 "$ROOT/etc/shadow" "$ROOT/etc/gshadow"
od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$ROOT/etc/machine-id" # set: no first-boot wizard
echo spis-qemu >"$ROOT/etc/hostname"
printf 'PRETTY_NAME="spis qemu-test (Debian bookworm packages)"\nID=debian\nVERSION_ID=12\n' >"$ROOT/etc/os-release"
for a in sh mount umount stty cat grep stat sleep ps kill; do
    [[ -e $ROOT/usr/bin/$a ]] || ln -s busybox "$ROOT/usr/bin/$a"
done
mkdir -p "$ROOT/dev" "$ROOT/proc" "$ROOT/sys" "$ROOT/root" "$ROOT/tmp" "$ROOT/data" "$ROOT/var/tmp" "$ROOT/run"
chmod 1777 "$ROOT/tmp" "$ROOT/var/tmp"

# The kernel's modules, with the modules.dep that depmod would have made (host depmod, -b).
KVER=$(basename "$(find "$KDIR/lib/modules" -mindepth 1 -maxdepth 1 -type d | head -n1)")
mkdir -p "$ROOT/usr/lib/modules"
cp -a "$KDIR/lib/modules/$KVER" "$ROOT/usr/lib/modules/"
depmod -b "$ROOT/usr" "$KVER"

# The project's overlay, then the binary, then the test's own configuration.
cp -a "$REPO/rootfs/." "$ROOT/"
rm -f "$ROOT/README.md"
install -m 0755 "$SPIS_BIN" "$ROOT/usr/bin/spis"
rm -rf "$ROOT/etc/spis"
mkdir -p "$ROOT/etc/spis"
if [[ -n $SPIS_HOST_BIN ]]; then
    HASH=$(printf '%s\n' "$PASSWORD" | "$SPIS_HOST_BIN" hash-password)
    AUTH="password_hash = \"$HASH\""
else
    AUTH="no_auth = true"
fi
cat >"$ROOT/etc/spis/spis.toml" <<EOF
# qemu-test configuration (replaces whatever the overlay has here)
listen = "0.0.0.0:80"
media = "/data/media"
state_dir = "/var/lib/spis"
$AUTH
EOF
echo "LABEL=spis-data /data ext4 defaults,nofail 0 0" >"$ROOT/etc/fstab"
mkdir -p "$ROOT/etc/systemd/network"
cp "$HERE/10-qemu.network" "$ROOT/etc/systemd/network/"
cp "$HERE/spis-test-shell.service" "$ROOT/etc/systemd/system/"
# Enabling units, as `systemctl enable` (deb-systemd-helper in postinst) would.
enable() { # enable TARGET UNIT_PATH
    mkdir -p "$ROOT/etc/systemd/system/$1.wants"
    ln -sfn "$2" "$ROOT/etc/systemd/system/$1.wants/$(basename "$2")"
}
enable multi-user.target /usr/lib/systemd/system/spis.service
enable multi-user.target /usr/lib/systemd/system/systemd-networkd.service
enable sockets.target /usr/lib/systemd/system/systemd-networkd.socket
enable sysinit.target /etc/systemd/system/spis-test-shell.service
ln -sfn /usr/lib/systemd/system/multi-user.target "$ROOT/etc/systemd/system/default.target"
ln -sfn /dev/null "$ROOT/etc/systemd/system/getty.target" # no login program here: no gettys
[[ -f $ROOT/usr/lib/systemd/system/spis.service ]] || die "rootfs/ has no usr/lib/systemd/system/spis.service"

# --- kernel and initramfs ---------------------------------------------------------------------
KERNEL=$WORK/Image
VMLINUZ=$KDIR/boot/vmlinuz-$KVER
if [[ $(od -An -tx1 -N2 "$VMLINUZ" | tr -d ' ') == 1f8b ]]; then
    gzip -dc "$VMLINUZ" >"$KERNEL" # qemu -kernel wants the plain arm64 Image
else
    cp "$VMLINUZ" "$KERNEL"
fi
INITRD=$WORK/initrd
mkdir -p "$INITRD/bin" "$INITRD/modules"
cp "$ROOT/usr/bin/busybox" "$INITRD/bin/busybox"
install -m 0755 "$HERE/init" "$INITRD/init"
# The virtio drivers are modules in Debian's cloud kernel (ext4 is built in): each with its
# dependencies first, in modules.dep order.
MODDIR=$ROOT/usr/lib/modules/$KVER
: >"$INITRD/modules/load-order"
for m in virtio_pci virtio_mmio virtio_blk virtio_net virtio_console virtio-rng; do
    dep=$(grep -E "/$m\.ko(\.[a-z]+)?:" "$MODDIR/modules.dep") || die "module $m not in $KVER"
    files=$(echo "$dep" | cut -d: -f2 | tr ' ' '\n' | tac)
    for f in $files ${dep%%:*}; do
        b=$(basename "$f")
        grep -qx "$b" "$INITRD/modules/load-order" && continue
        cp "$MODDIR/$f" "$INITRD/modules/$b"
        echo "$b" >>"$INITRD/modules/load-order"
    done
done
(cd "$INITRD" && find . | cpio -o -H newc --quiet -R 0:0 | gzip -1) >"$WORK/initrd.gz"

# --- disks ------------------------------------------------------------------------------------
log "making the root disk (mke2fs -d)"
size=$(($(du -sm "$ROOT" | cut -f1) + 256))
mke2fs -q -t ext4 -L spis-root -d "$ROOT" "$WORK/root.img" "${size}M" >/dev/null

mkdir -p "$WORK/data/media/qemu-test"
PHOTOS=0
while IFS=$'\t' read -r path _ _ format _ _ _ bytes _; do
    if [[ $format != JPEG || ! $bytes =~ ^[0-9]+$ ]] || ((bytes >= 400000)); then continue; fi
    [[ -f $CORPUS/$path ]] || continue
    cp "$CORPUS/$path" "$WORK/data/media/qemu-test/photo$PHOTOS.jpg"
    PHOTOS=$((PHOTOS + 1))
    ((PHOTOS < 3)) || break
done < <(tail -n +2 "$CORPUS/MANIFEST.tsv" 2>/dev/null)
if ((PHOTOS < 3)); then # no corpus here: the repository's own demo photos
    while IFS= read -r f; do
        cp "$f" "$WORK/data/media/qemu-test/photo$PHOTOS.jpg"
        PHOTOS=$((PHOTOS + 1))
        ((PHOTOS < 3)) || break
    done < <(find "$REPO/tests/fixtures/photos" -iname '*.jpg' -size -2M | sort)
fi
((PHOTOS == 3)) || die "found only $PHOTOS photos for the data disk"
mke2fs -q -t ext4 -L spis-data -d "$WORK/data" "$WORK/data.img" 64M >/dev/null

# --- boot -------------------------------------------------------------------------------------
port_free() { ! grep -q ":$(printf '%04X' "$1") [0-9A-F]*:0000 0A" /proc/net/tcp /proc/net/tcp6 2>/dev/null; }
mkfifo "$WORK/shell.in" "$WORK/shell.out"
: >"$WORK/shell.log"
for attempt in 1 2 3 4 5; do
    PORT=$((20000 + RANDOM % 40000))
    port_free "$PORT" || continue
    log "booting: qemu-system-aarch64 -M virt -cpu cortex-a72 (TCG), http://127.0.0.1:$PORT -> guest :80"
    QEMU_START=$SECONDS
    qemu-system-aarch64 -M virt -cpu cortex-a72 -smp 2 -m 1024 \
        -accel tcg -nodefaults -no-user-config -display none -no-reboot \
        -kernel "$KERNEL" -initrd "$WORK/initrd.gz" \
        -append "console=ttyAMA0 root=LABEL=spis-root rw panic=-1 systemd.show_status=1" \
        -serial "file:$WORK/console.log" -monitor none \
        -drive "file=$WORK/root.img,format=raw,if=none,id=root,cache=unsafe" -device virtio-blk-pci,drive=root \
        -drive "file=$WORK/data.img,format=raw,if=none,id=data,cache=unsafe" -device virtio-blk-pci,drive=data \
        -netdev "user,id=net,restrict=on,hostfwd=tcp:127.0.0.1:$PORT-:80" -device virtio-net-pci,netdev=net,romfile= \
        -device virtio-rng-pci \
        -device virtio-serial-pci -chardev "pipe,id=shell,path=$WORK/shell" -device virtconsole,chardev=shell \
        >"$WORK/qemu.log" 2>&1 &
    QEMU_PID=$!
    sleep 1
    kill -0 "$QEMU_PID" 2>/dev/null && break
    QEMU_PID=
    grep -qi 'hostfwd\|forward' "$WORK/qemu.log" || die "qemu did not start: $(cat "$WORK/qemu.log")"
    ((attempt < 5)) || die "no free port for hostfwd"
done
[[ -n $QEMU_PID ]] || die "qemu did not start"
cat "$WORK/shell.out" >>"$WORK/shell.log" &
READER_PID=$!
exec {SHELL_FD}<>"$WORK/shell.in" # read-write: never blocks, even if qemu is gone

BASE=http://127.0.0.1:$PORT
alive() {
    kill -0 "$QEMU_PID" 2>/dev/null && return 0
    ((IN_CLEANUP)) && return 1
    die "qemu exited"
}
# Run a command in the guest's test shell (hvc0): prints its output, returns its status.
guest() { # guest TIMEOUT COMMAND
    local limit=$1 cmd=$2 n lines
    n=$(date +%s%N)$BASHPID # unique even when called in a $(...) subshell
    # The markers are split with "" so that an echo of the input line cannot match them; the
    # extra echo ends output that has no final newline.
    # shellcheck disable=SC2016 # $? and $s are for the guest's shell
    printf 'echo "@@""B%s"; %s; s=$?; echo; echo "@@""E%s:$s"\n' "$n" "$cmd" "$n" >&"$SHELL_FD"
    local deadline=$((SECONDS + limit))
    until grep -q "^@@E$n:" "$WORK/shell.log"; do
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
http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@" || true; }
log "waiting for HTTP 200 on /api/health (up to ${BOOT_TIMEOUT}s)"
until [[ $(http_code "$BASE/api/health") == 200 ]]; do
    alive
    ((SECONDS - QEMU_START < BOOT_TIMEOUT)) || die "no HTTP 200 on /api/health within ${BOOT_TIMEOUT}s"
    sleep 1
done
BOOT_SECONDS=$((SECONDS - QEMU_START))
log "first HTTP 200 on /api/health ${BOOT_SECONDS}s after QEMU started"

# The shell may start after spis answers: say hello until it answers (bounded).
deadline=$((SECONDS + 60))
until [[ $(guest 2 'echo hello') == hello ]]; do
    ((SECONDS < deadline)) || die "the test shell on hvc0 does not answer"
done
log "test shell on hvc0 answers"

# --- checks -----------------------------------------------------------------------------------
CURL=(curl -sS --max-time 30 -b "$WORK/cookies" -c "$WORK/cookies")
if [[ -n $SPIS_HOST_BIN ]]; then
    [[ $(http_code "$BASE/api/media") == 401 ]] || die "/api/media answers without a login"
    code=$(http_code -c "$WORK/cookies" -H 'Content-Type: application/json' \
        --data "{\"password\":\"$PASSWORD\"}" "$BASE/api/login")
    [[ $code == 200 || $code == 204 ]] || die "POST /api/login answered $code"
    log "logged in with the password (POST /api/login)"
fi
deadline=$((SECONDS + 120))
while :; do
    media=$("${CURL[@]}" "$BASE/api/media?limit=50") || media=
    ids=$(grep -o '"id":"[^"]*"' <<<"$media" | cut -d'"' -f4 || true)
    [[ -z $ids ]] && ids=$(grep -o '"id":[0-9]*' <<<"$media" | cut -d: -f2 || true)
    (($(grep -c . <<<"$ids") >= PHOTOS)) && break
    ((SECONDS < deadline)) || die "the API lists $(grep -c . <<<"$ids") of $PHOTOS photos: $media"
    sleep 1
done
log "the API lists $PHOTOS photos: $(echo "$ids" | tr '\n' ' ')"
first=$(head -n1 <<<"$ids")
"${CURL[@]}" -o "$WORK/thumb.jpg" -w '%{http_code} %{content_type}\n' --max-time 120 \
    "$BASE/api/media/$first/thumb" >"$WORK/thumb.status"
read -r code ctype <"$WORK/thumb.status"
[[ $code == 200 && $(od -An -tx1 -N3 "$WORK/thumb.jpg" | tr -d ' ') == ffd8ff ]] ||
    die "thumbnail of $first: HTTP $code ($ctype)"
log "thumbnail of $first: HTTP 200, $(stat -c %s "$WORK/thumb.jpg") bytes of JPEG"

state=$(guest 20 'systemctl show -p ActiveState -p SubState -p Type -p User -p MainPID -p NRestarts spis | tr "\n" " "') ||
    die "systemctl show spis failed in the guest"
log "spis.service: $state"
grep -q 'ActiveState=active' <<<"$state" || die "spis.service is not active"
pid=$(sed -n 's/.*MainPID=\([0-9]*\).*/\1/p' <<<"$state")
owner=$(guest 10 "stat -c %U /proc/$pid") || die "no process $pid in the guest"
[[ $owner == spis ]] || die "spis runs as '$owner', not as the spis user"
log "spis (pid $pid) runs as user $owner"
journal=$(guest 30 'journalctl -b -u spis --no-pager -o cat') || die "journalctl failed in the guest"
grep -q 'listening' <<<"$journal" || die "no 'listening' line from spis in the journal: $journal"
log "journal has spis's lines, e.g.: $(grep -m1 'listening' <<<"$journal")"

guest 10 "kill -KILL $pid" >/dev/null || die "could not kill spis"
log "killed spis (SIGKILL to pid $pid) inside the guest"
deadline=$((SECONDS + 120))
while :; do
    state=$(guest 20 'systemctl show -p ActiveState -p MainPID -p NRestarts spis | tr "\n" " "') || state=
    newpid=$(sed -n 's/.*MainPID=\([0-9]*\).*/\1/p' <<<"$state")
    if [[ $state == *ActiveState=active* && $newpid != "$pid" && $newpid != 0 ]] &&
        [[ $(http_code "$BASE/api/health") == 200 ]]; then
        break
    fi
    ((SECONDS < deadline)) || die "spis was not restarted: $state"
    sleep 1
done
log "systemd restarted spis: $state; /api/health is 200 again"
n=$(guest 30 'journalctl -b -u spis --no-pager -o cat | grep -c "spis listening on"') || n=0
((n >= 2)) || die "the journal shows $n start-up lines from spis, not 2 (before and after the kill)"
log "journal: $n 'spis listening on' lines (before and after the kill)"
failed=$(guest 20 'systemctl --failed --no-legend --plain | cut -d" " -f1 | tr "\n" " "' || true)
[[ -n ${failed// /} ]] && log "note: failed units in the guest: $failed"

# Not through guest(): the shell is killed by the shutdown before it could answer.
echo 'systemctl --no-block --check-inhibitors=no poweroff' >&"$SHELL_FD"
log "systemctl poweroff"
deadline=$((SECONDS + 90))
while kill -0 "$QEMU_PID" 2>/dev/null; do
    ((SECONDS < deadline)) || die "the guest did not power off within 90s"
    sleep 1
done
wait "$QEMU_PID" || true
QEMU_PID=
log "guest powered off"
log "PASS: boot to first HTTP 200 in ${BOOT_SECONDS}s; whole test $((SECONDS - T0))s"
