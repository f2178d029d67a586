#!/usr/bin/env bash
# A/B of two builds of Wharf on one scenario, interleaved (A B A B ...), to tell a regression from noise.
# Each revision is checked out into ${TMPDIR:-/tmp}/wharf-ab-<rev> (git worktree, reusing this checkout's node_modules)
# and built; "WORKTREE" means the current working tree as it is, uncommitted changes included; a folder holding a
# built tree (bin/wharf.js and dist/) is run as it is.
#
# Usage: bash bench/ab-builds.sh REV_A REV_B [scenario] [rounds]
#   e.g. bash bench/ab-builds.sh main WORKTREE large-chunked 5
# Sizes come from bench/lib/config.mjs (BENCH_LARGE_BYTES=536870912 for a quicker large run).
# Each run also gives the server's CPU time (per upload in the small scenario, after a warm-up of
# AB_SMALL_WARMUP=2000 uploads), its peak RSS (bench/lib/tus-client.mjs, rssSampler) and its RSS once listening,
# before the first request (idle).
# With AB_TRACE_GC=1 it also counts the server's Mark-Compact collections per run.
# AB_ENV_A / AB_ENV_B: environment for A's / B's server (NAME=value, separated by spaces), e.g. the same build
#   with and without libuv's io_uring: AB_ENV_B=UV_USE_IO_URING=1 bash bench/ab-builds.sh HEAD HEAD small 4
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=$ROOT/bench
[ $# -ge 2 ] || { echo "usage: $0 REV_A REV_B [scenario] [rounds]" >&2; exit 64; }
scenario=${3:-large-chunked}
SMALL_WARMUP=${AB_SMALL_WARMUP:-2000}
rounds=${4:-3}
mkdir -p "$BENCH/out"

checkout() { # checkout REV -> prints the folder holding a built bin/wharf.js
  local rev=$1
  if [ -f "$rev/bin/wharf.js" ]; then
    echo "$rev"
    return
  fi
  if [ "$rev" = WORKTREE ]; then
    (cd "$ROOT" && npm run --silent build) >&2
    echo "$ROOT"
    return
  fi
  # Outside the repository: a nested checkout would be linted and tested as part of this one.
  local dir="${TMPDIR:-/tmp}/wharf-ab-$(git -C "$ROOT" rev-parse --short "$rev")"
  if [ ! -d "$dir" ]; then
    git -C "$ROOT" worktree add -q --detach "$dir" "$rev" >&2
    ln -s "$ROOT/node_modules" "$dir/node_modules"
    # The whole build: since the command runs dist/cli-bundle/ (scripts/bundle-cli.ts), tsc alone is not enough.
    (cd "$dir" && npm run --silent build) >&2
  fi
  echo "$dir"
}

# Data folders of the runs, deleted when the script ends: deleting thousands of small files between turns makes the
# next turn's file creations dearer for 60-360 s on ext4 without a journal (bench/lib/spent-data.mjs).
spent=$(mktemp -d "$BENCH/out/ab-spent.XXXXXX")
trap 'rm -rf "$spent"' EXIT
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

run() { # run DIR [NAME=value ...] -> one line: MB/s or uploads/s, the server's CPU (and Mark-Compacts)
  local dir=$1 data port pid log line
  shift
  data=$(mktemp -d "$spent/data.XXXXXX")
  log="$data.log"
  port=$((20000 + RANDOM % 5000))
  env "$@" node ${AB_TRACE_GC:+--trace-gc} "$dir/bin/wharf.js" --host 127.0.0.1 --port "$port" --data-dir "$data" \
    --info-dir "$data" --no-access --log-level error --max-body-size 4294967296 >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  # What the server holds before its first request (as bench/run.sh's idle RSS row).
  local idle
  idle=$(awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$pid/status")
  # Small uploads: a warm-up run first (the JIT compiles, caches fill), so the CPU counted is the steady state's.
  # 200 uploads were not enough: V8 still compiled about 130 functions (~0.5 s of TurboFan on its threads) during
  # the next 2,000, whose CPU per upload was 0.80-0.86 ms against 0.43-0.49 from the third 2,000 on.
  [ "$scenario" = small ] && BENCH_SMALL_COUNT=$SMALL_WARMUP node "$BENCH/load.mjs" small "http://127.0.0.1:$port/files/" >/dev/null 2>&1
  local cpu0 cpu1
  cpu0=$(cpu_ticks "$pid")
  line=$(node "$BENCH/load.mjs" "$scenario" "http://127.0.0.1:$port/files/" "$pid" 2>/dev/null | tail -1)
  cpu1=$(cpu_ticks "$pid")
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local figure
  # Server CPU (user + system, every thread) over the measured run: per upload for small, else in seconds.
  figure=$(node -e 'const r = JSON.parse(process.argv[1]); const cpu = Number(process.argv[2]) / Number(process.argv[3]);
    console.log(r.error ?? `${(r.mbPerSecond ?? r.uploadsPerSecond ?? r.p50Ms).toFixed(1)}` +
      (r.uploads ? ` ${((cpu * 1000) / r.uploads).toFixed(3)} CPU-ms/upload` : ` ${cpu.toFixed(2)} CPU-s`) +
      (r.peakRssMB ? ` peak ${r.peakRssMB.toFixed(1)} MB` : ""))' \
    "$line" $((cpu1 - cpu0)) "$(getconf CLK_TCK)")
  figure="$figure idle $idle MB"
  [ -n "${AB_TRACE_GC:-}" ] && figure="$figure ($(grep -c Mark-Compact "$log") Mark-Compact)"
  # Emptied now (their data never reaches the disk), deleted at the end.
  find "$data" -type f -exec truncate -s 0 {} +
  echo "$figure"
}

a=$(checkout "$1")
b=$(checkout "$2")
read -r -a env_a <<<"${AB_ENV_A:-}"
read -r -a env_b <<<"${AB_ENV_B:-}"
echo "ab: $scenario, $rounds rounds; A = $1 ($a)${AB_ENV_A:+ with $AB_ENV_A}, B = $2 ($b)${AB_ENV_B:+ with $AB_ENV_B}"
for round in $(seq "$rounds"); do
  echo "ab: round $round  A $(run "$a" "${env_a[@]}")  B $(run "$b" "${env_b[@]}")"
done
