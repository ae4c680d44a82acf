# Sourced by the benchmark scripts: what they all need (packages, CPU time, wrk runs) and which
# binaries they measure. Needs ROOT (the repository) and a say/die pair. Sets BIN, the binary that ships (the static x86_64 musl build, built unless
# BENCH_BIN names one built earlier), and GLIBC_BIN, the glibc release build measured beside it
# (BENCH_GLIBC_BIN names one built earlier, or "none" to skip it). `bench_binaries both` measures both; `bench_binaries shipped` skips
# the glibc build unless BENCH_GLIBC_BIN names one.
# shellcheck shell=bash

# Where cargo puts its output, whether CARGO_TARGET_DIR or a cargo config says so.
bench_target_dir() {
  (cd "$ROOT" && "${CARGO:-cargo}" metadata --format-version 1 --no-deps) |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])'
}

bench_binaries() {
  local target_dir
  target_dir="$(bench_target_dir)"
  if [[ -n "${BENCH_BIN:-}" ]]; then
    BIN="$BENCH_BIN"
  else
    say "building the shipped binary (static, x86_64 musl)"
    (cd "$ROOT" && scripts/static.sh x86_64-unknown-linux-musl >&2) ||
      die "the static build failed (BENCH_BIN=/path/to/spis benchmarks a binary built earlier)"
    BIN="$target_dir/x86_64-unknown-linux-musl/release/spis"
  fi
  [[ -x "$BIN" ]] || die "no spis binary at $BIN"
  GLIBC_BIN="${BENCH_GLIBC_BIN:-}"
  [[ -n "$GLIBC_BIN" || "${1:-}" != shipped ]] || GLIBC_BIN=none
  if [[ -z "$GLIBC_BIN" ]]; then
    say "building the glibc release binary (the anchor)"
    (cd "$ROOT" && "${CARGO:-cargo}" build --release --locked --quiet) || die "the glibc release build failed"
    GLIBC_BIN="$target_dir/release/spis"
  fi
  [[ "$GLIBC_BIN" == none || -x "$GLIBC_BIN" ]] || die "no glibc spis binary at $GLIBC_BIN"
  # Exported so that a script run by another (make bench) measures the same binaries unbuilt.
  export BENCH_BIN="$BIN" BENCH_GLIBC_BIN="$GLIBC_BIN"
}

need() { # need COMMAND PACKAGE: install a Debian package when COMMAND is missing
  command -v "$1" >/dev/null 2>&1 && return
  say "installing $2 with apt-get (needed for $1)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }
}

cpu_ms() { # cpu_ms COMMAND...: user+system CPU milliseconds of a command and its children
  local TIMEFORMAT='%U %S' t
  t="$({ time "$@" >/dev/null 2>&1; } 2>&1)"
  awk '{ printf "%.0f", ($1 + $2) * 1000 }' <<<"$t"
}

proc_cpu_ms() { # proc_cpu_ms PID: user+system CPU milliseconds a process has used so far
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.0f", ($14 + $15) * 1000 / hz }' "/proc/$1/stat"
}

spis_base() { # spis_base PREFIX: waits (10 s at most) for spis to print its address in PREFIX.out; sets BASE
  local i
  BASE=""
  for ((i = 0; i < 200; i++)); do
    BASE="$(sed -n 's/^spis listening on //p' "$1.out" 2>/dev/null)"
    [[ -n "$BASE" ]] && return
    sleep 0.05
  done
  die "spis did not start: $(cat "$1.err")"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

# cpu_of_ms PID...: user+system CPU milliseconds the processes have used so far, together.
cpu_of_ms() {
  local pid total=0
  for pid in "$@"; do total=$((total + $(proc_cpu_ms "$pid"))); done
  echo "$total"
}

# run_wrk URL PATHS_FILE [WRK ARGS...]: wrk at 64 connections for WRK_DURATION over the paths
# of PATHS_FILE (the Lua script in LUA picks them); sets P50 and P99 (ms), RPS and ERR (non-2xx
# or 3xx answers and socket errors), and CPU_US: the server's CPU microseconds per request, when
# SERVER_PIDS names its processes (wrk and the server share the cores, so req/s moves with
# whatever else runs; CPU per request is the steadier figure). Needs RUN (a scratch directory).
run_wrk() {
  local url=$1 paths=$2 before=0 n
  shift 2
  # shellcheck disable=SC2086 # SERVER_PIDS is a list
  [[ -z "${SERVER_PIDS:-}" ]] || before=$(cpu_of_ms $SERVER_PIDS)
  PATHS_FILE="$paths" wrk -t2 -c64 -d"$WRK_DURATION" --latency -s "$LUA" "$@" "$url" >"$RUN/wrk.txt"
  # shellcheck disable=SC2034 # the caller reads them
  read -r P50 P99 RPS ERR n < <(awk '
    function ms(v) { if (v ~ /us$/) return v * 0.001; if (v ~ /ms$/) return v * 1; if (v ~ /s$/) return v * 1000; return v }
    $1 == "50%" { p50 = ms($2) } $1 == "99%" { p99 = ms($2) } $1 == "Requests/sec:" { rps = $2 }
    $2 == "requests" && $3 == "in" { n = $1 }
    /Non-2xx or 3xx responses:/ { e += $NF } /Socket errors:/ { e += $4 + $6 + $8 + $10 }
    END { printf "%.3f %.3f %.0f %d %d\n", p50, p99, rps, e, n }' "$RUN/wrk.txt")
  CPU_US=""
  # shellcheck disable=SC2086,SC2034
  [[ -z "${SERVER_PIDS:-}" ]] || CPU_US=$(awk -v a="$before" -v b="$(cpu_of_ms $SERVER_PIDS)" -v n="$n" \
    'BEGIN { if (n > 0) printf "%.1f", (b - a) * 1000 / n; else print "n/a" }')
}
