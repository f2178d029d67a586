#!/usr/bin/env bash
# Installs the pinned peers into bench/.peers/ (git-ignored) and bench/node_modules/, and builds the loopback
# sink (bench/sink, the physical limit) into bench/.peers/bin/sink.
# Idempotent: each step checks the installed version first and skips itself when it matches.
# Only the peers named in BENCH_SERVERS (default: all of them) are installed.
# A peer that cannot be installed is recorded in bench/.peers/<name>.unavailable (with the
# reason) and skipped by run.sh; setup itself still exits 0 so the rest of the bench runs.
set -euo pipefail
cd "$(dirname "$0")"
BENCH=$PWD
PEERS=$BENCH/.peers
TUSD_VERSION=v2.9.1   # newest v2 the Go module proxy serves (2026-11)
RUSTUS_VERSION=0.5.10 # newest rustus on crates.io; 1.x is released on GitHub only (see README)
mkdir -p "$PEERS/bin" "$PEERS/logs"
wanted() { [[ ",${BENCH_SERVERS:-wharf,tusd,rustus,tus-node}," == *",$1,"* ]]; }

tusd_ok() {
  [ -x "$PEERS/bin/tusd" ] && command -v go >/dev/null &&
    go version -m "$PEERS/bin/tusd" 2>/dev/null | grep -Eq "^\s+mod\s+github.com/tus/tusd/v2\s+$TUSD_VERSION\s"
}
rustus_ok() { [ -x "$PEERS/bin/rustus" ] && [ "$("$PEERS/bin/rustus" --version 2>/dev/null)" = "Rustus $RUSTUS_VERSION" ]; }
npm_ok() {
  node -e '
    const bench = require(process.argv[1] + "/package.json");
    for (const [name, version] of Object.entries(bench.dependencies)) {
      const installed = require(process.argv[1] + "/node_modules/" + name + "/package.json").version;
      if (installed !== version) process.exit(1);
    }' "$BENCH" 2>/dev/null
}

# The sink is rebuilt when its source changes: the hash of what it was built from is kept beside it.
sink_source() { cat "$BENCH/sink/go.mod" "$BENCH/sink/main.go" | sha256sum | cut -c1-16; }
sink_ok() { [ -x "$PEERS/bin/sink" ] && [ "$(cat "$PEERS/sink.source" 2>/dev/null)" = "$(sink_source)" ]; }

install_sink() {
  rm -f "$PEERS/sink.unavailable"
  if ! command -v go >/dev/null; then echo "go is not installed" >"$PEERS/sink.unavailable"; return; fi
  echo "setup: building the loopback sink (go build, standard library only)"
  # GOPROXY=off: it has no dependencies, so the build never needs the network. Default flags (no -trimpath), so
  # it finds the standard packages tusd's build compiled in Go's cache.
  if (cd "$BENCH/sink" && GOPROXY=off go build -o "$PEERS/bin/sink" .) >"$PEERS/logs/sink-build.log" 2>&1; then
    sink_source >"$PEERS/sink.source"
  else
    { echo "go build failed:"; tail -20 "$PEERS/logs/sink-build.log"; } >"$PEERS/sink.unavailable"
  fi
}

install_tusd() {
  rm -f "$PEERS/tusd.unavailable"
  if ! command -v go >/dev/null; then echo "go is not installed" >"$PEERS/tusd.unavailable"; return; fi
  echo "setup: building tusd $TUSD_VERSION (go install, ~4 min beside rustus on 2 cores)"
  if ! GOBIN="$PEERS/bin" go install "github.com/tus/tusd/v2/cmd/tusd@$TUSD_VERSION" >"$PEERS/logs/tusd-install.log" 2>&1; then
    { echo "go install failed:"; tail -20 "$PEERS/logs/tusd-install.log"; } >"$PEERS/tusd.unavailable"
  fi
}

install_rustus() {
  rm -f "$PEERS/rustus.unavailable"
  if ! command -v cargo >/dev/null; then echo "cargo is not installed" >"$PEERS/rustus.unavailable"; return; fi
  echo "setup: building rustus $RUSTUS_VERSION (cargo install --locked, ~7 min beside tusd on 2 cores)"
  # --locked: build with the Cargo.lock published in the crate, so the build is the same every time.
  if ! cargo install rustus --version "$RUSTUS_VERSION" --locked --root "$PEERS" >"$PEERS/logs/rustus-install.log" 2>&1; then
    { echo "cargo install failed:"; tail -20 "$PEERS/logs/rustus-install.log"; } >"$PEERS/rustus.unavailable"
  fi
}

# On a fresh machine this is CPU-bound: about 13 CPU-minutes (rustus's build 8, tusd's 4½, npm, Maven for
# Kafka's jars) on two cores, so everything runs at once and rustus's build sets the time (6½ to 7 min).
# The sink builds after tusd when tusd is built too: it then takes the standard packages from Go's cache (about
# 2 CPU-seconds instead of 15 with an empty cache), and it ends long before rustus's build.
pids=()
if ! wanted rustus; then echo "setup: rustus not in BENCH_SERVERS"
elif rustus_ok; then echo "setup: rustus $RUSTUS_VERSION already installed"; else install_rustus & pids+=($!); fi
build_tusd=
if ! wanted tusd; then echo "setup: tusd not in BENCH_SERVERS"
elif tusd_ok; then echo "setup: tusd $TUSD_VERSION already installed"; else build_tusd=1; fi
build_sink=
if sink_ok; then echo "setup: the loopback sink is built"; else build_sink=1; fi
if [ -n "$build_tusd$build_sink" ]; then
  ( [ -z "$build_tusd" ] || install_tusd; [ -z "$build_sink" ] || install_sink ) &
  pids+=($!)
fi
(
  if ! wanted tus-node; then
    echo "setup: tus-node not in BENCH_SERVERS"
  elif npm_ok; then
    echo "setup: @tus/server and @tus/file-store already installed"
  else
    echo "setup: npm ci --prefix bench"
    npm ci --prefix "$BENCH" --no-audit --no-fund --loglevel=error
  fi
  # Wharf's own dependencies on a fresh clone (npm ci also builds dist/); run.sh reports a failure.
  if [ ! -d "$BENCH/../node_modules" ]; then
    echo "setup: npm ci (Wharf)"
    (cd "$BENCH/.." && npm ci --no-audit --no-fund --loglevel=error) >"$PEERS/logs/wharf-npm-ci.log" 2>&1 ||
      echo "setup: WARNING: Wharf's npm ci failed (see bench/.peers/logs/wharf-npm-ci.log)" >&2
  fi
  # The brokers of the hooks modes (run.sh starts them only for those modes): installed now, with the peers.
  if [ "${BENCH_BROKERS:-1}" != 0 ]; then
    for broker in rabbitmq kafka; do
      bash "$BENCH/../scripts/services/$broker.sh" install >"$PEERS/logs/$broker-install.log" 2>&1 ||
        echo "setup: WARNING: $broker could not be installed (see bench/.peers/logs/$broker-install.log)" >&2
    done
  fi
) &
pids+=($!)
for pid in "${pids[@]}"; do wait "$pid"; done

for peer in tusd rustus sink; do
  if [ -f "$PEERS/$peer.unavailable" ]; then
    echo "setup: WARNING: $peer unavailable: $(head -1 "$PEERS/$peer.unavailable")" >&2
  fi
done
