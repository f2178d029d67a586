#!/usr/bin/env bash
# tusd (the tus reference server) for the tests that compare Wharf with it (test/e2e/tusd-v2-*.test.ts).
# Built once with `go install` through the Go module proxy into .cache/bin (git-ignored) and reused after
# (2 CPU-minutes on an empty Go cache: the longest step of a fresh machine's first run);
# the version is the one bench/setup.sh pins. Nothing is started: each test runs its own tusd on 127.0.0.1
# with a free port in a temp folder.
# Usage: scripts/services/tusd.sh start|status   (idempotent; quick when already built)
set -euo pipefail
cd "$(dirname "$0")/../.."

version="$(sed -n 's/^TUSD_VERSION=\([^ ]*\).*/\1/p' bench/setup.sh)"
bin_dir="$PWD/.cache/bin"
binary="$bin_dir/tusd"
stamp="$bin_dir/tusd.version"

built() { [ -x "$binary" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version" ]; }

install() {
  if built; then return; fi
  local go=""
  if command -v go >/dev/null; then go="$(command -v go)"; elif [ -x /usr/local/go/bin/go ]; then go=/usr/local/go/bin/go; fi
  if [ -z "$go" ]; then
    echo "tusd: go is not installed; the tusd comparison tests cannot run" >&2
    exit 1
  fi
  mkdir -p "$bin_dir"
  echo "tusd: building github.com/tus/tusd/v2/cmd/tusd@$version with $("$go" version | cut -d' ' -f3) (once; a few minutes)" >&2
  local started=$SECONDS
  # Built into a temporary GOBIN and moved, so a half-built binary is never taken for a finished one.
  local tmp
  tmp="$(mktemp -d "$bin_dir/.tusd-build.XXXXXX")"
  # No inlining and no symbol tables: the tests compare tusd's answers, never its speed (the bench builds its own
  # optimised tusd, bench/setup.sh), and this build takes less CPU, on the longest step of a fresh machine's first
  # run: 122 CPU-s on an empty build cache (modules already downloaded), against 177 for the default build (with
  # the downloads).
  GOBIN="$tmp" GOFLAGS=-buildvcs=false "$go" install -ldflags='-s -w' -gcflags=all=-l \
    "github.com/tus/tusd/v2/cmd/tusd@$version"
  mv -f "$tmp/tusd" "$binary"
  rmdir "$tmp"
  echo "$version" >"$stamp"
  echo "tusd: built in $((SECONDS - started)) s" >&2
}

case "${1:-start}" in
  start) install; echo "tusd: $version at $binary" ;;
  status) if built; then echo "tusd: $version at $binary"; else echo "tusd: not built"; exit 3; fi ;;
  stop) echo "tusd: nothing runs in the background" ;;
  *) echo "usage: $0 start|status" >&2; exit 2 ;;
esac
