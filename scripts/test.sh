#!/usr/bin/env bash
# The one test command (npm test): build, then (with the type check and the lint beside them) every unit and
# end-to-end file with node's test runner (the unit files together in one process per version, see alone_units)
# on the node on PATH (Node 20.19+) and, at the same time, on Node 22 and 24 (binaries from the npm registry, cached
# in .cache/node/ by scripts/node-versions.sh); the fault tests (test/fault/) on the node on PATH only.
# WHARF_TEST_NODE_VERSIONS="" runs the node on PATH only; WHARF_TEST_NODE_VERSIONS="24.22.3" picks others.
# WHARF_TEST_NODE_SCOPE=smoke runs on those other versions only the unit files and the end-to-end files that cover
# what differs between Node versions (a quicker run while working). WHARF_TEST_CONCURRENCY: files at once per
# version (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci
npm run --silent build
# The real services the e2e tests talk to (RabbitMQ, Kafka, Redis, PostgreSQL, S3Proxy, tuspy, Chromium, ...): each
# script installs what is missing and starts its service on loopback; quick when already up.
# WHARF_TEST_SERVICES=0 skips this when they are started elsewhere (.ci/run starts them first).
if [ "${WHARF_TEST_SERVICES:-1}" != 0 ]; then bash scripts/start-services.sh; fi
# The type check and the lint run beside the tests, which need neither (about 15 s off a run's critical path); their
# output comes at the end when one fails, and fails the run.
checks_log="$(mktemp)"
(npx tsc -p tsconfig.json --noEmit && npx biome check src test bench scripts) >"$checks_log" 2>&1 &
checks=$!
node_bins_text="$(bash scripts/node-versions.sh)"
mapfile -t node_bins <<<"$node_bins_text"
[ -n "$node_bins_text" ] || node_bins=()

shopt -s nullglob globstar
all=(test/unit/**/*.test.ts test/e2e/**/*.test.ts test/fault/**/*.test.ts)
# The fault tests (SIGKILL rounds, a full tmpfs, protocol fuzzing) test Wharf's own code paths under faults more than
# Node's; they run once, on the node on PATH.
once=" $(echo test/fault/*.test.ts) "
# With WHARF_TEST_NODE_SCOPE=smoke, Node 22 and 24 run every unit file and only these end-to-end files: those that
# cover what differs between Node versions (the HTTP server and its interim answers, streams and backpressure, worker
# threads, module reloading, zlib's zstd for Kafka, fetch and the adapters, the S3 SDK, the cluster).
smoke=" test/e2e/protocol-core.test.ts test/e2e/protocol-extensions.test.ts test/e2e/protocol-status.test.ts
  test/e2e/tus-js-client.test.ts test/e2e/ietf-draft.test.ts test/e2e/ietf-tus-js-client.test.ts
  test/e2e/hooks-http.test.ts test/e2e/hooks-module-isolation.test.ts test/e2e/hooks-modules-reload.test.ts
  test/e2e/kafka-hooks.test.ts test/e2e/s3-storage.test.ts test/e2e/server.test.ts test/e2e/library.test.ts
  test/e2e/adapters.test.ts test/e2e/metrics-cluster.test.ts test/e2e/cli-errors.test.ts
  test/e2e/stored-bytes.test.ts test/e2e/resumption.test.ts "
smoke=" $(echo $smoke) "
# The unit files run together in one process per Node version (one file that imports them all): a process of its
# own per file paid Node's start, tsx and the loading of src/ again each time, about half of their CPU (85 files:
# 51 CPU-s on Node 24 one by one, 27 together). Their top-level tests then run one after another, as in one file;
# each test still reports under its own file. These stay in processes of their own: files whose tests mostly wait
# on a service (better beside the others than in the queue), and files that patch or measure their own process
# (node:fs functions, the garbage collector).
alone_units=" test/unit/storage/data-stores.test.ts test/unit/uploads/record-copies.test.ts
  test/unit/storage/file-calls.test.ts test/unit/uploads/body-young-gc.test.ts "
alone_units=" $(echo $alone_units) "
units_dir="$(mktemp -d)"
# .mts: an ES module wherever it lies (a .ts file outside this package would be CommonJS, which cannot import a
# file with top-level await).
units="$units_dir/unit-files.test.mts"
trap 'rm -rf "$units_dir"' EXIT
{
  echo "// Made by scripts/test.sh for one run: every unit file not in its alone_units list."
  for file in test/unit/**/*.test.ts; do [[ "$alone_units" == *" $file "* ]] || echo "import '$PWD/$file';"; done
} >"$units"
files_of() {
  local file
  for file in "$@"; do
    if [[ "$file" == test/unit/* && "$alone_units" != *" $file "* ]]; then continue; fi
    echo "$file"
  done
  echo "$units"
}
mapfile -t all < <(files_of "${all[@]}")
others=()
for file in $(files_of test/unit/**/*.test.ts test/e2e/**/*.test.ts); do
  [[ "$once" == *" $file "* ]] && continue
  if [[ "${WHARF_TEST_NODE_SCOPE:-all}" != all && "$file" == test/e2e/* && "$smoke" != *" $file "* ]]; then continue; fi
  others+=("$file")
done
runner=(--import tsx --test --test-timeout=300000 "--test-concurrency=${WHARF_TEST_CONCURRENCY:-2}" --test-reporter=spec)
# Beside each run's output, its time per test file (scripts/test-file-times.mjs), to see where the time goes.
timing_args() { echo --test-reporter-destination=stdout --test-reporter=./scripts/test-file-times.mjs "--test-reporter-destination=$logs/node-$1.times"; }

logs=.cache/test-logs
mkdir -p "$logs"
rm -f "$logs"/node-v*.log
# The files, slowest first as the last run on that version timed them (new files first too): the runner starts
# them in this order, so a long file starts early instead of running alone at the end.
slowest_first() {
  local times="$logs/node-$1.times"
  shift
  # A fresh clone has no times yet: the order of a warm run on Node 20, kept in the repository, stands in (without
  # it the unit files, then the long end-to-end files, started last, and the run ended on a few long files).
  [ -s "$times" ] || times=scripts/test-file-times.txt
  printf '%s\n' "$@" |
    awk 'NR == FNR { if (FNR > 1) seconds[$NF] = $1; next } { print (($0 in seconds) ? seconds[$0] : 1e9), $0 }' "$times" - |
    sort -k1,1 -g -r -s | cut -d' ' -f2-
}
declare -A pids=()
trap 'kill "${pids[@]}" "$checks" 2>/dev/null || true' INT TERM
for bin in "${node_bins[@]}"; do
  version="$("$bin/node" --version)"
  mapfile -t files < <(slowest_first "$version" "${others[@]}")
  # shellcheck disable=SC2046
  PATH="$bin:$PATH" node "${runner[@]}" $(timing_args "$version") "${files[@]}" >"$logs/node-$version.log" 2>&1 &
  pids[$version]=$!
done
echo "Node $(node --version) (on PATH): every test file (${#all[@]} processes, the unit files sharing one); at the same" \
  "time, in the background: ${!pids[*]} run the unit and end-to-end files (${#others[@]} processes;" \
  "WHARF_TEST_NODE_SCOPE=${WHARF_TEST_NODE_SCOPE:-all}; logs in $logs/)"
status=0
version="$(node --version)"
mapfile -t files < <(slowest_first "$version" "${all[@]}")
# shellcheck disable=SC2046
node "${runner[@]}" $(timing_args "$version") "${files[@]}" 2>&1 | tee "$logs/node-$version.log" || status=1

# Each background run's closing lines, and its failures; then the counts of all runs together.
for version in $(printf '%s\n' "${!pids[@]}" | sort -V); do
  wait "${pids[$version]}" || status=1
  echo
  echo "── Node $version: the unit and end-to-end files, ${#others[@]} processes (full output: $logs/node-$version.log)"
  grep -E '^ℹ (tests|pass|fail|cancelled|duration_ms) ' "$logs/node-$version.log" || status=1
  sed -n '/^✖ failing tests:/,$p' "$logs/node-$version.log"
done
if ! wait "$checks"; then
  echo
  echo "── the type check (tsc) or the lint (biome) failed:"
  cat "$checks_log"
  status=1
fi
rm -f "$checks_log"
passed=0
failed=0
for log in "$logs"/node-v*.log; do
  count="$(sed -n 's/^ℹ pass \([0-9]*\)$/\1/p' "$log" | tail -1)"
  passed=$((passed + ${count:-0}))
  count="$(sed -n 's/^ℹ fail \([0-9]*\)$/\1/p' "$log" | tail -1)"
  failed=$((failed + ${count:-0}))
done
echo
echo "tests: $passed passed, $failed failed"
exit "$status"
