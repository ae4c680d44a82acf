#!/usr/bin/env bash
# `make fuzz`: runs each cargo-fuzz target in tests/fuzz for SECONDS (default 60), seeded with the
# small files of the photo corpus. Installs the nightly toolchain and cargo-fuzz when missing.
# A crash stops the run with libFuzzer's report; the input is saved under
# tests/fuzz/artifacts/<target>/ and belongs in a regression test (see src/fuzzing.rs).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_EACH="${1:-60}"
CORPUS="${CORPUS:-$ROOT/../shared/corpus}"
[[ "$SECONDS_EACH" =~ ^[1-9][0-9]*$ ]] || { echo "fuzz: seconds must be a positive integer" >&2; exit 2; }

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked

# Seeds: corpus files under 64 KiB (images, videos and odd files), copied so the fuzzer's own
# corpus folder never writes into ../shared.
SEEDS="$(mktemp -d "${TMPDIR:-/tmp}/spis-fuzz-seeds.XXXXXX")"
trap 'rm -rf "$SEEDS"' EXIT
# shellcheck disable=SC2016  # $1 and $2 belong to the inner sh
find "$CORPUS" -type f -size -64k ! -name '*.tsv' ! -name '*.md' -print0 |
  head -z -n 400 | xargs -0 -I{} sh -c 'cp "$1" "$2/$(basename "$1" | tr -c "A-Za-z0-9._-" _)"' _ {} "$SEEDS"
mkdir -p "$SEEDS/text"
printf '%s\n' 'IMG_20230114_093012.jpg' 'PXL_20230114_093012123.mp4' '2023:01:14 09:30:12' \
  'year=2023&month=1&limit=100' 'cursor=AAAA&dir=a%2Fb&favorite=true' > "$SEEDS/text/seeds.txt"

for target in probe dates query thumbnail; do
  echo "fuzz: $target for ${SECONDS_EACH}s" >&2
  seeds="$SEEDS"
  [[ $target == dates || $target == query ]] && seeds="$SEEDS/text"
  cargo +nightly fuzz run --fuzz-dir "$ROOT/tests/fuzz" "$target" "$seeds" -- \
    -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -timeout=20 -max_len=262144 -print_final_stats=1
done
echo "fuzz: no crash in ${SECONDS_EACH}s per target" >&2
