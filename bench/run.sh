#!/usr/bin/env bash
# `npm run bench`: Wharf against tusd, rustus, @tus/server and the limits: the loopback sink (bench/sink, Go:
# the physical limit), the node:http pipe (Node's limit) and dd (the disk and the page cache).
# For each scenario, for each round, every server in turn (A B C D A B C D ...), each started
# fresh on its own port with its own data dir, then stopped and its data removed. Medians
# and ratios are printed and written to bench/RESULTS.md by bench/report.mjs.
#
# Environment (all optional):
#   BENCH_ROUNDS=3             rounds per scenario (median of the rounds is reported)
#   BENCH_SCALE=1              multiplies sizes and counts (0.1 for a quick run)
#   BENCH_SERVERS=wharf,tusd,rustus,tus-node   servers to run (sink and pipe join the large and concurrent scenarios,
#                              the pipe also small)
#   BENCH_SCENARIOS=large-chunked,large-single,small,concurrent,resume
#   BENCH_SUBJECT=wharf        the server whose ratios and targets are reported
#   BENCH_WHARF_ARGS=          extra arguments for bin/wharf.js (e.g. "--workers 2")
#   BENCH_BIG=1                run big-upload.mjs (2 GiB into the subject); 0 to skip
#   BENCH_NO_BUILD=1           do not rebuild dist/ when src/ is newer
#   BENCH_RESULTS=bench/RESULTS.md   where the report goes
#   plus the size/count variables of bench/lib/config.mjs
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BENCH=$ROOT/bench
PEERS=$BENCH/.peers
started_at=$(date +%s)

bash "$BENCH/setup.sh"
# What setup wrote (builds, caches, packages) goes to disk now, not during the first scenario's writes.
sync

ROUNDS=${BENCH_ROUNDS:-3}
# The small rows measure each server after 2,000 small uploads of its own (load.mjs; report.mjs says so).
export BENCH_SMALL_WARMUP=${BENCH_SMALL_WARMUP:-2000}
SUBJECT=${BENCH_SUBJECT:-wharf}
IFS=, read -r -a SERVERS <<<"${BENCH_SERVERS:-wharf,tusd,rustus,tus-node}"
IFS=, read -r -a SCENARIOS <<<"${BENCH_SCENARIOS:-large-chunked,large-single,small,concurrent,resume}"
read -r -a WHARF_ARGS <<<"${BENCH_WHARF_ARGS:-}"

stamp=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$BENCH/out/$stamp
mkdir -p "$OUT/logs"
RESULTS=$OUT/results.jsonl
: >"$RESULTS"
# Data lives in a temporary dir on the same disk as the repo (bench/out is inside it).
DATA_ROOT=$(mktemp -d "$BENCH/out/data.XXXXXX")

eval "$(node --input-type=module -e '
  import { config } from "./bench/lib/config.mjs";
  console.log(`LARGE_BYTES=${config.largeBytes} DEADLINE=${config.deadlineSeconds}`);
  console.log(`MAX_BODY=${Math.max(config.largeBytes, config.largeChunkBytes, config.concurrentBytes, config.resumeBytes, config.smallBytes)}`);
')"

SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    sleep 0.5
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$DATA_ROOT"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- which servers can run ------------------------------------------------------------------
declare -A UNAVAILABLE=()
wharf_ready() {
  [ -f "$ROOT/bin/wharf.js" ] || { UNAVAILABLE[wharf]="bin/wharf.js does not exist yet"; return; }
  # On a fresh clone setup.sh ran npm ci (which also builds dist/), beside the peers' builds.
  [ -d "$ROOT/node_modules" ] || { UNAVAILABLE[wharf]="npm ci failed (see bench/.peers/logs/wharf-npm-ci.log)"; return; }
  if [ -z "${BENCH_NO_BUILD:-}" ] && { [ ! -f "$ROOT/dist/cli-bundle/main.js" ] ||
    [ -n "$(find "$ROOT/src" -newer "$ROOT/dist/cli-bundle/main.js" -type f -print -quit 2>/dev/null)" ]; }; then
    echo "bench: building Wharf (npm run build)"
    if ! (cd "$ROOT" && npm run build --silent) >"$OUT/logs/wharf-build.log" 2>&1; then
      UNAVAILABLE[wharf]="npm run build failed (see bench/out/$stamp/logs/wharf-build.log)"
      return
    fi
  fi
  [ -f "$ROOT/dist/cli-bundle/main.js" ] || UNAVAILABLE[wharf]="dist/cli-bundle/main.js missing"
}
for server in "${SERVERS[@]}"; do
  case $server in
    wharf) wharf_ready ;;
    tusd | rustus)
      if [ -f "$PEERS/$server.unavailable" ]; then UNAVAILABLE[$server]=$(head -1 "$PEERS/$server.unavailable")
      elif [ ! -x "$PEERS/bin/$server" ]; then UNAVAILABLE[$server]="not installed"; fi ;;
    tus-node) [ -d "$BENCH/node_modules/@tus/server" ] || UNAVAILABLE[tus-node]="@tus/server not installed" ;;
    pipe | sink) ;;
    raw) ;;
    *) echo "bench: unknown server $server" >&2; exit 64 ;;
  esac
done
# The limits join the large and concurrent scenarios by themselves; the sink only when setup.sh could build it.
if [ -f "$PEERS/sink.unavailable" ]; then UNAVAILABLE[sink]=$(head -1 "$PEERS/sink.unavailable")
elif [ ! -x "$PEERS/bin/sink" ]; then UNAVAILABLE[sink]="not built"; fi
for server in "${!UNAVAILABLE[@]}"; do
  echo "bench: skipping $server: ${UNAVAILABLE[$server]}" >&2
  printf '{"type":"unavailable","server":"%s","reason":%s}\n' "$server" \
    "$(node -e 'console.log(JSON.stringify(process.argv[1]))' "${UNAVAILABLE[$server]}")" >>"$RESULTS"
done

# --- starting and stopping one server -------------------------------------------------------
# A random base, so two runs on one machine rarely probe the same ports.
next_port=$((18100 + RANDOM % 8000))
free_port() {
  while (exec 3<>"/dev/tcp/127.0.0.1/$next_port") 2>/dev/null; do next_port=$((next_port + 1)); done
  PORT=$next_port
  next_port=$((next_port + 1))
}

# server_command NAME PORT DIR -> COMMAND (an array). Every server runs with its defaults but for where it
# listens and stores, and per-request logging, which is off in each (Wharf --no-access, tusd -verbose=false,
# rustus --log-level ERROR; @tus/server logs nothing): no server pays for log lines the others do not write.
# rustus needs --max-body-size: its default (256 KiB) refuses every larger PATCH body with a 413.
# No worker count, buffer size or other tuning is passed: BENCH_WHARF_ARGS is the only way to add one, and
# the report prints every command as it ran.
server_command() {
  local name=$1 port=$2 dir=$3
  case $name in
    wharf) COMMAND=(node bin/wharf.js --host 127.0.0.1 --port "$port" --data-dir "$dir" --info-dir "$dir" --no-access
      "${WHARF_ARGS[@]}") ;;
    tusd) COMMAND=("$PEERS/bin/tusd" -host 127.0.0.1 -port "$port" -upload-dir "$dir" -base-path /files/
      -verbose=false -show-startup-logs=false) ;;
    rustus) COMMAND=("$PEERS/bin/rustus" --host 127.0.0.1 --port "$port" --data-dir "$dir" --info-dir "$dir"
      --max-body-size "$MAX_BODY" --log-level ERROR) ;;
    tus-node) COMMAND=(node bench/peers/tus-node-server.mjs "$port" "$dir") ;;
    pipe) COMMAND=(node bench/baseline-pipe.mjs "$port" "$dir") ;;
    raw) COMMAND=(node bench/raw-ingest.mjs "$port" "$dir" shared-sync) ;;
    sink) COMMAND=("$PEERS/bin/sink" -host 127.0.0.1 -port "$port" -dir "$dir") ;;
  esac
}

declare -A COMMAND_RECORDED=()
record_command() { # once per server: the command line as it ran, with the port and folder left out
  local name=$1
  [ -n "${COMMAND_RECORDED[$name]:-}" ] && return
  COMMAND_RECORDED[$name]=1
  server_command "$name" PORT DIR
  local text="${COMMAND[*]}"
  text=${text//$ROOT\//}
  # "added": what BENCH_WHARF_ARGS put on top of the defaults, which the report names.
  local added=''
  [ "$name" = wharf ] && added="${WHARF_ARGS[*]}"
  node -e 'console.log(JSON.stringify({ type: "server", server: process.argv[1], command: process.argv[2],
    added: process.argv[3] }))' "$name" "$text" "$added" >>"$RESULTS"
}

# start_server NAME LOG -> SERVER_PID, PORT, DATA_DIR; returns 1 when it does not listen in 15 s
start_server() {
  local name=$1 log=$2
  free_port
  DATA_DIR=$(mktemp -d "$DATA_ROOT/$name.XXXXXX")
  record_command "$name"
  server_command "$name" "$PORT" "$DATA_DIR"
  "${COMMAND[@]}" >"$log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 750); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then return 0; fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.02
  done
  return 1
}

stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  for _ in $(seq 250); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.02; done
  kill -KILL "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
  # Empty the files, which drops their data before it is written back, so the next server starts on a quiet disk;
  # the files themselves go with DATA_ROOT when the run ends. Deleting them here freed thousands of inodes, and on
  # ext4 without a journal the kernel skips inodes freed in the last 60-360 s one by one when it creates a file:
  # the next server's file creations cost 4-5x more (bench/lib/spent-data.mjs says more).
  find "$DATA_DIR" -type f -exec truncate -s 0 {} +
  sync
}

record() { # record SERVER ROUND JSON
  local json=$3
  [ "${json:0:1}" = "{" ] || json="{\"error\":$(node -e 'console.log(JSON.stringify(process.argv[1] || "no output"))' "$3")}"
  echo "{\"type\":\"run\",\"server\":\"$1\",\"round\":$2,${json:1}" >>"$RESULTS"
}

summary() { # one human line per run, read from the load generator's JSON line (no process of its own)
  local json=$1 out='' key unit
  if [[ $json =~ \"error\":\"([^\"]*) ]]; then echo " ERROR ${BASH_REMATCH[1]}"; return; fi
  for key in mbPerSecond:MB/s uploadsPerSecond:uploads/s p50Ms:'ms p50' peakRssMB:'MB RSS'; do
    unit=${key#*:}
    key=${key%%:*}
    [[ $json =~ \"$key\":([0-9.eE+-]+) ]] && out+=" $(printf '%.1f' "${BASH_REMATCH[1]}") $unit"
  done
  echo "${out:- (unreadable: $json)}"
}

tree_rss_mb() { # the VmRSS of a process and all its descendants (a server's workers), in MB
  local pids=("$1") i=0 kb=0 task
  while [ $i -lt ${#pids[@]} ]; do
    for task in /proc/"${pids[$i]}"/task/*/children; do
      # shellcheck disable=SC2207
      [ -r "$task" ] && pids+=($(cat "$task" 2>/dev/null))
    done
    i=$((i + 1))
  done
  local pid rss
  for pid in "${pids[@]}"; do
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || true) # none for a zombie
    kb=$((kb + ${rss:-0}))
  done
  awk -v kb="$kb" 'BEGIN { if (kb > 0) printf "%.1f", kb / 1024 }'
}

run_one() { # run_one SCENARIO SERVER ROUND
  local scenario=$1 server=$2 round=$3 log="$OUT/logs/$server-$scenario-$round.log" line
  printf 'bench: round %s/%s %-13s %-8s' "$round" "$ROUNDS" "$scenario" "$server"
  if ! start_server "$server" "$log"; then
    line="{\"scenario\":\"$scenario\",\"error\":\"server did not start: $(tail -c 300 "$log" | tr -d '"\\\n')\"}"
  else
    # What the server holds before its first request: the floor under every peak RSS figure.
    local idle
    idle=$(tree_rss_mb "$SERVER_PID")
    line=$(timeout $((DEADLINE + 30)) node "$BENCH/load.mjs" "$scenario" "http://127.0.0.1:$PORT/files/" "$SERVER_PID" \
      2>>"$OUT/logs/load.log" | tail -1) || true
    [ -n "$line" ] || line="{\"scenario\":\"$scenario\",\"error\":\"load generator gave no result\"}"
    if [ -n "$idle" ] && [ "${line: -1}" = "}" ]; then line="${line%\}},\"idleRssMB\":$idle}"; fi
  fi
  stop_server
  record "$server" "$round" "$line"
  summary "$line"
}

run_dd() { # the disk's own limit: the same byte count, 8 MiB blocks, flushed before dd returns
  local round=$1 file="$DATA_ROOT/dd.bin" bs=8M count=$((LARGE_BYTES / 8388608)) out
  if [ $((LARGE_BYTES % 8388608)) -ne 0 ]; then bs=1M; count=$((LARGE_BYTES / 1048576)); fi
  for mode in fdatasync cache; do
    local conv=()
    [ "$mode" = fdatasync ] && conv=(conv=fdatasync)
    out=$(LC_ALL=C dd if=/dev/zero of="$file" bs=$bs count="$count" "${conv[@]}" 2>&1 | tail -1)
    rm -f "$file"
    sync
    # "1073741824 bytes (1.1 GB, 1.0 GiB) copied, 2.49 s, 430 MB/s"
    local bytes seconds
    bytes=$(awk '{print $1}' <<<"$out")
    seconds=$(sed -E 's/.*copied, ([0-9.]+) s.*/\1/' <<<"$out")
    echo "{\"type\":\"run\",\"server\":\"dd-$mode\",\"round\":$round,\"scenario\":\"dd\",\"bytes\":$bytes,\"seconds\":$seconds,\"mbPerSecond\":$(awk -v b="$bytes" -v s="$seconds" 'BEGIN{printf "%.1f", b/1e6/s}')}" >>"$RESULTS"
    printf 'bench: round %s/%s %-13s %-8s %s\n' "$round" "$ROUNDS" dd "$mode" "$out"
  done
}

# --- the runs -------------------------------------------------------------------------------
node --input-type=module -e '
  import { config } from "./bench/lib/config.mjs";
  console.log(JSON.stringify({ type: "config", ...config }));' >>"$RESULTS"
echo "{\"type\":\"load\",\"at\":\"start\",\"loadavg\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}" >>"$RESULTS"
# The test services take CPU from the servers under test even when idle (Kafka's JVM, RabbitMQ, PostgreSQL,
# S3Proxy): a run with them up gave tusd the large rows that a run without them gave Wharf. Said, and recorded.
running_services=()
for service in s3proxy postgres redis rabbitmq kafka; do
  bash "$ROOT/scripts/services/$service.sh" status >/dev/null 2>&1 && running_services+=("$service")
done
if [ ${#running_services[@]} -gt 0 ]; then
  echo "bench: WARNING: test services are running (${running_services[*]}); they take CPU from the servers under" \
    "test. Stop them first: for s in scripts/services/*.sh; do bash \$s stop; done" >&2
  echo "{\"type\":\"services\",\"running\":\"${running_services[*]}\"}" >>"$RESULTS"
fi
# The disk's limit once: it is context for the large rows, not a figure any target compares with.
run_dd 1
for scenario in "${SCENARIOS[@]}"; do
  servers=()
  for server in "${SERVERS[@]}"; do [ -z "${UNAVAILABLE[$server]:-}" ] && servers+=("$server"); done
  # The sink is the physical limit (one copy from the socket into the page cache) that every large figure is
  # also a share of; the node:http pipe is Node's limit for throughput, its floor for memory under concurrency,
  # and for small uploads the most a node:http server can take per second (wharf/pipe says how far Wharf is).
  case $scenario in
    large-* | concurrent)
      [ -z "${UNAVAILABLE[sink]:-}" ] && servers+=(sink)
      servers+=(pipe) ;;
    small) servers+=(pipe) ;;
  esac
  # Node without node:http's body path (raw-ingest.mjs): what a Node server of its own HTTP/1.1 could reach.
  [ "$scenario" = concurrent ] && servers+=(raw)
  # Once each, even when BENCH_SERVERS names them too.
  read -r -a servers <<<"$(printf '%s\n' "${servers[@]}" | awk '!seen[$0]++' | tr '\n' ' ')"
  for round in $(seq "$ROUNDS"); do
    for server in "${servers[@]}"; do
      # Under concurrency the pipe only shows Node's memory floor (no target compares with it): one round is
      # enough, and its two others would cost 15 s of a run that must fit 15 minutes on a fresh machine.
      [ "$server" = pipe ] && [ "$scenario" = concurrent ] && [ "$round" -gt 1 ] && continue
      # The raw reference column is context, not a target: one round keeps the whole run within 15 minutes.
      [ "$server" = raw ] && [ "$round" -gt 1 ] && continue
      run_one "$scenario" "$server" "$round"
    done
  done
done

if [ "${BENCH_BIG:-1}" != 0 ] && [ -z "${UNAVAILABLE[$SUBJECT]:-}" ]; then
  printf 'bench: big-upload    %-8s' "$SUBJECT"
  log="$OUT/logs/$SUBJECT-big-upload.log"
  if start_server "$SUBJECT" "$log"; then
    line=$(timeout $((DEADLINE + 30)) node "$BENCH/big-upload.mjs" "http://127.0.0.1:$PORT/files/" "$SERVER_PID" \
      2>>"$OUT/logs/load.log" | tail -1) || true
  else
    line="{\"scenario\":\"big-upload\",\"error\":\"server did not start\"}"
  fi
  stop_server
  [ -n "${line:-}" ] || line='{"scenario":"big-upload","error":"big-upload.mjs gave no result"}'
  record "$SUBJECT" 1 "$line"
  summary "$line"
fi

# Hooks on versus off, Wharf alone (issues 7 and 20): small uploads with no hooks and with all post hooks on
# HTTP, RabbitMQ and Kafka. The brokers start only now (so they take nothing from the scenarios
# above) and the ones started here stop afterwards; BENCH_BROKERS=0 leaves them out.
if [ "${BENCH_HOOKS:-1}" != 0 ] && [ -z "${UNAVAILABLE[wharf]:-}" ]; then
  started_brokers=()
  if [ "${BENCH_BROKERS:-1}" != 0 ]; then
    # Both at once: each start is mostly waiting for a JVM or an Erlang VM to come up.
    declare -A starting=()
    for broker in rabbitmq kafka; do
      bash "$ROOT/scripts/services/$broker.sh" status >/dev/null 2>&1 && continue
      bash "$ROOT/scripts/services/$broker.sh" start >"$OUT/logs/$broker-start.log" 2>&1 &
      starting[$broker]=$!
    done
    for broker in "${!starting[@]}"; do
      if wait "${starting[$broker]}"; then
        started_brokers+=("$broker")
      else
        echo "bench: $broker did not start (see $OUT/logs/$broker-start.log); its hooks mode is skipped"
      fi
    done
  fi
  # Only the modes issue 20 sets targets for (post hooks on each transport, and the backlog mode once there is
  # one) by default: the HTTP pre-create mode (BENCH_HOOKS_MODES=pre,post,backlog) would take 15 s of a run that
  # must fit 15 minutes on a fresh machine.
  BENCH_HOOKS_MODES=${BENCH_HOOKS_MODES:-post,backlog} \
    timeout $((DEADLINE * 6 * ROUNDS + 120)) node "$BENCH/hooks-overhead.mjs" --results "$RESULTS" \
    2>>"$OUT/logs/load.log" | grep -E '^hooks: (round|.*skipped)' || true
  for broker in "${started_brokers[@]}"; do bash "$ROOT/scripts/services/$broker.sh" stop >/dev/null 2>&1 || true; done
fi

elapsed=$(($(date +%s) - started_at))
node "$BENCH/report.mjs" "$RESULTS" --subject "$SUBJECT" --rounds "$ROUNDS" --elapsed "$elapsed" \
  --data-root "$DATA_ROOT" --out "${BENCH_RESULTS:-$BENCH/RESULTS.md}"
