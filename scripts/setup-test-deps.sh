#!/usr/bin/env bash
# Installs what `make test` needs on a fresh machine; does nothing when it is all there.
set -euo pipefail

if command -v rustup >/dev/null 2>&1; then
  for component in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$component" || rustup component add "$component"
  done
fi
