#!/usr/bin/env bash
# RabbitMQ for tests and benches: Debian's rabbitmq-server as its own node (wharf@localhost), AMQP on
# 127.0.0.1:5682 (not the default 5672, so it never clashes with a system broker).
# Usage: scripts/services/rabbitmq.sh install|start|launch|stop|status   (idempotent; quick when already running)
#   start   starts the node and returns once it is ready (rabbitmqctl await_startup).
#   launch  starts the node and returns at once: the caller waits for it. A test's private node does so with an AMQP
#           connection and a channel (test/support/private-services.ts), which costs no rabbitmqctl run (each one
#           boots an Erlang VM of its own: about 0.4 CPU-s).
#   stop    SIGTERM to the node's own process (its pid file), which stops it as cleanly as `rabbitmqctl stop`
#           (the Erlang VM runs init:stop(): RabbitMQ closes its client connections and stops its applications),
#           then waits until the process is gone; rabbitmqctl only for a node without a pid file.
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
# RabbitMQ writes its Erlang VM's process id here (RABBITMQ_PID_FILE's default).
pid_file="${RABBITMQ_MNESIA_BASE:-/var/lib/rabbitmq/mnesia}/$node.pid"
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

listening() {
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}

launch() {
  install
  if listening; then return; fi
  mkdir -p "$log_dir" && chown rabbitmq:rabbitmq "$log_dir"
  # setsid: the broker outlives this script and the test run that started it.
  setsid runuser -u rabbitmq -- env HOME=/var/lib/rabbitmq /usr/lib/rabbitmq/bin/rabbitmq-server \
    >"$log_dir/$node-startup.log" 2>&1 </dev/null &
}

start() {
  install
  if running; then
    echo "rabbitmq: running on 127.0.0.1:$port (node $node)"
    return
  fi
  launch
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

# The node's Erlang VM, from its pid file, when that process is alive and is this node's (its environment names it:
# a pid left by a killed node may belong to another process by now).
node_pid() {
  local pid
  pid="$(cat "$pid_file" 2>/dev/null)" || return 1
  [ -n "$pid" ] && tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "RABBITMQ_NODENAME=$node" && echo "$pid"
}

stop() {
  if ! command -v rabbitmqctl >/dev/null; then return; fi
  local pid
  if pid="$(node_pid)"; then
    kill -TERM "$pid" 2>/dev/null || true
    # Up to 60 s for a clean stop, then SIGKILL.
    for _ in $(seq 1 600); do
      [ -d "/proc/$pid" ] || break
      sleep 0.1
    done
    if [ -d "/proc/$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
  elif running; then
    rabbitmqctl -q -n "$node" stop >/dev/null
  fi
  echo "rabbitmq: stopped"
}

case "${1:-start}" in
  install) install ;;
  start) start ;;
  launch) launch ;;
  stop) stop ;;
  status)
    if running; then echo "rabbitmq: running on 127.0.0.1:$port (node $node)"; else
      echo "rabbitmq: not running"
      exit 3
    fi
    ;;
  *)
    echo "usage: $0 install|start|launch|stop|status" >&2
    exit 2
    ;;
esac
