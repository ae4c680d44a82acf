#!/usr/bin/env bash
# The web app's browser tests: the real spis binary and the system Chromium (headless), driven by
# playwright-core with Node's own test runner. Installs what is missing first.
#   SPIS_BIN      the server binary (default: target/debug/spis)
#   SPIS_WEB_DIR  serve web/ from this folder (default: the copy embedded in the binary)
#   SPIS_CORPUS   the photo corpus (default: ../shared/corpus beside the repository)
#   SCREENSHOT_DIR where screenshots go (default: target/screenshots)
# Extra arguments go to `node --test` (e.g. --test-name-pattern=offline).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

if [ ! -x /usr/bin/chromium ]; then
  echo "run.sh: installing chromium" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
fi

# certutil makes the NSS database a Chromium that trusts spis's CA reads (https.test.js).
if ! command -v certutil >/dev/null 2>&1; then
  echo "run.sh: installing libnss3-tools" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq libnss3-tools >/dev/null || { apt-get update -qq && apt-get install -y -qq libnss3-tools >/dev/null; }
fi

./node-modules.sh

exec node --test --test-concurrency=1 --test-timeout=120000 "$@" ./*.test.js
