# shellcheck shell=bash
# A private apt for another architecture or suite: its own sources, lists, dpkg status and
# archive cache under a directory of the CI cache. Nothing of the host's apt or dpkg state is read
# or changed (no foreign architecture added, no hook of the host's apt.conf.d run); only the host's
# proxy setting is kept. Sourced by scripts/card/build.sh and scripts/card/test.sh (which define
# log).
#
#   host_tools TOOL=PACKAGE...     installs, with the host's own apt, the packages of the tools
#                                  that are missing
#   papt_init DIR ARCH SOURCE...   SOURCE: "suite component..." of deb.debian.org
#   papt ARGS...                   apt-get with that configuration
#   papt_cache ARGS...             apt-cache with that configuration
#   papt_fetch PACKAGE...          the .deb files of PACKAGE and its Depends/Pre-Depends closure
#                                  (no Recommends), downloaded into DIR/debs where missing;
#                                  prints "package version arch file" lines
# Lists are refreshed once a day, or when a version the lists name is gone from the mirror.

host_tools() {
	local pair needed=()
	for pair in "$@"; do
		command -v "${pair%%=*}" >/dev/null || needed+=("${pair#*=}")
	done
	((${#needed[@]} > 0)) || return 0
	log "installing host packages: ${needed[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y --no-install-recommends "${needed[@]}" >/dev/null 2>&1 || {
		apt-get update -qq >/dev/null
		apt-get install -y --no-install-recommends "${needed[@]}" >/dev/null
	}
}

papt_init() {
	PAPT_DIR=$1 PAPT_ARCH=$2
	shift 2
	mkdir -p "$PAPT_DIR/lists/partial" "$PAPT_DIR/etc/sources.list.d" "$PAPT_DIR/etc/preferences.d" \
		"$PAPT_DIR/etc/apt.conf.d" "$PAPT_DIR/debs/partial" "$PAPT_DIR/cache"
	: >"$PAPT_DIR/status" # an empty dpkg status: apt resolves the whole closure
	local src suite comps
	: >"$PAPT_DIR/etc/sources.list"
	for src in "$@"; do
		suite=${src%% *} comps=${src#* }
		local base=http://deb.debian.org/debian
		[[ $suite == *-security ]] && base=http://deb.debian.org/debian-security
		echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $base $suite $comps" \
			>>"$PAPT_DIR/etc/sources.list"
	done
	PAPT_OPTS=(-o APT::Architecture="$PAPT_ARCH" -o APT::Architectures="$PAPT_ARCH"
		-o Dir::State="$PAPT_DIR" -o Dir::State::Lists="$PAPT_DIR/lists" -o Dir::State::status="$PAPT_DIR/status"
		-o Dir::Cache="$PAPT_DIR/cache" -o Dir::Cache::archives="$PAPT_DIR/debs"
		-o Dir::Etc::sourcelist="$PAPT_DIR/etc/sources.list" -o Dir::Etc::sourceparts="$PAPT_DIR/etc/sources.list.d"
		-o Dir::Etc::preferencesparts="$PAPT_DIR/etc/preferences.d" -o Dir::Etc::parts="$PAPT_DIR/etc/apt.conf.d"
		-o Debug::NoLocking=1 -o APT::Sandbox::User=root -o Acquire::Languages=none
		-o APT::Install-Recommends=false -q)
	local p v
	for p in Acquire::http::Proxy Acquire::https::Proxy; do
		v=$(apt-config dump "$p" 2>/dev/null | sed -n "s/^$p \"\(.*\)\";\$/\1/p" | head -n1)
		[[ -n $v ]] && PAPT_OPTS+=(-o "$p=$v")
	done
	if [[ -z $(find "$PAPT_DIR/lists" -maxdepth 1 -name '*_Packages*' -mmin -1440 2>/dev/null | head -n1) ]]; then
		papt update >/dev/null
	fi
}

papt() { apt-get "${PAPT_OPTS[@]}" "$@"; }
papt_cache() { apt-cache "${PAPT_OPTS[@]}" "$@"; }

# The file name apt gives a downloaded package.
papt_deb() { local v=${2//:/%3a}; echo "$PAPT_DIR/debs/${1}_${v}_$3.deb"; }

# "package version arch" of what installing "$@" takes (an upgrade names the installed version
# first: "Inst qemu-system-arm [1:7.2...] (1:10.0.2... [amd64])").
papt_closure() {
	papt install -s "$@" |
		sed -n 's/^Inst \([^ ]*\) \(\[[^]]*\] \)\{0,1\}(\([^ ]*\) .*\[\([a-z0-9]*\)\]).*$/\1 \3 \4/p'
}

papt_fetch() {
	local lines line missing=0
	mapfile -t lines < <(papt_closure "$@")
	for line in "${lines[@]}"; do
		# shellcheck disable=SC2086
		[[ -f $(papt_deb $line) ]] || missing=$((missing + 1))
	done
	if ((${#lines[@]} == 0)) || { ((missing > 0)) && ! papt install --download-only -y "$@" >/dev/null; }; then
		# A package was superseded since the lists were fetched: fetch them again, once.
		papt update >/dev/null
		mapfile -t lines < <(papt_closure "$@")
		((${#lines[@]} > 0)) || return 1
		papt install --download-only -y "$@" >/dev/null || return 1
	fi
	for line in "${lines[@]}"; do
		# shellcheck disable=SC2086
		echo "$line $(papt_deb $line)"
	done
}
