// Hook overhead: small uploads per second (the `small` scenario of load.mjs: create + one PATCH each)
// with no hooks, with a blocking HTTP pre-create hook, and with every post hook on an HTTP target, on
// RabbitMQ (durable queue, persistent messages) and on Kafka. The HTTP receiver is a separate process
// answering 200 at once; the brokers are the test services (scripts/services/rabbitmq.sh, kafka.sh), and a
// broker mode is skipped, saying so, when its broker does not answer. Every run counts the events that
// arrived, so a mode whose hooks did not fire shows as an error, not as a free hook.
// Modes run in turn (A B C A B C ...), BENCH_ROUNDS rounds, the median reported.
//
// Usage: node bench/hooks-overhead.mjs [--results FILE]   (BENCH_ROUNDS, BENCH_HOOKS_COUNT as in run.sh;
//   WHARF_TEST_AMQP_URL, WHARF_TEST_KAFKA_BROKERS as in the tests)
//   BENCH_HOOKS_WHARF=DIR runs the Wharf checkout at DIR (its bin/wharf.js) instead of this one; with
//   BENCH_HOOKS_WHARF_B=DIR too, every mode runs on both builds in turn (A B A B), for before/after figures.
//   BENCH_HOOKS_WARMUP=N (default 1,000; 0 for none) runs N uploads on each server before the measured ones (not
//   counted, their events delivered first): figures of a server whose hot code V8 has compiled. Without it a
//   server just started spends much of its CPU compiling (perf: TurboFan threads ~0.15 ms per upload over the
//   first 4,000). Not in the modes with a broker down: their warm-up events would wait in the outbox.
//   BENCH_HOOKS_PROFILE=DIR starts each server with --cpu-prof, its profile written into DIR.
//   BENCH_HOOKS_PERF=DIR records each server's on-CPU samples with `perf record -g` (every thread, the kernel
//   side of its system calls too) into DIR/<mode>.data while the load runs and its events are delivered; read
//   them with `perf report -i FILE`. A --cpu-prof profile counts wall time, which other work on the machine
//   inflates; perf counts only time on a CPU.
// The figure that load does not distort is the server's CPU per upload (utime + stime from /proc); the summary
// also gives what the hooks add per event: (CPU per upload - CPU per upload with no hooks) / events per upload.
// Prints one line per run and a summary; with --results, appends run records for report.mjs (run.sh does).
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { appendFile, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { config } from './lib/config.mjs';
import { listenerPid } from './lib/listener-pid.mjs';
import { deleteRetired, retire } from './lib/spent-data.mjs';

const bench = import.meta.dirname;
const root = path.resolve(bench, '..');
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const resultsAt = process.argv.indexOf('--results');
const resultsFile = resultsAt === -1 ? undefined : process.argv[resultsAt + 1];

// The receiver shares the machine's two cores with Wharf and the load generator, so it must take as little of
// them as it can: a node:http server costs 0.08-0.18 ms of CPU per request here, a fifth to a third of what the
// hooks add to Wharf. So it is a minimal HTTP/1.1 responder on net: keep-alive, Content-Length bodies, 200 with
// no body at once. A request it cannot read (chunked, no length) gets a 400 and is counted as refused; the
// run then reports an error rather than a figure. GET /stats tells how many hook requests arrived, how many
// were refused and their mean body size (for the client floor below).
const receiverSource = `
  const net = require('node:net');
  let count = 0, bytes = 0, refused = 0;
  const ok = Buffer.from('HTTP/1.1 200 OK\\r\\nContent-Length: 0\\r\\n\\r\\n', 'latin1');
  net.createServer((socket) => {
    socket.setNoDelay(true);
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      const replies = [];
      for (;;) {
        const end = pending.indexOf('\\r\\n\\r\\n');
        if (end === -1) break;
        const head = pending.toString('latin1', 0, end);
        const length = /\\r\\ncontent-length: *(\\d+)/i.exec(head);
        if (/\\r\\ntransfer-encoding:/i.test(head) || (length === null && !head.startsWith('GET '))) {
          refused += 1;
          socket.end('HTTP/1.1 400 Bad Request\\r\\nContent-Length: 0\\r\\nConnection: close\\r\\n\\r\\n');
          return;
        }
        const size = length === null ? 0 : Number(length[1]);
        if (pending.length < end + 4 + size) break;
        pending = pending.subarray(end + 4 + size);
        if (head.startsWith('GET ')) {
          const body = JSON.stringify({ count, refused, meanBytes: count ? bytes / count : 0 });
          replies.push(Buffer.from('HTTP/1.1 200 OK\\r\\nContent-Type: application/json\\r\\nContent-Length: ' +
            Buffer.byteLength(body) + '\\r\\n\\r\\n' + body));
        } else {
          count += 1;
          bytes += size;
          replies.push(ok);
        }
      }
      // Every answer to what this read brought goes out in one write.
      if (replies.length > 0) socket.write(replies.length === 1 ? replies[0] : Buffer.concat(replies));
    });
    socket.on('error', () => {});
  }).listen(Number(process.argv[1]), '127.0.0.1');
`;

// The floor under any HTTP hook: a bare node:http client (keep-alive, 16 requests in flight, the receiver's
// mean body size) sending the same number of requests, its own CPU per request. Prints one JSON line.
const bareClientSource = `
  const http = require('node:http');
  const [port, count, size] = process.argv.slice(1).map(Number);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const body = Buffer.alloc(size, 'a');
  let sent = 0;
  const one = () => new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/hooks', method: 'POST', agent,
      headers: { 'Content-Type': 'application/json', 'Content-Length': size, 'Hook-Name': 'post-finish',
        'Idempotency-Key': require('node:crypto').randomUUID() } }, (res) => { res.resume(); res.on('end', resolve); });
    req.on('error', reject);
    req.end(body);
  });
  const worker = async () => { while (sent < count) { sent += 1; await one(); } };
  const before = process.cpuUsage();
  Promise.all(Array.from({ length: 16 }, worker)).then(() => {
    const used = process.cpuUsage(before);
    console.log(JSON.stringify({ requests: count, cpuMsPerRequest: (used.user + used.system) / 1000 / count }));
    agent.destroy();
  });
`;

const postHooks = 'post-create,post-receive,post-finish,post-terminate';
/** Events held for a broker that is down in the backlog modes (BENCH_HOOKS_BACKLOG, default 50,000). */
const backlog = Number(process.env.BENCH_HOOKS_BACKLOG ?? 50_000);
/** An AMQP URL where nothing listens: the broker that is down (its port is taken from a closed listener). */
let downAmqpUrl = '';

/**
 * Writes the outbox journal Wharf resumes at start: `count` undelivered events for the AMQP target, each of its own
 * upload (one lane each, the worst case for an outbox that looked at every waiting lane).
 */
async function seedBacklog(dataDir, count) {
  const folder = path.join(dataDir, '.wharf-outbox');
  await mkdir(folder, { recursive: true });
  const request = { uri: '/files/', method: 'PATCH', remoteAddr: '127.0.0.1', headers: {} };
  const lines = [];
  for (let i = 0; i < count; i++) {
    const uploadId = `backlog${i.toString(16).padStart(24, '0')}`;
    const payload = JSON.stringify({ Type: 'post-finish', Event: { Upload: { ID: uploadId, Size: 65536, Offset: 65536 } } });
    const delivery = { eventId: randomUUID(), event: 'post-finish', hook: 'post-finish', uploadId, sequence: 1, payload, request };
    lines.push(JSON.stringify({ t: 'add', entry: { target: 'amqp', delivery, addedAt: Date.now() } }));
  }
  await writeFile(path.join(folder, 'journal.jsonl'), `${lines.join('\n')}\n`);
}

const amqpUrl = process.env.WHARF_TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5682';
const kafkaBrokers = process.env.WHARF_TEST_KAFKA_BROKERS ?? '127.0.0.1:9192';
/**
 * Each mode: where its events go (a sink below), Wharf's arguments for that target, and the events each upload
 * of the small scenario (create, then one PATCH with every byte) raises there: pre-create, or post-create and
 * post-finish.
 */
const modes = {
  'no hooks': { sink: 'none', events: 0, args: () => [] },
  'HTTP pre-create': {
    sink: 'http',
    events: 1,
    args: (url) => ['--hooks-http-urls', url, '--hooks', 'pre-create'],
  },
  'all post hooks on HTTP': {
    sink: 'http',
    events: 2,
    args: (url) => ['--hooks-http-urls', url, '--hooks', postHooks],
  },
  // --admin records every run transition in the run history (files under the info dir here). Only with
  // BENCH_HOOKS_ADMIN=1: it is no target of issue 7, and the run must stay under 15 minutes on a fresh machine.
  ...(process.env.BENCH_HOOKS_ADMIN === '1'
    ? {
        'post hooks on HTTP + admin': {
          sink: 'http',
          events: 2,
          args: (url) => ['--hooks-http-urls', url, '--hooks', postHooks, '--admin'],
        },
      }
    : {}),
  // The outbox with a broker down (issue 20): every post hook on HTTP and on an AMQP broker that does not answer,
  // first with nothing waiting for the broker, then with a backlog of 50,000 events resumed from the journal.
  // The two figures should match: adding and dispatching an event must not cost more with a backlog.
  'post hooks, a broker down': {
    sink: 'http',
    events: 2,
    brokerDown: true,
    args: (url) => ['--hooks-http-urls', url, '--hooks-amqp-url', downAmqpUrl, '--hooks', postHooks],
  },
  [`post hooks with a ${backlog.toLocaleString('en')}-event backlog`]: {
    sink: 'http',
    events: 2,
    brokerDown: true,
    setup: (dataDir) => seedBacklog(dataDir, backlog),
    args: (url) => ['--hooks-http-urls', url, '--hooks-amqp-url', downAmqpUrl, '--hooks', postHooks],
  },
  'all post hooks on AMQP': {
    sink: 'amqp',
    events: 2,
    args: (queue) => ['--hooks-amqp-url', amqpUrl, '--hooks-amqp-exchange', queue, '--hooks-amqp-routing-key', queue,
      '--hooks-amqp-declare-exchange', '--hooks-amqp-declare-queues', '--hooks-amqp-durable-exchange',
      '--hooks-amqp-durable-queues', '--hooks', postHooks],
  },
  'all post hooks on Kafka': {
    sink: 'kafka',
    events: 2,
    args: (topic) => ['--hooks-kafka-urls', kafkaBrokers, '--hooks-kafka-topic', topic, '--hooks', postHooks],
  },
};

/** Whether something listens at host:port (a broker that is not running skips its mode). */
function listening(host, port) {
  return new Promise((resolve) => {
    const socket = connect(Number(port), host, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Polls `count` until it stops growing (the outbox may still be sending when the load ends). */
async function settled(count, expected) {
  let last = await count();
  // Once the expected count is in, nothing more is awaited; short of it, a second of quiet says nothing more comes.
  for (let quiet = 0, waited = 0; last < expected && quiet < 4 && waited < 80; waited++) {
    await sleep(250);
    const now = await count();
    quiet = now === last ? quiet + 1 : 0;
    last = now;
  }
  return last;
}

/**
 * Where each mode's events go. `open()` prepares a fresh target for one run and returns its name for Wharf's
 * arguments, how many events it has received so far, and how to clean it up. `pid()` is the process that
 * receives them (the HTTP receiver, the RabbitMQ or Kafka broker): its CPU shares the machine with Wharf's.
 */
function sinks(receiverUrl, receiverStats, receiverPid) {
  return {
    none: {
      available: async () => true,
      pid: async () => undefined,
      open: async () => ({ target: '', received: async () => 0, close: async () => {} }),
    },
    http: {
      available: async () => true,
      pid: async () => receiverPid,
      open: async () => {
        const before = await receiverStats();
        return {
          target: receiverUrl,
          received: async () => {
            const now = await receiverStats();
            if (now.refused > before.refused) throw new Error(`the receiver could not read ${now.refused - before.refused} hook requests`);
            return now.count - before.count;
          },
          close: async () => {},
        };
      },
    },
    amqp: {
      available: () => listening(new URL(amqpUrl).hostname, new URL(amqpUrl).port || 5672),
      pid: () => listenerPid(new URL(amqpUrl).port || 5672),
      open: async () => {
        const { connect: connectAmqp } = await import('amqplib');
        const queue = `bench-hooks-${randomUUID().slice(0, 8)}`;
        const connection = await connectAmqp(amqpUrl);
        const channel = await connection.createChannel();
        return {
          target: queue,
          // Wharf declares the queue when it starts; until then nothing has arrived.
          received: async () => {
            const probe = await connection.createChannel();
            probe.on('error', () => {});
            const found = await probe.checkQueue(queue).then((q) => q.messageCount, () => 0);
            await probe.close().catch(() => {});
            return found;
          },
          close: async () => {
            await channel.deleteQueue(queue).catch(() => {});
            await channel.deleteExchange(queue).catch(() => {});
            await connection.close();
          },
        };
      },
    },
    kafka: {
      available: () => listening(...kafkaBrokers.split(',')[0].split(':')),
      pid: () => listenerPid(kafkaBrokers.split(',')[0].split(':')[1]),
      open: async () => {
        const { Admin, Consumer } = await import('@platformatic/kafka');
        const topic = `bench-hooks-${randomUUID().slice(0, 8)}`;
        const bootstrapBrokers = kafkaBrokers.split(',');
        const admin = new Admin({ clientId: 'bench', bootstrapBrokers });
        await admin.createTopics({ topics: [topic], partitions: 1, replicas: 1 });
        // Only for its listOffsets: it joins no group and reads nothing.
        const offsets = new Consumer({ clientId: 'bench', groupId: `bench-${topic}`, bootstrapBrokers });
        return {
          target: topic,
          received: async () => Number((await offsets.listOffsets({ topics: [topic] })).get(topic)?.[0] ?? 0n),
          close: async () => {
            await offsets.close();
            await admin.deleteTopics({ topics: [topic] }).catch(() => {});
            await admin.close();
          },
        };
      },
    },
  };
}

function freePort() {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port, child) {
  for (let i = 0; i < 750; i++) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
    if (await listening('127.0.0.1', port)) return;
    await sleep(20);
  }
  throw new Error(`nothing listened on ${port}`);
}

/** The Wharf checkouts to compare: one (this one, or BENCH_HOOKS_WHARF), or two run in turn. */
const builds = [process.env.BENCH_HOOKS_WHARF || root, ...(process.env.BENCH_HOOKS_WHARF_B ? [process.env.BENCH_HOOKS_WHARF_B] : [])];
const profileDir = process.env.BENCH_HOOKS_PROFILE;
const perfDir = process.env.BENCH_HOOKS_PERF;
const warmup = config.hooksWarmup;

/** Starts `perf record` on a running server; the function it returns stops it and waits for its file. */
function recordPerf(pid, name) {
  const perf = spawn('perf', ['record', '-F', '999', '-g', '-p', String(pid), '-o', path.join(perfDir, `${name}.data`)], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return async () => {
    const exited = new Promise((resolve) => perf.once('exit', resolve));
    perf.kill('SIGINT');
    await exited;
  };
}

function startServer(port, dataDir, hookArgs, build = root, name = 'wharf') {
  const profile = [
    ...(profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir, '--cpu-prof-name', `${name}.cpuprofile`] : []),
    // Names the JIT-compiled functions for perf (/tmp/perf-<pid>.map).
    ...(perfDir ? ['--perf-basic-prof'] : []),
    // BENCH_HOOKS_NODE_ARGS: more node flags for the server (e.g. --log-deopt --logfile=FILE).
    ...(process.env.BENCH_HOOKS_NODE_ARGS ?? '').split(' ').filter(Boolean),
  ];
  const args = [...profile, path.join(build, 'bin/wharf.js'), '--host', '127.0.0.1', '--port', String(port), '--data-dir',
    dataDir, '--info-dir', dataDir, '--no-access', '--log-level', 'error', ...hookArgs];
  return spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'] });
}

/**
 * Waits until a server just started has done its start work (its CPU below 10% over a quarter of a second, at
 * most 60 s) and returns the CPU it used since it was spawned, in ms. A backlog mode's Wharf resumes its journal
 * after it listens: a one-time start cost (the outbox replays 50,000 events), reported as its own figure, not
 * spread over the uploads measured after it.
 */
async function startedCpuMs(child) {
  for (let waited = 0; waited < 60_000; waited += 250) {
    const before = await cpuSeconds(child.pid);
    await sleep(250);
    if ((await cpuSeconds(child.pid)) - before < 0.025) break;
  }
  return (await cpuSeconds(child.pid)) * 1000;
}

async function stop(child) {
  if (child.exitCode !== null) return;
  child.kill('SIGTERM');
  // A profiled server writes its profile as it exits: after its hooks' drain, which lasts the whole shutdown timeout
  // (10 s) while a broker is down. Killed before that, it would leave none.
  await Promise.race([new Promise((resolve) => child.once('exit', resolve)), sleep(profileDir ? 20_000 : 5000)]);
  if (child.exitCode === null) child.kill('SIGKILL');
}

/** utime + stime of a process, in seconds (Linux /proc; clock ticks are 100 Hz there). */
async function cpuSeconds(pid) {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function runLoad(port, count = config.hooksCount) {
  return new Promise((resolve, reject) => {
    const load = spawn(process.execPath, [path.join(bench, 'load.mjs'), 'small', `http://127.0.0.1:${port}/files/`], {
      stdio: ['ignore', 'pipe', 'inherit'],
      // Its warm-up is this script's own (BENCH_HOOKS_WARMUP): load.mjs's would be counted in the CPU read here.
      env: { ...process.env, BENCH_SMALL_COUNT: String(count), BENCH_SMALL_WARMUP: '0' },
    });
    let out = '';
    load.stdout.on('data', (chunk) => {
      out += chunk;
    });
    load.once('exit', (code) => {
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()));
      } catch {
        reject(new Error(`load.mjs exited ${code} without a result`));
      }
    });
  });
}

const slug = (mode) => `hooks-${mode.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};

const receiverPort = await freePort();
downAmqpUrl = `amqp://guest:guest@127.0.0.1:${await freePort()}`;
const receiver = spawn(process.execPath, ['-e', receiverSource, String(receiverPort)], { stdio: 'inherit' });
await waitForPort(receiverPort, receiver);
const hookUrl = `http://127.0.0.1:${receiverPort}/hooks`;
const receiverStats = () => fetch(`http://127.0.0.1:${receiverPort}/stats`).then((response) => response.json());
const sinkOf = sinks(hookUrl, receiverStats, receiver.pid);
const runnable = [];
// BENCH_HOOKS_MODES=kafka,amqp runs only the modes whose names contain one of these words (and 'no hooks', the
// base every ratio needs): for comparing one transport between builds.
const wanted = (process.env.BENCH_HOOKS_MODES ?? '').toLowerCase().split(',').filter(Boolean);
for (const mode of Object.keys(modes)) {
  if (mode !== 'no hooks' && wanted.length > 0 && !wanted.some((word) => mode.toLowerCase().includes(word))) {
    delete modes[mode];
  }
}
for (const [mode, { sink }] of Object.entries(modes)) {
  if (await sinkOf[sink].available()) runnable.push(mode);
  else console.log(`hooks: ${mode}: skipped, its broker does not answer (scripts/services/${sink === 'amqp' ? 'rabbitmq' : sink}.sh start)`);
}
await mkdir(path.join(bench, 'out'), { recursive: true });
const results = Object.keys(modes)
  .filter((mode) => !runnable.includes(mode))
  .map((mode) => ({ mode, round: 1, skipped: 'its broker does not answer' }));
try {
  for (let round = 1; round <= rounds; round++) {
    for (const mode of runnable) {
      for (const [index, build] of builds.entries()) {
        // With two builds each record says which one ran ('A' or 'B'); the mode's name stays what report.mjs reads.
        const label = builds.length > 1 ? 'AB'[index] : undefined;
        const port = await freePort();
        const dataDir = await mkdtemp(path.join(bench, 'out', 'hooks-data-'));
        const sink = await sinkOf[modes[mode].sink].open();
        await modes[mode].setup?.(dataDir);
        const name = `${slug(mode)}-${label ?? 'wharf'}-r${round}`;
        const child = startServer(port, dataDir, modes[mode].args(sink.target), build, name);
        const tag = `${label === undefined ? '' : `${label} `}${mode}`;
        try {
          await waitForPort(port, child);
          const startCpuMs = await startedCpuMs(child);
          // BENCH_HOOKS_WARMUP uploads first, their events delivered, none of it counted: the figures of a
          // server that has run a while (its hot code compiled), not of one just started.
          let before = 0;
          if (warmup > 0 && !modes[mode].brokerDown) {
            const warm = await runLoad(port, warmup);
            before = modes[mode].sink === 'none' ? 0 : await settled(sink.received, warm.uploads * modes[mode].events);
          }
          const stopPerf = perfDir ? recordPerf(child.pid, name) : undefined;
          const targetPid = await sinkOf[modes[mode].sink].pid();
          const targetCpuBefore = targetPid === undefined ? undefined : await cpuSeconds(targetPid).catch(() => undefined);
          const cpuBefore = await cpuSeconds(child.pid);
          const result = await runLoad(port);
          // Post events may still be on their way when the load ends (the outbox sends them after the response).
          const expected = result.uploads * modes[mode].events;
          const hookRequests =
            modes[mode].sink === 'none' ? 0 : (await settled(async () => (await sink.received()) - before, expected));
          if (modes[mode].sink !== 'none' && hookRequests < result.uploads) {
            throw new Error(`only ${hookRequests} events arrived for ${result.uploads} uploads`);
          }
          // Server CPU per upload, the deliveries included (read once they arrived): unlike uploads/s, it does not
          // depend on what else shares the machine.
          const cpuMsPerUpload = (((await cpuSeconds(child.pid)) - cpuBefore) * 1000) / result.uploads;
          // The receiver's or broker's CPU over the same span: it runs on the same cores, so every millisecond of
          // it is taken from the uploads too.
          const targetCpuAfter = targetPid === undefined ? undefined : await cpuSeconds(targetPid).catch(() => undefined);
          const targetCpuMsPerUpload =
            targetCpuBefore === undefined || targetCpuAfter === undefined
              ? undefined
              : ((targetCpuAfter - targetCpuBefore) * 1000) / result.uploads;
          await stopPerf?.();
          results.push({
            mode,
            round,
            ...(label ? { build: label } : {}),
            ...result,
            cpuMsPerUpload,
            ...(targetCpuMsPerUpload === undefined ? {} : { targetCpuMsPerUpload }),
            hookRequests,
            startCpuMs,
          });
          console.log(
            `hooks: round ${round} ${tag.padEnd(26)} ${result.uploadsPerSecond.toFixed(1)} uploads/s, p50 ${result.p50Ms.toFixed(1)} ms, server CPU ${cpuMsPerUpload.toFixed(2)} ms/upload` +
              (targetCpuMsPerUpload === undefined ? '' : `, target CPU ${targetCpuMsPerUpload.toFixed(2)} ms/upload`) +
              `, ${startCpuMs.toFixed(0)} ms to start`,
          );
        } catch (error) {
          results.push({ mode, round, ...(label ? { build: label } : {}), error: String(error) });
          console.log(`hooks: round ${round} ${tag.padEnd(26)} ERROR ${error}`);
        } finally {
          await stop(child);
          await sink.close().catch(() => {});
          // Emptied now, deleted at the end: deleting thousands of files slows the next run's file creation
          // (bench/lib/spent-data.mjs).
          await retire(dataDir);
          // As run.sh does: the next run starts on a quiet disk, not during this one's write-back.
          spawnSync('sync');
        }
      }
    }
  }
  const stats = await receiverStats();
  const postRuns = results.filter((r) => r.mode === 'all post hooks on HTTP' && !r.error);
  const eventsPerUpload = median(postRuns.map((r) => r.hookRequests / r.uploads)) ?? 2;
  const requests = Math.max(1000, Math.round(eventsPerUpload * (postRuns[0]?.uploads ?? 2000)));
  const floor = await new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', bareClientSource, String(receiverPort), String(requests),
      String(Math.round(stats.meanBytes || 1000))], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
    });
    child.once('exit', () => {
      try {
        resolve(JSON.parse(out.trim()));
      } catch {
        resolve(undefined);
      }
    });
  });
  if (floor !== undefined) {
    results.push({ mode: 'bare client', round: 1, ...floor, eventsPerUpload, meanBytes: stats.meanBytes });
    console.log(
      `hooks: bare node:http client ${floor.cpuMsPerRequest.toFixed(3)} ms CPU per request ` +
        `(${eventsPerUpload.toFixed(1)} post events per upload, ${Math.round(stats.meanBytes)} bytes each)`,
    );
  }
} finally {
  await deleteRetired();
  await stop(receiver);
}

if (resultsFile) {
  await appendFile(
    resultsFile,
    results
      .map(({ mode, ...rest }) =>
        JSON.stringify({
          ...rest,
          type: 'run',
          server: 'wharf',
          scenario: slug(mode),
          hooks: mode,
          // The backlog row of RESULTS.md compares this mode with the same hooks and no backlog.
          ...(mode.includes('-event backlog') ? { baseline: 'post hooks, a broker down' } : {}),
        }),
      )
      .join('\n') + '\n',
  );
}
for (const [index, build] of builds.entries()) {
  const label = builds.length > 1 ? 'AB'[index] : undefined;
  const runs = (mode) => results.filter((r) => r.mode === mode && !r.error && r.build === label);
  const ok = (mode) => runs(mode).map((r) => r.uploadsPerSecond);
  const cpu = (mode) => median(runs(mode).map((r) => r.cpuMsPerUpload));
  const base = median(ok('no hooks'));
  console.log(
    `\nhooks: ${label === undefined ? '' : `build ${label} (${build}): `}median uploads/s (ratio to no hooks), ` +
      'server CPU ms per upload (ratio to no hooks), CPU µs the hooks add per event, CPU ms to start (before the uploads)',
  );
  for (const mode of runnable) {
    const value = median(ok(mode));
    const perEvent = modes[mode].events > 0 ? ((cpu(mode) - cpu('no hooks')) * 1000) / modes[mode].events : undefined;
    console.log(
      `hooks: ${mode.padEnd(24)} ${value?.toFixed(1).padStart(8)} x${(value / base).toFixed(2)}  ` +
        `${cpu(mode)?.toFixed(3).padStart(6)} ms x${(cpu(mode) / cpu('no hooks')).toFixed(2)}` +
        (perEvent === undefined ? '' : `  ${perEvent.toFixed(0).padStart(5)} µs/event`) +
        `  start ${median(runs(mode).map((r) => r.startCpuMs))?.toFixed(0).padStart(5)} ms`,
    );
  }
}
