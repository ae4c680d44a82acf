#!/usr/bin/env bash
# npm ci when tests/web/node_modules is missing or does not hold exactly what the lock file pins
# (run.sh and typecheck.sh both need it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

if ! node -e '
  const want = require("./package-lock.json").packages;
  let have;
  try { have = require("./node_modules/.package-lock.json").packages; } catch { process.exit(1); }
  for (const [k, v] of Object.entries(want)) if (k && have[k]?.version !== v.version) process.exit(1);
' 2>/dev/null; then
  echo "node-modules.sh: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi
