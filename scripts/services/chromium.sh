#!/usr/bin/env bash
# Headless Chromium for the browser e2e tests (Uppy): Debian's package, driven by playwright-core.
# Not a daemon: `start` installs it when missing (quick when present), `stop` does nothing.
set -euo pipefail

chromium=/usr/bin/chromium

case "${1:-start}" in
  start)
    if [ -x "$chromium" ]; then
      echo "chromium: $("$chromium" --version 2>/dev/null || echo present)"
      exit 0
    fi
    echo "chromium: installing Debian's chromium"
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends chromium >/dev/null
    echo "chromium: $("$chromium" --version)"
    ;;
  stop) ;;
  status)
    if [ -x "$chromium" ]; then echo "chromium: installed"; else echo "chromium: not installed"; exit 1; fi
    ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
