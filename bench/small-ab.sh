#!/usr/bin/env bash
# Small uploads (POST, then one 64 KiB PATCH, 32 clients) on two or more built trees, interleaved (A B C A B C ...),
# with the server's CPU per upload split into the main thread and the rest (libuv's pool, V8's helpers): the main
# thread's share moves little with the disk's state, unlike the pool's (file creations cost 2-4x more for minutes
# after many files were deleted on ext4 without a journal), so it tells a change of Wharf's own work from noise.
#
# Usage: bash bench/small-ab.sh ROUNDS TREE...     TREE: a folder holding a built Wharf (bin/wharf.js and dist/)
#   e.g. bash bench/small-ab.sh 8 /tmp/wharf-ab-c74d09e .
# Environment: SMALL_AB_UPLOADS=3000 (measured per run), SMALL_AB_WARMUP=2000 (uploads before it),
#   SMALL_AB_ENV="NAME=value ..." (every server's environment). Run it under the machine's bench lock
#   (flock /work/wt/bench.lock ...).
# Prints one line per round: per tree, uploads/s, CPU ms per upload of the whole process and of its main thread.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=$ROOT/bench
[ $# -ge 2 ] || { echo "usage: $0 ROUNDS TREE..." >&2; exit 64; }
rounds=$1
shift
UPLOADS=${SMALL_AB_UPLOADS:-3000}
# Fewer left V8 compiling the request path during the measured run (bench/ab-builds.sh).
WARMUP=${SMALL_AB_WARMUP:-2000}
TICK=$(getconf CLK_TCK)
mkdir -p "$BENCH/out"
# Data folders, emptied after each run and deleted when the script ends (see bench/ab-builds.sh).
spent=$(mktemp -d "$BENCH/out/small-ab-spent.XXXXXX")
trap 'rm -rf "$spent"' EXIT
ticks() { awk '{ print $14 + $15 }' "$1"; }

run() { # run TREE -> "uploads/s all-ms main-ms"
  local tree=$1 data port pid
  data=$(mktemp -d "$spent/data.XXXXXX")
  port=$((20000 + RANDOM % 5000))
  env ${SMALL_AB_ENV:-} node "$tree/bin/wharf.js" --host 127.0.0.1 --port "$port" --data-dir "$data" \
    --info-dir "$data" --no-access --log-level error >"$data.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  BENCH_SMALL_COUNT=$WARMUP node "$BENCH/load.mjs" small "http://127.0.0.1:$port/files/" >/dev/null
  local all0 main0 all1 main1 result
  all0=$(ticks "/proc/$pid/stat")
  main0=$(ticks "/proc/$pid/task/$pid/stat")
  result=$(BENCH_SMALL_COUNT=$UPLOADS node "$BENCH/load.mjs" small "http://127.0.0.1:$port/files/")
  all1=$(ticks "/proc/$pid/stat")
  main1=$(ticks "/proc/$pid/task/$pid/stat")
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  find "$data" -type f -exec truncate -s 0 {} +
  node -e 'const r = JSON.parse(process.argv[1]); const [all, main, n, tick] = process.argv.slice(2).map(Number);
    const ms = (t) => ((t * 1000) / tick / n).toFixed(3);
    console.log(r.error ?? `${r.uploadsPerSecond.toFixed(0)}/s all ${ms(all)} main ${ms(main)}`)' \
    "$result" $((all1 - all0)) $((main1 - main0)) "$UPLOADS" "$TICK"
}

echo "small-ab: $rounds rounds of $UPLOADS uploads; trees: $*"
for round in $(seq "$rounds"); do
  line="round $round"
  for tree in "$@"; do line="$line | $(basename "$(cd "$tree" && pwd)"): $(run "$tree")"; done
  echo "$line"
done
