#!/usr/bin/env bash
# Python tus clients for the e2e tests: a venv under .cache/venv with tuspy pinned exactly.
# Not a daemon: `start` installs (quick when the venv already has the pinned version), `stop` does nothing.
set -euo pipefail
cd "$(dirname "$0")/../.."

TUSPY_VERSION=1.1.0
venv=.cache/venv
python="$venv/bin/python"

installed() {
  [ -x "$python" ] && "$python" -c "import importlib.metadata as m, sys; sys.exit(m.version('tuspy') != '$TUSPY_VERSION')" 2>/dev/null
}

ensure_python() {
  if command -v python3 >/dev/null && python3 -c 'import venv, ensurepip' 2>/dev/null; then return; fi
  echo "python-clients: installing python3 and python3-venv"
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq python3 python3-venv >/dev/null
}

case "${1:-start}" in
  start)
    if installed; then
      echo "python-clients: tuspy $TUSPY_VERSION ready in $venv"
      exit 0
    fi
    ensure_python
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$python" -m pip install --quiet --disable-pip-version-check "tuspy==$TUSPY_VERSION"
    installed || { echo "python-clients: tuspy $TUSPY_VERSION did not install" >&2; exit 1; }
    echo "python-clients: tuspy $TUSPY_VERSION installed in $venv"
    ;;
  stop) ;;
  status)
    if installed; then echo "python-clients: tuspy $TUSPY_VERSION ready in $venv"; else echo "python-clients: not installed"; exit 1; fi
    ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
