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

# npm ci when node_modules is missing or does not hold exactly what the lock file pins.
if ! node -e '
  const want = require("./package-lock.json").packages;
  let have;
  try { have = require("./node_modules/.package-lock.json").packages; } catch { process.exit(1); }
  for (const [k, v] of Object.entries(want)) if (k && have[k]?.version !== v.version) process.exit(1);
' 2>/dev/null; then
  echo "run.sh: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi

exec node --test --test-concurrency=1 --test-timeout=120000 "$@" ./*.test.js
