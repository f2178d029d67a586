#!/usr/bin/env bash
# Redis for tests and benches: Debian's redis-server on 127.0.0.1:${WHARF_REDIS_PORT:-16379}, data under
# .cache/redis-<port> with an append-only file, so that a restart keeps the records (the restart tests rely
# on it, as production would). Idempotent; quick when already running.
# Usage: scripts/services/redis.sh start|stop|status|restart
set -euo pipefail
cd "$(dirname "$0")/../.."
port="${WHARF_REDIS_PORT:-16379}"
# WHARF_REDIS_DIR: another data folder (a test's private instance keeps its data in a temporary one).
dir="${WHARF_REDIS_DIR:-$PWD/.cache/redis-$port}"
pidfile="$dir/redis.pid"

answers() { redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG; }

install() {
  command -v redis-server >/dev/null && command -v redis-cli >/dev/null && return
  if [ "$(id -u)" != 0 ]; then
    echo "redis.sh: redis-server is not installed and this is not root; install the Debian package redis-server" >&2
    exit 1
  fi
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends redis-server >/dev/null
  # The package starts a system instance on 6379; tests use their own on $port.
  (systemctl disable --now redis-server 2>/dev/null || service redis-server stop 2>/dev/null) || true
}

start() {
  install
  if answers; then echo "redis: up on 127.0.0.1:$port"; return; fi
  mkdir -p "$dir"
  redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --daemonize yes --pidfile "$pidfile" \
    --logfile "$dir/redis.log" --save '' --appendonly yes --appendfsync everysec --protected-mode yes
  for _ in $(seq 1 100); do
    if answers; then echo "redis: started on 127.0.0.1:$port"; return; fi
    sleep 0.1
  done
  echo "redis: did not answer on 127.0.0.1:$port; see $dir/redis.log" >&2
  exit 1
}

stop() {
  if answers; then redis-cli -h 127.0.0.1 -p "$port" shutdown >/dev/null 2>&1 || true; fi
  for _ in $(seq 1 50); do answers || { echo "redis: stopped"; return; }; sleep 0.1; done
  echo "redis: still answering on $port" >&2
  exit 1
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) if answers; then echo "redis: up on 127.0.0.1:$port"; else echo "redis: down"; exit 3; fi ;;
  *) echo "usage: $0 start|stop|status|restart" >&2; exit 2 ;;
esac
