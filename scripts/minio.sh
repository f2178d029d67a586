#!/usr/bin/env bash
# MinIO (a real S3-compatible server) for the S3 bench (bench/minio.sh runs it on 127.0.0.1:19020), on
# 127.0.0.1:${WHARF_MINIO_PORT:-19000}. Not a test service: the tests use S3Proxy (scripts/services/s3proxy.sh), which
# installs in seconds where this build takes 8 to 14 minutes on an empty Go cache on 2 cores.
# Built once with `go install` through the Go module proxy into .cache/bin (git-ignored) and reused after;
# data under .cache/minio-data; fixed test credentials; the test bucket is created on start.
# Usage: scripts/minio.sh start|stop|status|restart   (idempotent; quick when already running)
# WHARF_MINIO_PORT and WHARF_MINIO_DATA_DIR select another port and data folder.
# Tests read WHARF_TEST_S3_URL (default http://127.0.0.1:19000), WHARF_TEST_S3_BUCKET (wharf-test),
# WHARF_TEST_S3_ACCESS_KEY (wharf-test) and WHARF_TEST_S3_SECRET_KEY (wharf-test-secret).
set -euo pipefail
cd "$(dirname "$0")/.."

# MinIO tags its releases RELEASE.<date>, which are not semver, so the proxy serves pseudo-versions only.
# This is the newest one it serves (commit 7aac2a2c of 2026-02-12).
version="v0.0.0-20260212201848-7aac2a2c5b7c"
port="${WHARF_MINIO_PORT:-19000}"
bucket="${WHARF_TEST_S3_BUCKET:-wharf-test}"
access_key="${WHARF_TEST_S3_ACCESS_KEY:-wharf-test}"
secret_key="${WHARF_TEST_S3_SECRET_KEY:-wharf-test-secret}"
bin_dir="$PWD/.cache/bin"
binary="$bin_dir/minio"
stamp="$bin_dir/minio.version"
# WHARF_MINIO_DATA_DIR runs a second, separate server (a test that stops S3 mid-upload uses one).
data_dir="${WHARF_MINIO_DATA_DIR:-$PWD/.cache/minio-data}"
log="${WHARF_MINIO_DATA_DIR:-$PWD/.cache/minio}.log"
pidfile="${WHARF_MINIO_DATA_DIR:-$PWD/.cache/minio}.pid"

# MinIO's go.mod needs Go >= 1.24. An older Go (Debian's golang-go) or none gets the toolchain from the Go
# module proxy (it is the module golang.org/toolchain), unpacked under .cache.
toolchain="go1.24.8"
find_go() {
  local go=""
  if command -v go >/dev/null; then go="$(command -v go)"; elif [ -x /usr/local/go/bin/go ]; then go=/usr/local/go/bin/go; fi
  if [ -n "$go" ] && "$go" version | grep -Eq 'go1\.(2[4-9]|[3-9][0-9])'; then echo "$go"; return; fi
  local unpacked="$PWD/.cache/$toolchain"
  local go_bin="$unpacked/golang.org/toolchain@v0.0.1-$toolchain.linux-amd64/bin/go"
  if [ ! -x "$go_bin" ]; then
    echo "minio: fetching the $toolchain toolchain from the Go module proxy" >&2
    mkdir -p "$unpacked"
    curl -fsSL -o "$unpacked.zip" "https://proxy.golang.org/golang.org/toolchain/@v/v0.0.1-$toolchain.linux-amd64.zip"
    python3 -m zipfile -e "$unpacked.zip" "$unpacked"
    chmod +x "$go_bin" "$unpacked/golang.org/toolchain@v0.0.1-$toolchain.linux-amd64/pkg/tool/"*/* 2>/dev/null || true
    rm -f "$unpacked.zip"
  fi
  echo "$go_bin"
}

install() {
  if [ -x "$binary" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version" ]; then return; fi
  local go
  go="$(find_go)"
  mkdir -p "$bin_dir"
  echo "minio: building github.com/minio/minio@$version with $("$go" version | cut -d' ' -f3) (once; several minutes)" >&2
  local started=$SECONDS
  GOBIN="$bin_dir" GOTOOLCHAIN=local GOFLAGS=-buildvcs=false \
    "$go" install "github.com/minio/minio@$version"
  echo "$version" >"$stamp"
  echo "minio: built in $((SECONDS - started)) s" >&2
}

answers() { curl -sf -o /dev/null --max-time 2 "http://127.0.0.1:$port/minio/health/live"; }

# Signed with curl's built-in SigV4, so creating the bucket needs no client library.
s3_request() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 10 --aws-sigv4 "aws:amz:us-east-1:s3" \
    --user "$access_key:$secret_key" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@"
}

create_bucket() {
  local code
  code="$(s3_request -X HEAD "http://127.0.0.1:$port/$bucket")"
  [ "$code" = 200 ] && return
  code="$(s3_request -X PUT "http://127.0.0.1:$port/$bucket")"
  if [ "$code" != 200 ]; then
    echo "minio: creating bucket $bucket answered HTTP $code" >&2
    exit 1
  fi
}

start() {
  install
  if answers; then
    create_bucket
    echo "minio: up on http://127.0.0.1:$port (bucket $bucket)"
    return
  fi
  mkdir -p "$data_dir"
  # setsid: the server outlives this script and the test run that started it.
  MINIO_ROOT_USER="$access_key" MINIO_ROOT_PASSWORD="$secret_key" MINIO_BROWSER=off MINIO_UPDATE=off \
    setsid "$binary" server --quiet --address "127.0.0.1:$port" --console-address "127.0.0.1:$((port + 1))" \
    "$data_dir" >"$log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  for _ in $(seq 1 300); do
    if answers; then
      create_bucket
      echo "minio: started on http://127.0.0.1:$port (bucket $bucket)"
      return
    fi
    sleep 0.1
  done
  echo "minio: did not answer on 127.0.0.1:$port within 30 s; see $log" >&2
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
    echo "minio: something else still answers on $port" >&2
    exit 1
  fi
  echo "minio: stopped"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) if answers; then echo "minio: up on http://127.0.0.1:$port"; else echo "minio: down"; exit 3; fi ;;
  *) echo "usage: $0 start|stop|status|restart" >&2; exit 2 ;;
esac
