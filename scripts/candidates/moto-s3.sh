#!/usr/bin/env bash
# A candidate, not yet the test default: the tests still use MinIO (scripts/services/minio.sh) until this
# server has passed whole CI runs under load (it raced when threaded; it now serves one request at a time).
# The S3-compatible server the tests use, on 127.0.0.1:${WHARF_TEST_S3_PORT:-19000}: moto's server mode (a real HTTP
# S3 API in its own process, signatures checked as SigV4 requests), installed from PyPI with the version pinned
# into a venv under .cache/s3-venv (git-ignored), about a minute on a fresh machine and instant after.
# MinIO was built from source here before (about 14 minutes on 2 cores): bench/minio.sh still builds it for the
# S3 bench, which measures against it.
# Objects live in the server's memory (spilled to temporary files past 10 MB each): a restart empties the bucket,
# which suits tests that each write under their own folder.
# Usage: scripts/candidates/moto-s3.sh start|stop|status|restart   (idempotent; quick when already running)
# Tests read WHARF_TEST_S3_URL (default http://127.0.0.1:19000), WHARF_TEST_S3_BUCKET (wharf-test),
# WHARF_TEST_S3_ACCESS_KEY (wharf-test) and WHARF_TEST_S3_SECRET_KEY (wharf-test-secret).
set -euo pipefail
cd "$(dirname "$0")/../.."

MOTO_VERSION=5.2.6
port="${WHARF_TEST_S3_PORT:-19000}"
bucket="${WHARF_TEST_S3_BUCKET:-wharf-test}"
access_key="${WHARF_TEST_S3_ACCESS_KEY:-wharf-test}"
secret_key="${WHARF_TEST_S3_SECRET_KEY:-wharf-test-secret}"
venv="$PWD/.cache/s3-venv"
log="$PWD/.cache/s3-$port.log"
pidfile="$PWD/.cache/s3-$port.pid"

installed() {
  [ -x "$venv/bin/moto_server" ] &&
    "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('moto') != '$MOTO_VERSION')" 2>/dev/null
}

install() {
  installed && return
  if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    echo "s3: installing python3 and python3-venv" >&2
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq python3 python3-venv >/dev/null
  fi
  local started=$SECONDS
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
  installed || { echo "s3: moto $MOTO_VERSION did not install" >&2; exit 1; }
  echo "s3: installed moto $MOTO_VERSION in $venv in $((SECONDS - started)) s" >&2
}

# moto's own dashboard answers on every moto server, so this tells it from another program on the port.
answers() { curl -sf -o /dev/null --max-time 2 "http://127.0.0.1:$port/moto-api/"; }

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
    echo "s3: creating bucket $bucket answered HTTP $code" >&2
    exit 1
  fi
}

start() {
  install
  if answers; then
    create_bucket
    echo "s3: up on http://127.0.0.1:$port (bucket $bucket)"
    return
  fi
  if curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$port/"; then
    echo "s3: another server holds 127.0.0.1:$port (MinIO from before? WHARF_MINIO_PORT=$port bash bench/minio.sh stop)" >&2
    exit 1
  fi
  mkdir -p .cache
  # setsid: the server outlives this script and the test run that started it.
  # s3-server.py is moto_server serving one request at a time (see that file for why).
  setsid "$venv/bin/python" scripts/candidates/moto-s3-server.py -H 127.0.0.1 -p "$port" >"$log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  for _ in $(seq 1 300); do
    if answers; then
      create_bucket
      echo "s3: started on http://127.0.0.1:$port (bucket $bucket)"
      return
    fi
    sleep 0.1
  done
  echo "s3: did not answer on 127.0.0.1:$port within 30 s; see $log" >&2
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
    echo "s3: something else still answers on $port" >&2
    exit 1
  fi
  echo "s3: stopped"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) if answers; then echo "s3: up on http://127.0.0.1:$port"; else echo "s3: down"; exit 3; fi ;;
  *) echo "usage: $0 start|stop|status|restart" >&2; exit 2 ;;
esac
