#!/usr/bin/env bash
# fake-gcs-server (a Google Cloud Storage emulator) for tests and benches, on 127.0.0.1:${WHARF_FAKE_GCS_PORT:-19200}.
# Built once with `go install` through the Go module proxy into .cache/bin (git-ignored) and reused after;
# data under .cache/fake-gcs-data; plain HTTP; the test bucket is created on start.
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

find_go() {
  if command -v go >/dev/null; then command -v go; return; fi
  if [ -x /usr/local/go/bin/go ]; then echo /usr/local/go/bin/go; return; fi
  echo "fake-gcs: no Go toolchain (scripts/services/minio.sh fetches one into .cache)" >&2
  exit 1
}

install() {
  if [ -x "$binary" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version" ]; then return; fi
  local go
  go="$(find_go)"
  mkdir -p "$bin_dir"
  echo "fake-gcs: building github.com/fsouza/fake-gcs-server@$version (once; a few minutes)" >&2
  GOBIN="$bin_dir" GOFLAGS=-buildvcs=false "$go" install "github.com/fsouza/fake-gcs-server@$version"
  echo "$version" >"$stamp"
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
