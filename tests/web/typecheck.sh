#!/usr/bin/env bash
# Type-checks web/ from its JSDoc with TypeScript (strict, no output): the page's modules, then the
# service worker in its own global scope. Fails on the first error; `make web` runs it first.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$here/node-modules.sh"
"$here/node_modules/.bin/tsc" -p "$here/tsconfig.web.json"
"$here/node_modules/.bin/tsc" -p "$here/tsconfig.sw.json"
