#!/usr/bin/env bash
# What one small upload (the `small` scenario: POST, then one PATCH of BENCH_SMALL_BYTES, 32 clients) costs a
# server, in figures machine load does not distort: system calls per upload by kind (strace -f -c over two runs
# of different sizes, the difference divided by the uploads between them, so start-up and shutdown cancel out)
# and CPU milliseconds per upload (the process's user+system time over a run, after a warm-up run), with Wharf's
# main thread apart from its other threads (libuv's pool, V8's helpers).
#
# Usage: bash bench/small-costs.sh [server ...]     servers: wharf (this tree), tusd, rustus, pipe (the node:http
#   floor, bench/baseline-pipe.mjs); default wharf, tusd and rustus
# Environment: SMALL_COSTS_UPLOADS=2000 (the CPU run), SMALL_COSTS_WARMUP=2000 (the uploads before it), SMALL_COSTS_WHARF=<tree> (another checkout's bin/wharf.js),
#   SMALL_COSTS_SYSCALLS=0 (CPU only, no strace runs), SMALL_COSTS_WHARF_ENV="NAME=value ..." (environment of the
#   wharf process only, e.g. UV_USE_IO_URING=1)
# Run it under the machine's bench lock when other measurements may run (flock /work/wt/bench.lock ...).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PEERS=$ROOT/bench/.peers
wharf_tree=${SMALL_COSTS_WHARF:-$ROOT}
UPLOADS=${SMALL_COSTS_UPLOADS:-2000}
WARMUP=${SMALL_COSTS_WARMUP:-2000}
command -v strace >/dev/null || { echo "small-costs: strace is not installed" >&2; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/wharf-small-costs.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
TICK=$(getconf CLK_TCK)

# server_command NAME PORT DIR -> COMMAND, as bench/run.sh starts each server
server_command() {
  case $1 in
    wharf) COMMAND=(env ${SMALL_COSTS_WHARF_ENV:-} node "$wharf_tree/bin/wharf.js" --host 127.0.0.1 --port "$2" --data-dir "$3" --info-dir "$3" --no-access) ;;
    tusd) COMMAND=("$PEERS/bin/tusd" -host 127.0.0.1 -port "$2" -upload-dir "$3" -base-path /files/ -verbose=false
      -show-startup-logs=false) ;;
    rustus) COMMAND=("$PEERS/bin/rustus" --host 127.0.0.1 --port "$2" --data-dir "$3" --info-dir "$3"
      --max-body-size 1048576 --log-level ERROR) ;;
    pipe) COMMAND=(node "$ROOT/bench/baseline-pipe.mjs" "$2" "$3") ;;
    *) echo "small-costs: unknown server $1" >&2; exit 64 ;;
  esac
}

wait_listening() {
  for _ in $(seq 500); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.02; done
  return 1
}

load() { BENCH_SMALL_COUNT=$2 node "$ROOT/bench/load.mjs" small "http://127.0.0.1:$1/files/" >/dev/null; }

# strace_counts NAME UPLOADS -> a file of "syscall calls" lines
strace_counts() {
  local name=$1 count=$2 port=$((20000 + RANDOM % 20000)) dir
  dir=$(mktemp -d "$WORK/data.XXXX")
  server_command "$name" "$port" "$dir"
  strace -f -c -o "$WORK/$name-$count.strace" "${COMMAND[@]}" >"$WORK/$name.log" 2>&1 &
  local tracer=$!
  wait_listening "$port"
  load "$port" "$count"
  kill -TERM "$(pgrep -P "$tracer" | head -1)"
  wait "$tracer" || true
  # Left for the exit trap: deleting thousands of files here makes the next server's file creations dearer
  # for 60-360 s on ext4 without a journal (bench/lib/spent-data.mjs).
  awk 'NR > 2 && $1 ~ /^[0-9]/ && $NF != "total" { print $NF, $4 }' "$WORK/$name-$count.strace" | sort
}

per_upload_syscalls() {
  local name=$1 small=200 large=1000
  join -a1 -a2 -e0 -o 0,1.2,2.2 <(strace_counts "$name" "$large") <(strace_counts "$name" "$small") |
    awk -v n=$((large - small)) -v name="$name" '
      { d = ($2 - $3) / n; total += d; if (d >= 0.05) printf "  %-16s %6.2f\n", $1, d }
      END { printf "  %-16s %6.2f   (%s, system calls per upload)\n", "all", total, name }' | sort -k2 -nr
}

cpu_ticks() { awk '{ print $14 + $15 }' "$1"; }

per_upload_cpu() {
  local name=$1 port=$((20000 + RANDOM % 20000)) dir
  dir=$(mktemp -d "$WORK/data.XXXX")
  server_command "$name" "$port" "$dir"
  "${COMMAND[@]}" >"$WORK/$name.log" 2>&1 &
  local pid=$!
  wait_listening "$port"
  load "$port" "$WARMUP" # warm-up: a JIT compiles, caches fill (see bench/ab-builds.sh for why 2,000)
  local all0 main0 all1 main1
  all0=$(cpu_ticks "/proc/$pid/stat")
  main0=$(cpu_ticks "/proc/$pid/task/$pid/stat")
  load "$port" "$UPLOADS"
  all1=$(cpu_ticks "/proc/$pid/stat")
  main1=$(cpu_ticks "/proc/$pid/task/$pid/stat")
  kill -TERM "$pid"
  wait "$pid" || true
  # Left for the exit trap: deleting thousands of files here makes the next server's file creations dearer
  # for 60-360 s on ext4 without a journal (bench/lib/spent-data.mjs).
  awk -v name="$name" -v all=$((all1 - all0)) -v main=$((main1 - main0)) -v n="$UPLOADS" -v tick="$TICK" 'BEGIN {
    printf "  %-8s CPU %.3f ms per upload", name, all * 1000 / tick / n
    if (name == "wharf" || name == "pipe") printf " (main thread %.3f)", main * 1000 / tick / n
    printf "\n" }'
}

servers=("$@")
[ ${#servers[@]} -gt 0 ] || servers=(wharf tusd rustus)
if [ "${SMALL_COSTS_SYSCALLS:-1}" != 0 ]; then for name in "${servers[@]}"; do per_upload_syscalls "$name"; done; fi
for name in "${servers[@]}"; do per_upload_cpu "$name"; done
