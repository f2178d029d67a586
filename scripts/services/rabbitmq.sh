#!/usr/bin/env bash
# RabbitMQ for tests and benches: Debian's rabbitmq-server as its own node (wharf@localhost), AMQP on
# 127.0.0.1:5682 (not the default 5672, so it never clashes with a system broker).
# Usage: scripts/services/rabbitmq.sh install|start|stop|status   (idempotent; quick when already running)
# Tests read WHARF_TEST_AMQP_URL (default amqp://guest:guest@127.0.0.1:5682) and
# WHARF_TEST_RABBITMQ_NODE (default wharf@localhost, for rabbitmqctl -n).
set -euo pipefail

port="${WHARF_TEST_AMQP_PORT:-5682}"
node="${WHARF_TEST_RABBITMQ_NODE:-wharf@localhost}"
log_dir=/var/log/rabbitmq
# WHARF_RABBITMQ_DIR: a folder of its own for the node's data and logs (a test's private node uses a temporary
# one, removed after it); otherwise the package's /var/lib/rabbitmq/mnesia and /var/log/rabbitmq.
if [ -n "${WHARF_RABBITMQ_DIR:-}" ]; then
  log_dir="$WHARF_RABBITMQ_DIR/log"
  export RABBITMQ_MNESIA_BASE="$WHARF_RABBITMQ_DIR/mnesia" RABBITMQ_LOG_BASE="$log_dir"
  mkdir -p "$RABBITMQ_MNESIA_BASE" && chown rabbitmq:rabbitmq "$WHARF_RABBITMQ_DIR" "$RABBITMQ_MNESIA_BASE"
fi
export RABBITMQ_NODENAME="$node"
export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
export RABBITMQ_NODE_PORT="$port"
# The CLI tools talk to the node over Erlang distribution; keep its port next to ours, also on loopback.
export RABBITMQ_DIST_PORT=$((port + 20000))
export ERL_EPMD_ADDRESS=127.0.0.1
export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"

install() {
  command -v rabbitmq-server >/dev/null && return
  echo "rabbitmq: installing Debian's rabbitmq-server" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends rabbitmq-server >/dev/null 2>&1 || {
    apt-get -o DPkg::Lock::Timeout=600 update >/dev/null
    apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends rabbitmq-server >/dev/null
  }
}

running() {
  # A TCP answer on the AMQP port plus a node ping (the port alone may belong to something else).
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && rabbitmqctl -q -n "$node" ping >/dev/null 2>&1
}

start() {
  install
  if running; then
    echo "rabbitmq: running on 127.0.0.1:$port (node $node)"
    return
  fi
  mkdir -p "$log_dir" && chown rabbitmq:rabbitmq "$log_dir"
  # setsid: the broker outlives this script and the test run that started it.
  setsid runuser -u rabbitmq -- env HOME=/var/lib/rabbitmq /usr/lib/rabbitmq/bin/rabbitmq-server \
    >"$log_dir/$node-startup.log" 2>&1 </dev/null &
  # Up to 120 s, looking every 0.2 s (until the port answers, a look costs no rabbitmqctl run).
  for _ in $(seq 1 600); do
    if running && rabbitmqctl -q -n "$node" await_startup >/dev/null 2>&1; then
      echo "rabbitmq: started on 127.0.0.1:$port (node $node)"
      return
    fi
    sleep 0.2
  done
  echo "rabbitmq: did not start within 120 s; see $log_dir/$node-startup.log" >&2
  tail -n 30 "$log_dir/$node-startup.log" >&2 || true
  exit 1
}

stop() {
  if ! command -v rabbitmqctl >/dev/null; then return; fi
  if running; then
    rabbitmqctl -q -n "$node" stop >/dev/null
  fi
  echo "rabbitmq: stopped"
}

case "${1:-start}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status)
    if running; then echo "rabbitmq: running on 127.0.0.1:$port (node $node)"; else
      echo "rabbitmq: not running"
      exit 3
    fi
    ;;
  *)
    echo "usage: $0 install|start|stop|status" >&2
    exit 2
    ;;
esac
