#!/usr/bin/env bash
# Kafka for tests and benches: a single-node KRaft broker (broker + controller in one process) built from
# Apache Kafka's own jars on Maven Central, resolved by the machine's Maven into .cache/kafka and run with
# Java 17. Listens on 127.0.0.1:9192 (not the default 9092); the controller on 127.0.0.1:9193.
# Usage: scripts/services/kafka.sh install|start|stop|status   (idempotent; quick when already running)
# Tests read WHARF_TEST_KAFKA_BROKERS (default 127.0.0.1:9192).
# A new broker's log folder is a copy of one formatted once per Kafka version (.cache/kafka/<version>/formatted), not
# a `StorageTool format` run of its own; a test's private broker also runs with short-lived flags (see jvm_flags).
set -euo pipefail
cd "$(dirname "$0")/../.."

kafka_version="${WHARF_KAFKA_VERSION:-3.9.1}"
port="${WHARF_TEST_KAFKA_PORT:-9192}"
controller_port=$((port + 1))
# Its real path (a checkout's .cache may be a link to another's): the class archive below names its jars by path.
cache="$(realpath -m "$PWD/.cache/kafka")"
jars="$cache/$kafka_version/jars"
# WHARF_KAFKA_STATE_DIR: another folder for its data and logs (a test's private broker uses a temporary one).
state="${WHARF_KAFKA_STATE_DIR:-$cache/state-$port}"
data="$state/data"
pid_file="$state/kafka.pid"
log_file="$state/kafka.log"

install_tools() {
  local missing=()
  command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null || missing+=(maven)
  [ ${#missing[@]} -eq 0 ] && return
  echo "kafka: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
    apt-get -o DPkg::Lock::Timeout=600 update >/dev/null
    apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}" >/dev/null
  }
}

# Resolves kafka_2.13 and its runtime dependencies from Maven Central into $jars (once per version).
fetch_jars() {
  [ -f "$jars/.complete" ] && return
  echo "kafka: fetching Apache Kafka $kafka_version jars from Maven Central" >&2
  local build="$cache/$kafka_version/build"
  mkdir -p "$build" "$jars"
  cat >"$build/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.wharf.test</groupId>
  <artifactId>kafka-broker</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$kafka_version</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-storage</artifactId><version>$kafka_version</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$kafka_version</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId><version>1.7.36</version></dependency>
  </dependencies>
</project>
POM
  mvn -q -B -f "$build/pom.xml" -Dmaven.repo.local="$cache/m2" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$jars" >"$build/mvn.log" 2>&1 || {
    tail -n 40 "$build/mvn.log" >&2
    exit 1
  }
  touch "$jars/.complete"
}

# A broker already listening on the port counts as up, even one another checkout of the project started.
running() {
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}

# The JVM's flags and the broker's threads, for a broker that serves one test run on a machine of 2 cores, where its
# CPU is taken from the tests: C1 only (-XX:TieredStopAtLevel=1: C2 compiles hot code better, at a cost a test run
# never earns back), the serial collector (no collector threads beside the tests), one partition for consumer
# offsets (not 50, each a log the broker checks in the background) and fewer network, I/O and background threads.
# Measured on this machine with one broker serving kafka-hooks, hooks-cloudevents, event-order and
# hooks-named-brokers three times, then idle for a minute: 24.5 CPU-s with G1, C2 and Kafka's default threads and
# partitions, 10.5 with these.
jvm_flags=(-Xms256m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:-UsePerfData)
# WHARF_TEST_KAFKA_SHORT_LIVED=1: a test's private broker, which lives for seconds and handles a few hundred records
# (test/support/private-services.ts). Most of its CPU goes to starting the JVM, so it also loads Kafka's classes from
# a CDS archive (class data sharing: parsed and verified once, then mapped), which the first short-lived broker
# writes at its exit (-XX:ArchiveClassesAtExit) into $state and `stop` moves into the cache. It is named after the
# Kafka version, the JVM's build and the jars' fetch (a JVM refuses an archive of another build or of other jars,
# and then runs without one, as before). The shared broker uses the archive too once one exists.
# Measured on this machine: a start, stop, start and kill of one private broker took 10.4 CPU-s with the format
# JVM and the long-lived flags, 6.3 with C1 only, 3.5 with the archive too.
archive=""
class_archive_flags() {
  local java_bin libjvm
  java_bin="$(readlink -f "$(command -v java)" 2>/dev/null || true)"
  libjvm="$(dirname "$java_bin")/../lib/server/libjvm.so"
  [ -f "$libjvm" ] && [ -f "$jars/.complete" ] || return 0
  archive="$cache/$kafka_version/cds-$(stat -c %s-%Y "$libjvm")-$(stat -c %Y "$jars/.complete").jsa"
  if [ -f "$archive" ]; then
    jvm_flags+=("-XX:SharedArchiveFile=$archive")
  elif [ "${WHARF_TEST_KAFKA_SHORT_LIVED:-0}" = 1 ]; then
    jvm_flags+=("-XX:ArchiveClassesAtExit=$state/classes.jsa")
  fi
}

# A cluster id as `StorageTool random-uuid` makes one (16 random bytes, URL-safe base64 without padding, not
# starting with "-"), without starting a JVM for it.
cluster_id() {
  local id
  while :; do
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
    [ "${id:0:1}" != - ] && break
  done
  echo "$id"
}

configure() {
  mkdir -p "$state"
  cat >"$state/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$data
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
offsets.topic.num.partitions=1
num.network.threads=1
num.io.threads=2
background.threads=2
PROPS
  cat >"$state/log4j.properties" <<PROPS
log4j.rootLogger=WARN, stdout
log4j.logger.kafka.server.KafkaServer=INFO
log4j.logger.kafka.server.KafkaRaftServer=INFO
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
PROPS
  if [ ! -f "$data/meta.properties" ]; then
    formatted_template
    mkdir -p "$data"
    cp "$template/meta.properties" "$template/bootstrap.checkpoint" "$data/"
  fi
}

# An empty log folder as `StorageTool format` leaves it (meta.properties: cluster id, node id 1, directory id;
# bootstrap.checkpoint: the metadata version), made once per Kafka version and copied into each new broker's log
# folder: a private broker of a test then starts without a JVM run of its own for the format (about 1.5 CPU-s).
# Every broker formatted from it is a single-node cluster of its own, so sharing the cluster id does not matter; the
# node id matches server.properties' node.id=1.
template="$cache/$kafka_version/formatted"
formatted_template() {
  [ -f "$template/meta.properties" ] && [ -f "$template/bootstrap.checkpoint" ] && return
  local work
  work="$(mktemp -d "$cache/$kafka_version/formatting.XXXXXX")"
  sed "s|^log.dirs=.*|log.dirs=$work/data|" "$state/server.properties" >"$work/server.properties"
  java -Xmx512m -Djava.awt.headless=true -Dlog4j.configuration="file:$state/log4j.properties" -cp "$jars/*" \
    kafka.tools.StorageTool format -t "$(cluster_id)" -c "$work/server.properties" >/dev/null
  # Two first starts at once: the first rename wins, the other's folder is dropped.
  if ! mv -T "$work/data" "$template" 2>/dev/null; then rm -rf "$work/data"; fi
  rm -rf "$work"
}

start() {
  if running; then
    echo "kafka: running on 127.0.0.1:$port"
    return
  fi
  install_tools
  fetch_jars
  class_archive_flags
  configure
  # setsid: the broker outlives this script (a background job is no group leader, so setsid execs java itself and
  # $! is the broker's pid).
  setsid java "${jvm_flags[@]}" -Djava.awt.headless=true -Dlog4j.configuration="file:$state/log4j.properties" \
    -cp "$jars/*" kafka.Kafka "$state/server.properties" >"$log_file" 2>&1 </dev/null &
  echo $! >"$pid_file"
  # Up to 120 s, looking every 0.2 s.
  for _ in $(seq 1 600); do
    if ! kill -0 "$(cat "$pid_file")" 2>/dev/null; then break; fi
    if grep -q "Kafka Server started\|KafkaRaftServer.*started" "$log_file" 2>/dev/null && running; then
      echo "kafka: started on 127.0.0.1:$port"
      return
    fi
    sleep 0.2
  done
  echo "kafka: did not start; see $log_file" >&2
  tail -n 30 "$log_file" >&2 || true
  exit 1
}

stop() {
  class_archive_flags
  if [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
    local pid clean=1
    pid="$(cat "$pid_file")"
    kill "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then
      kill -9 "$pid"
      clean=0
    fi
    # The class archive a short-lived broker wrote at a clean exit goes to the cache, for the next ones (renamed
    # into place: a broker starting meanwhile sees a whole archive or none).
    if [ "$clean" = 1 ] && [ -n "$archive" ] && [ -s "$state/classes.jsa" ] && [ ! -f "$archive" ]; then
      { cp "$state/classes.jsa" "$archive.$$.tmp" && mv -f "$archive.$$.tmp" "$archive"; } || rm -f "$archive.$$.tmp"
    fi
    rm -f "$state/classes.jsa"
  fi
  rm -f "$pid_file"
  echo "kafka: stopped"
}

case "${1:-start}" in
  install)
    install_tools
    fetch_jars
    ;;
  start) start ;;
  stop) stop ;;
  status)
    if running; then echo "kafka: running on 127.0.0.1:$port"; else
      echo "kafka: not running"
      exit 3
    fi
    ;;
  *)
    echo "usage: $0 install|start|stop|status" >&2
    exit 2
    ;;
esac
