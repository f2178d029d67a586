#!/usr/bin/env bash
# tusd (the tus reference server) for the tests that compare Wharf with it (test/e2e/tusd-v2-*.test.ts).
# Built once from tusd's module on the Go module proxy into .cache/bin (git-ignored) and reused after, with
# the upload folder as its only storage (see install); the version is the one bench/setup.sh pins. Nothing is started: each test runs its own tusd on 127.0.0.1
# with a free port in a temp folder.
# Usage: scripts/services/tusd.sh start|status   (idempotent; quick when already built)
set -euo pipefail
cd "$(dirname "$0")/../.."

version="$(sed -n 's/^TUSD_VERSION=\([^ ]*\).*/\1/p' bench/setup.sh)"
bin_dir="$PWD/.cache/bin"
binary="$bin_dir/tusd"
stamp="$bin_dir/tusd.version"

# The stamp names the build as well as the version, so a checkout that built the complete tusd before rebuilds.
build_kind="upload-folder-only"
built() { [ -x "$binary" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version $build_kind" ]; }

install() {
  if built; then return; fi
  local go=""
  if command -v go >/dev/null; then go="$(command -v go)"; elif [ -x /usr/local/go/bin/go ]; then go=/usr/local/go/bin/go; fi
  if [ -z "$go" ]; then
    echo "tusd: go is not installed; the tusd comparison tests cannot run" >&2
    exit 1
  fi
  mkdir -p "$bin_dir"
  echo "tusd: building github.com/tus/tusd/v2/cmd/tusd@$version (upload folder storage only) with $("$go" version | cut -d' ' -f3) (once; a minute or two)" >&2
  local started=$SECONDS
  # Built in a temporary folder and moved, so a half-built binary is never taken for a finished one.
  local tmp
  tmp="$(mktemp -d "$bin_dir/.tusd-build.XXXXXX")"
  # tusd's module as published, copied out of the module cache (where nothing may be replaced), built as its own
  # module (its go.sum, its internal packages) with scripts/services/tusd/composer.go in place of its storage setup:
  # the tests run tusd on an upload folder only, and the cloud SDKs behind its other backends were about half of
  # this build. No inlining and no symbol tables: the tests compare tusd's answers, never its speed (the bench
  # builds its own complete, optimised tusd, bench/setup.sh). Measured on an empty build cache, modules already
  # downloaded: 115 CPU-s for the complete tusd, 48 for this one.
  local source
  source="$("$go" mod download -json "github.com/tus/tusd/v2@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [ -d "$source" ] || { echo "tusd: go mod download gave no folder for github.com/tus/tusd/v2@$version" >&2; exit 1; }
  cp -R "$source" "$tmp/src"
  chmod -R u+w "$tmp/src"
  printf '{"Replace":{"%s":"%s"}}\n' "$tmp/src/cmd/tusd/cli/composer.go" "$PWD/scripts/services/tusd/composer.go" >"$tmp/overlay.json"
  (cd "$tmp/src" && GOFLAGS=-buildvcs=false "$go" build -overlay "$tmp/overlay.json" -o "$tmp/tusd" \
    -ldflags="-s -w -X github.com/tus/tusd/v2/cmd/tusd/cli.VersionName=$version" -gcflags=all=-l ./cmd/tusd)
  mv -f "$tmp/tusd" "$binary"
  rm -rf "$tmp"
  echo "$version $build_kind" >"$stamp"
  echo "tusd: built in $((SECONDS - started)) s" >&2
}

case "${1:-start}" in
  start) install; echo "tusd: $version at $binary" ;;
  status) if built; then echo "tusd: $version at $binary"; else echo "tusd: not built"; exit 3; fi ;;
  stop) echo "tusd: nothing runs in the background" ;;
  *) echo "usage: $0 start|status" >&2; exit 2 ;;
esac
