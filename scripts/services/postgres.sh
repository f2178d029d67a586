#!/usr/bin/env bash
# PostgreSQL for tests and benches: Debian's postgresql server binaries run as a private cluster on
# 127.0.0.1:${WHARF_POSTGRES_PORT:-15432}, data under /tmp (the postgres user must own it), with a `wharf`
# role (password `wharf`) owning the database `wharf_test`. Durability is off: this cluster holds test data only.
# Idempotent; quick when already running. Usage: scripts/services/postgres.sh start|stop|status|restart
set -euo pipefail
cd "$(dirname "$0")/../.."
port="${WHARF_POSTGRES_PORT:-15432}"
dir="${WHARF_POSTGRES_DIR:-/tmp/wharf-postgres-$port}"
data="$dir/data"

bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
answers() { "$(bindir)/pg_isready" -q -h 127.0.0.1 -p "$port" 2>/dev/null; }

install() {
  [ -n "$(bindir)" ] && [ -x "$(bindir)/initdb" ] && return
  if [ "$(id -u)" != 0 ]; then
    echo "postgres.sh: PostgreSQL is not installed and this is not root; install the Debian package postgresql" >&2
    exit 1
  fi
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends postgresql >/dev/null
}

sql() { as_owner "$(bindir)/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -qtAX -c "$1"; }

provision() {
  if [ "$(sql "SELECT 1 FROM pg_roles WHERE rolname = 'wharf'")" != 1 ]; then
    sql "CREATE ROLE wharf LOGIN PASSWORD 'wharf'"
  fi
  if [ "$(sql "SELECT 1 FROM pg_database WHERE datname = 'wharf_test'")" != 1 ]; then
    sql "CREATE DATABASE wharf_test OWNER wharf"
  fi
}

start() {
  install
  if answers; then echo "postgres: up on 127.0.0.1:$port"; return; fi
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
  if [ ! -f "$data/PG_VERSION" ]; then
    as_owner "$(bindir)/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --no-locale >/dev/null
    cat >>"$data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
  fi
  as_owner "$(bindir)/pg_ctl" -D "$data" -l "$dir/postgres.log" -w -t 60 start >/dev/null
  for _ in $(seq 1 100); do answers && break; sleep 0.1; done
  answers || { echo "postgres: did not answer on 127.0.0.1:$port; see $dir/postgres.log" >&2; exit 1; }
  provision
  echo "postgres: started on 127.0.0.1:$port (postgres://wharf:wharf@127.0.0.1:$port/wharf_test)"
}

stop() {
  if [ -f "$data/postmaster.pid" ]; then
    as_owner "$(bindir)/pg_ctl" -D "$data" -m fast -w stop >/dev/null || true
  fi
  if answers; then echo "postgres: still answering on $port" >&2; exit 1; fi
  echo "postgres: stopped"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) if answers; then echo "postgres: up on 127.0.0.1:$port"; else echo "postgres: down"; exit 3; fi ;;
  *) echo "usage: $0 start|stop|status|restart" >&2; exit 2 ;;
esac
