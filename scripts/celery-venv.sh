#!/usr/bin/env bash
# A Python venv with Celery 5 (from PyPI) for the Celery e2e test, cached under .cache/celery-venv.
# Prints the venv's folder. Idempotent and quick once made.
set -euo pipefail
cd "$(dirname "$0")/.."
celery_version="${WHARF_CELERY_VERSION:-5.5.3}"
venv="$PWD/.cache/celery-venv"
marker="$venv/.celery-$celery_version"
mkdir -p .cache
# npm test runs the Celery test on several Node versions at once: one of them makes the venv, the others wait.
exec 9>.cache/celery-venv.lock
flock 9
if [ ! -f "$marker" ]; then
  if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends python3-venv >/dev/null 2>&1 || {
      apt-get -o DPkg::Lock::Timeout=600 update >/dev/null
      apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends python3-venv >/dev/null
    }
  fi
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "celery==$celery_version" >&2
  touch "$marker"
fi
echo "$venv"
