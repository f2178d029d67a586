#!/usr/bin/env bash
# The S3-compatible server the tests use: S3Proxy (a real S3 API server, Apache 2.0) with its filesystem backend,
# on 127.0.0.1:${WHARF_S3PROXY_PORT:-19000}. Its prebuilt jar (the jar-with-dependencies that S3Proxy publishes on
# Maven Central) is fetched once by the machine's Maven into .cache/s3proxy (git-ignored; about 20 s and 55 MB on
# an empty cache) and run with Java 17; objects are plain files under .cache/s3proxy-data. Fixed test
# credentials, SigV4 (and V2) signatures checked; the test bucket is created on start.
# It replaced MinIO as the tests' server because MinIO has no prebuilt build in a registry this project reaches and
# took 8 to 14 minutes to compile on 2 cores; scripts/minio.sh still builds it for the S3 bench (bench/minio.sh).
# Usage: scripts/services/s3proxy.sh start|stop|status|restart   (idempotent; quick when already running)
# WHARF_S3PROXY_PORT and WHARF_S3PROXY_DATA_DIR select another port and data folder (a second, separate server).
# Tests read WHARF_TEST_S3_URL (default http://127.0.0.1:19000), WHARF_TEST_S3_BUCKET (wharf-test),
# WHARF_TEST_S3_ACCESS_KEY (wharf-test) and WHARF_TEST_S3_SECRET_KEY (wharf-test-secret).
set -euo pipefail
cd "$(dirname "$0")/../.."

version="4.1.0"
port="${WHARF_S3PROXY_PORT:-19000}"
bucket="${WHARF_TEST_S3_BUCKET:-wharf-test}"
access_key="${WHARF_TEST_S3_ACCESS_KEY:-wharf-test}"
secret_key="${WHARF_TEST_S3_SECRET_KEY:-wharf-test-secret}"
cache="$PWD/.cache/s3proxy"
jar="$cache/s3proxy-$version-jar-with-dependencies.jar"
data_dir="${WHARF_S3PROXY_DATA_DIR:-$PWD/.cache/s3proxy-data}"
state="$cache/run-$port"
log="$state/s3proxy.log"
pidfile="$state/s3proxy.pid"

install_tools() {
  local missing=()
  command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null || missing+=(maven)
  [ ${#missing[@]} -eq 0 ] && return
  echo "s3proxy: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
    apt-get -o DPkg::Lock::Timeout=600 update >/dev/null
    apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}" >/dev/null
  }
}

install() {
  [ -f "$jar" ] && return
  install_tools
  echo "s3proxy: fetching org.gaul:s3proxy:$version (jar-with-dependencies) from Maven Central (once)" >&2
  local started=$SECONDS
  mkdir -p "$cache"
  # Copied into a temporary folder and moved, so a half-written jar is never taken for a finished one.
  local tmp
  tmp="$(mktemp -d "$cache/.fetch.XXXXXX")"
  mvn -q -B -Dmaven.repo.local="$cache/m2" org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
    -Dartifact="org.gaul:s3proxy:$version:jar:jar-with-dependencies" -DoutputDirectory="$tmp" \
    >"$cache/mvn.log" 2>&1 || {
    tail -n 40 "$cache/mvn.log" >&2
    rm -rf "$tmp"
    exit 1
  }
  mv -f "$tmp/$(basename "$jar")" "$jar"
  rm -rf "$tmp" "$cache/m2/org/gaul/s3proxy"
  echo "s3proxy: fetched in $((SECONDS - started)) s" >&2
}

# Any HTTP answer counts: the port is taken by a server (S3Proxy answers an unsigned request with 403).
answers() {
  local code
  code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/" || true)"
  [ -n "$code" ] && [ "$code" != 000 ]
}

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
    echo "s3proxy: creating bucket $bucket on 127.0.0.1:$port answered HTTP $code" >&2
    echo "s3proxy: (another server on the port? it must take the test credentials: stop it, or set WHARF_S3PROXY_PORT)" >&2
    exit 1
  fi
}

ours() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

start() {
  install
  if answers; then
    # A server already up with the test bucket and credentials is used as it is, whoever started it (another
    # checkout's S3Proxy, or an S3 server of your own on this port).
    create_bucket
    if ours; then echo "s3proxy: up on http://127.0.0.1:$port (bucket $bucket)"; else
      echo "s3proxy: an S3 server already answers on http://127.0.0.1:$port (bucket $bucket); using it"
    fi
    return
  fi
  mkdir -p "$data_dir" "$state"
  cat >"$state/s3proxy.conf" <<CONF
s3proxy.endpoint=http://127.0.0.1:$port
s3proxy.authorization=aws-v2-or-v4
s3proxy.identity=$access_key
s3proxy.credential=$secret_key
jclouds.provider=filesystem-nio2
jclouds.filesystem.basedir=$data_dir
CONF
  # setsid: the server outlives this script and the test run that started it. A bounded heap and the serial
  # collector: bodies stream through, and the machine has 2 cores for everything. C1 only
  # (-XX:TieredStopAtLevel=1): C2's compiles cost more than they earn in a test run. Measured on this machine with
  # the S3 test files run three times against one server, its start included: 22.3 CPU-s with C2, 16.0 without.
  setsid java -Xms64m -Xmx1g -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:-UsePerfData -Djava.awt.headless=true \
    -jar "$jar" --properties "$state/s3proxy.conf" >"$log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  for _ in $(seq 1 600); do
    if answers; then
      create_bucket
      echo "s3proxy: started on http://127.0.0.1:$port (bucket $bucket)"
      return
    fi
    if ! ours; then break; fi
    sleep 0.1
  done
  echo "s3proxy: did not answer on 127.0.0.1:$port within 60 s; see $log" >&2
  tail -n 30 "$log" >&2 || true
  exit 1
}

stop() {
  if ours; then
    kill "$(cat "$pidfile")"
    for _ in $(seq 1 100); do
      ours || break
      sleep 0.1
    done
  fi
  rm -f "$pidfile"
  if answers; then
    echo "s3proxy: something else still answers on $port" >&2
    exit 1
  fi
  echo "s3proxy: stopped"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) if answers; then echo "s3proxy: up on http://127.0.0.1:$port"; else echo "s3proxy: down"; exit 3; fi ;;
  *) echo "usage: $0 start|stop|status|restart" >&2; exit 2 ;;
esac
