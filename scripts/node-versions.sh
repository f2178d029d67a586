#!/usr/bin/env bash
# Installs the extra Node versions the tests also run on (besides the node on PATH) from the npm registry's
# node-<platform>-<arch> packages (the official binaries, as the `node` package installs them) into
# .cache/node/<version>/, and prints each one's bin folder. Idempotent: a version already there costs nothing.
# Usage: scripts/node-versions.sh [version...]   (default: the versions in WHARF_TEST_NODE_VERSIONS; set but
# empty: none)
set -euo pipefail
cd "$(dirname "$0")/.."
# The newest 22 and 24 releases when this was written; bump them here (the README names the majors only).
WHARF_TEST_NODE_VERSIONS="${WHARF_TEST_NODE_VERSIONS-22.23.5 24.22.3}"
versions=("$@")
[ ${#versions[@]} -gt 0 ] || read -r -a versions <<<"$WHARF_TEST_NODE_VERSIONS"
platform="$(node -p 'process.platform + "-" + process.arch')"
for v in "${versions[@]}"; do
  dir=".cache/node/$v"
  if [ ! -x "$dir/bin/node" ] || [ "$("$dir/bin/node" --version 2>/dev/null)" != "v$v" ]; then
    tmp="$(mktemp -d)"
    # npm pack only downloads (through npm's own cache): no install scripts run, no package.json is touched.
    tarball="$(cd "$tmp" && npm pack --silent "node-$platform@$v")"
    mkdir -p "$tmp/x" && tar -xzf "$tmp/$tarball" -C "$tmp/x"
    rm -rf "$dir" && mkdir -p "$(dirname "$dir")" && mv "$tmp/x/package" "$dir"
    rm -rf "$tmp"
    "$dir/bin/node" --version >/dev/null
  fi
  echo "$PWD/$dir/bin"
done
