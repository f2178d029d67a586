#!/usr/bin/env bash
# Starts every service the tests use (scripts/services/*.sh start), installing what is missing.
# Services that only download or build (tusd's and fake-gcs-server's go builds, S3Proxy's and Kafka's jars, the Python venv) start in the
# background while the Debian-package ones install and start one after the other; apt waits for its lock.
# Each script's output goes to .cache/services-logs/<name>.log; a failure prints that log and exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."
logs=.cache/services-logs
mkdir -p "$logs"
background=(tusd fake-gcs s3proxy kafka python-clients azurite)
started=$(date +%s)
declare -A pids=()
for name in "${background[@]}"; do
  [ -e "scripts/services/$name.sh" ] || continue
  bash "scripts/services/$name.sh" start >"$logs/$name.log" 2>&1 &
  pids[$name]=$!
done
# One apt-get for every Debian package the foreground services miss (one update, one dpkg run with its triggers)
# instead of one per script, while the downloads and builds above go on; each script still installs its own
# package when it runs alone, and here finds it installed.
debian=()
[ -x /usr/bin/chromium ] || debian+=(chromium)
{ command -v redis-server && command -v redis-cli; } >/dev/null || debian+=(redis-server)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || debian+=(postgresql)
command -v rabbitmq-server >/dev/null || debian+=(rabbitmq-server)
if [ ${#debian[@]} -gt 0 ] && [ "$(id -u)" = 0 ]; then
  echo "services: installing Debian's ${debian[*]}"
  {
    apt-get -o DPkg::Lock::Timeout=600 update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${debian[@]}"
  } >"$logs/debian-packages.log" 2>&1 || echo "services: apt-get failed (see $logs/debian-packages.log); each script tries its own" >&2
fi
failed=()
for script in scripts/services/*.sh; do
  name=$(basename "$script" .sh)
  [ -n "${pids[$name]:-}" ] && continue
  bash "$script" start >"$logs/$name.log" 2>&1 || failed+=("$name")
done
for name in "${!pids[@]}"; do wait "${pids[$name]}" || failed+=("$name"); done
for name in "${failed[@]}"; do
  echo "services: $name failed to start:" >&2
  tail -n 40 "$logs/$name.log" >&2
done
[ ${#failed[@]} -eq 0 ] || exit 1
echo "services: all up in $(($(date +%s) - started)) s ($(ls scripts/services/*.sh | xargs -n1 basename | sed 's/\.sh$//' | tr '\n' ' '))"
